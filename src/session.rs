//! The client's event loop: one `select!` over the relay, the peer connections, the user's
//! input and the deadline. Each event goes through [`App::update`]; this loop only carries
//! out the effects that come back.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peertalk_signal::proto::{self, ErrorCode, PeerId};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::app::{AcceptPolicy, App, AudioAction, Effect, Event, FileSettings, Notice, Settings};
use crate::audio::Audio;
use crate::classic;
use crate::cli::{Config, SignalProtocol, SignalTarget};
use crate::exit::Outcome;
use crate::peer::{self, NetOptions, PeerEvent, PeerHandle};
use crate::signaling::{self, JoinError, Joined, Membership, RelayEvent};
use crate::transfer::{Transfers, names};

/// How long shutting down waits for peer connections to flush and close: their own
/// flush bound, and a little for the rest. Cutting it shorter would drop acknowledgements
/// that a lossy path is still retransmitting.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(peer::CLOSE_FLUSH.as_secs() + 3);

/// How many `name-N` alternatives a person whose name is taken is tried under.
const NAME_ALTERNATIVES: u32 = 8;

/// What the user did, as the front end reports it.
#[derive(Debug)]
pub enum UserInput {
    /// A message to send.
    Line(String),
    /// A message for one member only.
    Private { to: String, text: String },
    /// Input that cannot be sent, with the reason.
    Invalid(String),
    /// No more input will come (end of stdin).
    Closed,
    /// A new display name.
    Rename(String),
    /// Start sending our audio (`/call`).
    Call,
    /// Stop sending it (`/hangup`).
    Hangup,
    /// Mute or unmute it (`/mute`).
    Mute,
    /// Send a file (`/send [NAME] PATH`).
    SendFile { to: Option<String>, path: std::path::PathBuf },
    /// Accept or decline a file offer (`/accept [N]`, `/decline [N]`).
    AnswerOffer { file: Option<u64>, accept: bool },
    /// Stop a file transfer (`/cancel [N]`).
    CancelFile(Option<u64>),
    /// Show the safety words with a member, or mark it verified (`/verify NAME [yes]`).
    Verify { name: String, confirm: bool },
    /// Leave now.
    Quit,
}

/// The user's side of a session: the headless printer or the TUI.
pub trait Frontend {
    /// The next thing the user did. Must be cancel-safe: the loop may drop it for
    /// another event and call again.
    fn next_input(&mut self) -> impl Future<Output = UserInput>;
    /// Whether input should wait while the window of unacknowledged messages is full
    /// (a script's stdin does; a person's keyboard, which also quits, does not).
    fn paced(&self) -> bool;
    /// Shows one notice.
    fn show(&mut self, notice: &Notice) -> impl Future<Output = io::Result<()>>;
    /// Called when no more events are waiting, and before exiting.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>>;
}

