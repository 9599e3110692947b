//! `peertalk-signal`: run the relay.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};
use peertalk_signal::proto::DEFAULT_MAX_FRAME_BYTES;
use peertalk_signal::{RelayConfig, settings_file};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// The peertalk signaling relay: peers meet in rooms here and trade the offers, answers
/// and ICE candidates that connect them directly. Chat never passes through it.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more.\n\
On start the relay prints one line to stdout, \"peertalk-signal listening on ws://ADDR\".\n\
Exit codes: 0 stopped cleanly, 1 could not listen, 2 bad arguments."
)]
struct Cli {
    #[command(subcommand)]
    tool: Option<Tool>,

    /// A TOML file of settings named like these flags (max-peers-per-room = 8); flags and
    /// environment variables override it.
    #[arg(long, value_name = "PATH", env = "PEERTALK_SIGNAL_CONFIG")]
    config: Option<std::path::PathBuf>,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "PEERTALK_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,

    /// Largest text frame accepted, in bytes; a larger one closes that connection (code 1009).
    #[arg(long, env = "PEERTALK_SIGNAL_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    max_frame_bytes: usize,

    /// Connections served at once; more are told "server-full" and closed (code 1013).
    #[arg(long, env = "PEERTALK_SIGNAL_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,

    /// Rooms at once; joining a new room past this is refused with "too-many-rooms".
    #[arg(long, env = "PEERTALK_SIGNAL_MAX_ROOMS", default_value_t = 10_000)]
    max_rooms: usize,

    /// Members per room; one more is refused with "room-full".
    #[arg(long, env = "PEERTALK_SIGNAL_MAX_PEERS_PER_ROOM", default_value_t = 16)]
    max_peers_per_room: usize,

    /// Messages per second a connection may send on average; more get "rate-limited".
    #[arg(long, env = "PEERTALK_SIGNAL_RATE", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,

    /// Messages a connection may send in a burst above the average rate. A newcomer to a
    /// full room sends an offer and a few candidates to each member at once.
    #[arg(long, env = "PEERTALK_SIGNAL_BURST", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,

    /// Seconds between pings to each client.
    #[arg(long, env = "PEERTALK_SIGNAL_PING_INTERVAL", default_value_t = 20.0, value_parser = positive_seconds)]
    ping_interval: f64,

    /// Seconds without hearing anything (not even a pong) after which a client is dropped
    /// (code 4001) and its room told it left.
    #[arg(long, env = "PEERTALK_SIGNAL_IDLE_TIMEOUT", default_value_t = 60.0, value_parser = positive_seconds)]
    idle_timeout: f64,

    /// A browser origin allowed to connect, e.g. https://chat.example.org; repeatable.
    /// Without any, every origin is allowed. Clients that send no Origin are not affected.
    #[arg(
        long = "allowed-origin",
        value_name = "ORIGIN",
        env = "PEERTALK_SIGNAL_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// Serve /healthz and /metrics on this address (plain HTTP) instead of the main port.
    #[arg(long, value_name = "ADDR", env = "PEERTALK_SIGNAL_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,

    /// PEM certificate (with its chain) to serve TLS: clients then use wss://.
    #[arg(long, value_name = "PATH", env = "PEERTALK_SIGNAL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PATH", env = "PEERTALK_SIGNAL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,

    /// A shared secret every join must carry; without it, any client may join any room.
    #[arg(long, value_name = "SECRET", env = "PEERTALK_SIGNAL_ROOM_SECRET", hide_env_values = true)]
    room_secret: Option<String>,

    /// A file holding the key join tokens are signed with (at least 16 random bytes, e.g.
    /// head -c 32 /dev/urandom > token.key). With it, a join needs a token for its room
    /// (`peertalk-signal token`), or the room secret.
    #[arg(long, value_name = "PATH", env = "PEERTALK_SIGNAL_TOKEN_KEY_FILE", global = true)]
    token_key_file: Option<std::path::PathBuf>,

    /// Where to serve the classic endpoint, which forwards every text frame to everyone
    /// else in the room named by ?room= (for pages written for Spring-style
    /// {"event":...,"data":...} servers); "off" turns it off.
    #[arg(long, value_name = "PATH", env = "PEERTALK_SIGNAL_CLASSIC_PATH", default_value = "/signal", value_parser = classic_path)]
    classic_path: ClassicPath,

    /// Serve the web client (a chat page for browsers) at GET /: "on" or "off". The
    /// WebSocket upgrade on / is not affected.
    #[arg(long, value_enum, env = "PEERTALK_SIGNAL_WEB", default_value_t = Switch::On)]
    web: Switch,

    /// Log format on stderr.
    #[arg(long, env = "PEERTALK_SIGNAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// A Redis shared with other relays (redis://HOST:PORT[/DB]): relays that share one
    /// share rooms, so people on different relays meet. Without it the relay works alone.
    /// See CLUSTER.md.
    #[arg(long, value_name = "URL", env = "PEERTALK_SIGNAL_REDIS", value_parser = redis_url)]
    redis: Option<String>,

    /// Seconds a new connection may take to finish the WebSocket handshake.
    #[arg(long, env = "PEERTALK_SIGNAL_HANDSHAKE_TIMEOUT", default_value_t = 10.0, value_parser = positive_seconds)]
    handshake_timeout: f64,
}

