//! The WebRTC side of one remote peer. This is the only module that uses `webrtc`/`rtc`;
//! everything outside it sees plain [`PeerCommand`]s in and [`PeerEvent`]s out.
//!
//! Each peer gets an actor task that owns its `PeerConnection`. webrtc-rs calls our
//! handler on its driver task, where awaiting anything would stall the connection, so
//! the handler only forwards into a channel. A second task per DataChannel pulls its
//! events (`poll()` must keep being drained, or the driver backs up).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peertalk_signal::proto::{IceCandidate, PeerId, SdpKind, SessionDescription, Signal};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::{RTCIceTransportPolicy, RTCOfferOptions};
use rtc::peer_connection::transport::RTCDtlsRole;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceCandidateType, RTCIceConnectionState, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry, SettingEngineBuilder, StatsSelector,
};

use crate::cli::IceServer;

mod file;
mod identity;
mod media;
mod pake;
mod socket;
pub mod stun;
pub mod turn;

pub use file::{FileChannel, FileMessage, file_id, file_label};
pub use identity::{Identity, IdentityError, default_path as default_identity_path};
pub use media::Media;
pub use pake::Passphrase;

/// The chat channel's label between peertalk clients. A channel with any other label
/// comes from (or is opened for) a peer that is not peertalk, such as a classic page: it
/// carries plain text, with no envelope and no acknowledgement.
pub const CHAT_LABEL: &str = "chat";

/// How often the SCTP send buffer is looked at while plain messages wait to be reported
/// drained; only while some do.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Bytes a DataChannel may hold unsent or unacknowledged before `send` waits: bounds
/// sender memory. 4 MiB keeps a 2 MiB SCTP window full (a 1 GiB file: 3.4-3.7 s with 4 MiB,
/// 3.8-5.3 s with 2 MiB); it costs the chat bulk sender 12 MiB more (21 → 33.5 MiB).
const SEND_BUFFER_LIMIT: usize = 4 * 1024 * 1024;

/// ICE connectivity-check pacing while connecting. The default 200 ms is one of the steps
/// that made a DataChannel take ~600 ms to open on loopback.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// How long an open connection whose path broke may take to come back before the peer
/// counts as unreachable (the user is told then).
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);
/// How long a disconnected path gets to come back by itself before the offerer restarts ICE.
const RESTART_AFTER: Duration = Duration::from_secs(2);
/// Between ICE restarts while the path stays down.
const RESTART_EVERY: Duration = Duration::from_secs(4);
/// ICE restarts that may fail before the offerer replaces the whole connection.
const ICE_RESTARTS: u32 = 2;

/// How long the DTLS handshake may take once ICE has a path before the offerer starts the
/// connection again. Nothing else restarts a connection that never got through: a
/// handshake that gives up (its retransmissions spent on a very lossy path, or the peer's
/// DTLS failing) would leave it failed for good. A healthy handshake needs one round trip
/// per flight plus about 1 s per lost one, well under this. (rtc-dtls 0.21.1 also stalled
/// for good when a server's reply flight was lost; `vendor/rtc-dtls` fixes that.)
const DTLS_STALL: Duration = Duration::from_secs(5);
/// New connections made for stalled handshakes before the stall is left to fail.
const DTLS_STALL_RETRIES: u32 = 3;

/// How long a connected peer in a passphrase room may take to prove the passphrase: a
/// peer started without one never does.
const PAKE_DEADLINE: Duration = Duration::from_secs(10);

/// ICE timing: a path counts as disconnected after 3 s without an answer (default 5 s),
/// so a broken path is noticed and restored sooner, and as failed 10 s later (default 25 s).
const ICE_DISCONNECTED: Duration = Duration::from_secs(3);
const ICE_FAILED: Duration = Duration::from_secs(10);
const ICE_KEEPALIVE: Duration = Duration::from_secs(1);
/// How long a pair with a peer-reflexive remote candidate waits before it may be
/// nominated (webrtc-rs's default is 1 s). A browser's checks often arrive before its
/// candidates do, and a browser on a LAN hides its host address behind an mDNS name we do
/// not resolve, so its path is peer-reflexive: the default made every browser connection
/// take over a second. 100 ms still lets a host candidate trickled through a nearby relay
/// arrive first.
const ICE_PRFLX_WAIT: Duration = Duration::from_millis(100);
/// Connectivity checks per candidate pair: at ICE_CHECK_INTERVAL that is 2 s, enough for a
/// lossy path with a long round trip (the default 7 give up after 140 ms).
const ICE_CHECKS_PER_PAIR: u16 = 100;

/// How long closing waits, on a working path, for queued messages (acknowledgements above
/// all) to be acknowledged by the peer's SCTP before the connection is torn down. SCTP
/// retransmits after at least 1 s, doubling: 10 s covers three losses of the same packet,
/// which a lossy link (10%) needs now and then; 2 s was too short there.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(10);
/// How long closing waits for the reader to hand over the last messages.
const CLOSE_READER: Duration = Duration::from_secs(2);

