//! Headless mode: standard input lines become messages; messages and events are printed,
//! as `alice: hello` lines (events on stderr) or as JSON lines on stdout.

use std::io::{self, Write as _};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;

use crate::app::Notice;
use crate::cli::{Config, OutputFormat};
use crate::exit::Outcome;
use crate::sanitize::for_terminal;
use crate::session::{self, Frontend, InputLine};

/// Runs the chat headless and returns how it ended.
pub async fn run(config: Config) -> Outcome {
    let input = if config.send.is_empty() { read_stdin() } else { fixed_lines(config.send.clone()) };
    let mut printer = Printer::new(config.format, tokio::io::stdout());
    let outcome = session::run(config, input, &mut printer).await;
    printer.finish(&outcome).await;
    outcome
}

/// Feeds the `--send` messages, then ends the input.
fn fixed_lines(lines: Vec<String>) -> mpsc::Receiver<InputLine> {
    let (tx, rx) = mpsc::channel(lines.len().max(1));
    for line in lines {
        let _ = tx.try_send(InputLine::Text(line));
    }
    rx
}

/// Reads stdin line by line on a task of its own. The small channel is the back-pressure:
/// while the session is not taking input, the reader stops reading.
fn read_stdin() -> mpsc::Receiver<InputLine> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut reader = BufReader::new(tokio::io::stdin());
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(InputLine::Invalid(format!("could not read standard input: {e}"))).await;
                    return;
                }
            }
            line_no += 1;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.is_empty() {
                continue;
            }
            let line = match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(text) => InputLine::Text(text),
                Err(e) => {
                    buf = e.into_bytes();
                    InputLine::Invalid(format!(
                        "line {line_no} of standard input is not UTF-8 text; it was not sent"
                    ))
                }
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// Prints notices.
pub struct Printer<W> {
    format: OutputFormat,
    out: BufWriter<W>,
}

impl<W: AsyncWrite + Unpin> Printer<W> {
    pub fn new(format: OutputFormat, out: W) -> Self {
        Self { format, out: BufWriter::new(out) }
    }

    /// Says how the run ended: a JSON line in JSON mode (the sentence also goes to stderr,
    /// from `main`).
    async fn finish(&mut self, outcome: &Outcome) {
        if self.format == OutputFormat::Json {
            let line = JsonLine::Exit { code: outcome.code(), message: outcome.message() };
            let _ = self.write_json(&line).await;
            let _ = self.out.flush().await;
        }
    }

    async fn write_json(&mut self, line: &JsonLine<'_>) -> io::Result<()> {
        let mut text = serde_json::to_vec(line).map_err(io::Error::other)?;
        text.push(b'\n');
        self.out.write_all(&text).await
    }
}

impl<W: AsyncWrite + Unpin> Frontend for Printer<W> {
    async fn show(&mut self, notice: &Notice) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => self.write_json(&JsonLine::from(notice)).await,
            OutputFormat::Text => match notice {
                Notice::Message { from, text, .. } => {
                    let line = format!("{}: {}\n", for_terminal(from), for_terminal(text));
                    self.out.write_all(line.as_bytes()).await
                }
                other => {
                    if let Some(text) = describe(other) {
                        let _ = writeln!(io::stderr(), "peertalk: {text}");
                    }
                    Ok(())
                }
            },
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.out.flush().await
    }
}

