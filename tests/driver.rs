//! The webrtc driver sends what it queues at once, not on its next timer: the fixes in
//! `vendor/webrtc` (see vendor/PATCHES.md). Each test fails on the published crate, where
//! the first waits for two 200 ms driver timers, the second for the next wake, the third
//! for the next ICE check tick, and the fourth for a 200 ms timer once DTLS is done.
//!
//! These are the only timed tests: the bug is a wait, and the margins are wide (the
//! minimum of several runs against a bound several times what the fixed code takes).

mod common;

use std::time::{Duration, Instant};

use common::in_process::Pair;
use common::{Client, Relay, connected_pair, round_trips};

/// Starting the offerer until both sides have the chat channel open, the best of 3.
async fn best_open(relay: &str, flags: &[&str]) -> Duration {
    let mut best = Duration::MAX;
    for run in 0..3 {
        let room = format!("prompt-{run}");
        let mut alice = Client::start(Some(relay), &room, "alice", flags);
        alice.expect_type("joined").await;
        let started = Instant::now();
        let mut bob = Client::start(Some(relay), &room, "bob", flags);
        tokio::join!(alice.connected(), bob.connected());
        best = best.min(started.elapsed());
        alice.close_input();
        bob.close_input();
        let _ = tokio::join!(alice.finish(), bob.finish());
    }
    best
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_channel_opens_without_waiting_for_the_drivers_timer() {
    let relay = Relay::start().await;
    let best = best_open(&relay.url, &[]).await;
    // Fixed: ~30 ms in a debug build. Published crate: ~450 ms, two driver timers.
    assert!(best < Duration::from_millis(250), "the best open took {best:?}");
}

/// The same through coturn alone. Data from the TURN relayer reaches the core after the
/// driver polled the core's events, so what it causes (the DTLS handshake done, so SCTP
/// starts) must be handled in the same pass.
#[tokio::test(flavor = "multi_thread")]
async fn a_data_channel_over_turn_opens_without_waiting_for_the_drivers_timer() {
    let relay = Relay::start().await;
    let turn = common::turn::Turn::start().await;
    let mut flags = turn.flags(common::turn::PASSWORD);
    flags.push("--relay-only".to_owned());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let best = best_open(&relay.url, &flags).await;
    // Fixed: ~8 ms in a release build. Published crate: over 220 ms, a 200 ms timer.
    assert!(best < Duration::from_millis(120), "the best open took {best:?}");
}

/// Chat round trips over a TURN-relayed path: the median of 20.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_on_a_relayed_path_goes_out_without_waiting_for_the_drivers_timer() {
    let relay = Relay::start().await;
    let turn = common::turn::Turn::start().await;
    let mut flags = turn.flags(common::turn::PASSWORD);
    flags.push("--relay-only".to_owned());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (mut alice, mut bob) =
        connected_pair(&relay.url, "relayed", ("alice", &flags), ("bob", &flags)).await;
    let samples = round_trips(&mut alice, 20).await;
    let median = samples[samples.len() / 2];
    // Fixed: a few ms. Published crate: each message and each acknowledgement waits for
    // the driver's next wake, tens to hundreds of ms.
    assert!(median < Duration::from_millis(50), "median round trip {median:?}: {samples:?}");
    alice.close_input();
    bob.close_input();
    let _ = tokio::join!(alice.finish(), bob.finish());
}

/// Two peers in one process, from creating both until both chat channels are open, the
/// best of 5. A remote candidate asks the ICE agent for a check at once; the driver must
/// wake to send it rather than sleep until its next check tick (20 ms on our settings).
#[tokio::test]
async fn a_remote_candidate_is_checked_without_waiting_for_the_next_ice_tick() {
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let mut pair = Pair::start();
        pair.opened().await;
        best = best.min(started.elapsed());
        pair.close().await;
    }
    // Fixed: ~1 ms in a release build, a few in a debug one. Published crate: 22-24 ms.
    assert!(best < Duration::from_millis(10), "the best open took {best:?}");
}
