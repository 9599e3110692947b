//! A message's reply carries the SACK for it: the fix in `vendor/rtc-sctp` (see
//! vendor/PATCHES.md). Two sans-I/O peer connections chat in memory, each flushing what it
//! has to send after every packet it reads, as the driver does, before its application
//! replies. On the published crate a SACK is never bundled with DATA, so every other
//! exchange takes a datagram more each way.

mod common;

use std::time::{Duration, Instant};

use common::sansio::{addresses, carry, negotiated, next_deadline, opened, texts};
use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;

/// Exchanges counted once the connection has settled.
const EXCHANGES: usize = 20;

#[test]
fn a_chat_exchange_takes_one_datagram_each_way_because_replies_carry_the_sack() {
    let start = Instant::now();
    let (offer_addr, answer_addr) = addresses();
    let (mut offerer, mut answerer) = negotiated(start, offer_addr, answer_addr);

    // Open the channel on a virtual clock that jumps to the next deadline when idle.
    let mut now = start;
    let (mut offer_channel, mut answer_channel) = (None, None);
    while offer_channel.is_none() || answer_channel.is_none() {
        assert!(now < start + Duration::from_secs(10), "the channel did not open");
        let moved = carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |_| true)
            | carry(&mut answerer, &mut offerer, answer_addr, offer_addr, now, |_| true);
        offer_channel = offer_channel.or_else(|| opened(&mut offerer).pop());
        answer_channel = answer_channel.or_else(|| opened(&mut answerer).pop());
        if !moved {
            now = next_deadline(&mut offerer, &mut answerer, now);
            let _ = offerer.handle_timeout(now);
            let _ = answerer.handle_timeout(now);
        }
    }
    let (offer_channel, answer_channel) = (offer_channel.expect("open"), answer_channel.expect("open"));

    // Each exchange: a message one way, its reply the other. Both peers flush after every
    // packet they read, so an acknowledgement that is due leaves before the reply exists.
    let mut datagrams = 0;
    let mut exchange = |n: usize, now: Instant| {
        let mut count = 0;
        let text = format!("message {n}");
        offerer.data_channel(offer_channel).expect("channel").send_text(now, text.clone()).expect("sent");
        count += settle(&mut offerer, &mut answerer, now);
        assert_eq!(texts(&mut answerer), vec![text.clone()]);
        answerer
            .data_channel(answer_channel)
            .expect("channel")
            .send_text(now, format!("re: {text}"))
            .expect("sent");
        count += settle(&mut offerer, &mut answerer, now);
        assert_eq!(texts(&mut offerer), vec![format!("re: {text}")]);
        count
    };
    for n in 0..3 {
        exchange(n, now);
    }
    for n in 0..EXCHANGES {
        // 100 µs a round trip: far inside the 200 ms delayed-acknowledgement timer.
        now += Duration::from_micros(100);
        datagrams += exchange(n, now);
    }
    assert_eq!(
        datagrams,
        2 * EXCHANGES,
        "{EXCHANGES} exchanges took {datagrams} datagrams: SACKs left on their own instead of with the replies"
    );
}

/// Carries packets both ways until neither peer has anything to send; returns how many.
fn settle(a: &mut RTCPeerConnection, b: &mut RTCPeerConnection, now: Instant) -> usize {
    let (a_addr, b_addr) = addresses();
    let mut count = 0;
    loop {
        let mut moved = false;
        moved |= carry(a, b, a_addr, b_addr, now, |_| {
            count += 1;
            true
        });
        moved |= carry(b, a, b_addr, a_addr, now, |_| {
            count += 1;
            true
        });
        if !moved {
            return count;
        }
    }
}
