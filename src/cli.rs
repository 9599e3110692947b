//! The command line: raw flags ([`Cli`]) and the checked settings the rest of the client
//! runs on ([`Config`]). Every mistake is caught here, before any network work, with a
//! sentence that says what to change.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use peertalk_signal::proto;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::exit::EXIT_CODES_HELP;

/// The relay address used when `--signal` is not given. When nothing answers there, the
/// client starts a relay on it in-process.
pub const DEFAULT_SIGNAL: &str = "ws://127.0.0.1:8787";

/// peertalk: chat peer to peer over WebRTC, from the terminal or from scripts.
///
/// Peers meet in a room on a signaling relay, then talk directly over an encrypted
/// DataChannel; the relay only introduces them.
#[derive(Debug, Parser)]
#[command(version, after_help = after_help(), subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<CliCommand>,

    /// Room to join; everyone in the same room on the same relay can talk.
    #[arg(long, short, env = "PEERTALK_ROOM", required = true)]
    pub room: Option<String>,

    /// Your display name [default: $USER]
    #[arg(long, short, env = "PEERTALK_NAME")]
    pub name: Option<String>,

    /// Relay URL (ws://HOST:PORT or wss://HOST:PORT). Repeatable: the relays of one
    /// service, tried in order when joining and when the one in use goes away (the same
    /// peer id comes back on any of them). Without it, ws://127.0.0.1:8787 is used, and
    /// started in-process if nothing listens there.
    #[arg(long, short, value_name = "URL", env = "PEERTALK_SIGNAL", value_delimiter = ',', global = true)]
    pub signal: Vec<String>,

    /// How to talk to the relay: "peertalk" (rooms, ids, presence), or "classic" for a
    /// relay that forwards {"event":...,"data":...} frames to everyone, like the Spring
    /// examples; classic rooms are for two.
    #[arg(long, value_enum, env = "PEERTALK_SIGNAL_PROTOCOL", default_value_t = SignalProtocol::Peertalk, global = true)]
    pub signal_protocol: SignalProtocol,

    /// With --signal-protocol classic: the label of the DataChannel we open when we offer to
    /// a page that is not peertalk; "dataChannel" is what the Spring examples use. A page's
    /// own channel is taken whatever its label.
    #[arg(long, value_name = "LABEL", env = "PEERTALK_CHANNEL_LABEL", default_value = DEFAULT_PAGE_LABEL)]
    pub channel_label: String,

    /// Also trust the CA certificates in this PEM file for wss:// (a relay with a private CA).
    #[arg(long, value_name = "PATH", env = "PEERTALK_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,

    /// The relay's room secret, if it requires one.
    #[arg(long, value_name = "SECRET", env = "PEERTALK_ROOM_SECRET", hide_env_values = true, global = true)]
    pub room_secret: Option<String>,

    /// A passphrase the room's members share: each peer must prove it knows it (SPAKE2)
    /// and vouch for its certificate with it before anything is said, so a relay that does
    /// not know it cannot sit in the middle. Prefer the environment variable. It never
    /// reaches the relay or the logs.
    #[arg(long, value_name = "PASSPHRASE", env = "PEERTALK_PASSPHRASE", hide_env_values = true)]
    pub passphrase: Option<String>,

    /// A join token for the room, from the relay's operator (`peertalk-signal token`).
    #[arg(long, value_name = "TOKEN", env = "PEERTALK_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// STUN or TURN server (stun:HOST:PORT, turn:HOST:PORT); repeatable. None by default:
    /// nothing outside the relay is contacted unless you ask.
    #[arg(
        long = "ice-server",
        value_name = "URL",
        env = "PEERTALK_ICE_SERVERS",
        value_delimiter = ',',
        global = true
    )]
    pub ice_servers: Vec<String>,

    /// Username for the TURN servers.
    #[arg(long, env = "PEERTALK_ICE_USERNAME", global = true)]
    pub ice_username: Option<String>,

    /// Credential (password) for the TURN servers.
    #[arg(long, env = "PEERTALK_ICE_CREDENTIAL", hide_env_values = true, global = true)]
    pub ice_credential: Option<String>,

    /// Send everything through the TURN server (ICE transport policy "relay"): no direct
    /// path is tried, and the other side sees only the TURN server's address.
    #[arg(long, env = "PEERTALK_RELAY_ONLY")]
    pub relay_only: bool,

    /// Local address for WebRTC traffic (IP or IP:PORT); repeatable. By default the
    /// loopback address when the relay is on loopback, otherwise all interfaces.
    #[arg(long, value_name = "ADDR", env = "PEERTALK_BIND", value_delimiter = ',', global = true)]
    pub bind: Vec<String>,

    /// Run without an interface: stdin lines are sent, messages are printed to stdout.
    #[arg(long, env = "PEERTALK_HEADLESS")]
    pub headless: bool,

    /// Print messages and events as JSON lines on stdout (implies --headless).
    #[arg(long, env = "PEERTALK_JSON")]
    pub json: bool,

    /// Send this message (repeatable), wait until each is acknowledged, then exit.
    /// Standard input is not read.
    #[arg(long, value_name = "TEXT")]
    pub send: Vec<String>,

    /// Send every message to the member with this name only, as a private message. A
    /// script's message waits for that member to join.
    #[arg(long, value_name = "NAME", env = "PEERTALK_TO")]
    pub to: Option<String>,

    /// Exit once N messages have been received, input has ended (stdin closed, or --send),
    /// and everything sent is acknowledged.
    #[arg(long, value_name = "N", env = "PEERTALK_EXPECT")]
    pub expect: Option<usize>,

    /// Where logs go while the interface is on [default: $XDG_STATE_HOME/peertalk/peertalk.log,
    /// or ~/.local/state/peertalk/peertalk.log]. Headless, logs go to stderr.
    #[arg(long, value_name = "PATH", env = "PEERTALK_LOG_FILE")]
    pub log_file: Option<std::path::PathBuf>,

    /// Give up after this many seconds, with an exit code that says what was missing.
    #[arg(long, value_name = "SECS", env = "PEERTALK_TIMEOUT")]
    pub timeout: Option<f64>,

    /// Start a call at once: send your audio (the microphone, or --audio-in) to every peer.
    /// Without a microphone you are told, and the chat goes on.
    #[arg(long, env = "PEERTALK_AUDIO")]
    pub audio: bool,

    /// Send this Ogg Opus file in calls instead of the microphone, paced in real time;
    /// the call ends when it has been sent. Implies --audio unless --commands is given.
    #[arg(long, value_name = "FILE", env = "PEERTALK_AUDIO_IN")]
    pub audio_in: Option<std::path::PathBuf>,

    /// Record the audio peers send into this Ogg Opus file (created or replaced).
    #[arg(long, value_name = "FILE", env = "PEERTALK_AUDIO_OUT")]
    pub audio_out: Option<std::path::PathBuf>,

    /// Headless: read input lines that start with / as commands, as in the interface
    /// (/call, /hangup, /mute, /nick NAME, /quit, /send, /accept, /decline, /cancel);
    /// //text sends /text.
    #[arg(long, env = "PEERTALK_COMMANDS")]
    pub commands: bool,

    /// Send this file (repeatable) to every member, or with --to to one; exit once each
    /// receiver has checked its SHA-256. Standard input is not read.
    #[arg(long, value_name = "PATH")]
    pub send_file: Vec<std::path::PathBuf>,

    /// Where received files are written [default: the current folder for scripts;
    /// $XDG_DOWNLOAD_DIR, else ~/Downloads, for the interface].
    #[arg(long, value_name = "DIR", env = "PEERTALK_RECEIVE_DIR")]
    pub receive_dir: Option<std::path::PathBuf>,

    /// Take files peers offer without asking. Without it a script declines them, and the
    /// sender is told why; the interface (and a --commands script) answers with /accept or
    /// /decline.
    #[arg(long, env = "PEERTALK_ACCEPT_FILES")]
    pub accept_files: bool,

    /// Decline offered files larger than this (bytes, or with K, M, G or T: powers of 1024).
    #[arg(long, value_name = "SIZE", env = "PEERTALK_MAX_FILE_SIZE", default_value = "8G")]
    pub max_file_size: String,

    /// Exit once N offered files have ended (received and checked, or failed), besides
    /// the other conditions.
    #[arg(long, value_name = "N", env = "PEERTALK_EXPECT_FILES")]
    pub expect_files: Option<usize>,

    /// Your identity: a DTLS certificate, made on first use and kept [default:
    /// $XDG_STATE_HOME/peertalk/identity.pem, or ~/.local/state/peertalk/identity.pem]. The
    /// peers you verify are remembered beside it, in known_peers.
    #[arg(long, value_name = "PATH", env = "PEERTALK_IDENTITY", global = true)]
    pub identity: Option<std::path::PathBuf>,

    /// Refuse a member whose certificate is not the one you verified for its name (exit 16),
    /// instead of warning.
    #[arg(long, env = "PEERTALK_STRICT_IDENTITY")]
    pub strict_identity: bool,

    /// Colours for the interface: "dark" (for dark backgrounds), "light", or "none". With
    /// NO_COLOR set, the default is "none".
    #[arg(long, value_enum, env = "PEERTALK_THEME")]
    pub theme: Option<Theme>,

    /// How the interface tells you about a message that names you, or that arrives while
    /// the terminal is not focused: "bell", "osc" (the bell, and a desktop notification
    /// through OSC 777 and OSC 9 for terminals that show them), or "off".
    #[arg(long, value_enum, env = "PEERTALK_NOTIFY", default_value_t = Notify::Bell)]
    pub notify: Notify,

    /// Leave the mouse to the terminal, so its own selection and copying work (the wheel
    /// no longer scrolls the chat; PageUp and PageDown do).
    #[arg(long, env = "PEERTALK_NO_MOUSE")]
    pub no_mouse: bool,

    /// Read settings from this TOML file instead of ~/.config/peertalk/config.toml; its keys
    /// are the flags' names (`name = "alice"`). A flag beats its environment variable,
    /// which beats the file. `peertalk config` shows what is in effect.
    #[arg(long, value_name = "FILE", env = crate::config_file::CONFIG_ENV, global = true)]
    pub config: Option<std::path::PathBuf>,
}

