//! Renegotiation between two real peer connections in this process, wired to each other
//! without a relay so that the test decides when each signal arrives. Over a relay on
//! loopback, two offers crossing in flight ("glare") is too rare to test; here it is
//! forced: both sides add their audio track, and neither offer is delivered until both
//! have been made.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use peertalk::audio::OpusFrame;
use peertalk::peer::{self, Media, NetOptions, PeerCommand, PeerEvent, PeerHandle};
use peertalk_signal::proto::{PeerId, SdpKind, Signal};
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

/// One side of the pair: its connection, and the audio it sends and receives.
struct Side {
    handle: PeerHandle,
    frames: broadcast::Sender<OpusFrame>,
    _incoming: mpsc::Receiver<peertalk::audio::Incoming>,
}

fn side(remote: &str, offer: bool, events: mpsc::Sender<(PeerId, PeerEvent)>) -> Side {
    let net = Arc::new(NetOptions {
        ice_servers: Vec::new(),
        relay_only: false,
        bind: vec!["127.0.0.1:0".parse().expect("loopback address")],
        identity: None,
        passphrase: None,
    });
    let (frames, _) = broadcast::channel(64);
    let (incoming_tx, incoming) = mpsc::channel(1024);
    let media = Media { frames: frames.clone(), incoming: incoming_tx };
    let handle = peer::spawn(PeerId(remote.into()), offer, peer::CHAT_LABEL.into(), net, media, events);
    Side { handle, frames, _incoming: incoming }
}

fn is_offer(signal: &Signal) -> bool {
    matches!(signal, Signal::Description(d) if d.kind == SdpKind::Offer)
}

/// What each side reported, indexed by side: 0 is a (the offerer), 1 is b.
#[derive(Default)]
struct Seen {
    open: [bool; 2],
    sending: [bool; 2],
    receiving: [bool; 2],
    messages: [Vec<String>; 2],
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_that_cross_are_settled_and_both_tracks_flow_beside_the_chat() {
    let (events_tx, mut events) = mpsc::channel(1024);
    // Events are tagged with the remote peer: "b" comes from a's connection, and back.
    let sides = [side("b", true, events_tx.clone()), side("a", false, events_tx)];
    let index = |remote: &PeerId| usize::from(remote.0 == "a");
    let mut seen = Seen::default();
    // Signals wait here, per receiving side, while offers are held back.
    let mut held: [VecDeque<Signal>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut holding = false;
    let mut offers_held = [false; 2];
    let mut crossed = false;
    let mut talk = tokio::time::interval(Duration::from_millis(20));
    let mut sent_frames = 0;

    let outcome = timeout(WAIT, async {
        loop {
            if seen.open == [true; 2] && !holding && !crossed {
                holding = true;
                for s in &sides {
                    s.handle.command(PeerCommand::AddAudio);
                }
            }
            if holding && offers_held == [true; 2] {
                // Both offers exist and neither side has seen the other's: deliver them now.
                holding = false;
                crossed = true;
                for (to, queue) in held.iter_mut().enumerate() {
                    for signal in queue.drain(..) {
                        sides[to].handle.command(PeerCommand::Signal(signal));
                    }
                }
            }
            if seen.sending == [true; 2] && seen.receiving == [true; 2] && seen.messages.iter().all(|m| !m.is_empty())
            {
                return Ok(());
            }
            tokio::select! {
                Some((remote, event)) = events.recv() => {
                    let from = index(&remote);
                    let to = 1 - from;
                    match event {
                        PeerEvent::Signal(signal) if holding => {
                            offers_held[from] |= is_offer(&signal);
                            held[to].push_back(signal);
                        }
                        PeerEvent::Signal(signal) => sides[to].handle.command(PeerCommand::Signal(signal)),
                        PeerEvent::Open { .. } => seen.open[from] = true,
                        PeerEvent::SendingAudio(on) => {
                            seen.sending[from] = on;
                            if on {
                                // The chat goes on over the renegotiated connection.
                                sides[from].handle.command(PeerCommand::Send(format!("from {from}").into()));
                            }
                        }
                        PeerEvent::ReceivingAudio(on) => seen.receiving[from] = on,
                        PeerEvent::Message(text) => seen.messages[from].push(text),
                        PeerEvent::Failed(why) => return Err(format!("side {from} failed: {why}")),
                        PeerEvent::Closed => return Err(format!("side {from} closed")),
                        PeerEvent::PlainText { .. } | PeerEvent::PlainBinary { .. } | PeerEvent::Drained(_) => {
                            return Err(format!("side {from} took the chat channel for a plain one"));
                        }
                        PeerEvent::File(_) => return Err(format!("side {from} saw a file channel nobody opened")),
                        PeerEvent::Fingerprint(_) => {}
                        PeerEvent::PassphraseMismatch(_) => return Err(format!("side {from} saw a passphrase nobody set")),
                        PeerEvent::State(_) | PeerEvent::Path(_) => {}
                    }
                }
                _ = talk.tick(), if crossed && sent_frames < 1500 => {
                    sent_frames += 1;
                    for s in &sides {
                        // One 20 ms CELT frame of silence: any payload travels the same way.
                        let _ = s.frames.send(OpusFrame { data: Bytes::from_static(&[0xf8, 0xff, 0xfe]), samples: 960 });
                    }
                }
            }
        }
    })
    .await;

    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(why)) => panic!("{why}"),
        Err(_) => panic!(
            "within {WAIT:?}: open {:?}, offers crossed {crossed}, sending {:?}, receiving {:?}, messages {:?}",
            seen.open, seen.sending, seen.receiving, seen.messages
        ),
    }
    assert_eq!(seen.messages[1], ["from 0"], "b got a's message");
    assert_eq!(seen.messages[0], ["from 1"], "a got b's message");
    let [a, b] = sides;
    tokio::join!(a.handle.close(), b.handle.close());
}
