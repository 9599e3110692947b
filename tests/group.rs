//! Rooms of several members: every message goes to every member present when it is sent,
//! delivery is counted per member, and a script's exit code accounts for each of them.

mod common;

use std::time::Duration;

use common::{Client, Relay};
use serde_json::Value;

/// Starts `names` in `room` one after another (each waits for its welcome), each with
/// `extra` arguments.
async fn members(relay: &Relay, room: &str, names: &[&str], extra: &[&str]) -> Vec<Client> {
    let mut started = Vec::new();
    for name in names {
        let mut client = Client::start(Some(&relay.url), room, name, extra);
        client.expect_type("joined").await;
        started.push(client);
    }
    started
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newcomers_send_reaches_all_three_members_once_and_waits_for_every_acknowledgement() {
    let relay = Relay::start().await;
    let trio = members(&relay, "g", &["ann", "bob", "cid"], &["--expect", "1"]).await;
    let dan = Client::start(Some(&relay.url), "g", "dan", &["--send", "hello all", "--timeout", "20"]);
    let dan = dan.finish().await;
    assert_eq!(dan.code, Some(0), "{}", dan.stderr);
    let mut acked: Vec<&str> =
        of_type(&dan.lines, "delivered").iter().map(|l| l["to"].as_str().expect("to")).collect();
    acked.sort_unstable();
    assert_eq!(acked, ["ann", "bob", "cid"], "one delivered per member");
    let settled = of_type(&dan.lines, "settled");
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0]["missed"], serde_json::json!([]));
    assert_eq!(settled[0]["delivered"].as_array().map(Vec::len), Some(3));
    for member in trio {
        let done = member.finish().await;
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert_eq!(done.texts(), ["hello all"], "exactly once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_members_each_send_twenty_and_everyone_gets_all_140_once_in_order() {
    const NAMES: [&str; 8] = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"];
    let relay = Relay::start().await;
    let mut room = members(&relay, "eight", &NAMES, &["--expect", "140", "--timeout", "60"]).await;
    for client in &mut room {
        client.expect_count("connected", 7).await;
    }
    for (client, name) in room.iter_mut().zip(NAMES) {
        let lines: String = (1..=20).map(|i| format!("{name} says {i}\n")).collect();
        client.feed(lines.as_bytes()).await;
        client.close_input();
    }
    let runs =
        futures_util::future::join_all(room.into_iter().map(|c| c.finish_within(Duration::from_secs(60))))
            .await;
    for (run, name) in runs.iter().zip(NAMES) {
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        let texts = run.texts();
        assert_eq!(texts.len(), 140, "{name} got every other member's 20 messages once");
        for sender in NAMES.iter().filter(|s| **s != name) {
            let from: Vec<&String> =
                texts.iter().filter(|t| t.starts_with(&format!("{sender} says "))).collect();
            let want: Vec<String> = (1..=20).map(|i| format!("{sender} says {i}")).collect();
            assert_eq!(from, want.iter().collect::<Vec<_>>(), "{name} got {sender}'s in order");
        }
        assert_eq!(of_type(&run.lines, "delivered").len(), 140, "{name}: 20 messages x 7 members");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_lost_mid_send_is_named_and_the_sender_exits_7_once_the_others_acknowledged() {
    let relay = Relay::start().await;
    let mut trio = members(&relay, "k", &["ann", "bob", "cid"], &[]).await;
    let mut dan = Client::start(Some(&relay.url), "k", "dan", &[]);
    dan.expect_count("connected", 3).await;
    // cid stops answering (his process frozen), then dan sends.
    trio[2].freeze();
    dan.say("who is still here?").await;
    dan.close_input();
    dan.expect_count("delivered", 2).await;
    trio[2].kill().await;
    let done = dan.finish_within(Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(7), "{}", done.stderr);
    assert!(
        done.stderr.contains("cid") && done.stderr.contains("ids 1"),
        "names who missed what: {}",
        done.stderr
    );
    let settled = of_type(&done.lines, "settled");
    assert_eq!(settled[0]["missed"], serde_json::json!(["cid"]));
    assert_eq!(settled[0]["delivered"].as_array().map(Vec::len), Some(2), "the others have it");
    let undelivered = of_type(&done.lines, "undelivered");
    assert_eq!(undelivered[0]["to"], "cid");
    for member in trio.drain(..2) {
        let got = member.finish().await;
        assert_eq!(got.texts(), ["who is still here?"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_whose_name_is_taken_is_refused_with_a_free_one_suggested() {
    let relay = Relay::start().await;
    let _bob = members(&relay, "names", &["bob"], &[]).await;
    let done = Client::start(Some(&relay.url), "names", "BOB", &["--send", "hi"]).finish().await;
    assert_eq!(done.code, Some(4), "{}", done.stderr);
    assert!(
        done.stderr.contains("(name-taken)") && done.stderr.contains(r#"such as "BOB-2""#),
        "{}",
        done.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn to_sends_a_private_message_to_one_member_only() {
    let relay = Relay::start().await;
    let trio = members(&relay, "p", &["ann", "bob", "cid"], &[]).await;
    let dan = Client::start(
        Some(&relay.url),
        "p",
        "dan",
        &["--to", "bob", "--send", "just you", "--timeout", "20"],
    );
    let dan = dan.finish().await;
    assert_eq!(dan.code, Some(0), "{}", dan.stderr);
    assert_eq!(of_type(&dan.lines, "sent")[0]["to"], "bob");
    let delivered: Vec<&Value> = of_type(&dan.lines, "delivered");
    assert_eq!((delivered.len(), delivered[0]["to"].as_str()), (1, Some("bob")));
    for (member, name) in trio.into_iter().zip(["ann", "bob", "cid"]) {
        let done = member.finish().await;
        let got = of_type(&done.lines, "message");
        if name == "bob" {
            assert_eq!(
                (got.len(), got[0]["text"].as_str(), got[0]["private"].as_bool()),
                (1, Some("just you"), Some(true))
            );
        } else {
            assert!(got.is_empty(), "{name} must not see it: {got:?}");
        }
    }
}
