//! A DTLS server whose reply flight was lost sends it again: the fix in `vendor/rtc-dtls`
//! (see vendor/PATCHES.md). The client repeats its ClientHello when its timer fires, just
//! before the server's own timer would resend the lost flight. On the published crate that
//! repeated hello stops the server's timer for good, the flight is never sent again, and
//! the handshake stalls until the client gives up (peertalk replaced such a connection
//! after 5 s).

mod common;

use std::time::{Duration, Instant};

use common::sansio::{addresses, carry, connected, drain, negotiated, next_deadline};
use rtc::sansio::Protocol;

/// Each step that moves packets takes this long on the virtual clock: a link's latency.
const STEP: Duration = Duration::from_micros(50);

/// A DTLS handshake record carrying a ServerHello: content type 22, and after the 13-byte
/// record header, handshake type 2.
fn is_server_hello(packet: &[u8]) -> bool {
    packet.len() > 13 && packet[0] == 22 && packet[13] == 2
}

#[test]
fn a_dtls_server_sends_its_lost_flight_again_after_the_client_repeats_its_hello() {
    let start = Instant::now();
    let (offer_addr, answer_addr) = addresses();
    let (mut offerer, mut answerer) = negotiated(start, offer_addr, answer_addr);

    let mut now = start;
    let mut dropped = false;
    let mut up_at = None;
    while up_at.is_none() && now < start + Duration::from_secs(30) {
        let offered = carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |_| true);
        // The server's first ServerHello flight is lost on the way.
        let answered = carry(&mut answerer, &mut offerer, answer_addr, offer_addr, now, |packet| {
            let lose = !dropped && is_server_hello(packet);
            dropped |= lose;
            !lose
        });
        if drain(&mut offerer, &mut answerer, connected) {
            up_at.get_or_insert(now);
        }
        now = if offered || answered { now + STEP } else { next_deadline(&mut offerer, &mut answerer, now) };
        let _ = offerer.handle_timeout(now);
        let _ = answerer.handle_timeout(now);
    }
    assert!(dropped, "the server never sent a ServerHello");
    let up = up_at.expect("the handshake never completed: the lost flight was not sent again");
    // Fixed: the server's retransmission timer (1 s) resends the flight.
    assert!(up.duration_since(start) < Duration::from_secs(3), "connected after {:?}", up - start);
}
