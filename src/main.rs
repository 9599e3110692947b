//! `peertalk`: parse the command line, run the chat (the terminal interface, or headless
//! for scripts), exit with a code that says how it went.

use std::fs::File;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{CommandFactory, FromArgMatches};
use peertalk::cli::{Cli, CliCommand, Config};
use peertalk::config_file;
use peertalk::exit::Outcome;
use tracing_subscriber::EnvFilter;

/// Our warnings, and only errors from the WebRTC stack, which warns about routine events.
const DEFAULT_LOG: &str = "error,peertalk=warn,peertalk_signal=warn";

fn main() -> ExitCode {
    let (cli, matches, file) = parse_cli();
    match cli.command {
        Some(CliCommand::Id) => return report(&print_identity(cli.identity)),
        Some(CliCommand::Config) => {
            // The pristine definition lists the settings in the order --help does.
            let described = config_file::describe(&Cli::command(), &matches, file.as_ref());
            return print_document(described.as_bytes(), "settings");
        }
        Some(CliCommand::Doctor { json }) => return run_doctor(cli, json),
        Some(CliCommand::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "peertalk", &mut script);
            return print_document(&script, "completion script");
        }
        Some(CliCommand::Man) => {
            let mut page = Vec::new();
            if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
                return report(&Outcome::Internal(format!("could not make the manual page: {e}")));
            }
            return print_document(&page, "manual page");
        }
        None => {}
    }
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => return report(&Outcome::Usage(message)),
    };
    let interface = !config.headless && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    init_logging(&config, interface);
    // One thread: a chat needs little CPU, and handing messages between tasks on the same
    // thread costs no cross-thread wake-ups (measured: round trip p50 0.36 -> 0.29 ms,
    // throughput 63 -> 93 MB/s). stdin and stdout have threads of their own.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return report(&Outcome::Internal(format!("could not start the async runtime: {e}"))),
    };
    let outcome = if interface {
        runtime.block_on(peertalk::ui::run(config))
    } else {
        runtime.block_on(peertalk::headless::run(config))
    };
    // Peer connections whose close timed out must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    report(&outcome)
}

/// Parses the command line over the config file's settings; also returns the matches and
/// the file read, for `peertalk config`. A bad flag or file exits 2 with clap's message.
fn parse_cli() -> (Cli, clap::ArgMatches, Option<config_file::ConfigFile>) {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = (|| {
        let mut command = Cli::command();
        let mut file = None;
        if let Some(path) = config_file::locate(&args) {
            let (with_file, read) = config_file::apply(command, &path)?;
            command = with_file;
            file = Some(read);
        }
        let matches = command.try_get_matches_from(&args)?;
        Ok::<_, clap::Error>((Cli::from_arg_matches(&matches)?, matches, file))
    })();
    parsed.unwrap_or_else(|e| e.exit())
}

/// `peertalk doctor`: its own one-thread runtime, like the chat's.
fn run_doctor(cli: Cli, json: bool) -> ExitCode {
    let checks = match peertalk::doctor::Checks::from_cli(cli) {
        Ok(checks) => checks,
        Err(message) => return report(&Outcome::Usage(message)),
    };
    init_stderr_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return report(&Outcome::Internal(format!("could not start the async runtime: {e}"))),
    };
    let outcome = runtime.block_on(peertalk::doctor::run(checks, json));
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    report(&outcome)
}

/// Writes a generated document to stdout. A reader that stops early (`| head`) is not a
/// failure.
fn print_document(document: &[u8], what: &str) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(document) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            report(&Outcome::Internal(format!("could not write the {what} to stdout: {e}")))
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Logs go to stderr, except while the interface owns the terminal: then to a file, so
/// nothing draws over the screen.
fn init_logging(config: &Config, interface: bool) {
    if !interface {
        init_stderr_logging();
        return;
    }
    let builder = tracing_subscriber::fmt().with_env_filter(log_filter());
    let path = config.log_file.clone().or_else(default_log_file);
    let file = path.and_then(|p| {
        p.parent().map(std::fs::create_dir_all);
        File::options().create(true).append(true).open(p).ok()
    });
    match file {
        Some(file) => builder.with_writer(Mutex::new(file)).with_ansi(false).init(),
        None => builder.with_writer(std::io::sink).init(),
    }
}

fn init_stderr_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn log_filter() -> EnvFilter {
    EnvFilter::try_from_env("PEERTALK_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG))
}

fn default_log_file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))?;
    Some(state.join("peertalk").join("peertalk.log"))
}

/// `peertalk id`: the fingerprint peers see, made on first use.
fn print_identity(path: Option<PathBuf>) -> Outcome {
    let Some(path) = path.or_else(peertalk::peer::default_identity_path) else {
        return Outcome::Identity(
            "there is no state folder ($HOME is not set); give one with --identity PATH".to_owned(),
        );
    };
    match peertalk::peer::Identity::load_or_create(&path) {
        Ok(identity) => {
            println!("sha-256 {}", identity.fingerprint);
            Outcome::Done
        }
        Err(e) => Outcome::Identity(e.to_string()),
    }
}

fn report(outcome: &Outcome) -> ExitCode {
    if let Some(message) = outcome.message() {
        eprintln!("peertalk: {message}");
    }
    outcome.exit_code()
}
