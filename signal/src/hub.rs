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
//!
//! In a cluster (`--redis`) the hub also speaks for this relay to the others: it awaits
//! Redis for every join (the cluster's names and limits are checked there, atomically),
//! queues what the other relays must hear, and applies what they say ([`Inbound`]).
//! While Redis is away, it serves on with what it knows, and resynchronises when Redis
//! is back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{debug, info, warn};

use crate::classic::ClassicMessage;
use crate::cluster::{Admission, Cluster, Inbound, Member, RelayMessage, parse_room, room_text};
use crate::proto::{PROTOCOL_VERSION, PeerId, PeerInfo, Refusal, ServerMessage};
use crate::resume::Token;
use crate::room::{Endpoint, Registry, RoomKey};
use crate::server::Shared;

/// After a resynchronisation, how long until this relay checks its rooms against Redis
/// once more: by then every live relay has resynchronised too, so a member missing from
/// Redis is really gone.
const VERIFY_AFTER: Duration = Duration::from_millis(2_500);

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
    /// News from the cluster.
    Cluster(Inbound),
}

/// Why the hub let go of a connection. A dropped kick means it fell too far behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// A newer connection came back with the same resume token.
    Replaced,
}

/// Runs the hub until every connection handle (and the listener's) is dropped.
pub async fn run(mut commands: mpsc::Receiver<Command>, shared: Arc<Shared>, cluster: Option<Cluster>) {
    let registry = Registry::new(shared.config.max_rooms, shared.config.max_peers_per_room);
    let cluster = cluster.map(|link| ClusterState {
        up: link.started_up(),
        link,
        verify_at: None,
        heard_of: HashMap::new(),
    });
    let mut hub = Hub { registry, outboxes: HashMap::new(), shared, cluster };
    while let Some(cmd) = commands.recv().await {
        hub.apply(cmd).await;
    }
}

struct Hub {
    registry: Registry,
    outboxes: HashMap<PeerId, Outbox>,
    shared: Arc<Shared>,
    cluster: Option<ClusterState>,
}

