//! Any bytes a client or a relay might send, in either format: parsing never panics,
//! whatever parses serialises and parses back to itself, and the relay's fast path for
//! signals agrees with the full parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peertalk_signal::classic::ClassicMessage;
use peertalk_signal::proto::{ClientMessage, PeerId, ServerMessage, SignalRef};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = ClientMessage::parse(text);
    if let Ok(message) = &parsed {
        let again = ClientMessage::parse(&message.to_json()).expect("our own JSON parses");
        assert_eq!(&again, message);
    }
    // The relay's fast path for signals accepts and forwards exactly what the parser does.
    let from = PeerId("p1".into());
    let fast = SignalRef::parse(text).map(|s| {
        (s.to.to_string(), ServerMessage::parse(&s.forward_from(&from)).expect("forwarded frame parses"))
    });
    let slow = match parsed {
        Ok(ClientMessage::Signal { to, signal }) => Some((to.0, ServerMessage::Signal { from, signal })),
        _ => None,
    };
    assert_eq!(fast, slow);
    let _ = ServerMessage::parse(text);
    if let Ok(message) = ClassicMessage::parse(text) {
        let again = ClassicMessage::parse(&message.to_json()).expect("our own JSON parses");
        assert_eq!(again, message);
    }
});
