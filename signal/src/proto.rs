//! The wire protocol between clients and the relay: JSON text frames, one message each.
//!
//! Every message is an object tagged by `"type"`. SDP and ICE candidates travel in the
//! browser's own shapes so that a web page can hand `RTCPeerConnection` values straight
//! through. `signal/PROTOCOL.md` documents every message with an example; this module
//! is its executable form and must not need anything but serde.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// The protocol version this crate speaks. A client announces it in [`ClientMessage::Join`];
/// the relay answers a different major version with [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest text frame the relay accepts by default, in bytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 64;

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// A peer's id, assigned by the relay for the life of one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A member of a room as the relay announces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: PeerId,
    pub name: String,
}

/// What a client sends to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Enter a room. Must be the first message; a connection is in at most one room.
    Join {
        room: String,
        name: String,
        version: u32,
        /// The relay's shared secret, when it requires one (`--room-secret`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// The token a relay gave in an earlier `welcome`: the client comes back as the
        /// same peer id. Only in the first `join` of a connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// A join token for this room, when the relay admits joins by token
        /// (`peertalk-signal token`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Hand a signal to one member of the same room.
    Signal { to: PeerId, signal: Signal },
}

/// What the relay sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// The answer to a successful join: who you are and who was already there. `resume`
    /// brings the client back as `id` when it reconnects, to this relay or a restarted one.
    Welcome {
        version: u32,
        room: String,
        id: PeerId,
        peers: Vec<PeerInfo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// Someone entered your room after you.
    PeerJoined { peer: PeerInfo },
    /// Someone left your room, by leaving or by disconnecting.
    PeerLeft { id: PeerId },
    /// A signal from another member; `from` is stamped by the relay, never by the sender.
    Signal { from: PeerId, signal: Signal },
    /// Something the client sent was refused. The connection stays open unless a close
    /// frame follows.
    Error { code: ErrorCode, message: String },
}

/// WebRTC negotiation payloads, in the shape of the W3C "perfect negotiation" example:
/// `{"description": RTCSessionDescriptionInit}` or `{"candidate": RTCIceCandidateInit}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Signal {
    Description(SessionDescription),
    Candidate(IceCandidate),
    /// Passphrase rooms: the key exchange that proves both sides know the passphrase
    /// and binds each side's certificate to it (PROTOCOL.md, "Passphrase rooms").
    Pake(PakeMessage),
}

/// A passphrase room's messages, hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PakeMessage {
    /// The sender's SPAKE2 message (symmetric mode, Ed25519).
    Spake2(String),
    /// HMAC-SHA256, under the agreed key, of the sender's certificate fingerprint.
    Confirm(String),
}

/// `RTCSessionDescriptionInit`: `{"type":"offer","sdp":"v=0..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: SdpKind,
    pub sdp: String,
}

/// The `type` of a session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    Offer,
    Answer,
    Pranswer,
    Rollback,
}

/// `RTCIceCandidateInit`, with the browser's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// Stable, machine-readable reasons for an [`ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The frame was not JSON.
    BadJson,
    /// The JSON had no `type`, or one the relay does not know.
    UnknownType,
    /// The `type` was known but its fields were wrong.
    BadMessage,
    /// A binary frame: the protocol is text only.
    BinaryFrame,
    /// The frame was larger than the relay's limit; the connection is closed.
    TooLarge,
    /// The client speaks a protocol version the relay does not.
    UnsupportedVersion,
    /// A message other than `join` before joining a room.
    NotJoined,
    /// A second `join` on a connection that is already in a room.
    AlreadyJoined,
    /// The room name is empty, too long, or has control characters.
    BadRoom,
    /// The display name is empty, too long, or has control characters.
    BadName,
    /// The `to` of a signal is not a member of the sender's room.
    UnknownPeer,
    /// The room already has as many members as the relay allows.
    RoomFull,
    /// The relay already has as many rooms as it allows; joining a new one must wait.
    TooManyRooms,
    /// The relay already has as many connections as it allows; the connection is closed.
    ServerFull,
    /// Messages came faster than the relay's per-connection rate; this one was dropped.
    RateLimited,
    /// The relay requires a room secret and the join did not carry the right one.
    Forbidden,
    /// A `resume` token that is not one a relay issues, or one sent after joining.
    BadResume,
    /// Someone in the room already goes by that name (compared ignoring case).
    NameTaken,
    /// The join token was genuine and for this room, but its time is over.
    TokenExpired,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad-json",
            Self::UnknownType => "unknown-type",
            Self::BadMessage => "bad-message",
            Self::BinaryFrame => "binary-frame",
            Self::TooLarge => "too-large",
            Self::UnsupportedVersion => "unsupported-version",
            Self::NotJoined => "not-joined",
            Self::AlreadyJoined => "already-joined",
            Self::BadRoom => "bad-room",
            Self::BadName => "bad-name",
            Self::UnknownPeer => "unknown-peer",
            Self::RoomFull => "room-full",
            Self::TooManyRooms => "too-many-rooms",
            Self::ServerFull => "server-full",
            Self::RateLimited => "rate-limited",
            Self::Forbidden => "forbidden",
            Self::BadResume => "bad-resume",
            Self::NameTaken => "name-taken",
            Self::TokenExpired => "token-expired",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes the relay uses, beyond the standard ones.
