//! One client connection: the WebSocket handshake, then a loop that turns the client's
//! frames into hub [`Command`]s and writes the hub's frames back.
//!
//! Everything that can be judged from one frame alone (JSON shape, protocol version, room
//! and name syntax, binary frames, size) is refused here, so the hub only sees messages
//! that are well formed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::{Quota, RateLimiter};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as HttpRequest, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tracing::{debug, info};

use crate::classic::ClassicMessage;
use crate::config::RelayConfig;
use crate::http::{self, Rewind, Route};
use crate::hub::{Command, Kick, OUTBOX_FRAMES};
use crate::metrics::Metrics;
use crate::proto::{
    self, ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, Refusal, ServerMessage, SignalRef, close,
};
use crate::resume::Token;
use crate::room::Endpoint;
use crate::server::Shared;
use crate::token::TokenRefusal;

/// The room a classic client is in when its URL names none.
pub const DEFAULT_CLASSIC_ROOM: &str = "default";

/// What the handshake's path asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// The peertalk protocol; the room comes with `join`.
    Main,
    /// The classic broadcast format, in the room named by `?room=`.
    Classic { room: String },
}

impl Target {
    fn endpoint(&self) -> Endpoint {
        match self {
            Self::Main => Endpoint::Main,
            Self::Classic { .. } => Endpoint::Classic,
        }
    }
}

/// How a connection ended, for the log line written when it closes.
#[derive(Debug, Clone, Copy)]
enum Ending {
    ClientClosed,
    TooLarge,
    TooSlow,
    RateLimited,
    Idle,
    Shutdown,
    Replaced,
    Broken,
}

/// tungstenite's read buffer, allocated up front for every connection and grown only for
/// a larger frame: signaling frames are small, and idle connections are most of them.
const READ_BUFFER: usize = 1024;

/// Consecutive rate-limited frames after which the connection is closed (1008).
const MAX_RATE_VIOLATIONS: u32 = 100;

/// Serves one accepted TCP connection: answers `/healthz` and `/metrics`, or upgrades it
/// to a WebSocket and serves the protocol until it closes. At the connection limit
/// (`full`), an upgrade is told `server-full` instead.
pub async fn accept<S>(
    mut stream: S,
    serial: u64,
    shared: &Shared,
    hub: mpsc::Sender<Command>,
    shutdown: watch::Receiver<bool>,
    full: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let metrics = &shared.metrics;
    let head = tokio::time::timeout(shared.config.handshake_timeout, http::read_request(&mut stream)).await;
    let (request, head) = match head {
        Ok(Ok(read)) => read,
        Ok(Err(_)) => return metrics.rejected("closed-before-request"),
        Err(_) => return metrics.rejected("handshake-timeout"),
    };
    match request {
        // With a separate --metrics-listen, the endpoints stay off the public port.
        Route::Health | Route::Metrics if shared.config.metrics_listen.is_some() => {
            http::answer(&mut stream, Route::Other(404, "not served on this address\n"), metrics).await;
        }
        Route::Web(..) if !shared.config.web => {
            let off = Route::Other(404, "the web client is turned off on this relay (--web off)\n");
            http::answer(&mut stream, off, metrics).await;
        }
        Route::Health | Route::Metrics | Route::Web(..) | Route::Other(..) => {
            http::answer(&mut stream, request, metrics).await
        }
        Route::Upgrade => {
            let Some((mut ws, target)) = handshake(Rewind::new(head, stream), serial, shared).await else {
                return;
            };
            if full {
                metrics.rejected("server-full");
                let refusal = Refusal::new(
                    ErrorCode::ServerFull,
                    format!(
                        "This relay serves at most {} connections; try again later.",
                        shared.config.max_connections
                    ),
                );
                let _ = refuse(&mut ws, refusal, metrics, target.endpoint()).await;
                close_with(&mut ws, close::TRY_AGAIN_LATER, "relay full").await;
            } else {
                metrics.connection_opened();
                serve(ws, serial, shared, hub, shutdown, target).await;
                metrics.connection_closed();
            }
        }
    }
}

