//! The command line as scripts use it: exit codes with a sentence for each failure, and
//! the embedded relay that makes two bare commands find each other.

mod common;

use std::process::Stdio;

use common::{Client, Relay};

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_relay_exits_3_and_names_the_address() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
        probe.local_addr().expect("probe address").port()
    };
    let url = format!("ws://127.0.0.1:{port}");
    let done = Client::start(Some(&url), "r", "a", &["--send", "x"]).finish().await;
    assert_eq!(done.code, Some(3));
    assert!(done.stderr.contains(&format!("could not reach the relay at {url}")), "{}", done.stderr);
    let exit = done.lines.last().expect("an exit line");
    assert_eq!((exit["type"].as_str(), exit["code"].as_u64()), (Some("exit"), Some(3)));
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_joining_before_the_timeout_exits_5() {
    let relay = Relay::start().await;
    let done =
        Client::start(Some(&relay.url), "empty", "a", &["--send", "hello?", "--timeout", "1"]).finish().await;
    assert_eq!(done.code, Some(5), "{}", done.stderr);
    assert!(done.stderr.contains("nobody else joined room \"empty\""), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn expecting_more_than_arrives_times_out_with_8() {
    let relay = Relay::start().await;
    let mut waiting = Client::start(Some(&relay.url), "short", "rx", &["--expect", "2", "--timeout", "3"]);
    waiting.close_input();
    waiting.expect_type("joined").await;
    let sender = Client::start(Some(&relay.url), "short", "tx", &["--send", "only one"]).finish().await;
    assert_eq!(sender.code, Some(0), "{}", sender.stderr);
    let done = waiting.finish().await;
    assert_eq!(done.code, Some(8), "{}", done.stderr);
    assert!(done.stderr.contains("1 of 2 expected"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_too_long_for_a_datachannel_is_refused_with_9() {
    let relay = Relay::start().await;
    let long = "가".repeat(30_000); // 90,000 bytes of UTF-8
    let done = Client::start(Some(&relay.url), "long", "a", &["--send", &long]).finish().await;
    assert_eq!(done.code, Some(9), "{}", done.stderr);
    assert!(done.lines.iter().any(|l| l["type"] == "input-rejected"), "{:?}", done.lines);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_exit_2_with_the_fix() {
    let run = Client::spawn(
        &["--room", "r", "--name", "a", "--headless", "--ice-server", "turn:127.0.0.1:3478"],
        Stdio::null(),
    );
    let done = run.finish().await;
    assert_eq!(done.code, Some(2));
    assert!(done.stderr.contains("--ice-username"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn help_documents_the_exit_codes() {
    let (code, help) = Client::spawn(&["--help"], Stdio::null()).finish_text().await;
    assert_eq!(code, Some(0));
    for needle in ["Exit codes:", "3  relay unreachable", "7  a member left", "In a room of several"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// Uses the fixed default address 127.0.0.1:8787; no other test does.
#[tokio::test(flavor = "multi_thread")]
async fn two_clients_without_a_relay_address_find_each_other() {
    let mut first = Client::start(None, "default-relay", "alice", &["--expect", "1"]);
    let hosting = first.expect_type("hosting-relay").await;
    assert_eq!(hosting["url"], "ws://127.0.0.1:8787");
    first.expect_type("joined").await;
    first.close_input();
    let second = Client::start(None, "default-relay", "bob", &["--send", "found you"]).finish().await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(!second.lines.iter().any(|l| l["type"] == "hosting-relay"), "the second uses the first's relay");
    let first = first.finish().await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.texts(), ["found you"]);
}
