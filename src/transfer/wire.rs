//! The control messages of a transfer channel (signal/PROTOCOL.md, "Between peers"):
//! JSON text messages, tagged by `type`. File data goes between them as binary messages.

use serde::{Deserialize, Serialize};

/// One control message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Control {
    /// The sender's first message on every channel it opens for the transfer, a resumed
    /// one too. `sha256` is lowercase hex of the whole file; `mime` its media type, when
    /// known.
    Offer {
        name: String,
        size: u64,
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime: Option<String>,
    },
    /// The receiver takes the file: send it from byte `offset` on (0, or what it already
    /// has when the transfer resumes on a new channel).
    Accept { offset: u64 },
    /// The receiver does not take it, and says why.
    Decline { reason: String },
    /// The sender has sent every byte.
    End,
    /// The receiver has the whole file, with this SHA-256, and kept it.
    Done { sha256: String },
    /// Either side: the transfer cannot go on, and why.
    Failed { reason: String },
    /// Either side: the user stopped the transfer.
    Cancel { reason: String },
}

impl Control {
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("control messages hold only strings and numbers")
    }

    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Whether `hash` is a SHA-256 in lowercase hex.
#[must_use]
pub fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Lowercase hex of a digest.
pub use peertalk_signal::hex::encode as hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_have_stable_json_shapes() {
        let offer = Control::Offer { name: "a.txt".into(), size: 3, sha256: "ab".repeat(32), mime: None };
        assert_eq!(
            offer.to_json(),
            format!(r#"{{"type":"offer","name":"a.txt","size":3,"sha256":"{}"}}"#, "ab".repeat(32))
        );
        assert_eq!(
            Control::parse(r#"{"type":"accept","offset":65536}"#).ok(),
            Some(Control::Accept { offset: 65536 })
        );
        assert_eq!(Control::End.to_json(), r#"{"type":"end"}"#);
        assert_eq!(
            Control::parse(r#"{"type":"cancel","reason":"cancelled by bob"}"#).ok(),
            Some(Control::Cancel { reason: "cancelled by bob".into() })
        );
    }

    #[test]
    fn hashes_are_lowercase_hex_of_64_digits() {
        assert!(is_sha256_hex(&"0f".repeat(32)));
        assert!(!is_sha256_hex(&"0F".repeat(32)));
        assert!(!is_sha256_hex("abc"));
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
