//! A real coturn `turnserver` on loopback, configured by the test, with one user.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

pub const USER: &str = "tester";
pub const PASSWORD: &str = "correct-horse";

/// A `turnserver` process; killed when dropped.
pub struct Turn {
    pub addr: String,
    _child: Child,
    dir: PathBuf,
}

impl Turn {
    /// Starts coturn on a free loopback port and waits until it answers STUN.
    pub async fn start() -> Self {
        static STARTED: AtomicU16 = AtomicU16::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let port = free_udp_port();
        // Relay ports apart from other instances (parallel tests, other test binaries).
        // coturn frees a released allocation's port about a second later, and a client
        // takes two (its start-up check, then its connection), so a run of quick
        // connections needs room: 50 ports per instance, 5 instances per process.
        let base = 40_000 + (std::process::id() % 80) as u16 * 250 + (n % 5) * 50;
        let dir = std::env::temp_dir().join(format!("peertalk-turn-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the TURN directory");
        let config = format!(
            "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\nmin-port={base}\nmax-port={}\n\
             lt-cred-mech\nuser={USER}:{PASSWORD}\nrealm=peertalk.test\nfingerprint\nno-tls\nno-dtls\nno-cli\n\
             allow-loopback-peers\nuserdb={}\npidfile={}\nlog-file=stdout\nsimple-log\n",
            base + 49,
            dir.join("turndb").display(),
            dir.join("turnserver.pid").display(),
        );
        let conf = dir.join("turnserver.conf");
        std::fs::write(&conf, config).expect("write the TURN config");
        let child = Command::new("turnserver")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start turnserver (Debian package coturn; scripts/test installs it)");
        let addr = format!("127.0.0.1:{port}");
        wait_for_stun(&addr).await;
        Self { addr, _child: child, dir }
    }

    /// The client flags that use this server with the right (or given) credentials.
    pub fn flags(&self, password: &str) -> Vec<String> {
        ["--ice-server", &format!("turn:{}", self.addr), "--ice-username", USER, "--ice-credential", password]
            .map(str::to_owned)
            .to_vec()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    socket.local_addr().expect("its address").port()
}

/// Sends STUN Binding requests until one is answered (10 s at most).
async fn wait_for_stun(addr: &str) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    // Binding request: type 0x0001, length 0, the magic cookie, a transaction id.
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    request.extend_from_slice(b"peertalktest");
    let mut buf = [0u8; 512];
    for _ in 0..100 {
        let _ = socket.send_to(&request, addr).await;
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await
        {
            return;
        }
    }
    panic!("turnserver did not answer STUN on {addr} within 10 s");
}
