//! Helpers shared by the integration tests: the real relay binary, real clients in
//! `--headless --json` mode, and a raw WebSocket for speaking the protocol by hand.
//! Every wait is bounded, so a broken build fails a test instead of hanging CI.

#![allow(dead_code)] // each test file uses its own subset

pub mod audio;
pub mod browser;
pub mod files;
pub mod in_process;
pub mod mitm;
pub mod netns;
pub mod path;
pub mod pki;
pub mod redis;
pub mod sansio;
pub mod sight;
pub mod turn;
pub mod wan;

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Says something the test run should show even when the test passes (a skip, a
/// fallback): on stderr, which cargo hides for passing tests, and in a file that
/// `scripts/test` prints at the end.
pub fn note(text: &str) {
    use std::io::Write as _;
    eprintln!("{text}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-notes.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{text}");
    }
}

/// User plus system CPU time of a process, in clock ticks (USER_HZ, 100 a second), from
/// /proc (Linux).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// "median M ms (min A, max B, N runs)" of a set of timings.
pub fn spread(samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "median {:.1} ms (min {:.1}, max {:.1}, {} runs)",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    )
}

/// Messages sent before [`round_trips`] starts counting.
pub const WARM_UP: usize = 50;

/// Round trips of `count` chat messages, after [`WARM_UP`], one at a time: from writing the
/// line to `sender`'s stdin until it prints `delivered` for it. Sorted.
pub async fn round_trips(sender: &mut Client, count: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for i in 1..=count + WARM_UP {
        let sent = std::time::Instant::now();
        sender.say(&format!("ping {i} {}", "x".repeat(40))).await;
        sender.expect(|l| l["type"] == "delivered" && l["id"] == i, "delivered").await;
        if i > WARM_UP {
            samples.push(sent.elapsed());
        }
        sender.seen.clear();
    }
    samples.sort();
    samples
}

/// Chat as people have it: a line every `every`, `count` of them, whatever else is going
/// on, each timed from writing it to `sender`'s stdin until `sender` prints `delivered`
/// for it. Returns the timings in the order the lines were written.
pub async fn paced_round_trips(sender: &mut Client, count: usize, every: Duration) -> Vec<Duration> {
    let mut written = std::collections::VecDeque::new();
    let mut ids = std::collections::HashMap::new();
    let mut took = vec![None; count];
    let mut tick = tokio::time::interval(every);
    let deadline = tokio::time::Instant::now() + every * u32::try_from(count).unwrap_or(u32::MAX) + WAIT;
    let mut next = 0;
    while took.iter().any(Option::is_none) {
        tokio::select! {
            _ = tick.tick(), if next < count => {
                sender.say(&format!("paced {next} {}", "x".repeat(40))).await;
                written.push_back((next, std::time::Instant::now()));
                next += 1;
            }
            line = sender.next_line() => {
                let line = line.unwrap_or_else(|| panic!("the sender exited with {} of {count} lines delivered", took.iter().flatten().count()));
                match line["type"].as_str() {
                    Some("sent") => {
                        let (i, at) = written.pop_front().expect("a line was written for each sent");
                        ids.insert(line["id"].clone(), (i, at));
                    }
                    Some("delivered") => {
                        if let Some((i, at)) = ids.remove(&line["id"]) {
                            took[i] = Some(at.elapsed());
                        }
                    }
                    _ => {}
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                panic!("{} of {count} paced lines delivered in time", took.iter().flatten().count());
            }
        }
    }
    took.into_iter().flatten().collect()
}

/// "p50 A ms, p99 B ms, max C ms" of sorted timings.
pub fn percentiles(sorted: &[Duration]) -> String {
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(sorted[sorted.len() - 1])
    )
}

/// A duration in milliseconds, for printing.
/// A process's peak resident memory so far (`VmHWM`), in KiB; 0 once it has exited.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How long any single expectation may take.
pub const WAIT: Duration = Duration::from_secs(20);

fn client_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_peertalk"))
}

