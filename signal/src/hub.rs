//! The hub: one task that owns the [`Registry`] and every connection's outbox.
//!
//! Connections send [`Command`]s here; the hub applies them in arrival order and pushes
//! ready-made frames into the outboxes of whoever must hear. Because one task does all of
//! it, "peer-joined" always reaches a member before any signal from the newcomer, and no
//! lock is needed.
//!
//! The one shortcut: once the hub has routed a signal from one peer to another, it hands
//! the sender the addressee's outbox, and later signals between them skip the hub. That is
//! safe because a connection never changes rooms and ids are never reused: the outbox
//! stays the right one, and closes when its connection ends.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{debug, warn};

use crate::classic::ClassicMessage;
use crate::proto::{PROTOCOL_VERSION, PeerId, Refusal, ServerMessage};
use crate::resume::Token;
use crate::room::{Endpoint, Registry};
use crate::server::Shared;

/// How many frames may wait for a slow connection before the hub gives up on it.
pub const OUTBOX_FRAMES: usize = 256;

/// What a connection asks of the hub.
#[derive(Debug)]
pub enum Command {
    /// Connection number `serial` registers as `id` on `endpoint`: a classic connection
    /// once its handshake completes, a main one with its first `join`. Frames for it go to
    /// `outbox`; `kick` tells it that the hub dropped it, and why.
    Connect {
        id: PeerId,
        serial: u64,
        endpoint: Endpoint,
        outbox: mpsc::Sender<Utf8Bytes>,
        kick: oneshot::Sender<Kick>,
    },
    /// `id` asks to enter `room` as `name` (already validated for shape); `resume` goes in
    /// the welcome.
    Join { id: PeerId, room: String, name: String, resume: Token },
    /// A classic connection enters the room its URL named; the answer says whether it may.
    JoinClassic { id: PeerId, room: String, done: oneshot::Sender<Result<(), Refusal>> },
    /// `id` sends `frame`, a serialised [`ServerMessage::Signal`] stamped `from: id`, to `to`.
    /// Once delivered, `route` gets `to`'s outbox, for `id` to use directly from then on.
    Forward {
        id: PeerId,
        to: PeerId,
        frame: Utf8Bytes,
        route: Option<oneshot::Sender<mpsc::Sender<Utf8Bytes>>>,
    },
    /// `id`, a classic connection, sends `frame` as it is to everyone else in its room.
    Broadcast { id: PeerId, frame: Utf8Bytes },
    /// Connection `serial`, registered as `id`, is gone.
    Disconnect { id: PeerId, serial: u64 },
}

/// Why the hub let go of a connection. A dropped kick means it fell too far behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// A newer connection came back with the same resume token.
    Replaced,
}

/// Runs the hub until every connection handle (and the listener's) is dropped.
pub async fn run(mut commands: mpsc::Receiver<Command>, shared: Arc<Shared>) {
    let registry = Registry::new(shared.config.max_rooms, shared.config.max_peers_per_room);
    let mut hub = Hub { registry, outboxes: HashMap::new(), shared };
    while let Some(cmd) = commands.recv().await {
        hub.apply(cmd);
    }
}

struct Hub {
    registry: Registry,
    outboxes: HashMap<PeerId, Outbox>,
    shared: Arc<Shared>,
}

/// Where a connection's frames go, and which format its errors take.
struct Outbox {
    frames: mpsc::Sender<Utf8Bytes>,
    endpoint: Endpoint,
    /// Which connection this is: a replaced connection's late `Disconnect` must not
    /// remove the one that replaced it.
    serial: u64,
    /// Sent or dropped to tell the connection to close.
    kick: oneshot::Sender<Kick>,
}

