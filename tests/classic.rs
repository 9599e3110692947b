//! The classic endpoint (`/signal`): Spring-style `{"event":...,"data":...}` frames
//! forwarded to everyone else in a room, under the same limits as the main endpoint, and
//! peertalk clients chatting through it with `--signal-protocol classic`.

mod common;

use std::time::Duration;

use common::audio::{call_state, decode, peer_audio, scratch, tone};
use common::{Client, RawWs, Relay};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const CLASSIC: [&str; 2] = ["--signal-protocol", "classic"];

fn offer() -> serde_json::Value {
    json!({"event": "offer", "data": {"type": "offer", "sdp": "v=0\r\n"}})
}

#[tokio::test]
async fn classic_frames_reach_everyone_else_in_the_room_and_nobody_outside_it() {
    let relay = Relay::start().await;
    let mut alice = RawWs::connect(&format!("{}/signal?room=kitchen", relay.url)).await;
    let mut bob = RawWs::connect(&format!("{}/signal?room=kitchen", relay.url)).await;
    let mut carol = RawWs::connect(&format!("{}/signal?room=kitchen", relay.url)).await;
    let mut elsewhere = RawWs::connect(&format!("{}/signal?room=garden", relay.url)).await;
    let mut unnamed = RawWs::connect(&format!("{}/signal", relay.url)).await;
    let (mut main, _) = RawWs::join(&relay.url, "kitchen", "dave").await;
    relay.wait_for_members(6).await;

    // Forwarded as sent, byte for byte, whatever the event.
    let frame = r#"{"event":"offer","data":{"type":"offer","sdp":"v=0\r\n"},"extra":"kept"}"#;
    alice.send_text(frame).await;
    for member in [&mut bob, &mut carol] {
        assert_eq!(member.next_frame().await, Message::Text(frame.into()));
    }
    unnamed.send_json(&offer()).await;
    for quiet in [&mut alice, &mut elsewhere, &mut main] {
        quiet.expect_silence(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_classic_clients_chat_whichever_starts_first() {
    let relay = Relay::start().await;
    for (room, stagger) in [("first-then-second", Duration::from_millis(500)), ("together", Duration::ZERO)] {
        let mut alice = Client::start(Some(&relay.url), room, "alice", &CLASSIC);
        alice.expect_type("joined").await;
        tokio::time::sleep(stagger).await;
        let mut bob = Client::start(Some(&relay.url), room, "bob", &CLASSIC);
        let with = alice.connected().await;
        assert_eq!(with["name"], "bob", "the hello carries the name");
        bob.connected().await;
        alice.say("hello over classic").await;
        bob.say("hi back").await;
        assert_eq!(bob.expect_type("message").await["text"], "hello over classic");
        assert_eq!(alice.expect_type("message").await["text"], "hi back");
        alice.expect_type("delivered").await;
        bob.expect_type("delivered").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_classic_peer_that_quits_says_bye() {
    let relay = Relay::start().await;
    let mut alice = Client::start(Some(&relay.url), "r", "alice", &CLASSIC);
    alice.expect_type("joined").await;
    let mut bob = Client::start(Some(&relay.url), "r", "bob", &CLASSIC);
    alice.connected().await;
    bob.connected().await;
    bob.close_input();
    bob.finish().await;
    let left = alice.expect_type("peer-left").await;
    assert_eq!(left["name"], "bob");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_through_a_classic_relay_is_negotiated_again_beside_the_chat() {
    let dir = scratch("classic");
    let tone = tone(&dir, 2.0, 440.0).expect("a tone");
    let recording = dir.join("recording.opus");
    let relay = Relay::start().await;
    let listen = [&CLASSIC[..], &["--audio-out", recording.to_str().expect("utf-8 path")]].concat();
    let mut alice = Client::start(Some(&relay.url), "r", "alice", &listen);
    alice.expect_type("joined").await;
    let speak = [&CLASSIC[..], &["--audio-in", tone.to_str().expect("utf-8 path")]].concat();
    let mut bob = Client::start(Some(&relay.url), "r", "bob", &speak);
    alice.connected().await;
    bob.connected().await;

    // The track is added after the channel opened: a second offer and answer go through
    // the classic relay, which must reach the same connection rather than a new one.
    bob.expect(|l| call_state(l, "live"), "the call going live").await;
    alice.expect(|l| peer_audio(l, true), "audio arriving").await;
    alice.say("heard you").await;
    assert_eq!(bob.expect_type("message").await["text"], "heard you");
    bob.expect(|l| call_state(l, "ended"), "the end of the file").await;
    alice.expect(|l| peer_audio(l, false), "audio stopping").await;
    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "alice: {}", alice.stderr);
    assert_eq!(bob.code, Some(0), "bob: {}", bob.stderr);
    assert_eq!(alice.lines.iter().filter(|l| l["type"] == "connected").count(), 1, "one connection");

    let (samples, rate) = decode(&recording).expect("the recording decodes");
    let secs = samples.len() as f64 / f64::from(rate);
    assert!((secs - 2.0).abs() <= 0.2, "the recording lasts {secs:.3} s, not 2 s within 10%");
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[tokio::test]
async fn classic_connections_meet_the_same_limits() {
    let relay = Relay::start_with(&[
        "--listen",
        "127.0.0.1:0",
        "--max-peers-per-room",
        "2",
        "--rate",
        "1",
        "--burst",
        "2",
        "--max-frame-bytes",
        "1024",
    ])
    .await;
    let url = format!("{}/signal?room=small", relay.url);
    let mut alice = RawWs::connect(&url).await;
    let mut bob = RawWs::connect(&url).await;
    relay.wait_for_members(2).await;
    bob.send_json(&offer()).await;
    assert_eq!(alice.recv().await["event"], "offer");

    let mut carol = RawWs::connect(&url).await;
    assert_eq!(
        carol.recv().await["data"]["code"],
        "room-full",
        "errors take the classic shape: {{\"event\":\"error\",\"data\":{{...}}}}"
    );
    match carol.next_frame().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1013),
        other => panic!("expected close 1013, got {other:?}"),
    }

    for _ in 0..3 {
        alice.send_json(&offer()).await;
    }
    let limited = alice.recv().await;
    assert_eq!(
        (limited["event"].as_str(), limited["data"]["code"].as_str()),
        (Some("error"), Some("rate-limited"))
    );
    assert_eq!(bob.recv().await["event"], "offer");
    assert_eq!(bob.recv().await["event"], "offer");
    bob.expect_silence(Duration::from_millis(300)).await;

    bob.send_text("x".repeat(2000)).await;
    assert_eq!(bob.recv().await["data"]["code"], "too-large");
    match bob.next_frame().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

#[tokio::test]
async fn classic_handshakes_are_checked_for_room_secret_and_path() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--room-secret", "s3cret"]).await;
    let status = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(e) => panic!("expected an HTTP answer, got {e}"),
        }
    };
    assert_eq!(status(format!("{}/signal?room=r", relay.url)).await, 403);
    assert_eq!(status(format!("{}/signal?room=r&secret=guess", relay.url)).await, 403);
    assert_eq!(status(format!("{}/signal?room=r&secret=s3cret", relay.url)).await, 101);
    assert_eq!(status(format!("{}/signal?room=%1B%5B31m&secret=s3cret", relay.url)).await, 400);

    let off = Relay::start_with(&["--listen", "127.0.0.1:0", "--classic-path", "off"]).await;
    assert_eq!(status(format!("{}/signal", off.url)).await, 404);
    let moved = Relay::start_with(&["--listen", "127.0.0.1:0", "--classic-path", "/ws/legacy"]).await;
    assert_eq!(status(format!("{}/ws/legacy?room=r", moved.url)).await, 101);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_classic_client_refused_at_the_handshake_exits_4_with_the_reason() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--room-secret", "s3cret"]).await;
    let mut args = CLASSIC.to_vec();
    args.extend(["--send", "hi"]);
    let done = Client::start(Some(&relay.url), "r", "eve", &args).finish().await;
    assert_eq!(done.code, Some(4), "{}", done.stderr);
    assert!(done.stderr.contains("HTTP 403") && done.stderr.contains("secret"), "{}", done.stderr);
}
