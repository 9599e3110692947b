//! `peertalk doctor` against real parts: the relay binary (plain, and over TLS with a
//! private CA) and coturn for STUN and TURN. Each check is one JSON line with `--json`;
//! the exit code is 0 when everything a chat needs works, 18 otherwise.

mod common;

use std::process::Stdio;

use common::pki::{make_pki, temp_dir};
use common::turn::{PASSWORD, Turn, USER, free_udp_port};
use common::{Client, Relay};
use serde_json::Value;

/// Runs `peertalk doctor --json ARGS`: the exit code, the findings and the summary.
async fn doctor(args: &[&str]) -> (Option<i32>, Vec<Value>, Value, String) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let finished = Client::spawn(&all, Stdio::null()).finish().await;
    let mut lines = finished.lines;
    let summary = lines.pop().and_then(|l| l.get("summary").cloned()).expect("a summary line last");
    (finished.code, lines, summary, finished.stderr)
}

/// The findings of one check, in order.
fn of<'a>(findings: &'a [Value], check: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["check"] == check).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_with_a_working_relay_two_stun_servers_and_turn() {
    let relay = Relay::start().await;
    let (first, second) = (Turn::start().await, Turn::start().await);
    let (stun1, stun2, turn) =
        (format!("stun:{}", first.addr), format!("stun:{}", second.addr), format!("turn:{}", first.addr));
    let (code, findings, summary, stderr) = doctor(&[
        "--signal",
        &relay.url,
        "--ice-server",
        &stun1,
        "--ice-server",
        &stun2,
        "--ice-server",
        &turn,
        "--ice-username",
        USER,
        "--ice-credential",
        PASSWORD,
    ])
    .await;
    assert_eq!(code, Some(0), "{findings:#?}\n{stderr}");
    assert_eq!(summary["failed"], 0);
    let relay_check = of(&findings, "relay");
    assert_eq!(relay_check[0]["status"], "ok", "{relay_check:?}");
    assert!(relay_check[0]["detail"].as_str().is_some_and(|d| d.contains("protocol version 1")));
    let stun = of(&findings, "stun");
    assert_eq!(stun.len(), 2);
    for finding in stun {
        assert_eq!(finding["status"], "ok", "{finding}");
        assert!(finding["detail"].as_str().is_some_and(|d| d.contains("seen at 127.0.0.1:")), "{finding}");
    }
    let nat = of(&findings, "nat");
    assert_eq!(nat[0]["status"], "ok", "{nat:?}");
    assert!(nat[0]["detail"].as_str().is_some_and(|d| d.contains("no NAT")), "loopback has none: {nat:?}");
    let turn_check = of(&findings, "turn");
    assert_eq!(turn_check[0]["status"], "ok", "{turn_check:?}");
    assert!(turn_check[0]["detail"].as_str().is_some_and(|d| d.contains("took it back")));
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_a_refused_turn_password_and_exits_18() {
    let relay = Relay::start().await;
    let turn = Turn::start().await;
    let mut args = vec!["--signal".to_owned(), relay.url.clone()];
    args.extend(turn.flags("wrong-horse"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, findings, summary, stderr) = doctor(&args).await;
    assert_eq!(code, Some(18), "{findings:#?}");
    assert_eq!(summary["failed"], 1);
    let turn_check = of(&findings, "turn");
    assert_eq!(turn_check[0]["status"], "failed");
    assert!(
        turn_check[0]["detail"].as_str().is_some_and(|d| d.contains("refused the credentials")),
        "{turn_check:?}"
    );
    assert!(turn_check[0]["fix"].as_str().is_some_and(|f| f.contains("--ice-credential")));
    assert!(stderr.contains("turn turn:127.0.0.1:"), "stderr names what failed: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_fails_on_an_unreachable_relay_in_words_too() {
    let nowhere = format!("ws://127.0.0.1:{}", free_udp_port());
    let (code, findings, _, _) = doctor(&["--signal", &nowhere]).await;
    assert_eq!(code, Some(18));
    let relay = of(&findings, "relay");
    assert_eq!(relay[0]["status"], "failed");
    assert!(relay[0]["detail"].as_str().is_some_and(|d| d.contains("could not be reached")), "{relay:?}");

    let (code, text) = Client::spawn(&["doctor", "--signal", &nowhere], Stdio::null()).finish_text().await;
    assert_eq!(code, Some(18));
    let line = text.lines().find(|l| l.starts_with("failed")).expect("a failed line");
    assert!(line.contains("relay") && line.contains(&nowhere), "{text}");
    assert!(text.contains("check the URL"), "the line after says what to do: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_an_untrusted_relay_certificate_and_trusts_it_with_ca_file() {
    let dir = temp_dir("doctor-tls");
    let (ca, cert, key) = make_pki(&dir);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key]).await;

    let (code, findings, _, _) = doctor(&["--signal", &relay.url]).await;
    assert_eq!(code, Some(18), "{findings:#?}");
    let check = of(&findings, "relay");
    assert!(
        check[0]["detail"].as_str().is_some_and(|d| d.contains("not signed by a CA this machine trusts")),
        "the CA problem is named: {check:?}"
    );
    assert!(check[0]["fix"].as_str().is_some_and(|f| f.contains("--ca-file")), "{check:?}");

    let ca = ca.display().to_string();
    let (code, findings, _, _) = doctor(&["--signal", &relay.url, "--ca-file", &ca]).await;
    assert_eq!(code, Some(0), "{findings:#?}");
    assert_eq!(of(&findings, "relay")[0]["status"], "ok");
    let _ = std::fs::remove_dir_all(dir);
}
