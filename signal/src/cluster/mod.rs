//! Several relays sharing rooms through Redis (`--redis`); see `signal/CLUSTER.md`.
//!
//! Redis holds who is in which room (a hash per room, changed only by the Lua scripts
//! here, so every check and change is atomic cluster-wide) and which relays are alive (a
//! sorted set of expiry times). Relays tell each other about joins, departures and signals
//! over pub/sub, one channel per relay.
//!
//! The hub owns the relay's view; this module is its link to the cluster: the scripts it
//! awaits, a queue for what it publishes, and three tasks that feed it ([`Inbound`]): the
//! heartbeat, the subscription and the publisher.

mod tasks;
pub mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use fred::prelude::{
    Builder, Client, ClientLike, Config, LuaInterface, Options, PubsubInterface, ReconnectPolicy, Value,
};
use fred::types::scripts::Script;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::info;

use crate::hub::Command;
use crate::proto::{self, ErrorCode, PeerId, PeerInfo, Refusal};
use crate::room::RoomKey;
use crate::server::Shared;
use tokio_tungstenite::tungstenite::Utf8Bytes;
pub use wire::{RelayId, RelayMessage, parse_room, room_text};

/// How often a relay renews its presence.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a presence lasts unrenewed: a relay that stops renewing is dead this long
/// after its last renewal, and its members are reported gone within one more heartbeat.
pub const PRESENCE_TTL: Duration = Duration::from_secs(3);
/// How long a membership call to Redis may take before the relay serves on without it.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Publications waiting for Redis; past this, the newest are dropped (and counted).
const OUTGOING_QUEUE: usize = 16_384;

/// Messages from other relays that may wait for the hub.
const SUBSCRIBER_BUFFER: usize = 8_192;

/// Where every key and channel starts.
const PREFIX: &str = "peertalk:";

/// What the cluster tells the hub.
#[derive(Debug)]
pub enum Inbound {
    /// Another relay's message for this one.
    Message(RelayMessage),
    /// A signal frame from another relay for `to`, here.
    Signal { to: PeerId, frame: Utf8Bytes },
    /// The heartbeat went through: the relays alive when Redis answered a question asked
    /// at `asked`. `fresh` when this relay was not among them before (Redis restarted, or
    /// it had been cut off long enough to expire).
    Live { relays: HashSet<RelayId>, fresh: bool, asked: Instant },
    /// Redis stopped answering.
    Lost,
}

/// A member of a room on any relay, as Redis records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: PeerId,
    pub name: String,
    pub relay: RelayId,
    /// Join order across the cluster.
    pub seq: u64,
}

impl Member {
    pub fn info(&self) -> PeerInfo {
        PeerInfo { id: self.id.clone(), name: self.name.clone() }
    }
}

/// The answer to a join.
#[derive(Debug)]
pub enum Admission {
    /// In. `members` are the others, on every relay, in join order; `previous` is the
    /// relay this id was on before, when it resumed.
    Admitted {
        previous: Option<RelayId>,
        members: Vec<Member>,
    },
    Refused(Refusal),
}

/// Redis could not be asked; the message says why, for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(String);

/// What the relay publishes or removes without waiting, in the order it asked.
#[derive(Debug)]
enum Outgoing {
    Publish {
        relay: RelayId,
        message: RelayMessage,
    },
    Signal {
        relay: RelayId,
        to: PeerId,
        frame: Utf8Bytes,
    },
    /// Remove `id`'s record in `room` if connection `conn` made it, then tell the other
    /// relays in the room.
    Leave {
        room: RoomKey,
        id: PeerId,
        conn: String,
    },
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    relay: RelayId,
    seq: u64,
}

struct Scripts {
    join: Script,
    leave: Script,
    sync: Script,
    members: Script,
    heartbeat: Script,
    my_rooms: Script,
}

macro_rules! script {
    ($file:literal) => {
        Script::from_lua(concat!(include_str!("prelude.lua"), include_str!($file)))
    };
}

impl Scripts {
    fn new() -> Self {
        Self {
            join: script!("join.lua"),
            leave: script!("leave.lua"),
            sync: script!("sync.lua"),
            members: script!("members.lua"),
            heartbeat: script!("heartbeat.lua"),
            my_rooms: script!("my_rooms.lua"),
        }
    }
}

/// The hub's link to the cluster.
pub struct Cluster {
    me: RelayId,
    redis: Redis,
    outgoing: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

/// A Redis connection and the scripts run on it; shared by the hub and the tasks.
#[derive(Clone)]
struct Redis {
    client: Client,
    scripts: Arc<Scripts>,
    /// Whether the last call went through; the tasks log only the changes.
    up: Arc<AtomicBool>,
}

impl Redis {
    /// Runs a script by its hash, loading it first when Redis does not know it (it was
    /// restarted, or this is the first call).
    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<String>) -> Result<Value, Unavailable> {
        if !self.client.is_connected() {
            return Err(Unavailable("not connected".to_owned()));
        }
        let options = Options { timeout: Some(CALL_TIMEOUT), fail_fast: true, ..Options::default() };
        let client = self.client.with_options(&options);
        let result = match client.evalsha(script.sha1().clone(), keys.clone(), args.clone()).await {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                let lua = script.lua().cloned().unwrap_or_default();
                client.eval(lua, keys, args).await
            }
            other => other,
        };
        result.map_err(|e| Unavailable(e.to_string()))
    }
}

