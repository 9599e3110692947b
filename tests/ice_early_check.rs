//! A candidate signalled after the peer's first check already came from its address is
//! nominated at once: the fix in `vendor/rtc-ice` (see vendor/PATCHES.md). With checks
//! sent as soon as candidates arrive, the answerer's check often reaches the offerer
//! before the answerer's candidate does (it goes through the relay), so the offerer first
//! knows that address as peer-reflexive. On the published crate the signalled candidate
//! is added as a twin that never sees a response, and nomination waits out the
//! peer-reflexive wait (100 ms on our settings; 1 s here, to make it plain).

mod common;

use std::time::{Duration, Instant};

use common::sansio::{addresses, carry, drain, ice_connected, next_deadline, offer_and_answer, peer};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::sansio::Protocol;

/// Each step that moves packets takes this long on the virtual clock: a link's latency.
const STEP: Duration = Duration::from_micros(50);
const PRFLX_WAIT: Duration = Duration::from_secs(1);

#[test]
fn a_candidate_signalled_after_its_first_check_is_nominated_without_the_peer_reflexive_wait() {
    let start = Instant::now();
    let (offer_addr, answer_addr) = addresses();
    let settings = || {
        SettingEngineBuilder::new()
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_prflx_acceptance_min_wait(Some(PRFLX_WAIT))
    };
    let (mut offerer, _) = peer(start, offer_addr, settings());
    let (mut answerer, answerer_candidate) = peer(start, answer_addr, settings());
    let answer = offer_and_answer(&mut offerer, &mut answerer, start);
    // The answer reaches the offerer without the candidate, which trickles in later.
    let trimmed: String =
        answer.sdp.lines().filter(|l| !l.starts_with("a=candidate")).map(|l| format!("{l}\r\n")).collect();
    offerer
        .set_remote_description(start, RTCSessionDescription::answer(trimmed).expect("an answer"))
        .expect("remote answer");

    let mut now = start;
    let mut trickled = false;
    let mut ice_connected_at = None;
    while ice_connected_at.is_none() && now < start + Duration::from_secs(10) {
        let offered = carry(&mut offerer, &mut answerer, offer_addr, answer_addr, now, |_| true);
        let answered = carry(&mut answerer, &mut offerer, answer_addr, offer_addr, now, |_| true);
        if answered && !trickled {
            // The answerer's first check has reached the offerer: now its candidate does.
            trickled = true;
            offerer.add_remote_candidate(answerer_candidate.clone()).expect("candidate added");
        }
        if drain(&mut offerer, &mut answerer, ice_connected) {
            ice_connected_at.get_or_insert(now);
        }
        now = if offered || answered { now + STEP } else { next_deadline(&mut offerer, &mut answerer, now) };
        let _ = offerer.handle_timeout(now);
        let _ = answerer.handle_timeout(now);
    }
    assert!(trickled, "the answerer never sent a check");
    let connected = ice_connected_at.expect("ICE connected").duration_since(start);
    // Fixed: a few steps. Published crate: the peer-reflexive wait, 1 s.
    assert!(connected < PRFLX_WAIT / 10, "ICE connected after {connected:?}");
}
