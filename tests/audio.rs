//! Calls: an Opus audio track beside the chat, sent from a file and recorded to one,
//! added and removed by renegotiation while messages keep flowing.

mod common;

use std::time::Duration;

use common::audio::{call_state, decode, peer_audio, power_at, scratch, share_at, tone};
use common::netns::Link;
use common::{Client, Relay, connected_pair, messages};

/// The strongest frequency between 50 Hz and 4 kHz, by a DFT scan of one second from
/// the middle: 5 Hz steps, then 0.25 Hz steps around the best.
fn dominant_hz(samples: &[f32], rate: u32) -> f64 {
    let window = (rate as usize).min(samples.len());
    let start = (samples.len() - window) / 2;
    let part = &samples[start..start + window];
    let power = |hz: f64| power_at(part, rate, hz);
    let best = |from: f64, to: f64, step: f64| {
        let steps = ((to - from) / step) as usize;
        (0..=steps)
            .map(|k| from + step * k as f64)
            .max_by(|a, b| power(*a).total_cmp(&power(*b)))
            .expect("at least one step")
    };
    let coarse = best(50.0, 4000.0, 5.0);
    best(coarse - 5.0, coarse + 5.0, 0.25)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tone_sent_with_audio_in_is_recorded_with_audio_out_at_its_length_and_pitch() {
    let dir = scratch("tone");
    let tone = tone(&dir, 3.0, 440.0).expect("a tone");
    let recording = dir.join("recording.opus");
    let relay = Relay::start().await;
    let (mut listener, mut speaker) = connected_pair(
        &relay.url,
        "concert",
        ("listener", &["--audio-out", recording.to_str().expect("utf-8 path")]),
        ("speaker", &["--audio-in", tone.to_str().expect("utf-8 path")]),
    )
    .await;

    let live = speaker.expect(|l| call_state(l, "live"), "the call going live").await;
    assert!(live["source"].as_str().is_some_and(|s| s.contains("tone")), "{live}");
    listener.expect(|l| peer_audio(l, true), "audio arriving").await;
    let ended = speaker.expect(|l| call_state(l, "ended"), "the end of the file").await;
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("--audio-in")), "{ended}");
    listener.expect(|l| peer_audio(l, false), "audio stopping").await;
    listener.close_input();
    speaker.close_input();
    let (listener, speaker) = tokio::join!(listener.finish(), speaker.finish());
    assert_eq!(speaker.code, Some(0), "{}", speaker.stderr);
    assert_eq!(listener.code, Some(0), "{}", listener.stderr);

    let (samples, rate) = decode(&recording).expect("the recording decodes");
    let secs = samples.len() as f64 / f64::from(rate);
    assert!((secs - 3.0).abs() <= 0.3, "the recording lasts {secs:.3} s, not 3 s within 10%");
    let hz = dominant_hz(&samples, rate);
    eprintln!("recorded {secs:.3} s with its strongest frequency at {hz:.2} Hz");
    assert!(
        (hz - 440.0).abs() <= 440.0 * 0.02,
        "the recording's dominant frequency is {hz:.1} Hz, not 440 Hz within 2%"
    );
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_is_added_and_removed_mid_chat_without_losing_a_message() {
    let dir = scratch("midchat");
    let tone = tone(&dir, 8.0, 330.0).expect("a tone");
    let tone = tone.to_str().expect("utf-8 path");
    let relay = Relay::start().await;
    // alice answered the connection and bob offered it: each adds a track, so both sides
    // make renegotiation offers.
    let args = ["--commands", "--audio-in", tone, "--expect", "60"];
    let (mut alice, mut bob) = connected_pair(&relay.url, "calls", ("alice", &args), ("bob", &args)).await;

    let script = |who: &str| (1..=60).map(|i| format!("{who} {i:02}")).collect::<Vec<_>>();
    let (from_alice, from_bob) = (script("alice"), script("bob"));
    for (i, (a, b)) in from_alice.iter().zip(&from_bob).enumerate() {
        match i {
            10 => alice.say("/call").await,
            20 => bob.say("/call").await,
            40 => alice.say("/hangup").await,
            50 => bob.say("/hangup").await,
            _ => {}
        }
        alice.say(a).await;
        bob.say(b).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (me, other) in [(&mut alice, "bob"), (&mut bob, "alice")] {
        me.expect(|l| call_state(l, "live"), "our call going live").await;
        me.expect(|l| call_state(l, "ended") && l["reason"] == "hung up", "our hang-up").await;
        me.expect(|l| peer_audio(l, true) && l["name"] == other, "the other's audio arriving").await;
        me.expect(|l| peer_audio(l, false) && l["name"] == other, "the other's audio stopping").await;
    }
    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "alice: {}", alice.stderr);
    assert_eq!(bob.code, Some(0), "bob: {}", bob.stderr);
    assert_eq!(messages(&bob.lines), from_alice, "bob got alice's messages once each, in order");
    assert_eq!(messages(&alice.lines), from_bob, "alice got bob's messages once each, in order");
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_without_a_microphone_says_so_and_the_chat_goes_on() {
    let relay = Relay::start().await;
    let mut alice = Client::start(Some(&relay.url), "quiet", "alice", &[]);
    alice.expect_type("joined").await;
    // An ALSA configuration that defines no device: no microphone, whatever this machine has.
    let no_devices = std::env::temp_dir().join(format!("peertalk-no-alsa-{}.conf", std::process::id()));
    std::fs::write(&no_devices, "").expect("write an empty ALSA configuration");
    let env = [("ALSA_CONFIG_PATH", no_devices.to_str().expect("utf-8 path"))];
    let mut bob = Client::start_with_env(Some(&relay.url), "quiet", "bob", &["--audio"], &env);
    alice.connected().await;
    bob.connected().await;
    let ended = bob.expect(|l| call_state(l, "ended"), "the call ending").await;
    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(reason.ends_with("the chat goes on without audio"), "{ended}");
    eprintln!("without a microphone: {reason}");
    bob.say("still chatting").await;
    assert_eq!(alice.expect_type("message").await["text"], "still chatting");
    alice.close_input();
    bob.close_input();
    let (alice, bob) = tokio::join!(alice.finish(), bob.finish());
    assert_eq!(alice.code, Some(0), "alice: {}", alice.stderr);
    assert_eq!(bob.code, Some(0), "bob: {}", bob.stderr);
    let _ = std::fs::remove_file(no_devices);
}

/// Starts a member of `room` that sends a tone of `hz` for `secs` with `--audio-in`.
fn singer(dir: &std::path::Path, relay: &Relay, room: &str, name: &str, hz: f64, secs: f64) -> Client {
    let tone = tone(dir, secs, hz).expect("a tone");
    Client::start(Some(&relay.url), room, name, &["--audio-in", tone.to_str().expect("utf-8 path")])
}

/// Waits until `listener` has heard each of `names` start and stop sending, then until
/// each singer's file has been sent, and finishes everyone.
async fn hear_out(mut listener: Client, singers: Vec<Client>, names: &[&str]) {
    for name in names {
        listener.expect(|l| peer_audio(l, true) && l["name"] == *name, &format!("{name}'s audio")).await;
    }
    for mut singer in singers {
        singer.expect(|l| call_state(l, "ended"), "the end of the file").await;
        let done = singer.finish().await;
        assert_eq!(done.code, Some(0), "{}", done.stderr);
    }
    for name in names {
        listener.expect(|l| peer_audio(l, false) && l["name"] == *name, &format!("{name} stopping")).await;
    }
    let done = listener.finish().await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn three_members_sending_tones_are_heard_at_once_in_a_fourth_members_recording() {
    let dir = scratch("choir");
    let recording = dir.join("mix.opus");
    let relay = Relay::start().await;
    let mut ear = Client::start(
        Some(&relay.url),
        "choir",
        "ear",
        &["--audio-out", recording.to_str().expect("utf-8 path")],
    );
    ear.expect_type("joined").await;
    let voices = [("low", 440.0), ("mid", 660.0), ("high", 880.0)];
    let singers: Vec<Client> =
        voices.iter().map(|(name, hz)| singer(&dir, &relay, "choir", name, *hz, 4.0)).collect();
    hear_out(ear, singers, &["low", "mid", "high"]).await;

    let (samples, rate) = decode(&recording).expect("the recording decodes");
    let secs = samples.len() as f64 / f64::from(rate);
    assert!(
        (3.8..=5.0).contains(&secs),
        "the recording lasts {secs:.2} s; each sang for 4 s, starting within a moment"
    );
    // One second from the middle, when all three sing.
    let middle = &samples[samples.len() / 2 - rate as usize / 2..][..rate as usize];
    for (name, hz) in voices {
        let share = share_at(middle, rate, hz);
        eprintln!("{name} ({hz} Hz): {share:.2} of the mix's power");
        assert!(share > 0.15, "{name}'s {hz} Hz is {share:.3} of the mix, not about a third");
    }
    assert!(share_at(middle, rate, 550.0) < 0.02, "and no tone that nobody sent");
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_on_a_lossy_link_is_recorded_without_gaps() {
    let Ok(link) = Link::create() else {
        common::note("SKIPPED a_member_on_a_lossy_link_is_recorded_without_gaps: no network namespaces here");
        return;
    };
    if let Err(why) = link.impair(10, 20) {
        common::note(&format!("SKIPPED a_member_on_a_lossy_link_is_recorded_without_gaps: {why}"));
        return;
    }
    let dir = scratch("lossy-call");
    let recording = dir.join("lossy.opus");
    let tone = tone(&dir, 4.0, 440.0).expect("a tone");
    let relay = Relay::start_in(&link.a, &["--listen", &format!("{}:0", link.a_ip)]).await;
    let out = ["--bind", &link.a_ip, "--audio-out", recording.to_str().expect("utf-8 path")];
    let mut ear = Client::start_in(&link.a, &relay.url, "lossy", "ear", &out);
    ear.expect_type("joined").await;
    let far = Client::start_in(
        &link.b,
        &relay.url,
        "lossy",
        "far",
        &["--bind", &link.b_ip, "--audio-in", tone.to_str().expect("utf-8 path")],
    );
    hear_out(ear, vec![far], &["far"]).await;

    let (samples, rate) = decode(&recording).expect("the recording decodes");
    let secs = samples.len() as f64 / f64::from(rate);
    // Lost packets take their 20 ms in the recording too (recovered or concealed): 10% of
    // them missing would make it about 3.6 s.
    eprintln!("recorded {secs:.3} s over the lossy link");
    assert!((3.9..=4.3).contains(&secs), "the recording lasts {secs:.2} s, not about 4 s");
    // Between the first and the last sound, no stretch of silence longer than one 20 ms
    // packet: what was lost was recovered or concealed.
    let loud = |s: &f32| s.abs() > 0.01;
    let (first, last) =
        (samples.iter().position(loud).expect("sound"), samples.iter().rposition(loud).expect("sound"));
    let mut longest = 0;
    let mut run = 0;
    for s in &samples[first..=last] {
        run = if loud(s) { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    let packet = rate as usize / 50;
    assert!(
        longest <= packet,
        "a gap of {longest} samples ({:.1} ms) in the recording",
        longest as f64 * 1000.0 / f64::from(rate)
    );
    std::fs::remove_dir_all(dir).expect("clean up");
}