/// Things to do instead of relaying.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
enum Tool {
    /// Print a join token for one room, signed with --token-key-file, for the people of that
    /// room to give with `peertalk --token`.
    Token {
        /// The room it admits to.
        #[arg(long)]
        room: String,
        /// How long it is valid: 90s, 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = peertalk_signal::token::parse_ttl)]
        ttl: u64,
    },
    /// Print a completion script for SHELL on stdout (peertalk's README says where to put it).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `peertalk-signal man | man -l -`.
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone)]
struct ClassicPath(Option<String>);

fn classic_path(s: &str) -> Result<ClassicPath, String> {
    match s {
        "off" => Ok(ClassicPath(None)),
        "/" | "/healthz" | "/metrics" => Err(format!("{s:?} is taken; pick another path such as /signal")),
        _ if s.starts_with('/') && !s.contains(['?', '#']) => Ok(ClassicPath(Some(s.to_owned()))),
        _ => Err(format!("{s:?} is not a path; give one such as /signal, or \"off\"")),
    }
}

fn redis_url(s: &str) -> Result<String, String> {
    peertalk_signal::check_redis_url(s).map(|()| s.to_owned())
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(secs),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

/// Writes a generated document to stdout. A reader that stops early (`| head`) is not a
/// failure.
fn print_document(document: &[u8], what: &str) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(document) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("peertalk-signal: could not write the {what} to stdout: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match &cli.tool {
        Some(Tool::Token { room, ttl }) => return mint(cli.token_key_file.as_deref(), room, *ttl),
        Some(Tool::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "peertalk-signal", &mut script);
            return print_document(&script, "completion script");
        }
        Some(Tool::Man) => {
            let mut page = Vec::new();
            if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
                eprintln!("peertalk-signal: could not make the manual page: {e}");
                return ExitCode::FAILURE;
            }
            return print_document(&page, "manual page");
        }
        None => {}
    }
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => logs.json().init(),
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peertalk-signal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `peertalk-signal token`: prints a token, or says why not (exit 2).
fn mint(key_file: Option<&std::path::Path>, room: &str, ttl: u64) -> ExitCode {
    let key = key_file
        .ok_or_else(|| "give the key tokens are signed with: --token-key-file PATH".to_owned())
        .and_then(peertalk_signal::token::TokenKey::from_file)
        .and_then(|key| {
            peertalk_signal::proto::validate_room(room).map_err(|r| format!("--room: {}", r.message))?;
            Ok(key)
        });
    match key {
        Ok(key) => {
            println!("{}", key.mint(room, peertalk_signal::token::now() + ttl));
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("peertalk-signal: {why}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let token_key = match &cli.token_key_file {
        Some(path) => Some(std::sync::Arc::new(
            peertalk_signal::token::TokenKey::from_file(path).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(peertalk_signal::tls::server_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let listener = TcpListener::bind(cli.listen).await.with_context(|| {
        format!("could not listen on {}; is another relay already running there? Pick another address with --listen", cli.listen)
    })?;
    let addr = listener.local_addr().context("the listening socket has no address")?;
    println!("peertalk-signal listening on {scheme}://{addr}");
    tracing::info!(%addr, "listening");
    let config = RelayConfig {
        max_frame_bytes: cli.max_frame_bytes,
        max_connections: cli.max_connections,
        max_rooms: cli.max_rooms,
        max_peers_per_room: cli.max_peers_per_room,
        rate_per_second: cli.rate,
        rate_burst: cli.burst,
        ping_interval: Duration::from_secs_f64(cli.ping_interval),
        idle_timeout: Duration::from_secs_f64(cli.idle_timeout),
        handshake_timeout: Duration::from_secs_f64(cli.handshake_timeout),
        allowed_origins: cli.allowed_origins,
        room_secret: cli.room_secret,
        token_key,
        classic_path: cli.classic_path.0,
        web: cli.web == Switch::On,
        metrics_listen: cli.metrics_listen,
        tls,
        redis: cli.redis,
        ..RelayConfig::default()
    };
    let metrics_listen = config.metrics_listen;
    peertalk_signal::serve(listener, config, shutdown_signal()).await.with_context(
        || match metrics_listen {
            Some(addr) => format!(
                "could not serve /metrics on {addr}; is that address free? Pick another with --metrics-listen"
            ),
            None => "the relay stopped on an I/O error".to_owned(),
        },
    )?;
    Ok(())
}

/// Parses the command line, with the settings of a `--config` TOML file as defaults:
/// a flag beats its environment variable, which beats the file, which beats the built-in
/// default. The file's keys are the flags' names (`max-peers-per-room = 8`).
fn parse_cli() -> Result<Cli, clap::Error> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    let path = settings_file::flag_value(&args, "--config")
        .or_else(|| std::env::var_os("PEERTALK_SIGNAL_CONFIG").map(std::path::PathBuf::from));
    if let Some(path) = path {
        let is_setting = |arg: &clap::Arg| arg.get_long().is_some_and(|long| long != "config");
        (command, _) = settings_file::apply(command, &path, is_setting, "settings are named like the flags")?;
    }
    Cli::from_arg_matches(&command.try_get_matches_from(&args)?)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
