// The peertalk web client: the main protocol of signal/PROTOCOL.md, spoken by a page.
// One WebSocket to the relay that served this page; one RTCPeerConnection per member, with
// the `chat` DataChannel carrying JSON envelopes that are acknowledged, exactly as the
// terminal client does. Text from peers only ever reaches the page as text nodes.
'use strict';

const PROTOCOL_VERSION = 1;
const MAX_ENVELOPE_BYTES = 65536;
const CHAT_LABEL = 'chat';
// Files (PROTOCOL.md, "Between peers"): one channel per transfer, labelled file:<id>.
const FILE_PREFIX = 'file:';
const CHUNK = 64 * 1024;
// Sending pauses while this much waits in the channel's buffer.
const HIGH_WATER = 1024 * 1024;
// A page keeps a received file in memory to hash it (Web Crypto has no streaming hash),
// so larger offers are declined.
const MAX_PAGE_FILE = 1024 ** 3;
// A transfer whose channel closed waits this long for the connection to be replaced.
const RESUME_LIMIT_MS = 45000;

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
  certificate: null, // this browser's lasting DTLS certificate, when IndexedDB keeps one
  fingerprint: null,
  nextFile: 1,
  sending: new Map(), // our file id -> { id, file, sha256, transfers: Map(peer id -> transfer) }
  receiving: new Map(), // `${peer id}/${id}` -> transfer
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
  const follow = atNewest();
  $('messages').append(li);
  if (follow) scrollToNewest();
  else $('newer').hidden = false;
  return li;
}

// The conversation follows the newest line unless the reader has scrolled up to read;
// then a button says that newer lines wait below. A window resized (a phone turned, a
// keyboard opened) rewraps the lines, so it keeps following if it was before.
let following = true;