/// What the rest of the client asks of a peer connection.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerCommand {
    /// Negotiation data that arrived from this peer through the relay.
    Signal(Signal),
    /// A ready-encoded message for the chat channel.
    Send(Arc<str>),
    /// A plain text message for a peer that is not peertalk; reported `Drained(id)` once
    /// the peer's SCTP stack has acknowledged every byte of it.
    SendPlain { id: u64, text: Arc<str> },
    /// Send our audio to this peer: add the track and renegotiate.
    AddAudio,
    /// Stop sending our audio: remove the track and renegotiate. The chat channel stays.
    RemoveAudio,
    /// Open a channel for our file transfer `id`; it is reported as [`PeerEvent::File`].
    OpenFile { id: u64 },
    /// Flush what is queued, then close.
    Close,
}

/// What a peer connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// Negotiation data to hand to this peer through the relay.
    Signal(Signal),
    /// The connection's overall state changed.
    State(LinkState),
    /// The network path chosen once connected.
    Path(Path),
    /// The chat channel is open: messages can flow. `plain` when its label is not
    /// [`CHAT_LABEL`]: the peer is not peertalk and speaks plain text.
    Open { plain: bool },
    /// A text message (an envelope) on the chat channel.
    Message(String),
    /// A text message on a plain channel, as the peer sent it, and when it arrived (ms
    /// since the epoch).
    PlainText { text: String, at_ms: u64 },
    /// A binary message on a plain channel: only its length is shown.
    PlainBinary { len: usize, at_ms: u64 },
    /// Plain message `id` left our SCTP send buffer: the peer's SCTP acknowledged it. That
    /// is as far as a peer that sends no acknowledgements can be followed.
    Drained(u64),
    /// Our audio track is negotiated and packets go out (true), or it was removed (false).
    SendingAudio(bool),
    /// The peer's audio packets started (true) or stopped for a second (false).
    ReceivingAudio(bool),
    /// A file transfer channel: one we asked for with [`PeerCommand::OpenFile`], or one
    /// the peer opened to send us a file.
    File(FileChannel),
    /// The SHA-256 fingerprint (`AB:CD:…`) of the certificate the peer's description
    /// announces: DTLS accepts only that certificate. Reported when it is first seen or
    /// changes.
    Fingerprint(String),
    /// In a passphrase room, the peer did not prove it knows the passphrase, or vouched for
    /// a certificate other than the one in its description, and why. `Failed` and `Closed`
    /// follow.
    PassphraseMismatch(String),
    /// The connection is over and nothing more will come from it. Sent exactly once, as
    /// the last event, after every message the channel delivered.
    Closed,
    /// Setting up or running the connection failed.
    Failed(String),
}

/// A peer connection's state, as `RTCPeerConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::New => "new",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        })
    }
}

/// The selected ICE candidate pair, as a user wants to see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// `host`, `srflx`, `prflx` or `relay`: how our end was reached.
    pub local: String,
    /// The same for the remote end.
    pub remote: String,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// ICE round trip time in milliseconds, when measured.
    pub rtt_ms: Option<f64>,
}

impl Path {
    /// The path's kind in one word: `relay` if either end goes through TURN, else the
    /// most indirect of the two.
    #[must_use]
    pub fn kind(&self) -> &str {
        let rank = |k: &str| match k {
            "relay" => 3,
            "srflx" | "prflx" => 2,
            _ => 1,
        };
        if rank(&self.local) >= rank(&self.remote) { &self.local } else { &self.remote }
    }
}

/// Network settings shared by every peer connection.
#[derive(Debug, Clone)]
pub struct NetOptions {
    pub ice_servers: Vec<IceServer>,
    /// Gather and use relay candidates only (ICE transport policy "relay").
    pub relay_only: bool,
    pub bind: Vec<SocketAddr>,
    /// Our lasting DTLS certificate; without one, each connection makes its own.
    pub identity: Option<Identity>,
    /// The room's passphrase: no channel is used until the peer proved it knows it.
    pub passphrase: Option<Passphrase>,
}

/// The handle the session keeps for one peer.
#[derive(Debug)]
pub struct PeerHandle {
    commands: mpsc::UnboundedSender<PeerCommand>,
    task: tokio::task::JoinHandle<()>,
}

impl PeerHandle {
    /// Queues a command; a peer whose task has ended ignores it.
    pub fn command(&self, command: PeerCommand) {
        let _ = self.commands.send(command);
    }

    /// Asks the peer to close and waits (bounded by the caller) for it to finish.
    pub async fn close(self) {
        let _ = self.commands.send(PeerCommand::Close);
        let _ = self.task.await;
    }
}

/// Starts the connection to `remote`. If `offer`, we create the chat channel, labelled
/// `label`, and the offer; otherwise we wait for the peer's offer and take its first
/// channel, whatever its label.
pub fn spawn(
    remote: PeerId,
    offer: bool,
    label: Arc<str>,
    net: Arc<NetOptions>,
    media: Media,
    events: mpsc::Sender<(PeerId, PeerEvent)>,
) -> PeerHandle {
    let (commands, inbox) = mpsc::unbounded_channel();
    let out = Outbox { remote: remote.clone(), events };
    let span = tracing::debug_span!("peer", peer = %remote);
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(e) = run(offer, &label, &net, &media, inbox, &out).await {
                warn!("peer connection failed: {e}");
                out.emit(PeerEvent::Failed(e)).await;
            }
            out.emit(PeerEvent::Closed).await;
        },
        span,
    ));
    PeerHandle { commands, task }
}

