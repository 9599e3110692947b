//! peertalk patch: a model of the path for congestion control, after BBR's (Cardwell et
//! al., "BBR: Congestion-Based Congestion Control", 2016): the bottleneck's rate (the
//! highest delivery rate lately seen) and the path's round trip without queueing (the
//! lowest lately seen). Their product is what the path holds.
//!
//! The association keeps RFC 9260's window rules and uses the model three ways:
//! - the congestion window is capped at a little over what the path holds, so the
//!   bottleneck queue stays short (a tail-drop queue never fills, and a chat line beside
//!   a file waits for a few milliseconds of queue, not the whole buffer);
//! - slow start ends when the delivery rate stops growing (the pipe is full), before the
//!   queue overflows, rather than on the burst of losses that ends it otherwise;
//! - a loss while the round trip shows no queue is taken for random loss (a radio, a
//!   damaged link) and does not halve the window; a loss with a queue standing is
//!   congestion, handled as RFC 9260 says. Loss-based control reads 0.5% random loss as
//!   constant congestion and sits at the Mathis bound, a twentieth of the link here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a lowest round trip is trusted: a path that changed gets a new floor.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// Delivery-rate samples are kept for this many shortest round trips (BBR keeps ten).
const RATE_ROUNDS: u32 = 10;
/// ... and for at least this long: a retransmission timeout stalls the sender for
/// several round trips, and the rate it had before is still the path's.
const MIN_RATE_WINDOW: Duration = Duration::from_secs(2);
/// The shortest interval a delivery-rate sample covers.
const MIN_SAMPLE: Duration = Duration::from_millis(5);
/// The window's cap over the path's capacity: the queue it lets stand is a quarter of
/// the round trip, enough to keep the link busy through the gaps of delayed SACKs.
const CWND_GAIN: f64 = 1.25;
/// While in slow start the cap allows the window to double, as slow start does.
const STARTUP_GAIN: f64 = 2.0;
/// Below this round trip (a LAN, loopback) the model stays out of the way, and every loss
/// counts as congestion as RFC 9260 has it. The window is not capped: queues there drain
/// in microseconds, while the time the hosts take to process a window is most of the
/// round trip and not in the lowest one, so a cap from the model would throttle the
/// sender (a chat message of 16 KiB no longer left in one burst).
const CAP_MIN_RTT: Duration = Duration::from_millis(5);
/// The smallest cap, in MTUs: in slow start the initial window (the first rates measured
/// are of the handshake, not of the path), later dcSCTP's smallest window after a loss.
const INITIAL_WINDOW: u32 = 10;
const MIN_WINDOW: u32 = 4;
/// Slow start ends once the rate has grown less than this factor in three samples.
const FULL_PIPE_GROWTH: f64 = 1.25;
const FULL_PIPE_SAMPLES: u32 = 3;
/// A round trip this far above the lowest means a queue is standing (congestion): a
/// quarter of the lowest (what our own cap lets stand) doubled, and never less than
/// 10 ms of jitter.
const QUEUE_SLACK: f64 = 0.5;
const MIN_QUEUE_SLACK: Duration = Duration::from_millis(10);
/// How many of the latest round trips the queue is judged on (one is measured a round
/// trip).
const RECENT_RTTS: usize = 3;

#[derive(Debug, Default)]
pub(crate) struct PathModel {
    min_rtt: Option<(Duration, Instant)>,
    /// The latest few round trips, for the lowest of them: one sample can be inflated by
    /// a delayed SACK, so a queue is judged on several.
    recent_rtts: VecDeque<Duration>,
    interval: Option<(Instant, u64)>,
    /// (when, bytes per second)
    rates: VecDeque<(Instant, f64)>,
    full_rate: f64,
    samples_without_growth: u32,
    pipe_full: bool,
}

impl PathModel {
    /// A round trip measured on DATA sent once (Karn's rule already applied).
    pub(crate) fn on_rtt(&mut self, rtt: Duration, now: Instant) {
        if self.recent_rtts.len() == RECENT_RTTS {
            self.recent_rtts.pop_front();
        }
        self.recent_rtts.push_back(rtt);
        let stale = self.min_rtt.is_some_and(|(_, at)| now.duration_since(at) > MIN_RTT_WINDOW);
        if stale || self.min_rtt.is_none_or(|(min, _)| rtt <= min) {
            self.min_rtt = Some((rtt.max(Duration::from_micros(100)), now));
        }
    }

