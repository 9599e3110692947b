//! The relay's counters and gauges, served at `/metrics` in the Prometheus text format.
//! Each is an atomic, so tasks update them without talking to each other.

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

    /// The Prometheus (OpenMetrics) text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