pub mod close {
    /// The relay is shutting down (standard "going away").
    pub const GOING_AWAY: u16 = 1001;
    /// A frame was larger than the relay's limit (standard "message too big").
    pub const TOO_LARGE: u16 = 1009;
    /// Rate limit exceeded again and again (standard "policy violation").
    pub const POLICY: u16 = 1008;
    /// The relay is at its connection limit (standard "try again later").
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Nothing, not even a pong, arrived within the idle timeout.
    pub const IDLE: u16 = 4001;
    /// The client could not keep up with the messages addressed to it.
    pub const TOO_SLOW: u16 = 4008;
    /// A newer connection came back with this connection's resume token.
    pub const REPLACED: u16 = 4009;
}

/// A refused client frame: the code and sentence the relay sends back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<Refusal> for ServerMessage {
    fn from(r: Refusal) -> Self {
        ServerMessage::Error { code: r.code, message: r.message }
    }
}

const CLIENT_TYPES: [&str; 2] = ["join", "signal"];

impl ClientMessage {
    /// Parses one text frame, telling apart frames that are not JSON, JSON of an unknown
    /// type, and a known type with wrong fields, so that a client author sees which.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        if let Ok(msg) = serde_json::from_str::<Self>(text) {
            return Ok(msg);
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Refusal::new(ErrorCode::BadJson, format!("The frame is not valid JSON ({e}).")))?;
        let kind = value.get("type").and_then(serde_json::Value::as_str);
        let Some(kind) = kind.filter(|k| CLIENT_TYPES.contains(k)) else {
            return Err(Refusal::new(
                ErrorCode::UnknownType,
                format!(
                    "Messages need a \"type\" of {}; this one has {}.",
                    CLIENT_TYPES.map(|t| format!("\"{t}\"")).join(" or "),
                    kind.map_or_else(|| "none".to_owned(), |k| format!("{:?}", clip(k, 40))),
                ),
            ));
        };
        let kind = kind.to_owned();
        match serde_json::from_value::<Self>(value) {
            Ok(msg) => Ok(msg),
            Err(e) => Err(Refusal::new(
                ErrorCode::BadMessage,
                format!("The \"{kind}\" message is malformed: {e}. See PROTOCOL.md."),
            )),
        }
    }

    /// Serialises for the wire.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect(SERIALISE_INFALLIBLE)
    }
}

/// A `signal` message as the relay forwards it: the addressee, and the signal's JSON
/// exactly as the client sent it, already checked to be a valid [`Signal`].
#[derive(Debug)]
pub struct SignalRef<'a> {
    pub to: Cow<'a, str>,
    pub signal: &'a RawValue,
}

impl<'a> SignalRef<'a> {
    /// Reads a `signal` message without copying its signal: the relay's hot path. `None`
    /// for any other frame, and for a malformed one, which [`ClientMessage::parse`] then
    /// reads and explains. Accepts exactly what `parse` accepts as a `signal`.
    #[must_use]
    pub fn parse(text: &'a str) -> Option<Self> {
        let frame: SignalFrame<'a> = serde_json::from_str(text).ok()?;
        serde_json::from_str::<SignalShape>(frame.signal.get()).ok()?;
        Some(Self { to: frame.to, signal: frame.signal })
    }

    /// The frame that carries this signal to its addressee, stamped `from`.
    #[must_use]
    pub fn forward_from(&self, from: &PeerId) -> String {
        let from = serde_json::to_string(&from.0).expect(SERIALISE_INFALLIBLE);
        format!(r#"{{"type":"signal","from":{from},"signal":{}}}"#, self.signal.get())
    }
}

/// The fields of a `signal` message, borrowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalFrame<'a> {
    #[serde(rename = "type")]
    _kind: SignalTag,
    #[serde(borrow)]
    to: Cow<'a, str>,
    #[serde(borrow)]
    signal: &'a RawValue,
}

#[derive(Deserialize)]
enum SignalTag {
    #[serde(rename = "signal")]
    Signal,
}