/// Sends events to the session, tagged with the peer they concern.
#[derive(Clone)]
struct Outbox {
    remote: PeerId,
    events: mpsc::Sender<(PeerId, PeerEvent)>,
}

impl Outbox {
    async fn emit(&self, event: PeerEvent) {
        let _ = self.events.send((self.remote.clone(), event)).await;
    }
}

/// What the webrtc handler forwards from the driver task.
enum Callback {
    Candidate(RTCIceCandidateInit),
    State(RTCPeerConnectionState),
    /// ICE found a working path; DTLS runs over it next.
    IceConnected,
    DataChannel(Arc<dyn DataChannel>),
    Track(Arc<dyn TrackRemote>),
}

struct Handler(mpsc::UnboundedSender<Callback>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.0.send(Callback::Candidate(init));
            }
            Err(e) => warn!("could not encode a local ICE candidate: {e}"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(Callback::State(state));
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if state == RTCIceConnectionState::Connected {
            let _ = self.0.send(Callback::IceConnected);
        }
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.0.send(Callback::DataChannel(channel));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.0.send(Callback::Track(track));
    }
}

/// How a connection's run ended.
enum Ended {
    /// Asked to close, or the channel closed: the link is over.
    Closed,
    /// The connection is beyond repair but the peer may be reachable: build a new one.
    /// An answerer carries the offer that asked for it.
    Replace(Option<Signal>),
}

/// What survives from one connection to the one that replaces it.
#[derive(Default)]
struct Recovery {
    /// A connection reached `connected` at least once: only then is a broken one restored.
    connected_once: bool,
    /// When the path broke, while it is broken.
    broken_since: Option<Instant>,
    /// The user wants our audio on this peer's connection.
    audio: bool,
    /// Connections replaced because their DTLS handshake stalled (see [`DTLS_STALL`]).
    dtls_stalls: u32,
    /// The passphrase exchange with this peer, in a passphrase room.
    pake: Option<pake::Pake>,
}

async fn run(
    offer: bool,
    label: &str,
    net: &NetOptions,
    media: &Media,
    mut inbox: mpsc::UnboundedReceiver<PeerCommand>,
    out: &Outbox,
) -> Result<(), String> {
    let mut recovery = Recovery::default();
    if let Some(secret) = &net.passphrase {
        let (pake, message) = pake::Pake::start(secret);
        recovery.pake = Some(pake);
        out.emit(PeerEvent::Signal(Signal::Pake(message))).await;
    }
    let mut first_signal = None;
    loop {
        let (callbacks_tx, mut callbacks) = mpsc::unbounded_channel();
        let pc: Arc<dyn PeerConnection> = Arc::new(build(net, Handler(callbacks_tx)).await?);
        let mut session = Session {
            pc,
            media: media.clone(),
            polite: !offer,
            making_offer: false,
            needs_negotiation: false,
            outgoing: None,
            announced_sending: false,
            remote_tracks: Vec::new(),
            channel: None,
            reader: None,
            pending: Vec::new(),
            have_remote: false,
            remote_session: None,
            link: LinkState::New,
            dtls_done: false,
            drains: Drains::default(),
            remote_fingerprint: None,
            trusted: tokio::sync::watch::channel(net.passphrase.is_none()).0,
        };
        // Whatever happens, the connection is closed: a dropped one keeps its driver running.
        let result = session
            .drive(offer, label, &mut inbox, &mut callbacks, out, first_signal.take(), &mut recovery)
            .await;
        session.close(&mut callbacks).await;
        match result? {
            Ended::Closed => return Ok(()),
            Ended::Replace(signal) => {
                debug!("replacing the connection");
                first_signal = signal;
            }
        }
    }
}

async fn build(net: &NetOptions, handler: Handler) -> Result<impl PeerConnection, String> {
    let ice_servers = net
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: vec![s.url.clone()],
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let (media_engine, interceptors) = media::media_engine()?;
    // The SCTP receive window is sized to the UDP buffer the kernel grants (see socket.rs).
    let buffers = socket::Buffers::get();
    debug!(granted = buffers.granted, window = buffers.window, "UDP receive buffer and SCTP window");
    let policy = if net.relay_only { RTCIceTransportPolicy::Relay } else { RTCIceTransportPolicy::All };
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .with_ice_transport_policy(policy)
        .with_certificates(net.identity.iter().map(Identity::certificate).collect())
        .build();
    // mDNS off: it would multicast on the LAN, and our candidates are plain addresses.
    // The answerer takes the DTLS server role, so the offerer, which creates the chat
    // channel, is the side that starts SCTP.
    let settings = SettingEngineBuilder::new()
        .with_answering_dtls_role(RTCDtlsRole::Server)
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_sctp_max_receive_buffer_size(buffers.window)
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_CHECKS_PER_PAIR))
        .with_ice_timeouts(Some(ICE_DISCONNECTED), Some(ICE_FAILED), Some(ICE_KEEPALIVE))
        .with_prflx_acceptance_min_wait(Some(ICE_PRFLX_WAIT))
        // With --relay-only every pair is relayed, so one is nominated as soon as it works:
        // webrtc-rs otherwise waits 2 s in case a direct pair succeeds (a TURN-only
        // connection took 2.4-2.6 s to open on loopback). Otherwise the wait stays.
        .with_relay_acceptance_min_wait(net.relay_only.then_some(Duration::ZERO))
        .build();
    PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_media_engine(media_engine)
        .with_interceptor_registry(interceptors)
        .with_handler(Arc::new(handler))
        .with_runtime(Arc::new(socket::BufferedRuntime::new(buffers)))
        .with_udp_addrs(net.bind.iter().map(ToString::to_string).collect())
        .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
        .build()
        .await
        .map_err(|e| format!("could not set up WebRTC on {:?}: {e}", net.bind))
}

