//! Connectivity through a real TURN server (coturn): relay-only connections, and the
//! sentences and exit codes for credentials it refuses or a server that does not answer.

mod common;

use common::turn::{PASSWORD, Turn, free_udp_port};
use common::{Client, Relay};

fn with(flags: Vec<String>, more: &[&str]) -> Vec<String> {
    let mut all = flags;
    all.extend(more.iter().map(|s| (*s).to_owned()));
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_connect_through_turn_alone_and_report_a_relay_path() {
    let turn = Turn::start().await;
    let relay = Relay::start().await;
    let flags = with(turn.flags(PASSWORD), &["--relay-only"]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut alice = Client::start(Some(&relay.url), "turn", "alice", &flags);
    alice.expect_type("joined").await;
    let mut bob = Client::start(Some(&relay.url), "turn", "bob", &flags);
    for connected in [alice.connected().await, bob.connected().await] {
        assert_eq!(connected["path"], "relay", "{connected}");
        assert_eq!(
            (connected["local"].as_str(), connected["remote"].as_str()),
            (Some("relay"), Some("relay"))
        );
    }
    alice.say("through the relay").await;
    assert_eq!(bob.expect_type("message").await["text"], "through the relay");
    alice.expect_type("delivered").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn turn_refusing_the_credentials_ends_with_10_naming_server_and_user() {
    let turn = Turn::start().await;
    let relay = Relay::start().await;
    let flags = with(turn.flags("wrong-password"), &["--relay-only", "--send", "hi"]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let done = Client::start(Some(&relay.url), "turn", "alice", &flags).finish().await;
    assert_eq!(done.code, Some(10), "{}", done.stderr);
    let expected = format!("TURN server {} refused the credentials for user tester", turn.addr);
    assert!(done.stderr.contains(&expected), "{}", done.stderr);
}

/// A `--relay-only` run that sends one message, through the TURN server at `url`.
fn relay_only_send(url: &str) -> [&str; 9] {
    ["--ice-server", url, "--ice-username", "u", "--ice-credential", "p", "--relay-only", "--send", "hi"]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_server_that_does_not_answer_ends_relay_only_with_11() {
    let relay = Relay::start().await;
    let silent = format!("turn:127.0.0.1:{}", free_udp_port());
    let done = Client::start(Some(&relay.url), "turn", "alice", &relay_only_send(&silent)).finish().await;
    assert_eq!(done.code, Some(11), "{}", done.stderr);
    assert!(
        done.stderr.contains("did not answer") && done.stderr.contains("--relay-only"),
        "{}",
        done.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn turn_forms_webrtc_rs_cannot_use_are_refused_for_relay_only() {
    let relay = Relay::start().await;
    for url in ["turns:127.0.0.1:5349", "turn:127.0.0.1:3478?transport=tcp"] {
        let done = Client::start(Some(&relay.url), "turn", "alice", &relay_only_send(url)).finish().await;
        assert_eq!(done.code, Some(2), "{}", done.stderr);
        assert!(done.stderr.contains("not supported by webrtc-rs"), "{}", done.stderr);
    }
}
