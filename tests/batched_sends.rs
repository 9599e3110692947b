//! A bulk message's datagrams leave in one UDP GSO `sendmsg`, not one syscall each: the
//! threshold in `vendor/webrtc` (see vendor/PATCHES.md). The published crate batches only
//! runs of 16 datagrams or more, and a 16 KiB message is 14, so it never batched a chat
//! message. `strace` counts the sender's calls.

mod common;

use common::{Client, Relay};

/// A chat message of 16 KiB: 14 datagrams of about 1.2 KB.
const SIZE: usize = 16 * 1024;
const DATAGRAMS_EACH: usize = 14;
const MESSAGES: usize = 64;

#[tokio::test(flavor = "multi_thread")]
async fn a_16_kib_message_leaves_in_one_gso_send_rather_than_one_send_per_datagram() {
    let relay = Relay::start().await;
    let trace = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sends-{}.strace", std::process::id()));
    let trace_arg = trace.to_str().expect("a UTF-8 path");
    let mut bob = Client::start(Some(&relay.url), "gso", "bob", &[]);
    bob.expect_type("joined").await;
    let strace = ["strace", "-f", "-qq", "-c", "-e", "trace=sendmsg", "-o", trace_arg];
    let mut alice = Client::start_under(&strace, &relay.url, "gso", "alice", &[]);
    tokio::join!(alice.connected(), bob.connected());

    // One at a time, as a person pasting a long text would send them: each message is
    // one burst, so it is the message's own datagrams that can leave together.
    for i in 1..=MESSAGES {
        alice.say(&format!("{i} {}", "y".repeat(SIZE - 8))).await;
        alice.expect(|l| l["type"] == "delivered" && l["id"] == i, "delivered").await;
        alice.seen.clear();
    }
    alice.close_input();
    bob.close_input();
    let (_, received) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(received.texts().len(), MESSAGES, "bob got every message");

    let summary = std::fs::read_to_string(&trace).expect("strace wrote its summary");
    let _ = std::fs::remove_file(&trace);
    let calls: usize = summary
        .lines()
        .find(|line| line.split_whitespace().last() == Some("sendmsg"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or_else(|| panic!("no sendmsg count in strace's summary:\n{summary}"));
    // One datagram per call would be at least MESSAGES * DATAGRAMS_EACH (896) calls, the
    // handshake and the acknowledgements aside: 977 with the published crate. Batched, a
    // message is one call, and the SACKs ride with the next one: 92.
    let per_datagram = MESSAGES * DATAGRAMS_EACH;
    eprintln!("{MESSAGES} messages of 16 KiB: {calls} sendmsg calls for {per_datagram} datagrams");
    assert!(calls < per_datagram / 3, "{calls} sendmsg calls for {per_datagram} datagrams:\n{summary}");
}
