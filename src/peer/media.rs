//! The call's audio on one peer connection: our Opus track out, the peer's track in.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peertalk_signal::proto::PeerId;
use rtc::interceptor::Registry;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, warn};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

use super::{Outbox, PeerEvent};
use crate::audio::{Incoming, OpusFrame, SAMPLE_RATE};

/// Where a connection takes our audio from and hands the peer's to.
#[derive(Clone)]
pub struct Media {
    pub frames: broadcast::Sender<OpusFrame>,
    pub incoming: mpsc::Sender<Incoming>,
}

/// A peer that sent nothing for this long has stopped sending audio (muted, hung up, gone).
const SILENT_AFTER: Duration = Duration::from_millis(1000);

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: SAMPLE_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// Opus only (payload type 111, as browsers use), with the default RTCP interceptors
/// (receiver and sender reports, which the stats read).
pub(super) fn media_engine() -> Result<(MediaEngine, Registry), String> {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(RTCRtpCodecParameters { rtp_codec: opus(), payload_type: 111 }, RtpCodecKind::Audio)
        .map_err(|e| format!("could not register Opus: {e}"))?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .map_err(|e| format!("could not set up RTCP: {e}"))?;
    Ok((engine, registry))
}

/// Our audio track on a connection.
pub(super) struct Outgoing {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    /// The negotiated payload type, once negotiation has given one.
    payload_type: Option<u8>,
    frames: broadcast::Receiver<OpusFrame>,
}

impl Outgoing {
    /// Adds our track to the connection; sending starts once it is negotiated.
    pub(super) async fn add(pc: &dyn PeerConnection, media: &Media) -> Result<Self, String> {
        let ssrc = random_u32();
        let track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    "peertalk".to_owned(),
                    format!("voice-{ssrc:08x}"),
                    "voice".to_owned(),
                    RtpCodecKind::Audio,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec: opus(),
                        ..Default::default()
                    }],
                ),
            )
            .map_err(|e| format!("could not create the audio track: {e}"))?,
        );
        let sender = pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| format!("could not add the audio track: {e}"))?;
        Ok(Self { track, sender, ssrc, payload_type: None, frames: media.frames.subscribe() })
    }

    pub(super) async fn remove(self, pc: &dyn PeerConnection) {
        if let Err(e) = pc.remove_track(&self.sender).await {
            warn!("could not remove the audio track: {e}");
        }
    }

    /// Whether negotiation has settled a payload type: packets can go out.
    pub(super) async fn ready(&mut self) -> bool {
        if self.payload_type.is_none() {
            self.payload_type = match self.sender.get_parameters().await {
                Ok(params) => params.rtp_parameters.codecs.first().map(|c| c.payload_type),
                Err(_) => None,
            };
        }
        self.payload_type.is_some()
    }

    /// The next of our packets; after falling behind, the newest ones.
    pub(super) async fn next_frame(&mut self) -> Option<OpusFrame> {
        loop {
            match self.frames.recv().await {
                Ok(frame) => return Some(frame),
                Err(broadcast::error::RecvError::Lagged(n)) => debug!("skipped {n} audio packets"),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    pub(super) async fn write(&mut self, frame: OpusFrame) {
        if !self.ready().await {
            return;
        }
        let Some(pt) = self.payload_type else { return };
        let sample = Sample {
            data: frame.data,
            duration: Duration::from_micros(u64::from(frame.samples) * 1_000_000 / u64::from(SAMPLE_RATE)),
            ..Sample::new(Instant::now())
        };
        if let Err(e) = self.track.sample_writer(self.ssrc, pt).write_sample(&sample).await {
            debug!("could not send an audio packet: {e}");
        }
    }
}

/// Reads the peer's audio track until it ends, handing packets to the engine and telling
/// the app when the peer starts and stops sending.
pub(super) async fn read_remote(track: Arc<dyn TrackRemote>, from: PeerId, media: Media, out: Outbox) {
    let mut sending = false;
    loop {
        let event = if sending {
            match tokio::time::timeout(SILENT_AFTER, track.poll()).await {
                Ok(event) => event,
                Err(_) => {
                    sending = false;
                    out.emit(PeerEvent::ReceivingAudio(false)).await;
                    continue;
                }
            }
        } else {
            track.poll().await
        };
        match event {
            Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                if !sending {
                    sending = true;
                    out.emit(PeerEvent::ReceivingAudio(true)).await;
                }
                let packet = Incoming {
                    from: from.clone(),
                    data: packet.payload,
                    rtp_timestamp: packet.header.timestamp,
                };
                // A stalled engine loses packets, as a live call would; the connection never waits.
                let _ = media.incoming.try_send(packet);
            }
            Some(TrackRemoteEvent::OnEnded) | None => break,
            Some(_) => {}
        }
    }
    if sending {
        out.emit(PeerEvent::ReceivingAudio(false)).await;
    }
}

/// A random SSRC. The standard library's hasher keys are random per process and call,
/// which is all an SSRC needs.
fn random_u32() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    #[allow(clippy::cast_possible_truncation)]
    let value = hasher.finish() as u32;
    value
}
