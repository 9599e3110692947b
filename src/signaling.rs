//! The client's side of the relay: connect, join a room, then carry protocol messages
//! both ways on a task of its own. When the connection drops, that task reconnects with
//! backoff and rejoins with the relay's resume token, so the client keeps its peer id.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use peertalk_signal::proto::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, PeerInfo, ServerMessage, Signal, close,
};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::debug;

use crate::backoff::Backoff;

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
    /// Someone entered the room; `offer` says whether we make the offer to them, `page`
    /// whether it is a page rather than peertalk (classic relays only).
    PeerJoined {
        peer: PeerInfo,
        offer: bool,
        page: bool,
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
    /// The connection ended. The client tries again unless the channel closes after this.
    Lost(String),
    /// Attempt `attempt` to reach the relay again starts after `delay`.
    Retrying {
        attempt: u32,
        delay: Duration,
    },
    /// Back in the room after a reconnect; `me` is the old id unless the relay could not
    /// resume it.
    Rejoined {
        me: PeerId,
        peers: Vec<PeerInfo>,
    },
}

/// A joined room.
pub struct Joined {
    pub me: PeerId,
    pub peers: Vec<PeerInfo>,
    pub outgoing: mpsc::UnboundedSender<ClientMessage>,
    pub events: mpsc::Receiver<RelayEvent>,
}

