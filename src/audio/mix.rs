//! A call's mix: each member's packets through its own jitter buffer and Opus decoder
//! (in-band FEC for a lost packet when the next one has arrived, concealment when not),
//! summed into one 20 ms frame per tick. The engine ticks it every 20 ms while anyone is
//! heard; the frame goes to the speakers and, encoded again, to `--audio-out`.

use std::collections::{HashMap, VecDeque};

use peertalk_signal::proto::PeerId;
use tracing::warn;

use super::jitter::{FRAME, JitterBuffer, Play};
use super::{Incoming, SAMPLE_RATE};

const FRAME_SAMPLES: usize = FRAME as usize;
/// The longest Opus packet decodes to 120 ms.
const MAX_DECODED: usize = 5760;
/// The recording's bit rate: a mix of voices and tones stays clear at this rate.
const RECORD_BITRATE: i32 = 64_000;

struct Member {
    buffer: JitterBuffer,
    decoder: opus::Decoder,
    /// Decoded samples not yet mixed (a packet longer than 20 ms leaves some).
    pcm: VecDeque<f32>,
}

/// One tick's output.
pub struct Mixed {
    /// 20 ms of mono 48 kHz samples, the members summed.
    pub pcm: Vec<f32>,
    /// Each member heard in this frame, with its level in dBFS.
    pub levels: Vec<(PeerId, f32)>,
    /// The frame encoded for the recording, with its timestamp there.
    pub recorded: Option<(Vec<u8>, u32)>,
}

pub struct Mixer {
    members: HashMap<PeerId, Member>,
    /// Encodes the mix for `--audio-out`.
    encoder: Option<opus::Encoder>,
    /// The recording's clock: samples written so far.
    recorded_samples: u32,
}

impl Mixer {
    /// A mixer; with `record`, each frame is also encoded for a recording.
    #[must_use]
    pub fn new(record: bool) -> Self {
        let encoder = record.then(recording_encoder).and_then(|made| {
            made.map_err(|e| warn!("could not set up the Opus encoder for the recording: {e}")).ok()
        });
        Self { members: HashMap::new(), encoder, recorded_samples: 0 }
    }

    /// Takes in a member's packet.
    pub fn push(&mut self, packet: &Incoming) {
        let member = match self.members.entry(packet.from.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let Ok(decoder) = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono) else { return };
                e.insert(Member { buffer: JitterBuffer::default(), decoder, pcm: VecDeque::new() })
            }
        };
        member.buffer.push(packet.rtp_timestamp, packet.data.clone());
    }

    /// Whether anyone is heard or about to be: the engine ticks only then.
    #[must_use]
    pub fn active(&self) -> bool {
        self.members.values().any(|m| m.buffer.active() || !m.pcm.is_empty())
    }

    /// Mixes the next 20 ms; `None` when nobody was heard in it.
    pub fn tick(&mut self) -> Option<Mixed> {
        let mut pcm = vec![0f32; FRAME_SAMPLES];
        let mut levels = Vec::new();
        for (peer, member) in &mut self.members {
            if let Some(frame) = member.next_frame() {
                levels.push((peer.clone(), super::dbfs(&frame)));
                for (sum, sample) in pcm.iter_mut().zip(frame) {
                    *sum += sample;
                }
            }
        }
        if levels.is_empty() {
            return None;
        }
        for sample in &mut pcm {
            *sample = sample.clamp(-1.0, 1.0);
        }
        let recorded = self.encoder.as_mut().and_then(|encoder| {
            let mut packet = vec![0u8; 4000];
            let len = encoder.encode_float(&pcm, &mut packet).ok()?;
            packet.truncate(len);
            let at = self.recorded_samples;
            self.recorded_samples = self.recorded_samples.wrapping_add(FRAME);
            Some((packet, at))
        });
        Some(Mixed { pcm, levels, recorded })
    }
}

fn recording_encoder() -> Result<opus::Encoder, opus::Error> {
    let mut encoder = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Audio)?;
    encoder.set_bitrate(opus::Bitrate::Bits(RECORD_BITRATE))?;
    Ok(encoder)
}

