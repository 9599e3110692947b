//! The sound card (cpal, ALSA on Linux) and the Opus codec (libopus), for live calls.
//!
//! cpal's streams must stay on the thread that made them, so each runs on a thread of
//! its own; samples cross to and from it over channels, never behind a lock.

use std::collections::VecDeque;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use bytes::Bytes;
use cpal::traits::{DeviceTrait as _, HostTrait as _, StreamTrait as _};
use tokio::sync::mpsc;
use tracing::warn;

use super::{OpusFrame, SAMPLE_RATE};

/// 20 ms at 48 kHz: the frame WebRTC voice uses.
const FRAME: usize = 960;
/// Speech at 32 kbit/s is clear; WebRTC's Opus default is about that.
const BITRATE: i32 = 32_000;
/// Playback holds at most this much: more means we fell behind, and old audio is dropped.
const MAX_QUEUED: usize = SAMPLE_RATE as usize / 5;

/// The microphone, encoding 20 ms Opus frames as it captures.
pub struct Capture {
    pub name: String,
    pub frames: mpsc::Receiver<OpusFrame>,
    /// Dropping this stops the capture thread.
    _stop: std_mpsc::Sender<()>,
}

impl Capture {
    /// Opens the default input device at 48 kHz; the error says why there is none.
    pub fn start() -> Result<Self, String> {
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (frames_tx, frames) = mpsc::channel(super::FRAME_BACKLOG);
        let (stop, stop_rx) = std_mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("microphone".into())
            .spawn(move || capture_thread(&ready_tx, &frames_tx, &stop_rx))
            .map_err(|e| format!("could not start the microphone thread: {e}"))?;
        let name = ready_rx.recv().map_err(|_| "the microphone thread stopped".to_owned())??;
        Ok(Self { name, frames, _stop: stop })
    }
}

