//! The relay's counters and gauges, served at `/metrics` in the Prometheus text format.
//! Each is an atomic, so tasks update them without talking to each other.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::proto::ErrorCode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Everything `/metrics` reports.
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    connections_total: Counter,
    rooms: Gauge,
    peers: Gauge,
    forwarded: Counter,
    forwarded_bytes: Counter,
    errors: Family<CodeLabel, Counter>,
    rejected: Family<ReasonLabel, Counter>,
    cluster: Cluster,
}

/// The cluster's figures; registered only on a relay started with `--redis`.
#[derive(Default)]
struct Cluster {
    configured: AtomicBool,
    up: Gauge,
    relays: Gauge,
    published: Counter,
    received: Counter,
    dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("peertalk_signal");
        let metrics = Self {
            connections: Gauge::default(),
            connections_total: Counter::default(),
            rooms: Gauge::default(),
            peers: Gauge::default(),
            forwarded: Counter::default(),
            forwarded_bytes: Counter::default(),
            errors: Family::default(),
            rejected: Family::default(),
            cluster: Cluster::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Open WebSocket connections", metrics.connections.clone());
        registry.register("connections", "WebSocket connections accepted", metrics.connections_total.clone());
        registry.register("rooms", "Rooms with at least one member", metrics.rooms.clone());
        registry.register("peers", "Connections that have joined a room", metrics.peers.clone());
        registry.register("forwarded_messages", "Signal messages forwarded", metrics.forwarded.clone());
        registry.register(
            "forwarded_bytes",
            "Bytes of signal messages forwarded",
            metrics.forwarded_bytes.clone(),
        );
        registry.register("errors", "Error messages sent to clients, by code", metrics.errors.clone());
        registry.register(
            "rejected_connections",
            "Connections refused or dropped, by reason",
            metrics.rejected.clone(),
        );
        Self { registry, ..metrics }
    }
}

impl Metrics {
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.connections_total.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    pub fn set_rooms(&self, rooms: usize, peers: usize) {
        self.rooms.set(i64::try_from(rooms).unwrap_or(i64::MAX));
        self.peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    pub fn forwarded(&self, bytes: usize) {
        self.forwarded.inc();
        self.forwarded_bytes.inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    pub fn error(&self, code: ErrorCode) {
        self.errors.get_or_create(&CodeLabel { code: code.as_str() }).inc();
    }

    /// A connection refused or dropped before or instead of serving it.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Adds the cluster's figures to `/metrics`: this relay is one of several sharing Redis.
    pub fn register_cluster(&mut self) {
        let c = &self.cluster;
        c.configured.store(true, Ordering::Relaxed);
        let r = &mut self.registry;
        r.register("cluster_up", "1 while Redis answers, 0 while this relay serves alone", c.up.clone());
        r.register(
            "cluster_relays",
            "Relays alive in the cluster, as of the last heartbeat",
            c.relays.clone(),
        );
        r.register("cluster_published_messages", "Messages published to other relays", c.published.clone());
        r.register("cluster_received_messages", "Messages received from other relays", c.received.clone());
        r.register(
            "cluster_dropped_messages",
            "Messages to or from other relays lost while Redis was away or too slow",
            c.dropped.clone(),
        );
    }

    pub fn set_cluster(&self, up: bool, relays: usize) {
        self.cluster.up.set(i64::from(up));
        self.cluster.relays.set(i64::try_from(relays).unwrap_or(i64::MAX));
    }

    pub fn cluster_published(&self, messages: u64) {
        self.cluster.published.inc_by(messages);
    }

    pub fn cluster_received(&self) {
        self.cluster.received.inc();
    }

    pub fn cluster_dropped(&self, messages: u64) {
        self.cluster.dropped.inc_by(messages);
    }

    /// What `/healthz` says: `ok`, or why this relay is degraded (it still serves).
    #[must_use]
    pub fn health(&self) -> &'static str {
        if self.cluster.configured.load(Ordering::Relaxed) && self.cluster.up.get() == 0 {
            "degraded: Redis does not answer; serving rooms whose members are all on this relay\n"
        } else {
            "ok\n"
        }
    }

    /// The Prometheus (OpenMetrics) text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
