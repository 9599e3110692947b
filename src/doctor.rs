//! `peertalk doctor`: checks, one line each, what a chat needs — the relay, UDP through
//! each STUN server, the NAT's mapping, each TURN server's credentials, the audio devices —
//! and says what to do about each problem. The checks run at once and print in that order.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use peertalk_signal::proto::ErrorCode;
use serde::Serialize;

use crate::cli::{self, Cli, IceServer, SignalProtocol, SignalTarget};
use crate::exit::Outcome;
use crate::peer::stun;
use crate::peer::turn::{self, TurnProblem};
use crate::signaling::{self, JoinError, Membership};

/// What to check, from the same flags (and config file) a chat uses.
pub struct Checks {
    relays: Vec<SignalTarget>,
    protocol: SignalProtocol,
    tls: Arc<rustls::ClientConfig>,
    secret: Option<String>,
    token: Option<String>,
    ice_servers: Vec<IceServer>,
    bind: IpAddr,
}

impl Checks {
    /// The settings a doctor needs; the error is a sentence about the flag.
    pub fn from_cli(cli: Cli) -> Result<Self, String> {
        let relays = if cli.signal.is_empty() {
            vec![SignalTarget::Default]
        } else {
            cli.signal
                .iter()
                .map(|url| cli::check_signal_url(url).map(SignalTarget::Given))
                .collect::<Result<_, _>>()?
        };
        let ice_servers = cli
            .ice_servers
            .iter()
            .map(|url| cli::check_ice_server(url, cli.ice_username.as_deref(), cli.ice_credential.as_deref()))
            .collect::<Result<_, _>>()?;
        let extra_roots = match &cli.ca_file {
            Some(path) => cli::load_ca_file(path)?,
            None => Vec::new(),
        };
        // Unlike a chat on a loopback relay, the STUN and TURN servers may be anywhere.
        let bind = match cli.bind.first() {
            Some(bind) => cli::parse_bind(bind)?.ip(),
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        Ok(Self {
            relays,
            protocol: cli.signal_protocol,
            tls: signaling::client_tls(&extra_roots),
            secret: cli.room_secret,
            token: cli.token,
            ice_servers,
            bind,
        })
    }
}

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, or is not needed, but something may bite: the line says what.
    Warning,
    /// A chat would hit this.
    Failed,
    /// Nothing to check with these settings.
    Skipped,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// relay, stun, nat, turn or audio.
    pub check: &'static str,
    /// What was checked: a URL, a server, a device.
    pub target: String,
    pub status: Status,
    pub detail: String,
    /// What to do, for a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn new(
        check: &'static str,
        target: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) -> Self {
        Self { check, target: target.into(), status, detail: detail.into(), fix: None }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs every check, prints the findings (text lines, or JSON lines with `json`) and a
/// summary, and ends [`Outcome::DoctorFailed`] when a chat would hit a failure.
pub async fn run(checks: Checks, json: bool) -> Outcome {
    let (relays, (stun, nat), turn) =
        tokio::join!(check_relays(&checks), check_stun(&checks), check_turn(&checks));
    let mut findings = relays;
    findings.extend(stun);
    findings.push(nat);
    findings.extend(turn);
    findings.push(check_audio().await);
    let failed: Vec<String> = findings
        .iter()
        .filter(|f| f.status == Status::Failed)
        .map(|f| format!("{} {}", f.check, f.target))
        .collect();
    let count = |status| findings.iter().filter(|f| f.status == status).count();
    let mut out = String::new();
    if json {
        for finding in &findings {
            out.push_str(&serde_json::to_string(finding).unwrap_or_default());
            out.push('\n');
        }
        let summary = serde_json::json!({ "summary": {
            "ok": count(Status::Ok), "warning": count(Status::Warning),
            "failed": count(Status::Failed), "skipped": count(Status::Skipped),
        }});
        out.push_str(&format!("{summary}\n"));
    } else {
        for finding in &findings {
            out.push_str(&format!(
                "{:<8} {:<6} {}: {}\n",
                finding.status.word(),
                finding.check,
                finding.target,
                finding.detail
            ));
            if let Some(fix) = &finding.fix {
                out.push_str(&format!("{:16}{fix}\n", ""));
            }
        }
        out.push_str(&if failed.is_empty() {
            format!("Everything a chat needs works ({} warnings).\n", count(Status::Warning))
        } else {
            format!("{} of {} checks failed.\n", failed.len(), findings.len())
        });
    }
    print!("{out}");
    if failed.is_empty() {
        Outcome::Done
    } else {
        Outcome::DoctorFailed(format!("{} failed; the lines above say what to do", failed.join(", ")))
    }
}

async fn check_relays(checks: &Checks) -> Vec<Finding> {
    let mut findings = Vec::new();
    for relay in &checks.relays {
        findings.push(check_relay(checks, relay).await);
    }
    findings
}

/// Joins a room of its own (nobody else's) and leaves: reachable, a trusted certificate,
/// our protocol version.
async fn check_relay(checks: &Checks, relay: &SignalTarget) -> Finding {
    let url = relay.url().to_owned();
    let finding = |status, detail: String| Finding::new("relay", url.clone(), status, detail);
    let room = format!("peertalk-doctor-{:016x}", rand_u64());
    let started = Instant::now();
    let outcome = match checks.protocol {
        SignalProtocol::Classic => {
            let url = crate::classic::room_url(&url, &room, checks.secret.as_deref());
            signaling::open(&url, Some(&checks.tls)).await.map(drop)
        }
        SignalProtocol::Peertalk => signaling::join(Membership {
            url: url.clone(),
            fallbacks: Vec::new(),
            room,
            name: "peertalk-doctor".to_owned(),
            secret: checks.secret.clone(),
            token: checks.token.clone(),
            tls: Some(Arc::clone(&checks.tls)),
        })
        .await
        .map(drop),
    };
    let took = started.elapsed().as_secs_f64() * 1e3;
    match outcome {
        Ok(()) if checks.protocol == SignalProtocol::Classic => finding(
            Status::Ok,
            format!("answered in {took:.0} ms (a classic relay has no protocol version to check)"),
        ),
        Ok(()) => finding(
            Status::Ok,
            format!("speaks protocol version {}; joined a room of its own in {took:.0} ms", peertalk_signal::proto::PROTOCOL_VERSION),
        ),
        Err(JoinError::Unreachable { reason, .. }) if *relay == SignalTarget::Default => finding(
            Status::Warning,
            format!("nothing answers at the default address ({reason})"),
        )
        .fix("a chat starts a relay here in-process, which peers on this machine can use; peers elsewhere need --signal URL"),
        Err(JoinError::Unreachable { reason, .. }) => {
            let fix = if signaling::is_certificate_problem(&reason) {
                "pass the CA that signed the relay's certificate with --ca-file, or ask the relay's operator for a certificate from a public CA"
            } else {
                "check the URL, and that the relay runs and its port is open from here"
            };
            finding(Status::Failed, format!("could not be reached: {reason}")).fix(fix)
        }
        Err(JoinError::Refused { code, message, .. }) => refused(finding, checks, code, &message),
        Err(JoinError::Rejected { status, body, .. }) => {
            finding(Status::Failed, format!("turned the WebSocket down (HTTP {status}): {body}"))
                .fix("check the URL's path; a relay that only admits some origins or a secret says so here")
        }
        Err(JoinError::Protocol { detail, .. }) => finding(Status::Failed, format!("does not speak peertalk's protocol: {detail}"))
            .fix("check the URL; for a Spring-style relay use --signal-protocol classic"),
    }
}

/// A relay that answered with an error: it speaks our protocol, but may refuse our joins.
fn refused(
    finding: impl Fn(Status, String) -> Finding,
    checks: &Checks,
    code: ErrorCode,
    message: &str,
) -> Finding {
    let said = format!("answered, and refused a join ({code}): {message}");
    match code {
        ErrorCode::UnsupportedVersion => finding(Status::Failed, said).fix(
            "the relay speaks another protocol version: update peertalk, or ask the relay's operator to",
        ),
        // A token is for one room, never the doctor's: it is checked when the chat joins.
        ErrorCode::Forbidden if checks.token.is_some() => finding(
            Status::Warning,
            format!(
                "speaks our protocol; admits joins by room ({code}), so --token is checked when a chat joins its room"
            ),
        ),
        ErrorCode::Forbidden if checks.secret.is_some() => {
            finding(Status::Failed, said).fix("the room secret is wrong: check --room-secret")
        }
        ErrorCode::Forbidden => finding(Status::Failed, said)
            .fix("the relay wants a room secret (--room-secret) or a join token (--token) from its operator"),
        ErrorCode::ServerFull | ErrorCode::TooManyRooms | ErrorCode::RateLimited => {
            finding(Status::Warning, said).fix("the relay is busy; try again later")
        }
        _ => finding(Status::Failed, said),
    }
}

/// STUN bindings from one socket, so the answers of two servers show the NAT's mapping.
async fn check_stun(checks: &Checks) -> (Vec<Finding>, Finding) {
    let servers: Vec<&IceServer> = checks.ice_servers.iter().filter(|s| !s.is_turn()).collect();
    let nat = |status, detail: &str| Finding::new("nat", "mapping", status, detail);
    if servers.is_empty() {
        let skipped = Finding::new("stun", "-", Status::Skipped, "no stun: server given")
            .fix("peers on other networks need one to find a path: --ice-server stun:HOST:PORT");
        return (vec![skipped], nat(Status::Skipped, "needs two STUN servers to tell"));
    }
    let socket = match tokio::net::UdpSocket::bind(SocketAddr::new(checks.bind, 0)).await {
        Ok(socket) => socket,
        Err(e) => {
            let failed =
                Finding::new("stun", checks.bind.to_string(), Status::Failed, format!("no UDP socket: {e}"))
                    .fix("check --bind");
            return (vec![failed], nat(Status::Skipped, "no UDP socket"));
        }
    };
    let mut findings = Vec::new();
    let mut mapped = Vec::new();
    let mut own = Vec::new();
    for server in servers {
        let host = server.url.split_once(':').map_or("", |(_, rest)| rest);
        let host = host.split_once('?').map_or(host, |(h, _)| h);
        let address = match resolve(host).await {
            Ok(address) => address,
            Err(why) => {
                findings.push(
                    Finding::new("stun", &server.url, Status::Failed, why).fix("check the server's name"),
                );
                continue;
            }
        };
        if let (Some(ip), Ok(local)) = (route_ip(checks.bind, address).await, socket.local_addr()) {
            own.push(SocketAddr::new(ip, local.port()));
        }
        match stun::binding(&socket, address).await {
            Ok(reflexive) => {
                mapped.push(reflexive);
                findings.push(Finding::new(
                    "stun",
                    &server.url,
                    Status::Ok,
                    format!("UDP gets out; this machine is seen at {reflexive}"),
                ));
            }
            Err(problem) => findings.push(
                Finding::new("stun", &server.url, Status::Failed, problem.to_string())
                    .fix("check that the server runs, and that this network lets UDP out"),
            ),
        }
    }
    let nat = match &mapped[..] {
        [] | [_] => nat(Status::Skipped, "needs answers from two STUN servers to tell"),
        [first, rest @ ..] if rest.iter().all(|m| m == first) && own.contains(first) => {
            nat(Status::Ok, "no NAT: the servers see this machine's own address")
        }
        [first, rest @ ..] if rest.iter().all(|m| m == first) => nat(
            Status::Ok,
            "endpoint-independent: every server sees the same address, so direct paths are likely without TURN",
        ),
        _ => nat(
            Status::Warning,
            &format!(
                "endpoint-dependent (the servers see {}): direct paths to peers behind NATs are unlikely",
                mapped.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        )
        .fix("give a TURN server (--ice-server turn:HOST:PORT with --ice-username and --ice-credential)"),
    };
    (findings, nat)
}

/// The address this machine sends from to reach `server`, as the routing table picks it.
async fn route_ip(bind: IpAddr, server: SocketAddr) -> Option<IpAddr> {
    if !bind.is_unspecified() {
        return Some(bind);
    }
    let probe = tokio::net::UdpSocket::bind(SocketAddr::new(bind, 0)).await.ok()?;
    probe.connect(server).await.ok()?;
    probe.local_addr().ok().map(|a| a.ip())
}

/// `HOST:PORT` (3478 when the port is left out) to one address.
async fn resolve(host: &str) -> Result<SocketAddr, String> {
    let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        host.to_owned()
    } else {
        format!("{host}:3478")
    };
    match tokio::net::lookup_host(&with_port).await {
        Ok(mut addresses) => addresses.next().ok_or_else(|| format!("{host} has no address")),
        Err(e) => Err(format!("could not look up {host}: {e}")),
    }
}

async fn check_turn(checks: &Checks) -> Vec<Finding> {
    let servers: Vec<&IceServer> = checks.ice_servers.iter().filter(|s| s.is_turn()).collect();
    if servers.is_empty() {
        return vec![Finding::new("turn", "-", Status::Skipped, "no turn: server given")];
    }
    let bind = SocketAddr::new(checks.bind, 0);
    let results = futures_util::future::join_all(servers.iter().map(|s| turn::check(s, bind))).await;
    servers
        .iter()
        .zip(results)
        .map(|(server, result)| {
            let finding = |status, detail: String| Finding::new("turn", &server.url, status, detail);
            match result {
                Ok(relayed) => finding(
                    Status::Ok,
                    format!("user {} may relay; it gave {relayed} and took it back", server.username),
                ),
                Err(problem @ (TurnProblem::Refused { .. } | TurnProblem::Failed { .. })) => {
                    finding(Status::Failed, problem.to_string())
                        .fix("check --ice-username and --ice-credential")
                }
                Err(problem @ TurnProblem::Unreachable { .. }) => {
                    finding(Status::Failed, problem.to_string())
                        .fix("check that the server runs, and that this network lets UDP out to it")
                }
                Err(problem @ TurnProblem::Unsupported { .. }) => {
                    finding(Status::Failed, problem.to_string())
                }
            }
        })
        .collect()
}

#[cfg(feature = "voice")]
async fn check_audio() -> Finding {
    let (input, output) = tokio::task::spawn_blocking(crate::audio::device::try_devices)
        .await
        .unwrap_or_else(|e| (Err(e.to_string()), Err(e.to_string())));
    let fix = "calls need a sound card; `arecord -l` and `aplay -l` list them (chat and files work without)";
    match (input, output) {
        (Ok(input), Ok(output)) => Finding::new(
            "audio",
            "devices",
            Status::Ok,
            format!("the microphone {input:?} and the speakers {output:?} open at 48 kHz"),
        ),
        (input, output) => Finding::new(
            "audio",
            "devices",
            Status::Warning,
            [input.err(), output.err()].into_iter().flatten().collect::<Vec<_>>().join("; "),
        )
        .fix(fix),
    }
}

#[cfg(not(feature = "voice"))]
#[expect(clippy::unused_async, reason = "the same shape as the check with voice")]
async fn check_audio() -> Finding {
    Finding::new("audio", "devices", Status::Skipped, "this peertalk was built without voice (calls)")
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // A room name only needs to be unlikely to meet anyone's.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
}
