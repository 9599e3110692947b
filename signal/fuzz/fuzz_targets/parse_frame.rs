//! Any bytes a client or a relay might send, in either format: parsing never panics, and whatever parses
//! as a client message serialises and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peertalk_signal::classic::ClassicMessage;
use peertalk_signal::proto::{ClientMessage, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = ClientMessage::parse(text) {
        let again = ClientMessage::parse(&message.to_json()).expect("our own JSON parses");
        assert_eq!(again, message);
    }
    let _ = ServerMessage::parse(text);
    if let Ok(message) = ClassicMessage::parse(text) {
        let again = ClassicMessage::parse(&message.to_json()).expect("our own JSON parses");
        assert_eq!(again, message);
    }
});
