//! A file fills a real path and a chat line beside it stays quick, even with random loss:
//! the congestion control in `vendor/rtc-sctp` (`association/path_model.rs`; see
//! vendor/PATCHES.md). Two sans-I/O peer connections on a virtual clock, joined by the
//! same bottleneck the emulated network uses (`tests/common/path.rs`): 25 ms each way,
//! 100 Mbit/s, a 60 ms tail-drop queue, and 0.5% random loss, seeded, so every run is the
//! same run. The offerer keeps a file channel's buffer full for 8 simulated seconds and
//! writes a chat line every 50 ms.
//!
//! With the published crate's loss-based control, every random loss halves the window:
//! the file moves at the Mathis bound (about 0.5 MB/s here) and the chat waits in a
//! queue that loss-based control keeps full.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::path::{Bottleneck, Fate, PathSpec};
use common::sansio::{Received, addresses, negotiated_with, opened, received};
use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

const RUN: Duration = Duration::from_secs(8);
const FILE_MESSAGE: usize = 64 * 1024;
/// What the sender keeps queued, as peertalk's file sender does.
const FILE_BUFFER: usize = 1024 * 1024;
const CHAT_EVERY: Duration = Duration::from_millis(50);

/// One direction of the link: packets on their way, in arrival order.
struct Link {
    bottleneck: Bottleneck,
    on_the_way: VecDeque<(Instant, BytesMut)>,
}

impl Link {
    fn new(spec: PathSpec, seed: u64) -> Self {
        Self { bottleneck: Bottleneck::new(spec, seed), on_the_way: VecDeque::new() }
    }

    fn send_all(&mut self, from: &mut RTCPeerConnection, now: Instant) {
        while let Some(packet) = from.poll_write() {
            if let Fate::Arrives(at) = self.bottleneck.admit(packet.message.len() + 28, now) {
                self.on_the_way.push_back((at, BytesMut::from(&packet.message[..])));
            }
        }
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.on_the_way.front().map(|(at, _)| *at)
    }

    fn deliver_due(&mut self, to: &mut RTCPeerConnection, from_addr: std::net::SocketAddr, now: Instant) {
        let to_addr = if from_addr == addresses().0 { addresses().1 } else { addresses().0 };
        while self.on_the_way.front().is_some_and(|(at, _)| *at <= now) {
            let (_, message) = self.on_the_way.pop_front().expect("a packet");
            let transport = TransportContext {
                local_addr: to_addr,
                peer_addr: from_addr,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            };
            let _ = to.handle_read(TaggedBytesMut { now, transport, message });
        }
    }
}

/// Both peers and the path between them, on one virtual clock.
struct World {
    offerer: RTCPeerConnection,
    answerer: RTCPeerConnection,
    there: Link,
    back: Link,
    now: Instant,
}

