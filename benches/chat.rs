//! End-to-end figures for a pair of headless clients and a relay on loopback, measured
//! from outside the processes: what a user or a script actually waits for.
//!
//! Run with `scripts/bench`. Prints figures; asserts nothing. The interface figures need
//! tmux (`apt-get install tmux`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    Client, Relay, WARM_UP, connected_pair, cpu_ticks, percentiles, round_trips, spread, vm_hwm_kib,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const OPEN_RUNS: usize = 5;
const OUTAGE_RUNS: usize = 3;
const OUTAGE: Duration = Duration::from_secs(5);
const RTT_MESSAGES: usize = 1000;
const TURN_RTT_MESSAGES: usize = 200;
const BULK_BYTES: usize = 64 * 1024 * 1024;
const BULK_MESSAGE: usize = 16 * 1024;

fn main() {
    if let Ok(role) = std::env::var(stand_in::ROLE) {
        return stand_in::run(&role);
    }
    tokio::runtime::Runtime::new().expect("start the runtime").block_on(async {
        let relay = Relay::start().await;
        println!("peertalk end-to-end benchmark: two headless clients and a relay on loopback\n");
        open_time(&relay.url, "host candidates", &[]).await;
        open_through_turn(&relay.url).await;
        outage_recovery().await;
        round_trip(&relay.url, "host path", &[], RTT_MESSAGES).await;
        round_trip_floor(RTT_MESSAGES).await;
        throughput(&relay.url).await;
        idle_interface(&relay.url).await;
    });
}

/// A connected client in the terminal interface (in tmux), left alone for 10 s: the CPU
/// it uses and its peak memory. Skipped, with a word, when tmux is not installed.
async fn idle_interface(relay: &str) {
    const IDLE: Duration = Duration::from_secs(10);
    if !std::process::Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
        println!("Idle interface: skipped (tmux is not installed)");
        return;
    }
    let socket = format!("peertalk-bench-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux").arg("-L").arg(&socket).args(args).output().expect("run tmux");
    };
    let pid_file = std::env::temp_dir().join(format!("peertalk-bench-{}.pid", std::process::id()));
    let log = std::env::temp_dir().join(format!("peertalk-bench-{}.log", std::process::id()));
    let command = format!(
        "echo $$ > {}; exec {} --room idle --name alice --signal {relay} --log-file {}",
        pid_file.display(),
        env!("CARGO_BIN_EXE_peertalk"),
        log.display()
    );
    tmux(&["new-session", "-d", "-s", "tui", "-x", "100", "-y", "30", &command]);
    let mut bob = Client::start(Some(relay), "idle", "bob", &[]);
    bob.connected().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid: u32 = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid");
    let before = cpu_ticks(pid);
    let started = Instant::now();
    tokio::time::sleep(IDLE).await;
    let used = cpu_ticks(pid) - before;
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let cpu_percent = used as f64 / ticks_per_sec / started.elapsed().as_secs_f64() * 100.0;
    println!(
        "Idle interface, connected, {} s untouched: CPU {cpu_percent:.2}% ({used} ticks of 10 ms); peak RSS {:.1} MiB",
        IDLE.as_secs(),
        vm_hwm_kib(pid) as f64 / 1024.0
    );
    tmux(&["kill-server"]);
    bob.close_input();
    let _ = bob.finish().await;
    let _ = std::fs::remove_file(pid_file);
    let _ = std::fs::remove_file(log);
}

/// Open time and chat round trip with every path through a real coturn on loopback
/// (`--relay-only`). Skipped,
/// with a word, when coturn is not installed.
async fn open_through_turn(relay: &str) {
    if std::process::Command::new("turnserver").arg("--help").output().is_err() {
        println!("DataChannel open through TURN: skipped (turnserver not installed; apt-get install coturn)");
        return;
    }
    let turn = common::turn::Turn::start().await;
    let mut flags = turn.flags(common::turn::PASSWORD);
    flags.push("--relay-only".to_owned());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    open_time(relay, "TURN only (--relay-only, coturn)", &flags).await;
    round_trip(relay, "TURN only (--relay-only, coturn)", &flags, TURN_RTT_MESSAGES).await;
}

