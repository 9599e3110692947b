//! The DTLS client's first flight leaves as soon as ICE has a path: the fix in
//! `vendor/rtc` (see vendor/PATCHES.md). Two sans-I/O peer connections trade packets in
//! memory on a virtual clock that moves only when nothing is left to deliver, so the test
//! sees whether the ClientHello needed a timer to leave. On the published crate it waits
//! for the next timer, which is the next ICE check.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::state::RTCIceConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

/// A DTLS record starts with its content type, 20-63; STUN starts with 0 or 1.
fn is_dtls(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| (20..=63).contains(b))
}

fn peer(start: Instant, addr: SocketAddr, answering_role: RTCDtlsRole) -> RTCPeerConnection {
    let settings = SettingEngineBuilder::new().with_answering_dtls_role(answering_role).build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
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
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json().expect("candidate JSON")).expect("added");
    pc
}

/// Hands everything `from` has to send to `to`, as if over UDP between the two addresses;
/// `seen` looks at each packet first. Returns whether there was anything.
fn carry(
    from: &mut RTCPeerConnection,
    to: &mut RTCPeerConnection,
    from_addr: SocketAddr,
    to_addr: SocketAddr,
    now: Instant,
    mut seen: impl FnMut(&[u8]),
) -> bool {
    let mut moved = false;
    while let Some(packet) = from.poll_write() {
        moved = true;
        seen(&packet.message);
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

#[test]
fn the_dtls_client_hello_leaves_when_ice_connects_not_on_a_later_timer() {
    let start = Instant::now();
    let (offer_addr, answer_addr): (SocketAddr, SocketAddr) =
        ("10.0.0.1:4000".parse().expect("addr"), "10.0.0.2:5000".parse().expect("addr"));
    // As peertalk sets it up: the answerer is the DTLS server, the offerer the client.
    let mut offerer = peer(start, offer_addr, RTCDtlsRole::Server);
    let mut answerer = peer(start, answer_addr, RTCDtlsRole::Server);
    offerer.create_data_channel("chat", None).expect("a channel");
    let offer = offerer.create_offer(None).expect("an offer");
    offerer.set_local_description(start, offer.clone()).expect("local offer");
    answerer.set_remote_description(start, offer).expect("remote offer");
    let answer = answerer.create_answer(None).expect("an answer");
    answerer.set_local_description(start, answer.clone()).expect("local answer");
    offerer.set_remote_description(start, answer).expect("remote answer");

    let mut now = start;
    let mut ice_connected_at = None;
    let mut client_hello_at = None;
    while client_hello_at.is_none() && now < start + Duration::from_secs(10) {
        let offered = carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |packet| {
            if is_dtls(packet) {
                client_hello_at.get_or_insert(now);
            }
        });
        let answered = carry(&mut answerer, &mut offerer, answer_addr, offer_addr, now, |_| {});
        let moved = offered || answered;
        while let Some(event) = offerer.poll_event() {
            if let RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(RTCIceConnectionState::Connected) =
                event
            {
                ice_connected_at.get_or_insert(now);
            }
        }
        while answerer.poll_event().is_some() {}
        while offerer.poll_read().is_some() {}
        while answerer.poll_read().is_some() {}
        if moved {
            continue;
        }
        // Nothing in flight: the clock moves to the next deadline.
        let far = now + Duration::from_secs(1);
        now = offerer.poll_timeout().unwrap_or(far).min(answerer.poll_timeout().unwrap_or(far)).max(now);
        let _ = offerer.handle_timeout(now);
        let _ = answerer.handle_timeout(now);
    }
    let connected = ice_connected_at.expect("ICE connected");
    let hello = client_hello_at.expect("the offerer sent its ClientHello");
    assert_eq!(
        hello.duration_since(start),
        connected.duration_since(start),
        "the ClientHello waited {:?} after ICE connected",
        hello - connected
    );
}
