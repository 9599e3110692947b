// The peertalk web client: the main protocol of signal/PROTOCOL.md, spoken by a page.
// One WebSocket to the relay that served this page; one RTCPeerConnection per member, with
// the `chat` DataChannel carrying JSON envelopes that are acknowledged, exactly as the
// terminal client does. Text from peers only ever reaches the page as text nodes.
'use strict';

const PROTOCOL_VERSION = 1;
const MAX_ENVELOPE_BYTES = 65536;
const CHAT_LABEL = 'chat';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const state = {
  room: params.get('room') || '',
  name: params.get('name') || '',
  secret: null,
  me: null,
  resume: null,
  ws: null,
  joined: false, // welcomed at least once
  retries: 0,
  retryTimer: null,
  peers: new Map(), // id -> Peer
  nextId: 1,
  outbox: new Map(), // our message id -> { payload, line, awaiting: Set, acked: Set, sent }
  mic: null, // the call's MediaStream while calling
};

// ---- What the user sees ------------------------------------------------------------

function time(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function line(parts, attrs = {}) {
  const li = document.createElement('li');
  for (const [key, value] of Object.entries(attrs)) li.setAttribute(key, value);
  for (const [cls, text, extra] of parts) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    for (const [key, value] of Object.entries(extra || {})) span.setAttribute(key, value);
    li.append(span);
  }
  const log = $('messages');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
  return li;
}

function say(text, error = false) {
  line([['time', time(Date.now())], ['text', text]], {
    class: error ? 'system error' : 'system',
    'data-testid': 'system',
  });
}

function showMessage(from, ts, text, own, privately = false) {
  const attrs = { 'data-testid': 'message', 'data-from': from };
  if (own) attrs.class = 'own';
  if (privately) attrs['data-private'] = 'true';
  return line(
    [
      ['time', time(ts)],
      ['from', privately ? `${from} (private)` : from],
      ['text', text, { 'data-testid': 'message-text' }],
      ['mark', ''],
    ],
    attrs,
  );
}

function setRelay(stateName, text) {
  const el = $('relay');
  el.dataset.state = stateName;
  el.textContent = text;
}

function renderMember(peer) {
  if (!peer.item) {
    peer.item = document.createElement('li');
    peer.item.setAttribute('data-testid', 'member');
    const name = document.createElement('span');
    name.className = 'name';
    const status = document.createElement('span');
    status.className = 'state';
    peer.item.append(name, status);
    $('members').append(peer.item);
  }
  peer.item.dataset.name = peer.name;
  peer.item.dataset.state = peer.state;
  peer.item.dataset.audio = peer.audio ? 'on' : 'off';
  peer.item.querySelector('.name').textContent = peer.name;
  peer.item.querySelector('.state').textContent = peer.state + (peer.audio ? ' ♪' : '');
}

// Own messages: · until someone acknowledges, ✓ when all it went to have, ✓ n/m between.
function renderMark(out) {
  const mark = out.line.querySelector('.mark');
  const total = out.acked.size + out.awaiting.size;
  let status;
  if (out.acked.size === 0 && out.awaiting.size === 0 && out.sent) {
    status = 'failed';
    mark.textContent = '✗ not delivered';
  } else if (out.acked.size > 0 && out.awaiting.size === 0) {
    status = 'delivered';
    mark.textContent = '✓';
  } else if (out.acked.size > 0) {
    status = 'partial';
    mark.textContent = `✓ ${out.acked.size}/${total}`;
  } else {
    status = 'sent';
    mark.textContent = '·';
  }
  out.line.dataset.status = status;
}

// ---- The relay ---------------------------------------------------------------------

function relayUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
}

function connect() {
  clearTimeout(state.retryTimer);
  setRelay('connecting', 'relay: connecting');
  const ws = new WebSocket(relayUrl());
  state.ws = ws;
  ws.onopen = () => {
    const join = { type: 'join', room: state.room, name: state.name, version: PROTOCOL_VERSION };
    if (state.secret) join.secret = state.secret;
    if (state.resume) join.resume = state.resume;
    ws.send(JSON.stringify(join));
  };
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    onRelay(message);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (event.code === 4009) {
      setRelay('lost', 'relay: taken over');
      say('this room was opened again elsewhere with this session; this tab has stopped', true);
      return;
    }
    if (!state.joined) {
      if (!$('secret').hidden) return;
      setRelay('lost', 'relay: unreachable');
      say(`could not join through the relay${event.reason ? ` (${event.reason})` : ''}; retrying`, true);
    } else {
      setRelay('lost', `relay: reconnecting (try ${state.retries + 1})`);
    }
    // Open connections carry on; the relay is only needed to meet newcomers.
    const base = Math.min(15000, 250 * 2 ** state.retries);
    state.retries += 1;
    state.retryTimer = setTimeout(connect, base / 2 + Math.random() * (base / 2));
  };
}