/// The stderr sentence for an event in text mode; `None` for events too chatty to print.
fn describe(notice: &Notice) -> Option<String> {
    let name = |n: &str| for_terminal(n);
    Some(match notice {
        Notice::Joined { room, me, peers } => {
            let here = if peers.is_empty() {
                "waiting for others".to_owned()
            } else {
                format!("here: {}", peers.iter().map(|p| name(p)).collect::<Vec<_>>().join(", "))
            };
            format!("joined room {:?} as {me}; {here}", name(room))
        }
        Notice::PeerJoined { name: n, .. } => format!("{} joined", name(n)),
        Notice::PeerLeft { name: n, .. } => format!("{} left", name(n)),
        Notice::Connected { name: n, path, .. } => match path {
            Some(p) => format!("connected to {} ({} path over {})", name(n), p.kind(), p.protocol),
            None => format!("connected to {}", name(n)),
        },
        Notice::Link { name: n, state, detail, .. } => match detail {
            Some(d) => format!("connection to {} {state}: {d}", name(n)),
            None => format!("connection to {} {state}", name(n)),
        },
        Notice::Undelivered { ids, to, .. } => {
            format!(
                "not delivered to {}: message(s) {}",
                name(to),
                ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            )
        }
        Notice::RelayError { code, message } => format!("relay refused a message ({code}): {message}"),
        Notice::RelayLost { reason } => format!("lost the relay ({reason}); open connections keep working"),
        Notice::InputRejected { reason } => format!("not sent: {reason}"),
        Notice::Warning { text } => for_terminal(text),
        Notice::HostingRelay { url } => {
            format!(
                "no relay answered at {url}, so this client runs one there (it stops when this client exits)"
            )
        }
        Notice::Message { .. } | Notice::Delivered { .. } => return None,
    })
}

/// A line of `--json` output. Every line has a `type`, so messages and events are told
/// apart by one field.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum JsonLine<'a> {
    Message {
        id: u64,
        from: &'a str,
        peer: &'a str,
        ts: u64,
        text: &'a str,
    },
    Delivered {
        id: u64,
        peer: &'a str,
        to: &'a str,
    },
    Undelivered {
        ids: &'a [u64],
        peer: &'a str,
        to: &'a str,
    },
    Joined {
        room: &'a str,
        me: &'a str,
        peers: &'a [String],
    },
    PeerJoined {
        peer: &'a str,
        name: &'a str,
    },
    PeerLeft {
        peer: &'a str,
        name: &'a str,
    },
    Connected {
        peer: &'a str,
        name: &'a str,
        path: Option<&'a str>,
        local: Option<&'a str>,
        remote: Option<&'a str>,
        protocol: Option<&'a str>,
        rtt_ms: Option<f64>,
    },
    Link {
        peer: &'a str,
        name: &'a str,
        state: String,
        detail: Option<&'a str>,
    },
    RelayError {
        code: &'a str,
        message: &'a str,
    },
    RelayLost {
        reason: &'a str,
    },
    InputRejected {
        reason: &'a str,
    },
    Warning {
        text: &'a str,
    },
    HostingRelay {
        url: &'a str,
    },
    Exit {
        code: u8,
        message: Option<&'a str>,
    },
}

impl<'a> From<&'a Notice> for JsonLine<'a> {
    fn from(notice: &'a Notice) -> Self {
        match notice {
            Notice::Message { peer, from, id, ts, text } => {
                Self::Message { id: *id, from, peer: &peer.0, ts: *ts, text }
            }
            Notice::Delivered { id, peer, to } => Self::Delivered { id: *id, peer: &peer.0, to },
            Notice::Undelivered { ids, peer, to } => Self::Undelivered { ids, peer: &peer.0, to },
            Notice::Joined { room, me, peers } => Self::Joined { room, me: &me.0, peers },
            Notice::PeerJoined { peer, name } => Self::PeerJoined { peer: &peer.0, name },
            Notice::PeerLeft { peer, name } => Self::PeerLeft { peer: &peer.0, name },
            Notice::Connected { peer, name, path } => Self::Connected {
                peer: &peer.0,
                name,
                path: path.as_ref().map(|p| p.kind()),
                local: path.as_ref().map(|p| p.local.as_str()),
                remote: path.as_ref().map(|p| p.remote.as_str()),
                protocol: path.as_ref().map(|p| p.protocol.as_str()),
                rtt_ms: path.as_ref().and_then(|p| p.rtt_ms),
            },
            Notice::Link { peer, name, state, detail } => {
                Self::Link { peer: &peer.0, name, state: state.to_string(), detail: detail.as_deref() }
            }
            Notice::RelayError { code, message } => Self::RelayError { code: code.as_str(), message },
            Notice::RelayLost { reason } => Self::RelayLost { reason },
            Notice::InputRejected { reason } => Self::InputRejected { reason },
            Notice::Warning { text } => Self::Warning { text },
            Notice::HostingRelay { url } => Self::HostingRelay { url },
        }
    }
}
