//! Headless mode: standard input lines become messages; messages and events are printed,
//! as `alice: hello` lines (events on stderr) or as JSON lines on stdout.

use std::io::{self, Write as _};

use peertalk_signal::proto::PeerId;
use serde::Serialize;

mod progress;
mod stdio;

use crate::app::{CallState, FileTrouble, Notice, human_size};
use crate::cli::{Config, OutputFormat};
use crate::command::{self, Command};
use crate::exit::Outcome;
use crate::sanitize::for_terminal;
use crate::session::{self, Frontend, UserInput};
use stdio::{IO_BUFFER, Input, StdoutWriter};

/// Runs the chat headless and returns how it ended.
pub async fn run(config: Config) -> Outcome {
    // A script that names what it sends (--send, --send-file) does not read stdin.
    let input = if config.send.is_empty() && config.send_files.is_empty() {
        Input::stdin(config.commands)
    } else {
        Input::fixed(config.send.clone())
    };
    let mut printer = Printer::new(config.format, input);
    let outcome = session::run(config, &mut printer).await;
    printer.finish(&outcome).await;
    outcome
}

/// A `--commands` input line: a command, or a message (`//` escapes a leading slash).
fn command_input(line: String, line_no: u64) -> UserInput {
    match command::parse(&line) {
        None => UserInput::Line(command::unescape(&line).to_owned()),
        Some(Command::Call) => UserInput::Call,
        Some(Command::Hangup) => UserInput::Hangup,
        Some(Command::Mute) => UserInput::Mute,
        Some(Command::Quit) => UserInput::Quit,
        Some(Command::Nick(name)) => UserInput::Rename(name),
        Some(Command::Msg { to, text }) => UserInput::Private { to, text },
        Some(Command::Send(args)) => {
            let (to, path) = command::send_target(&args, std::path::Path::is_file);
            UserInput::SendFile { to, path }
        }
        Some(Command::Answer { file, accept }) => UserInput::AnswerOffer { file, accept },
        Some(Command::Cancel(file)) => UserInput::CancelFile(file),
        Some(Command::Verify { name, confirm }) => UserInput::Verify { name, confirm },
        Some(
            Command::Help
            | Command::Peers
            | Command::Members
            | Command::Info(_)
            | Command::Clear
            | Command::Search(_),
        ) => UserInput::Invalid(format!(
            "line {line_no}: {line} is for the interface; scripts can use /msg, /send, /accept, /decline, /cancel, /verify, /call, /hangup, /mute, /nick and /quit"
        )),
        Some(Command::Unknown(why)) => UserInput::Invalid(format!("line {line_no}: {why}")),
    }
}

/// Prints notices.
pub struct Printer {
    format: OutputFormat,
    input: Input,
    pending: Vec<u8>,
    out: StdoutWriter,
    bars: progress::Bars,
}

impl Printer {
    fn new(format: OutputFormat, input: Input) -> Self {
        Self {
            format,
            input,
            pending: Vec::with_capacity(IO_BUFFER),
            out: StdoutWriter::spawn(),
            bars: progress::Bars::new(),
        }
    }

    /// Says how the run ended (a JSON line in JSON mode; the sentence also goes to stderr,
    /// from `main`) and writes out everything.
    async fn finish(&mut self, outcome: &Outcome) {
        if self.format == OutputFormat::Json {
            self.push_json(&JsonLine::Exit { code: outcome.code(), message: outcome.message() });
        }
        let _ = self.flush().await;
        if let Err(e) = self.out.close().await {
            let _ = writeln!(io::stderr(), "peertalk: could not write to stdout: {e}");
        }
    }

    fn push_json(&mut self, line: &JsonLine<'_>) {
        // Serialising our own enum of strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.pending, line);
        self.pending.push(b'\n');
    }
}

impl Frontend for Printer {
    async fn next_input(&mut self) -> UserInput {
        self.input.next().await
    }

    fn paced(&self) -> bool {
        true
    }

