//! Chat between real client processes through a real relay: delivery, ordering, content,
//! and what happens when the relay or a peer goes away.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Client, Relay, connected_pair, messages, signal};

/// Lines with multi-byte text, so encoding bugs show up as changed content.
fn script(who: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| match i % 4 {
            0 => format!("{who} {i}: 안녕하세요, 반가워요"),
            1 => format!("{who} {i}: emoji 🎉🚀👩‍💻"),
            2 => format!("{who} {i}: plain ascii with \"quotes\" and \\backslashes\\"),
            _ => format!("{who} {i}: 日本語とEnglish mixed"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_messages_each_way_arrive_once_in_order_intact() {
    let relay = Relay::start().await;
    let mut alice = Client::start(Some(&relay.url), "hundred", "alice", &["--expect", "100"]);
    alice.expect_type("joined").await;
    let mut bob = Client::start(Some(&relay.url), "hundred", "bob", &["--expect", "100"]);
    let (from_alice, from_bob) = (script("alice", 100), script("bob", 100));
    // Both write everything at once, before the connection is even open.
    let alice_input = from_alice.join("\n") + "\n";
    let bob_input = from_bob.join("\n") + "\n";
    let (_, _) = tokio::join!(alice.feed(alice_input.as_bytes()), bob.feed(bob_input.as_bytes()));
    alice.close_input();
    bob.close_input();

    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "alice failed: {}", alice.stderr);
    assert_eq!(bob.code, Some(0), "bob failed: {}", bob.stderr);
    assert_eq!(alice.texts(), from_bob, "alice got bob's messages exactly, in order");
    assert_eq!(bob.texts(), from_alice, "bob got alice's messages exactly, in order");

    for (run, sender) in [(&alice, "bob"), (&bob, "alice")] {
        let ids: Vec<u64> = run
            .lines
            .iter()
            .filter(|l| l["type"] == "message")
            .map(|l| l["id"].as_u64().expect("id"))
            .collect();
        assert_eq!(ids, (1..=100).collect::<Vec<_>>(), "ids from {sender} count up without gaps");
        assert!(run.lines.iter().filter(|l| l["type"] == "message").all(|l| l["from"] == sender));
        let delivered = run.lines.iter().filter(|l| l["type"] == "delivered").count();
        assert_eq!(delivered, 100, "every message sent was acknowledged");
        assert_eq!(run.lines.last().expect("a last line")["type"], "exit");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_keeps_working_after_the_relay_is_killed() {
    let mut relay = Relay::start().await;
    let (mut alice, mut bob) = connected_pair(&relay.url, "no-relay", ("alice", &[]), ("bob", &[])).await;

    relay.kill().await;
    alice.expect_type("relay-lost").await;
    bob.expect_type("relay-lost").await;

    alice.say("still here?").await;
    let got = bob.expect_type("message").await;
    assert_eq!(got["text"], "still here?");
    bob.say("yes, peer to peer").await;
    let got = alice.expect_type("message").await;
    assert_eq!(got["text"], "yes, peer to peer");
    alice.expect(|l| l["type"] == "delivered" && l["id"] == 1, "delivery of alice's message").await;

    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "{}", alice.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_is_reported_as_left() {
    let relay = Relay::start().await;
    let mut alice = Client::start(Some(&relay.url), "leaving", "alice", &[]);
    alice.expect_type("joined").await;
    let mut bob = Client::start(Some(&relay.url), "leaving", "bob", &[]);
    let joined = alice.expect_type("peer-joined").await;
    assert_eq!(joined["name"], "bob");
    alice.connected().await;

    let killed_at = tokio::time::Instant::now();
    bob.kill().await;
    let left = alice.expect_type("peer-left").await;
    assert_eq!(left["name"], "bob");
    assert_eq!(left["peer"], joined["peer"]);
    assert!(
        killed_at.elapsed() < Duration::from_secs(2),
        "left reported within 2 s: {:?}",
        killed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_waits_for_acknowledgement_and_expect_waits_for_messages() {
    let relay = Relay::start().await;
    let receiver = Client::start(Some(&relay.url), "oneshot", "rx", &["--expect", "2"]);
    let sender = Client::start(Some(&relay.url), "oneshot", "tx", &["--send", "first", "--send", "second ✓"]);
    let (receiver, sender) = tokio::join!(receiver.finish(), sender.finish());
    assert_eq!(sender.code, Some(0), "{}", sender.stderr);
    assert_eq!(receiver.code, Some(0), "{}", receiver.stderr);
    assert_eq!(receiver.texts(), ["first", "second ✓"]);
    let delivered: Vec<_> =
        sender.lines.iter().filter(|l| l["type"] == "delivered").map(|l| l["id"].clone()).collect();
    assert_eq!(delivered, [1, 2]);
}

/// Scripts give stdin as a pipe, which is read on the runtime, or as a file, which is read
/// on a thread; both send every line in order, skip blank ones, and send a last line that
/// has no newline.
#[tokio::test(flavor = "multi_thread")]
async fn lines_from_a_file_on_stdin_are_sent_like_lines_from_a_pipe() {
    let relay = Relay::start().await;
    let lines = "one\n\ntwo ✓\r\nthree";
    let script = common::pki::temp_dir("stdin-file").join("script");
    std::fs::write(&script, lines).expect("write the script");
    let stdin = std::fs::File::open(&script).expect("open the script");
    let from_file = Client::spawn(
        &[
            "--headless",
            "--json",
            "--room",
            "stdin",
            "--name",
            "file",
            "--signal",
            &relay.url,
            "--expect",
            "3",
        ],
        Stdio::from(stdin),
    );
    let mut from_pipe = Client::start(Some(&relay.url), "stdin", "pipe", &["--expect", "3"]);
    from_pipe.feed(lines.as_bytes()).await;
    from_pipe.close_input();
    let (from_file, from_pipe) = tokio::join!(from_file.finish(), from_pipe.finish());
    assert_eq!(from_file.code, Some(0), "{}", from_file.stderr);
    assert_eq!(from_pipe.code, Some(0), "{}", from_pipe.stderr);
    assert_eq!(from_pipe.texts(), ["one", "two ✓", "three"]);
    assert_eq!(from_file.texts(), ["one", "two ✓", "three"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn text_mode_prints_one_sanitised_line_per_message() {
    let relay = Relay::start().await;
    let rx = Client::spawn(
        &["--headless", "--room", "plain", "--name", "rx", "--signal", &relay.url, "--expect", "2"],
        Stdio::null(),
    );
    let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}two\nlines";
    let tx = Client::start(Some(&relay.url), "plain", "tx", &["--send", "hello 세계", "--send", hostile]);
    let (rx_out, tx) = tokio::join!(rx.finish_text(), tx.finish());
    assert_eq!(tx.code, Some(0), "{}", tx.stderr);
    let (code, stdout) = rx_out;
    assert_eq!(code, Some(0));
    assert_eq!(stdout, "tx: hello 세계\ntx: ␛[2J␛]0;owned␇two␊lines\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_leaving_before_acknowledging_fails_the_send() {
    let relay = Relay::start().await;
    // The timeout only guards the test: the expected exit comes well before it.
    let (bob, mut alice) =
        connected_pair(&relay.url, "vanish", ("bob", &[]), ("alice", &["--timeout", "15"])).await;
    let mut bob = bob;
    // Frozen, bob still looks connected but acknowledges nothing; then he is gone.
    bob.freeze();
    alice.say("anyone?").await;
    // Bob leaves only once the message is on its way to him, so it is his to fail.
    alice.expect_type("sent").await;
    bob.kill().await;
    let finished = alice.finish().await;
    assert_eq!(finished.code, Some(7), "exit code for a peer that left: {}", finished.stderr);
    assert!(finished.stderr.contains("bob"), "the sentence names the peer: {}", finished.stderr);
    assert!(!messages(&finished.lines).iter().any(|t| t == "anyone?"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_the_connection_cleanly_and_exits_130() {
    let relay = Relay::start().await;
    let (mut bob, alice) = connected_pair(&relay.url, "term", ("bob", &[]), ("alice", &[])).await;
    signal(alice.pid(), "TERM");
    let alice = alice.exited().await;
    assert_eq!(alice.code, Some(130), "{}", alice.stderr);
    assert!(alice.stderr.contains("stopped by SIGTERM"), "{}", alice.stderr);
    assert_eq!(bob.expect_type("peer-left").await["name"], "alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn three_peers_form_a_mesh_and_each_message_reaches_both_others() {
    let relay = Relay::start().await;
    let mut alice = Client::start(Some(&relay.url), "trio", "alice", &["--expect", "2"]);
    alice.expect_type("joined").await;
    let mut bob = Client::start(Some(&relay.url), "trio", "bob", &["--expect", "2"]);
    bob.expect_type("joined").await;
    let mut carol = Client::start(Some(&relay.url), "trio", "carol", &["--expect", "2"]);
    for client in [&mut alice, &mut bob, &mut carol] {
        let first = client.connected().await["peer"].clone();
        client.expect(|l| l["type"] == "connected" && l["peer"] != first, "a second connection").await;
    }
    for (client, text) in [(&mut alice, "from alice"), (&mut bob, "from bob"), (&mut carol, "from carol")] {
        client.say(text).await;
        client.close_input();
    }
    let (alice, bob, carol) = tokio::join!(alice.finish(), bob.finish(), carol.finish());
    for (run, name) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        let mut got = run.texts();
        got.sort();
        let mut want: Vec<String> =
            ["alice", "bob", "carol"].iter().filter(|n| **n != name).map(|n| format!("from {n}")).collect();
        want.sort();
        assert_eq!(got, want, "{name} heard both others, once each");
        let delivered = run.lines.iter().filter(|l| l["type"] == "delivered").count();
        assert_eq!(delivered, 2, "{name}'s message was acknowledged by both others");
    }
}
