//! The client's side of the relay: connect, join a room, then carry protocol messages
//! both ways on a task of its own until the socket closes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use peertalk_signal::proto::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, PeerInfo, ServerMessage, Signal,
};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::debug;

/// How long connecting and joining may take before the relay counts as unreachable.
pub(crate) const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("could not reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the relay at {url} refused to let us join ({code}): {message}")]
    Refused { url: String, code: ErrorCode, message: String },
    #[error("the relay at {url} turned the connection down (HTTP {status}): {body}")]
    Rejected { url: String, status: u16, body: String },
    #[error("the relay at {url} broke the protocol: {detail}")]
    Protocol { url: String, detail: String },
}

/// What arrives from the relay after the welcome.
#[derive(Debug, PartialEq)]
pub enum RelayEvent {
    /// Someone entered the room; `offer` says whether we make the offer to them.
    PeerJoined {
        peer: PeerInfo,
        offer: bool,
    },
    PeerLeft(PeerId),
    Signal {
        from: PeerId,
        signal: Signal,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The connection ended; nothing more will arrive.
    Lost(String),
}

/// A joined room.
pub struct Joined {
    pub me: PeerId,
    pub peers: Vec<PeerInfo>,
    pub outgoing: mpsc::UnboundedSender<ClientMessage>,
    pub events: mpsc::Receiver<RelayEvent>,
}

/// Connects to `url`, joins `room` as `name`, and returns once welcomed.
pub async fn join(
    url: &str,
    room: &str,
    name: &str,
    secret: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Joined, JoinError> {
    let attempt = async {
        let mut ws = open(url, tls).await?;
        let join = ClientMessage::Join {
            room: room.to_owned(),
            name: name.to_owned(),
            version: PROTOCOL_VERSION,
            secret: secret.map(str::to_owned),
        };
        ws.send(Message::Text(join.to_json().into()))
            .await
            .map_err(|e| JoinError::Unreachable { url: url.to_owned(), reason: e.to_string() })?;
        let (me, peers) = await_welcome(&mut ws, url).await?;
        Ok::<_, JoinError>((ws, me, peers))
    };
    let (ws, me, peers) =
        tokio::time::timeout(JOIN_TIMEOUT, attempt).await.map_err(|_| JoinError::Unreachable {
            url: url.to_owned(),
            reason: format!("no welcome within {} s", JOIN_TIMEOUT.as_secs()),
        })??;
    let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::channel(256);
    tokio::spawn(pump(ws, outgoing_rx, events_tx));
    Ok(Joined { me, peers, outgoing, events })
}

/// Opens the WebSocket. A relay that answers the handshake with an HTTP error (wrong path,
/// origin or secret) refused us; any other failure means it could not be reached.
pub(crate) async fn open(url: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Socket, JoinError> {
    let connector = tls.map(|tls| Connector::Rustls(tls.clone()));
    match tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            Err(JoinError::Rejected {
                url: url.to_owned(),
                status: response.status().as_u16(),
                body: crate::sanitize::for_terminal(body.trim()),
            })
        }
        Err(e) => Err(JoinError::Unreachable { url: url.to_owned(), reason: explain(&e) }),
    }
}

/// The connection error, with the fix when it is about trusting the relay's certificate.
fn explain(e: &WsError) -> String {
    let text = e.to_string();
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        format!("{text}; if the relay's certificate comes from a private CA, pass that CA with --ca-file")
    } else {
        text
    }
}

/// TLS settings for wss:// relays: the system's trusted roots plus `extra` (--ca-file).
#[must_use]
pub fn client_tls(extra: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates cost those roots only; --ca-file still works.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    roots.add_parsable_certificates(extra.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    // The ring provider supports the safe default versions; this cannot fail.
    Arc::new(config.expect("ring supports TLS 1.2 and 1.3"))
}

async fn await_welcome(ws: &mut Socket, url: &str) -> Result<(PeerId, Vec<PeerInfo>), JoinError> {
    let protocol = |detail: String| JoinError::Protocol { url: url.to_owned(), detail };
    loop {
        let frame = ws
            .next()
            .await
            .ok_or_else(|| JoinError::Unreachable {
                url: url.to_owned(),
                reason: "closed before welcoming us".into(),
            })?
            .map_err(|e| JoinError::Unreachable { url: url.to_owned(), reason: e.to_string() })?;
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let reason = frame
                    .map_or_else(|| "no reason given".to_owned(), |f| format!("{} {}", f.code, f.reason));
                return Err(JoinError::Unreachable {
                    url: url.to_owned(),
                    reason: format!("closed: {reason}"),
                });
            }
            _ => continue,
        };
        match ServerMessage::parse(&text) {
            Ok(ServerMessage::Welcome { id, peers, .. }) => return Ok((id, peers)),
            Ok(ServerMessage::Error { code, message }) => {
                return Err(JoinError::Refused { url: url.to_owned(), code, message });
            }
            Ok(other) => return Err(protocol(format!("expected a welcome, got {other:?}"))),
            Err(e) => {
                return Err(protocol(format!("unreadable message ({e}); is this a peertalk-signal relay?")));
            }
        }
    }
}

/// What one read from the relay's socket comes to.
pub(crate) enum Read {
    /// A text frame, to be handled.
    Text(Utf8Bytes),
    /// A control frame: nothing to do.
    Skip,
    /// The connection is over, for this reason.
    Ended(String),
}

/// Sorts the next item of the relay's socket, whichever protocol it speaks.
pub(crate) fn sort_frame(frame: Option<Result<Message, WsError>>) -> Read {
    match frame {
        Some(Ok(Message::Text(text))) => Read::Text(text),
        Some(Ok(Message::Close(frame))) => Read::Ended(frame.map_or_else(
            || "the relay closed the connection".to_owned(),
            |f| format!("the relay closed the connection ({} {})", f.code, f.reason),
        )),
        Some(Ok(_)) => Read::Skip,
        Some(Err(e)) => Read::Ended(format!("the relay connection broke: {e}")),
        None => Read::Ended("the relay connection ended".to_owned()),
    }
}

async fn pump(
    mut ws: Socket,
    mut outgoing: mpsc::UnboundedReceiver<ClientMessage>,
    events: mpsc::Sender<RelayEvent>,
) {
    let reason = loop {
        tokio::select! {
            frame = ws.next() => match sort_frame(frame) {
                Read::Text(text) => {
                    let event = match ServerMessage::parse(&text) {
                        // The newcomer offers to everyone already in the room.
                        Ok(ServerMessage::PeerJoined { peer }) => RelayEvent::PeerJoined { peer, offer: false },
                        Ok(ServerMessage::PeerLeft { id }) => RelayEvent::PeerLeft(id),
                        Ok(ServerMessage::Signal { from, signal }) => RelayEvent::Signal { from, signal },
                        Ok(ServerMessage::Error { code, message }) => RelayEvent::Error { code, message },
                        Ok(ServerMessage::Welcome { .. }) => continue,
                        Err(e) => {
                            debug!("ignoring an unreadable relay message: {e}");
                            continue;
                        }
                    };
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
                Read::Skip => {}
                Read::Ended(reason) => break reason,
            },
            message = outgoing.recv() => match message {
                Some(message) => {
                    if let Err(e) = ws.send(Message::Text(message.to_json().into())).await {
                        break format!("could not write to the relay: {e}");
                    }
                }
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return;
                }
            },
        }
    };
    let _ = events.send(RelayEvent::Lost(reason)).await;
}