/// From starting the second (offering) process until both clients print `connected`,
/// which they do when the DataChannel is open.
async fn open_time(relay: &str, paths: &str, flags: &[&str]) {
    let mut samples = Vec::new();
    for run in 0..OPEN_RUNS {
        let room = format!("open-{run}-{}", flags.len());
        let mut alice = Client::start(Some(relay), &room, "alice", flags);
        alice.expect_type("joined").await;
        let started = Instant::now();
        let mut bob = Client::start(Some(relay), &room, "bob", flags);
        let (_, _) = tokio::join!(alice.connected(), bob.connected());
        samples.push(started.elapsed());
        alice.close_input();
        bob.close_input();
        let _ = tokio::join!(alice.finish(), bob.finish());
    }
    println!("DataChannel open, {paths}, process start to open on both sides: {}", spread(&mut samples));
}

/// Two clients in two network namespaces joined by a veth pair: the link goes down for 5 s,
/// a message is sent 1 s into the outage, and the clock runs from the link coming back up
/// until the receiver prints the message. Skipped, with a word, without namespaces.
async fn outage_recovery() {
    let mut samples = Vec::new();
    for _ in 0..OUTAGE_RUNS {
        let link = match common::netns::Link::create() {
            Ok(link) => link,
            Err(why) => {
                println!("first delivery after a 5 s outage: skipped ({why})");
                return;
            }
        };
        let relay = Relay::start_in(&link.a, &["--listen", &format!("{}:0", link.a_ip)]).await;
        let mut alice = Client::start_in(&link.a, &relay.url, "outage", "alice", &["--bind", &link.a_ip]);
        alice.expect_type("joined").await;
        let mut bob = Client::start_in(&link.b, &relay.url, "outage", "bob", &["--bind", &link.b_ip]);
        let (_, _) = tokio::join!(alice.connected(), bob.connected());
        link.down();
        tokio::time::sleep(Duration::from_secs(1)).await;
        alice.say("sent during the outage").await;
        tokio::time::sleep(OUTAGE - Duration::from_secs(1)).await;
        link.up();
        let restored = Instant::now();
        bob.expect_type("message").await;
        samples.push(restored.elapsed());
        alice.close_input();
        bob.close_input();
        let _ = tokio::join!(alice.finish(), bob.finish());
    }
    println!(
        "first delivery after a 5 s outage, from link up to the message printed: {}",
        spread(&mut samples)
    );
}

/// One message at a time: from writing the line to the sender's stdin until the sender
/// prints `delivered` for it (the receiver's acknowledgement came back).
async fn round_trip(relay: &str, path: &str, flags: &[&str], count: usize) {
    let room = format!("rtt-{}", flags.len());
    let (mut alice, mut bob) = connected_pair(relay, &room, ("alice", flags), ("bob", flags)).await;
    let samples = round_trips(&mut alice, count).await;
    println!(
        "Chat round trip, {path} (stdin line -> delivered acknowledgement), {count} messages after {WARM_UP} warm-up: {}",
        percentiles(&samples)
    );
    alice.close_input();
    bob.close_input();
    let _ = tokio::join!(alice.finish(), bob.finish());
}

/// The round trip above with no work in it: two stand-in processes (this binary again) make
/// the same crossings (pipe in, a datagram each way on loopback, pipe out) and print the
/// same lines, but do nothing else. What the chat round trip costs above this is the
/// clients' own work; this part no client can remove on this machine.
async fn round_trip_floor(count: usize) {
    let program = std::env::current_exe().expect("this benchmark's path");
    let mut echo = Command::new(&program);
    echo.env(stand_in::ROLE, "echo");
    let mut echo = Client::start_command(echo, &[]);
    let port = echo.expect_type("listening").await["port"].to_string();
    let mut sender = Command::new(&program);
    sender.env(stand_in::ROLE, "sender");
    let mut sender = Client::start_command(sender, &[&port]);
    let samples = round_trips(&mut sender, count).await;
    println!(
        "Chat round trip floor, the same pipes and datagrams with no work (two stand-in processes), {count} messages after {WARM_UP} warm-up: {}",
        percentiles(&samples)
    );
    sender.close_input();
    let _ = sender.finish().await;
}

