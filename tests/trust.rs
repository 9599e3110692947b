//! Knowing who is on the other end: a lasting identity, safety words both ends compute
//! alike, and known peers whose certificate may not change unnoticed.

mod common;

use std::process::Command;

use common::files::TempDir;
use common::{Client, Relay};

/// `peertalk id` with the identity at `path`: exit code, stdout, stderr.
fn id(path: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_peertalk"))
        .args(["id", "--identity", &path.display().to_string()])
        .output()
        .expect("run peertalk id");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_identity_is_made_once_kept_private_and_the_same_on_every_run() {
    let dir = TempDir::new("id");
    let path = dir.path().join("state/identity.pem");
    let (code, first, _) = id(&path);
    assert_eq!(code, Some(0));
    assert!(first.starts_with("sha-256 ") && first.trim().len() == "sha-256 ".len() + 95, "{first}");
    assert_eq!(id(&path).1, first, "the same fingerprint every run");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("made").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only its owner reads the private key");
    }
    std::fs::write(&path, "not a certificate").expect("damage it");
    let (code, _, stderr) = id(&path);
    assert_eq!(code, Some(15), "{stderr}");
    assert!(stderr.contains("is damaged") && stderr.contains("move it away"), "{stderr}");
    // A chat with a damaged identity stops before any network work: not "relay unreachable".
    let out = Command::new(env!("CARGO_BIN_EXE_peertalk"))
        .args([
            "--room",
            "r",
            "--signal",
            "ws://127.0.0.1:9",
            "--headless",
            "--identity",
            &path.display().to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run peertalk");
    assert_eq!(out.status.code(), Some(15), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A client with its own identity in `dir`.
fn client(relay: &Relay, room: &str, name: &str, dir: &TempDir, extra: &[&str]) -> Client {
    let identity = dir.path().join("identity.pem").display().to_string();
    let mut args = vec!["--identity", identity.as_str()];
    args.extend_from_slice(extra);
    Client::start(Some(&relay.url), room, name, &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn both_ends_see_the_same_safety_words_and_the_fingerprints_peertalk_id_prints() {
    let relay = Relay::start().await;
    let (a, b) = (TempDir::new("alice"), TempDir::new("bob"));
    let mut bob = client(&relay, "sw", "bob", &b, &[]);
    bob.expect_type("joined").await;
    let mut alice = client(&relay, "sw", "alice", &a, &["--commands"]);
    let (with_bob, with_alice) = (alice.connected().await, bob.connected().await);
    let words = with_bob["safety"].as_str().expect("safety words").to_owned();
    assert_eq!(words.split(' ').count(), 7, "{words}");
    assert_eq!(with_alice["safety"], words.as_str(), "the same words on both ends");
    assert_eq!(with_bob["verified"], false);

    alice.say("/verify bob").await;
    let shown = alice.expect_type("safety").await;
    assert_eq!(shown["words"], words.as_str());
    let bobs_id = id(&b.path().join("identity.pem")).1;
    assert_eq!(format!("sha-256 {}\n", shown["fingerprint"].as_str().expect("fingerprint")), bobs_id);
    alice.say("/verify bob yes").await;
    let verified = alice.expect(|l| l["type"] == "safety" && l["verified"] == true, "verified").await;
    assert_eq!(verified["name"], "bob");
    let known = std::fs::read_to_string(a.path().join("known_peers")).expect("remembered");
    assert_eq!(known, format!("bob {}", bobs_id.trim_start_matches("sha-256 ")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_name_with_another_certificate_is_announced_and_with_strict_identity_refused() {
    let relay = Relay::start().await;
    let (a, b, m) = (TempDir::new("alice"), TempDir::new("bob"), TempDir::new("mallory"));
    // Alice verified bob once.
    let bob_id = id(&b.path().join("identity.pem")).1;
    let line = format!("bob {}", bob_id.trim().trim_start_matches("sha-256 "));
    std::fs::write(a.path().join("known_peers"), line).expect("known peers");

    // Somebody else turns up as bob: alice is told, loudly.
    let mut mallory = client(&relay, "kp", "bob", &m, &[]);
    mallory.expect_type("joined").await;
    let mut alice = client(&relay, "kp", "alice", &a, &[]);
    let changed = alice.expect_type("identity-changed").await;
    assert_eq!((changed["name"].as_str(), changed["refused"].as_bool()), (Some("bob"), Some(false)));
    assert_eq!(alice.connected().await["verified"], false);
    drop(alice);

    // With --strict-identity she refuses it before anything is sent.
    let alice =
        client(&relay, "kp", "alice", &a, &["--strict-identity", "--send", "the launch code is 0000"]);
    let alice = alice.finish().await;
    assert_eq!(alice.code, Some(16), "{}", alice.stderr);
    assert!(alice.stderr.contains("certificate other than the one you verified"), "{}", alice.stderr);
    mallory.close_input();
    let mallory = mallory.finish().await;
    assert!(mallory.texts().is_empty(), "nothing alice typed reached the impostor: {:?}", mallory.texts());

    // The real bob is verified.
    let mut bob = client(&relay, "kp2", "bob", &b, &[]);
    bob.expect_type("joined").await;
    let mut alice = client(&relay, "kp2", "alice", &a, &["--strict-identity"]);
    assert_eq!(alice.connected().await["verified"], true);
}

/// `peertalk-signal token` for `room`, signed with the key in `key`.
fn mint(key: &std::path::Path, room: &str) -> String {
    let out = Command::new(common::relay_bin())
        .args(["token", "--room", room, "--ttl", "1h", "--token-key-file", &key.display().to_string()])
        .output()
        .expect("run peertalk-signal token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("text").trim().to_owned()
}

/// What the relay answers a join to `room` carrying `token`: `welcome`, or the error code.
async fn join_with(relay: &Relay, room: &str, token: Option<&str>) -> String {
    let mut ws = common::RawWs::connect(&relay.url).await;
    let mut join = serde_json::json!({"type": "join", "room": room, "name": "ann", "version": 1});
    if let Some(token) = token {
        join["token"] = token.into();
    }
    ws.send_json(&join).await;
    let answer = ws.recv().await;
    if answer["type"] == "welcome" {
        "welcome".to_owned()
    } else {
        answer["code"].as_str().unwrap_or("?").to_owned()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn join_tokens_admit_their_own_room_until_they_expire_and_nothing_else() {
    let dir = TempDir::new("tokens");
    let (key, other) = (dir.path().join("token.key"), dir.path().join("other.key"));
    std::fs::write(&key, b"0123456789abcdef0123456789abcdef\n").expect("key");
    std::fs::write(&other, b"fedcba9876543210fedcba9876543210").expect("key");
    let relay =
        Relay::start_with(&["--listen", "127.0.0.1:0", "--token-key-file", &key.display().to_string()]).await;

    let valid = mint(&key, "team");
    let last = valid.chars().last().expect("a mac");
    let tampered = format!("{}{}", &valid[..valid.len() - 1], if last == '0' { '1' } else { '0' });
    let expired = peertalk_signal::token::TokenKey::new(b"0123456789abcdef0123456789abcdef")
        .mint("team", peertalk_signal::token::now() - 10);
    assert_eq!(join_with(&relay, "team", Some(&valid)).await, "welcome");
    assert_eq!(join_with(&relay, "team", None).await, "forbidden");
    assert_eq!(join_with(&relay, "other", Some(&valid)).await, "forbidden", "another room");
    assert_eq!(join_with(&relay, "team", Some(&tampered)).await, "forbidden");
    assert_eq!(join_with(&relay, "team", Some(&mint(&other, "team"))).await, "forbidden", "another key");
    assert_eq!(join_with(&relay, "team", Some(&expired)).await, "token-expired");

    // The client gives its token with --token; an expired one ends with exit 4 and says so.
    let mut ann = Client::start(Some(&relay.url), "team", "ann", &["--token", &valid]);
    ann.expect_type("joined").await;
    let late = Client::start(Some(&relay.url), "team", "bea", &["--token", &expired]).finish().await;
    assert_eq!(late.code, Some(4), "{}", late.stderr);
    assert!(late.stderr.contains("expired"), "{}", late.stderr);
}

#[test]
fn minting_a_token_needs_a_key_of_16_bytes_or_more() {
    let dir = TempDir::new("short-key");
    let key = dir.path().join("token.key");
    std::fs::write(&key, b"short").expect("key");
    let out = Command::new(common::relay_bin())
        .args(["token", "--room", "team", "--token-key-file", &key.display().to_string()])
        .output()
        .expect("run peertalk-signal token");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 16") && stderr.contains("/dev/urandom"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn members_with_the_same_passphrase_chat_and_a_wrong_one_is_refused_before_anything_is_said() {
    let relay = Relay::start().await;
    let debug = [("PEERTALK_LOG", "debug")];
    let mut bob = Client::start_with_env(
        Some(&relay.url),
        "pp",
        "bob",
        &["--passphrase", "correct horse", "--expect", "1"],
        &debug,
    );
    bob.expect_type("joined").await;
    let alice = Client::start_with_env(
        Some(&relay.url),
        "pp",
        "alice",
        &["--passphrase", "correct horse", "--send", "hi bob"],
        &debug,
    );
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "{}", alice.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    assert_eq!(bob.texts(), ["hi bob"]);
    for client in [&alice, &bob] {
        assert!(!client.stderr.contains("correct horse"), "the passphrase stays out of the logs");
    }

    let mut dan = Client::start(Some(&relay.url), "pp2", "dan", &["--passphrase", "right", "--expect", "1"]);
    dan.expect_type("joined").await;
    let carol =
        Client::start(Some(&relay.url), "pp2", "carol", &["--passphrase", "wrong", "--send", "secret"]);
    let (carol, dan) = tokio::join!(carol.finish(), dan.finish());
    for (who, client) in [("carol", &carol), ("dan", &dan)] {
        assert_eq!(client.code, Some(17), "{who}: {}", client.stderr);
        assert!(
            client.stderr.contains("the passphrase does not match, or someone is intercepting"),
            "{who}: {}",
            client.stderr
        );
        assert!(!client.lines.iter().any(|l| l["type"] == "connected"), "{who} never opened the chat");
    }
    assert!(dan.texts().is_empty(), "nothing carol typed reached dan");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_puts_mallory_in_the_middle_is_caught_by_safety_words_known_peers_and_the_passphrase() {
    let (a, b, m) = (TempDir::new("alice"), TempDir::new("bob"), TempDir::new("mallory"));
    let bob_id = id(&b.path().join("identity.pem")).1;
    std::fs::write(
        a.path().join("known_peers"),
        format!("bob {}", bob_id.trim().trim_start_matches("sha-256 ")),
    )
    .expect("alice verified bob once");
    let start = |url: &str, name: &str, dir: &TempDir, extra: &[&str]| {
        let identity = dir.path().join("identity.pem").display().to_string();
        let mut args = vec!["--identity", identity.as_str()];
        args.extend_from_slice(extra);
        Client::start(Some(url), "lies", name, &args)
    };

    // Without a passphrase: everyone connects, but the words differ and alice is warned.
    let relay = common::mitm::LyingRelay::start().await;
    let mut bob = start(&relay.url, "bob", &b, &[]);
    bob.expect_type("joined").await;
    let mut mallory = start(&relay.url, "mallory", &m, &[]);
    mallory.expect_type("joined").await;
    let mut alice = start(&relay.url, "alice", &a, &[]);
    alice.expect_type("identity-changed").await;
    let alice_sees = alice.connected().await;
    let bob_sees = bob.connected().await;
    assert_eq!((alice_sees["name"].as_str(), bob_sees["name"].as_str()), (Some("bob"), Some("alice")));
    assert_ne!(alice_sees["safety"], bob_sees["safety"], "the words tell the two ends apart");
    drop((alice, bob, mallory, relay));

    // With a passphrase mallory does not know, alice refuses before saying anything.
    let relay = common::mitm::LyingRelay::start().await;
    let mut bob = start(&relay.url, "bob", &b, &["--passphrase", "our secret"]);
    bob.expect_type("joined").await;
    let mut mallory = start(&relay.url, "mallory", &m, &["--passphrase", "a guess"]);
    mallory.expect_type("joined").await;
    let alice =
        start(&relay.url, "alice", &a, &["--passphrase", "our secret", "--send", "the launch code is 0000"]);
    let alice = alice.finish().await;
    assert_eq!(alice.code, Some(17), "{}", alice.stderr);
    assert!(alice.stderr.contains("someone is intercepting"), "{}", alice.stderr);
    mallory.close_input();
    let mallory = mallory.finish().await;
    assert!(mallory.texts().is_empty(), "nothing alice typed reached mallory: {:?}", mallory.texts());
    drop(bob);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_without_the_passphrase_is_given_up_on_with_a_sentence_that_says_so() {
    let relay = Relay::start().await;
    let mut bob = Client::start(Some(&relay.url), "pq", "bob", &["--timeout", "30"]);
    bob.expect_type("joined").await;
    let alice =
        Client::start(Some(&relay.url), "pq", "alice", &["--passphrase", "our secret", "--send", "hi"]);
    let alice = alice.finish_within(std::time::Duration::from_secs(30)).await;
    assert_eq!(alice.code, Some(17), "{}", alice.stderr);
    assert!(alice.stderr.contains("was it started without --passphrase"), "{}", alice.stderr);
    bob.close_input();
    assert!(bob.finish().await.texts().is_empty(), "nothing reached the peer that proved nothing");
}