    async fn show(&mut self, notice: &Notice) -> io::Result<()> {
        // Ten a second per peer: for the interface's meter, not for a script's log.
        if matches!(notice, Notice::AudioLevel { .. }) {
            return Ok(());
        }
        self.bars.show(notice);
        match self.format {
            OutputFormat::Json => self.push_json(&JsonLine::from(notice)),
            OutputFormat::Text => match notice {
                Notice::Message { from, text, private, .. } => {
                    let private = if *private { " (private)" } else { "" };
                    let line = format!("{}{private}: {}\n", for_terminal(from), for_terminal(text));
                    self.pending.extend_from_slice(line.as_bytes());
                }
                other => {
                    if let Some(text) = describe(other) {
                        self.bars.println(&format!("peertalk: {text}"));
                    }
                }
            },
        }
        if self.pending.len() >= IO_BUFFER {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(IO_BUFFER));
        self.out.write(chunk).await
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
                format!("here: {}", peers.iter().map(|p| name(&p.name)).collect::<Vec<_>>().join(", "))
            };
            format!("joined room {:?} as {me}; {here}", name(room))
        }
        Notice::PeerJoined { name: n, .. } => format!("{} joined", name(n)),
        Notice::PeerLeft { name: n, .. } => format!("{} left", name(n)),
        Notice::Connected { name: n, path, plain, safety, verified, .. } => {
            let how = match path {
                Some(p) => format!(" ({} path over {})", p.kind(), p.protocol),
                None => String::new(),
            };
            let plain = if *plain { crate::app::PLAIN_PEER } else { "" };
            let trust = crate::app::connected_suffix(safety.as_deref(), *verified);
            format!("connected to {}{how}{plain}{trust}", name(n))
        }
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
        Notice::RelayRetrying { attempt, delay_ms } => {
            format!("reconnecting to the relay: attempt {attempt} in {:.1} s", *delay_ms as f64 / 1000.0)
        }
        Notice::RelayBack { me, resumed: true, .. } => format!("back with the relay as {me}"),
        Notice::RelayBack { me, resumed: false, .. } => {
            format!("back with the relay, as {me}: it could not give back the old id")
        }
        Notice::InputRejected { reason } => format!("not sent: {reason}"),
        Notice::Warning { text } => for_terminal(text),
        Notice::HostingRelay { url, page } => {
            format!(
                "no relay answered at {url}, so this client runs one there (it stops when this client exits); browsers join at {page}"
            )
        }
        Notice::Renamed { name: n } => format!("you are now {}", name(n)),
        Notice::Call(CallState::Calling) => {
            "calling: your audio goes out once a peer has negotiated it".to_owned()
        }
        Notice::Call(CallState::Live { source }) => format!("in the call, sending the {source}"),
        Notice::Call(CallState::Ended { reason }) => format!("call ended: {reason}"),
        Notice::Muted { muted: true } => "muted: the peers hear nothing from you".to_owned(),
        Notice::Muted { muted: false } => "unmuted".to_owned(),
        Notice::PeerAudio { name: n, receiving: true, .. } => format!("{} is sending audio", name(n)),
        Notice::PeerAudio { name: n, receiving: false, .. } => format!("{} stopped sending audio", name(n)),
        Notice::Safety { name: n, words, verified: true, .. } => {
            format!("{} is verified; safety words: {}", name(n), crate::app::with_emoji(words))
        }
        Notice::Safety { name: n, words, .. } => format!(
            "safety words with {}: {}; if {} sees the same, /verify {} yes",
            name(n),
            crate::app::with_emoji(words),
            name(n),
            name(n)
        ),
        Notice::IdentityChanged { name: n, known, now, refused, .. } => format!(
            "WARNING: {} connected with certificate {now}, not the {known} you verified; someone may be in the middle{}",
            name(n),
            if *refused {
                " (refused: --strict-identity)"
            } else {
                "; compare safety words before trusting this connection"
            }
        ),
        Notice::FileOffer { file, incoming: true, who, name: file_name, size, sha256, ask, .. } => {
            let answer = if *ask { format!("; /accept {file} or /decline {file}") } else { String::new() };
            format!(
                "{} offers {} ({}, SHA-256 {}){answer}",
                name(who),
                name(file_name),
                human_size(*size),
                &sha256[..sha256.len().min(16)]
            )
        }
        Notice::FileOffer { who, name: file_name, size, .. } => {
            format!("offering {} ({}) to {}", name(file_name), human_size(*size), name(who))
        }
        Notice::FileResumed { who, name: file_name, offset, size, .. } => format!(
            "the transfer of {} with {} goes on from {} of {}",
            name(file_name),
            name(who),
            human_size(*offset),
            human_size(*size)
        ),
        Notice::FileDone { incoming: true, who, name: file_name, size, path, .. } => format!(
            "received {} from {} ({}, SHA-256 checked), saved as {}",
            name(file_name),
            name(who),
            human_size(*size),
            name(path.as_deref().unwrap_or_default())
        ),
        Notice::FileDone { who, name: file_name, size, .. } => {
            format!("{} has {} ({}, SHA-256 checked)", name(who), name(file_name), human_size(*size))
        }
        Notice::FileFailed { incoming, who, name: file_name, trouble, reason, .. } => {
            let with = match (who, incoming) {
                (Some(who), true) => format!(" from {}", name(who)),
                (Some(who), false) => format!(" to {}", name(who)),
                (None, _) => String::new(),
            };
            let what = match trouble {
                FileTrouble::Declined => "was declined",
                FileTrouble::Cancelled => "was cancelled",
                FileTrouble::Failed => "failed",
            };
            format!("{}{with} {what}: {}", name(file_name), name(reason))
        }
        Notice::Message { .. }
        | Notice::Delivered { .. }
        | Notice::Settled { .. }
        | Notice::Transmitted { .. }
        | Notice::Sent { .. }
        | Notice::FileProgress { .. }
        | Notice::AudioLevel { .. } => {
            return None;
        }
    })
}

