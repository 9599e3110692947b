//! Several relays sharing rooms through a real `redis-server`: people on different relays
//! meet, limits hold for the whole cluster, a relay's death and Redis's are survived.

mod common;

use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{Client, RawWs, Relay, http_get};
use serde_json::{Value, json};
use tokio::time::sleep;

fn ids(welcome: &Value) -> Vec<String> {
    let peers = welcome["peers"].as_array().expect("peers");
    peers.iter().map(|p| p["name"].as_str().expect("name").to_owned()).collect()
}

fn signal_to(to: &Value, n: usize) -> Value {
    json!({"type": "signal", "to": to, "signal": {"candidate": {"candidate": format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"), "sdpMid": "0", "sdpMLineIndex": 0}}})
}

/// Waits until `/healthz` on `relay` says `want` (its first word).
async fn health_becomes(relay: &Relay, want: &str) {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let (status, body) = http_get(&relay.addr, "/healthz").await;
        assert_eq!(status, 200, "a degraded relay still serves: {body}");
        if body.starts_with(want) {
            return;
        }
        assert!(Instant::now() < deadline, "/healthz never said {want:?}; last {body:?}");
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn members_on_three_relays_share_one_room() {
    let redis = Redis::start().await;
    let (one, two, three) = (redis.relay(&[]).await, redis.relay(&[]).await, redis.relay(&[]).await);

    let (mut alice, welcome) = RawWs::join(&one.url, "spread", "alice").await;
    let alice_id = welcome["id"].clone();
    let (mut bob, welcome) = RawWs::join(&two.url, "spread", "bob").await;
    assert_eq!(ids(&welcome), ["alice"], "the welcome lists members on other relays");
    let bob_id = welcome["id"].clone();
    let joined = alice.recv().await;
    assert_eq!((&joined["type"], &joined["peer"]["name"]), (&json!("peer-joined"), &json!("bob")));
    let (mut carol, welcome) = RawWs::join(&three.url, "spread", "carol").await;
    assert_eq!(ids(&welcome), ["alice", "bob"], "in join order");
    let carol_id = welcome["id"].clone();
    for member in [&mut alice, &mut bob] {
        assert_eq!(member.recv().await["peer"]["name"], "carol");
    }

    // Signals reach a member on another relay, in the order they were sent.
    for n in 0..50 {
        alice.send_json(&signal_to(&carol_id, n)).await;
    }
    for n in 0..50 {
        let got = carol.recv().await;
        assert_eq!((&got["type"], &got["from"]), (&json!("signal"), &alice_id), "{got}");
        assert!(
            got["signal"]["candidate"]["candidate"]
                .as_str()
                .expect("text")
                .starts_with(&format!("candidate:{n} "))
        );
    }
    carol.send_json(&signal_to(&bob_id, 7)).await;
    assert_eq!(bob.recv().await["from"], carol_id);

    // A name is the room's, not the relay's; unknown peers are refused on every relay.
    let mut again = RawWs::connect(&three.url).await;
    let taken = again.try_join("spread", "Alice").await;
    assert_eq!((&taken["type"], &taken["code"]), (&json!("error"), &json!("name-taken")), "{taken}");
    assert!(taken["message"].as_str().expect("message").contains("Alice-2"), "{taken}");
    bob.send_json(&signal_to(&json!("p0000000000000000"), 1)).await;
    assert_eq!(bob.recv().await["code"], "unknown-peer");

    drop(bob);
    for member in [&mut alice, &mut carol] {
        let left = member.recv().await;
        assert_eq!((&left["type"], &left["id"]), (&json!("peer-left"), &bob_id), "{left}");
    }
    // Gone from the cluster too: the name is free again, on any relay.
    let (_bob2, welcome) = RawWs::join(&one.url, "spread", "bob").await;
    assert_eq!(ids(&welcome), ["alice", "carol"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn room_limits_hold_for_the_whole_cluster() {
    let redis = Redis::start().await;
    let limits = ["--max-peers-per-room", "2", "--max-rooms", "2"];
    let (one, two) = (redis.relay(&limits).await, redis.relay(&limits).await);
    let (_a, _) = RawWs::join(&one.url, "first", "a").await;
    let (_b, _) = RawWs::join(&two.url, "first", "b").await;
    let mut c = RawWs::connect(&one.url).await;
    let full = c.try_join("first", "c").await;
    assert_eq!(full["code"], "room-full", "{full}");
    let (_d, _) = RawWs::join(&two.url, "second", "d").await;
    let mut e = RawWs::connect(&one.url).await;
    let no_room = e.try_join("third", "e").await;
    assert_eq!(no_room["code"], "too-many-rooms", "{no_room}");
    // Bad input is refused as on a relay alone.
    let mut f = RawWs::connect(&two.url).await;
    let bad = f.try_join("", "f").await;
    assert_eq!(bad["code"], "bad-room", "{bad}");
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_rooms_span_relays() {
    let redis = Redis::start().await;
    let (one, two) = (redis.relay(&[]).await, redis.relay(&[]).await);
    let mut a = RawWs::connect(&format!("{}/signal?room=old", one.url)).await;
    let mut b = RawWs::connect(&format!("{}/signal?room=old", two.url)).await;
    let offer = json!({"event": "offer", "data": {"type": "offer", "sdp": "v=0"}});
    // The second page may still be joining when the first speaks: repeat until it hears.
    let deadline = Instant::now() + common::WAIT;
    loop {
        a.send_json(&offer).await;
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), b.recv()).await {
            assert_eq!(got, offer);
            break;
        }
        assert!(Instant::now() < deadline, "the classic frame never crossed relays");
    }
    b.send_json(&json!({"event": "answer", "data": {"type": "answer", "sdp": "v=0"}})).await;
    loop {
        let got = a.recv().await;
        if got["event"] == "answer" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_clients_on_three_relays_chat_both_ways() {
    let redis = Redis::start().await;
    let relays = [redis.relay(&[]).await, redis.relay(&[]).await, redis.relay(&[]).await];
    let names = ["alice", "bob", "carol"];
    let mut clients = Vec::new();
    for (relay, name) in relays.iter().zip(names) {
        let mut client = Client::start(Some(&relay.url), "three", name, &[]);
        client.expect_type("joined").await;
        clients.push(client);
    }
    for client in &mut clients {
        client.expect_count("connected", 2).await;
    }
    for (client, name) in clients.iter_mut().zip(names) {
        client.say(&format!("hello from {name}")).await;
    }
    for (client, name) in clients.iter_mut().zip(names) {
        client.expect_count("message", 2).await;
        let mut heard = common::messages(&client.seen);
        heard.sort();
        let mut want: Vec<String> =
            names.iter().filter(|n| **n != name).map(|n| format!("hello from {n}")).collect();
        want.sort();
        assert_eq!(heard, want, "{name}");
    }
    for client in clients {
        let mut client = client;
        client.close_input();
        let done = client.finish().await;
        assert_eq!(done.code, Some(0), "{}", done.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_relays_clients_resume_elsewhere_and_one_that_does_not_is_reported_left() {
    let redis = Redis::start().await;
    let (mut doomed, other) = (redis.relay(&[]).await, redis.relay(&[]).await);
    let fallback = ["--signal", other.url.as_str()];
    let mut alice = Client::start(Some(&doomed.url), "crash", "alice", &fallback);
    let alice_id = alice.expect_type("joined").await["me"].clone();
    let mut bob = Client::start(Some(&other.url), "crash", "bob", &[]);
    bob.expect_type("joined").await;
    // Carol knows only the relay that dies.
    let mut carol = Client::start(Some(&doomed.url), "crash", "carol", &[]);
    let carol_id = carol.expect_type("joined").await["me"].clone();
    alice.expect_count("connected", 2).await;
    bob.expect_count("connected", 2).await;

    doomed.kill().await;
    let killed = Instant::now();
    alice.expect_type("relay-lost").await;
    let back = alice.expect_type("relay-back").await;
    assert_eq!((back["resumed"].as_bool(), &back["me"]), (Some(true), &alice_id), "{back}");

    let left = bob.expect(|l| l["type"] == "peer-left", "carol reported gone").await;
    assert_eq!(left["peer"], carol_id, "{left}");
    let after = killed.elapsed();
    eprintln!("carol reported gone {after:?} after her relay was killed");
    // Presence lasts 3 s and is checked every second: 4 s at most, with room for a slow machine.
    assert!(after < Duration::from_secs(6), "carol was reported gone after {after:?}");

    bob.say("still here").await;
    assert_eq!(alice.expect_type("message").await["text"], "still here");
    alice.say("me too").await;
    assert_eq!(bob.expect_type("message").await["text"], "me too");
    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!((alice.code, bob.code), (Some(0), Some(0)), "{}\n{}", alice.stderr, bob.stderr);
    for (who, done) in [("alice", &alice), ("bob", &bob)] {
        let connected = done.lines.iter().filter(|l| l["type"] == "connected").count();
        assert_eq!(connected, 2, "{who} kept its peer connections: {:?}", done.lines);
        let alice_left = done.lines.iter().any(|l| l["type"] == "peer-left" && l["peer"] == alice_id);
        assert!(!alice_left, "alice was never reported gone to {who}");
    }
    carol.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_on_one_relay_keeps_working_while_redis_restarts() {
    let mut redis = Redis::start().await;
    let (one, two) = (redis.relay(&[]).await, redis.relay(&[]).await);
    let (mut alice, _) = RawWs::join(&one.url, "steady", "alice").await;
    let (mut bob, welcome) = RawWs::join(&one.url, "steady", "bob").await;
    let bob_id = welcome["id"].clone();
    assert_eq!(alice.recv().await["type"], "peer-joined");
    health_becomes(&one, "ok").await;

    redis.kill().await;
    health_becomes(&one, "degraded").await;
    let (_, metrics) = http_get(&one.addr, "/metrics").await;
    assert!(metrics.contains("peertalk_signal_cluster_up 0"), "{metrics}");
    // Throughout, the room whose members are all here works: signals, joins, leaves.
    for n in 0..10 {
        alice.send_json(&signal_to(&bob_id, n)).await;
        assert_eq!(bob.recv().await["type"], "signal");
    }
    let (mut carol, welcome) = RawWs::join(&one.url, "steady", "carol").await;
    assert_eq!(ids(&welcome), ["alice", "bob"]);
    for member in [&mut alice, &mut bob] {
        assert_eq!(member.recv().await["peer"]["name"], "carol");
    }

    redis.restart().await;
    health_becomes(&one, "ok").await;
    health_becomes(&two, "ok").await;
    // Presence was rebuilt: a newcomer on the other relay finds everyone.
    let deadline = Instant::now() + common::WAIT;
    let (mut dave, welcome) = loop {
        let (dave, welcome) = RawWs::join(&two.url, "steady", "dave").await;
        if ids(&welcome).len() == 3 {
            break (dave, welcome);
        }
        assert!(Instant::now() < deadline, "the room was never rebuilt: {welcome}");
        drop(dave);
        sleep(Duration::from_millis(200)).await;
    };
    let mut names = ids(&welcome);
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let dave_id = welcome["id"].clone();
    for member in [&mut alice, &mut bob, &mut carol] {
        let joined = loop {
            let line = member.recv().await;
            if line["type"] == "peer-joined" && line["peer"]["id"] == dave_id {
                break line;
            }
        };
        assert_eq!(joined["peer"]["name"], "dave");
    }
    dave.send_json(&signal_to(&bob_id, 1)).await;
    loop {
        let got = bob.recv().await;
        if got["type"] == "signal" {
            assert_eq!(got["from"], dave_id);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_starts_and_serves_alone_when_redis_is_not_there() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    // Given in the config file, as an operator would.
    let config = std::env::temp_dir().join(format!("peertalk-cluster-{}.toml", std::process::id()));
    std::fs::write(&config, format!("redis = \"redis://127.0.0.1:{port}/0\"\n")).expect("write the config");
    let relay =
        Relay::start_with(&["--listen", "127.0.0.1:0", "--config", config.to_str().expect("UTF-8")]).await;
    let _ = std::fs::remove_file(&config);
    health_becomes(&relay, "degraded").await;
    let (_alice, _) = RawWs::join(&relay.url, "alone", "alice").await;
    let (_bob, welcome) = RawWs::join(&relay.url, "alone", "bob").await;
    assert_eq!(ids(&welcome), ["alice"]);
    let (_, metrics) = http_get(&relay.addr, "/metrics").await;
    assert!(metrics.contains("peertalk_signal_cluster_up 0"), "{metrics}");
}

#[test]
fn a_bad_redis_address_is_refused_before_starting() {
    let out = std::process::Command::new(common::relay_bin())
        .args(["--listen", "127.0.0.1:0", "--redis", "http://example.org"])
        .output()
        .expect("run the relay");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a Redis address") && stderr.contains("redis://"), "{stderr}");
}
