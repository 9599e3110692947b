//! Scenes on an emulated real path (`path.rs`), shared by `tests/wan.rs` and
//! `benches/wan.rs`: the relay and alice on one side, bob on the other, as a person
//! sending to a friend in another city would have it; and one TCP connection on the same
//! path, the floor any TCP tool rides on.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::files::{TempDir, random_file, sha256};
use super::path::{Path, PathSpec, in_namespace};
use super::{Client, Relay, note};

/// The relay in `path.a`, listening on the path's address so that signaling crosses the
/// path too.
pub struct Scene {
    pub path: Path,
    pub relay: Relay,
}

impl Scene {
    /// `None` (and a note) where the path cannot be made here.
    pub async fn new(test: &str, spec: PathSpec) -> Option<Self> {
        let path = match Path::create(spec) {
            Ok(path) => path,
            Err(e) => {
                note(&format!("SKIPPED {test}: no emulated path ({e})"));
                return None;
            }
        };
        let relay = Relay::start_in(&path.a, &["--listen", &format!("{}:0", path.a_ip)]).await;
        Some(Self { path, relay })
    }

    /// Alice (beside the relay) and bob (across the path) in `room`, connected; each with
    /// `extra` arguments. Returns them and how long bob took from his start to both ends
    /// connected.
    pub async fn pair(&self, room: &str, alice: &[&str], bob: &[&str]) -> (Client, Client, Duration) {
        let mut a = Client::start_in(&self.path.a, &self.relay.url, room, "alice", alice);
        a.expect_type("joined").await;
        let started = Instant::now();
        let mut b = Client::start_in(&self.path.b, &self.relay.url, room, "bob", bob);
        a.connected().await;
        b.connected().await;
        let open = started.elapsed();
        (a, b, open)
    }
}

/// A file of `size` random bytes for alice to send, and the folder bob keeps it in.
pub struct Cargo {
    pub file: PathBuf,
    pub sha256: String,
    pub inbox: TempDir,
    _outbox: TempDir,
}

impl Cargo {
    pub fn new(size: usize, seed: u64) -> Self {
        let outbox = TempDir::new("wan-out");
        let file = random_file(outbox.path(), "cargo.bin", size, seed);
        let sha256 = sha256(&file);
        Self { file, sha256, inbox: TempDir::new("wan-in"), _outbox: outbox }
    }

    /// Bob's arguments to take it.
    pub fn receiver_args(&self) -> Vec<String> {
        ["--accept-files", "--expect-files", "1", "--receive-dir", &self.inbox.arg()]
            .map(str::to_owned)
            .to_vec()
    }

    /// Whether bob's copy is the file.
    pub fn arrived_intact(&self) -> bool {
        let copy = self.inbox.path().join("cargo.bin");
        copy.exists() && sha256(&copy) == self.sha256
    }
}

/// Moves `bytes` over one TCP connection from `path.a` to `path.b` (with congestion
/// control `algorithm`, or the system's); returns how long the receiver took from
/// accepting to the last byte.
pub fn tcp_transfer(path: &Path, bytes: usize, algorithm: Option<&'static str>) -> Duration {
    let listen = format!("{}:0", path.b_ip);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let receiver = in_namespace(&path.b, move || {
        let listener = TcpListener::bind(listen).expect("listen");
        port_tx.send(listener.local_addr().expect("address").port()).expect("tell the port");
        let (mut stream, _) = listener.accept().expect("accept");
        let started = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < bytes {
            let n = stream.read(&mut buf).expect("read");
            assert!(n > 0, "the sender closed after {got} bytes");
            got += n;
        }
        started.elapsed()
    });
    let port = port_rx.recv_timeout(Duration::from_secs(10)).expect("the receiver listens");
    let to = format!("{}:{port}", path.b_ip);
    let sender = in_namespace(&path.a, move || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        if let Some(algorithm) = algorithm {
            socket.set_tcp_congestion(algorithm.as_bytes()).expect("the congestion control is available");
        }
        let to: std::net::SocketAddr = to.parse().expect("an address");
        socket.connect(&to.into()).expect("connect across the path");
        let mut stream = TcpStream::from(socket);
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            stream.write_all(&chunk[..n]).expect("write");
            sent += n;
        }
    });
    sender.join().expect("the sender");
    receiver.join().expect("the receiver")
}

/// Whether this kernel offers TCP congestion control `algorithm` (`bbr` needs its module).
pub fn tcp_has(algorithm: &str) -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .is_ok_and(|list| list.split_whitespace().any(|a| a == algorithm))
}