/// What it takes to join a room, again and again.
#[derive(Clone)]
pub struct Membership {
    pub url: String,
    /// Other relays of the same service, tried in order when `url` cannot be reached; a
    /// relay's resume token gives the same peer id on any of them.
    pub fallbacks: Vec<String>,
    pub room: String,
    pub name: String,
    pub secret: Option<String>,
    /// A join token for the room (`--token`).
    pub token: Option<String>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A relay's answer to a join.
struct Welcome {
    me: PeerId,
    peers: Vec<PeerInfo>,
    resume: Option<String>,
}

/// Connects, joins the room, and returns once welcomed; after that a task of its own
/// carries messages and reconnects when the connection drops.
pub async fn join(membership: Membership) -> Result<Joined, JoinError> {
    let (ws, welcome) = join_once(&membership, None).await?;
    let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::channel(256);
    let Welcome { me, peers, resume } = welcome;
    tokio::spawn(pump(ws, membership, resume, outgoing_rx, events_tx));
    Ok(Joined { me, peers, outgoing, events })
}

/// One join, at the first relay that can be reached (`url`, then the fallbacks in order);
/// `resume` asks for an earlier id. A relay that answers and refuses ends the attempt: the
/// others of the same service would refuse as well.
async fn join_once(m: &Membership, resume: Option<&str>) -> Result<(Socket, Welcome), JoinError> {
    let mut unreachable = Vec::new();
    for url in std::iter::once(&m.url).chain(&m.fallbacks) {
        match join_at(m, url, resume).await {
            Err(JoinError::Unreachable { url, reason }) => unreachable.push((url, reason)),
            joined => return joined,
        }
    }
    Err(match &unreachable[..] {
        [(url, reason)] => JoinError::Unreachable { url: url.clone(), reason: reason.clone() },
        all => JoinError::Unreachable {
            url: all.iter().map(|(url, _)| url.as_str()).collect::<Vec<_>>().join(", "),
            reason: all.iter().map(|(url, why)| format!("{url}: {why}")).collect::<Vec<_>>().join("; "),
        },
    })
}

/// One connection and join at `url`, bounded by [`JOIN_TIMEOUT`].
async fn join_at(m: &Membership, url: &str, resume: Option<&str>) -> Result<(Socket, Welcome), JoinError> {
    let attempt = async {
        let mut ws = open(url, m.tls.as_ref()).await?;
        let join = ClientMessage::Join {
            room: m.room.clone(),
            name: m.name.clone(),
            version: PROTOCOL_VERSION,
            secret: m.secret.clone(),
            resume: resume.map(str::to_owned),
            token: m.token.clone(),
        };
        ws.send(Message::Text(join.to_json().into()))
            .await
            .map_err(|e| JoinError::Unreachable { url: url.to_owned(), reason: e.to_string() })?;
        let welcome = await_welcome(&mut ws, url).await?;
        Ok::<_, JoinError>((ws, welcome))
    };
    tokio::time::timeout(JOIN_TIMEOUT, attempt).await.map_err(|_| JoinError::Unreachable {
        url: url.to_owned(),
        reason: format!("no welcome within {} s", JOIN_TIMEOUT.as_secs()),
    })?
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

/// The connection error, with what is wrong with the relay's certificate when that is it.
fn explain(e: &WsError) -> String {
    let text = e.to_string();
    let problem = [
        ("UnknownIssuer", "it is not signed by a CA this machine trusts; if it comes from a private CA, pass that CA with --ca-file"),
        ("NotValidForName", "it is for another name than the one in the URL"),
        ("Expired", "it has expired"),
        ("NotValidYet", "it is not valid yet; check this machine's clock"),
        ("Revoked", "its CA has revoked it"),
        ("BadSignature", "its signature does not check out"),
    ]
    .into_iter()
    .find(|(name, _)| text.contains(name));
    match problem {
        Some((_, why)) => format!("{text}: {CERTIFICATE_PROBLEM} {why}"),
        None if text.contains("certificate") => format!("{text}: {CERTIFICATE_PROBLEM} it cannot be used"),
        None => text,
    }
}

/// How [`explain`] begins what it says about a certificate.
const CERTIFICATE_PROBLEM: &str = "the relay's TLS certificate is refused:";

/// Whether an unreachable relay's reason is its TLS certificate.
#[must_use]
pub fn is_certificate_problem(reason: &str) -> bool {
    reason.contains(CERTIFICATE_PROBLEM)
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

async fn await_welcome(ws: &mut Socket, url: &str) -> Result<Welcome, JoinError> {
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
            Ok(ServerMessage::Welcome { id, peers, resume, .. }) => {
                return Ok(Welcome { me: id, peers, resume });
            }
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

/// Why serving one connection stopped.
enum Stop {
    /// The connection ended, for this reason; try again.
    Lost(String),
    /// The client is leaving (or nobody listens any more): stop for good.
    Leaving,
}

/// Carries messages until the client leaves, reconnecting whenever the connection drops.
/// While no relay is there, messages for it are dropped: they are negotiation for peers
/// that repeat it themselves when they need it (ICE restarts retry).
async fn pump(
    mut ws: Socket,
    membership: Membership,
    mut resume: Option<String>,
    mut outgoing: mpsc::UnboundedReceiver<ClientMessage>,
    events: mpsc::Sender<RelayEvent>,
) {
    loop {
        match serve(&mut ws, &mut outgoing, &events).await {
            Stop::Leaving => return,
            Stop::Lost(reason) => {
                if events.send(RelayEvent::Lost(reason)).await.is_err() {
                    return;
                }
            }
        }
        let mut backoff = Backoff::default();
        ws = loop {
            let delay = backoff.next_delay();
            let attempt = backoff.attempts();
            if events.send(RelayEvent::Retrying { attempt, delay }).await.is_err() {
                return;
            }
            let waited = tokio::time::sleep(delay);
            tokio::pin!(waited);
            loop {
                tokio::select! {
                    () = &mut waited => break,
                    message = outgoing.recv() => match message {
                        Some(message) => debug!(?message, "no relay to send to; dropped"),
                        None => return,
                    },
                }
            }
            match join_once(&membership, resume.as_deref()).await {
                Ok((ws, welcome)) => {
                    resume = welcome.resume.or(resume);
                    let back = RelayEvent::Rejoined { me: welcome.me, peers: welcome.peers };
                    if events.send(back).await.is_err() {
                        return;
                    }
                    break ws;
                }
                Err(e @ (JoinError::Unreachable { .. } | JoinError::Protocol { .. })) => {
                    debug!(attempt, "relay still away: {e}");
                }
                // Turned away on purpose (secret changed, room full): trying again would
                // only be turned away again.
                Err(e) => {
                    let _ = events.send(RelayEvent::Lost(format!("could not rejoin: {e}"))).await;
                    return;
                }
            }
        };
    }
}

async fn serve(
    ws: &mut Socket,
    outgoing: &mut mpsc::UnboundedReceiver<ClientMessage>,
    events: &mpsc::Sender<RelayEvent>,
) -> Stop {
    loop {
        tokio::select! {
            frame = ws.next() => match sort_frame(frame) {
                Read::Text(text) => {
                    let event = match ServerMessage::parse(&text) {
                        // The newcomer offers to everyone already in the room.
                        Ok(ServerMessage::PeerJoined { peer }) => RelayEvent::PeerJoined { peer, offer: false, page: false },
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
                        return Stop::Leaving;
                    }
                }
                // Coming back would take the id from the connection that just took it.
                Read::Ended(reason) if reason.contains(&format!("({} ", close::REPLACED)) => {
                    let reason = format!("{reason}; another client resumed this peer id, so this one does not reconnect");
                    let _ = events.send(RelayEvent::Lost(reason)).await;
                    return Stop::Leaving;
                }
                Read::Skip => {}
                Read::Ended(reason) => return Stop::Lost(reason),
            },
            message = outgoing.recv() => match message {
                Some(message) => {
                    if let Err(e) = ws.send(Message::Text(message.to_json().into())).await {
                        return Stop::Lost(format!("could not write to the relay: {e}"));
                    }
                }
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return Stop::Leaving;
                }
            },
        }
    }
}