function toRelay(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function sendSignal(to, signal) {
  toRelay({ type: 'signal', to, signal });
}

function onRelay(message) {
  switch (message.type) {
    case 'welcome':
      return onWelcome(message);
    case 'peer-joined':
      say(`${message.peer.name} joined`);
      return meet(message.peer, false);
    case 'peer-left':
      return onLeft(message.id);
    case 'signal':
      return onSignal(message.from, message.signal);
    case 'error':
      return onRelayError(message.code, message.message);
    default:
      return undefined;
  }
}

function onWelcome(welcome) {
  const back = state.joined;
  const resumed = back && welcome.id === state.me;
  state.me = welcome.id;
  state.resume = welcome.resume;
  state.joined = true;
  state.retries = 0;
  setRelay('ok', 'relay: ok');
  $('secret').hidden = true;
  $('chat').hidden = false;
  if (!back) {
    const here = welcome.peers.length ? `here: ${welcome.peers.map((p) => p.name).join(', ')}` : 'nobody else is here yet';
    say(`joined room ${welcome.room} as ${state.name}; ${here}`);
  } else {
    say(resumed ? 'back with the relay' : 'back with the relay, under a new id', !resumed);
  }
  // After a relay restart the members come back one by one: one not listed yet keeps its
  // connection (it will rejoin, or its connection will end); only dead ones go.
  const listed = new Set(welcome.peers.map((p) => p.id));
  for (const [id, peer] of state.peers) {
    const dead = ['failed', 'closed'].includes(peer.pc.connectionState);
    if (!listed.has(id) && (!resumed || dead)) removePeer(peer);
  }
  // The newcomer offers to everyone already here (PROTOCOL.md, Session step 3).
  for (const info of welcome.peers) meet(info, true);
}

function onRelayError(code, text) {
  if (code === 'forbidden') {
    // The secret is asked for here and sent only in `join`, never put in the URL.
    state.secret = null;
    $('secret-why').textContent = text;
    $('secret').hidden = false;
    $('join').hidden = true;
    $('secret').elements.secret.focus();
    if (state.ws) state.ws.close();
    return;
  }
  // A signal to a member who has just left: the race is normal and peer-left follows.
  if (code === 'unknown-peer') return;
  if (!state.joined && (code === 'bad-room' || code === 'bad-name' || code === 'name-taken')) {
    if (state.ws) state.ws.close();
    state.ws = null;
    showJoinForm();
  }
  say(`the relay refused: ${text}`, true);
}

function onLeft(id) {
  const peer = state.peers.get(id);
  if (!peer) return;
  say(`${peer.name} left`);
  removePeer(peer);
}

// ---- Peers ---------------------------------------------------------------------------

function meet(info, offer) {
  const known = state.peers.get(info.id);
  // A member coming back with its resume token keeps its id: keep a working connection.
  if (known && known.pc.connectionState !== 'failed' && known.pc.connectionState !== 'closed') {
    known.name = info.name;
    renderMember(known);
    return;
  }
  if (known) closePeer(known);
  const peer = {
    id: info.id,
    name: info.name,
    state: 'connecting',
    audio: false,
    polite: !offer, // the member answers and is the polite side; the newcomer offers
    offerer: offer,
    nextId: known ? known.nextId : 1,
    item: known ? known.item : null,
    queue: Promise.resolve(),
  };
  state.peers.set(info.id, peer);
  openConnection(peer);
  renderMember(peer);
}

function openConnection(peer) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  peer.pc = pc;
  peer.channel = null;
  peer.pending = [];
  peer.makingOffer = false;
  peer.ignoreOffer = false;
  peer.remoteSession = null;
  pc.onicecandidate = ({ candidate }) => {
    if (candidate && candidate.candidate) sendSignal(peer.id, { candidate: candidate.toJSON() });
  };
  pc.onnegotiationneeded = async () => {
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      sendSignal(peer.id, { description: pc.localDescription.toJSON() });
    } catch (e) {
      console.warn('could not offer', e);
    } finally {
      peer.makingOffer = false;
    }
  };
  pc.onconnectionstatechange = () => {
    if (peer.pc !== pc) return;
    if (pc.connectionState === 'failed') {
      peer.state = 'failed';
      renderMember(peer);
      say(`the connection to ${peer.name} failed`, true);
    } else if (pc.connectionState === 'disconnected') {
      say(`the connection to ${peer.name} is interrupted; waiting for it to come back`);
    }
  };
  pc.ondatachannel = ({ channel }) => {
    if (peer.pc === pc && !peer.channel && channel.label === CHAT_LABEL) adoptChannel(peer, channel);
    else channel.close();
  };
  pc.ontrack = ({ track, streams }) => playTrack(peer, track, streams[0]);
  if (state.mic) for (const track of state.mic.getTracks()) pc.addTrack(track, state.mic);
  if (peer.offerer) adoptChannel(peer, pc.createDataChannel(CHAT_LABEL));
}