/// The interface's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Theme {
    /// For dark backgrounds.
    Dark,
    /// For light backgrounds.
    Light,
    /// No colours: emphasis only (bold, reverse), as NO_COLOR asks.
    None,
}

/// How the interface draws attention to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Notify {
    /// Nothing.
    Off,
    /// The terminal's bell.
    Bell,
    /// A desktop notification through the terminal (OSC 777 and OSC 9), and the bell.
    Osc,
}

/// Things to do instead of chatting.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum CliCommand {
    /// Print your identity's fingerprint (SHA-256 of your DTLS certificate, as SDP writes
    /// it), for peers to compare; it is made on first use.
    Id,
    /// Print a completion script for SHELL on stdout (the README says where to put it).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `peertalk man | man -l -`.
    Man,
    /// Print the settings in effect (from flags, environment, config file and defaults),
    /// each with where it came from, as a config file would hold them; secrets are masked.
    Config,
    /// Check what a chat needs: the relay (reachable, our protocol, a trusted certificate),
    /// UDP through each STUN server, the NAT's mapping, each TURN server's credentials, and
    /// the audio devices. Exits 0 when everything needed works.
    Doctor {
        /// One JSON object per check on stdout, then a summary object.
        #[arg(long)]
        json: bool,
    },
}

fn after_help() -> String {
    format!(
        "Examples:\n  peertalk --room demo --name alice\n  peertalk --room demo --send 'build finished' --timeout 30\n  \
         peertalk --room demo --headless --json --expect 1 < /dev/null\n  \
         peertalk --room demo --send-file report.pdf --timeout 60\n  \
         peertalk --room demo --accept-files --receive-dir incoming --expect-files 1 < /dev/null\n\n{EXIT_CODES_HELP}"
    )
}

