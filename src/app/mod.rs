//! The chat's state and its one update function: [`Event`]s in, [`Effect`]s out.
//!
//! Nothing here does I/O or looks at a clock; the session loop feeds events from the
//! relay, the peer connections and the user, and carries out the effects. That makes
//! every rule (who offers, what counts as delivered, when a script is done) a plain
//! function to test.
//!
//! Connecting without glare: the peer that joins later offers to everyone already in
//! the room; a member answers the offers of newcomers. The relay's welcome and
//! peer-joined messages tell each side which it is. Later offers (a call's track, an ICE
//! restart) may come from either side and cross; the peer module settles those.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use peertalk_signal::proto::{ClientMessage, ErrorCode, PeerId, PeerInfo, Signal};

use crate::audio::AudioEvent;
use crate::envelope::{Envelope, MAX_ENVELOPE_BYTES};
use crate::exit::Outcome;
use crate::peer::{LinkState, Path, PeerCommand, PeerEvent};
use crate::transfer::{TransferCommand, TransferEvent};

mod call;
mod files;
mod trust;

pub use call::{AudioAction, CallState};
pub use files::{AcceptPolicy, FileSettings, FileTrouble, human_size};
pub use trust::{connected_suffix, safety_words, with_emoji};

/// Said of a peer that is not peertalk when its channel opens.
pub const PLAIN_PEER: &str = "; it is not peertalk: plain text, and it sends no acknowledgements";

/// Why a member missed messages when its connection never opened.
const NEVER_REACHED: &str = "could not be reached";

/// How many unacknowledged messages may be in flight before input is paused.
const WINDOW_MESSAGES: usize = 1024;
/// How many unacknowledged bytes may be in flight before input is paused. It bounds a bulk
/// sender's memory: each message is held twice until acknowledged, here for resending and
/// in the DataChannel's send buffer. At 8 MiB a sender whose receiver fell behind peaked
/// at 29-33 MiB; at 4 MiB at 18-25 MiB, with the same throughput on loopback.
const WINDOW_BYTES: usize = 4 * 1024 * 1024;

/// Everything the app reacts to.
#[derive(Debug)]
pub enum Event {
    /// The relay let us in.
    Welcome {
        me: PeerId,
        peers: Vec<PeerInfo>,
    },
    /// Someone entered the room; `offer` says whether we make the offer to them. `page`:
    /// it is not peertalk (a classic page), so we open a plain channel when we offer. An
    /// offer to a page with `offer` set is a guess that one is there: classic rooms have
    /// no presence, so that peer is announced only once its channel opens.
    PeerJoined {
        peer: PeerInfo,
        offer: bool,
        page: bool,
    },
    PeerLeft(PeerId),
    /// Negotiation data from a peer, through the relay.
    RelaySignal {
        from: PeerId,
        signal: Signal,
    },
    /// The relay refused something we sent.
    RelayError {
        code: ErrorCode,
        message: String,
    },
    /// The relay connection is gone; existing peer connections carry on.
    RelayLost {
        reason: String,
    },
    /// Attempt `attempt` to reach the relay again starts after `delay`.
    RelayRetrying {
        attempt: u32,
        delay: std::time::Duration,
    },
    /// Back in the room after reconnecting to the relay.
    RelayRejoined {
        me: PeerId,
        peers: Vec<PeerInfo>,
    },
    /// Something happened on the connection to a peer.
    Peer {
        id: PeerId,
        event: PeerEvent,
    },
    /// The user typed (or a script piped) a message; `ts` is the wall clock in ms.
    Input {
        text: String,
        ts: u64,
    },
    /// A line of input could not be used as a message (not UTF-8, say).
    InputInvalid {
        reason: String,
    },
    /// No more input will come.
    InputClosed,
    /// A message for one member only (`/msg NAME TEXT`).
    Private {
        to: String,
        text: String,
        ts: u64,
    },
    /// The user wants to be called something else from now on.
    Rename(String),
    /// `/call`: send our audio to the peers.
    Call,
    /// `/hangup`: stop sending it.
    Hangup,
    /// `/mute`: toggle sending silence instead.
    Mute,
    /// The audio engine reported something.
    Audio(AudioEvent),
    /// `/send [NAME] PATH`: send a file to every member, or to the one called `to`.
    SendFile {
        to: Option<String>,
        path: PathBuf,
    },
    /// `/accept` or `/decline` a file offer: number `file`, or the oldest waiting.
    AnswerOffer {
        file: Option<u64>,
        accept: bool,
    },
    /// `/cancel` file transfer `file`, or all of them.
    CancelFile(Option<u64>),
    /// A file transfer reported something.
    Transfer(TransferEvent),
    /// `/verify NAME`: show the safety words with that member; with `confirm` (`/verify
    /// NAME yes`), mark it verified and remember its certificate.
    Verify {
        name: String,
        confirm: bool,
    },
    /// The `--timeout` ran out.
    TimedOut,
}

/// Everything the app asks the outside world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send to the relay.
    Relay(ClientMessage),
    /// Start a connection to a peer; `offer` says whether we make the offer.
    Dial { peer: PeerId, offer: bool, page: bool },
    /// Tell a peer connection what to do.
    Peer { id: PeerId, command: PeerCommand },
    /// Tell the audio engine what to do.
    Audio(AudioAction),
    /// Tell the file transfers what to do.
    Transfer(TransferCommand),
    /// Remember that the member called `name` has this certificate (known peers).
    Remember { name: String, fingerprint: String },
    /// Tell the user.
    Show(Notice),
    /// Stop, for this reason.
    Exit(Outcome),
}

