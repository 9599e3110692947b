//! A real network path, emulated: two network namespaces joined by a wire of our own, a
//! pair of TUN devices whose packets this process carries across after a one-way delay,
//! paced to a link rate through a tail-drop bottleneck queue, with seeded random loss and
//! outages on demand. This kernel has no netem (`shared/network-emulation.md`), and a
//! path with delay and a queue is where users live; loopback hides everything that
//! matters to congestion control.
//!
//! Each direction has a reader thread, which decides each packet's fate the moment it
//! leaves the sender (loss, then the queue: a packet is dropped when the bottleneck
//! already holds more than `queue` of transmission time), and a writer thread that hands
//! it to the other side when its last bit has crossed the link and the delay has passed.
//! Delivery times only grow, so each direction is a FIFO with no heap.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tun_rs::{DeviceBuilder, InterruptEvent, SyncDevice};

/// What the path is like, each way.
#[derive(Clone, Copy, Debug)]
pub struct PathSpec {
    pub one_way: Duration,
    /// The bottleneck's rate, in bits per second.
    pub rate_bps: u64,
    /// The bottleneck queue's length, in time at the link rate; beyond it packets drop.
    pub queue: Duration,
    /// Random loss, 0.0 to 1.0, on top of what the queue drops.
    pub loss: f64,
    /// Seeds the loss, so a failing run can be replayed.
    pub seed: u64,
}

impl PathSpec {
    /// A home connection to a friend in another city: 25 ms each way, 100 Mbit/s, a 60 ms
    /// tail-drop queue at the router, and `loss` random loss.
    pub fn home(loss: f64) -> Self {
        Self {
            one_way: Duration::from_millis(25),
            rate_bps: 100_000_000,
            queue: Duration::from_millis(60),
            loss,
            seed: 7,
        }
    }
}

impl std::fmt::Display for PathSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ms each way, {} Mbit/s, {} ms queue, {}% loss",
            self.one_way.as_millis(),
            self.rate_bps / 1_000_000,
            self.queue.as_millis(),
            self.loss * 100.0
        )
    }
}

/// What the wire did, both directions together.
#[derive(Debug, Default)]
pub struct WireCounts {
    pub forwarded: AtomicU64,
    pub dropped_by_queue: AtomicU64,
    pub dropped_by_loss: AtomicU64,
    pub dropped_in_outage: AtomicU64,
}

/// Two namespaces, `a` (`a_ip`) and `b` (`b_ip`), on an emulated path; torn down when
/// dropped.
pub struct Path {
    pub a: String,
    pub b: String,
    pub a_ip: String,
    pub b_ip: String,
    pub spec: PathSpec,
    pub counts: Arc<WireCounts>,
    outage: Arc<AtomicBool>,
    udp_cut: Arc<AtomicBool>,
    stop: Arc<InterruptEvent>,
    threads: Vec<JoinHandle<()>>,
}

impl Path {
    /// Makes the namespaces and the wire, or says why it cannot (then the caller skips,
    /// saying so): it needs root (CAP_NET_ADMIN), `/dev/net/tun` and iproute2.
    pub fn create(spec: PathSpec) -> Result<Self, String> {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let subnet = (std::process::id() + n) % 250 + 1;
        let (a, b) = (format!("pt-wa-{tag}"), format!("pt-wb-{tag}"));
        let (a_ip, b_ip) = (format!("10.78.{subnet}.1"), format!("10.78.{subnet}.2"));
        // Interface names are at most 15 bytes.
        let short = tag.replace('-', "");
        let (dev_a, dev_b) = (format!("twa{short}"), format!("twb{short}"));
        let (dev_a, dev_b) = (&dev_a[..dev_a.len().min(15)], &dev_b[..dev_b.len().min(15)]);

        let device = |name: &str| {
            DeviceBuilder::new().name(name).build_sync().map_err(|e| {
                format!("cannot make TUN device {name} ({e}); is /dev/net/tun there, and are we root?")
            })
        };
        let (tun_a, tun_b) = (device(dev_a)?, device(dev_b)?);
        ip(&["netns", "add", &a])?;
        let path = Self {
            a: a.clone(),
            b: b.clone(),
            a_ip: a_ip.clone(),
            b_ip: b_ip.clone(),
            spec,
            counts: Arc::default(),
            outage: Arc::default(),
            udp_cut: Arc::default(),
            stop: Arc::new(
                InterruptEvent::new().map_err(|e| format!("cannot make an interrupt event: {e}"))?,
            ),
            threads: Vec::new(),
        };
        ip(&["netns", "add", &b])?;
        // The open devices keep working after moving into their namespaces.
        for (ns, dev, me, peer) in [(&a, dev_a, &a_ip, &b_ip), (&b, dev_b, &b_ip, &a_ip)] {
            ip(&["link", "set", dev, "netns", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("{me}/32"), "peer", &format!("{peer}/32"), "dev", dev])?;
            // A burst a peer writes at once waits in the device's queue until the wire
            // reads it; the default 500 packets would drop what a real NIC sends on.
            ip(&["-n", ns, "link", "set", dev, "mtu", "1500", "txqueuelen", "10000", "up"])?;
        }
        let mut path = path;
        let (tun_a, tun_b) = (Arc::new(tun_a), Arc::new(tun_b));
        for (from, to, seed) in
            [(&tun_a, &tun_b, spec.seed), (&tun_b, &tun_a, spec.seed ^ 0x9e37_79b9_7f4a_7c15)]
        {
            let (send, receive) = mpsc::channel::<(Instant, Vec<u8>)>();
            let direction = Direction {
                bottleneck: Bottleneck::new(spec, seed),
                counts: path.counts.clone(),
                outage: path.outage.clone(),
                udp_cut: path.udp_cut.clone(),
            };
            let (from, stop) = (from.clone(), path.stop.clone());
            path.threads.push(std::thread::spawn(move || direction.read(&from, &stop, &send)));
            let to = to.clone();
            path.threads.push(std::thread::spawn(move || deliver(&to, &receive)));
        }
        Ok(path)
    }

