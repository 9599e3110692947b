//! The terminal interface, driven for real: two clients in tmux on a real relay, typed
//! into with send-keys and read back with capture-pane.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Relay, WAIT};

/// A tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Self {
        let check = Command::new("tmux").arg("-V").output();
        assert!(
            check.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test; scripts/test installs it (apt-get install tmux)"
        );
        Self { socket: format!("peertalk-{name}-{}", std::process::id()) }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `command` in a new 80x20 window named `name`; the shell reports its exit code.
    fn start(&self, name: &str, command: &str) {
        let script = format!("{command}; echo EXITED $?; sleep 60");
        self.tmux(&["new-session", "-d", "-s", name, "-x", "80", "-y", "20", &script]);
    }

    fn type_line(&self, name: &str, text: &str) {
        self.tmux(&["send-keys", "-t", name, "-l", text]);
        self.tmux(&["send-keys", "-t", name, "Enter"]);
    }

    fn screen(&self, name: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-t", name])
    }

    /// Waits until the window shows `text`.
    fn wait_for(&self, name: &str, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen(name);
            if screen.contains(text) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{name}'s screen never showed {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The shell command that runs the interface as `name` in `room` on `relay`, with `extra`
/// flags, logging to a file of its own.
fn interface(relay: &Relay, room: &str, name: &str, extra: &str) -> String {
    let log = std::env::temp_dir().join(format!("peertalk-{room}-{name}-{}.log", std::process::id()));
    format!(
        "{} --room {room} --name {name} --signal {} --log-file {} {extra}",
        env!("CARGO_BIN_EXE_peertalk"),
        relay.url,
        log.display()
    )
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_chat_in_tmux_and_quit_restores_the_terminal() {
    let relay = Relay::start().await;
    let tmux = Tmux::new("chat");
    let client = |name: &str| interface(&relay, "tui", name, "");
    tmux.start("alice", &client("alice"));
    tmux.wait_for("alice", "nobody else is here yet");
    tmux.start("bob", &client("bob"));
    tmux.wait_for("alice", "connected to bob");
    tmux.wait_for("bob", "connected to alice");

    tmux.type_line("alice", "hello from tmux 한글 🎉");
    tmux.wait_for("bob", "alice: hello from tmux 한글 🎉");
    let alice = tmux.wait_for("alice", "hello from tmux 한글 🎉 ✓");
    assert!(alice.contains("#tui │ alice │ relay: ok │ bob (host)"), "status bar:\n{alice}");

    tmux.type_line("bob", "/quit");
    let bob = tmux.wait_for("bob", "EXITED 0");
    assert!(!bob.contains("#tui │"), "the interface is gone after /quit:\n{bob}");
    tmux.wait_for("alice", "bob left");

    tmux.tmux(&["send-keys", "-t", "alice", "C-c"]);
    let alice = tmux.wait_for("alice", "EXITED 0");
    assert!(!alice.contains("#tui │"), "the interface is gone after Ctrl-C:\n{alice}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_whose_name_is_taken_joins_as_name_2_and_is_told() {
    let relay = Relay::start().await;
    let mut bob = common::Client::start(Some(&relay.url), "tui-names", "bob", &[]);
    bob.expect_type("joined").await;
    let tmux = Tmux::new("names");
    tmux.start("second", &interface(&relay, "tui-names", "Bob", ""));
    let screen = tmux.wait_for("second", "so you are Bob-2 here");
    assert!(screen.contains("│ Bob-2 │"), "the status bar has the new name:\n{screen}");
    assert_eq!(bob.connected().await["name"], "Bob-2", "the others see it too");
    tmux.type_line("second", "/nick bob");
    tmux.wait_for("second", "bob is already in this room");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_sent_with_tab_completion_is_accepted_with_alt_y_and_checked() {
    let relay = Relay::start().await;
    let tmux = Tmux::new("files");
    let (outbox, inbox) = (common::files::TempDir::new("tui-out"), common::files::TempDir::new("tui-in"));
    let file = common::files::random_file(outbox.path(), "quarterly-report.pdf", 300_000, 31);
    let client = |name: &str, extra: &str| {
        format!("cd {} && {}", outbox.arg(), interface(&relay, "tui-files", name, extra))
    };
    tmux.start("alice", &client("alice", ""));
    tmux.wait_for("alice", "nobody else is here yet");
    tmux.start("bob", &client("bob", &format!("--receive-dir {}", inbox.arg())));
    tmux.wait_for("alice", "connected to bob");

    // Tab completes the path in the folder alice runs in.
    tmux.tmux(&["send-keys", "-t", "alice", "-l", "/send quar"]);
    tmux.tmux(&["send-keys", "-t", "alice", "Tab"]);
    tmux.wait_for("alice", "/send quarterly-report.pdf");
    tmux.tmux(&["send-keys", "-t", "alice", "Enter"]);
    tmux.wait_for("alice", "offering quarterly-report.pdf (293.0 KiB) to bob");
    let bob = tmux.wait_for("bob", "alice offers quarterly-report.pdf (293.0 KiB): /accept 1 or /decline 1");
    assert!(bob.contains("waits: /accept 1"), "the transfer line asks too:\n{bob}");

    tmux.tmux(&["send-keys", "-t", "bob", "M-y"]);
    tmux.wait_for("bob", "received quarterly-report.pdf from alice (293.0 KiB, SHA-256 checked)");
    tmux.wait_for("alice", "bob has quarterly-report.pdf (293.0 KiB, SHA-256 checked)");
    assert_eq!(
        common::files::sha256(&inbox.path().join("quarterly-report.pdf")),
        common::files::sha256(&file)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mention_rings_the_bell_unread_messages_title_the_window_and_search_finds_them() {
    let relay = Relay::start().await;
    let tmux = Tmux::new("attention");
    let client = |name: &str, extra: &str| interface(&relay, "tui-attention", name, extra);
    tmux.start("alice", &client("alice", ""));
    tmux.wait_for("alice", "nobody else is here yet");
    tmux.start("bob", &client("bob", "--no-mouse"));
    tmux.wait_for("alice", "connected to bob");
    tmux.wait_for("bob", "connected to alice");
    let shown = |name: &str, format: &str| {
        tmux.tmux(&["display-message", "-p", "-t", name, format]).trim().to_owned()
    };
    let window = |format: &str| shown("alice", format);
    assert_eq!(window("#{pane_title}"), "peertalk #tui-attention");
    let mouse = (shown("alice", "#{mouse_any_flag}"), shown("bob", "#{mouse_any_flag}"));
    assert_eq!(mouse, ("1".to_owned(), "0".to_owned()), "--no-mouse leaves the mouse to tmux");

    tmux.type_line("bob", "the deploy starts at three");
    tmux.wait_for("alice", "bob: the deploy starts at three");
    assert_eq!(window("#{window_bell_flag}"), "0", "a message that does not name alice stays quiet");
    tmux.type_line("bob", "@alice can you watch it?");
    tmux.wait_for("alice", "bob: @alice can you watch it?");
    let deadline = Instant::now() + WAIT;
    while window("#{window_bell_flag}") != "1" {
        assert!(Instant::now() < deadline, "a mention rings the bell");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The terminal's focus reports (CSI O, CSI I), as tmux passes them on.
    tmux.tmux(&["send-keys", "-t", "alice", "-H", "1b", "5b", "4f"]);
    // Keys reach alice in order: once a draft typed after the report shows, she has read
    // the report too, and bob's message cannot overtake it.
    tmux.tmux(&["send-keys", "-t", "alice", "-l", "draft"]);
    tmux.wait_for("alice", "> draft");
    tmux.tmux(&["send-keys", "-t", "alice", "C-u"]);
    tmux.type_line("bob", "deploy done");
    tmux.wait_for("alice", "bob: deploy done");
    let deadline = Instant::now() + WAIT;
    while window("#{pane_title}") != "(1) peertalk #tui-attention" {
        assert!(Instant::now() < deadline, "the title counts the unread: {:?}", window("#{pane_title}"));
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.tmux(&["send-keys", "-t", "alice", "-H", "1b", "5b", "49"]);
    let alice = tmux.wait_for("alice", "new since you looked away");
    let marker = alice.lines().position(|l| l.contains("new since you looked away")).expect("marker");
    assert!(alice.lines().nth(marker + 1).is_some_and(|l| l.contains("bob: deploy done")), "{alice}");
    let deadline = Instant::now() + WAIT;
    while window("#{pane_title}") != "peertalk #tui-attention" {
        assert!(Instant::now() < deadline, "focus back clears the count");
        std::thread::sleep(Duration::from_millis(100));
    }

    tmux.type_line("alice", "/search DEPLOY");
    tmux.wait_for("alice", "search \"DEPLOY\": 2 of 2");
    tmux.tmux(&["send-keys", "-t", "alice", "C-r"]);
    tmux.wait_for("alice", "search \"DEPLOY\": 1 of 2");
    tmux.tmux(&["send-keys", "-t", "alice", "Escape"]);
    let deadline = Instant::now() + WAIT;
    while tmux.screen("alice").contains("search \"DEPLOY\"") {
        assert!(Instant::now() < deadline, "Esc ends the search");
        std::thread::sleep(Duration::from_millis(100));
    }
}