/// The hub's side of the cluster.
struct ClusterState {
    link: Cluster,
    /// Whether Redis answered the hub's last call and the heartbeat since. While it does
    /// not, joins are checked against this relay alone.
    up: bool,
    /// When to check this relay's rooms against Redis after a resynchronisation.
    verify_at: Option<Instant>,
    /// When this relay last learnt of a member on each other relay. A list of live relays
    /// asked for before that may predate the relay itself: it says nothing of its death.
    heard_of: HashMap<String, Instant>,
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
    async fn apply(&mut self, cmd: Command) {
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
                let joined = self.admit(&id, (Endpoint::Classic, room.clone()), "").await.map(drop);
                if joined.is_ok() {
                    debug!(peer = %id, room = %room.escape_debug(), "joined classic");
                    self.count_rooms();
                }
                let _ = done.send(joined);
            }
            Command::Join { id, room, name, resume } => {
                match self.admit(&id, (Endpoint::Main, room.clone()), &name).await {
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
                        // Members on other relays hear it from their own.
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
                    if let (Some(relay), Some(cluster)) = (self.registry.relay_of(&to), &self.cluster) {
                        // Always through the hub, so no route is handed out: the order of
                        // one sender's signals is kept by the one queue to Redis.
                        cluster.link.signal(relay, to, frame);
                        return;
                    }
                    self.deliver(&to, frame);
                    if let (Some(route), Some(outbox)) = (route, self.outboxes.get(&to)) {
                        let _ = route.send(outbox.frames.clone());
                    }
                }
                Err(refusal) => self.refuse(&id, refusal),
            },
            Command::Broadcast { id, frame } => {
                let Some(key) = self.registry.room_key(&id).cloned() else { return };
                // At most a room's worth of ids; cloned so delivering may drop a peer.
                let registry = &self.registry;
                let members: Vec<PeerId> = registry
                    .members_of(&key)
                    .iter()
                    .filter(|m| **m != id && registry.is_local(m))
                    .cloned()
                    .collect();
                for member in &members {
                    self.shared.metrics.forwarded(frame.len());
                    self.deliver(member, frame.clone());
                }
                if let Some(cluster) = &self.cluster {
                    for relay in self.registry.relays_in(&key) {
                        let message =
                            RelayMessage::Broadcast { room: room_text(&key), frame: frame.to_string() };
                        cluster.link.publish(&relay, message);
                    }
                }
            }
            Command::Disconnect { id, serial } => {
                if self.outboxes.get(&id).is_some_and(|o| o.serial == serial) {
                    self.remove_peer(&id);
                }
            }
            Command::Cluster(inbound) => self.on_cluster(inbound).await,
        }
    }

    /// Admits `id` to `key`: through Redis when the cluster is up, else by this relay's
    /// own registry. Returns the members already there, in join order.
    async fn admit(&mut self, id: &PeerId, key: RoomKey, name: &str) -> Result<Vec<PeerInfo>, Refusal> {
        let Some(cluster) = self.cluster.as_mut().filter(|c| c.up) else {
            return self.registry.join(id, key.0, &key.1, name);
        };
        self.registry.check_unjoined(id)?;
        let serial = self.outboxes.get(id).map_or(0, |o| o.serial);
        let conn = cluster.link.conn(serial);
        match cluster.link.join(&key, id, name, &conn).await {
            Ok(Admission::Admitted { previous, members }) => {
                let me = cluster.link.me().clone();
                let mut relays: Vec<String> = previous.into_iter().filter(|r| *r != me).collect();
                for m in members.iter().filter(|m| m.relay != me) {
                    if !relays.contains(&m.relay) {
                        relays.push(m.relay.clone());
                    }
                }
                let announce = RelayMessage::Joined {
                    from: me.clone(),
                    room: room_text(&key),
                    peer: PeerInfo { id: id.clone(), name: name.to_owned() },
                };
                for relay in relays {
                    cluster.link.publish(&relay, announce.clone());
                }
                self.registry.enter(id, key.clone(), name);
                self.merge(&key, &members, &me, Some(id));
                Ok(members.iter().map(Member::info).collect())
            }
            Ok(Admission::Refused(refusal)) => Err(refusal),
            Err(e) => {
                warn!("Redis did not answer a join ({e}); admitting by this relay's own view until it does");
                cluster.up = false;
                self.shared.metrics.set_cluster(false, 0);
                self.registry.join(id, key.0, &key.1, name)
            }
        }
    }

    /// Takes in what Redis says the members of `key` are: members on other relays that
    /// are new here are announced to this relay's members, and a member of this relay that
    /// Redis places on another has resumed there and its old connection here goes.
    /// `newcomer`, when the members come with its welcome, is not told again.
    fn merge(&mut self, key: &RoomKey, members: &[Member], me: &str, newcomer: Option<&PeerId>) {
        for m in members.iter().filter(|m| m.relay != me) {
            if self.registry.is_local(&m.id) {
                self.moved_away(&m.id);
            }
            self.heard_of(&m.relay);
            if self.registry.learn(&m.id, key, &m.name, &m.relay) {
                self.tell_joined(key, m.info(), newcomer);
            }
        }
    }

    /// `id` resumed on another relay: its connection here closes, and its room, where it
    /// still is, hears nothing.
    fn moved_away(&mut self, id: &PeerId) {
        debug!(peer = %id, "resumed on another relay");
        if let Some(old) = self.outboxes.remove(id) {
            let _ = old.kick.send(Kick::Replaced);
        }
        self.registry.disconnect(id);
        self.count_rooms();
    }

    fn tell_joined(&mut self, key: &RoomKey, peer: PeerInfo, except: Option<&PeerId>) {
        if key.0 != Endpoint::Main {
            return;
        }
        let joined: Utf8Bytes = ServerMessage::PeerJoined { peer: peer.clone() }.to_json().into();
        for member in self.registry.members_of(key).to_vec() {
            if member != peer.id && Some(&member) != except {
                self.deliver(&member, joined.clone());
            }
        }
    }

    fn tell_left(&mut self, id: &PeerId, rest: &[PeerId]) {
        // Classic clients are told nothing: the format has no word for it.
        let left: Utf8Bytes = ServerMessage::PeerLeft { id: id.clone() }.to_json().into();
        for peer in rest {
            if self.outboxes.get(peer).is_some_and(|o| o.endpoint == Endpoint::Main) {
                self.deliver(peer, left.clone());
            }
        }
    }

    /// Applies what the cluster says.
    async fn on_cluster(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Message(RelayMessage::Joined { from, room, peer }) => {
                let Some(key) = parse_room(&room) else { return };
                if self.registry.is_local(&peer.id) {
                    self.moved_away(&peer.id);
                }
                self.heard_of(&from);
                if self.registry.learn(&peer.id, &key, &peer.name, &from) {
                    self.tell_joined(&key, peer, None);
                }
            }
            Inbound::Message(RelayMessage::Left { from, room, id }) => {
                let Some(key) = parse_room(&room) else { return };
                let here = self.registry.relay_of(&id) == Some(from.as_str());
                if here && self.registry.room_key(&id) == Some(&key) {
                    let rest = self.registry.disconnect(&id);
                    self.tell_left(&id, &rest);
                    self.count_rooms();
                }
            }
            Inbound::Signal { to, frame } => {
                if self.registry.is_local(&to) {
                    self.deliver(&to, frame);
                }
            }
            Inbound::Message(RelayMessage::Broadcast { room, frame }) => {
                let Some(key) = parse_room(&room) else { return };
                let frame: Utf8Bytes = frame.into();
                for member in self.registry.members_of(&key).to_vec() {
                    if self.registry.is_local(&member) {
                        self.shared.metrics.forwarded(frame.len());
                        self.deliver(&member, frame.clone());
                    }
                }
            }
            Inbound::Live { relays, fresh, asked } => {
                let Some(cluster) = self.cluster.as_mut() else { return };
                let was_up = std::mem::replace(&mut cluster.up, true);
                let verify_at = cluster.verify_at;
                if fresh || !was_up {
                    self.resync().await;
                } else if let Some(at) = verify_at {
                    // Until every relay has resynchronised, a missing relay may only be late.
                    if Instant::now() >= at {
                        self.verify().await;
                    }
                } else {
                    self.forget_dead(&relays, asked);
                }
            }
            Inbound::Lost => {
                if let Some(cluster) = self.cluster.as_mut() {
                    cluster.up = false;
                }
            }
        }
    }

    /// Members on relays whose presence expired are gone, unless they resumed elsewhere
    /// first (then a `joined` moved them).
    fn forget_dead(&mut self, live: &HashSet<String>, asked: Instant) {
        let Some(cluster) = self.cluster.as_mut() else { return };
        let mut heard_of = std::mem::take(&mut cluster.heard_of);
        for id in self.registry.on_dead_relays(live) {
            let relay = self.registry.relay_of(&id).unwrap_or_default();
            if heard_of.get(relay).is_some_and(|heard| *heard >= asked) {
                continue;
            }
            debug!(peer = %id, "its relay is gone");
            let rest = self.registry.disconnect(&id);
            self.tell_left(&id, &rest);
        }
        heard_of.retain(|relay, heard| live.contains(relay) || *heard >= asked);
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.heard_of = heard_of;
        }
        self.count_rooms();
    }

    /// Records that a member on `relay` was just learnt of.
    fn heard_of(&mut self, relay: &str) {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.heard_of.insert(relay.to_owned(), Instant::now());
        }
    }

    /// Brings Redis and this relay back in step after Redis was away: records exactly this
    /// relay's members in every room it has or Redis thinks it has, learns who else is
    /// there, and tells the other relays who is here.
    async fn resync(&mut self) {
        let Some(cluster) = self.cluster.as_ref() else { return };
        let me = cluster.link.me().clone();
        let mut rooms = self.registry.rooms();
        match cluster.link.my_rooms().await {
            Ok(recorded) => {
                for room in recorded {
                    if !rooms.contains(&room) {
                        rooms.push(room);
                    }
                }
            }
            Err(e) => return self.cluster_failed(&e),
        }
        let mut synced = 0;
        for key in rooms {
            let Some(cluster) = self.cluster.as_ref() else { return };
            let here: Vec<(PeerId, String, String)> = self
                .registry
                .locals_in(&key)
                .into_iter()
                .map(|(id, name)| {
                    let serial = self.outboxes.get(&id).map_or(0, |o| o.serial);
                    (id, name, cluster.link.conn(serial))
                })
                .collect();
            let members = match cluster.link.sync(&key, &here).await {
                Ok(members) => members,
                Err(e) => return self.cluster_failed(&e),
            };
            let mut relays: Vec<&str> = Vec::new();
            for m in &members {
                if !relays.contains(&m.relay.as_str()) {
                    relays.push(&m.relay);
                }
            }
            for (id, name, _) in &here {
                let peer = PeerInfo { id: id.clone(), name: name.clone() };
                let joined = RelayMessage::Joined { from: me.clone(), room: room_text(&key), peer };
                for relay in &relays {
                    cluster.link.publish(relay, joined.clone());
                }
            }
            synced += here.len();
            self.merge(&key, &members, &me, None);
        }
        info!(members = synced, "this relay's rooms are in step with Redis");
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.verify_at = Some(Instant::now() + VERIFY_AFTER);
        }
    }

    /// Redis failed a call the hub made: serve alone until the heartbeat gets through.
    fn cluster_failed(&mut self, e: &crate::cluster::Unavailable) {
        warn!("could not resynchronise with Redis ({e}); trying again at the next heartbeat");
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.up = false;
        }
    }

    /// Drops the members on other relays that Redis no longer has: they left while Redis
    /// or this relay could not say so.
    async fn verify(&mut self) {
        let Some(cluster) = self.cluster.as_mut() else { return };
        cluster.verify_at = None;
        let me = cluster.link.me().clone();
        for key in self.registry.rooms() {
            let Some(cluster) = self.cluster.as_ref() else { return };
            let Ok(members) = cluster.link.members(&key).await else { return };
            let known: HashSet<&PeerId> = members.iter().map(|m| &m.id).collect();
            let gone: Vec<PeerId> = self
                .registry
                .members_of(&key)
                .iter()
                .filter(|id| !self.registry.is_local(id) && !known.contains(id))
                .cloned()
                .collect();
            for id in gone {
                let rest = self.registry.disconnect(&id);
                self.tell_left(&id, &rest);
            }
            self.merge(&key, &members, &me, None);
        }
        self.count_rooms();
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

    /// Forgets a connection and tells its room, on every relay; returns its outbox, if it
    /// had one.
    fn remove_peer(&mut self, id: &PeerId) -> Option<Outbox> {
        let outbox = self.outboxes.remove(id)?;
        let room = self.registry.room_key(id).cloned();
        let rest = self.registry.disconnect(id);
        self.tell_left(id, &rest);
        if let (Some(cluster), Some(room)) = (&self.cluster, room) {
            cluster.link.leave(room, id.clone(), cluster.link.conn(outbox.serial));
        }
        self.count_rooms();
        Some(outbox)
    }
}
