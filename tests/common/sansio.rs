//! Sans-I/O peer connections (the `rtc` core, no sockets, no driver) trading packets in
//! memory on a virtual clock: for tests of what the stack sends when, free of timing noise.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::data_channel::RTCDataChannelId;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

/// The offerer's and the answerer's addresses on the pretend link.
pub fn addresses() -> (SocketAddr, SocketAddr) {
    (SocketAddr::from(([10, 0, 0, 1], 4000)), SocketAddr::from(([10, 0, 0, 2], 5000)))
}

/// A DTLS record starts with its content type, 20-63; STUN starts with 0 or 1.
pub fn is_dtls(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| (20..=63).contains(b))
}

/// A peer connection with one host candidate at `addr`, which it also returns.
pub fn peer(
    start: Instant,
    addr: SocketAddr,
    settings: SettingEngineBuilder,
) -> (RTCPeerConnection, RTCIceCandidateInit) {
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings.build())
        .build(start)
        .expect("a peer connection");
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("a host candidate");
    let candidate = RTCIceCandidate::from(&host).to_json().expect("candidate JSON");
    pc.add_local_candidate(candidate.clone()).expect("added");
    (pc, candidate)
}

/// Hands everything `from` has to send to `to`, as if over UDP between the two addresses;
/// `arrives` looks at each packet first and says whether it gets there (or is lost).
/// Returns whether there was anything to send.
pub fn carry(
    from: &mut RTCPeerConnection,
    to: &mut RTCPeerConnection,
    from_addr: SocketAddr,
    to_addr: SocketAddr,
    now: Instant,
    mut arrives: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut moved = false;
    while let Some(packet) = from.poll_write() {
        moved = true;
        if !arrives(&packet.message) {
            continue;
        }
        let transport = TransportContext {
            local_addr: to_addr,
            peer_addr: from_addr,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        };
        let _ =
            to.handle_read(TaggedBytesMut { now, transport, message: BytesMut::from(&packet.message[..]) });
    }
    moved
}

/// Takes every event and read both peers have; says whether `watched` reported an event
/// that `wanted` picks among them.
pub fn drain(
    watched: &mut RTCPeerConnection,
    other: &mut RTCPeerConnection,
    wanted: impl Fn(&RTCPeerConnectionEvent) -> bool,
) -> bool {
    let mut seen = false;
    while let Some(event) = watched.poll_event() {
        seen |= wanted(&event);
    }
    while other.poll_event().is_some() {}
    while watched.poll_read().is_some() {}
    while other.poll_read().is_some() {}
    seen
}

/// ICE found a path.
pub fn ice_connected(event: &RTCPeerConnectionEvent) -> bool {
    matches!(event, RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(RTCIceConnectionState::Connected))
}

/// The whole connection is up: ICE and DTLS (the peer connection state).
pub fn connected(event: &RTCPeerConnectionEvent) -> bool {
    matches!(event, RTCPeerConnectionEvent::OnConnectionStateChangeEvent(RTCPeerConnectionState::Connected))
}

/// The earlier of the two peers' next deadlines (at most a second away), never before `now`.
pub fn next_deadline(a: &mut RTCPeerConnection, b: &mut RTCPeerConnection, now: Instant) -> Instant {
    let far = now + Duration::from_secs(1);
    a.poll_timeout().unwrap_or(far).min(b.poll_timeout().unwrap_or(far)).max(now)
}

/// The offerer opens a chat channel and offers; the answerer takes the offer and answers.
/// Returns the answer, for the test to hand to the offerer as it likes.
pub fn offer_and_answer(
    offerer: &mut RTCPeerConnection,
    answerer: &mut RTCPeerConnection,
    start: Instant,
) -> RTCSessionDescription {
    offerer.create_data_channel("chat", None).expect("a channel");
    let offer = offerer.create_offer(None).expect("an offer");
    offerer.set_local_description(start, offer.clone()).expect("local offer");
    answerer.set_remote_description(start, offer).expect("remote offer");
    let answer = answerer.create_answer(None).expect("an answer");
    answerer.set_local_description(start, answer.clone()).expect("local answer");
    answer
}

/// Two peers set up as peertalk sets them up (the answerer is the DTLS server, the
/// offerer the client), with the offer and the answer traded.
pub fn negotiated(
    start: Instant,
    offer_addr: SocketAddr,
    answer_addr: SocketAddr,
) -> (RTCPeerConnection, RTCPeerConnection) {
    negotiated_with(start, offer_addr, answer_addr, |settings| settings)
}

/// [`negotiated`], with `tune` applied to both peers' settings.
pub fn negotiated_with(
    start: Instant,
    offer_addr: SocketAddr,
    answer_addr: SocketAddr,
    tune: impl Fn(SettingEngineBuilder) -> SettingEngineBuilder,
) -> (RTCPeerConnection, RTCPeerConnection) {
    let server = || tune(SettingEngineBuilder::new().with_answering_dtls_role(RTCDtlsRole::Server));
    let (mut offerer, _) = peer(start, offer_addr, server());
    let (mut answerer, _) = peer(start, answer_addr, server());
    let answer = offer_and_answer(&mut offerer, &mut answerer, start);
    offerer.set_remote_description(start, answer).expect("remote answer");
    (offerer, answerer)
}

/// The channels this peer has seen open since last asked.
pub fn opened(pc: &mut RTCPeerConnection) -> Vec<RTCDataChannelId> {
    let mut ids = Vec::new();
    while let Some(event) = pc.poll_event() {
        if let RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(channel)) = event {
            ids.push(channel);
        }
    }
    ids
}

/// A message a peer received on a channel: text, or how many bytes of binary.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Text(String),
    Binary(usize),
}

impl Received {
    pub fn binary_len(&self) -> usize {
        match self {
            Self::Binary(n) => *n,
            Self::Text(_) => 0,
        }
    }
}

/// What this peer has received since last asked, in order.
pub fn received(pc: &mut RTCPeerConnection) -> Vec<Received> {
    let mut got = Vec::new();
    while let Some(read) = pc.poll_read() {
        if let RTCMessage::DataChannelMessage(_, message) = read.message {
            got.push(if message.is_string {
                Received::Text(String::from_utf8_lossy(&message.data).into_owned())
            } else {
                Received::Binary(message.data.len())
            });
        }
    }
    got
}

/// The texts among what this peer has received since last asked.
pub fn texts(pc: &mut RTCPeerConnection) -> Vec<String> {
    received(pc)
        .into_iter()
        .filter_map(|r| match r {
            Received::Text(text) => Some(text),
            Received::Binary(_) => None,
        })
        .collect()
}