fn key(suffix: &str) -> String {
    format!("{PREFIX}{suffix}")
}

fn room_key(room: &RoomKey) -> String {
    key(&format!("room:{}", room_text(room)))
}

fn relay_rooms_key(relay: &str) -> String {
    key(&format!("relay:{relay}:rooms"))
}

fn channel(relay: &str) -> String {
    key(&format!("relay:{relay}"))
}

/// Reads a reply of `{id, entry, id, entry, ...}` into members, oldest first, skipping
/// anything malformed.
fn members(items: &[Value]) -> Vec<Member> {
    let mut members: Vec<Member> = items
        .chunks_exact(2)
        .filter_map(|pair| {
            let id = pair[0].as_string()?;
            let entry: Entry = serde_json::from_str(&pair[1].as_string()?).ok()?;
            Some(Member { id: PeerId(id), name: entry.name, relay: entry.relay, seq: entry.seq })
        })
        .collect();
    members.sort_by_key(|m| m.seq);
    members
}

fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

/// Checks that `url` is one Redis can be reached by, before anything starts.
pub fn check_url(url: &str) -> Result<(), String> {
    let example = "give one such as redis://127.0.0.1:6379/0";
    if !url.starts_with("redis://") {
        return Err(format!("{url:?} is not a Redis address; {example}"));
    }
    Config::from_url(url).map(drop).map_err(|e| format!("{url:?} is not a Redis address ({e}); {example}"))
}

/// The cluster's tasks, for the relay to stop when it shuts down.
pub struct Tasks {
    /// The heartbeat and the subscription, which hold the hub's command channel open.
    feeders: [JoinHandle<()>; 2],
    /// Ends once the hub has dropped its [`Cluster`] and what was queued is sent.
    publisher: JoinHandle<()>,
}

impl Tasks {
    /// Stops feeding the hub, so it can end.
    pub fn stop_feeding(&self) {
        for task in &self.feeders {
            task.abort();
        }
    }

    /// Waits (a little) for the departures queued at shutdown to reach Redis.
    pub async fn finish(self) {
        let _ = tokio::time::timeout(CALL_TIMEOUT, self.publisher).await;
    }
}

/// Connects to the Redis at `url` and starts the tasks that feed `hub`. A Redis that does
/// not answer yet is not an error: the relay serves its own rooms and keeps trying.
pub async fn start(
    url: &str,
    hub: mpsc::Sender<Command>,
    shared: Arc<Shared>,
) -> Result<(Cluster, Tasks), String> {
    let config = Config::from_url(url).map_err(|e| format!("{url:?} is not a Redis address: {e}"))?;
    let mut builder = Builder::from_config(Config { fail_fast: false, ..config });
    builder
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .with_connection_config(|c| c.connection_timeout = CALL_TIMEOUT);
    let client = builder.build().map_err(|e| e.to_string())?;
    // The subscriber's messages wait in a broadcast buffer, allocated whole up front, until
    // the hub takes them: room for bursts, not so much that every relay carries megabytes.
    builder.with_performance_config(|p| p.broadcast_channel_capacity = SUBSCRIBER_BUFFER);
    let subscriber = builder.build_subscriber_client().map_err(|e| e.to_string())?;
    client.connect();
    subscriber.connect();
    let reached = tokio::time::timeout(CALL_TIMEOUT, client.wait_for_connect()).await;
    let me: RelayId = format!("r{}", crate::hex::encode(&crate::resume::random_bytes::<6>()));
    // Subscribed before serving: a relay must not miss what others say about its rooms.
    let subscribed = matches!(reached, Ok(Ok(())))
        && matches!(tokio::time::timeout(CALL_TIMEOUT, subscriber.subscribe(channel(&me))).await, Ok(Ok(())));
    let redis = Redis { client, scripts: Arc::new(Scripts::new()), up: Arc::new(AtomicBool::new(false)) };
    // The first heartbeat before serving anyone, so that the first joins already see the
    // cluster. A Redis that does not answer yet is reported by the heartbeat task.
    if subscribed && tasks::beat(&redis, &me, &shared).await.is_ok() {
        redis.up.store(true, std::sync::atomic::Ordering::Relaxed);
        info!(relay = %me, redis = %url, "joined the cluster");
    }
    let (outgoing, queue) = mpsc::channel(OUTGOING_QUEUE);
    let feeders = [
        tokio::spawn(tasks::heartbeat(
            redis.clone(),
            me.clone(),
            url.to_owned(),
            hub.clone(),
            shared.clone(),
        )),
        tokio::spawn(tasks::subscribe(subscriber, (!subscribed).then(|| channel(&me)), hub, shared.clone())),
    ];
    let publisher = tokio::spawn(tasks::publish(redis.clone(), me.clone(), queue, shared.clone()));
    Ok((Cluster { me, redis, outgoing, shared }, Tasks { feeders, publisher }))
}