/// Completes the WebSocket handshake within the configured time, or gives up quietly.
async fn handshake<S>(stream: S, serial: u64, shared: &Shared) -> Option<(WebSocketStream<S>, Target)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes));
    let mut target = Target::Main;
    #[allow(clippy::result_large_err)] // the signature is tungstenite's callback type
    let check = |req: &HttpRequest, resp: Response| {
        target = check_request(req, shared)?;
        Ok(resp)
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(ws_config));
    match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => Some((ws, target)),
        Ok(Err(e)) => {
            debug!(conn = serial, "handshake failed: {e}");
            shared.metrics.rejected("handshake-failed");
            None
        }
        Err(_) => {
            debug!(conn = serial, "handshake timed out");
            shared.metrics.rejected("handshake-timeout");
            None
        }
    }
}

/// Sends a refusal to this client alone, in its endpoint's format, and counts it.
async fn refuse<S>(
    ws: &mut WebSocketStream<S>,
    refusal: Refusal,
    metrics: &Metrics,
    endpoint: Endpoint,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    metrics.error(refusal.code);
    let frame = match endpoint {
        Endpoint::Main => ServerMessage::from(refusal).to_json(),
        Endpoint::Classic => ClassicMessage::from(refusal).to_json(),
    };
    ws.send(Message::Text(frame.into())).await
}

