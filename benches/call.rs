//! Figures for calls: how long an audio packet takes from our send to the peer's
//! receive on loopback, and what a running call costs in CPU.
//!
//! Run with `scripts/bench`. Prints figures; asserts nothing. The CPU figure needs
//! opusenc (`apt-get install opus-tools`) to make a real Opus file.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Relay, connected_pair, cpu_ticks};
use peertalk::audio::OpusFrame;
use peertalk::peer::{self, Media, NetOptions, PeerCommand, PeerEvent};
use peertalk_signal::proto::PeerId;
use tokio::sync::{broadcast, mpsc};

const LATENCY_PACKETS: u64 = 500;
const CALL: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() {
    println!("peertalk call benchmark: Opus over WebRTC on loopback\n");
    one_way_latency().await;
    call_cpu().await;
}

/// Two peer connections in this process, negotiated with each other directly. One sends
/// 20 ms packets stamped with their index; the clock runs from handing a packet to the
/// connection until the other connection hands it to its audio engine. One process, one
/// clock: no skew to estimate.
async fn one_way_latency() {
    let net = Arc::new(NetOptions {
        ice_servers: Vec::new(),
        relay_only: false,
        bind: vec!["127.0.0.1:0".parse().expect("addr")],
        identity: None,
        passphrase: None,
    });
    let (frames, _) = broadcast::channel(64);
    let (unused_tx, _unused) = mpsc::channel(64);
    let (incoming_tx, mut incoming) = mpsc::channel(1024);
    let (idle_frames, _) = broadcast::channel(1);
    let sender_media = Media { frames: frames.clone(), incoming: unused_tx };
    let receiver_media = Media { frames: idle_frames, incoming: incoming_tx };
    let (a_id, b_id) = (PeerId("a".into()), PeerId("b".into()));
    let (events_tx, mut events) = mpsc::channel(1024);
    let a = peer::spawn(
        b_id.clone(),
        true,
        peer::CHAT_LABEL.into(),
        net.clone(),
        sender_media,
        events_tx.clone(),
    );
    let b = peer::spawn(a_id.clone(), false, peer::CHAT_LABEL.into(), net, receiver_media, events_tx);

    let mut open = 0;
    let mut sending = false;
    while open < 2 || !sending {
        let Some((to, event)) = events.recv().await else { return };
        // `to` is the remote peer of the connection that reported the event.
        let to_handle = if to == b_id { &b } else { &a };
        match event {
            PeerEvent::Signal(signal) => to_handle.command(PeerCommand::Signal(signal)),
            PeerEvent::Open { .. } => {
                open += 1;
                if open == 2 {
                    a.command(PeerCommand::AddAudio);
                }
            }
            PeerEvent::SendingAudio(true) => sending = true,
            _ => {}
        }
    }
    // Keep signalling (the renegotiation's last candidates) while packets flow.
    let signals = tokio::spawn(async move {
        while let Some((to, event)) = events.recv().await {
            if let PeerEvent::Signal(signal) = event {
                if to == b_id {
                    b.command(PeerCommand::Signal(signal))
                } else {
                    a.command(PeerCommand::Signal(signal))
                }
            }
        }
    });

    let start = Instant::now();
    let mut sent_at = Vec::with_capacity(LATENCY_PACKETS as usize);
    let mut latencies = Vec::new();
    let mut next = tokio::time::Instant::now();
    for index in 0..LATENCY_PACKETS {
        next += Duration::from_millis(20);
        let mut data = vec![0xf8]; // CELT, 20 ms: any payload travels the same way
        data.extend_from_slice(&index.to_be_bytes());
        sent_at.push(start.elapsed());
        let _ = frames.send(OpusFrame { data: Bytes::from(data), samples: 960 });
        let deadline = tokio::time::sleep_until(next);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                Some(packet) = incoming.recv() => {
                    let at = start.elapsed();
                    if let Some(bytes) = packet.data.get(1..9) {
                        let i = u64::from_be_bytes(bytes.try_into().expect("8 bytes")) as usize;
                        latencies.push(at - sent_at[i]);
                    }
                }
            }
        }
    }
    signals.abort();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)].as_secs_f64() * 1e6;
    println!(
        "Audio one-way latency, RTP send to receive on loopback, {} of {LATENCY_PACKETS} packets: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        latencies.len(),
        pct(50),
        pct(90),
        pct(99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
    );
}

/// Two headless clients, one sending a 10 s Ogg Opus tone, the other recording it (and,
/// built with `voice`, decoding it for the level meter): CPU of each during the call,
/// against the same clients connected and idle.
async fn call_cpu() {
    let dir = std::env::temp_dir().join(format!("peertalk-bench-call-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let tone = match common::audio::tone(&dir, CALL.as_secs_f64(), 440.0) {
        Ok(tone) => tone,
        Err(why) => {
            println!("Call CPU: skipped ({why})");
            return;
        }
    };
    let relay = Relay::start().await;
    let recording = dir.join("recording.opus");
    let (mut listener, mut speaker) = connected_pair(
        &relay.url,
        "cpu",
        ("listener", &["--audio-out", recording.to_str().expect("utf-8"), "--commands"]),
        ("speaker", &["--audio-in", tone.to_str().expect("utf-8"), "--commands"]),
    )
    .await;
    let pids = [speaker.pid(), listener.pid()];
    let idle = cpu_over(&pids, Duration::from_secs(3)).await;
    speaker.say("/call").await;
    speaker.expect(|l| l["type"] == "call" && l["state"] == "live", "the call going live").await;
    let busy = cpu_over(&pids, CALL - Duration::from_secs(1)).await;
    speaker.expect(|l| l["type"] == "call" && l["state"] == "ended", "the end of the file").await;
    println!(
        "Call CPU, {} s of Opus from --audio-in to --audio-out{}: sender {:.2}%, receiver {:.2}% of one core (connected and idle: {:.2}%, {:.2}%)",
        CALL.as_secs(),
        if cfg!(feature = "voice") { " (decoded for the level meter)" } else { "" },
        busy[0],
        busy[1],
        idle[0],
        idle[1]
    );
    speaker.close_input();
    listener.close_input();
    let _ = tokio::join!(speaker.finish(), listener.finish());
    let _ = std::fs::remove_dir_all(dir);
}

/// CPU use of each process over `span`, in percent of one core.
async fn cpu_over(pids: &[u32], span: Duration) -> Vec<f64> {
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    let started = Instant::now();
    tokio::time::sleep(span).await;
    let secs = started.elapsed().as_secs_f64();
    pids.iter().zip(before).map(|(p, b)| (cpu_ticks(*p) - b) as f64 / 100.0 / secs * 100.0).collect()
}
