//! A real `redis-server` on a free loopback port, with nothing saved to disk, that a test
//! can kill outright and start again on the same port.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{sleep, timeout};

use super::{Relay, WAIT};

/// A `redis-server` process; killed when dropped.
pub struct Redis {
    pub port: u16,
    pub url: String,
    child: Option<Child>,
}

impl Redis {
    /// Starts Redis on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut redis = Self { port, url: format!("redis://127.0.0.1:{port}/0"), child: None };
        redis.restart().await;
        redis
    }

    /// Kills Redis outright (SIGKILL); what it held is gone, as after a crash.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts Redis (again) on its port, empty.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", std::env::temp_dir().to_str().expect("a UTF-8 temp dir")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server (Debian package redis-server; scripts/test installs it)");
        self.child = Some(child);
        timeout(WAIT, async {
            while !self.answers().await {
                sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("redis-server answers PING in time");
    }

    async fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else { return false };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        matches!(timeout(Duration::from_secs(1), stream.read_exact(&mut reply)).await, Ok(Ok(_)))
            && &reply == b"+PONG\r\n"
    }

    /// Starts a relay that shares this Redis, with extra arguments.
    pub async fn relay(&self, extra: &[&str]) -> Relay {
        let mut args = vec!["--listen", "127.0.0.1:0", "--redis", &self.url];
        args.extend_from_slice(extra);
        Relay::start_with(&args).await
    }
}