/// Serves the protocol on an upgraded connection until it closes.
async fn serve<S>(
    mut ws: WebSocketStream<S>,
    serial: u64,
    shared: &Shared,
    hub: mpsc::Sender<Command>,
    mut shutdown: watch::Receiver<bool>,
    target: Target,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (config, metrics) = (&shared.config, &shared.metrics);
    let started = Instant::now();
    let endpoint = target.endpoint();

    let (outbox, mut inbox) = mpsc::channel(OUTBOX_FRAMES);
    let (kick, mut kicked) = oneshot::channel();
    let token = Token::issue();
    let mut conn = Conn {
        id: token.peer_id(),
        serial,
        token,
        unregistered: Some((outbox, kick)),
        hub,
        room: None,
        routes: HashMap::new(),
        metrics,
    };
    if let Target::Classic { room } = target {
        // A classic client is in its room from the handshake on; a main one registers
        // with its first join, which may bring back an earlier id.
        if !conn.register(endpoint).await {
            return;
        }
        if let Err(refusal) = conn.join_classic(room).await {
            let _ = refuse(&mut ws, refusal, metrics, endpoint).await;
            close_with(&mut ws, close::TRY_AGAIN_LATER, "room not available").await;
            conn.disconnect().await;
            return;
        }
    }
    let quota = Quota::per_second(NonZeroU32::new(config.rate_per_second).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(config.rate_burst).unwrap_or(NonZeroU32::MIN));
    let limiter = RateLimiter::direct(quota);
    let mut violations = 0u32;
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + config.ping_interval, config.ping_interval);
    let mut last_heard = Instant::now();
    let ending = loop {
        tokio::select! {
            frame = ws.next() => {
                last_heard = Instant::now();
                if matches!(frame, Some(Ok(Message::Text(_) | Message::Binary(_)))) {
                    if limiter.check().is_ok() {
                        violations = 0;
                    } else {
                        violations += 1;
                        if violations > MAX_RATE_VIOLATIONS {
                            close_with(&mut ws, close::POLICY, "rate limit exceeded again and again").await;
                            break Ending::RateLimited;
                        }
                        let refusal = Refusal::new(
                            ErrorCode::RateLimited,
                            format!(
                                "More than {} messages a second (bursts of {}); this one was dropped.",
                                config.rate_per_second, config.rate_burst
                            ),
                        );
                        if refuse(&mut ws, refusal, metrics, endpoint).await.is_err() {
                            break Ending::Broken;
                        }
                        continue;
                    }
                }
                match frame {
                Some(Ok(Message::Text(text))) => {
                    let handled = match endpoint {
                        Endpoint::Main => conn.on_text(&text, config).await,
                        Endpoint::Classic => conn.broadcast(text).await,
                    };
                    if let Err(refusal) = handled
                        && refuse(&mut ws, refusal, metrics, endpoint).await.is_err()
                    {
                        break Ending::Broken;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let refusal = Refusal::new(
                        ErrorCode::BinaryFrame,
                        "Binary frames are not part of the protocol; send JSON as text frames.",
                    );
                    if refuse(&mut ws, refusal, metrics, endpoint).await.is_err() {
                        break Ending::Broken;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => break Ending::ClientClosed,
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                    let refusal = Refusal::new(
                        ErrorCode::TooLarge,
                        format!("A frame of {size} bytes is over this relay's limit of {max_size}; the connection is closed."),
                    );
                    // Best effort: the client is told why before the close frame.
                    let _ = refuse(&mut ws, refusal, metrics, endpoint).await;
                    close_with(&mut ws, close::TOO_LARGE, "frame too large").await;
                    break Ending::TooLarge;
                }
                Some(Err(e)) => {
                    debug!(peer = %conn.id, "read failed: {e}");
                    break Ending::Broken;
                }
                }
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() >= config.idle_timeout {
                    close_with(&mut ws, close::IDLE, "nothing heard within the idle timeout").await;
                    break Ending::Idle;
                }
                // A client that cannot take even a ping within an interval is as good as gone.
                let ping = tokio::time::timeout(config.ping_interval, ws.send(Message::Ping(Default::default())));
                if !matches!(ping.await, Ok(Ok(()))) {
                    break Ending::Broken;
                }
            },
            Some(frame) = inbox.recv() => {
                let write = tokio::time::timeout(config.idle_timeout, write_batch(&mut ws, frame, &mut inbox));
                if !matches!(write.await, Ok(Ok(()))) {
                    break Ending::Broken;
                }
            },
            kick = &mut kicked => {
                if kick == Ok(Kick::Replaced) {
                    close_with(&mut ws, close::REPLACED, "a newer connection resumed this peer").await;
                    break Ending::Replaced;
                }
                close_with(&mut ws, close::TOO_SLOW, "connection fell too far behind").await;
                break Ending::TooSlow;
            },
            _ = shutdown.changed() => {
                close_with(&mut ws, close::GOING_AWAY, "relay shutting down").await;
                break Ending::Shutdown;
            }
        }
    };
    conn.disconnect().await;
    info!(
        conn = serial,
        peer = %conn.id,
        room = conn.room.as_deref().map(str::escape_debug).map(|r| r.to_string()).unwrap_or_default(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        reason = ?ending,
        "connection closed"
    );
}

struct Conn<'a> {
    /// The peer id: the one `token` stands for, or the one a resumed join brought back.
    id: PeerId,
    serial: u64,
    /// What this connection's welcome hands out for coming back later.
    token: Token,
    /// The outbox and kick, until the connection registers with the hub.
    unregistered: Option<(mpsc::Sender<Utf8Bytes>, oneshot::Sender<Kick>)>,
    hub: mpsc::Sender<Command>,
    room: Option<String>,
    /// Outboxes of peers this connection has signalled, which it may now reach directly.
    routes: HashMap<PeerId, mpsc::Sender<Utf8Bytes>>,
    metrics: &'a Metrics,
}

impl Conn<'_> {
    /// Tells the hub this connection exists; false if the relay is stopping.
    async fn register(&mut self, endpoint: Endpoint) -> bool {
        let Some((outbox, kick)) = self.unregistered.take() else { return true };
        let command = Command::Connect { id: self.id.clone(), serial: self.serial, endpoint, outbox, kick };
        self.hub.send(command).await.is_ok()
    }

    /// Tells the hub this connection is gone, if it ever registered.
    async fn disconnect(&self) {
        if self.unregistered.is_none() {
            let _ = self.hub.send(Command::Disconnect { id: self.id.clone(), serial: self.serial }).await;
        }
    }

    fn not_joined() -> Refusal {
        Refusal::new(
            ErrorCode::NotJoined,
            "Send a \"join\" message before signalling; this connection is in no room yet.",
        )
    }

    /// Takes up the id of an earlier connection, before registering. A token that is not
    /// ours, or one sent once joined, is refused.
    fn resume(&mut self, token: &str) -> Result<(), Refusal> {
        if self.unregistered.is_none() {
            return Err(Refusal::new(
                ErrorCode::BadResume,
                "A resume token only counts in a connection's first join; open a new connection to resume.",
            ));
        }
        let token = Token::parse(token).ok_or_else(|| {
            Refusal::new(
                ErrorCode::BadResume,
                "The resume token is not one this relay issues (32 hex digits); join without it to get a new id.",
            )
        })?;
        self.id = token.peer_id();
        self.token = token;
        Ok(())
    }
    /// Puts a classic connection in its room, or says why it cannot be.
    async fn join_classic(&mut self, room: String) -> Result<(), Refusal> {
        placement_delay().await;
        let (done, answer) = oneshot::channel();
        self.room = Some(room.clone());
        let _ = self.hub.send(Command::JoinClassic { id: self.id.clone(), room, done }).await;
        // No answer means the relay is stopping; the shutdown arm ends the connection.
        answer.await.unwrap_or(Ok(()))
    }

    /// Hands a classic frame, unread, to everyone else in the room.
    async fn broadcast(&mut self, frame: Utf8Bytes) -> Result<(), Refusal> {
        let _ = self.hub.send(Command::Broadcast { id: self.id.clone(), frame }).await;
        Ok(())
    }

    /// Sends a signal frame to `to`: straight into its outbox when the hub has already
    /// routed between us, else through the hub, which checks the room and then hands us
    /// the route. A full outbox goes to the hub too, which drops that slow connection.
    async fn forward(&mut self, to: PeerId, frame: Utf8Bytes) {
        let len = frame.len();
        let frame = match self.routes.get(&to) {
            Some(outbox) => match outbox.try_send(frame) {
                Ok(()) => {
                    self.metrics.forwarded(len);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(frame)) => {
                    self.routes.remove(&to);
                    frame
                }
                Err(mpsc::error::TrySendError::Full(frame)) => frame,
            },
            None => frame,
        };
        let (route, learned) = oneshot::channel();
        let command = Command::Forward { id: self.id.clone(), to: to.clone(), frame, route: Some(route) };
        // The hub only goes away when the relay stops; the shutdown arm closes us then.
        if self.hub.send(command).await.is_ok()
            && let Ok(outbox) = learned.await
        {
            self.routes.insert(to, outbox);
        }
    }

    /// Handles one text frame; a refusal is answered to this client alone.
    async fn on_text(&mut self, text: &str, config: &RelayConfig) -> Result<(), Refusal> {
        // Signals are nearly all the traffic: they are checked and forwarded as sent,
        // without building and re-serialising a tree.
        if let Some(signal) = SignalRef::parse(text) {
            if self.unregistered.is_some() {
                return Err(Self::not_joined());
            }
            let frame = signal.forward_from(&self.id);
            self.forward(PeerId(signal.to.into_owned()), frame.into()).await;
            return Ok(());
        }
        let command = match ClientMessage::parse(text)? {
            ClientMessage::Join { room, name, version, secret, resume, token } => {
                admit(config, &room, secret.as_deref(), token.as_deref())?;
                if version != PROTOCOL_VERSION {
                    return Err(Refusal::new(
                        ErrorCode::UnsupportedVersion,
                        format!(
                            "This relay speaks protocol version {PROTOCOL_VERSION}; the client asked for {version}."
                        ),
                    ));
                }
                proto::validate_room(&room)?;
                proto::validate_name(&name)?;
                if let Some(token) = resume {
                    self.resume(&token)?;
                }
                if !self.register(Endpoint::Main).await {
                    return Ok(());
                }
                if self.room.is_none() {
                    self.room = Some(room.clone());
                }
                Command::Join { id: self.id.clone(), room, name, resume: self.token }
            }
            ClientMessage::Signal { to, signal } => {
                if self.unregistered.is_some() {
                    return Err(Self::not_joined());
                }
                let frame = ServerMessage::Signal { from: self.id.clone(), signal }.to_json();
                self.forward(to, frame.into()).await;
                return Ok(());
            }
        };
        // The hub only goes away when the relay stops; the shutdown arm closes us then.
        let _ = self.hub.send(command).await;
        Ok(())
    }
}