struct Session {
    pc: Arc<dyn PeerConnection>,
    media: Media,
    /// Either side may offer again (to add or remove audio). When both do at once, the
    /// polite one (the first answerer) rolls its offer back and answers the other.
    polite: bool,
    /// Our offer awaits its answer.
    making_offer: bool,
    /// Something changed (a track) that needs an offer once the current exchange is done.
    needs_negotiation: bool,
    /// Our audio track, while the user wants it.
    outgoing: Option<media::Outgoing>,
    /// `SendingAudio(true)` was reported for the current track.
    announced_sending: bool,
    /// Tasks reading the peer's audio tracks.
    remote_tracks: Vec<tokio::task::JoinHandle<()>>,
    channel: Option<Arc<dyn DataChannel>>,
    /// The task draining the chat channel; it ends when the channel closes.
    reader: Option<tokio::task::JoinHandle<()>>,
    /// Candidates that arrived before the remote description; applying them earlier fails.
    pending: Vec<RTCIceCandidateInit>,
    have_remote: bool,
    /// The session id (`o=` line) of the peer's descriptions. An offer with another one
    /// comes from a new connection on the peer's side, which replaces this one.
    remote_session: Option<String>,
    /// The connection's last reported state: closing waits for the peer only on a working path.
    link: LinkState,
    /// This connection reached `connected` once, so its DTLS handshake is over; later ICE
    /// restarts reuse it.
    dtls_done: bool,
    /// Plain messages not yet reported drained.
    drains: Drains,
    /// The certificate fingerprint in the peer's last description, once reported.
    remote_fingerprint: Option<String>,
    /// The peer may be talked to: always, or in a passphrase room once it proved the
    /// passphrase for this connection's certificate. The chat channel's reader holds
    /// back its opening (and so everything after) until then.
    trusted: tokio::sync::watch::Sender<bool>,
}

/// Follows plain messages through the SCTP send buffer. Bytes leave it in the order they
/// were sent, so a message has drained once as many bytes have been released as were
/// sent up to its end.
#[derive(Default)]
struct Drains {
    /// Bytes handed to the channel so far.
    sent: u64,
    /// Message ids, with `sent` just after each.
    waiting: VecDeque<(u64, u64)>,
}

impl Drains {
    fn push(&mut self, id: u64, len: usize) {
        self.sent += len as u64;
        self.waiting.push_back((id, self.sent));
    }

    /// The ids drained, given the bytes the channel still holds.
    fn released(&mut self, outstanding: usize) -> Vec<u64> {
        let released = self.sent.saturating_sub(outstanding as u64);
        let mut done = Vec::new();
        while let Some(&(id, end)) = self.waiting.front()
            && end <= released
        {
            done.push(id);
            self.waiting.pop_front();
        }
        done
    }
}

