//! One call member's jitter buffer: packets arrive early, late, twice or never, and the
//! mix takes one 20 ms frame from each member on a steady clock. Pure bookkeeping, so the
//! rules are tested without a codec; `mix.rs` turns each [`Play`] into samples.
//!
//! A member starts playing once its target of frames is buffered (40 ms, or
//! 60 ms after an underrun; back to 40 ms after 5 s without one). A lost packet is
//! recovered from the next one's in-band FEC when that has arrived, else concealed; a
//! member whose packets stop is concealed for [`MAX_CONCEALED`] frames, then falls silent
//! until it has buffered again.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::ogg_opus::packet_samples;

/// 20 ms at 48 kHz: the mix's frame, and what a lost packet is assumed to have held.
pub const FRAME: u32 = 960;
/// Frames buffered before playing, normally (40 ms) and at most (60 ms).
const MIN_TARGET: usize = 2;
const MAX_TARGET: usize = 3;
/// Frames buffered beyond the target before the oldest are dropped to catch up.
const MAX_EXTRA: usize = 3;
/// Frames concealed in a row before a member whose packets stopped falls silent.
pub const MAX_CONCEALED: u32 = 3;
/// Frames without an underrun (5 s) before the target comes back down.
const CALM: u32 = 250;

/// What to play for a member in one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Play {
    /// The packet that is due.
    Packet(Bytes),
    /// The due packet is lost; this later one carries its in-band FEC.
    Recover(Bytes),
    /// The due packet is lost, with nothing to recover it from: conceal (PLC).
    Conceal,
    /// Nothing: the member is not playing.
    Silent,
}

#[derive(Debug)]
pub struct JitterBuffer {
    /// Packets by timestamp, counted from the first packet's.
    packets: BTreeMap<i64, Bytes>,
    first: Option<u32>,
    /// While playing: the timestamp of the frame due next.
    next: Option<i64>,
    target: usize,
    concealed: u32,
    calm: u32,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self { packets: BTreeMap::new(), first: None, next: None, target: MIN_TARGET, concealed: 0, calm: 0 }
    }
}

impl JitterBuffer {
    /// Whether the member is playing or about to.
    #[must_use]
    pub fn active(&self) -> bool {
        self.next.is_some() || !self.packets.is_empty()
    }

    /// Takes in a packet with its RTP timestamp. Late ones (already played or concealed)
    /// and duplicates are dropped.
    pub fn push(&mut self, rtp_timestamp: u32, data: Bytes) {
        let first = *self.first.get_or_insert(rtp_timestamp);
        // Within ±12 hours of the first packet, wrapping included.
        let at = i64::from(rtp_timestamp.wrapping_sub(first).cast_signed());
        if self.next.is_some_and(|next| at < next) {
            return;
        }
        self.packets.entry(at).or_insert(data);
    }

    /// The next frame of this member.
    pub fn pop(&mut self) -> Play {
        let next = match self.next {
            Some(next) => next,
            None if self.packets.len() >= self.target => {
                *self.next.insert(self.packets.keys().next().copied().unwrap_or(0))
            }
            None => return Play::Silent,
        };
        if let Some(data) = self.packets.remove(&next) {
            let samples = packet_samples(&data).unwrap_or(FRAME);
            self.next = Some(next + i64::from(samples));
            self.concealed = 0;
            self.calm += 1;
            if self.calm >= CALM && self.target > MIN_TARGET {
                self.target -= 1;
                self.calm = 0;
            }
            self.catch_up();
            return Play::Packet(data);
        }
        self.concealed += 1;
        self.calm = 0;
        if self.packets.is_empty() && self.concealed > MAX_CONCEALED {
            // The packets stopped (or were late for too long): wait, then buffer more.
            self.next = None;
            self.concealed = 0;
            self.target = (self.target + 1).min(MAX_TARGET);
            return Play::Silent;
        }
        let after = next + i64::from(FRAME);
        self.next = Some(after);
        match self.packets.get(&after) {
            Some(data) => Play::Recover(data.clone()),
            None => Play::Conceal,
        }
    }

    /// Far behind the sender (a burst arrived at once): drop the oldest, keeping the
    /// target, so the delay does not grow.
    fn catch_up(&mut self) {
        while self.packets.len() > self.target + MAX_EXTRA {
            self.packets.pop_first();
            self.next = self.packets.keys().next().copied();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 ms CELT packet (TOC 0xf8: config 31, one frame), tagged to be told apart.
    fn packet(tag: u8) -> Bytes {
        Bytes::from(vec![0xf8, tag])
    }

    fn tag(play: &Play) -> Option<u8> {
        match play {
            Play::Packet(data) | Play::Recover(data) => Some(data[1]),
            _ => None,
        }
    }

    #[test]
    fn playing_starts_once_two_frames_are_buffered_and_keeps_order() {
        let mut j = JitterBuffer::default();
        j.push(1000, packet(1));
        assert_eq!(j.pop(), Play::Silent, "one frame is not enough");
        j.push(1000 + FRAME * 2, packet(3));
        j.push(1000 + FRAME, packet(2));
        let played: Vec<_> = (0..3).map(|_| tag(&j.pop())).collect();
        assert_eq!(played, [Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn a_lost_packet_is_recovered_from_the_next_or_concealed() {
        let mut j = JitterBuffer::default();
        for (i, t) in [(0, 1), (1, 2), (3, 4), (5, 6), (6, 7)] {
            j.push(FRAME * i, packet(t));
        }
        let played: Vec<Play> = (0..7).map(|_| j.pop()).collect();
        assert_eq!(tag(&played[0]), Some(1));
        assert_eq!(tag(&played[1]), Some(2));
        assert_eq!(played[2], Play::Recover(packet(4)), "3 is lost; 4 carries its FEC");
        assert_eq!(tag(&played[3]), Some(4));
        assert_eq!(played[4], Play::Recover(packet(6)));
        assert_eq!(tag(&played[5]), Some(6));
        assert_eq!(tag(&played[6]), Some(7));
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let mut j = JitterBuffer::default();
        j.push(0, packet(1));
        j.push(FRAME, packet(2));
        j.push(FRAME, packet(9));
        assert_eq!(tag(&j.pop()), Some(1));
        j.push(0, packet(8));
        assert_eq!(tag(&j.pop()), Some(2), "the duplicate of 2 was not kept");
    }

    #[test]
    fn a_member_that_stops_is_concealed_briefly_then_silent_and_buffers_longer_next_time() {
        let mut j = JitterBuffer::default();
        j.push(0, packet(1));
        j.push(FRAME, packet(2));
        j.pop();
        j.pop();
        let after: Vec<Play> = (0..5).map(|_| j.pop()).collect();
        assert_eq!(after[..3], [Play::Conceal, Play::Conceal, Play::Conceal]);
        assert_eq!(after[3..], [Play::Silent, Play::Silent]);
        assert!(!j.active());
        assert_eq!(j.target, 3, "an underrun buffers one more frame");
    }

    #[test]
    fn a_burst_far_ahead_is_trimmed_to_the_target() {
        let mut j = JitterBuffer::default();
        for i in 0..10 {
            j.push(FRAME * i, packet(u8::try_from(i).expect("small")));
        }
        assert_eq!(tag(&j.pop()), Some(0));
        assert_eq!(tag(&j.pop()), Some(5), "dropped ahead to two buffered plus three");
    }
}