/// Runs a chat until the app decides it is over.
pub async fn run(config: Config, ui: &mut impl Frontend) -> Outcome {
    let deadline = config.timeout.map(|t| Instant::now() + t);
    // A damaged identity is refused before any network work.
    let (identity, known, known_path) = match load_identity(&config) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let (joined, turn) = tokio::join!(connect(&config, ui), check_turn_servers(&config));
    let (joined, hosted) = match joined {
        Ok(ok) => ok,
        Err(outcome) => return outcome,
    };
    let turn_warnings = match turn {
        Ok(warnings) => warnings,
        Err(outcome) => {
            if let Some(relay) = hosted {
                relay.stop().await;
            }
            return outcome;
        }
    };
    let (Joined { me, peers, outgoing, events: mut relay }, name) = joined;
    if name != config.name {
        let text = format!(
            "the name {} is taken in room {}, so you are {name} here; /nick changes it",
            config.name, config.room
        );
        let _ = ui.show(&Notice::Warning { text }).await;
        let _ = ui.show(&Notice::Renamed { name: name.clone() }).await;
    }

    let mut app = App::new(Settings {
        name,
        room: config.room.clone(),
        expect: config.expect,
        // A person at a terminal stays when a peer fails or leaves; a script gets an exit code.
        strict: config.headless || !std::io::IsTerminal::is_terminal(&std::io::stdin()),
        relay_only: config.relay_only,
        call_at_start: config.call_at_start,
        audio_from_file: config.audio.input.is_some(),
        to: config.to.clone(),
        files: FileSettings {
            // A person, or a script that speaks commands, answers with /accept or /decline.
            accept: if config.accept_files {
                AcceptPolicy::Always
            } else if !ui.paced() || config.commands {
                AcceptPolicy::Ask
            } else {
                AcceptPolicy::Never
            },
            max_size: config.max_file_size,
            expect: config.expect_files,
            send: config.send_files.clone(),
        },
        identity: identity.as_ref().map(|i| i.fingerprint.clone()),
        known: known.0,
        strict_identity: config.strict_identity,
    });
    for skipped in known.1 {
        let _ = ui.show(&Notice::Warning { text: skipped }).await;
    }
    let receive_dir = config.receive_dir.clone().unwrap_or_else(|| names::default_receive_dir(!ui.paced()));
    let (transfer_tx, mut transfer_rx) = mpsc::channel(256);
    let mut transfers = Transfers::new(receive_dir, transfer_tx);
    let (audio_tx, mut audio_rx) = mpsc::channel(64);
    let audio = match Audio::spawn(config.audio.clone(), audio_tx) {
        Ok(audio) => audio,
        Err(e) => {
            if let Some(relay) = hosted {
                relay.stop().await;
            }
            return Outcome::Usage(format!("--audio-out: {e}"));
        }
    };
    let media = peer::Media { frames: audio.frames(), incoming: audio.incoming() };
    let net = Arc::new(NetOptions {
        ice_servers: config.ice_servers.clone(),
        relay_only: config.relay_only,
        bind: config.bind.clone(),
        identity,
        passphrase: config.passphrase.clone(),
    });
    let page_label = config.channel_label.clone();
    let (peer_tx, mut peer_rx) = mpsc::channel::<(PeerId, PeerEvent)>(1024);
    let mut links: HashMap<PeerId, PeerHandle> = HashMap::new();
    let mut relay_open = true;
    let mut input_open = true;
    let mut next = Some(Event::Welcome { me, peers });
    for warning in turn_warnings {
        let _ = ui.show(&Notice::Warning { text: warning }).await;
    }
    let interrupted = interrupted();
    tokio::pin!(interrupted);

    let outcome = 'run: loop {
        let event = match next.take() {
            Some(event) => event,
            None => tokio::select! {
                event = relay.recv(), if relay_open => match event {
                    Some(event) => relay_event(event),
                    None => { relay_open = false; continue }
                },
                Some((id, event)) = peer_rx.recv() => match event {
                    PeerEvent::File(channel) => {
                        transfers.attach(id, channel);
                        continue;
                    }
                    event => Event::Peer { id, event },
                },
                Some(event) = transfer_rx.recv() => {
                    transfers.observe(&event);
                    Event::Transfer(event)
                }
                Some(event) = audio_rx.recv() => Event::Audio(event),
                input = ui.next_input(), if input_open && (app.wants_input() || !ui.paced()) => match input {
                    UserInput::Line(text) => Event::Input { text, ts: now_ms() },
                    UserInput::Private { to, text } => Event::Private { to, text, ts: now_ms() },
                    UserInput::Invalid(reason) => Event::InputInvalid { reason },
                    UserInput::Closed => { input_open = false; Event::InputClosed }
                    UserInput::Rename(name) => Event::Rename(name),
                    UserInput::Call => Event::Call,
                    UserInput::Hangup => Event::Hangup,
                    UserInput::Mute => Event::Mute,
                    UserInput::SendFile { to, path } => Event::SendFile { to, path },
                    UserInput::AnswerOffer { file, accept } => Event::AnswerOffer { file, accept },
                    UserInput::CancelFile(file) => Event::CancelFile(file),
                    UserInput::Verify { name, confirm } => Event::Verify { name, confirm },
                    UserInput::Quit => break 'run Outcome::Done,
                },
                () = sleep_until(deadline) => Event::TimedOut,
                signal = &mut interrupted => break 'run interrupted_by(signal, app.unacknowledged()),
            },
        };
        if let Event::Peer { id, event: PeerEvent::Closed } = &event {
            links.remove(id);
        }
        for effect in app.update(event) {
            match effect {
                Effect::Relay(message) => {
                    let _ = outgoing.send(message);
                }
                Effect::Dial { peer, offer, page } => {
                    let label = if page { page_label.clone() } else { peer::CHAT_LABEL.into() };
                    let handle =
                        peer::spawn(peer.clone(), offer, label, net.clone(), media.clone(), peer_tx.clone());
                    links.insert(peer, handle);
                }
                Effect::Peer { id, command } => {
                    if let Some(link) = links.get(&id) {
                        link.command(command);
                    }
                }
                Effect::Transfer(command) => transfers.command(command),
                Effect::Remember { name, fingerprint } => {
                    let Some(path) = &known_path else { continue };
                    if let Err(e) = crate::known::remember(path, &name, &fingerprint) {
                        let text =
                            format!("could not remember {name}'s certificate in {}: {e}", path.display());
                        let _ = ui.show(&Notice::Warning { text }).await;
                    }
                }
                Effect::Audio(action) => match action {
                    AudioAction::Start => audio.start(),
                    AudioAction::Stop => audio.stop(),
                    AudioAction::Mute(muted) => audio.mute(muted),
                },
                Effect::Show(notice) => {
                    if let Err(e) = ui.show(&notice).await {
                        break 'run Outcome::Internal(format!("could not write output: {e}"));
                    }
                }
                Effect::Exit(outcome) => break 'run outcome,
            }
        }
        // Flush once a burst is over, not after every message of it, and only after the
        // tasks this event woke have run: a message goes out before its `sent` line, and
        // waking our reader does not compete with sending it.
        let idle = peer_rx.is_empty() && relay.is_empty() && transfer_rx.is_empty();
        if idle {
            tokio::task::yield_now().await;
            if let Err(e) = ui.flush().await {
                break Outcome::Internal(format!("could not write output: {e}"));
            }
        }
    };

    close_all(links).await;
    drop(media);
    audio.finish().await;
    drop(outgoing);
    if let Some(relay) = hosted {
        relay.stop().await;
    }
    let _ = ui.flush().await;
    outcome
}