pub fn relay_bin() -> PathBuf {
    let path = client_bin().with_file_name(format!("peertalk-signal{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "the relay binary {} is missing; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// A `peertalk-signal` process on an ephemeral loopback port.
pub struct Relay {
    child: Child,
    pub url: String,
    pub addr: String,
}

impl Relay {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(listen: &str) -> Self {
        Self::start_with(&["--listen", listen]).await
    }

    pub async fn start_with(args: &[&str]) -> Self {
        Self::start_command(Command::new(relay_bin()), args).await
    }

    /// Starts the relay inside network namespace `ns`.
    pub async fn start_in(ns: &str, args: &[&str]) -> Self {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(relay_bin());
        Self::start_command(command, args).await
    }

    async fn start_command(mut command: Command, args: &[&str]) -> Self {
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // PEERTALK_TEST_RELAY_LOGS=1 shows the relays' logs, for debugging a test.
            .stderr(if std::env::var_os("PEERTALK_TEST_RELAY_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .expect("start peertalk-signal");
        let stdout = child.stdout.take().expect("relay stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = timeout(WAIT, lines.next_line())
            .await
            .expect("relay printed its address in time")
            .expect("read relay stdout")
            .expect("relay printed a line");
        let url = first.rsplit(' ').next().expect("address at the end of the line").to_owned();
        let addr = match url.split_once("://") {
            Some(("ws" | "wss", addr)) => addr.to_owned(),
            _ => panic!("unexpected first line {first:?}"),
        };
        Self { child, url, addr }
    }

    /// Kills the relay outright (SIGKILL), as a crash or a pulled plug would.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("relay is running")
    }

    pub async fn wait(&mut self) -> ExitStatus {
        timeout(WAIT, self.child.wait()).await.expect("relay exited in time").expect("wait for relay")
    }

    /// Waits until `count` connections have been placed in rooms, as the relay's own
    /// `/metrics` counts them. A finished WebSocket handshake does not mean that: the
    /// relay places a classic connection a moment later, and a frame sent to a room
    /// before its other members are placed reaches nobody.
    pub async fn wait_for_members(&self, count: usize) {
        let wanted = format!("peertalk_signal_peers {count}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, metrics) = http_get(&self.addr, "/metrics").await;
            if metrics.lines().any(|l| l == wanted) {
                return;
            }
            let now = metrics.lines().find(|l| l.starts_with("peertalk_signal_peers ")).unwrap_or("none");
            assert!(tokio::time::Instant::now() < deadline, "the relay never placed {count} members ({now})");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sends a signal (`"TERM"`, `"STOP"`, ...) to a process this test started.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Starts `first` in `room`, then `second` (who therefore offers), and waits until both
/// have their chat channel open. Extra arguments go to each.
pub async fn connected_pair(
    relay: &str,
    room: &str,
    first: (&str, &[&str]),
    second: (&str, &[&str]),
) -> (Client, Client) {
    let mut a = Client::start(Some(relay), room, first.0, first.1);
    a.expect_type("joined").await;
    let mut b = Client::start(Some(relay), room, second.0, second.1);
    a.connected().await;
    b.connected().await;
    (a, b)
}

/// A plain HTTP GET to the relay's address; returns the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_response(addr, path).await;
    (status, body)
}

/// [`http_get`], with the response's head (status line and headers) too.
pub async fn http_response(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream =
        timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send request");
    let mut response = String::new();
    timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("answered in time")
        .expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, head.to_owned(), body.to_owned())
}

/// A headless `peertalk --json` process.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: tokio::task::JoinHandle<String>,
    /// Every JSON line read so far, in order.
    pub seen: Vec<Value>,
}

/// What a finished client left behind.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl Finished {
    /// The texts of received chat messages, in order.
    pub fn texts(&self) -> Vec<String> {
        messages(&self.lines)
    }
}

/// Texts of the `message` lines among `lines`.
pub fn messages(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "message")
        .map(|l| l["text"].as_str().expect("text").to_owned())
        .collect()
}

impl Client {
    /// Starts a JSON client in `room` as `name` on `relay` (or the default when `None`),
    /// with extra arguments; stdin stays open for [`Client::say`].
    pub fn start(relay: Option<&str>, room: &str, name: &str, extra: &[&str]) -> Self {
        Self::start_with_env(relay, room, name, extra, &[])
    }

    /// [`Client::start`], with extra environment variables.
    pub fn start_with_env(
        relay: Option<&str>,
        room: &str,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut args = vec!["--headless", "--json", "--room", room, "--name", name];
        if let Some(url) = relay {
            args.extend(["--signal", url]);
        }
        args.extend_from_slice(extra);
        let mut command = Command::new(client_bin());
        command.envs(env.iter().copied());
        Self::spawn_command(command, &args, Stdio::piped())
    }

    /// Starts the client binary with exactly these arguments.
    pub fn spawn(args: &[&str], stdin: Stdio) -> Self {
        Self::spawn_command(Command::new(client_bin()), args, stdin)
    }

    /// Starts a JSON client, as [`Client::start`] does, inside network namespace `ns`.
    pub fn start_in(ns: &str, relay: &str, room: &str, name: &str, extra: &[&str]) -> Self {
        Self::start_under(&["ip", "netns", "exec", ns], relay, room, name, extra)
    }

    /// Starts a JSON client, as [`Client::start`] does, as the last argument of `wrapper`
    /// (a command that runs another: `ip netns exec`, `strace`).
    pub fn start_under(wrapper: &[&str], relay: &str, room: &str, name: &str, extra: &[&str]) -> Self {
        let (program, wrapper_args) = wrapper.split_first().expect("a wrapper command");
        let mut command = Command::new(program);
        command.args(wrapper_args).arg(client_bin());
        let mut args = vec!["--headless", "--json", "--room", room, "--name", name, "--signal", relay];
        args.extend_from_slice(extra);
        Self::spawn_command(command, &args, Stdio::piped())
    }

    /// Any program that prints JSON lines as a client does (a benchmark's stand-in for
    /// one), driven through the same methods.
    pub fn start_command(command: Command, args: &[&str]) -> Self {
        Self::spawn_command(command, args, Stdio::piped())
    }

    fn spawn_command(mut command: Command, args: &[&str], stdin: Stdio) -> Self {
        // The developer's own settings must not leak into a test.
        for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("PEERTALK_")) {
            command.env_remove(var);
        }
        // One identity for the test run's clients, not the developer's own (--identity wins).
        command.env("PEERTALK_IDENTITY", test_identity());
        // Nor the developer's config file: this folder has none.
        command.env("XDG_CONFIG_HOME", test_identity().with_file_name("no-config"));
        // PEERTALK_TEST_CLIENT_LOG=FILTER turns the clients' logs on (PEERTALK_LOG), for
        // debugging a test; a client that exits early shows them.
        if let Some(filter) = std::env::var_os("PEERTALK_TEST_CLIENT_LOG") {
            command.env("PEERTALK_LOG", filter);
        }
        let mut child = command
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start peertalk");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("client stdout");
        let mut stderr = child.stderr.take().expect("client stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Self { child, stdin, lines, stderr, seen: Vec::new() }
    }

    /// Types a line, as a user or a script would.
    pub async fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(format!("{text}\n").as_bytes()).await.expect("write to client stdin");
        stdin.flush().await.expect("flush client stdin");
    }

    /// Writes raw bytes to stdin.
    pub async fn feed(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).await.expect("write to client stdin");
    }

    /// Closes stdin: the client sends what is queued, waits for acknowledgements and exits.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// The next line the client prints (also kept in `seen`); `None` once it has exited.
    pub async fn next_line(&mut self) -> Option<Value> {
        let line = parse(&self.lines.recv().await?);
        self.seen.push(line.clone());
        Some(line)
    }

    /// Waits for the next line of `type` (skipping others) and returns it.
    pub async fn expect_type(&mut self, kind: &str) -> Value {
        self.expect(|l| l["type"] == kind, kind).await
    }

    /// Waits for a line matching `pred`; `what` names it in the failure message.
    pub async fn expect(&mut self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        if let Some(found) = self.seen.iter().find(|l| pred(l)) {
            return found.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let line = parse(&line);
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Ok(None) => {
                    let stderr = (&mut self.stderr).await.unwrap_or_default();
                    panic!(
                        "client exited before printing {what}; it printed {:#?}\nand on stderr:\n{stderr}",
                        self.seen
                    )
                }
                Err(_) => panic!("no {what} within {WAIT:?}; the client printed {:#?}", self.seen),
            }
        }
    }

    /// Waits until `count` lines of `kind` have been printed in all.
    pub async fn expect_count(&mut self, kind: &str, count: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.seen.iter().filter(|l| l["type"] == kind).count() < count {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.seen.push(parse(&line)),
                Ok(None) => {
                    panic!("client exited before printing {count} {kind}; it printed {:#?}", self.seen)
                }
                Err(_) => {
                    panic!("fewer than {count} {kind} within {WAIT:?}; the client printed {:#?}", self.seen)
                }
            }
        }
    }

    /// Waits for the chat channel to a peer to open.
    pub async fn connected(&mut self) -> Value {
        self.expect_type("connected").await
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("client is running")
    }

    /// Kills the client outright (SIGKILL).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Freezes the process (SIGSTOP): its sockets stay open but it answers nothing.
    pub fn freeze(&self) {
        signal(self.pid(), "STOP");
    }

    /// Waits for the process to exit and collects everything it printed as JSON lines.
    pub async fn finish(self) -> Finished {
        self.finish_within(WAIT).await
    }

    /// For text mode: waits for exit and returns the exit code and stdout as text.
    pub async fn finish_text(mut self) -> (Option<i32>, String) {
        let (code, raw, _) = self.wait_raw().await;
        (code, raw.iter().map(|l| format!("{l}\n")).collect())
    }

    /// As [`Client::finish`], for a client that may take longer than [`WAIT`] to finish.
    pub async fn finish_within(mut self, limit: Duration) -> Finished {
        self.stdin = None;
        self.exited_within(limit).await
    }

    /// Waits for the process to exit with its input still open, so that whatever ends
    /// it (a signal, a peer) is not raced by the end of its input.
    pub async fn exited(self) -> Finished {
        self.exited_within(WAIT).await
    }

    async fn exited_within(mut self, limit: Duration) -> Finished {
        let (code, raw, stderr) = self.wait_raw_within(limit).await;
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(raw.iter().map(|l| parse(l)));
        Finished { code, lines, stderr }
    }

    async fn wait_raw(&mut self) -> (Option<i32>, Vec<String>, String) {
        self.stdin = None;
        self.wait_raw_within(WAIT).await
    }

    async fn wait_raw_within(&mut self, limit: Duration) -> (Option<i32>, Vec<String>, String) {
        let Ok(status) = timeout(limit, self.child.wait()).await else {
            // Still running: what it said so far is the best clue to why.
            let _ = self.child.kill().await;
            let stderr = timeout(Duration::from_secs(5), &mut self.stderr).await;
            let stderr = stderr.ok().and_then(Result::ok).unwrap_or_default();
            panic!(
                "the client did not exit within {limit:?}; it printed {:#?}\nand on stderr:\n{stderr}",
                self.seen
            );
        };
        let status = status.expect("wait");
        let mut raw = Vec::new();
        while let Ok(Some(line)) = timeout(Duration::from_secs(5), self.lines.recv()).await {
            raw.push(line);
        }
        let stderr = timeout(Duration::from_secs(5), &mut self.stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        (status.code(), raw, stderr)
    }
}

