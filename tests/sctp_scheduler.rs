//! A chat line never waits behind a file: the stream scheduler in `vendor/rtc-sctp` (see
//! vendor/PATCHES.md). Two sans-I/O peer connections in memory, on a virtual clock: the
//! offerer queues 2 MiB of file data on one channel, then one chat line on another.
//! The published crate sends every stream's messages from one queue in the order they
//! were written, so the line arrived after all 2 MiB; with streams taking turns a message
//! at a time, it arrives after at most the file message being sent.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::sansio::{Received, addresses, carry, negotiated, next_deadline, opened, received};
use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;

const FILE_MESSAGE: usize = 64 * 1024;
const FILE_MESSAGES: usize = 32;

#[test]
fn a_chat_line_overtakes_a_queued_file_instead_of_waiting_behind_it() {
    let start = Instant::now();
    let (offer_addr, answer_addr) = addresses();
    let (mut offerer, mut answerer) = negotiated(start, offer_addr, answer_addr);
    let mut now = start;
    let step = |offerer: &mut RTCPeerConnection, answerer: &mut RTCPeerConnection, now: &mut Instant| {
        let moved = carry(offerer, answerer, offer_addr, answer_addr, *now, |_| true)
            | carry(answerer, offerer, answer_addr, offer_addr, *now, |_| true);
        if !moved {
            *now = next_deadline(offerer, answerer, *now);
            let _ = offerer.handle_timeout(*now);
            let _ = answerer.handle_timeout(*now);
        }
    };

    // The chat channel (made with the offer) opens; then a file channel beside it.
    let chat = loop {
        assert!(now < start + Duration::from_secs(10), "the chat channel did not open");
        step(&mut offerer, &mut answerer, &mut now);
        let _ = (received(&mut answerer), opened(&mut answerer));
        if let Some(id) = opened(&mut offerer).pop() {
            break id;
        }
    };
    // Until the answerer has it too.
    for _ in 0..100 {
        step(&mut offerer, &mut answerer, &mut now);
        let _ = (received(&mut answerer), opened(&mut answerer));
    }
    let file = offerer.create_data_channel("file:1", None).expect("a file channel").id();
    loop {
        assert!(now < start + Duration::from_secs(20), "the file channel did not open");
        step(&mut offerer, &mut answerer, &mut now);
        let _ = received(&mut answerer);
        let (ours, theirs) = (opened(&mut offerer), opened(&mut answerer));
        if ours.contains(&file) || !theirs.is_empty() {
            break;
        }
    }

    // The file is written first, all of it, as a sender with a large buffer does; the
    // chat line after it.
    for i in 0..FILE_MESSAGES {
        let data = BytesMut::from(&vec![u8::try_from(i % 251).expect("small"); FILE_MESSAGE][..]);
        offerer.data_channel(file).expect("the file channel").send(now, data).expect("queued");
    }
    offerer.data_channel(chat).expect("the chat channel").send_text(now, "hello").expect("queued");

    let mut file_bytes_first = 0;
    loop {
        assert!(now < start + Duration::from_secs(60), "the chat line never arrived");
        step(&mut offerer, &mut answerer, &mut now);
        let got = received(&mut answerer);
        if let Some(at) = got.iter().position(|m| matches!(m, Received::Text(t) if t == "hello")) {
            file_bytes_first += got[..at].iter().map(Received::binary_len).sum::<usize>();
            break;
        }
        file_bytes_first += got.iter().map(Received::binary_len).sum::<usize>();
    }
    assert!(
        file_bytes_first <= FILE_MESSAGE,
        "the chat line waited behind {file_bytes_first} bytes of file (at most one {FILE_MESSAGE}-byte message was due)"
    );
}
