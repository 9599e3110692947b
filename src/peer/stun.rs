//! A STUN binding request on its own (RFC 8489), for `peertalk doctor`: the address a STUN
//! server sees us at, from one local socket, so that two servers' answers compare.

use std::net::SocketAddr;
use std::time::Duration;

use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Getter as _, Message, TransactionId};
use rtc::stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;

/// Retransmissions at these offsets, as RFC 8489 does on a shorter scale: a doctor waits
/// for at most the last one.
const SEND_AT: [Duration; 4] =
    [Duration::ZERO, Duration::from_millis(250), Duration::from_millis(750), Duration::from_millis(1750)];
/// How long after the last send an answer may come.
const LAST_WAIT: Duration = Duration::from_millis(1250);

/// Why a STUN server gave no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunProblem {
    #[error("no answer within {} s", (SEND_AT[3] + LAST_WAIT).as_secs())]
    NoAnswer,
    #[error("could not send to it: {0}")]
    Send(String),
    #[error("its answer could not be read: {0}")]
    Unreadable(String),
}

/// Sends binding requests from `socket` to `server` until one is answered, and returns the
/// reflexive address the answer names.
pub async fn binding(socket: &UdpSocket, server: SocketAddr) -> Result<SocketAddr, StunProblem> {
    let mut request = Message::new();
    request
        .build(&[Box::new(BINDING_REQUEST), Box::new(TransactionId::new())])
        .map_err(|e| StunProblem::Send(e.to_string()))?;
    let started = tokio::time::Instant::now();
    let mut buf = vec![0u8; 1500];
    for (i, at) in SEND_AT.iter().enumerate() {
        tokio::time::sleep_until(started + *at).await;
        socket.send_to(&request.raw, server).await.map_err(|e| StunProblem::Send(e.to_string()))?;
        let until = started + SEND_AT.get(i + 1).copied().unwrap_or(*at + LAST_WAIT);
        while let Ok(received) = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await {
            // An ICMP error (nothing listens) shows up as a failed receive; keep waiting so
            // the retransmissions get their chance, as a real agent does.
            let Ok((n, from)) = received else { continue };
            if from != server {
                continue;
            }
            let mut answer = Message::new();
            if answer.unmarshal_binary(&buf[..n]).is_err() || answer.transaction_id != request.transaction_id
            {
                continue;
            }
            if answer.typ != BINDING_SUCCESS {
                return Err(StunProblem::Unreadable(format!("it answered {}", answer.typ)));
            }
            let mut mapped = XorMappedAddress::default();
            mapped.get_from(&answer).map_err(|e| StunProblem::Unreadable(e.to_string()))?;
            return Ok(SocketAddr::new(mapped.ip, mapped.port));
        }
    }
    Err(StunProblem::NoAnswer)
}
