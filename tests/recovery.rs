//! Chat that survives the network: the relay going away and coming back, a link cut for
//! seconds, and a lossy, slow link. Every message must arrive exactly once and in order.

mod common;

use std::time::Duration;

use common::netns::Link;
use common::{Client, Finished, RawWs, Relay, connected_pair, messages};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A free loopback TCP port, for a relay that must come back on the same address.
fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_rejoin_a_restarted_relay_with_their_ids_and_keep_chatting() {
    let addr = format!("127.0.0.1:{}", free_tcp_port());
    let mut relay = Relay::start_on(&addr).await;
    let (mut alice, mut bob) = connected_pair(&relay.url, "phoenix", ("alice", &[]), ("bob", &[])).await;
    let alice_id = alice.expect_type("joined").await["me"].clone();
    let bob_id = bob.expect_type("joined").await["me"].clone();

    relay.kill().await;
    alice.expect_type("relay-lost").await;
    bob.expect_type("relay-lost").await;
    alice.expect_type("relay-retrying").await;
    alice.say("while the relay is down").await;
    assert_eq!(bob.expect_type("message").await["text"], "while the relay is down");

    let relay = Relay::start_on(&addr).await;
    for (client, id) in [(&mut alice, &alice_id), (&mut bob, &bob_id)] {
        let back = client.expect_type("relay-back").await;
        assert_eq!(back["resumed"], true, "{back}");
        assert_eq!(&back["me"], id, "the relay gave back the same id");
    }
    // A newcomer sees both, under the ids they had before the relay died.
    let (carol, welcome) = RawWs::join(&relay.url, "phoenix", "carol").await;
    let mut ids: Vec<Value> =
        welcome["peers"].as_array().expect("peers").iter().map(|p| p["id"].clone()).collect();
    ids.sort_by_key(ToString::to_string);
    let mut expected = vec![alice_id.clone(), bob_id.clone()];
    expected.sort_by_key(ToString::to_string);
    assert_eq!(ids, expected);
    // Carol only looked: she leaves before anything is said, or she would be a member
    // every message waits for.
    drop(carol);
    for client in [&mut alice, &mut bob] {
        client.expect(|l| l["type"] == "peer-left" && l["name"] == "carol", "carol leaving").await;
    }

    bob.say("and after it came back").await;
    assert_eq!(alice.expect_type("message").await["text"], "and after it came back");
    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "{}", alice.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    assert_eq!(messages(&bob.lines), ["while the relay is down"], "exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_move_to_the_next_relay_given_with_their_ids_and_keep_their_connections() {
    let (first, second) = (Relay::start().await, Relay::start().await);
    let mut relay = first;
    let also = ["--signal", second.url.as_str()];
    let (mut alice, mut bob) = connected_pair(&relay.url, "move", ("alice", &also), ("bob", &also)).await;
    let alice_id = alice.expect_type("joined").await["me"].clone();
    let bob_id = bob.expect_type("joined").await["me"].clone();

    relay.kill().await;
    for (client, id) in [(&mut alice, &alice_id), (&mut bob, &bob_id)] {
        client.expect_type("relay-lost").await;
        let back = client.expect_type("relay-back").await;
        assert_eq!(
            (back["resumed"].as_bool(), &back["me"]),
            (Some(true), id),
            "the same id on the other relay: {back}"
        );
    }
    // The room is on the second relay now: a newcomer there finds both.
    let (carol, welcome) = RawWs::join(&second.url, "move", "carol").await;
    let mut names: Vec<&str> = welcome["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);
    drop(carol);
    for client in [&mut alice, &mut bob] {
        client.expect(|l| l["type"] == "peer-left" && l["name"] == "carol", "carol leaving").await;
    }

    bob.say("over the same connection").await;
    assert_eq!(alice.expect_type("message").await["text"], "over the same connection");
    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!((alice.code, bob.code), (Some(0), Some(0)), "{} {}", alice.stderr, bob.stderr);
    let connected = alice.lines.iter().filter(|l| l["type"] == "connected").count();
    assert_eq!(connected, 1, "the peer connection was never replaced");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_replaced_by_its_resume_token_is_closed_with_4009() {
    let relay = Relay::start().await;
    let (mut first, welcome) = RawWs::join(&relay.url, "twice", "dora").await;
    let token = welcome["resume"].as_str().expect("a resume token").to_owned();
    let (mut watcher, _) = RawWs::join(&relay.url, "twice", "eve").await;
    let mut second = RawWs::connect(&relay.url).await;
    second
        .send_json(&serde_json::json!({"type": "join", "room": "twice", "name": "dora", "version": 1, "resume": token}))
        .await;
    let back = second.recv().await;
    assert_eq!(back["type"], "welcome", "{back}");
    assert_eq!(back["id"], welcome["id"]);
    loop {
        match first.next_raw().await {
            Some(Ok(Message::Text(_))) => {}
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4009, "{frame:?}");
                break;
            }
            other => panic!("expected a 4009 close, got {other:?}"),
        }
    }
    // The room saw the old connection leave and the same peer come back.
    assert_eq!(watcher.recv().await["type"], "peer-left");
    let joined = watcher.recv().await;
    assert_eq!(joined["type"], "peer-joined");
    assert_eq!(joined["peer"]["id"], welcome["id"]);

    let mut bad = RawWs::connect(&relay.url).await;
    bad.send_json(
        &serde_json::json!({"type": "join", "room": "twice", "name": "x", "version": 1, "resume": "nope"}),
    )
    .await;
    assert_eq!(bad.recv().await["code"], "bad-resume");
}

/// The namespaces, or a loud skip when this machine does not allow them.
fn link_or_skip(test: &str) -> Option<Link> {
    match Link::create() {
        Ok(link) => Some(link),
        Err(why) => {
            common::note(&format!("SKIPPED {test}: network namespaces are not available here ({why})"));
            None
        }
    }
}

/// Both sides send `n` numbered messages, one every `pace`, while `during` disturbs the
/// link; each must receive the other's exactly once, in order.
async fn exchange_across(
    link: &Link,
    n: usize,
    pace: Duration,
    during: impl AsyncFnOnce(),
) -> (Finished, Finished) {
    let relay = Relay::start_in(&link.a, &["--listen", &format!("{}:0", link.a_ip)]).await;
    let expect = n.to_string();
    let bind_a = link.a_ip.clone();
    let bind_b = link.b_ip.clone();
    let mut alice =
        Client::start_in(&link.a, &relay.url, "netns", "alice", &["--expect", &expect, "--bind", &bind_a]);
    alice.expect_type("joined").await;
    let mut bob =
        Client::start_in(&link.b, &relay.url, "netns", "bob", &["--expect", &expect, "--bind", &bind_b]);
    alice.connected().await;
    bob.connected().await;

    let script = |who: &str| (1..=n).map(|i| format!("{who} {i:03}")).collect::<Vec<_>>();
    let (from_alice, from_bob) = (script("alice"), script("bob"));
    let sending = async {
        for (a, b) in from_alice.iter().zip(&from_bob) {
            alice.say(a).await;
            bob.say(b).await;
            tokio::time::sleep(pace).await;
        }
    };
    tokio::join!(sending, during());
    alice.close_input();
    bob.close_input();
    let limit = Duration::from_secs(90);
    let (alice, bob) = tokio::join!(alice.finish_within(limit), bob.finish_within(limit));
    assert_eq!(alice.code, Some(0), "alice: {}", alice.stderr);
    assert_eq!(bob.code, Some(0), "bob: {}", bob.stderr);
    assert_eq!(messages(&bob.lines), from_alice, "bob got alice's messages once each, in order");
    assert_eq!(messages(&alice.lines), from_bob, "alice got bob's messages once each, in order");
    (alice, bob)
}

/// The states a client reported for its connection, in order.
fn link_states(client: &Finished) -> Vec<String> {
    client
        .lines
        .iter()
        .filter(|l| l["type"] == "link")
        .map(|l| format!("{} {}", l["state"], l["detail"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_sent_while_the_link_is_down_for_5_s_arrive_once_in_order() {
    let Some(link) = link_or_skip("link down for 5 s") else { return };
    let (alice, bob) = exchange_across(&link, 100, Duration::from_millis(50), async || {
        tokio::time::sleep(Duration::from_secs(1)).await;
        link.down();
        tokio::time::sleep(Duration::from_secs(5)).await;
        link.up();
    })
    .await;
    // The outage was real: each side saw its path break and come back.
    for client in [&alice, &bob] {
        let states = link_states(client);
        let broke = states.iter().position(|s| s.contains("trying to restore it"));
        let back = states.iter().rposition(|s| s.contains("restored"));
        assert!(matches!((broke, back), (Some(b), Some(r)) if b < r), "link events: {states:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_cross_a_link_with_10_percent_loss_and_100_ms_delay_once_in_order() {
    let Some(link) = link_or_skip("loss and delay") else { return };
    if let Err(why) = link.impair(10, 100) {
        common::note(&format!("SKIPPED loss and delay: {why}"));
        return;
    }
    exchange_across(&link, 100, Duration::from_millis(20), async || {}).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_down_past_the_ice_restarts_gets_a_new_connection_and_loses_nothing() {
    let Some(link) = link_or_skip("new connection after failed ICE restarts") else { return };
    // Long enough for both ICE restarts to fail (the first after 2 s of a broken path, the
    // second 4 s later, each given 4 s), so that the whole connection is replaced, while
    // the relay still carries the new connection's offer.
    let outage = Duration::from_secs(15);
    let (alice, bob) = exchange_across(&link, 100, Duration::from_millis(100), async || {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Err(why) = link.block_udp() {
            panic!("could not cut the peers' path: {why}");
        }
        tokio::time::sleep(outage).await;
        link.unblock_udp();
    })
    .await;
    // A new connection opens a new chat channel: each side reports it connected again.
    for (client, name) in [(&alice, "alice"), (&bob, "bob")] {
        let connected = client.lines.iter().filter(|l| l["type"] == "connected").count();
        assert_eq!(connected, 2, "{name} connected once, then once more over the new connection");
    }
}
