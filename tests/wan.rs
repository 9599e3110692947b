//! Over an emulated real path (`tests/common/path.rs`): 25 ms each way, 100 Mbit/s, a
//! 60 ms tail-drop queue, and seeded random loss, between two network namespaces. Where
//! namespaces or TUN devices cannot be made, each test is skipped and says so.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::note;
use common::path::{Path, PathSpec, in_namespace};
use common::wan::tcp_transfer;

fn path(test: &str, spec: PathSpec) -> Option<Path> {
    match Path::create(spec) {
        Ok(path) => Some(path),
        Err(e) => {
            note(&format!("SKIPPED {test}: no emulated path ({e})"));
            None
        }
    }
}

/// How long a TCP handshake from `a` to `b` takes: one round trip of the path.
fn handshake(path: &Path) -> Duration {
    let listener = {
        let at = format!("{}:0", path.b_ip);
        in_namespace(&path.b, move || std::net::TcpListener::bind(at).expect("listen")).join().expect("bind")
    };
    let to = listener.local_addr().expect("address");
    in_namespace(&path.a, move || {
        let started = Instant::now();
        let _stream = TcpStream::connect(to).expect("connect across the path");
        started.elapsed()
    })
    .join()
    .expect("connect")
}

#[test]
fn the_emulated_path_delays_paces_queues_and_cuts_as_told() {
    let Some(path) = path("the_emulated_path_delays_paces_queues_and_cuts_as_told", PathSpec::home(0.0))
    else {
        return;
    };
    let rtt = handshake(&path);
    assert!(
        (Duration::from_millis(49)..Duration::from_millis(70)).contains(&rtt),
        "a 50 ms round trip, measured {rtt:?}"
    );

    let bytes = 8 * 1024 * 1024;
    let took = tcp_transfer(&path, bytes, None);
    let rate = bytes as f64 / took.as_secs_f64() / 1e6;
    note(&format!("TCP over {}: {rate:.1} MB/s ({})", path.spec, path.report()));
    assert!(rate < 12.6, "no faster than 100 Mbit/s: {rate:.1} MB/s");
    assert!(rate > 3.0, "TCP fills much of the link: {rate:.1} MB/s");

    path.outage(true);
    let to = format!("{}:9", path.b_ip);
    let cut = in_namespace(&path.a, move || {
        let to = to.parse().expect("an address");
        TcpStream::connect_timeout(&to, Duration::from_millis(500)).is_err()
    });
    assert!(cut.join().expect("connect"), "nothing crosses a cut wire");
    path.outage(false);
    assert!(handshake(&path) < Duration::from_millis(70), "the wire works again once mended");
}

/// Chat lines written while a file goes: every one arrives, once, in order, and soon.
/// The bound has headroom for a loaded machine; `scripts/bench-wan` holds the figures.
const CHAT_BOUND: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn a_file_and_a_chat_share_a_lossy_path_and_nothing_is_lost_doubled_or_late() {
    let test = "a_file_and_a_chat_share_a_lossy_path_and_nothing_is_lost_doubled_or_late";
    let Some(scene) = common::wan::Scene::new(test, PathSpec { seed: 3, ..PathSpec::home(0.005) }).await
    else {
        return;
    };
    let cargo = common::wan::Cargo::new(4 * 1024 * 1024, 11);
    let bob_args = cargo.receiver_args();
    let bob_args: Vec<&str> = bob_args.iter().map(String::as_str).collect();
    let (mut alice, mut bob, _) = scene.pair("lossy", &["--commands"], &bob_args).await;
    alice.say(&format!("/send {}", cargo.file.display())).await;
    alice.expect(|l| l["type"] == "file-progress", "the file under way").await;
    let took = common::paced_round_trips(&mut alice, 40, Duration::from_millis(50)).await;
    let slowest = took.iter().max().expect("lines");
    assert!(*slowest < CHAT_BOUND, "a chat line took {slowest:?} beside the file");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !alice.seen.iter().any(|l| l["type"] == "file-done") {
        let line = tokio::time::timeout_at(deadline.into(), alice.next_line()).await;
        line.expect("the file within a minute").expect("alice runs");
    }
    bob.expect(|l| l["type"] == "file-done", "the file at bob").await;
    alice.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "{}", alice.stderr);
    assert!(cargo.arrived_intact(), "bob's copy is the file");
    let expected: Vec<String> = (0..40).map(|i| format!("paced {i} {}", "x".repeat(40))).collect();
    assert_eq!(bob.texts(), expected, "every line once, in order");
    note(&format!("a file and a chat over {}: {}", scene.path.spec, scene.path.report()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_goes_on_across_a_five_second_outage_without_starting_again() {
    let test = "a_transfer_goes_on_across_a_five_second_outage_without_starting_again";
    let Some(scene) = common::wan::Scene::new(test, PathSpec::home(0.0)).await else {
        return;
    };
    let size = 24 * 1024 * 1024;
    let cargo = common::wan::Cargo::new(size, 12);
    let bob_args = cargo.receiver_args();
    let bob_args: Vec<&str> = bob_args.iter().map(String::as_str).collect();
    let (mut alice, mut bob, _) = scene.pair("outage", &["--commands"], &bob_args).await;
    alice.say(&format!("/send {}", cargo.file.display())).await;
    alice.expect(|l| l["type"] == "file-progress" && l["bytes"].as_u64() > Some(0), "progress").await;
    scene.path.outage(true);
    tokio::time::sleep(Duration::from_secs(5)).await;
    scene.path.outage(false);
    let done = bob.expect(|l| l["type"] == "file-done" || l["type"] == "file-failed", "the file's end").await;
    assert_eq!(done["type"], "file-done", "{done}");
    assert!(cargo.arrived_intact(), "bob's copy is the file");
    let restarted = bob.seen.iter().any(|l| l["type"] == "file-resumed" && l["offset"] == 0);
    assert!(!restarted, "it went on from where it was, not from the start: {:#?}", bob.seen);
    let cut = scene.path.counts.dropped_in_outage.load(std::sync::atomic::Ordering::Relaxed);
    assert!(cut > 0, "the outage fell inside the transfer ({})", scene.path.report());
    alice.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "{}", alice.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    let done = alice.lines.iter().find(|l| l["type"] == "file-done").expect("alice's file-done");
    let sent = done["sent"].as_u64().expect("sent");
    assert!(sent < size as u64 + 8 * 1024 * 1024, "re-sent {} bytes", sent - size as u64);
    note(&format!("a transfer across a 5 s outage over {}: {}", scene.path.spec, scene.path.report()));
}
