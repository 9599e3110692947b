//! peertalk, the client: terminal chat peer to peer over WebRTC DataChannels.
//!
//! The parts, in the order data flows:
//! [`signaling`] (the relay's WebSocket; [`classic`] for Spring-style relays) → [`peer`] (one WebRTC connection per peer, the
//! only module that uses webrtc) → [`app`] (state and its pure update) → [`headless`]
//! (stdin/stdout) or [`ui`] (the terminal interface). [`session`] is the event loop that
//! ties them together. [`audio`] is a call's sound: files, microphone, speakers, codec.

pub mod app;
pub mod audio;
pub mod backoff;
pub mod classic;
pub mod cli;
pub mod command;
pub mod config_file;
pub mod doctor;
pub mod envelope;
pub mod exit;
pub mod headless;
pub mod known;
pub mod peer;
pub mod sanitize;
pub mod session;
pub mod signaling;
pub mod transfer;
pub mod ui;
