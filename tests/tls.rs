//! The relay over TLS: a test CA made here, a relay serving wss:// with a certificate it
//! signed, and clients that trust it through --ca-file (or refuse, without it).

mod common;

use common::pki::{make_pki, temp_dir};
use common::{Client, Relay, connected_pair};

#[tokio::test(flavor = "multi_thread")]
async fn clients_chat_through_a_wss_relay_with_a_private_ca() {
    let dir = temp_dir("tls");
    let (ca, cert, key) = make_pki(&dir);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key]).await;
    assert!(relay.url.starts_with("wss://"), "{}", relay.url);

    let ca_arg = ["--ca-file", &*ca.to_string_lossy()].map(str::to_owned);
    let ca_args: Vec<&str> = ca_arg.iter().map(String::as_str).collect();
    let (mut alice, mut bob) =
        connected_pair(&relay.url, "secure", ("alice", &ca_args), ("bob", &ca_args)).await;
    alice.say("over TLS to the relay, DTLS to bob").await;
    assert_eq!(bob.expect_type("message").await["text"], "over TLS to the relay, DTLS to bob");

    let untrusting = Client::start(Some(&relay.url), "secure", "eve", &["--send", "x"]).finish().await;
    assert_eq!(untrusting.code, Some(3), "{}", untrusting.stderr);
    assert!(
        untrusting.stderr.contains("--ca-file"),
        "the sentence says how to fix it: {}",
        untrusting.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_tls_relay_refuses_plain_connections() {
    let dir = temp_dir("tls-plain");
    let (_, cert, key) = make_pki(&dir);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key]).await;
    let plain =
        tokio::time::timeout(common::WAIT, tokio_tungstenite::connect_async(format!("ws://{}", relay.addr)))
            .await
            .expect("answered in time");
    assert!(plain.is_err(), "a plain WebSocket cannot talk to a TLS relay");
    let _ = std::fs::remove_dir_all(dir);
}
