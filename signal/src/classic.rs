//! The classic signaling format, as in the Spring `TextWebSocketHandler` examples: every
//! text frame is `{"event": ..., "data": ...}`, and the server forwards each one to every
//! other session. The relay serves it at `/signal` and forwards frames verbatim without
//! reading them; these types are for clients, and for the relay's own `error` event.
//!
//! `offer`, `answer` and `candidate` carry the browser's `RTCSessionDescriptionInit` and
//! `RTCIceCandidateInit`, so pages written for the Spring server work unchanged.
//! peertalk adds `hello` and `bye`, which such pages ignore, to decide who offers and to
//! notice who left; see PROTOCOL.md.

use serde::{Deserialize, Serialize};

use crate::proto::{ErrorCode, IceCandidate, Refusal, SessionDescription};

/// One classic frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "lowercase")]
pub enum ClassicMessage {
    Offer(SessionDescription),
    Answer(SessionDescription),
    Candidate(IceCandidate),
    /// A peertalk client announces itself; sent on connecting, and once in reply to each
    /// `hello` from an id not seen before.
    Hello(Hello),
    /// A peertalk client is leaving.
    Bye(Bye),
    /// From peertalk-signal only: something this client sent was refused.
    Error(ClassicError),
}

/// `hello`: who is here. Of two clients, the one with the greater `id` offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Random, 16 lowercase hex digits, new for every connection.
    pub id: String,
    pub name: String,
}

/// `bye`: the client with this id is leaving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bye {
    pub id: String,
}

/// `error`: the relay's refusal, with the same codes as the main protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<Refusal> for ClassicMessage {
    fn from(r: Refusal) -> Self {
        Self::Error(ClassicError { code: r.code, message: r.message })
    }
}

impl ClassicMessage {
    /// Parses one frame.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Serialises for the wire.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("classic messages hold only strings and plain enums")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::SdpKind;

    #[test]
    fn frames_have_the_spring_examples_shape() {
        let offer = r#"{"event":"offer","data":{"type":"offer","sdp":"v=0\r\n"}}"#;
        let msg = ClassicMessage::parse(offer).expect("parses");
        assert_eq!(
            msg,
            ClassicMessage::Offer(SessionDescription { kind: SdpKind::Offer, sdp: "v=0\r\n".into() })
        );
        assert_eq!(msg.to_json(), offer);

        let candidate = r#"{"event":"candidate","data":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
        assert_eq!(ClassicMessage::parse(candidate).expect("parses").to_json(), candidate);
    }

    #[test]
    fn refusals_become_error_events() {
        let refusal = Refusal::new(ErrorCode::RateLimited, "Slow down.");
        assert_eq!(
            ClassicMessage::from(refusal).to_json(),
            r#"{"event":"error","data":{"code":"rate-limited","message":"Slow down."}}"#
        );
    }

    #[test]
    fn browser_end_of_candidates_is_not_a_candidate() {
        assert!(ClassicMessage::parse(r#"{"event":"candidate","data":null}"#).is_err());
    }
}