/// The relay's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalProtocol {
    /// peertalk-signal's protocol (signal/PROTOCOL.md).
    Peertalk,
    /// Spring-style broadcast of {"event":...,"data":...}; the URL's path defaults to /signal.
    Classic,
}

/// An ICE server as the peer connection needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    pub url: String,
    pub username: String,
    pub credential: String,
}

impl IceServer {
    /// Whether this is a TURN server (`turn:` or `turns:`), which can relay.
    #[must_use]
    pub fn is_turn(&self) -> bool {
        self.url.starts_with("turn:") || self.url.starts_with("turns:")
    }
}

/// How received messages and events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `alice: hello` lines on stdout, events on stderr.
    Text,
    /// One JSON object per line on stdout, messages and events alike.
    Json,
}

/// Where the relay is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalTarget {
    /// The user named a relay: it must answer.
    Given(String),
    /// The default address; the client may start a relay there itself.
    Default,
}

impl SignalTarget {
    #[must_use]
    pub fn url(&self) -> &str {
        match self {
            Self::Given(url) => url,
            Self::Default => DEFAULT_SIGNAL,
        }
    }
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub room: String,
    pub name: String,
    pub signal: SignalTarget,
    /// More relays of the same service, after `signal`.
    pub fallback_signals: Vec<String>,
    pub signal_protocol: SignalProtocol,
    /// The label of the plain channel we open to a page.
    pub channel_label: std::sync::Arc<str>,
    /// Every message goes to this member only.
    pub to: Option<String>,
    /// Extra CA certificates to trust for wss://, from --ca-file.
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub room_secret: Option<String>,
    pub token: Option<String>,
    /// The room's passphrase (`--passphrase`); its Debug never shows it.
    pub passphrase: Option<crate::peer::Passphrase>,
    pub ice_servers: Vec<IceServer>,
    pub relay_only: bool,
    pub bind: Vec<SocketAddr>,
    pub format: OutputFormat,
    /// Run for a script: `--headless`, or implied by `--json`, `--send` or `--expect`.
    pub headless: bool,
    pub send: Vec<String>,
    pub expect: Option<usize>,
    pub timeout: Option<Duration>,
    pub log_file: Option<std::path::PathBuf>,
    pub audio: crate::audio::AudioOptions,
    /// Start the call at once.
    pub call_at_start: bool,
    /// Headless input lines starting with `/` are commands.
    pub commands: bool,
    /// Where our identity is kept; `None` when there is no state folder (no $HOME).
    pub identity: Option<std::path::PathBuf>,
    pub strict_identity: bool,
    /// Where received files go; `None`: the default for the front end.
    pub receive_dir: Option<std::path::PathBuf>,
    pub accept_files: bool,
    pub max_file_size: u64,
    pub expect_files: Option<usize>,
    pub send_files: Vec<std::path::PathBuf>,
    pub theme: Theme,
    pub notify: Notify,
    /// The interface takes mouse events (wheel scrolling); off with --no-mouse.
    pub mouse: bool,
}

