//! Audio for calls, outside WebRTC: where our Opus packets come from (an Ogg Opus file
//! paced in real time, or the microphone) and where the peers' go (an Ogg Opus file, the
//! speakers, the level meter).
//!
//! One task, the engine, owns all of it. Peer connections take our packets from a
//! broadcast channel (a connection that falls behind skips packets, as a live call
//! should) and hand received ones to the engine through a bounded channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use peertalk_signal::proto::PeerId;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

#[cfg(feature = "voice")]
pub mod device;
#[cfg(feature = "voice")]
mod jitter;
#[cfg(feature = "voice")]
mod mix;
pub mod ogg_opus;

/// Opus runs at 48 kHz in WebRTC whatever the source.
pub const SAMPLE_RATE: u32 = 48_000;

/// One Opus packet of ours, and how many 48 kHz samples it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusFrame {
    pub data: Bytes,
    pub samples: u32,
}

/// One Opus packet from a peer.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub from: PeerId,
    pub data: Bytes,
    /// The sender's RTP timestamp: 48 kHz samples on its clock.
    pub rtp_timestamp: u32,
}

/// Where audio goes and comes from, from the command line.
#[derive(Debug, Clone, Default)]
pub struct AudioOptions {
    /// `--audio-in`: send this Ogg Opus file instead of the microphone.
    pub input: Option<PathBuf>,
    /// `--audio-out`: record what peers send into this Ogg Opus file.
    pub output: Option<PathBuf>,
    /// Play peers' audio on the speakers (a person is listening: the interface, or
    /// `--audio`), in a build with `voice`.
    pub play: bool,
}

/// What the engine tells the session.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioEvent {
    /// Our source is running: peers in the call get packets from now on.
    Started { source: String },
    /// The `--audio-in` file has been sent to the end.
    SourceEnded,
    /// No source could start (no microphone, an unreadable file); the chat goes on.
    Unavailable(String),
    /// The loudest incoming level of a peer over the last tenth of a second, in dBFS.
    Level { peer: PeerId, dbfs: f32 },
}

/// What the session asks of the engine.
#[derive(Debug)]
enum Command {
    Start,
    Stop,
    Mute(bool),
}

/// Packets a peer connection may fall behind by before it skips some: 1 s of 20 ms frames.
const FRAME_BACKLOG: usize = 50;
/// Received packets waiting for the engine: 1 s; a stalled engine drops, never blocks a peer.
pub const INCOMING_BACKLOG: usize = 50;
/// How often levels are reported.
const LEVEL_EVERY: Duration = Duration::from_millis(100);
/// The mix's frame: one tick of the mixer.
#[cfg(feature = "voice")]
const MIX_EVERY: Duration = Duration::from_millis(20);
/// Ticks a finishing engine may still run to write out what members sent last.
#[cfg(feature = "voice")]
const FLUSH_TICKS: usize = 100;

