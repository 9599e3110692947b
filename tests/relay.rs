//! The relay's protocol, spoken by hand over raw WebSockets: rooms, targeted forwarding,
//! and a clear error for every kind of bad input, while well-behaved peers carry on.

mod common;

use std::time::Duration;

use common::{RawWs, Relay, connected_pair, http_get, http_response, signal};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn candidate() -> Value {
    json!({"candidate": {
        "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
        "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"
    }})
}

#[tokio::test]
async fn welcome_lists_members_and_members_hear_of_joins_and_leaves() {
    let relay = Relay::start().await;
    let (mut alice, welcome) = RawWs::join(&relay.url, "lobby", "alice").await;
    assert_eq!(welcome["version"], 1);
    assert_eq!(welcome["room"], "lobby");
    assert_eq!(welcome["peers"], json!([]));
    let alice_id = welcome["id"].clone();

    let (bob, welcome) = RawWs::join(&relay.url, "lobby", "bob").await;
    assert_eq!(welcome["peers"], json!([{"id": alice_id, "name": "alice"}]));
    let bob_id = welcome["id"].clone();
    assert_ne!(alice_id, bob_id);
    assert_eq!(alice.recv().await, json!({"type": "peer-joined", "peer": {"id": bob_id, "name": "bob"}}));

    drop(bob);
    let left = tokio::time::timeout(Duration::from_secs(2), alice.recv()).await.expect("left within 2 s");
    assert_eq!(left, json!({"type": "peer-left", "id": bob_id}));
}

