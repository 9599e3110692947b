//! Exponential backoff with jitter, for reconnecting to the relay: each wait doubles up to
//! a ceiling, and a random part of it spreads out clients that lost the same relay at the
//! same moment, so a restarted relay is not met by all of them at once.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first wait, before jitter.
const FIRST: Duration = Duration::from_millis(250);
/// The longest wait, before jitter.
const CEILING: Duration = Duration::from_secs(15);

/// The waits between attempts.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// How many attempts have been started.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The wait before the next attempt: between half and all of `FIRST · 2^n`, capped.
    pub fn next_delay(&mut self) -> Duration {
        let full = FIRST.saturating_mul(1 << self.attempt.min(16)).min(CEILING);
        self.attempt += 1;
        full.mul_f64(0.5 + 0.5 * unit_random())
    }
}

/// A number in [0, 1). The standard library's hasher keys come from the operating
/// system's random source, which is all jitter needs.
fn unit_random() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(crate::session::now_ms());
    #[allow(clippy::cast_precision_loss)] // 53 bits of randomness are plenty
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_a_quarter_second_up_to_the_ceiling_with_jitter() {
        let mut backoff = Backoff::default();
        let mut full = FIRST;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(delay >= full / 2 && delay <= full, "{delay:?} not within half of {full:?}");
            full = (full * 2).min(CEILING);
        }
        assert_eq!(backoff.attempts(), 12);
    }

    #[test]
    fn jitter_differs_between_clients() {
        let delays: std::collections::BTreeSet<_> =
            (0..20).map(|_| Backoff::default().next_delay()).collect();
        assert!(delays.len() > 1, "all 20 clients would wait exactly {delays:?}");
    }
}