/// The session's handle on the engine.
pub struct Audio {
    frames: broadcast::Sender<OpusFrame>,
    incoming: mpsc::Sender<Incoming>,
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Audio {
    /// Starts the engine; nothing is captured or sent until [`Audio::start`]. Received
    /// packets are recorded (with `--audio-out`) from the first one.
    pub fn spawn(
        options: AudioOptions,
        events: mpsc::Sender<AudioEvent>,
    ) -> Result<Self, ogg_opus::FileError> {
        let recorder = options.output.as_deref().map(ogg_opus::Recorder::create).transpose()?;
        let (frames, _) = broadcast::channel(FRAME_BACKLOG);
        let (incoming, incoming_rx) = mpsc::channel(INCOMING_BACKLOG);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let engine = Engine {
            #[cfg(feature = "voice")]
            play: options.play,
            input: options.input,
            frames: frames.clone(),
            events,
            recorder,
            source: None,
            muted: false,
            levels: HashMap::new(),
            levels_since: None,
            #[cfg(feature = "voice")]
            voice: device::Voice::default(),
            #[cfg(feature = "voice")]
            mixer: mix::Mixer::new(options.output.is_some()),
            #[cfg(feature = "voice")]
            next_mix: None,
        };
        let task = tokio::spawn(engine.run(commands_rx, incoming_rx));
        Ok(Self { frames, incoming, commands, task })
    }

    /// Our packets, for a peer connection that sends our track.
    #[must_use]
    pub fn frames(&self) -> broadcast::Sender<OpusFrame> {
        self.frames.clone()
    }

    /// Where a peer connection hands the packets it receives.
    #[must_use]
    pub fn incoming(&self) -> mpsc::Sender<Incoming> {
        self.incoming.clone()
    }

    /// Starts our source (once a peer can take the packets).
    pub fn start(&self) {
        let _ = self.commands.send(Command::Start);
    }

    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    pub fn mute(&self, muted: bool) {
        let _ = self.commands.send(Command::Mute(muted));
    }

    /// Stops everything and finishes the recording with what has arrived.
    pub async fn finish(self) {
        let Self { commands, task, incoming, frames } = self;
        drop((commands, incoming, frames));
        let _ = task.await;
    }
}

/// A running source of our packets.
enum Source {
    /// The file's packets, the next one's index, and when it is due.
    File { frames: Vec<OpusFrame>, next: usize, due: Instant },
    #[cfg(feature = "voice")]
    Microphone(device::Capture),
}

struct Engine {
    #[cfg(feature = "voice")]
    play: bool,
    input: Option<PathBuf>,
    frames: broadcast::Sender<OpusFrame>,
    events: mpsc::Sender<AudioEvent>,
    recorder: Option<ogg_opus::Recorder>,
    source: Option<Source>,
    muted: bool,
    /// Loudest level per peer since the last report.
    levels: HashMap<PeerId, f32>,
    /// When the first of those levels was measured.
    levels_since: Option<Instant>,
    #[cfg(feature = "voice")]
    voice: device::Voice,
    /// Members' audio, mixed on the engine's clock for the speakers and the recording.
    #[cfg(feature = "voice")]
    mixer: mix::Mixer,
    /// When the next mixed frame is due, while anyone is heard.
    #[cfg(feature = "voice")]
    next_mix: Option<Instant>,
}

impl Engine {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut incoming: mpsc::Receiver<Incoming>,
    ) {
        loop {
            let due = match &self.source {
                Some(Source::File { due, .. }) => Some(*due),
                _ => None,
            };
            // Only while levels wait to be reported: an idle client never wakes for this.
            let report_at = self.levels_since.map(|t| t + LEVEL_EVERY);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Start) => self.start().await,
                    Some(Command::Stop) => self.stop(),
                    Some(Command::Mute(muted)) => self.muted = muted,
                    // The session is done: keep what already arrived, then stop.
                    None => {
                        while let Ok(packet) = incoming.try_recv() {
                            self.receive(packet).await;
                        }
                        self.flush_mix().await;
                        break;
                    }
                },
                () = sleep_until(due) => self.send_file_frame().await,
                () = sleep_until(self.mix_due()) => self.mix().await,
                frame = next_captured(&mut self.source) => self.send(frame),
                Some(packet) = incoming.recv() => self.receive(packet).await,
                () = sleep_until(report_at) => {
                    self.levels_since = None;
                    for (peer, dbfs) in self.levels.drain() {
                        let _ = self.events.send(AudioEvent::Level { peer, dbfs }).await;
                    }
                }
            }
        }
        if let Some(recorder) = self.recorder.take()
            && let Err(e) = recorder.finish()
        {
            let _ = self.events.send(AudioEvent::Unavailable(e.to_string())).await;
        }
    }

    async fn start(&mut self) {
        if self.source.is_some() {
            return;
        }
        let started = match &self.input {
            Some(path) => {
                let source = format!("file {}", path.display());
                let path = path.clone();
                match tokio::task::spawn_blocking(move || ogg_opus::read_frames(&path)).await {
                    Ok(Ok(frames)) => {
                        self.source = Some(Source::File { frames, next: 0, due: Instant::now() });
                        Ok(source)
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("could not read the audio file: {e}")),
                }
            }
            None => self.start_microphone(),
        };
        let event = match started {
            Ok(source) => AudioEvent::Started { source },
            Err(why) => AudioEvent::Unavailable(why),
        };
        let _ = self.events.send(event).await;
    }

    #[cfg(feature = "voice")]
    fn start_microphone(&mut self) -> Result<String, String> {
        let capture = device::Capture::start()?;
        let name = capture.name.clone();
        self.source = Some(Source::Microphone(capture));
        Ok(format!("microphone {name}"))
    }

    #[cfg(not(feature = "voice"))]
    #[allow(clippy::unused_self)]
    fn start_microphone(&mut self) -> Result<String, String> {
        Err("this peertalk was built without microphone support; rebuild it with `--features voice` (needs the libasound2-dev and libopus-dev packages), or send a file with --audio-in FILE".to_owned())
    }

    fn stop(&mut self) {
        self.source = None;
    }

    /// Sends the file's next packet and schedules the one after, on the file's own
    /// clock: a late wake-up is made up, never accumulated.
    async fn send_file_frame(&mut self) {
        let Some(Source::File { frames, next, due }) = &mut self.source else { return };
        let frame = frames[*next].clone();
        *next += 1;
        *due += Duration::from_micros(u64::from(frame.samples) * 1_000_000 / u64::from(SAMPLE_RATE));
        let ended = *next == frames.len();
        self.send(frame);
        if ended {
            self.source = None;
            let _ = self.events.send(AudioEvent::SourceEnded).await;
        }
    }

    fn send(&self, frame: OpusFrame) {
        if !self.muted {
            // No peer listening yet is not an error: the packet is simply not needed.
            let _ = self.frames.send(frame);
        }
    }

    /// A member's packet: into the mix (with `voice`); without a codec, straight into the
    /// recording, which then holds one member's audio as it came.
    async fn receive(&mut self, packet: Incoming) {
        #[cfg(feature = "voice")]
        {
            self.mixer.push(&packet);
            self.next_mix.get_or_insert_with(|| Instant::now() + MIX_EVERY);
        }
        #[cfg(not(feature = "voice"))]
        self.record(&packet.data, packet.rtp_timestamp).await;
    }

    async fn record(&mut self, packet: &[u8], rtp_timestamp: u32) {
        if let Some(recorder) = &mut self.recorder
            && let Err(e) = recorder.add(packet, rtp_timestamp)
        {
            self.recorder = None;
            let _ = self.events.send(AudioEvent::Unavailable(format!("{e}; recording stopped"))).await;
        }
    }

    #[cfg(feature = "voice")]
    fn mix_due(&self) -> Option<Instant> {
        self.next_mix
    }

    #[cfg(not(feature = "voice"))]
    #[allow(clippy::unused_self)]
    fn mix_due(&self) -> Option<Instant> {
        None
    }

    /// One 20 ms frame of the mix to the speakers and the recording, and the members'
    /// levels to the meter. The clock runs from the previous frame, so a late wake-up is
    /// made up, unless it is far behind.
    #[cfg(feature = "voice")]
    async fn mix(&mut self) {
        let now = Instant::now();
        self.next_mix =
            self.next_mix.map(|at| if now > at + 5 * MIX_EVERY { now + MIX_EVERY } else { at + MIX_EVERY });
        if let Some(mixed) = self.mixer.tick() {
            self.voice.output(&mixed.pcm, self.play);
            if let Some((packet, at)) = mixed.recorded {
                self.record(&packet, at).await;
            }
            for (peer, dbfs) in mixed.levels {
                let loudest = self.levels.entry(peer).or_insert(f32::NEG_INFINITY);
                *loudest = loudest.max(dbfs);
                self.levels_since.get_or_insert(now);
            }
        }
        if !self.mixer.active() {
            self.next_mix = None;
        }
    }

    #[cfg(not(feature = "voice"))]
    #[allow(clippy::unused_async)]
    async fn mix(&mut self) {}

    /// The session is over: what members sent last is still mixed and recorded.
    #[cfg(feature = "voice")]
    async fn flush_mix(&mut self) {
        for _ in 0..FLUSH_TICKS {
            if !self.mixer.active() {
                break;
            }
            self.mix().await;
        }
    }

    #[cfg(not(feature = "voice"))]
    #[allow(clippy::unused_async)]
    async fn flush_mix(&mut self) {}
}

