//! Two peers in one process, their signals handed straight to each other: the WebRTC
//! stack and our peer task, without processes, pipes or a relay.

use std::sync::Arc;
use std::time::Duration;

use peertalk::audio::{Incoming, OpusFrame};
use peertalk::peer::{self, CHAT_LABEL, Media, NetOptions, PeerCommand, PeerEvent, PeerHandle};
use peertalk_signal::proto::PeerId;
use tokio::sync::{broadcast, mpsc};

/// Two peers whose signals go straight to each other.
pub struct Pair {
    pub alice: Arc<PeerHandle>,
    pub bob: Arc<PeerHandle>,
    /// Carries signals; it holds the handles too, so it is stopped before closing.
    router: tokio::task::JoinHandle<()>,
    /// Events that are not signals, by side.
    pub alice_events: mpsc::Receiver<PeerEvent>,
    pub bob_events: mpsc::Receiver<PeerEvent>,
    /// Keep the audio channels open for the peers' lifetime.
    _media: (broadcast::Sender<OpusFrame>, mpsc::Receiver<Incoming>),
}

impl Pair {
    /// Starts both peers (alice offers) and the task that carries signals between them.
    pub fn start() -> Self {
        let (frames, _) = broadcast::channel(4);
        let (incoming, incoming_rx) = mpsc::channel(4);
        let media = Media { frames: frames.clone(), incoming };
        let net = Arc::new(NetOptions {
            ice_servers: Vec::new(),
            relay_only: false,
            bind: vec!["127.0.0.1:0".parse().expect("address")],
            identity: None,
            passphrase: None,
        });
        let (tx, mut rx) = mpsc::channel(1024);
        let label: Arc<str> = Arc::from(CHAT_LABEL);
        let alice_id = PeerId("alice".to_owned());
        let bob_id = PeerId("bob".to_owned());
        // Each peer is told the other's id; events come back tagged with it.
        let alice = Arc::new(peer::spawn(
            bob_id.clone(),
            true,
            label.clone(),
            net.clone(),
            media.clone(),
            tx.clone(),
        ));
        let bob = Arc::new(peer::spawn(alice_id, false, label, net, media, tx));
        let (alice_tx, alice_events) = mpsc::channel(1 << 16);
        let (bob_tx, bob_events) = mpsc::channel(1 << 16);
        let (to_alice, to_bob) = (alice.clone(), bob.clone());
        let router = tokio::spawn(async move {
            while let Some((about, event)) = rx.recv().await {
                let from_alice = about == bob_id;
                match event {
                    PeerEvent::Signal(signal) if from_alice => to_bob.command(PeerCommand::Signal(signal)),
                    PeerEvent::Signal(signal) => to_alice.command(PeerCommand::Signal(signal)),
                    event if from_alice => {
                        let _ = alice_tx.send(event).await;
                    }
                    event => {
                        let _ = bob_tx.send(event).await;
                    }
                }
            }
        });
        Self { alice, bob, router, alice_events, bob_events, _media: (frames, incoming_rx) }
    }

    pub async fn opened(&mut self) {
        tokio::join!(until_open(&mut self.alice_events), until_open(&mut self.bob_events));
    }

    pub async fn close(self) {
        self.router.abort();
        let _ = self.router.await;
        let (Ok(alice), Ok(bob)) = (Arc::try_unwrap(self.alice), Arc::try_unwrap(self.bob)) else {
            panic!("the router still holds the peers")
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(alice.close(), bob.close());
        })
        .await;
    }
}

pub async fn until_open(events: &mut mpsc::Receiver<PeerEvent>) {
    loop {
        match events.recv().await {
            Some(PeerEvent::Open { .. }) => return,
            Some(PeerEvent::Failed(why)) => panic!("the connection failed: {why}"),
            Some(_) => {}
            None => panic!("the peer ended before its channel opened"),
        }
    }
}

pub async fn next_message(events: &mut mpsc::Receiver<PeerEvent>) -> String {
    loop {
        match events.recv().await {
            Some(PeerEvent::Message(text)) => return text,
            Some(_) => {}
            None => panic!("the peer ended"),
        }
    }
}