function atNewest() {
  const log = $('messages');
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

function scrollToNewest() {
  const log = $('messages');
  log.scrollTop = log.scrollHeight;
  following = true;
  $('newer').hidden = true;
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
  if (peer.safety) {
    peer.item.dataset.safety = peer.safety;
    peer.item.title = `safety words: ${withEmoji(peer.safety)}`;
  }
  peer.item.querySelector('.name').textContent = peer.name;
  peer.item.querySelector('.state').textContent = peer.state + (peer.audio ? ' ♪' : '');
  $('members-toggle').textContent = `Members (${state.peers.size})`;
}

// On a phone the members are a panel over the conversation, one tap from the header.
function showPeople(open) {
  $('chat').dataset.people = open ? 'open' : 'closed';
  $('members-toggle').setAttribute('aria-expanded', String(open));
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
  $('members-toggle').hidden = false;
  if (!back) {
    $('compose').elements.text.focus();
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
    setRelay('asking', 'relay: asks for the room secret');
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
  const pc = new RTCPeerConnection(state.certificate ? { iceServers: [], certificates: [state.certificate] } : { iceServers: [] });
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
    if (peer.pc === pc && channel.label.startsWith(FILE_PREFIX)) onFileChannel(peer, channel);
    else if (peer.pc === pc && !peer.channel && channel.label === CHAT_LABEL) adoptChannel(peer, channel);
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
  $('members-toggle').textContent = `Members (${state.peers.size})`;
  settleWithout(peer.id);
  for (const t of transfersWith(peer.id)) endTransfer(t, 'failed', `${peer.name} left`);
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
    await learnFingerprint(peer, description.sdp);
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
    say(peer.safety ? `connected to ${peer.name}; safety words: ${withEmoji(peer.safety)}` : `connected to ${peer.name}`);
    sendHeld(peer, reopened);
    filesOnOpen(peer, reopened);
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

// ---- Identity and safety words -------------------------------------------------------------
// As the terminal client does (PROTOCOL.md, "Safety words"): one lasting certificate, and
// seven words from both fingerprints and the room that both ends see alike unless someone
// is in the middle. The table is src/app/trust.rs's SYMBOLS.
const SYMBOLS = [
  ['🐶', 'dog'],
  ['🐱', 'cat'],
  ['🦁', 'lion'],
  ['🐎', 'horse'],
  ['🦄', 'unicorn'],
  ['🐷', 'pig'],
  ['🐘', 'elephant'],
  ['🐰', 'rabbit'],
  ['🐼', 'panda'],
  ['🐓', 'rooster'],
  ['🐧', 'penguin'],
  ['🐢', 'turtle'],
  ['🐟', 'fish'],
  ['🐙', 'octopus'],
  ['🦋', 'butterfly'],
  ['🌷', 'flower'],
  ['🌳', 'tree'],
  ['🌵', 'cactus'],
  ['🍄', 'mushroom'],
  ['🌏', 'globe'],
  ['🌙', 'moon'],
  ['🌈', 'rainbow'],
  ['🔥', 'fire'],
  ['🍌', 'banana'],
  ['🍎', 'apple'],
  ['🍓', 'strawberry'],
  ['🌽', 'corn'],
  ['🍕', 'pizza'],
  ['🎂', 'cake'],
  ['🧲', 'magnet'],
  ['😀', 'smiley'],
  ['🤖', 'robot'],
  ['🎩', 'hat'],
  ['👓', 'glasses'],
  ['🔧', 'spanner'],
  ['🎅', 'santa'],
  ['👍', 'thumbs-up'],
  ['🌂', 'umbrella'],
  ['⌛', 'hourglass'],
  ['⏰', 'clock'],
  ['🎁', 'gift'],
  ['💡', 'bulb'],
  ['📕', 'book'],
  ['🎈', 'balloon'],
  ['📎', 'paperclip'],
  ['🧦', 'socks'],
  ['🔒', 'lock'],
  ['🔑', 'key'],
  ['🔨', 'hammer'],
  ['📞', 'telephone'],
  ['🏁', 'flag'],
  ['🚂', 'train'],
  ['🚲', 'bicycle'],
  ['🛶', 'canoe'],
  ['🚀', 'rocket'],
  ['🏆', 'trophy'],
  ['⚽', 'ball'],
  ['🎸', 'guitar'],
  ['🎺', 'trumpet'],
  ['🔔', 'bell'],
  ['⚓', 'anchor'],
  ['🎧', 'headphones'],
  ['📁', 'folder'],
  ['📌', 'pin'],
];

function idbRequest(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// The certificate kept in IndexedDB, or a new one kept there (a year, the longest browsers allow).
async function loadCertificate() {
  try {
    const open = indexedDB.open('peertalk', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('identity');
    const db = await idbRequest(open);
    let cert = await idbRequest(db.transaction('identity').objectStore('identity').get('certificate'));
    if (!cert || cert.expires < Date.now() + 86400000) {
      cert = await RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256', expires: 365 * 86400000 });
      await idbRequest(db.transaction('identity', 'readwrite').objectStore('identity').put(cert, 'certificate'));
    }
    return cert;
  } catch (e) {
    console.warn('no lasting identity here; each connection gets its own certificate', e);
    return null;
  }
}

function sdpFingerprint(sdp) {
  const match = /^a=fingerprint:sha-256 (\S+)/im.exec(sdp || '');
  return match ? match[1].toUpperCase() : null;
}

async function safetyWords(room, a, b) {
  const [low, high] = a <= b ? [a, b] : [b, a];
  const encoder = new TextEncoder();
  const bytes = ['peertalk safety words v1', room, low, high].flatMap((part) => [...encoder.encode(part), 0]);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes)));
  const bits = [...digest.slice(0, 6)].map((x) => x.toString(2).padStart(8, '0')).join('');
  return Array.from({ length: 7 }, (_, i) => SYMBOLS[parseInt(bits.slice(6 * i, 6 * i + 6), 2)][1]).join(' ');
}

function withEmoji(words) {
  return words.split(' ').map((w) => `${(SYMBOLS.find(([, word]) => word === w) || ['', ''])[0]} ${w}`).join('  ');
}

// The peer's description named its certificate: work out the words with it.
async function learnFingerprint(peer, sdp) {
  const theirs = sdpFingerprint(sdp);
  if (!theirs || theirs === peer.fingerprint) return;
  peer.fingerprint = theirs;
  peer.safety = state.fingerprint ? await safetyWords(state.room, state.fingerprint, theirs) : null;
  renderMember(peer);
}

// ---- Files -------------------------------------------------------------------------------

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function sha256Of(blob) {
  return hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
}

function humanSize(bytes) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${size.toFixed(1)} ${units[unit]}`;
}

// The same rules as the terminal client (src/transfer/names.rs): a name a peer chose
// never names a path, a device or a hidden file, and shows as itself.
const RESERVED = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])$/i;
function safeName(name) {
  let clean = String(name).replace(/[/\\\p{Cc}\u202A-\u202E\u2066-\u2069]/gu, '_');
  clean = clean.trim().replace(/^\.+/, '').replace(/[. ]+$/, '');
  if (clean === '') clean = 'file';
  if (RESERVED.test(clean.split('.')[0].trimEnd())) clean = `_${clean}`;
  return [...clean].slice(0, 200).join('');
}

function transfersWith(peerId) {
  const found = [...state.receiving.values()].filter((t) => t.peer.id === peerId);
  for (const out of state.sending.values()) {
    const t = out.transfers.get(peerId);
    if (t) found.push(t);
  }
  return found.filter((t) => !t.ended);
}

// One line per transfer, with a progress bar and what can be done about it.
function transferLine(t, text) {
  const li = line([['time', time(Date.now())], ['text', text]], {
    class: 'system transfer',
    'data-testid': 'transfer',
    'data-direction': t.incoming ? 'in' : 'out',
    'data-name': t.name,
    'data-peer': t.peer.name,
    'data-state': t.state,
  });
  t.bar = document.createElement('progress');
  t.bar.setAttribute('aria-label', `${t.incoming ? 'receiving' : 'sending'} ${t.name}`);
  t.bar.max = t.size || 1;
  t.bar.value = 0;
  t.actions = document.createElement('span');
  t.actions.className = 'actions';
  li.append(t.bar, t.actions);
  t.line = li;
  renderTransfer(t);
}

function button(label, testid, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.setAttribute('data-testid', testid);
  b.onclick = onclick;
  return b;
}

function renderTransfer(t) {
  if (!t.line) return;
  t.line.dataset.state = t.state;
  t.bar.value = t.done;
  t.actions.replaceChildren();
  if (t.state === 'asking') {
    t.actions.append(button('Accept', 'file-accept', () => acceptFile(t)), button('Decline', 'file-decline', () => declineFile(t)));
  } else if (!t.ended) {
    t.actions.append(button('Cancel', 'file-cancel', () => cancelFile(t)));
  }
  if (t.url) {
    const a = document.createElement('a');
    a.href = t.url;
    a.download = t.name;
    a.textContent = `save ${t.name}`;
    a.setAttribute('data-testid', 'file-link');
    t.actions.append(a);
  }
  if (t.reason) {
    const why = document.createElement('span');
    why.className = 'why';
    why.textContent = t.reason;
    t.actions.append(why);
  }
}

// The channel closed before the end: wait for a new one (the connection being replaced).
function awaitResume(t, channel) {
  if (t.ended || t.channel !== channel) return;
  t.state = 'interrupted';
  renderTransfer(t);
  setTimeout(() => {
    if (!t.ended && t.channel === channel) endTransfer(t, 'failed', `the connection did not come back within ${RESUME_LIMIT_MS / 1000} s`);
  }, RESUME_LIMIT_MS);
}

function control(t, message) {
  if (t.channel && t.channel.readyState === 'open') t.channel.send(JSON.stringify(message));
}

function endTransfer(t, how, reason) {
  if (t.ended) return;
  t.ended = true;
  t.state = how;
  t.reason = reason || '';
  if (t.incoming) t.chunks = [];
  renderTransfer(t);
  if (how !== 'done') say(`${t.name} ${t.incoming ? 'from' : 'to'} ${t.peer.name}: ${how}${reason ? ` (${reason})` : ''}`, how === 'failed');
}

// -- Receiving

function onFileChannel(peer, channel) {
  const id = Number(channel.label.slice(FILE_PREFIX.length));
  if (!Number.isSafeInteger(id)) {
    channel.close();
    return;
  }
  channel.binaryType = 'arraybuffer';
  const key = `${peer.id}/${id}`;
  channel.onclose = () => {
    const t = state.receiving.get(key);
    if (t) awaitResume(t, channel);
  };
  channel.onmessage = ({ data }) => {
    const t = state.receiving.get(key);
    if (typeof data !== 'string') {
      if (t && t.channel === channel) onChunk(t, data);
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    onIncomingControl(peer, key, channel, message);
  };
}

function onIncomingControl(peer, key, channel, message) {
  let t = state.receiving.get(key);
  if (message.type === 'offer') {
    const valid = typeof message.name === 'string' && Number.isSafeInteger(message.size) && message.size >= 0
      && /^[0-9a-f]{64}$/.test(message.sha256 || '');
    if (!valid) {
      channel.send(JSON.stringify({ type: 'failed', reason: 'the offer is malformed' }));
      return;
    }
    if (t && !t.ended) {
      // The same transfer on a new channel (the connection was replaced): go on from here.
      t.channel = channel;
      if (t.accepted) {
        t.state = 'receiving';
        control(t, { type: 'accept', offset: t.received });
      }
      renderTransfer(t);
      return;
    }
    t = {
      incoming: true, peer, key, channel, name: safeName(message.name), size: message.size,
      sha256: message.sha256, mime: message.mime || '', received: 0, done: 0, chunks: [], accepted: false,
      state: 'asking', ended: false,
    };
    state.receiving.set(key, t);
    transferLine(t, `${peer.name} offers ${t.name} (${humanSize(t.size)})`);
    if (t.size > MAX_PAGE_FILE) declineFile(t, `it is ${humanSize(t.size)}, over the ${humanSize(MAX_PAGE_FILE)} a page can check in memory`);
    return;
  }
  if (!t || t.channel !== channel) return;
  if (message.type === 'end') finishReceiving(t);
  else if (message.type === 'cancel') endTransfer(t, 'cancelled', message.reason);
  else if (message.type === 'failed') endTransfer(t, 'failed', message.reason);
}

function acceptFile(t) {
  if (t.ended || t.accepted) return;
  t.accepted = true;
  t.state = 'receiving';
  control(t, { type: 'accept', offset: t.received });
  renderTransfer(t);
}

function declineFile(t, reason = `${state.name} declined it`) {
  if (t.ended) return;
  control(t, { type: 'decline', reason });
  endTransfer(t, 'declined', reason);
}

function cancelFile(t) {
  if (t.ended) return;
  const reason = `${state.name} cancelled it`;
  control(t, { type: 'cancel', reason });
  endTransfer(t, 'cancelled', reason);
}

function failTransfer(t, reason) {
  control(t, { type: 'failed', reason });
  endTransfer(t, 'failed', reason);
}

function onChunk(t, data) {
  if (t.ended || !t.accepted) return;
  if (t.received + data.byteLength > t.size) {
    failTransfer(t, `the sender sent more than the ${t.size} bytes it announced`);
    return;
  }
  t.chunks.push(data);
  t.received += data.byteLength;
  t.done = t.received;
  if (t.received === t.size || t.chunks.length % 16 === 0) renderTransfer(t);
}

async function finishReceiving(t) {
  if (t.received !== t.size) {
    failTransfer(t, `the sender ended after ${t.received} of the ${t.size} bytes it announced`);
    return;
  }
  const blob = new Blob(t.chunks, { type: /^[\w.+-]+\/[\w.+-]+$/.test(t.mime) ? t.mime : 'application/octet-stream' });
  t.chunks = [];
  const sha256 = await sha256Of(blob);
  if (sha256 !== t.sha256) {
    failTransfer(t, `the file's SHA-256 is ${sha256}, not the ${t.sha256} the sender announced; it was not kept`);
    return;
  }
  t.blob = blob;
  t.url = URL.createObjectURL(blob);
  control(t, { type: 'done', sha256 });
  endTransfer(t, 'done');
  say(`received ${t.name} from ${t.peer.name} (${humanSize(t.size)}, SHA-256 checked)`);
}