    /// `bytes` newly acknowledged (cumulatively or in gap blocks). `app_limited`: the
    /// sender was not sending all the path would take (nothing more was queued, or a
    /// congestion recovery held it back), so a low rate says nothing of the path.
    pub(crate) fn on_acked(&mut self, bytes: u64, now: Instant, app_limited: bool) {
        let (start, total) = self.interval.get_or_insert((now, 0));
        *total += bytes;
        let span = now.duration_since(*start);
        let min_span = self.min_rtt.map_or(MIN_SAMPLE, |(rtt, _)| rtt.max(MIN_SAMPLE));
        if span < min_span {
            return;
        }
        let rate = *total as f64 / span.as_secs_f64();
        self.interval = Some((now, 0));
        let max = self.max_rate();
        if app_limited && rate < max {
            return;
        }
        self.rates.push_back((now, rate));
        let window = self
            .min_rtt
            .map_or(MIN_RATE_WINDOW, |(rtt, _)| (rtt * RATE_ROUNDS).max(MIN_RATE_WINDOW));
        while self.rates.front().is_some_and(|(at, _)| now.duration_since(*at) > window) {
            self.rates.pop_front();
        }
        if !self.pipe_full && !app_limited {
            let max = self.max_rate();
            if max >= self.full_rate * FULL_PIPE_GROWTH {
                self.full_rate = max;
                self.samples_without_growth = 0;
            } else {
                self.samples_without_growth += 1;
                self.pipe_full = self.samples_without_growth >= FULL_PIPE_SAMPLES;
            }
        }
    }

    fn max_rate(&self) -> f64 {
        self.rates.iter().map(|(_, rate)| *rate).fold(0.0, f64::max)
    }

    /// What the path holds, in bytes: the bottleneck rate over the lowest round trip.
    pub(crate) fn bdp(&self) -> Option<u32> {
        let (rtt, _) = self.min_rtt?;
        let rate = self.max_rate();
        (rate > 0.0).then(|| (rate * rtt.as_secs_f64()).min(f64::from(u32::MAX)) as u32)
    }

    /// The most the congestion window may be, if the model knows the path yet.
    pub(crate) fn cwnd_cap(&self, slow_start: bool, mtu: u32) -> Option<u32> {
        let (gain, floor) = if slow_start { (STARTUP_GAIN, INITIAL_WINDOW) } else { (CWND_GAIN, MIN_WINDOW) };
        let (rtt, _) = self.min_rtt?;
        if rtt < CAP_MIN_RTT {
            return None;
        }
        let bdp = self.bdp()?;
        Some(((f64::from(bdp) * gain) as u32).max(floor * mtu))
    }

    /// A loss with a queue standing: whatever slow start thought, the pipe is full.
    pub(crate) fn on_congestion(&mut self) {
        self.pipe_full = true;
    }

    /// The delivery rate has stopped growing: slow start has found the bottleneck.
    pub(crate) fn pipe_full(&self) -> bool {
        self.pipe_full
    }

    /// Whether the latest round trip shows a queue standing at the bottleneck: a loss then
    /// is congestion. Without measurements, every loss is.
    pub(crate) fn queue_standing(&self) -> bool {
        let (Some((min, _)), Some(recent)) = (self.min_rtt, self.recent_rtts.iter().min()) else {
            return true;
        };
        // On a LAN the round trip cannot tell a queue from jitter, and loss-based control
        // recovers within milliseconds anyway.
        min < CAP_MIN_RTT || *recent > min + min.mul_f64(QUEUE_SLACK).max(MIN_QUEUE_SLACK)
    }

    /// After a timeout the sender starts again from one packet: slow start may go back up
    /// to what the path is known to hold before probing, where RFC 9260 takes half the
    /// window that was lost.
    pub(crate) fn restart_threshold(&self) -> Option<u32> {
        self.bdp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_learns_rate_and_round_trip_and_caps_the_window_a_little_above_them() {
        let mut model = PathModel::default();
        let start = Instant::now();
        model.on_rtt(Duration::from_millis(50), start);
        // 10 MB/s for a second, acknowledged every millisecond.
        for ms in 1..=1000 {
            model.on_acked(10_000, start + Duration::from_millis(ms), false);
        }
        let bdp = model.bdp().expect("known");
        assert!((490_000..=510_000).contains(&bdp), "{bdp}");
        assert_eq!(model.cwnd_cap(false, 1200), Some((f64::from(bdp) * CWND_GAIN) as u32));
        assert!(model.pipe_full(), "the rate stopped growing");
    }

    #[test]
    fn a_round_trip_near_the_lowest_means_no_queue() {
        let mut model = PathModel::default();
        let now = Instant::now();
        assert!(model.queue_standing(), "nothing known: every loss is congestion");
        model.on_rtt(Duration::from_millis(50), now);
        model.on_rtt(Duration::from_millis(58), now);
        assert!(!model.queue_standing());
        model.on_rtt(Duration::from_millis(250), now);
        assert!(!model.queue_standing(), "one late SACK is not a queue");
        model.on_rtt(Duration::from_millis(90), now);
        model.on_rtt(Duration::from_millis(95), now);
        assert!(model.queue_standing());
    }

    #[test]
    fn an_idle_sender_does_not_lower_the_rate() {
        let mut model = PathModel::default();
        let start = Instant::now();
        model.on_rtt(Duration::from_millis(20), start);
        for ms in 1..=100 {
            model.on_acked(10_000, start + Duration::from_millis(ms), false);
        }
        let before = model.bdp().expect("known");
        for ms in 101..=150 {
            model.on_acked(100, start + Duration::from_millis(ms), true);
        }
        assert_eq!(model.bdp(), Some(before));
    }
}