/// What the user is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Joined {
        room: String,
        me: PeerId,
        peers: Vec<PeerInfo>,
    },
    PeerJoined {
        peer: PeerId,
        name: String,
    },
    PeerLeft {
        peer: PeerId,
        name: String,
    },
    /// The chat channel to a peer is open. `plain`: the peer is not peertalk, so messages
    /// go as plain text and are never acknowledged. `safety`: the safety words with it,
    /// when both certificates are known; `verified`: its certificate is the one verified
    /// for its name before.
    Connected {
        peer: PeerId,
        name: String,
        path: Option<Path>,
        plain: bool,
        safety: Option<String>,
        verified: bool,
    },
    /// The safety words with a member (`/verify`), its certificate's fingerprint, and
    /// whether it is verified.
    Safety {
        peer: PeerId,
        name: String,
        words: String,
        fingerprint: String,
        verified: bool,
    },
    /// A member came with a certificate other than the one verified for its name:
    /// someone may be in the middle. `refused` with `--strict-identity`.
    IdentityChanged {
        peer: PeerId,
        name: String,
        known: String,
        now: String,
        refused: bool,
    },
    /// The connection to a peer changed state in a way worth saying.
    Link {
        peer: PeerId,
        name: String,
        state: LinkState,
        detail: Option<String>,
    },
    Message {
        peer: PeerId,
        from: String,
        id: u64,
        ts: u64,
        text: String,
        /// Sent to us alone.
        private: bool,
    },
    /// Our own message, accepted for sending under `id`; `to` the one member it is for,
    /// when it is private.
    Sent {
        id: u64,
        ts: u64,
        text: String,
        to: Option<String>,
    },
    /// We are now called `name`.
    Renamed {
        name: String,
    },
    /// Member `to` acknowledged our message `id`: `acked` of the `of` members it is for
    /// have it now.
    Delivered {
        id: u64,
        peer: PeerId,
        to: String,
        acked: usize,
        of: usize,
    },
    /// Message `id` is settled: every member it was for acknowledged it (`delivered`), has
    /// it in its SCTP stack without acknowledging (`transmitted`, a page), or went away
    /// first (`missed`). Names, in the order it happened.
    Settled {
        id: u64,
        delivered: Vec<String>,
        transmitted: Vec<String>,
        missed: Vec<String>,
    },
    Undelivered {
        ids: Vec<u64>,
        peer: PeerId,
        to: String,
    },
    /// Our message `id` reached the SCTP stack of a peer that sends no acknowledgements
    /// (a page): sent, but not confirmed read.
    Transmitted {
        id: u64,
        peer: PeerId,
        to: String,
    },
    RelayError {
        code: ErrorCode,
        message: String,
    },
    RelayLost {
        reason: String,
    },
    /// Reconnecting to the relay: attempt `attempt` starts in `delay_ms`.
    RelayRetrying {
        attempt: u32,
        delay_ms: u64,
    },
    /// Back in the room; `resumed` says whether the relay kept our id.
    RelayBack {
        me: PeerId,
        resumed: bool,
        peers: Vec<PeerInfo>,
    },
    InputRejected {
        reason: String,
    },
    /// Something odd that the user may want to know, e.g. an unreadable message.
    Warning {
        text: String,
    },
    /// No relay answered at the default address, so this client runs one; browsers join
    /// the room at `page`, the relay's web client.
    HostingRelay {
        url: String,
        page: String,
    },
    /// Our side of the call changed.
    Call(CallState),
    Muted {
        muted: bool,
    },
    /// A peer started or stopped sending us audio.
    PeerAudio {
        peer: PeerId,
        name: String,
        receiving: bool,
    },
    /// How loud a peer's audio was over the last tenth of a second, in dBFS.
    AudioLevel {
        peer: PeerId,
        dbfs: f32,
    },
    /// A file offered: to us (`incoming`, by `who`), or by us to `who`. `ask`: the user is
    /// to accept or decline it, by its number `file`.
    FileOffer {
        file: u64,
        incoming: bool,
        peer: PeerId,
        who: String,
        name: String,
        size: u64,
        sha256: String,
        ask: bool,
    },
    /// `bytes` of a transfer are through, at `rate` bytes a second lately.
    FileProgress {
        file: u64,
        incoming: bool,
        peer: PeerId,
        who: String,
        name: String,
        bytes: u64,
        size: u64,
        rate: f64,
    },
    /// A transfer goes on from byte `offset` after its connection was replaced.
    FileResumed {
        file: u64,
        incoming: bool,
        peer: PeerId,
        who: String,
        name: String,
        offset: u64,
        size: u64,
    },
    /// The receiver has the file and its hash matched; `path` where it was kept (received
    /// files); `sent` the bytes put on the wire for it, re-sent ones included (sent files).
    FileDone {
        file: u64,
        incoming: bool,
        peer: PeerId,
        who: String,
        name: String,
        size: u64,
        sha256: String,
        path: Option<String>,
        sent: u64,
    },
    /// A transfer was declined, cancelled or failed, and why. No peer when the file could
    /// not be read before it was offered.
    FileFailed {
        file: u64,
        incoming: bool,
        peer: Option<PeerId>,
        who: Option<String>,
        name: String,
        trouble: FileTrouble,
        reason: String,
    },
}

/// Settings the app needs from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub room: String,
    /// Exit after this many messages have been received.
    pub expect: Option<usize>,
    /// Scripts: a failure that makes the goal unreachable ends the run with its code.
    pub strict: bool,
    /// Every path goes through TURN (`--relay-only`), which a failure message should say.
    pub relay_only: bool,
    /// Start the call at once (`--audio`).
    pub call_at_start: bool,
    /// The call sends a file (`--audio-in`): a script is not done until it has been sent.
    pub audio_from_file: bool,
    /// Every message goes to the member of this name only (`--to`).
    pub to: Option<String>,
    pub files: FileSettings,
    /// Our certificate's fingerprint (`AB:CD:…`), for the safety words.
    pub identity: Option<String>,
    /// Known peers: certificate fingerprints verified before, by lower-case name.
    pub known: BTreeMap<String, String>,
    /// Refuse a known name with another certificate (`--strict-identity`).
    pub strict_identity: bool,
}

#[derive(Debug)]
struct Peer {
    name: String,
    link: Link,
    /// False once the relay said the peer left; its connection is then being closed.
    in_room: bool,
    /// Why the connection failed, if it did.
    failure: Option<String>,
    path: Option<Path>,
    /// The next chat id we expect from this peer; lower ids are duplicates.
    next_id: u64,
    /// The path broke after the channel opened, and has not been restored yet.
    interrupted: bool,
    /// The chat channel opened at least once: a later open is a recovered connection,
    /// and what it did not acknowledge is sent again.
    opened: bool,
    /// Back in the room while its old connection was closing: dial again (offering if
    /// true) once that one has closed.
    redial: Option<bool>,
    /// The peer sends us audio.
    receiving_audio: bool,
    /// The chat channel carries plain text: the peer is not peertalk.
    plain: bool,
    /// We offered to a page that may not be there (see [`Event::PeerJoined`]); it is not
    /// announced until its channel opens.
    speculative: bool,
    /// The certificate fingerprint its description announced.
    fingerprint: Option<String>,
    /// That certificate is the one verified for its name.
    verified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Negotiating; nothing can be sent yet.
    Connecting,
    /// The chat channel is open.
    Open,
    /// Closed or failed; nothing more will arrive on it.
    Gone,
}

#[derive(Debug)]
struct Outgoing {
    payload: Arc<str>,
    /// Members it is for that have neither acknowledged it nor gone away. Those whose
    /// connection is still opening get it when it opens.
    awaiting: BTreeSet<PeerId>,
    /// Of those, the ones it has been handed to.
    sent_to: BTreeSet<PeerId>,
    /// False until it goes out to somebody: until then, members who join get it too.
    sent: bool,
    /// The one member it is for, by name, when it is private.
    for_name: Option<String>,
    delivered: Vec<String>,
    transmitted: Vec<String>,
    missed: Vec<String>,
}

impl Outgoing {
    /// Members it is for, all told.
    fn of(&self) -> usize {
        self.awaiting.len() + self.delivered.len() + self.transmitted.len() + self.missed.len()
    }
}

