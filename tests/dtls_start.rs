//! The DTLS client's first flight leaves as soon as ICE has a path: the fix in
//! `vendor/rtc` (see vendor/PATCHES.md). Two sans-I/O peer connections trade packets in
//! memory on a virtual clock that moves only when nothing is left to deliver, so the test
//! sees whether the ClientHello needed a timer to leave. On the published crate it waits
//! for the next timer, which is the next ICE check.

mod common;

use std::time::{Duration, Instant};

use common::sansio::{addresses, carry, drain, ice_connected, is_dtls, negotiated, next_deadline};
use rtc::sansio::Protocol;

#[test]
fn the_dtls_client_hello_leaves_when_ice_connects_not_on_a_later_timer() {
    let start = Instant::now();
    let (offer_addr, answer_addr) = addresses();
    let (mut offerer, mut answerer) = negotiated(start, offer_addr, answer_addr);

    let mut now = start;
    let mut ice_connected_at = None;
    let mut client_hello_at = None;
    while client_hello_at.is_none() && now < start + Duration::from_secs(10) {
        let offered = carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |packet| {
            if is_dtls(packet) {
                client_hello_at.get_or_insert(now);
            }
            true
        });
        let answered = carry(&mut answerer, &mut offerer, answer_addr, offer_addr, now, |_| true);
        let moved = offered || answered;
        if drain(&mut offerer, &mut answerer, ice_connected) {
            ice_connected_at.get_or_insert(now);
        }
        if moved {
            continue;
        }
        // Nothing in flight: the clock moves to the next deadline.
        now = next_deadline(&mut offerer, &mut answerer, now);
        let _ = offerer.handle_timeout(now);
        let _ = answerer.handle_timeout(now);
    }
    let connected = ice_connected_at.expect("ICE connected");
    let hello = client_hello_at.expect("the offerer sent its ClientHello");
    assert_eq!(
        hello.duration_since(start),
        connected.duration_since(start),
        "the ClientHello waited {:?} after ICE connected",
        hello - connected
    );
}