fn capture_thread(
    ready: &std_mpsc::Sender<Result<String, String>>,
    frames: &mpsc::Sender<OpusFrame>,
    stop: &std_mpsc::Receiver<()>,
) {
    let (pcm_tx, pcm) = std_mpsc::sync_channel::<Vec<f32>>(64);
    let opened = open_input(pcm_tx).and_then(|(stream, name, channels)| {
        let encoder = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
            .map_err(|e| format!("could not start the Opus encoder: {e}"))?;
        Ok((stream, name, channels, encoder))
    });
    let (stream, name, channels, mut encoder) = match opened {
        Ok(ok) => ok,
        Err(why) => {
            let _ = ready.send(Err(why));
            return;
        }
    };
    let _ = encoder.set_bitrate(opus::Bitrate::Bits(BITRATE));
    let _ = ready.send(Ok(name));
    let mut pending: Vec<f32> = Vec::with_capacity(FRAME * 2);
    let mut packet = [0u8; 1500];
    loop {
        match pcm.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => {
                pending.extend(chunk.chunks(channels).map(|f| f.iter().sum::<f32>() / f.len() as f32));
                while pending.len() >= FRAME {
                    let frame: Vec<f32> = pending.drain(..FRAME).collect();
                    match encoder.encode_float(&frame, &mut packet) {
                        Ok(len) => {
                            let data = Bytes::copy_from_slice(&packet[..len]);
                            // A full queue means nobody takes them fast enough: drop, stay live.
                            let _ = frames.try_send(OpusFrame { data, samples: FRAME as u32 });
                        }
                        Err(e) => warn!("Opus could not encode a frame: {e}"),
                    }
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if matches!(stop.try_recv(), Err(std_mpsc::TryRecvError::Disconnected)) || frames.is_closed() {
            break;
        }
    }
    drop(stream);
}

/// The default input at 48 kHz, mono if it can, else its own channel count (mixed down).
fn open_input(pcm: std_mpsc::SyncSender<Vec<f32>>) -> Result<(cpal::Stream, String, usize), String> {
    let host = cpal::default_host();
    let device = host.default_input_device().ok_or_else(|| {
        format!(
            "no microphone was found ({}); is there a sound card? `arecord -l` lists them",
            host.id().name()
        )
    })?;
    let name = device.name().unwrap_or_else(|_| "default".to_owned());
    let mut last_error = String::new();
    for channels in [1u16, 2] {
        let config = cpal::StreamConfig {
            channels,
            sample_rate: cpal::SampleRate(SAMPLE_RATE),
            buffer_size: cpal::BufferSize::Default,
        };
        let pcm = pcm.clone();
        let built = device.build_input_stream(
            &config,
            move |data: &[f32], _: &cpal::InputCallbackInfo| {
                let _ = pcm.try_send(data.to_vec());
            },
            |e| warn!("microphone: {e}"),
            None,
        );
        match built {
            Ok(stream) => {
                stream.play().map_err(|e| format!("could not start the microphone {name}: {e}"))?;
                return Ok((stream, name, usize::from(channels)));
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(format!(
        "could not open the microphone {name:?} at 48 kHz ({last_error}); is there a sound card? `arecord -l` lists them"
    ))
}

/// Playback of the call's mix.
#[derive(Default)]
pub struct Voice {
    speakers: Option<Speakers>,
    /// The speakers were tried (once: a machine without them says so once).
    tried_speakers: bool,
}

impl Voice {
    /// Plays one mixed frame (with `play`, on speakers opened at the first frame).
    pub fn output(&mut self, pcm: &[f32], play: bool) {
        if play && !std::mem::replace(&mut self.tried_speakers, true) {
            match Speakers::open() {
                Ok(speakers) => self.speakers = Some(speakers),
                Err(why) => warn!("{why}"),
            }
        }
        if let Some(speakers) = &self.speakers {
            let _ = speakers.pcm.try_send(pcm.to_vec());
        }
    }
}

/// The default output device, fed mono 48 kHz samples.
struct Speakers {
    pcm: std_mpsc::SyncSender<Vec<f32>>,
    _stop: std_mpsc::Sender<()>,
}

impl Speakers {
    fn open() -> Result<Self, String> {
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (pcm, pcm_rx) = std_mpsc::sync_channel::<Vec<f32>>(64);
        let (stop, stop_rx) = std_mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("speakers".into())
            .spawn(move || match open_output(pcm_rx) {
                Ok(stream) => {
                    let _ = ready_tx.send(Ok(()));
                    // Keep the stream until the engine lets go.
                    let _ = stop_rx.recv();
                    drop(stream);
                }
                Err(why) => {
                    let _ = ready_tx.send(Err(why));
                }
            })
            .map_err(|e| format!("could not start the speaker thread: {e}"))?;
        ready_rx.recv().map_err(|_| "the speaker thread stopped".to_owned())??;
        Ok(Self { pcm, _stop: stop })
    }
}

fn open_output(pcm: std_mpsc::Receiver<Vec<f32>>) -> Result<cpal::Stream, String> {
    let host = cpal::default_host();
    let device = host.default_output_device().ok_or("no speakers were found; peers' audio is not played")?;
    let supported = device
        .default_output_config()
        .map_err(|e| format!("the speakers cannot be used ({e}); peers' audio is not played"))?;
    let channels = usize::from(supported.channels());
    let config = cpal::StreamConfig {
        channels: supported.channels(),
        sample_rate: cpal::SampleRate(SAMPLE_RATE),
        buffer_size: cpal::BufferSize::Default,
    };
    let mut queue: VecDeque<f32> = VecDeque::with_capacity(MAX_QUEUED * 2);
    let stream = device
        .build_output_stream(
            &config,
            move |out: &mut [f32], _: &cpal::OutputCallbackInfo| {
                while let Ok(chunk) = pcm.try_recv() {
                    queue.extend(chunk);
                }
                if queue.len() > MAX_QUEUED {
                    queue.drain(..queue.len() - MAX_QUEUED);
                }
                for frame in out.chunks_mut(channels) {
                    frame.fill(queue.pop_front().unwrap_or(0.0));
                }
            },
            |e| warn!("speakers: {e}"),
            None,
        )
        .map_err(|e| format!("the speakers cannot play 48 kHz ({e}); peers' audio is not played"))?;
    stream.play().map_err(|e| format!("could not start the speakers: {e}"))?;
    Ok(stream)
}

/// Opens the microphone and the speakers as a call would, and closes them again: each
/// one's name, or why it cannot be used. For `peertalk doctor`.
pub fn try_devices() -> (Result<String, String>, Result<String, String>) {
    let input = Capture::start().map(|capture| capture.name);
    let output = Speakers::open().map(|_speakers| {
        cpal::default_host()
            .default_output_device()
            .and_then(|device| device.name().ok())
            .unwrap_or_else(|| "default".to_owned())
    });
    (input, output)
}
