//! `peertalk-signal`: run the relay.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use peertalk_signal::RelayConfig;
use peertalk_signal::proto::DEFAULT_MAX_FRAME_BYTES;
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
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "PEERTALK_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,

    /// Largest text frame accepted, in bytes; a larger one closes that connection (code 1009).
    #[arg(long, env = "PEERTALK_SIGNAL_MAX_FRAME_BYTES", default_value_t = DEFAULT_MAX_FRAME_BYTES)]
    max_frame_bytes: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peertalk-signal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cli.listen).await.with_context(|| {
        format!("could not listen on {}; is another relay already running there? Pick another address with --listen", cli.listen)
    })?;
    let addr = listener.local_addr().context("the listening socket has no address")?;
    println!("peertalk-signal listening on ws://{addr}");
    tracing::info!(%addr, "listening");
    let config = RelayConfig { max_frame_bytes: cli.max_frame_bytes, ..RelayConfig::default() };
    peertalk_signal::serve(listener, config, shutdown_signal()).await?;
    Ok(())
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