/// The chat.
#[derive(Debug)]
pub struct App {
    settings: Settings,
    /// Our peer id at the relay, once welcomed.
    me: Option<PeerId>,
    peers: BTreeMap<PeerId, Peer>,
    next_id: u64,
    outbox: BTreeMap<u64, Outgoing>,
    in_flight_bytes: usize,
    received: usize,
    rejected: usize,
    input_closed: bool,
    /// Members who went away before acknowledging messages to them, with those ids: a
    /// script that is otherwise done fails for them (exit 7).
    missed: BTreeMap<String, (&'static str, Vec<u64>)>,
    ever_saw_peer: bool,
    exited: bool,
    call: call::Call,
    files: files::Files,
}

impl App {
    #[must_use]
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            me: None,
            peers: BTreeMap::new(),
            next_id: 1,
            outbox: BTreeMap::new(),
            in_flight_bytes: 0,
            received: 0,
            rejected: 0,
            input_closed: false,
            missed: BTreeMap::new(),
            ever_saw_peer: false,
            exited: false,
            call: call::Call::default(),
            files: files::Files::default(),
        }
    }

    /// Whether more input may be read now: false while the unacknowledged window is full,
    /// so a fast producer cannot outrun a slow peer without bound.
    #[must_use]
    pub fn wants_input(&self) -> bool {
        !self.input_closed && self.outbox.len() < WINDOW_MESSAGES && self.in_flight_bytes < WINDOW_BYTES
    }

    /// How many messages sent (or queued to send) are not yet acknowledged.
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        self.outbox.len()
    }

    /// Applies one event.
    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.exited {
            return fx;
        }
        match event {
            Event::Welcome { me, peers } => self.on_welcome(me, peers, &mut fx),
            Event::PeerJoined { peer: info, offer, page } => {
                let speculative = page && offer;
                if !speculative {
                    self.ever_saw_peer = true;
                    fx.push(Effect::Show(Notice::PeerJoined {
                        peer: info.id.clone(),
                        name: info.name.clone(),
                    }));
                }
                let id = info.id.clone();
                self.meet(info, offer, page, &mut fx);
                if !speculative {
                    self.include_in_unsent(&id);
                }
            }
            // What the peer sent before leaving may still be on its way over the
            // DataChannel; deliveries are settled when that connection reports `Closed`.
            Event::PeerLeft(id) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.in_room = false;
                    if !peer.speculative {
                        fx.push(Effect::Show(Notice::PeerLeft { peer: id.clone(), name: peer.name.clone() }));
                    }
                    if peer.link == Link::Gone {
                        self.peers.remove(&id);
                    } else {
                        fx.push(Effect::Peer { id, command: PeerCommand::Close });
                    }
                }
            }
            Event::RelaySignal { from, signal } => {
                if self.peers.contains_key(&from) {
                    fx.push(Effect::Peer { id: from, command: PeerCommand::Signal(signal) });
                }
            }
            // A signal to a peer that has just left: a normal race, and its `peer-left`
            // is on the way.
            Event::RelayError { code: ErrorCode::UnknownPeer, .. } => {}
            Event::RelayError { code, message } => {
                fx.push(Effect::Show(Notice::RelayError { code, message }))
            }
            // Connections already negotiated carry on without the relay; with none, nobody
            // new can be reached.
            Event::RelayLost { reason } => {
                fx.push(Effect::Show(Notice::RelayLost { reason: reason.clone() }));
                if self.settings.strict
                    && !self.goal_met()
                    && self.peers.values().all(|p| p.link == Link::Gone)
                {
                    self.exit(
                        Outcome::RelayUnreachable(format!(
                            "lost the relay before any peer connected ({reason})"
                        )),
                        &mut fx,
                    );
                }
            }
            Event::RelayRetrying { attempt, delay } => {
                let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                fx.push(Effect::Show(Notice::RelayRetrying { attempt, delay_ms }));
            }
            Event::RelayRejoined { me, peers } => {
                let resumed = self.me.as_ref() == Some(&me);
                fx.push(Effect::Show(Notice::RelayBack { me: me.clone(), resumed, peers: peers.clone() }));
                self.me = Some(me);
                for info in peers {
                    self.meet(info, true, false, &mut fx);
                }
            }
            Event::Peer { id, event } => self.on_peer(id, event, &mut fx),
            Event::Input { text, ts } => {
                let to = self.settings.to.clone();
                self.on_input(text, ts, to, &mut fx);
            }
            Event::Private { to, text, ts } => self.on_input(text, ts, Some(to), &mut fx),
            Event::InputInvalid { reason } => {
                self.rejected += 1;
                fx.push(Effect::Show(Notice::InputRejected { reason }));
            }
            Event::InputClosed => self.input_closed = true,
            Event::Rename(name) => match peertalk_signal::proto::validate_name(&name) {
                Ok(()) if self.name_in_use(&name) => {
                    let free = peertalk_signal::proto::first_free_name(&name, |c| self.name_in_use(c));
                    let text =
                        format!("{name} is already in this room; names are unique here (try /nick {free})");
                    fx.push(Effect::Show(Notice::Warning { text }));
                }
                Ok(()) => {
                    self.settings.name.clone_from(&name);
                    fx.push(Effect::Show(Notice::Renamed { name }));
                }
                Err(refusal) => fx.push(Effect::Show(Notice::Warning { text: refusal.message })),
            },
            Event::TimedOut => {
                let outcome = self.timeout_outcome();
                self.exit(outcome, &mut fx);
            }
            Event::Call => self.start_call(&mut fx),
            Event::Hangup => self.hang_up(&mut fx),
            Event::Mute => self.toggle_mute(&mut fx),
            Event::Audio(event) => self.on_audio(event, &mut fx),
            Event::SendFile { to, path } => self.send_file(path, to, &mut fx),
            Event::AnswerOffer { file, accept } => self.answer_offer(file, accept, &mut fx),
            Event::CancelFile(file) => self.cancel_files(file, &mut fx),
            Event::Transfer(event) => self.on_transfer(event, &mut fx),
            Event::Verify { name, confirm } => self.verify(&name, confirm, &mut fx),
        }
        self.check_done(&mut fx);
        fx
    }

    /// Whether a member of the room goes by `name` (ignoring case, as the relay compares).
    fn name_in_use(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.peers.values().any(|p| p.in_room && p.name.to_lowercase() == name)
    }

    fn on_welcome(&mut self, me: PeerId, peers: Vec<PeerInfo>, fx: &mut Vec<Effect>) {
        fx.push(Effect::Show(Notice::Joined {
            room: self.settings.room.clone(),
            me: me.clone(),
            peers: peers.clone(),
        }));
        self.me = Some(me);
        if self.settings.call_at_start && self.call == call::Call::default() {
            self.start_call(fx);
        }
        for path in std::mem::take(&mut self.settings.files.send) {
            let to = self.settings.to.clone();
            self.send_file(path, to, fx);
        }
        for info in peers {
            self.ever_saw_peer = true;
            self.meet(info, true, false, fx);
        }
    }

    /// A peer is in the room: dial it, unless a connection to it is already there (after
    /// the relay came back, the peers we chat with rejoin one by one).
    fn meet(&mut self, info: PeerInfo, offer: bool, page: bool, fx: &mut Vec<Effect>) {
        if let Some(peer) = self.peers.get_mut(&info.id) {
            peer.name = info.name;
            match (peer.link, peer.in_room) {
                (Link::Gone, _) => {
                    let name = peer.name.clone();
                    return self.dial(info.id, name, offer, page, fx);
                }
                (_, true) => return,
                // Its connection is closing because it had left: dial once that is done.
                (_, false) => {
                    peer.in_room = true;
                    peer.redial = Some(offer);
                    return;
                }
            }
        }
        self.dial(info.id, info.name, offer, page, fx);
    }

    fn dial(&mut self, id: PeerId, name: String, offer: bool, page: bool, fx: &mut Vec<Effect>) {
        // Ids below this one were already shown; a resumed peer keeps counting.
        let next_id = self.peers.get(&id).map_or(1, |p| p.next_id);
        let peer = Peer {
            name,
            link: Link::Connecting,
            in_room: true,
            failure: None,
            path: None,
            next_id,
            interrupted: false,
            opened: false,
            redial: None,
            receiving_audio: false,
            plain: page,
            speculative: page && offer,
            fingerprint: None,
            verified: false,
        };
        self.peers.insert(id.clone(), peer);
        fx.push(Effect::Dial { peer: id, offer, page });
    }

    fn on_peer(&mut self, id: PeerId, event: PeerEvent, fx: &mut Vec<Effect>) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        match event {
            PeerEvent::Signal(signal) => {
                fx.push(Effect::Relay(ClientMessage::Signal { to: id, signal }));
            }
            PeerEvent::Path(path) => peer.path = Some(path),
            PeerEvent::State(state) => {
                let name = peer.name.clone();
                if peer.opened {
                    // An open connection lost its path; the peer module restores it (ICE
                    // restart, else a new connection) or gives up within a bound.
                    let detail = match state {
                        LinkState::Disconnected | LinkState::Failed => {
                            Some("trying to restore it".to_owned())
                        }
                        LinkState::Connected if peer.interrupted => Some("restored".to_owned()),
                        _ => None,
                    };
                    peer.interrupted = matches!(state, LinkState::Disconnected | LinkState::Failed)
                        || (peer.interrupted && state != LinkState::Connected);
                    if let Some(detail) = detail {
                        fx.push(Effect::Show(Notice::Link { peer: id, name, state, detail: Some(detail) }));
                    }
                    return;
                }
                if matches!(state, LinkState::Disconnected | LinkState::Failed) {
                    fx.push(Effect::Show(Notice::Link { peer: id.clone(), name, state, detail: None }));
                }
                if state == LinkState::Failed {
                    let relay_only = self.settings.relay_only;
                    peer.failure.get_or_insert_with(|| {
                        if relay_only {
                            "no ICE candidate pair succeeded; with --relay-only every path goes through the TURN server, check that it is reachable from both sides".to_owned()
                        } else {
                            "ICE found no working path".to_owned()
                        }
                    });
                    fx.push(Effect::Peer { id, command: PeerCommand::Close });
                }
            }
            PeerEvent::Open { plain } => {
                peer.link = Link::Open;
                peer.plain = plain;
                let reopened = std::mem::replace(&mut peer.opened, true);
                let name = peer.name.clone();
                let path = peer.path.clone();
                let verified = peer.verified;
                if std::mem::take(&mut peer.speculative) {
                    self.ever_saw_peer = true;
                    fx.push(Effect::Show(Notice::PeerJoined { peer: id.clone(), name: name.clone() }));
                    self.include_in_unsent(&id);
                }
                let safety = self.safety_with(&id);
                fx.push(Effect::Show(Notice::Connected {
                    peer: id.clone(),
                    name,
                    path,
                    plain,
                    safety,
                    verified,
                }));
                self.send_held(&id, reopened, fx);
                self.files_on_open(&id, reopened, fx);
                if self.call.wanted {
                    fx.push(Effect::Peer { id, command: PeerCommand::AddAudio });
                }
            }
            PeerEvent::Message(text) => self.on_envelope(&id, &text, fx),
            PeerEvent::PlainText { text, at_ms } => self.on_plain(&id, text, at_ms, fx),
            PeerEvent::PlainBinary { len, at_ms } => {
                self.on_plain(&id, format!("[{len} bytes]"), at_ms, fx);
            }
            PeerEvent::Drained(msg_id) => {
                let Some(out) = self.outbox.get_mut(&msg_id) else { return };
                if !out.awaiting.remove(&id) {
                    return;
                }
                let to = peer.name.clone();
                out.transmitted.push(to.clone());
                fx.push(Effect::Show(Notice::Transmitted { id: msg_id, peer: id, to }));
                if out.awaiting.is_empty() {
                    self.settle(msg_id, fx);
                }
            }
            PeerEvent::SendingAudio(sending) => self.on_sending_audio(sending, fx),
            PeerEvent::ReceivingAudio(receiving) => {
                if peer.receiving_audio != receiving {
                    peer.receiving_audio = receiving;
                    let name = peer.name.clone();
                    fx.push(Effect::Show(Notice::PeerAudio { peer: id, name, receiving }));
                }
            }
            PeerEvent::Failed(reason) => {
                let name = peer.name.clone();
                fx.push(Effect::Show(Notice::Link {
                    peer: id.clone(),
                    name,
                    state: LinkState::Failed,
                    detail: Some(reason.clone()),
                }));
                peer.failure = Some(reason);
            }
            PeerEvent::Closed => self.on_closed(&id, fx),
            // The session hands transfer channels to the transfers, not to the app.
            PeerEvent::File(_) => {}
            PeerEvent::Fingerprint(fingerprint) => self.on_fingerprint(&id, fingerprint, fx),
            // A script ends at once: its room's members must know the passphrase.
            PeerEvent::PassphraseMismatch(why) => {
                let name = peer.name.clone();
                peer.failure = Some(why.clone());
                if self.settings.strict {
                    self.exit(
                        Outcome::Passphrase(format!(
                            "{name} did not prove the room's passphrase: {why}; nothing was sent to it"
                        )),
                        fx,
                    );
                }
            }
        }
    }

    /// The connection to a peer is over: messages only it was to acknowledge are lost.
    fn on_closed(&mut self, id: &PeerId, fx: &mut Vec<Effect>) {
        let Some(peer) = self.peers.get_mut(id) else { return };
        let was_open = peer.link == Link::Open;
        peer.link = Link::Gone;
        let (name, in_room, failure) = (peer.name.clone(), peer.in_room, peer.failure.clone());
        let redial = peer.redial.take();
        if in_room && failure.is_none() {
            fx.push(Effect::Show(Notice::Link {
                peer: id.clone(),
                name: name.clone(),
                state: LinkState::Closed,
                detail: None,
            }));
        }
        if !in_room {
            self.peers.remove(id);
        }
        let why = match (&failure, in_room) {
            (Some(_), _) if !was_open => NEVER_REACHED,
            (Some(_), _) => "could not be reached again",
            (_, false) => "left",
            _ => "closed the connection",
        };
        self.files_on_closed(id, &name, why, fx);
        if let Some(offer) = redial {
            // Back in the room: what it did not acknowledge goes on the new connection.
            self.dial(id.clone(), name, offer, false, fx);
            return;
        }
        // The only member we could have reached cannot be: the run ends now, with why,
        // and before its messages are written off (which would make the goal look met).
        let anyone_left = self.peers.values().any(|p| p.link != Link::Gone);
        let hopeless = self.settings.strict && !was_open && !anyone_left && !self.goal_met();
        self.forget_deliveries(id, &name, why, fx);
        if hopeless && let Some(reason) = failure {
            self.exit(
                Outcome::ConnectionFailed(format!("could not open a connection to {name}: {reason}")),
                fx,
            );
        }
    }

    fn on_envelope(&mut self, id: &PeerId, text: &str, fx: &mut Vec<Effect>) {
        let Some(peer) = self.peers.get_mut(id) else { return };
        match Envelope::parse(text) {
            Ok(Envelope::Chat { id: msg_id, from, ts, text, private }) => {
                let ack: Arc<str> = Envelope::Ack { id: msg_id }.to_json().into();
                fx.push(Effect::Peer { id: id.clone(), command: PeerCommand::Send(ack) });
                if msg_id >= peer.next_id {
                    peer.next_id = msg_id + 1;
                    self.received += 1;
                    fx.push(Effect::Show(Notice::Message {
                        peer: id.clone(),
                        from,
                        id: msg_id,
                        ts,
                        text,
                        private,
                    }));
                }
            }
            Ok(Envelope::Ack { id: msg_id }) => {
                let Some(out) = self.outbox.get_mut(&msg_id) else { return };
                if !out.awaiting.remove(id) {
                    return;
                }
                out.delivered.push(peer.name.clone());
                fx.push(Effect::Show(Notice::Delivered {
                    id: msg_id,
                    peer: id.clone(),
                    to: peer.name.clone(),
                    acked: out.delivered.len(),
                    of: out.of(),
                }));
                if out.awaiting.is_empty() {
                    self.settle(msg_id, fx);
                }
            }
            Err(e) => fx.push(Effect::Show(Notice::Warning {
                text: format!("{} sent a message this version cannot read ({e})", peer.name),
            })),
        }
    }

    /// A message from a peer that is not peertalk: shown as it came, with our own count
    /// for an id, and never acknowledged (it would not understand).
    fn on_plain(&mut self, id: &PeerId, text: String, at_ms: u64, fx: &mut Vec<Effect>) {
        let Some(peer) = self.peers.get_mut(id) else { return };
        let msg_id = peer.next_id;
        peer.next_id += 1;
        self.received += 1;
        let from = peer.name.clone();
        fx.push(Effect::Show(Notice::Message {
            peer: id.clone(),
            from,
            id: msg_id,
            ts: at_ms,
            text,
            private: false,
        }));
    }

    /// A message typed: for every member, or for the member called `to` alone.
    fn on_input(&mut self, text: String, ts: u64, to: Option<String>, fx: &mut Vec<Effect>) {
        let wanted = to.as_ref().map(|name| name.to_lowercase());
        let present = |p: &Peer| p.in_room && p.link != Link::Gone && !p.speculative;
        let is_target = |p: &Peer| wanted.as_ref().is_none_or(|name| p.name.to_lowercase() == *name);
        // A person is told at once; a script's message waits for that member to join.
        if let Some(name) = &to
            && !self.settings.strict
            && !self.peers.values().any(|p| present(p) && is_target(p))
        {
            fx.push(Effect::Show(Notice::InputRejected {
                reason: format!("nobody called {name} is in this room (/peers lists who is)"),
            }));
            return;
        }
        let private = to.is_some();
        let envelope =
            Envelope::Chat { id: self.next_id, from: self.settings.name.clone(), ts, text, private };
        let payload = envelope.to_json();
        if payload.len() > MAX_ENVELOPE_BYTES {
            self.rejected += 1;
            fx.push(Effect::Show(Notice::InputRejected {
                reason: format!(
                    "a message of {} bytes is too long to send; the limit is {MAX_ENVELOPE_BYTES} bytes once encoded",
                    payload.len()
                ),
            }));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let payload: Arc<str> = payload.into();
        // Every member in the room: now if its channel is open, else once it opens.
        let members: BTreeSet<PeerId> =
            self.peers.iter().filter(|(_, p)| present(p) && is_target(p)).map(|(id, _)| id.clone()).collect();
        let open: Vec<PeerId> =
            members.iter().filter(|id| self.peers[*id].link == Link::Open).cloned().collect();
        let out = Outgoing {
            payload,
            awaiting: members,
            sent_to: BTreeSet::new(),
            sent: false,
            for_name: to.clone(),
            delivered: Vec::new(),
            transmitted: Vec::new(),
            missed: Vec::new(),
        };
        self.in_flight_bytes += out.payload.len();
        self.outbox.insert(id, out);
        if let Envelope::Chat { text, .. } = envelope {
            fx.push(Effect::Show(Notice::Sent { id, ts, text, to }));
        }
        for target in open {
            self.send_one(id, target, fx);
        }
    }

    /// A member who joined before a message went out to anybody gets it too.
    fn include_in_unsent(&mut self, id: &PeerId) {
        let Some(name) = self.peers.get(id).map(|p| p.name.to_lowercase()) else { return };
        for out in self.outbox.values_mut().filter(|out| !out.sent) {
            if out.for_name.as_ref().is_none_or(|n| n.to_lowercase() == name) {
                out.awaiting.insert(id.clone());
            }
        }
    }

    /// Sends a member whose channel just opened, in order, the messages for it that waited
    /// for that. On a connection that replaced a broken one (`reopened`), that is
    /// everything it had not acknowledged; it drops what it already has.
    fn send_held(&mut self, id: &PeerId, reopened: bool, fx: &mut Vec<Effect>) {
        let due: Vec<u64> = self
            .outbox
            .iter()
            .filter(|(_, out)| out.awaiting.contains(id) && (reopened || !out.sent_to.contains(id)))
            .map(|(msg_id, _)| *msg_id)
            .collect();
        for msg_id in due {
            self.send_one(msg_id, id.clone(), fx);
        }
    }

    /// Sends message `msg_id` to one open peer, as an envelope or, to a peer that is not
    /// peertalk, as plain text.
    fn send_one(&mut self, msg_id: u64, to: PeerId, fx: &mut Vec<Effect>) {
        let (Some(out), Some(peer)) = (self.outbox.get_mut(&msg_id), self.peers.get(&to)) else { return };
        out.sent = true;
        // A page's text is taken back out of the envelope rather than kept twice: pages
        // are rare, and the window of unacknowledged messages is large.
        let command = if peer.plain {
            let Ok(Envelope::Chat { text, .. }) = Envelope::parse(&out.payload) else { return };
            PeerCommand::SendPlain { id: msg_id, text: text.into() }
        } else {
            PeerCommand::Send(out.payload.clone())
        };
        out.sent_to.insert(to.clone());
        fx.push(Effect::Peer { id: to, command });
    }

    /// A member is gone: what it had not acknowledged it will not. The others' deliveries
    /// go on; a script fails for it only once they are done.
    fn forget_deliveries(&mut self, id: &PeerId, name: &str, why: &'static str, fx: &mut Vec<Effect>) {
        let mut undelivered = Vec::new();
        let mut settled = Vec::new();
        for (msg_id, out) in &mut self.outbox {
            if out.awaiting.remove(id) {
                out.missed.push(name.to_owned());
                undelivered.push(*msg_id);
                if out.awaiting.is_empty() {
                    settled.push(*msg_id);
                }
            }
        }
        if !undelivered.is_empty() {
            fx.push(Effect::Show(Notice::Undelivered {
                ids: undelivered.clone(),
                peer: id.clone(),
                to: name.to_owned(),
            }));
            let entry = self.missed.entry(name.to_owned()).or_insert((why, Vec::new()));
            entry.0 = why;
            entry.1.extend(undelivered);
        }
        for msg_id in settled {
            self.settle(msg_id, fx);
        }
    }

    fn settle(&mut self, msg_id: u64, fx: &mut Vec<Effect>) {
        if let Some(out) = self.outbox.remove(&msg_id) {
            self.in_flight_bytes -= out.payload.len();
            let Outgoing { delivered, transmitted, missed, .. } = out;
            fx.push(Effect::Show(Notice::Settled { id: msg_id, delivered, transmitted, missed }));
        }
    }

    fn goal_met(&self) -> bool {
        self.input_closed
            && self.outbox.is_empty()
            && self.received >= self.settings.expect.unwrap_or(0)
            && !(self.settings.audio_from_file && self.call.wanted)
            && self.files.idle()
            && self.files.expected_in(self.settings.files.expect)
    }

    fn check_done(&mut self, fx: &mut Vec<Effect>) {
        if self.exited || !self.goal_met() {
            return;
        }
        let outcome = if !self.missed.is_empty() && self.settings.strict {
            let who: Vec<String> = self
                .missed
                .iter()
                .map(|(name, (why, ids))| {
                    format!(
                        "{name} {why} before acknowledging {} message(s) (ids {})",
                        ids.len(),
                        join_ids(ids)
                    )
                })
                .collect();
            // A member never connected is a connection that failed (6); one that went
            // away after connecting, a member who left (7).
            if self.missed.values().any(|(why, _)| *why == NEVER_REACHED) {
                Outcome::ConnectionFailed(who.join("; "))
            } else {
                Outcome::PeerLeft(who.join("; "))
            }
        } else if let Some(outcome) = self.files.outcome().filter(|_| self.settings.strict) {
            outcome
        } else if self.rejected > 0 {
            Outcome::InputRejected(format!("{} message(s) could not be sent (see above)", self.rejected))
        } else {
            Outcome::Done
        };
        self.exit(outcome, fx);
    }

    fn exit(&mut self, outcome: Outcome, fx: &mut Vec<Effect>) {
        if !self.exited {
            self.exited = true;
            fx.push(Effect::Exit(outcome));
        }
    }

    fn timeout_outcome(&self) -> Outcome {
        let room = &self.settings.room;
        if !self.ever_saw_peer {
            return Outcome::NoPeer(format!("nobody else joined room {room:?} before the timeout"));
        }
        let connecting: Vec<&str> =
            self.peers.values().filter(|p| p.link == Link::Connecting).map(|p| p.name.as_str()).collect();
        let opened = self.peers.values().any(|p| p.link == Link::Open);
        if !opened && !connecting.is_empty() {
            return Outcome::ConnectionFailed(format!(
                "{} joined room {room:?}, but no connection to them opened before the timeout",
                connecting.join(", ")
            ));
        }
        let mut missing = Vec::new();
        if !self.outbox.is_empty() {
            // Who still owes what: in a group, the members that hold the run up.
            let mut owed: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
            for (msg_id, out) in &self.outbox {
                for member in &out.awaiting {
                    let name = self.peers.get(member).map_or(member.0.as_str(), |p| p.name.as_str());
                    owed.entry(name).or_default().push(*msg_id);
                }
            }
            let by: Vec<String> =
                owed.iter().map(|(name, ids)| format!("{name} (ids {})", join_ids(ids))).collect();
            let by = if by.is_empty() { String::new() } else { format!(" by {}", by.join(", ")) };
            missing.push(format!("{} message(s) unacknowledged{by}", self.outbox.len()));
        }
        missing.extend(self.files.unfinished());
        if let Some(expect) = self.settings.expect.filter(|e| self.received < *e) {
            missing.push(format!("{} of {expect} expected message(s) received", self.received));
        }
        if !self.input_closed {
            missing.push("input still open".to_owned());
        }
        Outcome::TimedOut(format!("timed out with {}", missing.join(", ")))
    }
}

