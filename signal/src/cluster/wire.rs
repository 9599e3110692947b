//! What relays say to each other over Redis pub/sub: one channel per relay, so a message
//! goes only to the relays with someone who must hear it, and one publisher's messages
//! arrive in the order it sent them.

use serde::{Deserialize, Serialize};

use crate::proto::{PeerId, PeerInfo};
use crate::room::{Endpoint, RoomKey};

/// A relay's name in the cluster: random, new each time the relay starts.
pub type RelayId = String;

/// One message from relay to relay, `{"joined": {...}}` and so on; signals, nearly all
/// the traffic, go in the plainer form of [`signal_payload`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayMessage {
    /// `peer` entered `room` on relay `from`, or resumed there after being elsewhere.
    Joined { from: RelayId, room: String, peer: PeerInfo },
    /// `id`, on relay `from`, left `room`.
    Left { from: RelayId, room: String, id: PeerId },
    /// A classic frame for everyone in `room` on the receiving relay.
    Broadcast { room: String, frame: String },
}

impl RelayMessage {
    pub fn to_json(&self) -> String {
        // Plain strings and ids: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A signal frame for `to` on the receiving relay, already stamped with its sender: `s`,
/// the id, a newline, and the frame as `to` will get it. Neither side parses the frame.
#[must_use]
pub fn signal_payload(to: &PeerId, frame: &str) -> String {
    format!("s{}\n{frame}", to.0)
}

/// The addressee and frame of a [`signal_payload`].
#[must_use]
pub fn parse_signal(payload: &str) -> Option<(PeerId, &str)> {
    let (to, frame) = payload.strip_prefix('s')?.split_once('\n')?;
    Some((PeerId(to.to_owned()), frame))
}

/// A room as Redis keys and relay messages name it: the endpoint's letter, a colon, the name.
#[must_use]
pub fn room_text((endpoint, room): &RoomKey) -> String {
    let letter = match endpoint {
        Endpoint::Main => 'm',
        Endpoint::Classic => 'c',
    };
    format!("{letter}:{room}")
}

/// The room a [`room_text`] names.
#[must_use]
pub fn parse_room(text: &str) -> Option<RoomKey> {
    match text.split_once(':')? {
        ("m", room) => Some((Endpoint::Main, room.to_owned())),
        ("c", room) => Some((Endpoint::Classic, room.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_round_trip_through_their_text_form_even_with_colons() {
        for key in [(Endpoint::Main, "demo".to_owned()), (Endpoint::Classic, "a:b".to_owned())] {
            assert_eq!(parse_room(&room_text(&key)), Some(key));
        }
        assert_eq!(parse_room("x:demo"), None);
    }

    #[test]
    fn every_message_reads_back() {
        let peer = PeerInfo { id: PeerId("p1".into()), name: "ann".into() };
        for message in [
            RelayMessage::Joined { from: "r1".into(), room: "m:x".into(), peer },
            RelayMessage::Left { from: "r1".into(), room: "m:x".into(), id: PeerId("p1".into()) },
            RelayMessage::Broadcast { room: "c:x".into(), frame: "not json".into() },
        ] {
            let text = message.to_json();
            let back: RelayMessage = serde_json::from_str(&text).expect("parses");
            assert_eq!(back.to_json(), text);
        }
    }

    #[test]
    fn a_signal_frame_travels_unchanged() {
        let frame = "{\"type\":\"signal\",\"from\":\"p1\",\"signal\":{\"candidate\":\"a\\nb\"}}";
        let payload = signal_payload(&PeerId("p2".into()), frame);
        assert_eq!(parse_signal(&payload), Some((PeerId("p2".into()), frame)));
        assert_eq!(parse_signal("{\"left\":{}}"), None, "JSON messages are not signals");
    }
}