impl Cli {
    /// Checks the flags and turns them into a [`Config`]; the error is a sentence for
    /// the user.
    pub fn into_config(self) -> Result<Config, String> {
        let room = self.room.ok_or("--room is needed to chat; give the room to join")?;
        proto::validate_room(&room).map_err(|r| format!("--room: {r}"))?;
        let passphrase = match self.passphrase {
            Some(p) if p.is_empty() => {
                return Err(
                    "--passphrase: an empty passphrase protects nothing; give one, or leave the flag out"
                        .to_owned(),
                );
            }
            Some(passphrase) => Some(crate::peer::Passphrase { passphrase, room: room.clone() }),
            None => None,
        };
        let name = self.name.unwrap_or_else(default_name);
        proto::validate_name(&name).map_err(|r| format!("--name: {r}"))?;

        let mut relays =
            self.signal.iter().map(|url| check_signal_url(url)).collect::<Result<Vec<_>, _>>()?.into_iter();
        let signal = relays.next().map_or(SignalTarget::Default, SignalTarget::Given);
        let fallback_signals: Vec<String> = relays.collect();
        if !fallback_signals.is_empty() && self.signal_protocol == SignalProtocol::Classic {
            return Err(
                "--signal-protocol classic takes one --signal: a classic relay has no ids to come back with"
                    .to_owned(),
            );
        }
        let ice_servers: Vec<IceServer> = self
            .ice_servers
            .iter()
            .map(|url| check_ice_server(url, self.ice_username.as_deref(), self.ice_credential.as_deref()))
            .collect::<Result<_, _>>()?;
        if self.relay_only && !ice_servers.iter().any(IceServer::is_turn) {
            return Err("--relay-only sends everything through a TURN server; give one with --ice-server turn:HOST:PORT, --ice-username and --ice-credential".to_owned());
        }
        let bind = if self.bind.is_empty() {
            default_bind(signal.url())
        } else {
            self.bind.iter().map(|b| parse_bind(b)).collect::<Result<_, _>>()?
        };
        let timeout = match self.timeout {
            None => None,
            Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
            Some(secs) => return Err(format!("--timeout {secs}: give a positive number of seconds")),
        };
        if let Some(text) = self.send.iter().find(|t| t.is_empty()) {
            return Err(format!("--send {text:?}: an empty message cannot be sent"));
        }
        if let Some(path) = &self.audio_in {
            crate::audio::ogg_opus::check(path).map_err(|e| format!("--audio-in: {e}"))?;
        }
        if let Some(dir) = self.audio_out.as_deref().and_then(std::path::Path::parent)
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            return Err(format!("--audio-out: the folder {} does not exist", dir.display()));
        }
        check_channel_label(&self.channel_label)?;
        if let Some(to) = &self.to {
            proto::validate_name(to).map_err(|r| format!("--to: {r}"))?;
        }
        for path in &self.send_file {
            crate::transfer::check(path).map_err(|e| format!("--send-file: {e}"))?;
        }
        if let Some(dir) = &self.receive_dir
            && !dir.is_dir()
        {
            return Err(format!("--receive-dir: {} is not a folder; create it first", dir.display()));
        }
        let max_file_size = parse_size(&self.max_file_size).ok_or_else(|| {
            format!("--max-file-size {:?}: give a size such as 500M or 2G", self.max_file_size)
        })?;
        let call_at_start = self.audio || (self.audio_in.is_some() && !self.commands);
        let headless = self.headless
            || self.json
            || !self.send.is_empty()
            || self.expect.is_some()
            || !self.send_file.is_empty()
            || self.expect_files.is_some();
        Ok(Config {
            room,
            name,
            signal,
            fallback_signals,
            signal_protocol: self.signal_protocol,
            channel_label: self.channel_label.into(),
            to: self.to,
            extra_roots: match &self.ca_file {
                Some(path) => load_ca_file(path)?,
                None => Vec::new(),
            },
            room_secret: self.room_secret,
            token: self.token,
            passphrase,
            ice_servers,
            relay_only: self.relay_only,
            bind,
            format: if self.json { OutputFormat::Json } else { OutputFormat::Text },
            headless,
            send: self.send,
            expect: self.expect,
            timeout,
            log_file: self.log_file,
            audio: crate::audio::AudioOptions {
                input: self.audio_in,
                output: self.audio_out,
                play: self.audio || !headless,
            },
            call_at_start,
            commands: self.commands,
            identity: self.identity.or_else(crate::peer::default_identity_path),
            strict_identity: self.strict_identity,
            receive_dir: self.receive_dir,
            accept_files: self.accept_files,
            max_file_size,
            expect_files: self.expect_files,
            send_files: self.send_file,
            theme: self.theme.unwrap_or_else(default_theme),
            notify: self.notify,
            mouse: !self.no_mouse,
        })
    }
}