#[tokio::test]
async fn signals_reach_only_the_addressee_stamped_with_the_true_sender() {
    let relay = Relay::start().await;
    let (mut alice, w) = RawWs::join(&relay.url, "trio", "alice").await;
    let alice_id = w["id"].clone();
    let (mut bob, w) = RawWs::join(&relay.url, "trio", "bob").await;
    let bob_id = w["id"].clone();
    let (mut carol, _) = RawWs::join(&relay.url, "trio", "carol").await;
    alice.recv().await; // bob joined
    alice.recv().await; // carol joined
    bob.recv().await; // carol joined

    let offer = json!({"description": {"type": "offer", "sdp": "v=0\r\n"}});
    alice.send_json(&json!({"type": "signal", "to": bob_id, "signal": offer})).await;
    assert_eq!(bob.recv().await, json!({"type": "signal", "from": alice_id, "signal": offer}));
    carol.expect_silence(Duration::from_millis(300)).await;

    // A forged sender is refused outright, not forwarded with the lie in it.
    bob.send_json(&json!({"type": "signal", "to": alice_id, "from": "p999", "signal": candidate()})).await;
    assert_eq!(bob.recv().await["code"], "bad-message");
    alice.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn rooms_are_isolated() {
    let relay = Relay::start().await;
    let (mut alice, w) = RawWs::join(&relay.url, "room-a", "alice").await;
    let alice_id = w["id"].clone();
    let (mut eve, w) = RawWs::join(&relay.url, "room-b", "eve").await;
    assert_eq!(w["peers"], json!([]), "eve does not see room-a");
    eve.send_json(&json!({"type": "signal", "to": alice_id, "signal": candidate()})).await;
    let error = eve.recv().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "unknown-peer");
    alice.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_gets_its_error_while_another_room_chats_on() {
    let relay = Relay::start().await;
    let (mut alice, mut bob) = connected_pair(&relay.url, "calm", ("alice", &[]), ("bob", &[])).await;

    let mut bad = RawWs::connect(&relay.url).await;
    // Before joining.
    bad.send_json(&json!({"type": "signal", "to": "p1", "signal": candidate()})).await;
    assert_eq!(bad.recv().await["code"], "not-joined");
    for (frame, code) in [
        ("hello relay".to_owned(), "bad-json"),
        (json!({"type": "dance"}).to_string(), "unknown-type"),
        (json!({"room": "calm"}).to_string(), "unknown-type"),
        (json!({"type": "join", "room": "calm"}).to_string(), "bad-message"),
        (
            json!({"type": "join", "room": "calm", "name": "x", "version": 99}).to_string(),
            "unsupported-version",
        ),
        (json!({"type": "join", "room": "", "name": "x", "version": 1}).to_string(), "bad-room"),
        (
            json!({"type": "join", "room": "calm", "name": "\u{1b}[31mred", "version": 1}).to_string(),
            "bad-name",
        ),
    ] {
        bad.send_text(frame.clone()).await;
        let reply = bad.recv().await;
        assert_eq!(reply["type"], "error", "{frame}");
        assert_eq!(reply["code"], code, "{frame} -> {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| m.len() > 10), "a sentence: {reply}");
    }
    bad.send_binary(vec![0, 1, 2]).await;
    assert_eq!(bad.recv().await["code"], "binary-frame");

    // Joined, it may not join again, nor signal someone who is not there.
    assert_eq!(bad.try_join("noisy", "mallory").await["type"], "welcome");
    assert_eq!(bad.try_join("calm", "mallory").await["code"], "already-joined");
    bad.send_json(&json!({"type": "signal", "to": "p1", "signal": candidate()})).await;
    assert_eq!(bad.recv().await["code"], "unknown-peer");

    // Too large: an error, then the connection is closed with 1009.
    bad.send_text("x".repeat(70 * 1024)).await;
    assert_eq!(bad.recv().await["code"], "too-large");
    match bad.next_frame().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }

    // Meanwhile the calm room is undisturbed.
    alice.say("still fine").await;
    assert_eq!(bob.expect_type("message").await["text"], "still fine");
    bob.say("all good").await;
    assert_eq!(alice.expect_type("message").await["text"], "all good");
    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!((alice.code, bob.code), (Some(0), Some(0)), "{}\n{}", alice.stderr, bob.stderr);
}

#[tokio::test]
async fn unknown_paths_are_refused_at_the_handshake() {
    let relay = Relay::start().await;
    let result = tokio_tungstenite::connect_async(format!("{}/elsewhere", relay.url)).await;
    let err = result.expect_err("refused");
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn relay_closes_clients_with_1001_on_sigterm() {
    let mut relay = Relay::start().await;
    let (mut alice, _) = RawWs::join(&relay.url, "bye", "alice").await;
    signal(relay.pid(), "TERM");
    match alice.next_frame().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert!(relay.wait().await.success(), "the relay exits 0 after a clean shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_sdp_from_a_peer_fails_that_connection_with_a_sentence() {
    let relay = Relay::start().await;
    let mut alice =
        common::Client::start(Some(&relay.url), "sdp", "alice", &["--send", "hi", "--timeout", "15"]);
    alice.expect_type("joined").await;
    let (mut mallory, welcome) = RawWs::join(&relay.url, "sdp", "mallory").await;
    let alice_id = welcome["peers"][0]["id"].clone();
    let garbage = json!({"description": {"type": "offer", "sdp": "this is not SDP"}});
    mallory.send_json(&json!({"type": "signal", "to": alice_id, "signal": garbage})).await;

    let link = alice.expect_type("link").await;
    assert_eq!((link["name"].as_str(), link["state"].as_str()), (Some("mallory"), Some("failed")));
    let done = alice.finish().await;
    assert_eq!(done.code, Some(6), "{}", done.stderr);
    assert!(done.stderr.contains("could not open a connection to mallory"), "{}", done.stderr);
}

#[tokio::test]
async fn a_full_room_refuses_one_more_member() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--max-peers-per-room", "2"]).await;
    let (_alice, _) = RawWs::join(&relay.url, "small", "alice").await;
    let (_bob, _) = RawWs::join(&relay.url, "small", "bob").await;
    let mut carol = RawWs::connect(&relay.url).await;
    assert_eq!(carol.try_join("small", "carol").await["code"], "room-full");
    assert_eq!(carol.try_join("elsewhere", "carol").await["type"], "welcome", "the connection stays usable");
}

#[tokio::test]
async fn joining_a_new_room_past_the_room_limit_is_refused() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--max-rooms", "1"]).await;
    let (_alice, _) = RawWs::join(&relay.url, "only", "alice").await;
    let mut bob = RawWs::connect(&relay.url).await;
    assert_eq!(bob.try_join("another", "bob").await["code"], "too-many-rooms");
    assert_eq!(bob.try_join("only", "bob").await["type"], "welcome", "an existing room can still be joined");
}

#[tokio::test]
async fn past_the_connection_limit_clients_hear_server_full_and_1013() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--max-connections", "1"]).await;
    let (_alice, _) = RawWs::join(&relay.url, "r", "alice").await;
    let mut bob = RawWs::connect(&relay.url).await;
    assert_eq!(bob.recv().await["code"], "server-full");
    match bob.next_frame().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1013),
        other => panic!("expected close 1013, got {other:?}"),
    }
}

