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
