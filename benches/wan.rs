//! peertalk on a real path, not loopback: 25 ms each way, 100 Mbit/s, a 60 ms tail-drop
//! queue (a home router), at 0, 0.5% and 1% random loss, emulated between two network
//! namespaces (`tests/common/path.rs`). Beside each figure, one TCP connection on the same
//! path in the same run (BBR and CUBIC), the floor any TCP tool rides on; every rate is
//! also printed as a ratio to it, since only same-run ratios hold on a noisy machine.
//!
//! Run with `scripts/bench-wan` (needs root for the namespaces). `PEERTALK_WAN_RUNS=N`
//! repeats each row N times (3 by default) and prints min-max.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::path::PathSpec;
use common::wan::{Cargo, Scene, tcp_has, tcp_transfer};
use common::{ms, paced_round_trips};

const FILE: usize = 64 * 1024 * 1024;
const LOSSY_FILE: usize = 16 * 1024 * 1024;
const FILE_LIMIT: Duration = Duration::from_secs(300);
const FILE_WITH_CHAT: usize = 32 * 1024 * 1024;
const CHAT_LINES: usize = 60;
const CHAT_EVERY: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Figures {
    tcp_bbr: Vec<f64>,
    tcp_cubic: Vec<f64>,
    file: Vec<f64>,
    open: Vec<f64>,
    chat_p99: Vec<f64>,
    busy_p50: Vec<f64>,
    busy_p99: Vec<f64>,
    busy_max: Vec<f64>,
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("PEERTALK_WAN_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(3);
    let build = if cfg!(debug_assertions) { "debug build" } else { "release build" };
    println!("peertalk on an emulated path: {} ({build})\n", PathSpec::home(0.0));
    for loss in [0.0, 0.005, 0.01] {
        let mut f = Figures::default();
        for run in 0..runs {
            let mut spec = PathSpec::home(loss);
            spec.seed = 1 + run as u64;
            let Some(scene) = Scene::new("bench-wan", spec).await else {
                println!("skipped: no emulated path here (needs root and /dev/net/tun)");
                return;
            };
            measure(&scene, &mut f).await;
            drop(scene);
        }
        print_row(loss, &f);
    }
}

async fn measure(scene: &Scene, f: &mut Figures) {
    let rate = |bytes: usize, took: Duration| bytes as f64 / took.as_secs_f64() / 1e6;
    // A smaller file on a lossy path, where it is slower.
    let size = if scene.path.spec.loss > 0.0 { LOSSY_FILE } else { FILE };
    for (algorithm, into) in [("bbr", &mut f.tcp_bbr), ("cubic", &mut f.tcp_cubic)] {
        if tcp_has(algorithm) {
            into.push(rate(size, tcp_transfer(&scene.path, size, Some(algorithm))));
        }
    }

    // A file alone.
    let cargo = Cargo::new(size, 5);
    let bob_args = cargo.receiver_args();
    let bob_args: Vec<&str> = bob_args.iter().map(String::as_str).collect();
    let (mut alice, bob, open) = scene.pair("wan-file", &["--commands"], &bob_args).await;
    f.open.push(ms(open));
    let chat = paced_round_trips(&mut alice, 40, CHAT_EVERY).await;
    f.chat_p99.push(ms(percentile(chat, 0.99)));
    alice.say(&format!("/send {}", cargo.file.display())).await;
    alice.expect(|l| l["type"] == "file-offer", "the offer").await;
    let started = Instant::now();
    let done = tokio::time::timeout(FILE_LIMIT, async {
        while let Some(line) = alice.next_line().await {
            if line["type"] == "file-done" {
                return true;
            }
        }
        false
    })
    .await;
    if done == Ok(true) {
        f.file.push(rate(size, started.elapsed()));
    } else {
        println!("  (the file did not finish within {FILE_LIMIT:?})");
    }
    alice.close_input();
    let (_, bob) = tokio::join!(alice.finish(), bob.finish());
    assert!(done != Ok(true) || cargo.arrived_intact(), "bob's copy is intact: {}", bob.stderr);

    // A chat line every 50 ms while a file goes on the same connection.
    let cargo = Cargo::new(FILE_WITH_CHAT, 6);
    let bob_args = cargo.receiver_args();
    let bob_args: Vec<&str> = bob_args.iter().map(String::as_str).collect();
    let (mut alice, bob, _) = scene.pair("wan-both", &["--commands"], &bob_args).await;
    alice.say(&format!("/send {}", cargo.file.display())).await;
    alice.expect(|l| l["type"] == "file-progress", "the file under way").await;
    let busy = paced_round_trips(&mut alice, CHAT_LINES, CHAT_EVERY).await;
    f.busy_p50.push(ms(percentile(busy.clone(), 0.5)));
    f.busy_p99.push(ms(percentile(busy.clone(), 0.99)));
    f.busy_max.push(ms(percentile(busy, 1.0)));
    // The file has done its part; on a lossy path it would take a while yet.
    alice.kill().await;
    let mut bob = bob;
    bob.kill().await;
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn span(values: &[f64], digits: usize) -> String {
    if values.is_empty() {
        return "-".to_owned();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.digits$}-{max:.digits$}")
}

fn ratio(ours: &[f64], theirs: &[f64]) -> String {
    let ratios: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a / b).collect();
    span(&ratios, 2)
}

fn print_row(loss: f64, f: &Figures) {
    println!("{}% random loss ({} runs):", loss * 100.0, f.open.len());
    println!("  TCP, one connection: BBR {} MB/s, CUBIC {} MB/s", span(&f.tcp_bbr, 1), span(&f.tcp_cubic, 1));
    println!(
        "  peertalk, {} MiB file: {} MB/s; {} of TCP-BBR, {} of TCP-CUBIC",
        if loss > 0.0 { LOSSY_FILE >> 20 } else { FILE >> 20 },
        span(&f.file, 1),
        ratio(&f.file, &f.tcp_bbr),
        ratio(&f.file, &f.tcp_cubic)
    );
    println!("  chat alone, a line every 50 ms (write to delivered): p99 {} ms", span(&f.chat_p99, 0));
    println!(
        "  chat while a {} MiB file goes on the same connection: p50 {} ms, p99 {} ms, max {} ms",
        FILE_WITH_CHAT >> 20,
        span(&f.busy_p50, 0),
        span(&f.busy_p99, 0),
        span(&f.busy_max, 0)
    );
    println!("  open, bob's start to connected on both: {} ms\n", span(&f.open, 0));
}
