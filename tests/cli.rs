//! The command line as scripts use it: exit codes with a sentence for each failure, and
//! the embedded relay that makes two bare commands find each other.

mod common;

use std::process::Stdio;

use common::{Client, Relay};

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_relay_exits_3_and_names_the_address() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
        probe.local_addr().expect("probe address").port()
    };
    let url = format!("ws://127.0.0.1:{port}");
    let done = Client::start(Some(&url), "r", "a", &["--send", "x"]).finish().await;
    assert_eq!(done.code, Some(3));
    assert!(done.stderr.contains(&format!("could not reach the relay at {url}")), "{}", done.stderr);
    let exit = done.lines.last().expect("an exit line");
    assert_eq!((exit["type"].as_str(), exit["code"].as_u64()), (Some("exit"), Some(3)));
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_joining_before_the_timeout_exits_5() {
    let relay = Relay::start().await;
    let done =
        Client::start(Some(&relay.url), "empty", "a", &["--send", "hello?", "--timeout", "1"]).finish().await;
    assert_eq!(done.code, Some(5), "{}", done.stderr);
    assert!(done.stderr.contains("nobody else joined room \"empty\""), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn expecting_more_than_arrives_times_out_with_8() {
    let relay = Relay::start().await;
    let mut waiting = Client::start(Some(&relay.url), "short", "rx", &["--expect", "2", "--timeout", "3"]);
    waiting.close_input();
    waiting.expect_type("joined").await;
    let sender = Client::start(Some(&relay.url), "short", "tx", &["--send", "only one"]).finish().await;
    assert_eq!(sender.code, Some(0), "{}", sender.stderr);
    let done = waiting.finish().await;
    assert_eq!(done.code, Some(8), "{}", done.stderr);
    assert!(done.stderr.contains("1 of 2 expected"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_too_long_for_a_datachannel_is_refused_with_9() {
    let relay = Relay::start().await;
    let long = "가".repeat(30_000); // 90,000 bytes of UTF-8
    let done = Client::start(Some(&relay.url), "long", "a", &["--send", &long]).finish().await;
    assert_eq!(done.code, Some(9), "{}", done.stderr);
    assert!(done.lines.iter().any(|l| l["type"] == "input-rejected"), "{:?}", done.lines);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_exit_2_with_the_fix() {
    let run = Client::spawn(
        &["--room", "r", "--name", "a", "--headless", "--ice-server", "turn:127.0.0.1:3478"],
        Stdio::null(),
    );
    let done = run.finish().await;
    assert_eq!(done.code, Some(2));
    assert!(done.stderr.contains("--ice-username"), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn help_documents_the_exit_codes() {
    let (code, help) = Client::spawn(&["--help"], Stdio::null()).finish_text().await;
    assert_eq!(code, Some(0));
    for needle in ["Exit codes:", "3  relay unreachable", "7  a member left", "In a room of several"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// Completion scripts and manual pages are made from the flags, for both binaries.
#[tokio::test(flavor = "multi_thread")]
async fn completions_and_manual_pages_are_printed_for_both_binaries() {
    for (shell, opening) in
        [("bash", "_peertalk()"), ("zsh", "#compdef peertalk"), ("fish", "complete -c peertalk")]
    {
        let (code, script) = Client::spawn(&["completions", shell], Stdio::null()).finish_text().await;
        assert_eq!(code, Some(0), "{shell}");
        assert!(script.contains(opening) && script.contains("relay-only"), "{shell}:\n{script}");
    }
    let (code, page) = Client::spawn(&["man"], Stdio::null()).finish_text().await;
    assert_eq!(code, Some(0));
    assert!(page.contains(".TH peertalk 1") && page.contains("relay\\-only"), "{page}");

    let relay = |args: &[&str]| {
        std::process::Command::new(common::relay_bin()).args(args).output().expect("run peertalk-signal")
    };
    let script = relay(&["completions", "fish"]);
    assert!(script.status.success());
    assert!(String::from_utf8_lossy(&script.stdout).contains("complete -c peertalk-signal"));
    let page = relay(&["man"]);
    assert!(page.status.success());
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains(".TH peertalk-signal 1") && page.contains("max\\-frame\\-bytes"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_shell_exits_2_naming_the_ones_there_are() {
    let (code, _) = Client::spawn(&["completions", "tcsh"], Stdio::null()).finish_text().await;
    assert_eq!(code, Some(2));
    let relay = std::process::Command::new(common::relay_bin())
        .args(["completions", "tcsh"])
        .output()
        .expect("run peertalk-signal");
    assert_eq!(relay.status.code(), Some(2));
    let why = String::from_utf8_lossy(&relay.stderr);
    assert!(why.contains("invalid value 'tcsh'") && why.contains("bash, elvish, fish"), "{why}");
}

/// Uses the fixed default address 127.0.0.1:8787; no other test does.
#[tokio::test(flavor = "multi_thread")]
async fn two_clients_without_a_relay_address_find_each_other() {
    let mut first = Client::start(None, "default-relay", "alice", &["--expect", "1"]);
    let hosting = first.expect_type("hosting-relay").await;
    assert_eq!(hosting["url"], "ws://127.0.0.1:8787");
    first.expect_type("joined").await;
    first.close_input();
    let second = Client::start(None, "default-relay", "bob", &["--send", "found you"]).finish().await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(!second.lines.iter().any(|l| l["type"] == "hosting-relay"), "the second uses the first's relay");
    let first = first.finish().await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.texts(), ["found you"]);
}

/// Runs the client with `XDG_CONFIG_HOME` at `config_home` and these extra variables, none
/// of the developer's own.
fn peertalk_with(config_home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_peertalk"));
    for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("PEERTALK_")) {
        command.env_remove(var);
    }
    command.env("XDG_CONFIG_HOME", config_home).env("PEERTALK_IDENTITY", common::test_identity());
    command.args(args).envs(env.iter().copied()).output().expect("run peertalk")
}

/// A folder standing for `$XDG_CONFIG_HOME`, holding `peertalk/config.toml` with `text`.
fn config_home(name: &str, text: &str) -> std::path::PathBuf {
    let home = common::pki::temp_dir(name);
    std::fs::create_dir_all(home.join("peertalk")).expect("config folder");
    std::fs::write(home.join("peertalk/config.toml"), text).expect("write config");
    home
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_gives_settings_that_the_environment_and_flags_override() {
    let relay = Relay::start().await;
    let home = config_home(
        "config-precedence",
        &format!(
            "room = \"team\"\nname = \"carol\"\nsignal = [\"{}\"]\nice-server = [\"turn:127.0.0.1:3478\"]\n\
             ice-username = \"carol\"\nice-credential = \"hunter2\"\ntheme = \"light\"\n",
            relay.url
        ),
    );
    let shown = |out: std::process::Output| {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let line = |text: &str, key: &str| {
        text.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or_default().to_owned()
    };
    let from_file = shown(peertalk_with(&home, &["config"], &[]));
    assert!(from_file.contains(&format!("# config file: {}", home.join("peertalk/config.toml").display())));
    assert!(
        line(&from_file, "name").starts_with("name = \"carol\"")
            && line(&from_file, "name").ends_with("# config file")
    );
    assert!(line(&from_file, "theme").contains("\"light\""), "{from_file}");
    assert!(line(&from_file, "ice-credential").contains("********"), "{from_file}");
    assert!(!from_file.contains("hunter2"), "secrets are masked:\n{from_file}");

    let from_env = shown(peertalk_with(&home, &["config"], &[("PEERTALK_NAME", "dave")]));
    assert!(
        line(&from_env, "name").starts_with("name = \"dave\"")
            && line(&from_env, "name").ends_with("# PEERTALK_NAME")
    );
    let from_flag = shown(peertalk_with(&home, &["--name", "erin", "config"], &[("PEERTALK_NAME", "dave")]));
    assert!(
        line(&from_flag, "name").starts_with("name = \"erin\"")
            && line(&from_flag, "name").ends_with("# --name")
    );

    // The file's room and relay are the ones a chat uses.
    let chat =
        peertalk_with(&home, &["--ice-server", "stun:127.0.0.1:3478", "--send", "hi", "--timeout", "1"], &[]);
    assert_eq!(chat.status.code(), Some(5), "{}", String::from_utf8_lossy(&chat.stderr));
    assert!(String::from_utf8_lossy(&chat.stderr).contains("nobody else joined room \"team\""));

    // --config (or PEERTALK_CONFIG) names another file instead.
    let other = home.join("other.toml");
    std::fs::write(&other, "name = \"frank\"\n").expect("write");
    let named =
        shown(peertalk_with(&home, &["config"], &[("PEERTALK_CONFIG", &other.display().to_string())]));
    assert!(line(&named, "name").starts_with("name = \"frank\""), "{named}");
    assert!(named.contains("# room is not set"), "the default file is not read as well:\n{named}");
    let _ = std::fs::remove_dir_all(home);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_config_key_exits_2_naming_the_key_and_the_file() {
    let home = config_home("config-unknown", "name = \"carol\"\ncolour = \"blue\"\n");
    let out = peertalk_with(&home, &["--room", "r", "--send", "x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let why = String::from_utf8_lossy(&out.stderr);
    let file = home.join("peertalk/config.toml").display().to_string();
    assert!(why.contains("\"colour\"") && why.contains(&file) && why.contains("not a setting"), "{why}");
    let out = peertalk_with(&home, &["--config", "/nonexistent/peertalk.toml", "config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("could not read the config file /nonexistent/peertalk.toml")
    );
    let _ = std::fs::remove_dir_all(home);
}