function closePeer(peer) {
  if (peer.audioEl) peer.audioEl.remove();
  peer.audioEl = null;
  peer.pc.close();
}

function removePeer(peer) {
  closePeer(peer);
  state.peers.delete(peer.id);
  if (peer.item) peer.item.remove();
  settleWithout(peer.id);
}

// The peer is gone: what only it was to acknowledge will not be.
function settleWithout(id) {
  for (const out of state.outbox.values()) {
    if (out.awaiting.delete(id)) renderMark(out);
    if (out.awaiting.size === 0) state.outbox.delete(out.id);
  }
}

function sessionOf(sdp) {
  const o = sdp.split(/\r?\n/).find((l) => l.startsWith('o='));
  return o ? o.split(' ')[1] : null;
}

// Signals from one peer are applied one at a time, in order.
function onSignal(from, signal) {
  const peer = state.peers.get(from);
  if (!peer) return;
  peer.queue = peer.queue.then(() => applySignal(peer, signal)).catch((e) => console.warn('signal failed', e));
}

async function applySignal(peer, signal) {
  if (signal.description) {
    const description = signal.description;
    const session = sessionOf(description.sdp || '');
    // An offer from a new connection on the peer's side (it started again): follow it.
    if (description.type === 'offer' && peer.remoteSession && session !== peer.remoteSession) {
      closePeer(peer);
      peer.offerer = false;
      peer.polite = true;
      openConnection(peer);
      peer.state = 'connecting';
      renderMember(peer);
    }
    const pc = peer.pc;
    // Perfect negotiation: offers that cross are settled by politeness.
    const collision = description.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    await pc.setRemoteDescription(description);
    peer.remoteSession = session;
    for (const candidate of peer.pending.splice(0)) await pc.addIceCandidate(candidate).catch(() => {});
    if (description.type === 'offer') {
      await pc.setLocalDescription();
      sendSignal(peer.id, { description: pc.localDescription.toJSON() });
    }
  } else if (signal.candidate) {
    if (!peer.pc.remoteDescription) {
      peer.pending.push(signal.candidate);
      return;
    }
    try {
      await peer.pc.addIceCandidate(signal.candidate);
    } catch (e) {
      if (!peer.ignoreOffer) console.warn('ignoring a candidate', e);
    }
  }
}

// ---- The chat channel ------------------------------------------------------------------

function adoptChannel(peer, channel) {
  peer.channel = channel;
  const reopened = peer.opened;
  channel.onopen = () => {
    if (peer.channel !== channel) return;
    peer.opened = true;
    peer.state = 'connected';
    renderMember(peer);
    say(`connected to ${peer.name}`);
    sendHeld(peer, reopened);
  };
  channel.onclose = () => {
    if (peer.channel !== channel || !state.peers.has(peer.id)) return;
    if (peer.state === 'connected') {
      peer.state = 'connecting';
      renderMember(peer);
    }
  };
  channel.onmessage = ({ data }) => {
    if (typeof data !== 'string') return;
    let envelope;
    try {
      envelope = JSON.parse(data);
    } catch {
      return;
    }
    onEnvelope(peer, envelope);
  };
}

function onEnvelope(peer, envelope) {
  if (envelope.type === 'chat' && Number.isSafeInteger(envelope.id) && typeof envelope.text === 'string') {
    // Every chat is acknowledged, duplicates too; a duplicate is not shown again.
    peer.channel.send(JSON.stringify({ type: 'ack', id: envelope.id }));
    if (envelope.id >= peer.nextId) {
      peer.nextId = envelope.id + 1;
      const ts = Number.isFinite(envelope.ts) ? envelope.ts : Date.now();
      showMessage(String(envelope.from || peer.name), ts, envelope.text, false, envelope.private === true);
    }
  } else if (envelope.type === 'ack') {
    const out = state.outbox.get(envelope.id);
    if (!out || !out.awaiting.delete(peer.id)) return;
    out.acked.add(peer.id);
    renderMark(out);
    if (out.awaiting.size === 0) state.outbox.delete(out.id);
  }
}

