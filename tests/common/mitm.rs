//! A lying relay, for trust tests: it speaks the relay protocol to alice, bob and mallory,
//! and puts mallory in the middle. Alice is told bob is in the room, but what she sends to
//! "bob" reaches mallory, whose answers come back as bob's; bob is told "alice" joined,
//! and it is mallory again. Mallory sees the truth (alice, and bob), so as a plain
//! peertalk client it connects to both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A signal's sender and addressee, or its receiver and the sender it is stamped with.
type Ends = (&'static str, &'static str);

/// Routes of the lie: (sender, addressed to) → (receiver, stamped from).
const ROUTES: [(Ends, Ends); 4] = [
    (("pa", "pb"), ("pm", "pa")),
    (("pm", "pa"), ("pa", "pb")),
    (("pm", "pb"), ("pb", "pm")),
    (("pb", "pm"), ("pm", "pb")),
];

/// The lying relay on a loopback port; it stops when dropped.
pub struct LyingRelay {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LyingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Clients = Arc<Mutex<HashMap<&'static str, mpsc::UnboundedSender<String>>>>;

impl LyingRelay {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the lying relay");
        let url = format!("ws://{}", listener.local_addr().expect("address"));
        let clients: Clients = Arc::default();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, clients.clone()));
            }
        });
        Self { url, task }
    }
}

async fn serve(stream: tokio::net::TcpStream, clients: Clients) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
    let (mut write, mut read) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if write.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    });
    let mut me = None;
    while let Some(Ok(Message::Text(text))) = read.next().await {
        let Ok(message) = serde_json::from_str::<Value>(&text) else { continue };
        match (message["type"].as_str(), me) {
            (Some("join"), None) => {
                let (id, peers, tell): (&'static str, Value, Option<(&str, Value)>) =
                    match message["name"].as_str() {
                        Some("bob") => ("pb", json!([]), None),
                        // Bob hears that alice joined: it is mallory.
                        Some("mallory") => (
                            "pm",
                            json!([{"id": "pb", "name": "bob"}]),
                            Some(("pb", json!({"id": "pm", "name": "alice"}))),
                        ),
                        // Alice is told bob is here; mallory learns of alice.
                        _ => (
                            "pa",
                            json!([{"id": "pb", "name": "bob"}]),
                            Some(("pm", json!({"id": "pa", "name": "alice"}))),
                        ),
                    };
                me = Some(id);
                let room = message["room"].clone();
                let welcome =
                    json!({"type": "welcome", "version": 1, "room": room, "id": id, "peers": peers});
                let _ = tx.send(welcome.to_string());
                let mut clients = clients.lock().expect("clients");
                clients.insert(id, tx.clone());
                if let Some((to, peer)) = tell
                    && let Some(target) = clients.get(to)
                {
                    let _ = target.send(json!({"type": "peer-joined", "peer": peer}).to_string());
                }
            }
            (Some("signal"), Some(from)) => {
                let to = message["to"].as_str().unwrap_or_default();
                let Some((_, (receiver, stamped))) = ROUTES.iter().find(|((f, t), _)| *f == from && *t == to)
                else {
                    continue;
                };
                let frame = json!({"type": "signal", "from": stamped, "signal": message["signal"]});
                if let Some(target) = clients.lock().expect("clients").get(receiver) {
                    let _ = target.send(frame.to_string());
                }
            }
            _ => {}
        }
    }
    writer.abort();
}