/// A size in bytes: digits, optionally followed by K, M, G or T (powers of 1024), with
/// or without a trailing `B` or `iB`.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim().to_ascii_uppercase();
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

/// The label pages in the Spring examples' style give their channel.
pub const DEFAULT_PAGE_LABEL: &str = "dataChannel";

fn check_channel_label(label: &str) -> Result<(), String> {
    if label == crate::peer::CHAT_LABEL {
        return Err(format!(
            "--channel-label {label:?} is the label peertalk clients use between themselves; pick another for pages"
        ));
    }
    if label.is_empty() || label.len() > 1024 || label.chars().any(char::is_control) {
        return Err(format!(
            "--channel-label {:?}: give 1 to 1024 bytes of text without control characters",
            label.escape_debug().to_string()
        ));
    }
    Ok(())
}

/// NO_COLOR (any non-empty value) asks for no colours unless a theme is chosen.
fn default_theme() -> Theme {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) { Theme::None } else { Theme::Dark }
}

fn default_name() -> String {
    ["USER", "USERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok())
        .filter(|n| proto::validate_name(n).is_ok())
        .unwrap_or_else(|| "peer".to_owned())
}

pub(crate) fn check_signal_url(url: &str) -> Result<String, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("--signal {url:?}: give a WebSocket URL such as ws://127.0.0.1:8787"));
    };
    match scheme {
        "ws" | "wss" if !rest.is_empty() => Ok(url.to_owned()),
        _ => Err(format!(
            "--signal {url:?}: the URL must start with ws:// or wss://, e.g. ws://127.0.0.1:8787"
        )),
    }
}

