//! A 1 GiB file from one process to another on loopback: peertalk, and beside it the
//! tools people use for this alone (magic-wormhole, croc), each with its own servers on
//! loopback. Wall time as a user waits for it, the
//! throughput of the transfer itself, and each side's peak memory.
//!
//! Run with `scripts/bench`, which installs the other tools when their packages exist.
//! Prints figures; asserts nothing but that every copy arrived intact.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::files::{TempDir, sha256};
use common::{Relay, vm_hwm_kib};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SIZE: usize = 1024 * 1024 * 1024;
const LIMIT: Duration = Duration::from_secs(300);

/// What one run came to.
struct Run {
    /// From starting the sender until both sides have exited.
    wall: Duration,
    /// The transfer alone, when the tool says when it starts and ends.
    transfer: Option<Duration>,
    sender_rss_kib: u64,
    receiver_rss_kib: u64,
}

#[tokio::main]
async fn main() {
    let dir = TempDir::new("bench-files");
    let file = write_random(dir.path(), "one-gib.bin", SIZE);
    let expected = sha256(&file);
    println!("File transfer benchmark: 1 GiB of random data between two processes on loopback\n");
    println!(
        "{:<34} {:>8} {:>12} {:>12} {:>11} {:>11}",
        "tool", "wall s", "wall MB/s", "xfer MB/s", "send RSS", "recv RSS"
    );
    let tools: [(&str, Option<Run>); 3] = [
        ("peertalk", Some(peertalk(&file, &expected).await)),
        ("magic-wormhole", wormhole(&dir, &file, &expected).await),
        ("croc", croc(&dir, &file, &expected).await),
    ];
    for (name, run) in tools {
        if let Some(run) = run {
            let mb = SIZE as f64 / 1e6;
            let transfer =
                run.transfer.map_or_else(|| "-".to_owned(), |t| format!("{:.1}", mb / t.as_secs_f64()));
            println!(
                "{name:<34} {:>8.2} {:>12.1} {transfer:>12} {:>7.1} MiB {:>7.1} MiB",
                run.wall.as_secs_f64(),
                mb / run.wall.as_secs_f64(),
                run.sender_rss_kib as f64 / 1024.0,
                run.receiver_rss_kib as f64 / 1024.0,
            );
        }
    }
    println!(
        "\nwall: from starting the sender until both have exited (peertalk's includes hashing the file and opening the connection)."
    );
    println!("xfer: from the sender's offer to the receiver's checked hash, where the tool reports them.");
}

