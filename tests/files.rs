//! Files between terminals: offered on a channel of their own, checked against their
//! SHA-256, kept under a safe and free name, and every way a transfer can go wrong told to
//! both sides with its exit code.

mod common;

use std::time::{Duration, Instant};

use common::files::{SmallDisk, TempDir, random_file, sha256};
use common::path::{Path, PathSpec};
use common::{Client, Finished, Relay};
use serde_json::Value;

const MIB: usize = 1024 * 1024;

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

/// A receiver that takes files into `dir` and exits once `files` offers have ended.
fn receiver(relay: &Relay, room: &str, name: &str, dir: &TempDir, files: usize, extra: &[&str]) -> Client {
    let dir = dir.arg();
    let files = files.to_string();
    let mut args = vec!["--accept-files", "--receive-dir", &dir, "--expect-files", &files, "--timeout", "60"];
    args.extend_from_slice(extra);
    Client::start(Some(&relay.url), room, name, &args)
}

fn assert_exit(client: &Finished, code: i32, who: &str) {
    assert_eq!(
        client.code,
        Some(code),
        "{who} exit code; stderr: {}\nlines: {:#?}",
        client.stderr,
        client.lines
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_50_mib_random_file_arrives_with_the_same_sha256_and_nothing_else_is_left() {
    let relay = Relay::start().await;
    let (outbox, inbox) = (TempDir::new("out"), TempDir::new("in"));
    let file = random_file(outbox.path(), "big.bin", 50 * MIB, 1);
    let mut bob = receiver(&relay, "f50", "bob", &inbox, 1, &[]);
    bob.expect_type("joined").await;
    let started = Instant::now();
    let alice =
        Client::start(Some(&relay.url), "f50", "alice", &["--send-file", &file.display().to_string()]);
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    let elapsed = started.elapsed();
    assert_exit(&alice, 0, "alice");
    assert_exit(&bob, 0, "bob");

    let done = of_type(&bob.lines, "file-done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["sha256"], sha256(&file));
    assert_eq!(done[0]["size"], 50 * MIB);
    assert_eq!(inbox.names(), ["big.bin"], "the file, and no partial file beside it");
    assert_eq!(sha256(&inbox.path().join("big.bin")), sha256(&file));
    let sent = of_type(&alice.lines, "file-done");
    assert_eq!(sent.len(), 1, "the sender hears that the hash was checked");
    assert_eq!(sent[0]["to"], "bob");
    assert_eq!(sent[0]["sent"], 50 * MIB, "sent once, nothing again");
    // Progress at most ten times a second, on each side.
    let allowed = (elapsed.as_secs_f64() * 10.0).ceil() as usize + 2;
    for (who, lines) in [("alice", &alice.lines), ("bob", &bob.lines)] {
        let progress = of_type(lines, "file-progress");
        assert!(progress.len() <= allowed, "{who}: {} progress lines in {elapsed:?}", progress.len());
        let bytes: Vec<u64> = progress.iter().map(|p| p["bytes"].as_u64().expect("bytes")).collect();
        assert!(bytes.windows(2).all(|w| w[0] <= w[1]), "{who}: progress only grows: {bytes:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_files_at_once_arrive_while_chat_messages_cross() {
    let relay = Relay::start().await;
    let (outbox, inbox) = (TempDir::new("out"), TempDir::new("in"));
    let one = random_file(outbox.path(), "one.bin", 20 * MIB, 2);
    let two = random_file(outbox.path(), "two.bin", 20 * MIB, 3);
    let mut bob = receiver(&relay, "f2", "bob", &inbox, 2, &["--expect", "3"]);
    bob.expect_type("joined").await;
    let (one_arg, two_arg) = (one.display().to_string(), two.display().to_string());
    let mut alice = Client::start(
        Some(&relay.url),
        "f2",
        "alice",
        &[
            "--send-file",
            &one_arg,
            "--send-file",
            &two_arg,
            "--send",
            "a1",
            "--send",
            "a2",
            "--send",
            "a3",
            "--expect",
            "3",
        ],
    );
    alice.expect_type("file-offer").await;
    for text in ["b1", "b2", "b3"] {
        bob.say(text).await;
    }
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_exit(&alice, 0, "alice");
    assert_exit(&bob, 0, "bob");
    assert_eq!(bob.texts(), ["a1", "a2", "a3"]);
    assert_eq!(alice.texts(), ["b1", "b2", "b3"]);
    assert_eq!(inbox.names(), ["one.bin", "two.bin"]);
    assert_eq!(sha256(&inbox.path().join("one.bin")), sha256(&one));
    assert_eq!(sha256(&inbox.path().join("two.bin")), sha256(&two));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_to_a_room_of_three_reaches_all_three_and_one_for_a_member_reaches_only_them() {
    let relay = Relay::start().await;
    let outbox = TempDir::new("out");
    let inboxes = [TempDir::new("ann"), TempDir::new("bob"), TempDir::new("cid")];
    let all = random_file(outbox.path(), "all.bin", 3 * MIB, 4);
    let mine = random_file(outbox.path(), "bob-only.txt", 1000, 5);
    let mut members = Vec::new();
    for ((name, dir), files) in ["ann", "bob", "cid"].iter().zip(&inboxes).zip([1, 2, 1]) {
        let mut member = receiver(&relay, "f3", name, dir, files, &[]);
        member.expect_type("joined").await;
        members.push(member);
    }
    let all_arg = all.display().to_string();
    let to_all = Client::start(Some(&relay.url), "f3", "dan", &["--send-file", &all_arg]);
    let to_all = to_all.finish().await;
    assert_exit(&to_all, 0, "dan");
    let mut confirmed: Vec<&str> =
        of_type(&to_all.lines, "file-done").iter().map(|l| l["to"].as_str().expect("to")).collect();
    confirmed.sort_unstable();
    assert_eq!(confirmed, ["ann", "bob", "cid"], "each member checked the hash");

    let mine_arg = mine.display().to_string();
    let to_bob = Client::start(Some(&relay.url), "f3", "eve", &["--send-file", &mine_arg, "--to", "bob"]);
    assert_exit(&to_bob.finish().await, 0, "eve");
    for member in members {
        assert_exit(&member.finish().await, 0, "member");
    }
    for dir in &inboxes {
        assert_eq!(sha256(&dir.path().join("all.bin")), sha256(&all));
    }
    assert_eq!(inboxes[0].names(), ["all.bin"]);
    assert_eq!(inboxes[1].names(), ["all.bin", "bob-only.txt"]);
    assert_eq!(inboxes[2].names(), ["all.bin"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_received_file_never_replaces_one_that_exists() {
    let relay = Relay::start().await;
    let (outbox, inbox) = (TempDir::new("out"), TempDir::new("in"));
    let file = random_file(outbox.path(), "notes.txt", 5000, 6);
    std::fs::write(inbox.path().join("notes.txt"), "mine").expect("write");
    std::fs::write(inbox.path().join("notes-2.txt"), "mine too").expect("write");
    let mut bob = receiver(&relay, "fx", "bob", &inbox, 1, &[]);
    bob.expect_type("joined").await;
    let arg = file.display().to_string();
    let alice = Client::start(Some(&relay.url), "fx", "alice", &["--send-file", &arg]);
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_exit(&alice, 0, "alice");
    assert_exit(&bob, 0, "bob");
    assert_eq!(std::fs::read_to_string(inbox.path().join("notes.txt")).expect("read"), "mine");
    assert_eq!(std::fs::read_to_string(inbox.path().join("notes-2.txt")).expect("read"), "mine too");
    assert_eq!(sha256(&inbox.path().join("notes-3.txt")), sha256(&file));
    let done = of_type(&bob.lines, "file-done");
    assert!(done[0]["path"].as_str().expect("path").ends_with("notes-3.txt"), "{:?}", done[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_that_does_not_take_files_declines_and_the_sender_exits_12_saying_why() {
    let relay = Relay::start().await;
    let outbox = TempDir::new("out");
    let file = random_file(outbox.path(), "report.pdf", 1000, 7);
    let mut bob = Client::start(Some(&relay.url), "fd", "bob", &["--expect", "1"]);
    bob.expect_type("joined").await;
    let arg = file.display().to_string();
    let alice =
        Client::start(Some(&relay.url), "fd", "alice", &["--send-file", &arg, "--send", "see the report"]);
    let alice = alice.finish().await;
    assert_exit(&alice, 12, "alice");
    let failed = of_type(&alice.lines, "file-failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["kind"], "declined");
    assert!(failed[0]["reason"].as_str().expect("reason").contains("--accept-files"), "{:?}", failed[0]);
    assert!(alice.stderr.contains("report.pdf to bob declined"), "{}", alice.stderr);
    let bob = bob.finish().await;
    assert_exit(&bob, 0, "bob: declining is what it was set to do");
    assert_eq!(bob.texts(), ["see the report"], "the chat went on");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_over_the_receivers_limit_is_declined_naming_the_limit() {
    let relay = Relay::start().await;
    let (outbox, inbox) = (TempDir::new("out"), TempDir::new("in"));
    let file = random_file(outbox.path(), "big.bin", 2 * MIB, 8);
    let mut bob = receiver(&relay, "fl", "bob", &inbox, 1, &["--max-file-size", "1M"]);
    bob.expect_type("joined").await;
    let arg = file.display().to_string();
    let alice = Client::start(Some(&relay.url), "fl", "alice", &["--send-file", &arg]);
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_exit(&alice, 12, "alice");
    assert_exit(&bob, 12, "bob, which expected a file");
    let reason = of_type(&alice.lines, "file-failed")[0]["reason"].as_str().expect("reason").to_owned();
    assert!(
        reason.contains("2.0 MiB") && reason.contains("1.0 MiB") && reason.contains("--max-file-size"),
        "{reason}"
    );
    assert!(inbox.names().is_empty(), "nothing written: {:?}", inbox.names());
}

/// A receiver that answers offers itself (`--commands` without `--accept-files`), taking
/// files into `dir`.
fn asking_receiver(relay: &Relay, room: &str, dir: &TempDir) -> Client {
    let dir = dir.arg();
    Client::start(
        Some(&relay.url),
        room,
        "bob",
        &["--commands", "--receive-dir", &dir, "--expect-files", "1"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_cancelled_by_the_receiver_ends_both_sides_with_13_and_leaves_nothing() {
    let relay = Relay::start().await;
    let (outbox, inbox) = (TempDir::new("out"), TempDir::new("in"));
    let file = random_file(outbox.path(), "big.bin", 200 * MIB, 9);
    let mut bob = asking_receiver(&relay, "fc", &inbox);
    bob.expect_type("joined").await;
    let arg = file.display().to_string();
    let alice = Client::start(Some(&relay.url), "fc", "alice", &["--send-file", &arg]);
    bob.expect_type("file-offer").await;
    // Taken, then stopped at once: far sooner than 200 MiB can go through.
    bob.feed(b"/accept\n/cancel\n").await;
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_exit(&alice, 13, "alice");
    assert_exit(&bob, 13, "bob");
    let failed = of_type(&alice.lines, "file-failed");
    assert_eq!(failed[0]["kind"], "cancelled");
    assert_eq!(failed[0]["reason"], "bob cancelled it");
    assert!(alice.stderr.contains("big.bin to bob cancelled: bob cancelled it"), "{}", alice.stderr);
    assert!(inbox.names().is_empty(), "the partial file is gone: {:?}", inbox.names());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_cancelled_by_the_sender_is_told_to_the_receiver() {
    let relay = Relay::start().await;
    let (outbox, inbox) = (TempDir::new("out"), TempDir::new("in"));
    let file = random_file(outbox.path(), "big.bin", 200 * MIB, 10);
    let mut bob = asking_receiver(&relay, "fs", &inbox);
    bob.expect_type("joined").await;
    let mut alice = Client::start(Some(&relay.url), "fs", "alice", &["--commands"]);
    alice.connected().await;
    alice.say(&format!("/send {}", file.display())).await;
    bob.expect_type("file-offer").await;
    tokio::join!(bob.say("/accept"), alice.say("/cancel 1"));
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_exit(&alice, 13, "alice");
    assert_exit(&bob, 13, "bob");
    let failed = of_type(&bob.lines, "file-failed");
    assert_eq!(failed[0]["kind"], "cancelled");
    assert_eq!(failed[0]["reason"], "alice cancelled it");
    assert!(inbox.names().is_empty(), "the partial file is gone: {:?}", inbox.names());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disk_that_fills_up_fails_both_sides_and_leaves_no_partial_file() {
    let disk = match SmallDisk::mount("2m") {
        Ok(disk) => disk,
        Err(why) => {
            common::note(&format!("SKIPPED disk full: cannot mount a tmpfs here ({why})"));
            return;
        }
    };
    let relay = Relay::start().await;
    let outbox = TempDir::new("out");
    let file = random_file(outbox.path(), "big.bin", 8 * MIB, 11);
    let mut bob = receiver(&relay, "ff", "bob", &disk.0, 1, &[]);
    bob.expect_type("joined").await;
    let arg = file.display().to_string();
    let alice = Client::start(Some(&relay.url), "ff", "alice", &["--send-file", &arg]);
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_exit(&alice, 14, "alice");
    assert_exit(&bob, 14, "bob");
    for (who, client) in [("alice", &alice), ("bob", &bob)] {
        let failed = of_type(&client.lines, "file-failed");
        assert_eq!(failed.len(), 1, "{who}");
        let reason = failed[0]["reason"].as_str().expect("reason");
        assert!(
            reason.contains("disk is full") && reason.contains("partial file was removed"),
            "{who}: {reason}"
        );
    }
    assert!(disk.0.names().is_empty(), "nothing left on the full disk: {:?}", disk.0.names());
}

#[test]
fn a_folder_or_a_missing_file_is_refused_before_anything_is_sent() {
    let dir = TempDir::new("refuse");
    let folder = dir.arg();
    let missing = dir.path().join("missing.txt").display().to_string();
    for (path, says) in [(folder.as_str(), "is a folder"), (missing.as_str(), "does not exist")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_peertalk"))
            .args(["--room", "r", "--signal", "ws://127.0.0.1:9", "--send-file", path])
            .output()
            .expect("run peertalk");
        assert_eq!(out.status.code(), Some(2), "{path}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
        if says == "is a folder" {
            assert!(stderr.contains("tar czf"), "says what to do instead: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_whose_path_is_cut_resumes_from_the_receivers_offset() {
    // A path paced to 200 Mbit/s, so that the transfer is still under way when the
    // receiver has said a tenth is through: on an unpaced link a loaded machine printed
    // that only once the whole file had arrived, and there was nothing left to resume.
    let spec = PathSpec { one_way: Duration::from_millis(1), rate_bps: 200_000_000, ..PathSpec::home(0.0) };
    let link = match Path::create(spec) {
        Ok(link) => link,
        Err(e) => {
            common::note(&format!("SKIPPED file resume: no emulated path here ({e})"));
            return;
        }
    };
    let (outbox, inbox) = (TempDir::new("out"), TempDir::new("in"));
    let size = 60 * MIB;
    let file = random_file(outbox.path(), "big.bin", size, 12);
    let relay = Relay::start_in(&link.a, &["--listen", &format!("{}:0", link.a_ip)]).await;
    let (dir, file_arg) = (inbox.arg(), file.display().to_string());
    let mut bob = Client::start_in(
        &link.b,
        &relay.url,
        "fr",
        "bob",
        &["--accept-files", "--receive-dir", &dir, "--expect-files", "1", "--bind", &link.b_ip],
    );
    bob.expect_type("joined").await;
    let alice = Client::start_in(
        &link.a,
        &relay.url,
        "fr",
        "alice",
        &["--send-file", &file_arg, "--bind", &link.a_ip],
    );
    // Cut the path once a tenth of the file is through, for longer than the ICE restarts
    // can bridge, so that the connection is replaced.
    bob.expect(
        |l| l["type"] == "file-progress" && l["bytes"].as_u64() > Some((size / 10) as u64),
        "progress",
    )
    .await;
    link.cut_udp(true);
    tokio::time::sleep(Duration::from_secs(15)).await;
    link.cut_udp(false);
    let limit = Duration::from_secs(90);
    let (alice, bob) = tokio::join!(alice.finish_within(limit), bob.finish_within(limit));
    assert_exit(&alice, 0, "alice");
    assert_exit(&bob, 0, "bob");
    assert_eq!(sha256(&inbox.path().join("big.bin")), sha256(&file));
    let resumed = of_type(&bob.lines, "file-resumed");
    assert_eq!(resumed.len(), 1, "{:#?}", bob.lines);
    let offset = resumed[0]["offset"].as_u64().expect("offset");
    assert!(offset >= (size / 10) as u64, "resumed from {offset}, not from the start");
    let sent = of_type(&alice.lines, "file-done")[0]["sent"].as_u64().expect("sent");
    assert!(sent < size as u64 + 8 * MIB as u64, "re-sent {} bytes", sent - size as u64);
}