fn join_ids(ids: &[u64]) -> String {
    const SHOWN: usize = 10;
    let mut s: Vec<String> = ids.iter().take(SHOWN).map(u64::to_string).collect();
    if ids.len() > SHOWN {
        s.push(format!("and {} more", ids.len() - SHOWN));
    }
    s.join(", ")
}

/// What the app's tests share: a script's settings, as alice in #demo, and readers of
/// effects.
#[cfg(test)]
mod testing {
    use std::collections::BTreeMap;

    use super::{Effect, FileSettings, Outcome, Settings};

    pub fn settings() -> Settings {
        Settings {
            name: "alice".into(),
            room: "demo".into(),
            expect: None,
            strict: true,
            relay_only: false,
            call_at_start: false,
            audio_from_file: false,
            to: None,
            files: FileSettings::default(),
            identity: None,
            known: BTreeMap::new(),
            strict_identity: false,
        }
    }

    /// How the run ended, if these effects end it.
    pub fn exit(fx: &[Effect]) -> Option<&Outcome> {
        fx.iter().find_map(|e| match e {
            Effect::Exit(o) => Some(o),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::exit;
    use super::*;

    fn app(expect: Option<usize>) -> App {
        App::new(Settings { expect, ..testing::settings() })
    }

    fn pid(s: &str) -> PeerId {
        PeerId(s.into())
    }

    fn info(id: &str, name: &str) -> PeerInfo {
        PeerInfo { id: pid(id), name: name.into() }
    }

    fn sends(fx: &[Effect]) -> Vec<(PeerId, String)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Peer { id, command: PeerCommand::Send(p) } => Some((id.clone(), p.to_string())),
                _ => None,
            })
            .collect()
    }

