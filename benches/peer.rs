//! In-process figures: two peers in one process, joined by an in-memory signaling hop,
//! measured at the peer module's edge (commands in, events out), the way Chromium's own
//! figures are measured between two `RTCPeerConnection`s in one page. What is left is the
//! WebRTC stack (ICE, DTLS, SCTP) and our peer task, without processes, pipes or a relay.
//!
//! Run with `scripts/bench`. Prints figures; asserts nothing. The runtime is the
//! client's: one thread.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::in_process::{Pair, next_message};
use common::{percentiles, spread};
use peertalk::peer::PeerCommand;

const OPEN_RUNS: usize = 10;
const RTT_MESSAGES: usize = 5000;
const WARM_UP: usize = 200;
const BULK_BYTES: usize = 64 * 1024 * 1024;
const BULK_MESSAGE: usize = 16 * 1024;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!("peertalk in-process benchmark: two peers in one process, no relay\n");
        // `cargo bench --bench peer -- NAME` runs the figures whose name contains NAME.
        let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
        let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
        if wanted("open") {
            open_time().await;
        }
        if wanted("round-trip") {
            round_trip().await;
        }
        if wanted("throughput") {
            throughput().await;
        }
    });
}

/// From creating both peer connections until both chat channels are open.
async fn open_time() {
    let mut samples = Vec::new();
    for _ in 0..OPEN_RUNS {
        let started = Instant::now();
        let mut pair = Pair::start();
        pair.opened().await;
        samples.push(started.elapsed());
        pair.close().await;
    }
    println!(
        "In-process DataChannel open, both peers created to open on both sides: {}",
        spread(&mut samples)
    );
}

/// One message at a time, alice to bob and bob's echo back, timed at alice from the send
/// command to the echo's event.
async fn round_trip() {
    let mut pair = Pair::start();
    pair.opened().await;
    let Pair { alice, bob, alice_events, bob_events, .. } = &mut pair;
    let mut samples = Vec::with_capacity(RTT_MESSAGES);
    let payload: Arc<str> = Arc::from(format!("{{\"ping\":\"{}\"}}", "x".repeat(40)));
    for i in 0..RTT_MESSAGES + WARM_UP {
        let sent = Instant::now();
        alice.command(PeerCommand::Send(payload.clone()));
        let text = next_message(bob_events).await;
        bob.command(PeerCommand::Send(Arc::from(text)));
        next_message(alice_events).await;
        if i >= WARM_UP {
            samples.push(sent.elapsed());
        }
    }
    samples.sort();
    println!(
        "In-process round trip (DataChannel to DataChannel and back), {RTT_MESSAGES} messages after {WARM_UP} warm-up: {}",
        percentiles(&samples)
    );
    pair.close().await;
}

/// 64 MiB in 16 KiB messages from alice to bob, timed from the first send until bob has
/// the last; the process's peak RSS covers both peers.
async fn throughput() {
    let mut pair = Pair::start();
    pair.opened().await;
    let count = BULK_BYTES / BULK_MESSAGE;
    let payload: Arc<str> = Arc::from("y".repeat(BULK_MESSAGE));
    let started = Instant::now();
    for _ in 0..count {
        pair.alice.command(PeerCommand::Send(payload.clone()));
    }
    for _ in 0..count {
        next_message(&mut pair.bob_events).await;
    }
    let elapsed = started.elapsed();
    println!(
        "In-process throughput, 64 MiB in {count} messages of 16 KiB: {:.2} s, {:.1} MB/s; peak RSS of both peers {:.1} MiB",
        elapsed.as_secs_f64(),
        BULK_BYTES as f64 / 1e6 / elapsed.as_secs_f64(),
        common::vm_hwm_kib(std::process::id()) as f64 / 1024.0
    );
    pair.close().await;
}