// -- Sending

async function sendFiles(files) {
  for (const file of files) await sendFile(file);
}

async function sendFile(file) {
  const peers = openPeers();
  if (peers.length === 0) {
    say(`nobody is connected to send ${file.name} to`, true);
    return;
  }
  const id = state.nextFile;
  state.nextFile += 1;
  const out = { id, file, sha256: await sha256Of(file), transfers: new Map() };
  state.sending.set(id, out);
  for (const peer of peers) offerFile(out, peer);
}

function offerFile(out, peer) {
  let t = out.transfers.get(peer.id);
  if (!t) {
    t = {
      incoming: false, peer, out, name: out.file.name, size: out.file.size, done: 0, sent: 0,
      state: 'offered', ended: false,
    };
    out.transfers.set(peer.id, t);
    transferLine(t, `offering ${t.name} (${humanSize(t.size)}) to ${peer.name}`);
  }
  const channel = peer.pc.createDataChannel(FILE_PREFIX + out.id);
  channel.binaryType = 'arraybuffer';
  channel.bufferedAmountLowThreshold = HIGH_WATER / 4;
  t.channel = channel;
  channel.addEventListener('close', () => awaitResume(t, channel));
  channel.onopen = () => {
    const offer = { type: 'offer', name: out.file.name, size: out.file.size, sha256: out.sha256 };
    if (out.file.type) offer.mime = out.file.type;
    channel.send(JSON.stringify(offer));
  };
  channel.onmessage = ({ data }) => {
    if (typeof data !== 'string' || t.channel !== channel) return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === 'accept' && Number.isSafeInteger(message.offset)) streamFile(t, channel, message.offset);
    else if (message.type === 'done') {
      t.done = t.size;
      endTransfer(t, message.sha256 === out.sha256 ? 'done' : 'failed', message.sha256 === out.sha256 ? '' : 'the receiver reported another hash');
      if (t.state === 'done') say(`${peer.name} has ${t.name} (SHA-256 checked)`);
    } else if (message.type === 'decline') endTransfer(t, 'declined', message.reason);
    else if (message.type === 'cancel') endTransfer(t, 'cancelled', message.reason);
    else if (message.type === 'failed') endTransfer(t, 'failed', message.reason);
  };
}