impl Session {
    /// Negotiates and then serves the connection until asked to close, the channel
    /// closes, or something fails.
    ///
    /// When the path of a connection that was up breaks, the offerer restarts ICE through
    /// the relay, then replaces the connection; the answerer follows the offers. Either
    /// gives up after [`RECOVERY_LIMIT`].
    #[allow(clippy::too_many_arguments)] // the connection's whole context, passed once
    async fn drive(
        &mut self,
        offer: bool,
        label: &str,
        inbox: &mut mpsc::UnboundedReceiver<PeerCommand>,
        callbacks: &mut mpsc::UnboundedReceiver<Callback>,
        out: &Outbox,
        first_signal: Option<Signal>,
        recovery: &mut Recovery,
    ) -> Result<Ended, String> {
        let started = Instant::now();
        let mut ice_restarts = 0;
        let mut restart_at: Option<tokio::time::Instant> = None;
        let mut dtls_stall_at: Option<tokio::time::Instant> = None;
        let mut pake_deadline: Option<tokio::time::Instant> = None;
        let mut drain_check = tokio::time::interval(DRAIN_POLL);
        if recovery.audio {
            // In the first offer when we make it; otherwise offered once that exchange is done.
            self.outgoing = Some(media::Outgoing::add(self.pc.as_ref(), &self.media).await?);
            self.needs_negotiation = !offer;
        }
        if let Some(signal) = first_signal {
            self.apply(signal, out).await?;
        }
        if offer {
            let channel = self
                .pc
                .create_data_channel(label, Some(RTCDataChannelInit::default()))
                .await
                .map_err(|e| format!("could not create the chat channel: {e}"))?;
            self.adopt(channel, label, out);
            self.offer(None, out).await?;
        }
        self.progress_pake(recovery, out).await?;
        loop {
            let give_up_at =
                recovery.broken_since.map(|t| tokio::time::Instant::from_std(t + RECOVERY_LIMIT));
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(PeerCommand::Signal(Signal::Pake(message))) => {
                        if let Some(pake) = &mut recovery.pake {
                            pake.receive(message)?;
                        }
                        self.progress_pake(recovery, out).await?;
                    }
                    Some(PeerCommand::Signal(signal)) => {
                        if !offer && self.is_new_session(&signal) {
                            return Ok(Ended::Replace(Some(signal)));
                        }
                        self.apply(signal, out).await?;
                        self.progress_pake(recovery, out).await?;
                    }
                    Some(PeerCommand::Send(payload)) => self.send(&payload).await,
                    Some(PeerCommand::SendPlain { id, text }) => {
                        self.send(&text).await;
                        self.drains.push(id, text.len());
                    }
                    Some(PeerCommand::AddAudio) => {
                        recovery.audio = true;
                        if self.outgoing.is_none() {
                            self.outgoing = Some(media::Outgoing::add(self.pc.as_ref(), &self.media).await?);
                            self.negotiate(out).await?;
                        }
                    }
                    Some(PeerCommand::RemoveAudio) => {
                        recovery.audio = false;
                        if let Some(track) = self.outgoing.take() {
                            track.remove(self.pc.as_ref()).await;
                            if std::mem::take(&mut self.announced_sending) {
                                out.emit(PeerEvent::SendingAudio(false)).await;
                            }
                            self.negotiate(out).await?;
                        }
                    }
                    Some(PeerCommand::OpenFile { id }) => {
                        let channel = self
                            .pc
                            .create_data_channel(&file_label(id), Some(RTCDataChannelInit::default()))
                            .await
                            .map_err(|e| format!("could not create a file transfer channel: {e}"))?;
                        out.emit(PeerEvent::File(FileChannel::new(channel, id, true))).await;
                    }
                    Some(PeerCommand::Close) | None => return Ok(Ended::Closed),
                },
                () = sleep_until(restart_at) => {
                    if ice_restarts >= ICE_RESTARTS {
                        return Ok(Ended::Replace(None));
                    }
                    ice_restarts += 1;
                    debug!(attempt = ice_restarts, "restarting ICE");
                    // Even over an unanswered offer (its answer may have been lost with the
                    // relay): the new one carries the current tracks too.
                    self.offer(Some(RTCOfferOptions { ice_restart: true }), out).await?;
                    restart_at = Some(tokio::time::Instant::now() + RESTART_EVERY);
                }
                () = sleep_until(dtls_stall_at) => {
                    dtls_stall_at = None;
                    if recovery.dtls_stalls < DTLS_STALL_RETRIES {
                        recovery.dtls_stalls += 1;
                        warn!(
                            attempt = recovery.dtls_stalls,
                            "the DTLS handshake stalled {} s after ICE found a path; starting the connection again",
                            DTLS_STALL.as_secs()
                        );
                        return Ok(Ended::Replace(None));
                    }
                }
                _ = drain_check.tick(), if !self.drains.waiting.is_empty() => {
                    if let Some(channel) = &self.channel
                        && let Ok(outstanding) = channel.outstanding_bytes().await
                    {
                        for id in self.drains.released(outstanding) {
                            out.emit(PeerEvent::Drained(id)).await;
                        }
                    }
                }
                () = sleep_until(pake_deadline), if !*self.trusted.borrow() => {
                    let why = format!(
                        "it did not prove the room's passphrase within {} s of connecting (was it started without --passphrase, or with another?)",
                        PAKE_DEADLINE.as_secs()
                    );
                    out.emit(PeerEvent::PassphraseMismatch(why.clone())).await;
                    return Err(why);
                }
                Some(frame) = next_frame(&mut self.outgoing) => {
                    if let Some(track) = &mut self.outgoing {
                        track.write(frame).await;
                    }
                }
                () = sleep_until(give_up_at) => {
                    return Err(format!(
                        "no path to the peer came back within {} s",
                        RECOVERY_LIMIT.as_secs()
                    ));
                }
                Some(callback) = callbacks.recv() => match callback {
                    Callback::Candidate(init) => {
                        out.emit(PeerEvent::Signal(Signal::Candidate(candidate_to_wire(init)))).await;
                    }
                    Callback::State(state) => {
                        debug!(elapsed_ms = started.elapsed().as_millis(), "connection {state}");
                        let state = link_state(state);
                        self.link = state;
                        out.emit(PeerEvent::State(state)).await;
                        match state {
                            LinkState::Connected => {
                                if recovery.pake.is_some() && !*self.trusted.borrow() {
                                    pake_deadline.get_or_insert_with(|| tokio::time::Instant::now() + PAKE_DEADLINE);
                                }
                                recovery.connected_once = true;
                                recovery.broken_since = None;
                                recovery.dtls_stalls = 0;
                                self.dtls_done = true;
                                restart_at = None;
                                dtls_stall_at = None;
                                ice_restarts = 0;
                                if let Some(path) = selected_path(self.pc.as_ref()).await {
                                    out.emit(PeerEvent::Path(path)).await;
                                }
                                self.announce_sending(out).await;
                            }
                            LinkState::Disconnected | LinkState::Failed if recovery.connected_once => {
                                recovery.broken_since.get_or_insert_with(Instant::now);
                                // A failed ICE agent will not come back by itself.
                                let wait = if state == LinkState::Failed { Duration::ZERO } else { RESTART_AFTER };
                                let at = tokio::time::Instant::now() + wait;
                                if offer && restart_at.is_none_or(|t| at < t) {
                                    restart_at = Some(at);
                                }
                            }
                            _ => {}
                        }
                    }
                    // Only the offerer starts again: the answerer follows its new offer. A
                    // connection that was ever connected has its DTLS done for good.
                    Callback::IceConnected if offer && !self.dtls_done => {
                        dtls_stall_at.get_or_insert_with(|| tokio::time::Instant::now() + DTLS_STALL);
                    }
                    Callback::IceConnected => {}
                    Callback::DataChannel(channel) => self.adopt_remote(channel, out).await,
                    Callback::Track(track) => {
                        let reader = media::read_remote(track, out.remote.clone(), self.media.clone(), out.clone());
                        self.remote_tracks.push(tokio::spawn(reader));
                    }
                },
                () = reader_done(&mut self.reader), if recovery.broken_since.is_none() => return Ok(Ended::Closed),
            }
        }
    }

    /// In a passphrase room: sends our confirmation once the key is agreed and our
    /// certificate is in a description, and trusts the peer once it vouched for the
    /// certificate in its own. A mismatch ends the connection.
    async fn progress_pake(&mut self, recovery: &mut Recovery, out: &Outbox) -> Result<(), String> {
        let Some(pake) = &mut recovery.pake else { return Ok(()) };
        let local = self.pc.local_description().await.and_then(|d| fingerprint(&d.sdp));
        if let Some(confirm) = local.and_then(|local| pake.confirm(&local)) {
            out.emit(PeerEvent::Signal(Signal::Pake(confirm))).await;
        }
        match pake.check(self.remote_fingerprint.as_deref()) {
            pake::Check::Waiting => Ok(()),
            pake::Check::Trusted => {
                if !*self.trusted.borrow() {
                    debug!("the peer proved the room's passphrase");
                    self.trusted.send_replace(true);
                }
                Ok(())
            }
            pake::Check::Mismatch => {
                out.emit(PeerEvent::PassphraseMismatch(pake::MISMATCH.to_owned())).await;
                Err(pake::MISMATCH.to_owned())
            }
        }
    }

    /// Whether `signal` is an offer from a new connection on the peer's side.
    fn is_new_session(&self, signal: &Signal) -> bool {
        let Signal::Description(desc) = signal else { return false };
        desc.kind == SdpKind::Offer
            && self.remote_session.is_some()
            && self.remote_session.as_deref() != session_id(&desc.sdp)
    }

    /// Makes an offer and sends it. With `ice_restart`, it offers new ICE credentials over
    /// the same connection: the DTLS and SCTP state, and whatever SCTP still has to
    /// deliver, carry on over the new path.
    async fn offer(&mut self, options: Option<RTCOfferOptions>, out: &Outbox) -> Result<(), String> {
        let offer =
            self.pc.create_offer(options).await.map_err(|e| format!("could not create an offer: {e}"))?;
        self.pc.set_local_description(offer).await.map_err(|e| format!("could not apply our offer: {e}"))?;
        self.making_offer = true;
        self.needs_negotiation = false;
        self.send_local_description(out).await
    }

    /// Offers the current tracks now, or once the exchange under way is done.
    async fn negotiate(&mut self, out: &Outbox) -> Result<(), String> {
        if self.making_offer || !self.have_remote {
            self.needs_negotiation = true;
            return Ok(());
        }
        self.offer(None, out).await
    }

    /// Reports our track as sending once it is negotiated and the connection is up.
    async fn announce_sending(&mut self, out: &Outbox) {
        if self.announced_sending || self.link != LinkState::Connected {
            return;
        }
        if let Some(track) = &mut self.outgoing
            && track.ready().await
        {
            self.announced_sending = true;
            out.emit(PeerEvent::SendingAudio(true)).await;
        }
    }

    /// Takes the chat channel and starts reading it; `label` says what it carries.
    fn adopt(&mut self, channel: Arc<dyn DataChannel>, label: &str, out: &Outbox) {
        self.channel = Some(channel.clone());
        let trusted = self.trusted.subscribe();
        self.reader = Some(tokio::spawn(read_channel(channel, label != CHAT_LABEL, trusted, out.clone())));
    }

    /// Takes the first channel the offerer opened as the chat channel, whatever its label
    /// (a page names its own), and hands on file transfer channels; others are closed.
    async fn adopt_remote(&mut self, channel: Arc<dyn DataChannel>, out: &Outbox) {
        let label = channel.label().await.unwrap_or_default();
        if let Some(id) = file_id(&label) {
            out.emit(PeerEvent::File(FileChannel::new(channel, id, false))).await;
        } else if self.channel.is_none() {
            debug!(label = %label.escape_debug(), "the peer opened the chat channel");
            self.adopt(channel, &label, out);
        } else {
            warn!(label = %label.escape_debug(), "closing an unexpected data channel");
            let _ = channel.close().await;
        }
    }

    async fn apply(&mut self, signal: Signal, out: &Outbox) -> Result<(), String> {
        match signal {
            Signal::Description(desc) => {
                let is_offer = desc.kind == SdpKind::Offer;
                if is_offer && self.making_offer {
                    if !self.polite {
                        debug!("both sides offered at once; ours stands");
                        return Ok(());
                    }
                    debug!("both sides offered at once; taking theirs, ours follows");
                    let rollback = RTCSessionDescription::rollback(None)
                        .map_err(|e| format!("could not roll back our offer: {e}"))?;
                    self.pc
                        .set_local_description(rollback)
                        .await
                        .map_err(|e| format!("could not roll back our offer: {e}"))?;
                    self.making_offer = false;
                    self.needs_negotiation = true;
                }
                self.remote_session = session_id(&desc.sdp).map(str::to_owned);
                if let Some(fingerprint) = fingerprint(&desc.sdp)
                    && self.remote_fingerprint.as_deref() != Some(fingerprint.as_str())
                {
                    self.remote_fingerprint = Some(fingerprint.clone());
                    out.emit(PeerEvent::Fingerprint(fingerprint)).await;
                }
                let desc = description_from_wire(desc)?;
                self.pc
                    .set_remote_description(desc)
                    .await
                    .map_err(|e| format!("the peer's session description was refused: {e}"))?;
                self.have_remote = true;
                for init in std::mem::take(&mut self.pending) {
                    self.add_candidate(init).await;
                }
                if is_offer {
                    let answer = self
                        .pc
                        .create_answer(None)
                        .await
                        .map_err(|e| format!("could not create an answer: {e}"))?;
                    self.pc
                        .set_local_description(answer)
                        .await
                        .map_err(|e| format!("could not apply our answer: {e}"))?;
                    self.send_local_description(out).await?;
                } else {
                    self.making_offer = false;
                }
                self.announce_sending(out).await;
                if self.needs_negotiation {
                    self.negotiate(out).await?;
                }
            }
            // Taken by the drive loop, with the exchange that outlives connections.
            Signal::Pake(_) => {}
            Signal::Candidate(candidate) => {
                let init = candidate_from_wire(candidate);
                if self.have_remote {
                    self.add_candidate(init).await;
                } else {
                    self.pending.push(init);
                }
            }
        }
        Ok(())
    }

    /// A bad candidate costs one path, not the connection: log it and go on.
    async fn add_candidate(&self, init: RTCIceCandidateInit) {
        if let Err(e) = self.pc.add_ice_candidate(init).await {
            warn!("ignoring a remote ICE candidate: {e}");
        }
    }

    async fn send_local_description(&self, out: &Outbox) -> Result<(), String> {
        let desc = self.pc.local_description().await.ok_or("no local description after setting one")?;
        out.emit(PeerEvent::Signal(Signal::Description(description_to_wire(desc)))).await;
        Ok(())
    }

    async fn send(&mut self, payload: &str) {
        let Some(channel) = &self.channel else { return };
        if let Err(e) = channel.send_text(payload).await {
            // The reader task reports the close; the app accounts for what went undelivered.
            debug!("send failed: {e}");
        }
    }

    /// Lets queued messages drain (bounded, and only over a working path), closes the
    /// channel and the connection, and waits for the reader to hand over the last messages.
    async fn close(mut self, callbacks: &mut mpsc::UnboundedReceiver<Callback>) {
        if let Some(channel) = &self.channel {
            let deadline = Instant::now() + CLOSE_FLUSH;
            while self.link == LinkState::Connected
                && Instant::now() < deadline
                && channel.outstanding_bytes().await.unwrap_or(0) > 0
            {
                // Watch the state meanwhile: a path that breaks ends the wait.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(5)) => {}
                    Some(callback) = callbacks.recv() => {
                        if let Callback::State(state) = callback {
                            self.link = link_state(state);
                        }
                    }
                }
            }
            let _ = channel.close().await;
        }
        if let Err(e) = self.pc.close().await {
            debug!("close failed: {e}");
        }
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(CLOSE_READER, reader).await;
        }
        for track in self.remote_tracks.drain(..) {
            track.abort();
        }
    }
}