#[tokio::test]
async fn messages_over_the_rate_are_refused_and_not_forwarded() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--rate", "1", "--burst", "3"]).await;
    let (mut alice, w) = RawWs::join(&relay.url, "fast", "alice").await;
    let alice_id = w["id"].clone();
    let (mut bob, _) = RawWs::join(&relay.url, "fast", "bob").await;
    alice.recv().await; // bob joined
    // The join used one token of bob's burst of three.
    for _ in 0..5 {
        bob.send_json(&json!({"type": "signal", "to": alice_id, "signal": candidate()})).await;
    }
    let mut limited = 0;
    for _ in 0..3 {
        let reply = bob.recv().await;
        assert_eq!(reply["code"], "rate-limited", "{reply}");
        limited += 1;
    }
    assert_eq!(limited, 3);
    assert_eq!(alice.recv().await["type"], "signal");
    assert_eq!(alice.recv().await["type"], "signal");
    alice.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_idle_timeout_and_its_room_told() {
    let relay =
        Relay::start_with(&["--listen", "127.0.0.1:0", "--ping-interval", "0.2", "--idle-timeout", "0.6"])
            .await;
    let (mut alice, _) = RawWs::join(&relay.url, "quiet", "alice").await;
    // Bob joins, then never reads again, so he never answers a ping.
    let (_bob, w) = RawWs::join(&relay.url, "quiet", "bob").await;
    let bob_id = w["id"].clone();
    assert_eq!(alice.recv().await["type"], "peer-joined");
    let left = tokio::time::timeout(Duration::from_secs(3), alice.recv()).await.expect("dropped in time");
    assert_eq!(left, json!({"type": "peer-left", "id": bob_id}));
    // Alice answers pings (by reading), so she is still there for a newcomer.
    let (_carol, w) = RawWs::join(&relay.url, "quiet", "carol").await;
    assert_eq!(w["peers"].as_array().map(Vec::len), Some(1));
    assert_eq!(alice.recv().await["type"], "peer-joined");
}