async function streamFile(t, channel, offset) {
  t.state = 'sending';
  renderTransfer(t);
  let at = offset;
  while (at < t.size && !t.ended && t.channel === channel && channel.readyState === 'open') {
    if (channel.bufferedAmount > HIGH_WATER) {
      await new Promise((resolve) => {
        channel.addEventListener('bufferedamountlow', resolve, { once: true });
        channel.addEventListener('close', resolve, { once: true });
      });
      continue;
    }
    const chunk = await t.out.file.slice(at, at + CHUNK).arrayBuffer();
    channel.send(chunk);
    at += chunk.byteLength;
    t.sent += chunk.byteLength;
    t.done = at;
    if ((at / CHUNK) % 16 === 0) renderTransfer(t);
  }
  if (at >= t.size && !t.ended && channel.readyState === 'open') channel.send(JSON.stringify({ type: 'end' }));
  renderTransfer(t);
}

// A member's chat channel opened again on a new connection: unfinished transfers to it
// go on, on new channels, from where its receiver is.
function filesOnOpen(peer, reopened) {
  if (!reopened) return;
  for (const out of state.sending.values()) {
    const t = out.transfers.get(peer.id);
    if (t && !t.ended) {
      t.peer = peer;
      offerFile(out, peer);
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
    button.setAttribute('aria-pressed', 'false');
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
  button.setAttribute('aria-pressed', 'true');
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

async function start() {
  $('where').textContent = `#${state.room} as ${state.name}`;
  $('join').hidden = true;
  state.certificate = await loadCertificate();
  const fingerprint = state.certificate && state.certificate.getFingerprints().find((f) => f.algorithm === 'sha-256');
  state.fingerprint = fingerprint ? fingerprint.value.toUpperCase() : null;
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
  if (send(text)) {
    input.value = '';
    fitCompose();
    scrollToNewest();
  }
});

$('compose').elements.text.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('compose').requestSubmit();
  }
});

// The message box grows with what is typed (up to the height the style allows).
function fitCompose() {
  const input = $('compose').elements.text;
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight + 2}px`;
}
$('compose').elements.text.addEventListener('input', fitCompose);

$('messages').addEventListener('scroll', () => {
  following = atNewest();
  if (following) $('newer').hidden = true;
});
new ResizeObserver(() => {
  if (following) scrollToNewest();
}).observe($('messages'));
$('newer').addEventListener('click', scrollToNewest);

$('members-toggle').addEventListener('click', () => showPeople($('chat').dataset.people !== 'open'));
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && $('chat').dataset.people === 'open') {
    showPeople(false);
    $('members-toggle').focus();
  }
});

$('call').addEventListener('click', toggleCall);

$('attach').addEventListener('click', () => $('file').click());
$('file').addEventListener('change', (event) => {
  const files = [...event.target.files];
  event.target.value = '';
  sendFiles(files);
});

// Leaving the page leaves the room at once, rather than when the relay notices.
window.addEventListener('pagehide', () => {
  if (state.ws) state.ws.close(1000);
  for (const peer of state.peers.values()) peer.pc.close();
});

if (state.room && state.name) start();
else showJoinForm();