/// Completes when the chat channel's reader has finished (the channel closed).
async fn reader_done(reader: &mut Option<tokio::task::JoinHandle<()>>) {
    match reader {
        Some(task) => {
            let _ = task.await;
            *reader = None;
        }
        None => std::future::pending().await,
    }
}

/// Our next audio packet, while we send audio.
async fn next_frame(outgoing: &mut Option<media::Outgoing>) -> Option<crate::audio::OpusFrame> {
    match outgoing {
        Some(track) => track.next_frame().await,
        None => std::future::pending().await,
    }
}

async fn read_channel(
    channel: Arc<dyn DataChannel>,
    plain: bool,
    mut trusted: tokio::sync::watch::Receiver<bool>,
    out: Outbox,
) {
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                debug!("chat channel open");
                // In a passphrase room nothing is said or taken before the peer proved the
                // passphrase; what it sends meanwhile waits in the channel.
                if trusted.wait_for(|t| *t).await.is_err() {
                    break;
                }
                out.emit(PeerEvent::Open { plain }).await;
            }
            DataChannelEvent::OnMessage(msg) if plain => {
                let at_ms = crate::session::now_ms();
                let len = msg.data.len();
                let event = match String::from_utf8(Vec::from(msg.data)) {
                    Ok(text) if msg.is_string => PeerEvent::PlainText { text, at_ms },
                    _ => PeerEvent::PlainBinary { len, at_ms },
                };
                out.emit(event).await;
            }
            // Takes the message's buffer rather than copying it: a bulk transfer's 16 KiB
            // messages each cost a copy otherwise.
            DataChannelEvent::OnMessage(msg) => match String::from_utf8(Vec::from(msg.data)) {
                Ok(text) => out.emit(PeerEvent::Message(text)).await,
                Err(_) => warn!("ignoring a chat message that is not UTF-8 text"),
            },
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
}