impl World {
    /// Runs the world until `until`, or until nothing is due before it.
    fn run_until(&mut self, until: Instant) {
        let (offer_addr, answer_addr) = addresses();
        loop {
            self.there.send_all(&mut self.offerer, self.now);
            self.back.send_all(&mut self.answerer, self.now);
            let far = until;
            let next = [
                self.there.next_arrival(),
                self.back.next_arrival(),
                self.offerer.poll_timeout(),
                self.answerer.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .fold(far, Instant::min)
            .max(self.now);
            if next >= until {
                self.now = until;
                let _ = self.offerer.handle_timeout(until);
                let _ = self.answerer.handle_timeout(until);
                return;
            }
            self.now = next;
            self.there.deliver_due(&mut self.answerer, offer_addr, self.now);
            self.back.deliver_due(&mut self.offerer, answer_addr, self.now);
            let _ = self.offerer.handle_timeout(self.now);
            let _ = self.answerer.handle_timeout(self.now);
        }
    }
}

/// What one simulated run came to.
struct Outcome {
    /// The file's rate, MB/s.
    rate: f64,
    /// One-way times of the chat lines, sorted.
    latencies: Vec<Duration>,
    lines_sent: usize,
    report: String,
}

impl Outcome {
    fn p99(&self) -> Duration {
        self.latencies[(self.latencies.len() - 1) * 99 / 100]
    }
}

#[test]
fn without_loss_a_file_fills_the_path_and_chat_waits_only_for_the_path() {
    let run = simulate(PathSpec { seed: 11, ..PathSpec::home(0.0) });
    // One TCP connection moves 10.7-11.6 MB/s on this path (scripts/bench-wan).
    assert!(run.rate >= 9.5, "the file moved at {:.2} MB/s, under 90% of TCP: {}", run.rate, run.report);
    assert!(run.p99() <= Duration::from_millis(250), "chat lines waited: {}", run.report);
    assert!(run.latencies.len() + 2 >= run.lines_sent, "lines still on the way at the end: {}", run.report);
}

#[test]
fn with_half_a_percent_random_loss_the_file_keeps_most_of_the_path() {
    let run = simulate(PathSpec { seed: 11, ..PathSpec::home(0.005) });
    // TCP with BBR moves 9-10 MB/s on this path; loss-based control (CUBIC, and this
    // crate as published) about 0.5.
    assert!(
        run.rate >= 5.0,
        "the file moved at {:.2} MB/s, less than half of TCP-BBR: {}",
        run.rate,
        run.report
    );
    assert!(run.p99() <= Duration::from_millis(300), "chat lines waited: {}", run.report);
    assert!(run.latencies.len() + 2 >= run.lines_sent, "lines still on the way at the end: {}", run.report);
}

#[test]
fn with_one_percent_random_loss_the_file_still_moves_at_speed() {
    let run = simulate(PathSpec { seed: 11, ..PathSpec::home(0.01) });
    // TCP with BBR moved 6.1 MB/s on this path; CUBIC 0.3.
    assert!(
        run.rate >= 3.0,
        "the file moved at {:.2} MB/s, less than half of TCP-BBR: {}",
        run.rate,
        run.report
    );
    assert!(run.p99() <= Duration::from_millis(300), "chat lines waited: {}", run.report);
}

/// Runs the scene on `spec`: a file channel kept full and a chat line every 50 ms, for
/// [`RUN`] of simulated time.
fn simulate(spec: PathSpec) -> Outcome {
    let start = Instant::now();
    let (offer_addr, answer_addr) = addresses();
    let (offerer, answerer) = negotiated_with(start, offer_addr, answer_addr, |settings| {
        // peertalk's receive window (src/peer/socket.rs, with the usual 4 MiB rmem_max).
        settings.with_sctp_max_receive_buffer_size(2 * 1024 * 1024)
    });
    let mut world = World {
        offerer,
        answerer,
        there: Link::new(spec, spec.seed),
        back: Link::new(spec, spec.seed ^ 0xffff),
        now: start,
    };

    // The chat channel comes with the offer; a file channel opens beside it.
    let (mut chat, mut file) = (None, None);
    let mut file_asked = false;
    while chat.is_none() || file.is_none() {
        assert!(world.now < start + Duration::from_secs(10), "the channels did not open");
        let step = world.now + Duration::from_millis(5);
        world.run_until(step);
        for id in opened(&mut world.offerer) {
            if Some(id) == file {
                continue;
            }
            chat = chat.or(Some(id));
        }
        let _ = (opened(&mut world.answerer), received(&mut world.answerer));
        if chat.is_some() && !file_asked {
            file = Some(world.offerer.create_data_channel("file:1", None).expect("a file channel").id());
            file_asked = true;
        }
    }
    let (chat, file) = (chat.expect("chat"), file.expect("file"));
    world.run_until(world.now + Duration::from_millis(200));
    let _ = received(&mut world.answerer);

    // The file keeps its buffer full; a chat line leaves every 50 ms.
    let began = world.now;
    let mut file_bytes = 0usize;
    let mut lines_sent: Vec<Instant> = Vec::new();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut next_line = began;
    while world.now < began + RUN {
        let mut channel = world.offerer.data_channel(file).expect("the file channel");
        while channel.outstanding_bytes() < FILE_BUFFER {
            channel.send(world.now, BytesMut::from(&[7u8; FILE_MESSAGE][..])).expect("queued");
        }
        if world.now >= next_line {
            let text = format!("line {}", lines_sent.len());
            world.offerer.data_channel(chat).expect("chat").send_text(world.now, text).expect("queued");
            lines_sent.push(world.now);
            next_line += CHAT_EVERY;
        }
        let step = (world.now + Duration::from_millis(1)).min(next_line.max(world.now));
        world.run_until(step.max(world.now + Duration::from_micros(200)));
        let _ = (opened(&mut world.offerer), opened(&mut world.answerer));
        for got in received(&mut world.answerer) {
            match got {
                Received::Binary(n) => file_bytes += n,
                Received::Text(text) => {
                    let n: usize = text.trim_start_matches("line ").parse().expect("a line number");
                    latencies.push(world.now - lines_sent[n]);
                }
            }
        }
    }

    let rate = file_bytes as f64 / RUN.as_secs_f64() / 1e6;
    latencies.sort();
    let report = format!(
        "file {rate:.2} MB/s; chat one way p50 {:?}, p99 {:?}, {} of {} lines",
        latencies[latencies.len() / 2],
        latencies[(latencies.len() - 1) * 99 / 100],
        latencies.len(),
        lines_sent.len()
    );
    common::note(&format!("congestion control on a virtual {spec}: {report}"));
    Outcome { rate, latencies, lines_sent: lines_sent.len(), report }
}