/// A line of `--json` output. Every line has a `type`, so messages and events are told
/// apart by one field.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum JsonLine<'a> {
    Sent {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<&'a str>,
    },
    Renamed {
        name: &'a str,
    },
    Message {
        id: u64,
        from: &'a str,
        peer: &'a str,
        ts: u64,
        text: &'a str,
        /// Sent to us alone; left out when false.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        private: bool,
    },
    Delivered {
        id: u64,
        peer: &'a str,
        to: &'a str,
        acked: usize,
        of: usize,
    },
    /// Every member a message was for is accounted for.
    Settled {
        id: u64,
        delivered: &'a [String],
        transmitted: &'a [String],
        missed: &'a [String],
    },
    Undelivered {
        ids: &'a [u64],
        peer: &'a str,
        to: &'a str,
    },
    /// A peer that sends no acknowledgements has the message in its SCTP stack.
    Transmitted {
        id: u64,
        peer: &'a str,
        to: &'a str,
    },
    Joined {
        room: &'a str,
        me: &'a str,
        peers: Vec<&'a str>,
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
        /// The peer is not peertalk (a page): plain text, no acknowledgements.
        plain: bool,
        /// The safety words with this peer (both sides see the same ones unless someone
        /// is in the middle); absent when either side has no lasting identity.
        safety: Option<&'a str>,
        /// Its certificate is the one verified before for its name.
        verified: bool,
    },
    /// The safety words with a member (`/verify`), and its certificate.
    Safety {
        peer: &'a str,
        name: &'a str,
        words: &'a str,
        fingerprint: &'a str,
        verified: bool,
    },
    /// A member came with a certificate other than the one verified for its name.
    IdentityChanged {
        peer: &'a str,
        name: &'a str,
        known: &'a str,
        now: &'a str,
        refused: bool,
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
    RelayRetrying {
        attempt: u32,
        delay_ms: u64,
    },
    RelayBack {
        me: &'a str,
        resumed: bool,
        peers: Vec<&'a str>,
    },
    InputRejected {
        reason: &'a str,
    },
    Warning {
        text: &'a str,
    },
    HostingRelay {
        url: &'a str,
        page: &'a str,
    },
    /// `state` is `calling`, `live` (with `source`) or `ended` (with `reason`).
    Call {
        state: &'static str,
        source: Option<&'a str>,
        reason: Option<&'a str>,
    },
    Muted {
        muted: bool,
    },
    PeerAudio {
        peer: &'a str,
        name: &'a str,
        receiving: bool,
    },
    AudioLevel {
        peer: &'a str,
        dbfs: f32,
    },
    /// A file offered to us or by us.
    FileOffer {
        #[serde(flatten)]
        transfer: Transfer<'a>,
        size: u64,
        sha256: &'a str,
    },
    /// At most ten a second per transfer. `rate` in bytes a second.
    FileProgress {
        #[serde(flatten)]
        transfer: Transfer<'a>,
        bytes: u64,
        size: u64,
        rate: u64,
    },
    /// The transfer goes on from `offset` on a new connection.
    FileResumed {
        #[serde(flatten)]
        transfer: Transfer<'a>,
        offset: u64,
        size: u64,
    },
    /// The receiver checked the SHA-256 and kept the file (`path`, when we received it);
    /// `sent` the bytes we put on the wire for it (when we sent it).
    FileDone {
        #[serde(flatten)]
        transfer: Transfer<'a>,
        size: u64,
        sha256: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sent: Option<u64>,
    },
    /// `kind` is `declined`, `cancelled` or `failed`.
    FileFailed {
        #[serde(flatten)]
        transfer: Transfer<'a>,
        kind: &'static str,
        reason: &'a str,
    },
    Exit {
        code: u8,
        message: Option<&'a str>,
    },
}