pub(crate) fn load_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect)
        .map_err(|e| format!("--ca-file {}: could not read PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("--ca-file {}: the file holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

pub(crate) fn check_ice_server(
    url: &str,
    username: Option<&str>,
    credential: Option<&str>,
) -> Result<IceServer, String> {
    let scheme = url.split(':').next().unwrap_or_default();
    let needs_auth = match scheme {
        "stun" | "stuns" => false,
        "turn" | "turns" => true,
        _ => {
            return Err(format!(
                "--ice-server {url:?}: expected stun:HOST:PORT or turn:HOST:PORT (also stuns:, turns:)"
            ));
        }
    };
    if url.len() <= scheme.len() + 1 {
        return Err(format!("--ice-server {url:?}: the host is missing, e.g. {scheme}:127.0.0.1:3478"));
    }
    let (username, credential) = match (needs_auth, username, credential) {
        (false, _, _) => (String::new(), String::new()),
        (true, Some(u), Some(c)) => (u.to_owned(), c.to_owned()),
        (true, _, _) => {
            return Err(format!(
                "--ice-server {url:?}: a TURN server needs --ice-username and --ice-credential"
            ));
        }
    };
    Ok(IceServer { url: url.to_owned(), username, credential })
}

pub(crate) fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0))).map_err(|_| {
        format!("--bind {s:?}: give an IP address, optionally with a port (127.0.0.1 or 127.0.0.1:5000)")
    })
}