#[tokio::test]
async fn health_and_metrics_are_served_on_the_websocket_port() {
    let relay = Relay::start().await;
    assert_eq!(http_get(&relay.addr, "/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(http_get(&relay.addr, "/nothing-here").await.0, 404);

    let (mut alice, w) = RawWs::join(&relay.url, "counted", "alice").await;
    let alice_id = w["id"].clone();
    let (mut bob, _) = RawWs::join(&relay.url, "counted", "bob").await;
    alice.recv().await;
    bob.send_json(&json!({"type": "signal", "to": alice_id, "signal": candidate()})).await;
    alice.recv().await;
    bob.send_text("not json").await;
    bob.recv().await;

    let (status, metrics) = http_get(&relay.addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "peertalk_signal_connections 2",
        "peertalk_signal_connections_total 2",
        "peertalk_signal_rooms 1",
        "peertalk_signal_peers 2",
        "peertalk_signal_forwarded_messages_total 1",
        "peertalk_signal_errors_total{code=\"bad-json\"} 1",
        "peertalk_signal_rejected_connections_total{reason=\"bad-request\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn only_allowed_browser_origins_may_connect() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let relay =
        Relay::start_with(&["--listen", "127.0.0.1:0", "--allowed-origin", "https://good.example"]).await;
    let with_origin = |origin: &str| {
        let mut request = relay.url.as_str().into_client_request().expect("a request");
        request.headers_mut().insert("origin", origin.parse().expect("a header value"));
        request
    };
    let err =
        tokio_tungstenite::connect_async(with_origin("https://evil.example")).await.expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
    tokio_tungstenite::connect_async(with_origin("https://good.example")).await.expect("allowed origin");
    RawWs::join(&relay.url, "r", "cli-without-origin").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_room_secret_only_clients_that_know_it_may_join() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--room-secret", "s3cret"]).await;
    let mut raw = RawWs::connect(&relay.url).await;
    for join in [
        json!({"type": "join", "room": "r", "name": "eve", "version": 1}),
        json!({"type": "join", "room": "r", "name": "eve", "version": 1, "secret": "guess"}),
    ] {
        raw.send_json(&join).await;
        assert_eq!(raw.recv().await["code"], "forbidden");
    }
    raw.send_json(&json!({"type": "join", "room": "r", "name": "ann", "version": 1, "secret": "s3cret"}))
        .await;
    assert_eq!(raw.recv().await["type"], "welcome");

    let refused = common::Client::start(Some(&relay.url), "r", "mallory", &["--send", "hi"]).finish().await;
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(refused.stderr.contains("room secret"), "{}", refused.stderr);
    let secret = ["--room-secret", "s3cret"];
    let (mut alice, mut bob) = connected_pair(&relay.url, "ok", ("alice", &secret), ("bob", &secret)).await;
    alice.say("members only").await;
    assert_eq!(bob.expect_type("message").await["text"], "members only");
}

#[tokio::test]
async fn a_config_file_sets_limits_and_flags_override_it() {
    let path = std::env::temp_dir().join(format!("peertalk-relay-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\nmax-peers-per-room = 1\nallowed-origin = [\"https://a.example\"]\n",
    )
    .expect("write config");
    let config = path.display().to_string();

    let relay = Relay::start_with(&["--config", &config]).await;
    let (_alice, _) = RawWs::join(&relay.url, "solo", "alice").await;
    let mut bob = RawWs::connect(&relay.url).await;
    assert_eq!(bob.try_join("solo", "bob").await["code"], "room-full", "the file's limit applies");

    let relay = Relay::start_with(&["--config", &config, "--max-peers-per-room", "2"]).await;
    let (_alice, _) = RawWs::join(&relay.url, "duo", "alice").await;
    RawWs::join(&relay.url, "duo", "bob").await;
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn with_metrics_listen_the_endpoints_move_off_the_public_port() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let private = format!("127.0.0.1:{port}");
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--metrics-listen", &private]).await;
    RawWs::join(&relay.url, "r", "alice").await;
    let (status, body) = http_get(&private, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("peertalk_signal_connections_total 1"), "{body}");
    assert_eq!(http_get(&private, "/healthz").await.0, 200);
    assert_eq!(http_get(&relay.addr, "/metrics").await.0, 404, "not on the public port");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_dropped_with_4008_and_its_room_told() {
    let relay =
        Relay::start_with(&["--listen", "127.0.0.1:0", "--rate", "100000", "--burst", "100000"]).await;
    let (mut alice, _) = RawWs::join(&relay.url, "slow", "alice").await;
    let (mut bob, w) = RawWs::join(&relay.url, "slow", "bob").await;
    let bob_id = w["id"].clone();
    assert_eq!(alice.recv().await["type"], "peer-joined");
    // Bob reads nothing while large signals pile up: the sockets' buffers fill, then his
    // outbox at the relay.
    let big = json!({"candidate": {"candidate": "x".repeat(60_000)}});
    let signal = json!({"type": "signal", "to": bob_id, "signal": big}).to_string();
    let mut left = None;
    for _ in 0..2000 {
        alice.send_text(signal.clone()).await;
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(1), alice.next_raw()).await
        {
            left = Some(serde_json::from_str::<Value>(&text).expect("JSON"));
            break;
        }
    }
    let left = match left {
        Some(left) => left,
        None => tokio::time::timeout(Duration::from_secs(5), alice.recv()).await.expect("told in time"),
    };
    assert_eq!(left, json!({"type": "peer-left", "id": bob_id}));
    loop {
        match bob.next_frame().await {
            Message::Close(Some(frame)) => break assert_eq!(u16::from(frame.code), 4008),
            Message::Text(_) => {}
            other => panic!("expected signals then close 4008, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_relay_serves_its_web_client_under_a_strict_policy_unless_turned_off() {
    let relay = Relay::start().await;
    let (status, head, page) = http_response(&relay.addr, "/?room=demo&name=ann").await;
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self';"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(page.contains(r#"data-testid="message-input""#));
    for (path, kind) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let (status, head, body) = http_response(&relay.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(head.to_ascii_lowercase().contains(kind), "{path}: {head}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} fetches nothing from elsewhere"
        );
    }
    // The WebSocket on / is unchanged.
    let (_ws, welcome) = RawWs::join(&relay.url, "demo", "bob").await;
    assert_eq!(welcome["type"], "welcome");

    let off = Relay::start_with(&["--listen", "127.0.0.1:0", "--web", "off"]).await;
    let (status, body) = http_get(&off.addr, "/").await;
    assert_eq!((status, body.as_str()), (404, "the web client is turned off on this relay (--web off)\n"));
    RawWs::join(&off.url, "demo", "bob").await;
}