    fn connected(a: &mut App, id: &str, name: &str) {
        a.update(Event::Welcome { me: pid("p9"), peers: vec![info(id, name)] });
        a.update(Event::Peer { id: pid(id), event: PeerEvent::Open { plain: false } });
    }

    #[test]
    fn nick_changes_the_name_on_later_messages_only_if_valid() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        let fx = a.update(Event::Rename("alicia".into()));
        assert!(fx.contains(&Effect::Show(Notice::Renamed { name: "alicia".into() })));
        let sent = sends(&a.update(Event::Input { text: "hi".into(), ts: 1 }));
        assert!(sent[0].1.contains("\"from\":\"alicia\""), "{sent:?}");
        let fx = a.update(Event::Rename("bad\u{1b}name".into()));
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Warning { .. }))));
    }

    #[test]
    fn later_joiner_offers_and_members_answer() {
        let mut a = app(None);
        let fx = a.update(Event::Welcome { me: pid("p2"), peers: vec![info("p1", "bob")] });
        assert!(fx.contains(&Effect::Dial { peer: pid("p1"), offer: true, page: false }));
        let fx = a.update(Event::PeerJoined { peer: info("p3", "carol"), offer: false, page: false });
        assert!(fx.contains(&Effect::Dial { peer: pid("p3"), offer: false, page: false }));
    }

    #[test]
    fn messages_typed_before_anyone_connects_are_sent_on_open() {
        let mut a = app(None);
        a.update(Event::Welcome { me: pid("p1"), peers: vec![] });
        assert!(sends(&a.update(Event::Input { text: "early".into(), ts: 1 })).is_empty());
        a.update(Event::PeerJoined { peer: info("p2", "bob"), offer: false, page: false });
        let fx = a.update(Event::Peer { id: pid("p2"), event: PeerEvent::Open { plain: false } });
        let sent = sends(&fx);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].1.contains("\"text\":\"early\""), "{sent:?}");
    }

    #[test]
    fn received_chat_is_shown_once_and_always_acknowledged() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        let chat = r#"{"type":"chat","id":1,"from":"bob","ts":5,"text":"hi"}"#;
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Message(chat.into()) });
        assert_eq!(sends(&fx), [(pid("p1"), r#"{"type":"ack","id":1}"#.to_owned())]);
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Message { text, .. }) if text == "hi")));
        let again = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Message(chat.into()) });
        assert_eq!(sends(&again).len(), 1, "a duplicate is acknowledged again");
        assert!(
            !again.iter().any(|e| matches!(e, Effect::Show(Notice::Message { .. }))),
            "but not shown again"
        );
    }

    #[test]
    fn input_end_waits_for_every_acknowledgement() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        a.update(Event::Input { text: "one".into(), ts: 1 });
        a.update(Event::Input { text: "two".into(), ts: 2 });
        assert!(exit(&a.update(Event::InputClosed)).is_none());
        let ack = |id| Event::Peer {
            id: pid("p1"),
            event: PeerEvent::Message(format!(r#"{{"type":"ack","id":{id}}}"#)),
        };
        let fx = a.update(ack(1));
        assert!(fx.contains(&Effect::Show(Notice::Delivered {
            id: 1,
            peer: pid("p1"),
            to: "bob".into(),
            acked: 1,
            of: 1
        })));
        assert!(exit(&fx).is_none());
        assert_eq!(exit(&a.update(ack(2))), Some(&Outcome::Done));
    }

    #[test]
    fn a_page_gets_plain_text_is_never_acknowledged_and_counts_as_sent_once_drained() {
        let mut a = app(Some(1));
        a.update(Event::Welcome { me: pid("me"), peers: vec![] });
        // We offer on the chance that a page waits: nobody is announced yet.
        let fx = a.update(Event::PeerJoined { peer: info("browser", "browser"), offer: true, page: true });
        assert_eq!(fx, [Effect::Dial { peer: pid("browser"), offer: true, page: true }]);
        let fx = a.update(Event::Peer { id: pid("browser"), event: PeerEvent::Open { plain: true } });
        assert!(
            fx.iter().any(|e| matches!(e, Effect::Show(Notice::PeerJoined { .. }))),
            "announced once open"
        );
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Connected { plain: true, .. }))));

        let fx = a.update(Event::Input { text: "안녕 <b>".into(), ts: 1 });
        let plain = PeerCommand::SendPlain { id: 1, text: "안녕 <b>".into() };
        assert!(fx.contains(&Effect::Peer { id: pid("browser"), command: plain }), "no envelope: {fx:?}");
        let fx = a.update(Event::Peer {
            id: pid("browser"),
            event: PeerEvent::PlainText { text: "hi".into(), at_ms: 7 },
        });
        assert!(fx.iter().all(|e| !matches!(e, Effect::Peer { .. })), "a page is never acknowledged");
        assert!(fx.contains(&Effect::Show(Notice::Message {
            peer: pid("browser"),
            from: "browser".into(),
            id: 1,
            ts: 7,
            text: "hi".into(),
            private: false
        })));
        a.update(Event::InputClosed);
        let fx = a.update(Event::Peer { id: pid("browser"), event: PeerEvent::Drained(1) });
        assert!(fx.contains(&Effect::Show(Notice::Transmitted {
            id: 1,
            peer: pid("browser"),
            to: "browser".into()
        })));
        assert_eq!(exit(&fx), Some(&Outcome::Done));
    }

    #[test]
    fn a_private_message_goes_to_its_member_only_and_says_so() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        connected(&mut a, "p2", "carol");
        let fx = a.update(Event::Private { to: "Carol".into(), text: "psst".into(), ts: 1 });
        let sent = sends(&fx);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, pid("p2"));
        assert!(sent[0].1.contains(r#""private":true"#), "{}", sent[0].1);
        assert!(fx.contains(&Effect::Show(Notice::Sent {
            id: 1,
            ts: 1,
            text: "psst".into(),
            to: Some("Carol".into())
        })));
        let chat = r#"{"type":"chat","id":1,"from":"carol","ts":2,"text":"ok","private":true}"#;
        let fx = a.update(Event::Peer { id: pid("p2"), event: PeerEvent::Message(chat.into()) });
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Message { private: true, .. }))));
    }

    #[test]
    fn a_private_message_to_nobody_here_is_refused_for_a_person_and_waits_for_a_script() {
        let mut person = app(None);
        person.settings.strict = false;
        let fx = person.update(Event::Private { to: "dave".into(), text: "hi".into(), ts: 1 });
        assert!(
            matches!(&fx[..], [Effect::Show(Notice::InputRejected { reason })] if reason.contains("nobody called dave"))
        );

        let mut script = app(None);
        script.update(Event::Welcome { me: pid("me"), peers: vec![info("p1", "bob")] });
        script.update(Event::Private { to: "dave".into(), text: "when you come".into(), ts: 1 });
        script.update(Event::PeerJoined { peer: info("p2", "dave"), offer: false, page: false });
        let fx = script.update(Event::Peer { id: pid("p1"), event: PeerEvent::Open { plain: false } });
        assert!(sends(&fx).is_empty(), "not for bob");
        let fx = script.update(Event::Peer { id: pid("p2"), event: PeerEvent::Open { plain: false } });
        assert_eq!(sends(&fx).len(), 1, "dave gets it once he is here");
    }

    #[test]
    fn nick_refuses_a_name_another_member_has() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        let fx = a.update(Event::Rename("BOB".into()));
        assert!(
            matches!(&fx[..], [Effect::Show(Notice::Warning { text })] if text.contains("try /nick BOB-2")),
            "{fx:?}"
        );
        let fx = a.update(Event::Rename("robert".into()));
        assert_eq!(fx, [Effect::Show(Notice::Renamed { name: "robert".into() })]);
    }

    #[test]
    fn a_signal_refused_because_its_peer_just_left_is_not_an_error() {
        let mut a = app(None);
        let refusal =
            |code| Event::RelayError { code, message: "There is no peer \"p9\" in room \"t\"".into() };
        assert!(a.update(refusal(ErrorCode::UnknownPeer)).is_empty());
        assert_eq!(a.update(refusal(ErrorCode::RateLimited)).len(), 1);
    }

    #[test]
    fn a_guessed_page_that_never_answered_leaves_without_a_word() {
        let mut a = app(None);
        a.update(Event::Welcome { me: pid("me"), peers: vec![] });
        a.update(Event::PeerJoined { peer: info("browser", "browser"), offer: true, page: true });
        let fx = a.update(Event::PeerLeft(pid("browser")));
        assert_eq!(fx, [Effect::Peer { id: pid("browser"), command: PeerCommand::Close }]);
        assert_eq!(
            a.timeout_outcome(),
            Outcome::NoPeer("nobody else joined room \"demo\" before the timeout".into())
        );
    }

    fn ack(id: u64) -> PeerEvent {
        PeerEvent::Message(format!(r#"{{"type":"ack","id":{id}}}"#))
    }

    #[test]
    fn a_message_goes_to_every_member_even_one_whose_connection_is_still_opening() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        a.update(Event::PeerJoined { peer: info("p2", "carol"), offer: false, page: false });
        let fx = a.update(Event::Input { text: "all of you".into(), ts: 1 });
        assert_eq!(sends(&fx).len(), 1, "carol's connection is not open yet");
        let fx = a.update(Event::Peer { id: pid("p2"), event: PeerEvent::Open { plain: false } });
        assert_eq!(
            sends(&fx).iter().map(|(to, _)| to.0.as_str()).collect::<Vec<_>>(),
            ["p2"],
            "queued for carol"
        );
        a.update(Event::InputClosed);
        let fx = a.update(Event::Peer { id: pid("p1"), event: ack(1) });
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Delivered { acked: 1, of: 2, .. }))));
        assert!(exit(&fx).is_none(), "carol has not acknowledged yet");
        let fx = a.update(Event::Peer { id: pid("p2"), event: ack(1) });
        let settled = Notice::Settled {
            id: 1,
            delivered: vec!["bob".into(), "carol".into()],
            transmitted: vec![],
            missed: vec![],
        };
        assert!(fx.contains(&Effect::Show(settled)));
        assert_eq!(exit(&fx), Some(&Outcome::Done));
    }

    #[test]
    fn members_who_join_before_a_message_went_out_get_it_and_later_ones_do_not() {
        let mut a = app(None);
        a.update(Event::Welcome { me: pid("me"), peers: vec![info("p1", "bob")] });
        a.update(Event::Input { text: "early".into(), ts: 1 });
        a.update(Event::PeerJoined { peer: info("p2", "carol"), offer: false, page: false });
        let fx = a.update(Event::Peer { id: pid("p2"), event: PeerEvent::Open { plain: false } });
        assert_eq!(sends(&fx).len(), 1, "carol joined before it went out to anybody");
        a.update(Event::PeerJoined { peer: info("p3", "dave"), offer: false, page: false });
        let fx = a.update(Event::Peer { id: pid("p3"), event: PeerEvent::Open { plain: false } });
        assert!(sends(&fx).is_empty(), "no history for dave");
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Open { plain: false } });
        assert_eq!(sends(&fx).len(), 1, "bob was in the welcome");
    }

    #[test]
    fn a_member_leaving_mid_send_fails_a_script_once_the_others_have_acknowledged() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        connected(&mut a, "p2", "carol");
        a.update(Event::Input { text: "one".into(), ts: 1 });
        a.update(Event::InputClosed);
        a.update(Event::PeerLeft(pid("p2")));
        let fx = a.update(Event::Peer { id: pid("p2"), event: PeerEvent::Closed });
        assert!(exit(&fx).is_none(), "bob may still acknowledge");
        let fx = a.update(Event::Peer { id: pid("p1"), event: ack(1) });
        let settled = Notice::Settled {
            id: 1,
            delivered: vec!["bob".into()],
            transmitted: vec![],
            missed: vec!["carol".into()],
        };
        assert!(fx.contains(&Effect::Show(settled)));
        assert!(
            matches!(exit(&fx), Some(Outcome::PeerLeft(m)) if m == "carol left before acknowledging 1 message(s) (ids 1)"),
            "{fx:?}"
        );
    }

    #[test]
    fn expect_waits_for_messages_as_well_as_acknowledgements() {
        let mut a = app(Some(1));
        connected(&mut a, "p1", "bob");
        assert!(exit(&a.update(Event::InputClosed)).is_none());
        let chat = r#"{"type":"chat","id":1,"from":"bob","ts":5,"text":"hi"}"#;
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Message(chat.into()) });
        assert_eq!(exit(&fx), Some(&Outcome::Done));
    }

    #[test]
    fn peer_leaving_with_unacknowledged_messages_is_reported() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        a.update(Event::Input { text: "lost?".into(), ts: 1 });
        let fx = a.update(Event::PeerLeft(pid("p1")));
        assert!(fx.contains(&Effect::Peer { id: pid("p1"), command: PeerCommand::Close }));
        assert!(exit(&fx).is_none(), "acknowledgements may still be on their way");
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Closed });
        let undelivered = Notice::Undelivered { ids: vec![1], peer: pid("p1"), to: "bob".into() };
        assert!(fx.contains(&Effect::Show(undelivered)));
        let settled =
            Notice::Settled { id: 1, delivered: vec![], transmitted: vec![], missed: vec!["bob".into()] };
        assert!(fx.contains(&Effect::Show(settled)));
        assert!(exit(&fx).is_none(), "a script may still type more");
        let fx = a.update(Event::InputClosed);
        assert!(matches!(exit(&fx), Some(Outcome::PeerLeft(m)) if m.contains("bob left")));
    }

    #[test]
    fn acknowledgements_that_arrive_after_the_leave_notice_still_count() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        a.update(Event::Input { text: "made it".into(), ts: 1 });
        a.update(Event::InputClosed);
        a.update(Event::PeerLeft(pid("p1")));
        let ack = r#"{"type":"ack","id":1}"#.to_owned();
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Message(ack) });
        assert_eq!(exit(&fx), Some(&Outcome::Done));
    }

    #[test]
    fn a_peer_that_cannot_be_reached_fails_a_script() {
        let mut a = app(None);
        a.update(Event::Welcome { me: pid("p2"), peers: vec![info("p1", "bob")] });
        a.update(Event::Input { text: "hello?".into(), ts: 1 });
        a.update(Event::Peer { id: pid("p1"), event: PeerEvent::State(LinkState::Failed) });
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Closed });
        assert!(matches!(exit(&fx), Some(Outcome::ConnectionFailed(m)) if m.contains("bob")));
    }

    #[test]
    fn timeout_names_what_was_missing() {
        let mut a = app(None);
        a.update(Event::Welcome { me: pid("p1"), peers: vec![] });
        assert!(matches!(exit(&a.update(Event::TimedOut)), Some(Outcome::NoPeer(_))));

        let mut a = app(None);
        a.update(Event::Welcome { me: pid("p2"), peers: vec![info("p1", "bob")] });
        assert!(
            matches!(exit(&a.update(Event::TimedOut)), Some(Outcome::ConnectionFailed(m)) if m.contains("bob"))
        );

        let mut a = app(Some(3));
        connected(&mut a, "p1", "bob");
        assert!(
            matches!(exit(&a.update(Event::TimedOut)), Some(Outcome::TimedOut(m)) if m.contains("0 of 3"))
        );
    }

    #[test]
    fn oversized_input_is_refused_and_fails_the_run() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        let fx = a.update(Event::Input { text: "x".repeat(MAX_ENVELOPE_BYTES), ts: 1 });
        assert!(sends(&fx).is_empty());
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::InputRejected { .. }))));
        assert!(matches!(exit(&a.update(Event::InputClosed)), Some(Outcome::InputRejected(_))));
    }

    fn dials(fx: &[Effect]) -> usize {
        fx.iter().filter(|e| matches!(e, Effect::Dial { .. })).count()
    }

    #[test]
    fn a_peer_rejoining_after_the_relay_came_back_keeps_its_open_connection() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        a.update(Event::RelayLost { reason: "killed".into() });
        let fx = a.update(Event::RelayRejoined { me: pid("p9"), peers: vec![] });
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::RelayBack { resumed: true, .. }))));
        let fx = a.update(Event::PeerJoined { peer: info("p1", "bob"), offer: false, page: false });
        assert_eq!(dials(&fx), 0, "no second connection to a peer already connected: {fx:?}");
        let fx = a.update(Event::PeerJoined { peer: info("p2", "carol"), offer: false, page: false });
        assert_eq!(dials(&fx), 1, "a newcomer is dialled");
    }

    #[test]
    fn a_peer_that_left_and_came_back_while_closing_is_dialled_once_closed() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        a.update(Event::PeerLeft(pid("p1")));
        assert_eq!(
            dials(&a.update(Event::PeerJoined { peer: info("p1", "bob"), offer: false, page: false })),
            0
        );
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Closed });
        assert!(fx.contains(&Effect::Dial { peer: pid("p1"), offer: false, page: false }), "{fx:?}");
    }

    #[test]
    fn a_replaced_connection_gets_every_unacknowledged_message_again_in_order() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        for text in ["one", "two", "three"] {
            a.update(Event::Input { text: text.into(), ts: 1 });
        }
        a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Message(r#"{"type":"ack","id":1}"#.into()) });
        a.update(Event::Peer { id: pid("p1"), event: PeerEvent::State(LinkState::Disconnected) });
        a.update(Event::Input { text: "four".into(), ts: 2 });
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Open { plain: false } });
        let texts: Vec<String> = sends(&fx)
            .into_iter()
            .map(|(_, p)| match Envelope::parse(&p) {
                Ok(Envelope::Chat { text, .. }) => text,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["two", "three", "four"]);
    }

    #[test]
    fn a_broken_path_is_reported_and_its_restoration_too_without_closing() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::State(LinkState::Failed) });
        assert!(!fx.contains(&Effect::Peer { id: pid("p1"), command: PeerCommand::Close }));
        assert!(fx.iter().any(
            |e| matches!(e, Effect::Show(Notice::Link { detail: Some(d), .. }) if d.contains("restore"))
        ));
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::State(LinkState::Connected) });
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Show(Notice::Link { detail: Some(d), .. }) if d == "restored"))
        );
    }

    #[test]
    fn input_pauses_once_the_unacknowledged_bytes_fill_the_window() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        let text = "y".repeat(16 * 1024);
        let mut sent = 0;
        while a.wants_input() {
            assert!(sent < WINDOW_MESSAGES, "input never paused");
            a.update(Event::Input { text: text.clone(), ts: 1 });
            sent += 1;
        }
        // Paused by bytes, not by count, and at most one envelope past the window.
        let held = a.in_flight_bytes;
        let envelope = held / sent;
        assert!((WINDOW_BYTES..WINDOW_BYTES + envelope).contains(&held), "{held} bytes held in {sent}");
        a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Message(r#"{"type":"ack","id":1}"#.into()) });
        assert!(a.wants_input());
    }

    #[test]
    fn input_pauses_while_the_window_is_full() {
        let mut a = app(None);
        connected(&mut a, "p1", "bob");
        for i in 0..WINDOW_MESSAGES {
            assert!(a.wants_input());
            a.update(Event::Input { text: format!("m{i}"), ts: 1 });
        }
        assert!(!a.wants_input());
        a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Message(r#"{"type":"ack","id":1}"#.into()) });
        assert!(a.wants_input());
    }
}
