//! What peers say to each other over the chat DataChannel: JSON text messages, one
//! envelope each. Every chat message carries an id that the receiver acknowledges, so
//! the sender knows what was delivered.

use serde::{Deserialize, Serialize};

/// The largest encoded envelope we send. 64 KiB is the SCTP message size every WebRTC
/// stack accepts; a larger send can be dropped silently by the other side.
pub const MAX_ENVELOPE_BYTES: usize = 65_536;

/// One DataChannel message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Envelope {
    /// A chat message. `id` counts up from 1 per sender and connection; `ts` is the
    /// sender's clock in milliseconds since the Unix epoch; `private` when it was sent to
    /// this member alone (left out when false).
    Chat {
        id: u64,
        from: String,
        ts: u64,
        text: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        private: bool,
    },
    /// The receiver got chat message `id`.
    Ack { id: u64 },
}

impl Envelope {
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("envelopes hold only strings and numbers")
    }

    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::Envelope;

    #[test]
    fn chat_and_ack_have_stable_json_shapes() {
        let chat = Envelope::Chat {
            id: 7,
            from: "alice".into(),
            ts: 1_700_000_000_000,
            text: "hi 👋".into(),
            private: false,
        };
        assert_eq!(
            chat.to_json(),
            r#"{"type":"chat","id":7,"from":"alice","ts":1700000000000,"text":"hi 👋"}"#
        );
        assert_eq!(Envelope::parse(r#"{"type":"ack","id":7}"#).expect("parses"), Envelope::Ack { id: 7 });
        let private = r#"{"type":"chat","id":8,"from":"alice","ts":1,"text":"psst","private":true}"#;
        assert!(matches!(Envelope::parse(private), Ok(Envelope::Chat { private: true, .. })));
        assert_eq!(Envelope::parse(private).expect("parses").to_json(), private);
    }
}