function openPeers() {
  return [...state.peers.values()].filter((p) => p.channel && p.channel.readyState === 'open');
}

function send(text) {
  const id = state.nextId;
  const ts = Date.now();
  const payload = JSON.stringify({ type: 'chat', id, from: state.name, ts, text });
  const size = new TextEncoder().encode(payload).length;
  if (size > MAX_ENVELOPE_BYTES) {
    say(`not sent: ${size} bytes is too long; the limit is ${MAX_ENVELOPE_BYTES} bytes once encoded`, true);
    return false;
  }
  state.nextId += 1;
  const out = { id, payload, line: showMessage(state.name, ts, text, true), awaiting: new Set(), acked: new Set(), sent: false };
  state.outbox.set(id, out);
  for (const peer of openPeers()) sendOne(out, peer);
  renderMark(out);
  return true;
}

function sendOne(out, peer) {
  out.sent = true;
  out.awaiting.add(peer.id);
  peer.channel.send(out.payload);
}

// Messages typed while nobody was connected go to the first peer that opens; after a
// connection was replaced, what the peer had not acknowledged goes again, in order.
function sendHeld(peer, reopened) {
  for (const out of state.outbox.values()) {
    if (!out.sent || (reopened && out.awaiting.has(peer.id))) {
      sendOne(out, peer);
      renderMark(out);
    }
  }
}

// ---- Calls ---------------------------------------------------------------------------------

function playTrack(peer, track, stream) {
  if (!peer.audioEl) {
    peer.audioEl = document.createElement('audio');
    peer.audioEl.autoplay = true;
    document.body.append(peer.audioEl);
  }
  peer.audioEl.srcObject = stream || new MediaStream([track]);
  const started = () => {
    peer.audio = true;
    renderMember(peer);
  };
  track.onunmute = started;
  if (!track.muted) started();
  track.onmute = () => {
    peer.audio = false;
    renderMember(peer);
  };
  track.onended = track.onmute;
}

async function toggleCall() {
  const button = $('call');
  if (state.mic) {
    const tracks = new Set(state.mic.getTracks());
    for (const peer of state.peers.values()) {
      for (const sender of peer.pc.getSenders()) {
        if (sender.track && tracks.has(sender.track)) peer.pc.removeTrack(sender);
      }
    }
    for (const track of tracks) track.stop();
    state.mic = null;
    button.dataset.state = 'off';
    button.textContent = 'Call';
    say('call ended');
    return;
  }
  try {
    state.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    say(`could not open the microphone (${e.message}); the chat goes on without audio`, true);
    return;
  }
  for (const peer of state.peers.values()) {
    for (const track of state.mic.getTracks()) peer.pc.addTrack(track, state.mic);
  }
  button.dataset.state = 'on';
  button.textContent = 'Hang up';
  say('in the call: the room hears your microphone');
}

// ---- Start -------------------------------------------------------------------------------

function showJoinForm() {
  const form = $('join');
  form.elements.room.value = state.room;
  form.elements.name.value = state.name;
  form.hidden = false;
  (state.room ? form.elements.name : form.elements.room).focus();
}

function start() {
  $('where').textContent = `#${state.room} as ${state.name}`;
  $('join').hidden = true;
  connect();
}

$('join').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target;
  state.room = form.elements.room.value.trim();
  state.name = form.elements.name.value.trim();
  const url = new URL(location.href);
  url.searchParams.set('room', state.room);
  url.searchParams.set('name', state.name);
  history.replaceState(null, '', url);
  start();
});

$('secret').addEventListener('submit', (event) => {
  event.preventDefault();
  state.secret = event.target.elements.secret.value;
  event.target.elements.secret.value = '';
  $('secret').hidden = true;
  connect();
});

$('compose').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = event.target.elements.text;
  const text = input.value;
  if (text.trim() === '') return;
  if (send(text)) input.value = '';
});

$('compose').elements.text.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('compose').requestSubmit();
  }
});

$('call').addEventListener('click', toggleCall);

// Leaving the page leaves the room at once, rather than when the relay notices.
window.addEventListener('pagehide', () => {
  if (state.ws) state.ws.close(1000);
  for (const peer of state.peers.values()) peer.pc.close();
});

if (state.room && state.name) start();
else showJoinForm();