/// Whether a join may enter `room`: with the room secret, or a valid join token for the
/// room, when the relay asks for either.
fn admit(config: &RelayConfig, room: &str, secret: Option<&str>, token: Option<&str>) -> Result<(), Refusal> {
    let secret_ok = config
        .room_secret
        .as_deref()
        .is_some_and(|expected| secret.is_some_and(|given| same_secret(given, expected)));
    match (&config.room_secret, &config.token_key) {
        (None, None) => Ok(()),
        _ if secret_ok => Ok(()),
        (Some(_), None) => Err(Refusal::new(
            ErrorCode::Forbidden,
            "This relay admits only clients that know its room secret; ask its operator for it (peertalk --room-secret).",
        )),
        (_, Some(key)) => match token.map(|t| key.check(t, room, crate::token::now())) {
            Some(Ok(())) => Ok(()),
            None => Err(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "This relay admits a room only with a join token for it; ask its operator for one for room {room:?} (peertalk --token)."
                ),
            )),
            Some(Err(TokenRefusal::Expired)) => Err(Refusal::new(
                ErrorCode::TokenExpired,
                "The join token has expired; ask the relay's operator for a new one.",
            )),
            Some(Err(TokenRefusal::Invalid(why))) => Err(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "The join token was refused: {why}. Ask the relay's operator for a token for room {room:?}."
                ),
            )),
        },
    }
}