/// [`Signal`]'s shape, checked without keeping (or allocating) any of its strings.
#[derive(Deserialize)]
#[allow(dead_code)] // the variants' contents are there to be checked, never read
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum SignalShape {
    Description(DescriptionShape),
    Candidate(CandidateShape),
    Pake(PakeShape),
}

#[derive(Deserialize)]
#[allow(dead_code)] // checked, never read
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum PakeShape {
    Spake2(AnyStr),
    Confirm(AnyStr),
}

#[derive(Deserialize)]
struct DescriptionShape {
    #[serde(rename = "type")]
    _kind: SdpKind,
    #[serde(rename = "sdp")]
    _sdp: AnyStr,
}

#[derive(Deserialize)]
struct CandidateShape {
    #[serde(rename = "candidate")]
    _candidate: AnyStr,
    #[serde(rename = "sdpMid", default)]
    _sdp_mid: Option<AnyStr>,
    #[serde(rename = "sdpMLineIndex", default)]
    _sdp_m_line_index: Option<u16>,
    #[serde(rename = "usernameFragment", default)]
    _username_fragment: Option<AnyStr>,
}

/// Any JSON string, read and dropped.
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl ServerMessage {
    /// Parses one text frame from the relay.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Serialises for the wire.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect(SERIALISE_INFALLIBLE)
    }
}

/// Our message types hold only strings, numbers and plain enums, which serde_json always
/// serialises; a failure would be a bug in this module, not bad input.
const SERIALISE_INFALLIBLE: &str = "protocol messages always serialise";

/// Checks a room name: 1 to [`MAX_ROOM_CHARS`] characters, none of them control or
/// formatting characters, so a room name can be logged and shown safely.
pub fn validate_room(room: &str) -> Result<(), Refusal> {
    validate_label(room, MAX_ROOM_CHARS)
        .map_err(|why| Refusal::new(ErrorCode::BadRoom, format!("The room name {why}.")))
}

/// `name-N`, shortened to fit the name limit: what a client that found its name taken
/// may use instead.
#[must_use]
pub fn alternative_name(name: &str, n: u32) -> String {
    let suffix = format!("-{n}");
    let keep = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
    let base: String = name.chars().take(keep).collect();
    format!("{base}{suffix}")
}

/// The first `name-N` (from `name-2`) that `taken` says is free: what to suggest to
/// someone whose name is in use.
pub fn first_free_name(name: &str, taken: impl Fn(&str) -> bool) -> String {
    (2..100)
        .map(|n| alternative_name(name, n))
        .find(|c| !taken(c))
        .unwrap_or_else(|| alternative_name(name, 100))
}

/// Checks a display name, as [`validate_room`] does, up to [`MAX_NAME_CHARS`].
pub fn validate_name(name: &str) -> Result<(), Refusal> {
    validate_label(name, MAX_NAME_CHARS)
        .map_err(|why| Refusal::new(ErrorCode::BadName, format!("The name {why}.")))
}

fn validate_label(s: &str, max: usize) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("is empty".to_owned());
    }
    let chars = s.chars().count();
    if chars > max {
        return Err(format!("has {chars} characters; the limit is {max}"));
    }
    if let Some(c) = s.chars().find(|c| is_unsafe_char(*c)) {
        return Err(format!("contains the control character U+{:04X}", u32::from(c)));
    }
    Ok(())
}