impl Hub {
    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Connect { id, serial, endpoint, outbox, kick } => {
                if self.outboxes.get(&id).is_some_and(|o| o.serial != serial) {
                    // The same client, back before the relay noticed its old connection
                    // die: the old one goes, and its room hears it left.
                    debug!(peer = %id, "replaced by a resumed connection");
                    if let Some(old) = self.remove_peer(&id) {
                        let _ = old.kick.send(Kick::Replaced);
                    }
                }
                self.registry.connect(id.clone());
                self.outboxes.insert(id, Outbox { frames: outbox, endpoint, serial, kick });
            }
            Command::JoinClassic { id, room, done } => {
                let joined = self.registry.join(&id, Endpoint::Classic, &room, "").map(drop);
                if joined.is_ok() {
                    debug!(peer = %id, room = %room.escape_debug(), "joined classic");
                    self.count_rooms();
                }
                let _ = done.send(joined);
            }
            Command::Join { id, room, name, resume } => {
                match self.registry.join(&id, Endpoint::Main, &room, &name) {
                    Ok(peers) => {
                        debug!(peer = %id, room = %room.escape_debug(), "joined");
                        let welcome = ServerMessage::Welcome {
                            version: PROTOCOL_VERSION,
                            room,
                            id: id.clone(),
                            peers: peers.clone(),
                            resume: Some(resume.to_hex()),
                        };
                        self.deliver(&id, welcome.to_json().into());
                        let joined: Utf8Bytes =
                            ServerMessage::PeerJoined { peer: self.registry.info(id.clone()) }
                                .to_json()
                                .into();
                        for peer in peers {
                            self.deliver(&peer.id, joined.clone());
                        }
                        self.count_rooms();
                    }
                    Err(refusal) => self.refuse(&id, refusal),
                }
            }
            Command::Forward { id, to, frame, route } => match self.registry.route(&id, &to) {
                Ok(()) => {
                    self.shared.metrics.forwarded(frame.len());
                    self.deliver(&to, frame);
                    if let (Some(route), Some(outbox)) = (route, self.outboxes.get(&to)) {
                        let _ = route.send(outbox.frames.clone());
                    }
                }
                Err(refusal) => self.refuse(&id, refusal),
            },
            Command::Broadcast { id, frame } => {
                // At most a room's worth of ids; cloned so delivering may drop a peer.
                let members = self.registry.room_of(&id).to_vec();
                for member in members.iter().filter(|m| **m != id) {
                    self.shared.metrics.forwarded(frame.len());
                    self.deliver(member, frame.clone());
                }
            }
            Command::Disconnect { id, serial } => {
                if self.outboxes.get(&id).is_some_and(|o| o.serial == serial) {
                    self.remove_peer(&id);
                }
            }
        }
    }

    fn count_rooms(&self) {
        self.shared.metrics.set_rooms(self.registry.room_count(), self.registry.joined_count());
    }

    fn refuse(&mut self, id: &PeerId, refusal: Refusal) {
        self.shared.metrics.error(refusal.code);
        let Some(outbox) = self.outboxes.get(id) else { return };
        let frame = match outbox.endpoint {
            Endpoint::Main => ServerMessage::from(refusal).to_json(),
            Endpoint::Classic => ClassicMessage::from(refusal).to_json(),
        };
        self.deliver(id, frame.into());
    }

    /// Queues a frame for `id`. A connection whose outbox is full is dropped: its task sees
    /// its kick and ends the connection, and its room hears that it left.
    fn deliver(&mut self, id: &PeerId, frame: Utf8Bytes) {
        let Some(outbox) = self.outboxes.get(id) else { return };
        match outbox.frames.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(peer = %id, "dropping a connection that stopped reading");
                self.remove_peer(id);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.remove_peer(id);
            }
        }
    }

    /// Forgets a connection and tells its room; returns its outbox, if it had one.
    fn remove_peer(&mut self, id: &PeerId) -> Option<Outbox> {
        let outbox = self.outboxes.remove(id)?;
        // Classic clients are told nothing: the format has no word for it.
        let left: Utf8Bytes = ServerMessage::PeerLeft { id: id.clone() }.to_json().into();
        for peer in self.registry.disconnect(id) {
            if self.outboxes.get(&peer).is_some_and(|o| o.endpoint == Endpoint::Main) {
                self.deliver(&peer, left.clone());
            }
        }
        self.count_rooms();
        Some(outbox)
    }
}