/// The two processes of [`round_trip_floor`]: plain blocking I/O, no runtime, nothing
/// parsed, one line written per crossing as the clients write theirs.
mod stand_in {
    use std::io::{BufRead, Write};
    use std::net::UdpSocket;

    /// The variable that makes this binary a stand-in, and says which.
    pub const ROLE: &str = "PEERTALK_BENCH_STAND_IN";

    pub fn run(role: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback socket");
        let mut out = std::io::stdout().lock();
        let mut datagram = [0u8; 2048];
        match role {
            // Like the receiving client: each message is answered, then printed.
            "echo" => {
                let port = socket.local_addr().expect("local address").port();
                writeln!(out, r#"{{"type":"listening","port":{port}}}"#).expect("write stdout");
                out.flush().expect("flush stdout");
                for id in 1.. {
                    let (len, from) = socket.recv_from(&mut datagram).expect("receive");
                    socket.send_to(&datagram[..len.min(8)], from).expect("answer");
                    writeln!(out, r#"{{"type":"message","id":{id}}}"#).expect("write stdout");
                    out.flush().expect("flush stdout");
                }
            }
            // Like the sending client: a line from stdin goes out, `sent` is printed, and
            // `delivered` once the answer is back.
            _ => {
                let port: u16 =
                    std::env::args().nth(1).and_then(|p| p.parse().ok()).expect("the echo's port");
                socket.connect(("127.0.0.1", port)).expect("connect to the echo");
                for (line, id) in std::io::stdin().lock().lines().zip(1u64..) {
                    socket.send(line.expect("read stdin").as_bytes()).expect("send");
                    writeln!(out, r#"{{"type":"sent","id":{id}}}"#).expect("write stdout");
                    out.flush().expect("flush stdout");
                    socket.recv(&mut datagram).expect("receive the answer");
                    writeln!(out, r#"{{"type":"delivered","id":{id}}}"#).expect("write stdout");
                    out.flush().expect("flush stdout");
                }
            }
        }
    }
}

/// 64 MiB in 16 KiB messages from alice's stdin to bob's stdout, timed from the first
/// byte written until bob has printed the last message. Reports the sender's peak RSS,
/// which the acknowledgement window and the DataChannel send limit keep bounded.
async fn throughput(relay: &str) {
    let count = BULK_BYTES / BULK_MESSAGE;
    let bin = env!("CARGO_BIN_EXE_peertalk");
    let mut bob = Command::new(bin)
        .args(["--headless", "--room", "bulk", "--name", "bob", "--signal", relay])
        .args(["--expect", &count.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start bob");
    let mut bob_err = BufReader::new(bob.stderr.take().expect("stderr")).lines();
    while let Some(line) = bob_err.next_line().await.expect("bob stderr") {
        if line.contains("joined room") {
            break;
        }
    }
    let mut alice = Command::new(bin)
        .args(["--headless", "--room", "bulk", "--name", "alice", "--signal", relay])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start alice");
    let alice_pid = alice.id().expect("alice pid");
    let mut stdin = alice.stdin.take().expect("stdin");
    let mut line = "y".repeat(BULK_MESSAGE);
    line.push('\n');
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..count {
            stdin.write_all(line.as_bytes()).await.expect("feed alice");
        }
    });
    let mut lines = BufReader::with_capacity(1 << 20, bob.stdout.take().expect("stdout")).lines();
    let mut received = 0usize;
    let mut peak_rss_kib = 0u64;
    while received < count {
        match tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await {
            Ok(Ok(Some(_))) => received += 1,
            other => panic!("bulk transfer stalled after {received} messages: {other:?}"),
        }
        if received.is_multiple_of(256) {
            peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(alice_pid));
        }
    }
    let elapsed = started.elapsed();
    peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(alice_pid));
    let _ = writer.await;
    let _ = tokio::time::timeout(Duration::from_secs(10), bob.wait()).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), alice.wait()).await;
    let mb = BULK_BYTES as f64 / 1e6;
    println!(
        "Throughput, 64 MiB in {count} messages of 16 KiB, stdin to stdout: {:.2} s, {:.1} MB/s; sender peak RSS {:.1} MiB",
        elapsed.as_secs_f64(),
        mb / elapsed.as_secs_f64(),
        peak_rss_kib as f64 / 1024.0,
    );
}
