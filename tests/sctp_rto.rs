//! A lost chat line is sent again soon: the tail-loss probe and the retransmission
//! timeout's floor in `vendor/rtc-sctp` (see vendor/PATCHES.md). Two sans-I/O peer
//! connections in memory, on a virtual clock; the one datagram that carries a line is lost
//! and nothing follows it, so only a timer can repair it. The published crate had only
//! T3-rtx, with a 1 s floor (RFC 4960's conservative default), which every lost chat line
//! paid in full.

mod common;

use std::time::{Duration, Instant};

use common::sansio::{addresses, carry, negotiated, next_deadline, opened, texts};
use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;

#[test]
fn a_lost_chat_line_is_sent_again_within_half_a_second_even_when_the_probe_is_lost_too() {
    // The tail-loss probe leaves two round trips after the line; lost as well, only the
    // retransmission timer is left.
    let repaired = repair_time(Duration::from_millis(300));
    assert!(
        repaired <= Duration::from_millis(500),
        "the lost line arrived {repaired:?} after it was sent: a retransmission timer floor fit for a 50 ms path is a few hundred ms"
    );
}

#[test]
fn a_lost_chat_line_alone_is_repaired_by_a_probe_in_about_two_round_trips() {
    let repaired = repair_time(Duration::ZERO);
    assert!(
        repaired <= Duration::from_millis(100),
        "the lost line arrived {repaired:?} after it was sent, on a 20 ms round trip: nothing after it reported the loss, so only a timer repaired it"
    );
}

/// Sends a chat line on a connection that knows its 20 ms round trip, loses every
/// datagram the sender sends for `blackout` after it, and returns how long the line took
/// to arrive.
fn repair_time(blackout: Duration) -> Duration {
    let start = Instant::now();
    let (offer_addr, answer_addr) = addresses();
    let (mut offerer, mut answerer) = negotiated(start, offer_addr, answer_addr);
    let mut now = start;
    let (mut chat, mut their_chat) = (None, None);
    while chat.is_none() || their_chat.is_none() {
        assert!(now < start + Duration::from_secs(10), "the chat channel did not open");
        if !exchange(&mut offerer, &mut answerer, now, |_| true) {
            now = advance(&mut offerer, &mut answerer, now);
        }
        chat = chat.or_else(|| opened(&mut offerer).pop());
        their_chat = their_chat.or_else(|| opened(&mut answerer).pop());
    }
    let (chat, their_chat) = (chat.expect("open"), their_chat.expect("open"));
    // A few lines, each answered at once as peertalk answers (an acknowledgement, which
    // carries the SACK), on a 20 ms round trip: the timer learns the path.
    for n in 0..5 {
        offerer.data_channel(chat).expect("chat").send_text(now, format!("warm {n}")).expect("queued");
        now += Duration::from_millis(10);
        carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |_| true);
        let _ = texts(&mut answerer);
        answerer.data_channel(their_chat).expect("chat").send_text(now, format!("ack {n}")).expect("queued");
        now += Duration::from_millis(10);
        carry(&mut answerer, &mut offerer, answer_addr, offer_addr, now, |_| true);
        let _ = texts(&mut offerer);
    }
    now += Duration::from_millis(500);
    let _ = offerer.handle_timeout(now);
    let _ = answerer.handle_timeout(now);
    exchange(&mut offerer, &mut answerer, now, |_| true);

    // The line's datagram is lost, and so is everything the sender sends during the
    // blackout; then the link works again.
    let sent_at = now;
    offerer.data_channel(chat).expect("chat").send_text(now, "lost once").expect("queued");
    let mut lost = false;
    carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |_| {
        lost = true;
        false
    });
    assert!(lost, "the line left in a datagram");
    loop {
        assert!(now < sent_at + Duration::from_secs(5), "the line was never sent again");
        now = advance(&mut offerer, &mut answerer, now);
        let dark = now < sent_at + blackout;
        carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |_| !dark);
        exchange(&mut offerer, &mut answerer, now, |_| true);
        if texts(&mut answerer).iter().any(|t| t == "lost once") {
            return now - sent_at;
        }
    }
}

/// Carries what each peer has to send to the other once; says whether anything moved.
fn exchange(
    offerer: &mut RTCPeerConnection,
    answerer: &mut RTCPeerConnection,
    now: Instant,
    arrives: impl FnMut(&[u8]) -> bool + Copy,
) -> bool {
    let (offer_addr, answer_addr) = addresses();
    let mut moved = false;
    while carry(offerer, answerer, offer_addr, answer_addr, now, arrives)
        | carry(answerer, offerer, answer_addr, offer_addr, now, arrives)
    {
        moved = true;
    }
    moved
}

/// Moves the clock to the peers' next deadline and lets their timers fire.
fn advance(offerer: &mut RTCPeerConnection, answerer: &mut RTCPeerConnection, now: Instant) -> Instant {
    let next = next_deadline(offerer, answerer, now).max(now + Duration::from_millis(1));
    let _ = offerer.handle_timeout(next);
    let _ = answerer.handle_timeout(next);
    next
}
