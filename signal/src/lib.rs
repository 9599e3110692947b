//! peertalk-signal: the relay that introduces peertalk peers to each other, and the wire
//! protocol it speaks.
//!
//! [`proto`] and [`classic`] are always available and needs only serde, so clients can share the message
//! types. The relay itself ([`serve`]) sits behind the default `server` feature.
//! The relay never touches WebRTC: it forwards descriptions and candidates as opaque data.

pub mod classic;
pub mod hex;
pub mod proto;
#[cfg(feature = "settings-file")]
pub mod settings_file;

#[cfg(feature = "server")]
mod cluster;
#[cfg(feature = "server")]
mod config;
#[cfg(feature = "server")]
mod conn;
#[cfg(feature = "server")]
mod http;
#[cfg(feature = "server")]
mod hub;
#[cfg(feature = "server")]
mod metrics;
#[cfg(feature = "server")]
mod resume;
#[cfg(feature = "server")]
mod room;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod tls;
#[cfg(feature = "server")]
pub mod token;
#[cfg(feature = "server")]
mod web;

#[cfg(feature = "server")]
pub use cluster::check_url as check_redis_url;
#[cfg(feature = "server")]
pub use config::RelayConfig;
#[cfg(feature = "server")]
pub use server::serve;