/// The SHA-256 certificate fingerprint an SDP announces (`a=fingerprint:sha-256 AB:…`),
/// upper case.
fn fingerprint(sdp: &str) -> Option<String> {
    sdp.lines().find_map(|line| {
        let value = line.trim().strip_prefix("a=fingerprint:")?;
        let (algorithm, hex) = value.split_once(' ')?;
        algorithm.eq_ignore_ascii_case("sha-256").then(|| hex.trim().to_uppercase())
    })
}

/// The session id of an SDP: the second field of its `o=` line.
fn session_id(sdp: &str) -> Option<&str> {
    sdp.lines().find_map(|line| line.strip_prefix("o="))?.split_whitespace().nth(1)
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn link_state(state: RTCPeerConnectionState) -> LinkState {
    match state {
        RTCPeerConnectionState::Connecting => LinkState::Connecting,
        RTCPeerConnectionState::Connected => LinkState::Connected,
        RTCPeerConnectionState::Disconnected => LinkState::Disconnected,
        RTCPeerConnectionState::Failed => LinkState::Failed,
        RTCPeerConnectionState::Closed => LinkState::Closed,
        _ => LinkState::New,
    }
}

/// Reads the selected candidate pair from the stats report.
async fn selected_path(pc: &dyn PeerConnection) -> Option<Path> {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let pair_id = &report.transport()?.selected_candidate_pair_id;
    let RTCStatsReportEntry::IceCandidatePair(pair) = report.get(pair_id)? else { return None };
    // The pair names candidates by their own id; the report files them under a prefixed
    // one ("RTCLocalIceCandidate_<id>").
    let kind = |id: &str| {
        report.iter().find_map(|entry| match entry {
            RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c)
                if c.stats.id.ends_with(id) =>
            {
                Some((candidate_kind(c.candidate_type), c.protocol.clone()))
            }
            _ => None,
        })
    };
    let (local, protocol) = kind(&pair.local_candidate_id)?;
    // The report lists only the remote candidates that were signalled; one learned from
    // the peer's own checks (a browser's, often) is peer-reflexive by definition.
    let remote = kind(&pair.remote_candidate_id).map_or_else(|| "prflx".to_owned(), |(kind, _)| kind);
    let rtt = pair.current_round_trip_time;
    Some(Path { local, remote, protocol, rtt_ms: (rtt > 0.0).then_some(rtt * 1000.0) })
}