/// Peers that can reach a relay on loopback are on this host, so loopback is the one
/// path worth gathering; a relay elsewhere means peers elsewhere, so every interface.
fn default_bind(signal_url: &str) -> Vec<SocketAddr> {
    let host = signal_url
        .split_once("://")
        .map_or(signal_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(['[', ']']);
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let ip: IpAddr = match host.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V6(_)) if loopback => ip,
        _ if loopback => IpAddr::from([127, 0, 0, 1]),
        _ => IpAddr::from([0, 0, 0, 0]),
    };
    vec![SocketAddr::new(ip, 0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["peertalk"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map_err(|e| e.to_string())?.into_config()
    }

    #[test]
    fn file_sizes_take_binary_suffixes_and_bad_ones_are_refused() {
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1K"), Some(1024));
        assert_eq!(parse_size("500M"), Some(500 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("8 gb"), Some(8 << 30));
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999T"), None, "overflow is refused, not wrapped");
        let err = config(&["--room", "r", "--max-file-size", "huge"]).expect_err("refused");
        assert!(err.contains("--max-file-size") && err.contains("500M"), "{err}");
        let err = config(&["--room", "r", "--receive-dir", "/nonexistent/dir"]).expect_err("refused");
        assert!(err.contains("is not a folder"), "{err}");
    }

    #[test]
    fn loopback_relay_means_loopback_candidates() {
        let addr = |s: &str| vec![s.parse::<SocketAddr>().expect("addr")];
        assert_eq!(default_bind("ws://127.0.0.1:8787"), addr("127.0.0.1:0"));
        assert_eq!(default_bind("ws://localhost:1/"), addr("127.0.0.1:0"));
        assert_eq!(default_bind("ws://[::1]:8787"), addr("[::1]:0"));
        assert_eq!(default_bind("ws://relay.example.org:80"), addr("0.0.0.0:0"));
    }

    #[test]
    fn relay_only_needs_a_turn_server() {
        let err =
            config(&["--room", "r", "--name", "a", "--relay-only", "--ice-server", "stun:127.0.0.1:3478"])
                .expect_err("refused");
        assert!(err.contains("--relay-only") && err.contains("turn:"), "{err}");
    }

    #[test]
    fn turn_without_credentials_is_refused_with_the_fix() {
        let err = config(&["--room", "r", "--name", "a", "--ice-server", "turn:127.0.0.1:3478"])
            .expect_err("refused");
        assert!(err.contains("--ice-username"), "{err}");
        let ok = config(&[
            "--room",
            "r",
            "--name",
            "a",
            "--ice-server",
            "turn:127.0.0.1:3478",
            "--ice-username",
            "u",
            "--ice-credential",
            "p",
        ])
        .expect("accepted");
        assert_eq!(ok.ice_servers[0].username, "u");
    }

    #[test]
    fn bad_names_urls_and_timeouts_are_refused() {
        assert!(config(&["--room", "r", "--name", "a\u{1b}"]).is_err());
        assert!(config(&["--room", "", "--name", "a"]).is_err());
        assert!(config(&["--room", "r", "--name", "a", "--signal", "http://x"]).is_err());
        assert!(config(&["--room", "r", "--name", "a", "--ice-server", "http://x"]).is_err());
        assert!(config(&["--room", "r", "--name", "a", "--timeout", "-1"]).is_err());
        assert!(config(&["--room", "r", "--name", "a", "--bind", "nowhere"]).is_err());
    }

    #[test]
    fn audio_files_are_checked_before_anything_starts() {
        let err = config(&["--room", "r", "--name", "a", "--audio-in", "/nonexistent/tone.opus"])
            .expect_err("refused");
        assert!(err.starts_with("--audio-in: could not open /nonexistent/tone.opus"), "{err}");
        let err = config(&["--room", "r", "--name", "a", "--audio-out", "/nonexistent/rec.opus"])
            .expect_err("refused");
        assert!(err.contains("does not exist"), "{err}");
        let ok = config(&["--room", "r", "--name", "a", "--audio-out", "rec.opus"]).expect("accepted");
        assert!(!ok.call_at_start, "recording alone does not call");
    }
}