/// Our identity and the peers we verified before, from the state folder.
#[allow(clippy::type_complexity)] // read once, taken apart at once
fn load_identity(
    config: &Config,
) -> Result<
    (
        Option<peer::Identity>,
        (std::collections::BTreeMap<String, String>, Vec<String>),
        Option<std::path::PathBuf>,
    ),
    Outcome,
> {
    let Some(path) = &config.identity else { return Ok((None, Default::default(), None)) };
    let identity = peer::Identity::load_or_create(path).map_err(|e| Outcome::Identity(e.to_string()))?;
    let known_path = path.with_file_name("known_peers");
    Ok((Some(identity), crate::known::load(&known_path), Some(known_path)))
}

/// Tries every TURN server once, alongside joining the room. With `--relay-only` and no
/// usable server, the run cannot connect anyone, so it ends here with the reason; otherwise
/// each problem is a warning for the user.
async fn check_turn_servers(config: &Config) -> Result<Vec<String>, Outcome> {
    use peer::turn::TurnProblem;
    let turn: Vec<_> = config.ice_servers.iter().filter(|s| s.is_turn()).collect();
    let Some(bind) = config.bind.first().copied() else { return Ok(Vec::new()) };
    let checks = futures_util::future::join_all(turn.iter().map(|s| peer::turn::check(s, bind))).await;
    let problems: Vec<_> = checks.into_iter().filter_map(Result::err).collect();
    if config.relay_only
        && problems.len() == turn.len()
        && let Some(problem) = problems.first()
    {
        let why = format!(
            "{problem}; with --relay-only every path goes through the TURN server, so nobody can be reached"
        );
        return Err(match problem {
            TurnProblem::Refused { .. } | TurnProblem::Failed { .. } => {
                Outcome::TurnRefused(format!("{why}; check --ice-username and --ice-credential"))
            }
            TurnProblem::Unreachable { .. } => {
                Outcome::TurnUnreachable(format!("{why}; check that it runs and can be reached"))
            }
            TurnProblem::Unsupported { .. } => Outcome::Usage(why),
        });
    }
    Ok(problems.iter().map(|p| format!("{p}; peers will be reached without it")).collect())
}

fn relay_event(event: RelayEvent) -> Event {
    match event {
        RelayEvent::PeerJoined { peer, offer, page } => Event::PeerJoined { peer, offer, page },
        RelayEvent::PeerLeft(id) => Event::PeerLeft(id),
        RelayEvent::Signal { from, signal } => Event::RelaySignal { from, signal },
        RelayEvent::Error { code, message } => Event::RelayError { code, message },
        RelayEvent::Lost(reason) => Event::RelayLost { reason },
        RelayEvent::Retrying { attempt, delay } => Event::RelayRetrying { attempt, delay },
        RelayEvent::Rejoined { me, peers } => Event::RelayRejoined { me, peers },
    }
}

/// Closes every peer connection, letting queued acknowledgements go out first.
async fn close_all(links: HashMap<PeerId, PeerHandle>) {
    let closing = futures_util::future::join_all(links.into_values().map(PeerHandle::close));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
}

pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Stopped by a signal: connections are closed cleanly, and the user is told what went
/// unacknowledged.
fn interrupted_by(signal: &str, unacknowledged: usize) -> Outcome {
    match unacknowledged {
        0 => Outcome::Interrupted(format!("stopped by {signal}")),
        n => Outcome::Interrupted(format!("stopped by {signal}; {n} message(s) sent were not acknowledged")),
    }
}

/// Completes with the signal's name on Ctrl-C or SIGTERM. A signal that cannot be
/// listened for never completes, rather than ending the chat at once.
async fn interrupted() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => "Ctrl-C",
        () = term => "SIGTERM",
    }
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Joins the room; with the default relay address and nothing listening, first starts a
/// relay in this process.
async fn connect(
    config: &Config,
    ui: &mut impl Frontend,
) -> Result<((Joined, String), Option<HostedRelay>), Outcome> {
    let url = config.signal.url();
    // Reading the system's certificate store is wasted work for a plain ws:// relay.
    let secure = std::iter::once(url).chain(config.fallback_signals.iter().map(String::as_str));
    let tls =
        secure.clone().any(|u| u.starts_with("wss://")).then(|| signaling::client_tls(&config.extra_roots));
    let secret = config.room_secret.as_deref();
    let join_as = |name: String| {
        let tls = tls.clone();
        async move {
            match config.signal_protocol {
                SignalProtocol::Peertalk => {
                    let room = config.room.clone();
                    let secret = secret.map(str::to_owned);
                    let token = config.token.clone();
                    let fallbacks = config.fallback_signals.clone();
                    signaling::join(Membership {
                        url: url.to_owned(),
                        fallbacks,
                        room,
                        name,
                        secret,
                        token,
                        tls,
                    })
                    .await
                }
                SignalProtocol::Classic => {
                    classic::join(url, &config.room, &name, secret, tls.as_ref()).await
                }
            }
        }
    };
    // A person whose name is taken in the room gets the first free `name-N`, and is told;
    // a script is refused (exit 4), with the relay's suggestion.
    let person = !ui.paced();
    let join = || async {
        let mut name = config.name.clone();
        for n in 2..=NAME_ALTERNATIVES + 1 {
            match join_as(name.clone()).await {
                Err(JoinError::Refused { code: ErrorCode::NameTaken, .. }) if person => {
                    name = proto::alternative_name(&config.name, n);
                }
                joined => return joined.map(|joined| (joined, name)),
            }
        }
        join_as(name.clone()).await.map(|joined| (joined, name))
    };
    match (join().await, &config.signal) {
        (Ok(joined), _) => Ok((joined, None)),
        (Err(JoinError::Unreachable { .. }), SignalTarget::Default) => {
            let hosted = HostedRelay::start().await;
            if hosted.is_some() {
                let room = form_urlencoded::Serializer::new(String::new())
                    .append_pair("room", &config.room)
                    .finish();
                let page = format!("{}/?{room}", url.replacen("ws://", "http://", 1));
                let _ = ui.show(&Notice::HostingRelay { url: url.to_owned(), page }).await;
                let _ = ui.flush().await;
            }
            let joined = join().await.map_err(join_outcome)?;
            Ok((joined, hosted))
        }
        (Err(e), _) => Err(join_outcome(e)),
    }
}

fn join_outcome(e: JoinError) -> Outcome {
    match e {
        JoinError::Unreachable { .. } => Outcome::RelayUnreachable(format!(
            "{e}; start one with `peertalk-signal --listen ADDR`, or leave out --signal to use a local one"
        )),
        JoinError::Refused { .. } | JoinError::Rejected { .. } | JoinError::Protocol { .. } => {
            Outcome::RelayRefused(e.to_string())
        }
    }
}

/// A relay running inside this client, on the default address.
#[cfg(feature = "embedded-relay")]
struct HostedRelay {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

#[cfg(feature = "embedded-relay")]
impl HostedRelay {
    /// Starts the relay on the default address. `None` if the address is taken, e.g. by
    /// another client that started one a moment earlier: then that one is used.
    async fn start() -> Option<Self> {
        let addr = crate::cli::DEFAULT_SIGNAL.trim_start_matches("ws://");
        let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = peertalk_signal::RelayConfig::default();
        let task = tokio::spawn(peertalk_signal::serve(listener, config, async {
            let _ = stopped.await;
        }));
        Some(Self { stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.task).await;
    }
}

#[cfg(not(feature = "embedded-relay"))]
struct HostedRelay;

#[cfg(not(feature = "embedded-relay"))]
impl HostedRelay {
    async fn start() -> Option<Self> {
        None
    }

    async fn stop(self) {}
}