/// The next packet from the microphone; pending without one.
#[allow(clippy::unused_async)]
async fn next_captured(source: &mut Option<Source>) -> OpusFrame {
    match source {
        #[cfg(feature = "voice")]
        Some(Source::Microphone(capture)) => match capture.frames.recv().await {
            Some(frame) => frame,
            None => std::future::pending().await,
        },
        _ => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The level of some samples in dBFS: 0 for a full-scale square wave, -inf for silence.
#[must_use]
pub fn dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    #[allow(clippy::cast_precision_loss)]
    let mean_square = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    10.0 * mean_square.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_in_dbfs() {
        assert!((dbfs(&[1.0, -1.0]) - 0.0).abs() < 1e-6);
        assert!((dbfs(&[0.5, -0.5]) + 6.02).abs() < 0.01);
        assert_eq!(dbfs(&[0.0; 4]), f32::NEG_INFINITY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_is_sent_in_real_time_and_its_end_reported() {
        let dir = std::env::temp_dir().join(format!("peertalk-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("ten.opus");
        let mut rec = ogg_opus::Recorder::create(&path).expect("create");
        for i in 0..10u32 {
            rec.add(&[0xf8, 0xff, 0xfe], i * 960).expect("add");
        }
        rec.finish().expect("finish");

        let (events_tx, mut events) = mpsc::channel(16);
        let options = AudioOptions { input: Some(path), output: None, play: false };
        let audio = Audio::spawn(options, events_tx).expect("spawn");
        let mut frames = audio.frames().subscribe();
        let begin = Instant::now();
        audio.start();
        assert!(matches!(events.recv().await, Some(AudioEvent::Started { .. })));
        for _ in 0..10 {
            frames.recv().await.expect("a frame");
        }
        assert_eq!(events.recv().await, Some(AudioEvent::SourceEnded));
        let took = begin.elapsed();
        assert!(took >= Duration::from_millis(180) && took < Duration::from_millis(220), "{took:?}");
        audio.finish().await;
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