/// peertalk: a relay, a receiver that takes one file, a sender.
async fn peertalk(file: &Path, expected: &str) -> Run {
    let relay = Relay::start().await;
    let inbox = TempDir::new("bench-in");
    let bin = env!("CARGO_BIN_EXE_peertalk");
    let base = ["--room", "bench-files", "--signal", &relay.url, "--json"];
    let mut receiver = Command::new(bin)
        .args(base)
        .args(["--name", "bob", "--accept-files", "--expect-files", "1", "--receive-dir", &inbox.arg()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the receiver");
    let mut lines = BufReader::new(receiver.stdout.take().expect("stdout")).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains(r#""type":"joined""#) {
            break;
        }
    }
    // The rest (progress, ten lines a second) is read so that the pipe never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let started = Instant::now();
    let mut sender = Command::new(bin)
        .args(base)
        .args(["--name", "alice", "--send-file", &file.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the sender");
    let mut sent = BufReader::new(sender.stdout.take().expect("stdout")).lines();
    let (mut offered, mut done) = (None, None);
    let watch = async {
        while let Ok(Some(line)) = sent.next_line().await {
            if line.contains(r#""type":"file-offer""#) {
                offered = Some(Instant::now());
            } else if line.contains(r#""type":"file-done""#) {
                done = Some(Instant::now());
            }
        }
    };
    let (sender_rss, receiver_rss) = watch_memory(&mut sender, &mut receiver, watch).await;
    let wall = started.elapsed();
    assert_eq!(sha256(&inbox.path().join("one-gib.bin")), expected, "peertalk's copy is intact");
    Run {
        wall,
        transfer: offered.zip(done).map(|(a, b)| b - a),
        sender_rss_kib: sender_rss,
        receiver_rss_kib: receiver_rss,
    }
}

/// magic-wormhole with its own mailbox server and transit relay on loopback.
async fn wormhole(dir: &TempDir, file: &Path, expected: &str) -> Option<Run> {
    for tool in ["wormhole", "twist3"] {
        if !installed(tool) {
            println!(
                "magic-wormhole: skipped ({tool} is not installed; scripts/bench installs it from Debian's packages)"
            );
            return None;
        }
    }
    let (mailbox_port, transit_port) = (free_port(), free_port());
    let mailbox = spawn(
        "twist3",
        &["wormhole-mailbox", &format!("--port=tcp:{mailbox_port}:interface=127.0.0.1")],
        dir.path(),
    );
    let transit = spawn(
        "twist3",
        &["transitrelay", &format!("--port=tcp:{transit_port}:interface=127.0.0.1")],
        dir.path(),
    );
    let (mut mailbox, mut transit) = (mailbox?, transit?);
    wait_for_port(mailbox_port).await;
    wait_for_port(transit_port).await;
    let relay_url = format!("ws://127.0.0.1:{mailbox_port}/v1");
    let helper = format!("tcp:127.0.0.1:{transit_port}");
    let code = "7-peertalk-bench";
    let out = dir.path().join("wormhole.out");
    let file_arg = file.display().to_string();
    let common = ["--relay-url", relay_url.as_str(), "--transit-helper", helper.as_str()];
    let send_args = [&common[..], &["send", "--code", code, &file_arg]].concat();
    let out_arg = out.display().to_string();
    let receive_args = [&common[..], &["receive", "--accept-file", "-o", &out_arg, code]].concat();
    let started = Instant::now();
    let mut sender = spawn("wormhole", &send_args, dir.path())?;
    // The receiver starts once the sender has claimed the code, as a person would.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut receiver = spawn("wormhole", &receive_args, dir.path())?;
    let (sender_rss, receiver_rss) = watch_memory(&mut sender, &mut receiver, std::future::ready(())).await;
    let wall = started.elapsed();
    let intact = out.exists() && sha256(&out) == expected;
    let _ = std::fs::remove_file(&out);
    let _ = mailbox.kill().await;
    let _ = transit.kill().await;
    if !intact {
        println!("magic-wormhole: the copy did not arrive intact; its figures are left out");
        return None;
    }
    Some(Run { wall, transfer: None, sender_rss_kib: sender_rss, receiver_rss_kib: receiver_rss })
}

/// croc with its own relay on loopback.
async fn croc(dir: &TempDir, file: &Path, expected: &str) -> Option<Run> {
    if !installed("croc") {
        println!(
            "croc: skipped (not installed; Debian 12 does not package it and it is a Go program, so scripts/bench installs it only where a package exists)"
        );
        return None;
    }
    let port = free_port();
    let ports = (port..port + 5).map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    let mut relay = spawn("croc", &["relay", "--host", "127.0.0.1", "--ports", &ports], dir.path())?;
    wait_for_port(port).await;
    let relay_addr = format!("127.0.0.1:{port}");
    let code = "7-peertalk-bench-croc";
    let started = Instant::now();
    let mut sender = spawn_env(
        "croc",
        &["--relay", &relay_addr, "--pass", "pass123", "send", &file.display().to_string()],
        dir.path(),
        &[("CROC_SECRET", code)],
    )?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let receive_dir = TempDir::new("bench-croc");
    let mut receiver = spawn_env(
        "croc",
        &["--relay", &relay_addr, "--pass", "pass123", "--yes", "--overwrite"],
        receive_dir.path(),
        &[("CROC_SECRET", code)],
    )?;
    let (sender_rss, receiver_rss) = watch_memory(&mut sender, &mut receiver, std::future::ready(())).await;
    let wall = started.elapsed();
    let _ = relay.kill().await;
    let copy = receive_dir.path().join("one-gib.bin");
    if !(copy.exists() && sha256(&copy) == expected) {
        println!("croc: the copy did not arrive intact; its figures are left out");
        return None;
    }
    Some(Run { wall, transfer: None, sender_rss_kib: sender_rss, receiver_rss_kib: receiver_rss })
}

/// Waits (bounded) for both processes to exit, reading their peak memory meanwhile, with
/// `also` running alongside; returns the peaks in KiB.
async fn watch_memory(
    sender: &mut Child,
    receiver: &mut Child,
    also: impl Future<Output = ()>,
) -> (u64, u64) {
    let (sender_pid, receiver_pid) = (sender.id().unwrap_or(0), receiver.id().unwrap_or(0));
    let (mut sender_peak, mut receiver_peak) = (0, 0);
    let waiting = async {
        let (a, b) = tokio::join!(sender.wait(), receiver.wait());
        let _ = (a, b);
    };
    let polling = async {
        loop {
            sender_peak = sender_peak.max(vm_hwm_kib(sender_pid));
            receiver_peak = receiver_peak.max(vm_hwm_kib(receiver_pid));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let done = async {
        tokio::join!(waiting, also);
    };
    tokio::select! {
        () = done => {}
        () = polling => {}
        () = tokio::time::sleep(LIMIT) => panic!("the transfer took longer than {LIMIT:?}"),
    }
    (sender_peak, receiver_peak)
}

fn installed(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn spawn(program: &str, args: &[&str], cwd: &Path) -> Option<Child> {
    spawn_env(program, args, cwd, &[])
}

fn spawn_env(program: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Option<Child> {
    match Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => Some(child),
        Err(e) => {
            println!("{program}: skipped (could not start it: {e})");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Waits until something listens on `port`.
async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `size` bytes of a fast pseudo-random stream, a megabyte at a time.
fn write_random(dir: &Path, name: &str, size: usize) -> PathBuf {
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create the file"));
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut block = vec![0u8; 1024 * 1024];
    for _ in 0..size / block.len() {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        out.write_all(&block).expect("write");
    }
    // On disk before anything is timed: writing it back would compete with the transfers.
    out.into_inner().expect("flush").sync_all().expect("sync");
    path
}
