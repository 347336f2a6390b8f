//! Reconnect delays: exponential backoff with full jitter (first retry ≈ 1 s, capped
//! at 30 s, no attempt limit). Full jitter spreads a crowd of clients that lost the
//! same server, so they do not all come back in the same instant.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap, attempt: 0 }
    }

    /// The ceiling of the next delay: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, given a uniform random number in `[0, 1)`, and counts the attempt.
    /// The first delay is not jittered down to nothing: it lies in `[base/2, base)`,
    /// so a server that just restarted is not hit at once by every client.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let random = random.clamp(0.0, 1.0);
        let ceiling = self.ceiling();
        let delay = if self.attempt == 0 {
            ceiling.mul_f64(0.5 + random / 2.0)
        } else {
            ceiling.mul_f64(random)
        };
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// A connection succeeded: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let ceilings: Vec<u64> = (0..8)
            .map(|_| {
                let c = b.ceiling().as_millis() as u64;
                b.next_delay(0.5);
                c
            })
            .collect();
        assert_eq!(ceilings, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    }

    #[test]
    fn delays_stay_within_full_jitter_bounds() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(500));
        assert!(b.next_delay(0.999) < Duration::from_secs(2));
        assert_eq!(b.next_delay(0.0), Duration::ZERO);
        for _ in 0..100 {
            assert!(b.next_delay(0.999_999) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn never_overflows_and_resets() {
        let mut b = Backoff::default();
        for _ in 0..10_000 {
            b.next_delay(1.0);
        }
        assert_eq!(b.ceiling(), Duration::from_secs(30));
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }
}