/// The identity file the test run's clients share unless a test gives its own.
pub fn test_identity() -> PathBuf {
    std::env::temp_dir().join(format!("peertalk-test-state-{}", std::process::id())).join("identity.pem")
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("client printed a non-JSON line {line:?}: {e}"))
}

/// A hand-driven connection to the relay, for protocol tests.
pub struct RawWs {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawWs {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect to relay");
        Self { ws }
    }

    /// Connects and joins `room` as `name`; returns the welcome.
    pub async fn join(url: &str, room: &str, name: &str) -> (Self, Value) {
        let mut ws = Self::connect(url).await;
        let welcome = ws.try_join(room, name).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (ws, welcome)
    }

    /// Sends a join on this connection and returns the relay's answer, welcome or error.
    pub async fn try_join(&mut self, room: &str, name: &str) -> Value {
        self.send_json(&serde_json::json!({"type": "join", "room": room, "name": name, "version": 1})).await;
        self.recv().await
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::Text(text.into().into())).await.expect("send text frame");
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.expect("send binary frame");
    }

    /// The next message from the relay, as JSON.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame().await {
            Message::Text(text) => serde_json::from_str(&text).expect("relay sends JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame of any kind (pings skipped).
    pub async fn next_frame(&mut self) -> Message {
        loop {
            let frame = timeout(WAIT, self.ws.next())
                .await
                .expect("relay answered in time")
                .expect("connection still open")
                .expect("frame reads");
            if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
                return frame;
            }
        }
    }

    /// The next item from the socket as it comes, pings included.
    pub async fn next_raw(&mut self) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.ws.next().await
    }

    /// Expects nothing to arrive for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Ok(Some(frame)) = timeout(quiet, self.ws.next()).await {
            panic!("expected silence, got {frame:?}");
        }
    }
}