impl Cluster {
    /// Whether Redis answered when the relay started.
    pub fn started_up(&self) -> bool {
        self.redis.up.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This relay's name in the cluster.
    pub fn me(&self) -> &RelayId {
        &self.me
    }

    /// What identifies one connection's record in Redis: a record made by an earlier
    /// connection of the same id must not be removed by that connection's late leave.
    pub fn conn(&self, serial: u64) -> String {
        format!("{}:{serial}", self.me)
    }

    /// Admits `id` to `room` as `name` if the cluster's limits and names allow.
    pub async fn join(
        &self,
        room: &RoomKey,
        id: &PeerId,
        name: &str,
        conn: &str,
    ) -> Result<Admission, Unavailable> {
        let config = &self.shared.config;
        let text = room_text(room);
        let keys = vec![room_key(room), key("rooms"), key("relays"), relay_rooms_key(&self.me), key("seq")];
        let args = vec![
            id.0.clone(),
            name.to_owned(),
            name.to_lowercase(),
            self.me.clone(),
            conn.to_owned(),
            config.max_peers_per_room.to_string(),
            config.max_rooms.to_string(),
            text,
        ];
        let mut reply = array(self.redis.run(&self.redis.scripts.join, keys, args).await?).into_iter();
        let verdict = reply.next().and_then(|v| v.as_string()).unwrap_or_default();
        let previous = reply.next().and_then(|v| v.as_string()).filter(|r| !r.is_empty());
        let others = members(&reply.collect::<Vec<_>>());
        let room_name = &room.1;
        Ok(match verdict.as_str() {
            "ok" => Admission::Admitted { previous, members: others },
            "name-taken" => {
                let taken = |candidate: &str| {
                    let candidate = candidate.to_lowercase();
                    others.iter().any(|m| m.name.to_lowercase() == candidate)
                };
                let free = proto::first_free_name(name, taken);
                Admission::Refused(Refusal::new(
                    ErrorCode::NameTaken,
                    format!(
                        "The name {name:?} is already taken in room {room_name:?}; join under another, such as {free:?}."
                    ),
                ))
            }
            "room-full" => Admission::Refused(Refusal::new(
                ErrorCode::RoomFull,
                format!("Room {room_name:?} is full ({} members); try another room.", others.len()),
            )),
            "too-many-rooms" => Admission::Refused(Refusal::new(
                ErrorCode::TooManyRooms,
                "The relays have as many rooms as they allow; join an existing room or try later.",
            )),
            other => return Err(Unavailable(format!("the join script answered {other:?}"))),
        })
    }

    /// Records exactly `here` as this relay's members of `room`; returns the members on
    /// other relays.
    pub async fn sync(
        &self,
        room: &RoomKey,
        here: &[(PeerId, String, String)],
    ) -> Result<Vec<Member>, Unavailable> {
        let keys = vec![room_key(room), key("rooms"), key("relays"), relay_rooms_key(&self.me), key("seq")];
        let mut args = vec![self.me.clone(), room_text(room)];
        for (id, name, conn) in here {
            args.extend([id.0.clone(), name.clone(), name.to_lowercase(), conn.clone()]);
        }
        Ok(members(&array(self.redis.run(&self.redis.scripts.sync, keys, args).await?)))
    }

    /// The members of `room` on live relays, this one included.
    pub async fn members(&self, room: &RoomKey) -> Result<Vec<Member>, Unavailable> {
        let keys = vec![room_key(room), key("relays")];
        Ok(members(&array(self.redis.run(&self.redis.scripts.members, keys, Vec::new()).await?)))
    }

    /// The rooms Redis records members of this relay in.
    pub async fn my_rooms(&self) -> Result<Vec<RoomKey>, Unavailable> {
        let reply =
            self.redis.run(&self.redis.scripts.my_rooms, vec![relay_rooms_key(&self.me)], Vec::new()).await?;
        Ok(array(reply).into_iter().filter_map(|v| parse_room(&v.as_string()?)).collect())
    }

    /// Sends `message` to `relay`, after everything asked before it.
    pub fn publish(&self, relay: &str, message: RelayMessage) {
        self.queue(Outgoing::Publish { relay: relay.to_owned(), message });
    }

    /// Sends a signal frame, stamped with its sender, to `to` on `relay`, after everything
    /// asked before it.
    pub fn signal(&self, relay: &str, to: PeerId, frame: Utf8Bytes) {
        self.queue(Outgoing::Signal { relay: relay.to_owned(), to, frame });
    }

    /// Removes connection `conn`'s record of `id` in `room`, and tells the room's other
    /// relays.
    pub fn leave(&self, room: RoomKey, id: PeerId, conn: String) {
        self.queue(Outgoing::Leave { room, id, conn });
    }

    fn queue(&self, op: Outgoing) {
        // Dropped only when Redis has been away long enough to fill the queue; the
        // resynchronisation when it is back repairs membership.
        if self.outgoing.try_send(op).is_err() {
            self.shared.metrics.cluster_dropped(1);
        }
    }
}