/// Compares secrets in time that depends only on their lengths, so timing does not tell
/// an attacker how much of a guess was right.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A debug build waits `PEERTALK_SIGNAL_TEST_PLACEMENT_DELAY_MS` before placing a classic
/// connection in its room. Placement always comes a moment after the handshake; stretching
/// that moment makes a test that takes a finished handshake for a placed connection fail
/// every time rather than once under load (`scripts/test --stress` sets it).
#[cfg(debug_assertions)]
async fn placement_delay() {
    let delay = std::env::var("PEERTALK_SIGNAL_TEST_PLACEMENT_DELAY_MS").ok().and_then(|ms| ms.parse().ok());
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[cfg(not(debug_assertions))]
async fn placement_delay() {}

/// Sorts an upgrade by path: `/` speaks the protocol, the classic path the classic
/// format (its room and secret in the query); anything else is a 404. A browser's `Origin`
/// must be on the allowlist when there is one (else 403).
#[allow(clippy::result_large_err)] // the error is tungstenite's callback type
fn check_request(req: &HttpRequest, shared: &Shared) -> Result<Target, ErrorResponse> {
    let config = &shared.config;
    let origin = req.headers().get("origin").map(|o| o.to_str().unwrap_or_default());
    if let Some(origin) = origin
        && !config.allowed_origins.is_empty()
        && !config.allowed_origins.iter().any(|a| a == origin)
    {
        return Err(http_error(
            StatusCode::FORBIDDEN,
            format!("pages from {:?} may not use this relay\n", origin.escape_debug().to_string()),
        ));
    }
    let path = req.uri().path();
    if path == "/" {
        return Ok(Target::Main);
    }
    if config.classic_path.as_deref() != Some(path) {
        let classic = config.classic_path.as_deref().map(|p| format!(" and the classic format at {p:?}"));
        return Err(http_error(
            StatusCode::NOT_FOUND,
            format!(
                "peertalk-signal speaks WebSocket at \"/\"{}, not {path:?}\n",
                classic.unwrap_or_default()
            ),
        ));
    }
    let mut room = None;
    let mut secret = None;
    for (key, value) in form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
        match &*key {
            "room" => room = Some(value.into_owned()),
            "secret" => secret = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(expected) = &config.room_secret
        && !secret.as_deref().is_some_and(|given| same_secret(given, expected))
    {
        shared.metrics.error(ErrorCode::Forbidden);
        return Err(http_error(
            StatusCode::FORBIDDEN,
            "this relay admits only clients that know its room secret; add ?secret=... to the URL\n"
                .to_owned(),
        ));
    }
    let room = room.unwrap_or_else(|| DEFAULT_CLASSIC_ROOM.to_owned());
    if let Err(refusal) = proto::validate_room(&room) {
        shared.metrics.error(refusal.code);
        return Err(http_error(StatusCode::BAD_REQUEST, format!("{}\n", refusal.message)));
    }
    Ok(Target::Classic { room })
}

fn http_error(status: StatusCode, body: String) -> ErrorResponse {
    let mut err = ErrorResponse::new(Some(body));
    *err.status_mut() = status;
    err
}

/// Writes `first` and whatever else is already waiting, with one flush for the lot.
async fn write_batch<S>(
    ws: &mut WebSocketStream<S>,
    first: Utf8Bytes,
    inbox: &mut mpsc::Receiver<Utf8Bytes>,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.feed(Message::Text(first)).await?;
    // Under load, let the tasks that are ready run first: what they add to our outbox
    // goes out in this write. One send per frame was most of the relay's CPU time.
    tokio::task::yield_now().await;
    for _ in 0..OUTBOX_FRAMES {
        match inbox.try_recv() {
            Ok(frame) => ws.feed(Message::Text(frame)).await?,
            Err(_) => break,
        }
    }
    ws.flush().await
}

async fn close_with<S>(ws: &mut WebSocketStream<S>, code: u16, reason: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
    // A peer that vanished cannot be told; the socket is dropped either way.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}