fn candidate_kind(kind: RTCIceCandidateType) -> String {
    match kind {
        RTCIceCandidateType::Host => "host",
        RTCIceCandidateType::Srflx => "srflx",
        RTCIceCandidateType::Prflx => "prflx",
        RTCIceCandidateType::Relay => "relay",
        _ => "unknown",
    }
    .to_owned()
}

fn description_to_wire(desc: RTCSessionDescription) -> SessionDescription {
    use webrtc::peer_connection::RTCSdpType;
    let kind = match desc.sdp_type {
        RTCSdpType::Answer => SdpKind::Answer,
        RTCSdpType::Pranswer => SdpKind::Pranswer,
        RTCSdpType::Rollback => SdpKind::Rollback,
        _ => SdpKind::Offer,
    };
    SessionDescription { kind, sdp: desc.sdp }
}

fn description_from_wire(desc: SessionDescription) -> Result<RTCSessionDescription, String> {
    let parsed = match desc.kind {
        SdpKind::Offer => RTCSessionDescription::offer(desc.sdp),
        SdpKind::Answer => RTCSessionDescription::answer(desc.sdp),
        SdpKind::Pranswer => RTCSessionDescription::pranswer(desc.sdp),
        SdpKind::Rollback => return Err("the peer sent a rollback, which peertalk does not use".to_owned()),
    };
    parsed.map_err(|e| format!("the peer's session description does not parse: {e}"))
}

fn candidate_to_wire(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        sdp_mid: init.sdp_mid,
        sdp_m_line_index: init.sdp_mline_index,
        username_fragment: init.username_fragment,
    }
}

fn candidate_from_wire(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::Drains;

    #[test]
    fn a_plain_message_drains_once_every_byte_up_to_its_end_has_left_the_buffer() {
        let mut drains = Drains::default();
        drains.push(1, 10);
        drains.push(2, 5);
        assert!(drains.released(15).is_empty(), "nothing has left yet");
        assert!(drains.released(6).is_empty(), "9 of message 1's 10 bytes have left");
        assert_eq!(drains.released(5), [1]);
        drains.push(3, 7);
        assert_eq!(drains.released(0), [2, 3]);
        assert!(drains.waiting.is_empty());
    }
}
