//! The relay's tunable limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::proto::DEFAULT_MAX_FRAME_BYTES;

/// The classic endpoint's path unless configured otherwise.
pub const DEFAULT_CLASSIC_PATH: &str = "/signal";

/// Limits and timeouts for one relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Largest text frame accepted; a larger one closes the connection with code 1009.
    pub max_frame_bytes: usize,
    /// How long a TCP connection may take to finish the WebSocket handshake.
    pub handshake_timeout: Duration,
    /// How long shutdown waits for connections to take their close frames.
    pub shutdown_grace: Duration,
    /// Connections served at once; more are told `server-full` and closed (1013).
    pub max_connections: usize,
    /// Rooms with at least one member; joining another is refused with `too-many-rooms`.
    pub max_rooms: usize,
    /// Members of one room; one more is refused with `room-full`.
    pub max_peers_per_room: usize,
    /// Messages a connection may send per second, on average.
    pub rate_per_second: u32,
    /// Messages a connection may send in a burst above the average rate.
    pub rate_burst: u32,
    /// How often the relay pings each client.
    pub ping_interval: Duration,
    /// A client from which nothing (not even a pong) arrives for this long is dropped.
    pub idle_timeout: Duration,
    /// Browser origins allowed to connect (`https://chat.example.org`); empty allows all.
    /// Clients that send no `Origin` (anything but a browser) are not affected.
    pub allowed_origins: Vec<String>,
    /// When set, every join must carry this secret (else `forbidden`), unless it carries
    /// a valid join token.
    pub room_secret: Option<String>,
    /// When set, a join must carry a valid token for its room (`forbidden`, or
    /// `token-expired`), unless it carries the room secret.
    pub token_key: Option<Arc<crate::token::TokenKey>>,
    /// Where the classic broadcast endpoint is served (`/signal`); `None` turns it off.
    pub classic_path: Option<String>,
    /// Serve the web client at `GET /`.
    pub web: bool,
    /// Where to serve `/healthz` and `/metrics` instead of the main port (plain HTTP).
    pub metrics_listen: Option<SocketAddr>,
    /// When set, connections speak TLS (`wss://`, `https://` for the endpoints).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// A Redis (`redis://HOST:PORT/DB`) shared with other relays, which then share rooms.
    pub redis: Option<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(3),
            max_connections: 10_000,
            max_rooms: 10_000,
            max_peers_per_room: 16,
            rate_per_second: 50,
            rate_burst: 200,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            allowed_origins: Vec::new(),
            room_secret: None,
            token_key: None,
            classic_path: Some(DEFAULT_CLASSIC_PATH.to_owned()),
            web: true,
            metrics_listen: None,
            tls: None,
            redis: None,
        }
    }
}