/// The fields every file event starts with: our number for the transfer, its direction
/// (`in` with `from`, or `out` with `to`), the member's peer id and the file's name. The
/// peer is left out only when a file could not be read before it was offered.
#[derive(Debug, Serialize)]
struct Transfer<'a> {
    file: u64,
    direction: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    name: &'a str,
}

impl<'a> Transfer<'a> {
    fn new(file: u64, incoming: bool, peer: Option<&'a PeerId>, who: Option<&'a str>, name: &'a str) -> Self {
        let (direction, from, to) = if incoming { ("in", who, None) } else { ("out", None, who) };
        Self { file, direction, peer: peer.map(|p| p.0.as_str()), from, to, name }
    }
}

impl<'a> From<&'a Notice> for JsonLine<'a> {
    fn from(notice: &'a Notice) -> Self {
        match notice {
            Notice::Message { peer, from, id, ts, text, private } => {
                Self::Message { id: *id, from, peer: &peer.0, ts: *ts, text, private: *private }
            }
            Notice::Sent { id, to, .. } => Self::Sent { id: *id, to: to.as_deref() },
            Notice::Renamed { name } => Self::Renamed { name },
            Notice::Delivered { id, peer, to, acked, of } => {
                Self::Delivered { id: *id, peer: &peer.0, to, acked: *acked, of: *of }
            }
            Notice::Settled { id, delivered, transmitted, missed } => {
                Self::Settled { id: *id, delivered, transmitted, missed }
            }
            Notice::Undelivered { ids, peer, to } => Self::Undelivered { ids, peer: &peer.0, to },
            Notice::Transmitted { id, peer, to } => Self::Transmitted { id: *id, peer: &peer.0, to },
            Notice::Joined { room, me, peers } => {
                Self::Joined { room, me: &me.0, peers: peers.iter().map(|p| p.name.as_str()).collect() }
            }
            Notice::PeerJoined { peer, name } => Self::PeerJoined { peer: &peer.0, name },
            Notice::PeerLeft { peer, name } => Self::PeerLeft { peer: &peer.0, name },
            Notice::Connected { peer, name, path, plain, safety, verified } => Self::Connected {
                peer: &peer.0,
                name,
                path: path.as_ref().map(|p| p.kind()),
                local: path.as_ref().map(|p| p.local.as_str()),
                remote: path.as_ref().map(|p| p.remote.as_str()),
                protocol: path.as_ref().map(|p| p.protocol.as_str()),
                rtt_ms: path.as_ref().and_then(|p| p.rtt_ms),
                plain: *plain,
                safety: safety.as_deref(),
                verified: *verified,
            },
            Notice::Safety { peer, name, words, fingerprint, verified } => {
                Self::Safety { peer: &peer.0, name, words, fingerprint, verified: *verified }
            }
            Notice::IdentityChanged { peer, name, known, now, refused } => {
                Self::IdentityChanged { peer: &peer.0, name, known, now, refused: *refused }
            }
            Notice::Link { peer, name, state, detail } => {
                Self::Link { peer: &peer.0, name, state: state.to_string(), detail: detail.as_deref() }
            }
            Notice::RelayError { code, message } => Self::RelayError { code: code.as_str(), message },
            Notice::RelayLost { reason } => Self::RelayLost { reason },
            Notice::RelayRetrying { attempt, delay_ms } => {
                Self::RelayRetrying { attempt: *attempt, delay_ms: *delay_ms }
            }
            Notice::RelayBack { me, resumed, peers } => Self::RelayBack {
                me: &me.0,
                resumed: *resumed,
                peers: peers.iter().map(|p| p.name.as_str()).collect(),
            },
            Notice::InputRejected { reason } => Self::InputRejected { reason },
            Notice::Warning { text } => Self::Warning { text },
            Notice::HostingRelay { url, page } => Self::HostingRelay { url, page },
            Notice::Call(state) => match state {
                CallState::Calling => Self::Call { state: "calling", source: None, reason: None },
                CallState::Live { source } => {
                    Self::Call { state: "live", source: Some(source), reason: None }
                }
                CallState::Ended { reason } => {
                    Self::Call { state: "ended", source: None, reason: Some(reason) }
                }
            },
            Notice::Muted { muted } => Self::Muted { muted: *muted },
            Notice::PeerAudio { peer, name, receiving } => {
                Self::PeerAudio { peer: &peer.0, name, receiving: *receiving }
            }
            Notice::AudioLevel { peer, dbfs } => Self::AudioLevel { peer: &peer.0, dbfs: *dbfs },
            Notice::FileOffer { file, incoming, peer, who, name, size, sha256, .. } => Self::FileOffer {
                transfer: Transfer::new(*file, *incoming, Some(peer), Some(who), name),
                size: *size,
                sha256,
            },
            Notice::FileProgress { file, incoming, peer, who, name, bytes, size, rate } => {
                Self::FileProgress {
                    transfer: Transfer::new(*file, *incoming, Some(peer), Some(who), name),
                    bytes: *bytes,
                    size: *size,
                    // Bytes a second: whole ones are enough.
                    rate: *rate as u64,
                }
            }
            Notice::FileResumed { file, incoming, peer, who, name, offset, size } => Self::FileResumed {
                transfer: Transfer::new(*file, *incoming, Some(peer), Some(who), name),
                offset: *offset,
                size: *size,
            },
            Notice::FileDone { file, incoming, peer, who, name, size, sha256, path, sent } => {
                Self::FileDone {
                    transfer: Transfer::new(*file, *incoming, Some(peer), Some(who), name),
                    size: *size,
                    sha256,
                    path: path.as_deref(),
                    sent: (!*incoming).then_some(*sent),
                }
            }
            Notice::FileFailed { file, incoming, peer, who, name, trouble, reason } => Self::FileFailed {
                transfer: Transfer::new(*file, *incoming, peer.as_ref(), who.as_deref(), name),
                kind: trouble.as_str(),
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use peertalk_signal::proto::PeerId;

    use super::*;

    #[test]
    fn a_hostile_file_name_is_printed_inert_in_text_and_escaped_in_json() {
        let offer = Notice::FileOffer {
            file: 1,
            incoming: true,
            peer: PeerId("p1".into()),
            who: "bob".into(),
            name: "\u{1b}]0;pwned\u{7}.txt".into(),
            size: 10,
            sha256: "ab".repeat(32),
            ask: false,
        };
        let text = describe(&offer).expect("said");
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.starts_with("bob offers ␛]0;pwned␇.txt (10 bytes"), "{text}");
        let json = serde_json::to_string(&JsonLine::from(&offer)).expect("json");
        assert!(json.contains(r#""name":"\u001b]0;pwned\u0007.txt""#), "{json}");
        assert!(json.contains(r#""direction":"in","peer":"p1","from":"bob""#), "{json}");
    }
}
