//! The relay's tunable limits.

use std::time::Duration;

use crate::proto::DEFAULT_MAX_FRAME_BYTES;

/// Limits and timeouts for one relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Largest text frame accepted; a larger one closes the connection with code 1009.
    pub max_frame_bytes: usize,
    /// How long a TCP connection may take to finish the WebSocket handshake.
    pub handshake_timeout: Duration,
    /// How long shutdown waits for connections to take their close frames.
    pub shutdown_grace: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(3),
        }
    }
}
