//! Checking TURN servers before any peer is dialled. webrtc-rs 0.21 logs a failed
//! allocation and goes on without a relay candidate, so a wrong password would only show
//! as ICE failing many seconds later. Allocating once ourselves (and releasing it at once)
//! names the server and the reason up front.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::turn::client::{Client, ClientConfig, Event};
use tokio::net::UdpSocket;

use crate::cli::IceServer;

/// How long a TURN server has to answer an allocation.
pub const TURN_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a TURN server cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnProblem {
    #[error("TURN server {server} refused the credentials for user {user} ({detail})")]
    Refused { server: String, user: String, detail: String },
    #[error("TURN server {server} refused to relay for user {user}: {detail}")]
    Failed { server: String, user: String, detail: String },
    #[error("TURN server {server} did not answer within {} s", TURN_ANSWER_TIMEOUT.as_secs())]
    Unreachable { server: String },
    #[error("TURN server {server} cannot be used by peertalk: {detail}")]
    Unsupported { server: String, detail: String },
}

/// What webrtc-rs 0.21 can use: plain `turn:` over UDP. `turns:` and `?transport=tcp`
/// are accepted on the command line but skipped by the library.
pub fn unsupported(server: &IceServer) -> Option<TurnProblem> {
    let url = server.url.as_str();
    let detail = if url.starts_with("turns:") {
        "TURN over TLS (turns:) is not supported by webrtc-rs 0.21; use turn: (UDP)"
    } else if url.starts_with("turn:") && url.contains("transport=tcp") {
        "TURN over TCP (?transport=tcp) is not supported by webrtc-rs 0.21; use UDP"
    } else {
        return None;
    };
    Some(TurnProblem::Unsupported { server: url.to_owned(), detail: detail.to_owned() })
}

/// Allocates a relay address on `server` from `bind` and releases it again; returns the
/// address it was given.
pub async fn check(server: &IceServer, bind: SocketAddr) -> Result<SocketAddr, TurnProblem> {
    if let Some(problem) = unsupported(server) {
        return Err(problem);
    }
    let address = server.url.trim_start_matches("turn:");
    let address = address.split_once('?').map_or(address, |(host, _)| host).to_owned();
    // Failures on our side (no socket, no crypto) also make the server unusable to us.
    let local_error = |e: &dyn std::fmt::Display| TurnProblem::Unsupported {
        server: address.clone(),
        detail: e.to_string(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(bind.ip(), 0)).await.map_err(|e| local_error(&e))?;
    let local = socket.local_addr().map_err(|e| local_error(&e))?;
    let provider = rtc::crypto::default_provider().map_err(|e| local_error(&e))?;
    let config = ClientConfig {
        turn_serv_addr: address.clone(),
        local_addr: local,
        transport_protocol: TransportProtocol::UDP,
        username: server.username.clone(),
        password: server.credential.clone(),
        ..ClientConfig::default()
    };
    let mut client = Client::new(config, Arc::clone(&provider)).map_err(|e| local_error(&e))?;
    let allocation = client.allocate(Instant::now()).map_err(|e| local_error(&e))?;
    let outcome = tokio::time::timeout(
        TURN_ANSWER_TIMEOUT,
        drive(&mut client, &socket, |event| match event {
            Event::AllocateResponse(id, relayed) if id == allocation => Some(Ok(relayed)),
            Event::AllocateError(id, e) if id == allocation => Some(Err(e.to_string())),
            Event::TransactionTimeout(id) if id == allocation => Some(Err(String::new())),
            _ => None,
        }),
    )
    .await;
    let user = server.username.clone();
    match outcome {
        Ok(Ok(relayed)) => {
            // Give the address back; a lost release only leaves it to expire.
            if let Ok(mut relay) = client.relay(relayed) {
                let _ = relay.close(Instant::now());
            }
            flush(&mut client, &socket).await;
            Ok(relayed)
        }
        Ok(Err(detail)) if detail.is_empty() => Err(TurnProblem::Unreachable { server: address }),
        Ok(Err(detail)) if detail.contains("401") || detail.contains("Unauthorized") => {
            Err(TurnProblem::Refused { server: address, user, detail })
        }
        Ok(Err(detail)) => Err(TurnProblem::Failed { server: address, user, detail }),
        Err(_) => Err(TurnProblem::Unreachable { server: address }),
    }
}

/// Runs the client's I/O until `done` picks an outcome from its events.
async fn drive<T>(client: &mut Client, socket: &UdpSocket, mut done: impl FnMut(Event) -> Option<T>) -> T {
    let mut buf = vec![0u8; 2048];
    loop {
        flush(client, socket).await;
        while let Some(event) = client.poll_event() {
            if let Some(outcome) = done(event) {
                return outcome;
            }
        }
        let wake = client.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_millis(100));
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = received {
                    let local = socket.local_addr().unwrap_or(from);
                    let _ = client.handle_read(TaggedBytesMut {
                        now: Instant::now(),
                        transport: TransportContext {
                            local_addr: local,
                            peer_addr: from,
                            transport_protocol: TransportProtocol::UDP,
                            ecn: None,
                        },
                        message: BytesMut::from(&buf[..n]),
                    });
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {
                let _ = client.handle_timeout(Instant::now());
            }
        }
    }
}

async fn flush(client: &mut Client, socket: &UdpSocket) {
    while let Some(out) = client.poll_write() {
        // A lost datagram is retransmitted by the client's own timers.
        let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
    }
}