impl Member {
    /// This member's next 20 ms, decoding (or recovering, or concealing) as needed;
    /// `None` when it is silent.
    fn next_frame(&mut self) -> Option<Vec<f32>> {
        while self.pcm.len() < FRAME_SAMPLES {
            let mut out = [0f32; MAX_DECODED];
            let decoded = match self.buffer.pop() {
                Play::Packet(data) => self.decoder.decode_float(&data, &mut out, false),
                Play::Recover(next) => self.decoder.decode_float(&next, &mut out[..FRAME_SAMPLES], true),
                Play::Conceal => self.decoder.decode_float(&[], &mut out[..FRAME_SAMPLES], false),
                Play::Silent if self.pcm.is_empty() => return None,
                Play::Silent => break,
            };
            // A packet the decoder refuses is a lost one.
            let n = decoded
                .or_else(|_| self.decoder.decode_float(&[], &mut out[..FRAME_SAMPLES], false))
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            self.pcm.extend(&out[..n]);
        }
        let take = self.pcm.len().min(FRAME_SAMPLES);
        let mut frame: Vec<f32> = self.pcm.drain(..take).collect();
        frame.resize(FRAME_SAMPLES, 0.0);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// `frames` 20 ms Opus packets of a tone: the mixer is tested with the real codec.
    fn tone_packets(hz: f32, frames: usize) -> Vec<Bytes> {
        let mut encoder = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Audio)
            .expect("an encoder");
        (0..frames)
            .map(|f| {
                #[allow(clippy::cast_precision_loss)]
                let pcm: Vec<f32> = (0..FRAME_SAMPLES)
                    .map(|i| {
                        let t = (f * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
                        0.3 * (std::f32::consts::TAU * hz * t).sin()
                    })
                    .collect();
                let mut out = vec![0u8; 4000];
                let len = encoder.encode_float(&pcm, &mut out).expect("encodes");
                out.truncate(len);
                Bytes::from(out)
            })
            .collect()
    }

    fn incoming(from: &str, ts: u32, data: Bytes) -> Incoming {
        Incoming { from: PeerId(from.into()), data, rtp_timestamp: ts }
    }

    /// The strength of `hz` in `samples` (Goertzel), relative to the signal's power.
    fn presence(samples: &[f32], hz: f32) -> f32 {
        #[allow(clippy::cast_precision_loss)]
        let w = std::f32::consts::TAU * hz / SAMPLE_RATE as f32;
        let (mut s1, mut s2) = (0f32, 0f32);
        for &x in samples {
            let s = x + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let energy: f32 = samples.iter().map(|x| x * x).sum();
        #[allow(clippy::cast_precision_loss)]
        let n = samples.len() as f32;
        power / (energy * n / 2.0).max(f32::EPSILON)
    }

    #[test]
    fn two_members_are_heard_at_once_and_a_lost_packet_leaves_no_gap() {
        let mut mixer = Mixer::new(true);
        assert!(mixer.encoder.is_some());
        let (a, b) = (tone_packets(440.0, 50), tone_packets(880.0, 50));
        let mut mix = Vec::new();
        let mut recorded = 0;
        let mut take = |frame: Option<Mixed>, both: bool| {
            let frame = frame.expect("someone is heard");
            if both {
                assert_eq!(frame.levels.len(), 2, "both members in every frame, the lost ones recovered");
            }
            recorded += usize::from(frame.recorded.is_some());
            mix.extend(frame.pcm);
        };
        // In real time: a packet from each every 20 ms, and a frame of the mix.
        for (i, (pa, pb)) in a.into_iter().zip(b).enumerate() {
            let ts = 5000 + FRAME * u32::try_from(i).expect("small");
            mixer.push(&incoming("a", ts, pa));
            // b's clock starts elsewhere, and b loses every tenth packet.
            if i % 10 != 5 {
                mixer.push(&incoming("b", ts.wrapping_add(777_777), pb));
            }
            if i >= 1 {
                take(mixer.tick(), true);
            }
        }
        while let Some(frame) = mixer.tick() {
            take(Some(frame), false);
        }
        assert!(recorded >= 50 && mix.len() >= 50 * FRAME_SAMPLES, "{} frames", mix.len() / FRAME_SAMPLES);
        let middle = &mix[10 * FRAME_SAMPLES..40 * FRAME_SAMPLES];
        for hz in [440.0, 880.0] {
            assert!(presence(middle, hz) > 0.2, "{hz} Hz is in the mix: {}", presence(middle, hz));
        }
        assert!(presence(middle, 660.0) < 0.05, "and nothing that was not sent");
        assert!(!mixer.active(), "both fell silent after their last packet");
    }
}