    /// Cuts the wire (`true`: every packet is lost, both ways) or mends it.
    pub fn outage(&self, cut: bool) {
        self.outage.store(cut, Ordering::Relaxed);
    }

    /// Cuts UDP alone (`true`), both ways: the peers' path (ICE, DTLS, SCTP, RTP) breaks
    /// while the relay's WebSocket, over TCP, carries on.
    pub fn cut_udp(&self, cut: bool) {
        self.udp_cut.store(cut, Ordering::Relaxed);
    }

    /// A one-line account of what the wire did.
    pub fn report(&self) -> String {
        let c = &self.counts;
        format!(
            "{} packets forwarded; dropped: {} by the queue, {} at random, {} in outages",
            c.forwarded.load(Ordering::Relaxed),
            c.dropped_by_queue.load(Ordering::Relaxed),
            c.dropped_by_loss.load(Ordering::Relaxed),
            c.dropped_in_outage.load(Ordering::Relaxed)
        )
    }
}

impl Drop for Path {
    fn drop(&mut self) {
        let _ = self.stop.trigger();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

/// What becomes of a packet on the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It reaches the other side at this time.
    Arrives(Instant),
    /// The bottleneck's queue was full.
    QueueFull,
    /// Random loss.
    Lost,
}

/// One direction of a path as a function of time alone, so the same path serves the
/// wire between namespaces and a test on a virtual clock.
pub struct Bottleneck {
    spec: PathSpec,
    rng: SplitMix,
    /// When the link has finished sending what it holds.
    free_at: Option<Instant>,
}

impl Bottleneck {
    pub fn new(spec: PathSpec, seed: u64) -> Self {
        Self { spec, rng: SplitMix(seed), free_at: None }
    }

    /// The fate of a packet of `len` bytes that leaves at `now`: random loss first, then
    /// the queue, which drops it when the link already holds more than `queue` of
    /// sending; else it arrives when its last bit has crossed and the delay has passed.
    pub fn admit(&mut self, len: usize, now: Instant) -> Fate {
        if self.spec.loss > 0.0 && self.rng.unit() < self.spec.loss {
            return Fate::Lost;
        }
        let start = self.free_at.map_or(now, |free| free.max(now));
        if start - now > self.spec.queue {
            return Fate::QueueFull;
        }
        let bits = u64::try_from(len).unwrap_or(u64::MAX) * 8;
        let free_at = start + Duration::from_nanos(bits * 1_000_000_000 / self.spec.rate_bps.max(1));
        self.free_at = Some(free_at);
        Fate::Arrives(free_at + self.spec.one_way)
    }
}

/// One direction of the wire.
struct Direction {
    bottleneck: Bottleneck,
    counts: Arc<WireCounts>,
    outage: Arc<AtomicBool>,
    udp_cut: Arc<AtomicBool>,
}

impl Direction {
    fn read(mut self, from: &SyncDevice, stop: &InterruptEvent, to: &mpsc::Sender<(Instant, Vec<u8>)>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match from.recv_intr(&mut buf, stop) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted && !stop.is_trigger() => continue,
                Err(_) => return,
            };
            if let Some(at) = self.admit(&buf[..n])
                && to.send((at, buf[..n].to_vec())).is_err()
            {
                return;
            }
        }
    }

    /// When a packet of `len` bytes leaving now reaches the other side, or `None` if the
    /// path loses it.
    fn admit(&mut self, packet: &[u8]) -> Option<Instant> {
        let counts = &self.counts;
        // An IPv4 header's protocol field: 17 is UDP.
        let udp = packet.first().is_some_and(|b| b >> 4 == 4) && packet.get(9) == Some(&17);
        if self.outage.load(Ordering::Relaxed) || (udp && self.udp_cut.load(Ordering::Relaxed)) {
            counts.dropped_in_outage.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match self.bottleneck.admit(packet.len(), Instant::now()) {
            Fate::Arrives(at) => {
                counts.forwarded.fetch_add(1, Ordering::Relaxed);
                Some(at)
            }
            Fate::QueueFull => {
                counts.dropped_by_queue.fetch_add(1, Ordering::Relaxed);
                None
            }
            Fate::Lost => {
                counts.dropped_by_loss.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// Hands each packet to `to` at its time.
fn deliver(to: &SyncDevice, packets: &mpsc::Receiver<(Instant, Vec<u8>)>) {
    while let Ok((at, packet)) = packets.recv() {
        let wait = at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let _ = to.send(&packet);
    }
}

/// A small seeded generator (SplitMix64): the same seed drops the same packets.
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs `f` on a thread inside namespace `ns`: sockets it opens live there, so a test
/// can be one end of a TCP connection across the path.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("the namespace exists");
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the namespace");
        f()
    })
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out =
        std::process::Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}