/// Characters that must never reach a log line or a terminal from someone else's input:
/// C0 and C1 controls, DEL, and the bidirectional overrides that reorder displayed text.
#[must_use]
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_round_trips_in_its_documented_shape() {
        let text = r#"{"type":"join","room":"demo","name":"alice","version":1}"#;
        let msg = ClientMessage::parse(text).expect("parses");
        assert_eq!(
            msg,
            ClientMessage::Join {
                room: "demo".into(),
                name: "alice".into(),
                version: 1,
                secret: None,
                resume: None,
                token: None,
            }
        );
        assert_eq!(msg.to_json(), text);
    }

    #[test]
    fn signals_use_the_browsers_shapes() {
        let offer =
            r#"{"type":"signal","to":"p1","signal":{"description":{"type":"offer","sdp":"v=0\r\n"}}}"#;
        let ClientMessage::Signal { signal: Signal::Description(d), .. } =
            ClientMessage::parse(offer).expect("offer parses")
        else {
            panic!("expected a description");
        };
        assert_eq!(d.kind, SdpKind::Offer);

        let cand = r#"{"type":"signal","to":"p1","signal":{"candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}}"#;
        let msg = ClientMessage::parse(cand).expect("candidate parses");
        assert_eq!(msg.to_json(), cand);
    }

    #[test]
    fn parse_tells_bad_json_from_unknown_type_from_bad_fields() {
        let code = |t: &str| ClientMessage::parse(t).expect_err("refused").code;
        assert_eq!(code("hello"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"room":"x"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"join","room":"x"}"#), ErrorCode::BadMessage);
        assert_eq!(
            code(r#"{"type":"signal","to":"p1","from":"p2","signal":{"candidate":{"candidate":""}}}"#),
            ErrorCode::BadMessage
        );
    }

    /// What the relay would forward for `text` the slow way: parse, then re-serialise.
    fn forwarded_slowly(text: &str) -> Option<ServerMessage> {
        match ClientMessage::parse(text) {
            Ok(ClientMessage::Signal { signal, .. }) => {
                Some(ServerMessage::Signal { from: PeerId("p1".into()), signal })
            }
            _ => None,
        }
    }

    fn forwarded_fast(text: &str) -> Option<ServerMessage> {
        let signal = SignalRef::parse(text)?;
        Some(
            ServerMessage::parse(&signal.forward_from(&PeerId("p1".into())))
                .expect("a forwarded frame parses"),
        )
    }

    #[test]
    fn the_fast_signal_path_accepts_and_forwards_what_the_parser_does() {
        for text in [
            r#"{"type":"signal","to":"p2","signal":{"description":{"type":"offer","sdp":"v=0
"}}}"#,
            r#"{"signal":{"candidate":{"candidate":"c","sdpMid":null,"extra":1}},"to":"p2","type":"signal"}"#,
            r#"{"type":"signal","to":"p2","signal":{"description":{"type":"dance","sdp":""}}}"#,
            r#"{"type":"signal","to":"p2","signal":{"candidate":{"candidate":"c"},"description":{"type":"offer","sdp":""}}}"#,
            r#"{"type":"signal","to":"p2","from":"p3","signal":{"candidate":{"candidate":"c"}}}"#,
            r#"{"type":"signal","to":"p2","signal":{"candidate":{"candidate":7}}}"#,
            r#"{"type":"join","room":"r","name":"n","version":1}"#,
        ] {
            assert_eq!(forwarded_fast(text), forwarded_slowly(text), "{text}");
        }
        let to = SignalRef::parse(r#"{"type":"signal","to":"p2","signal":{"candidate":{"candidate":"c"}}}"#);
        assert_eq!(to.map(|s| s.to.into_owned()).as_deref(), Some("p2"));
    }

    proptest::proptest! {
        /// Signal-shaped frames with arbitrary values: the fast path and the parser agree.
        #[test]
        fn fast_and_slow_signal_paths_agree(kind in "offer|answer|[a-z]{0,5}", key in "candidate|description|sdp|[a-z]{0,4}", a in ".{0,30}", n in proptest::num::i32::ANY) {
            for text in [
                format!(r#"{{"type":"signal","to":{a:?},"signal":{{"description":{{"type":"{kind}","sdp":{a:?}}}}}}}"#),
                format!(r#"{{"type":"signal","to":"p2","signal":{{"{key}":{{"candidate":{a:?},"sdpMLineIndex":{n}}}}}}}"#),
            ] {
                proptest::prop_assert_eq!(forwarded_fast(&text), forwarded_slowly(&text));
            }
        }

        /// No text frame makes the parser panic; it yields a message or a refusal.
        #[test]
        fn parsing_any_text_never_panics(text in ".{0,200}") {
            let _ = ClientMessage::parse(&text);
        }

        /// Nor does anything shaped like our messages with arbitrary values in it.
        #[test]
        fn parsing_near_messages_never_panics(kind in "join|signal|[a-z]{0,6}", a in ".{0,40}", b in ".{0,40}", n in proptest::num::i64::ANY) {
            let text = format!(r#"{{"type":"{kind}","room":{a:?},"name":{b:?},"version":{n},"to":{a:?},"signal":{{"candidate":{{"candidate":{b:?}}}}}}}"#);
            let _ = ClientMessage::parse(&text);
        }
    }

    #[test]
    fn labels_refuse_control_characters_and_overlong_names() {
        assert!(validate_room("general").is_ok());
        assert!(validate_room("한국어 방 🎉").is_ok());
        assert_eq!(validate_room("").expect_err("empty").code, ErrorCode::BadRoom);
        assert_eq!(validate_room("a\nb").expect_err("newline").code, ErrorCode::BadRoom);
        assert_eq!(validate_name("x\u{1b}[31m").expect_err("escape").code, ErrorCode::BadName);
        assert_eq!(validate_name("\u{202E}evil").expect_err("bidi").code, ErrorCode::BadName);
        assert!(validate_name(&"n".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(validate_name(&"n".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert_eq!(alternative_name("bob", 2), "bob-2");
        let long = alternative_name(&"n".repeat(MAX_NAME_CHARS), 12);
        assert!(validate_name(&long).is_ok() && long.ends_with("n-12"), "{long}");
    }
}
