//! The `peertalk-signal` binary itself: how it starts, and how it refuses to.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const RELAY: &str = env!("CARGO_BIN_EXE_peertalk-signal");

#[test]
fn relay_announces_its_address_on_stdout() {
    let mut child = Command::new(RELAY)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the relay");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read a line");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("peertalk-signal listening on ws://127.0.0.1:"), "{line:?}");
}

#[test]
fn relay_refuses_an_address_in_use_with_a_sentence_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let addr = taken.local_addr().expect("address").to_string();
    let out = Command::new(RELAY).args(["--listen", &addr]).output().expect("run the relay");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("could not listen on {addr}")), "{stderr}");
}

#[test]
fn relay_rejects_a_malformed_address_with_exit_2() {
    let out = Command::new(RELAY).args(["--listen", "not-an-address"]).output().expect("run the relay");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn relay_logs_json_lines_when_asked() {
    let mut child = Command::new(RELAY)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the relay");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("stderr")).read_line(&mut line).expect("read a line");
    let _ = child.kill();
    let _ = child.wait();
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["level"], "INFO", "{line}");
    assert_eq!(event["fields"]["message"], "listening", "{line}");
}

/// Runs the relay with a config file holding `contents`.
fn run_with_config(name: &str, contents: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("peertalk-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, contents).expect("write config");
    let out = Command::new(RELAY).arg("--config").arg(&path).output().expect("run the relay");
    let _ = std::fs::remove_file(&path);
    out
}

#[test]
fn relay_refuses_a_config_file_with_an_unknown_setting() {
    let out = run_with_config("unknown", "max-peers = 3\n");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"max-peers\", which is not a setting"), "{stderr}");
}

#[test]
fn relay_refuses_a_config_file_that_is_not_toml() {
    let out = run_with_config("notoml", "max-peers-per-room = = 3\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid TOML"));
}
