//! Per-connection message budgets (governor's GCRA): one for ordinary client messages,
//! bad ones included, and one for `publish`, so a producer streaming over a WebSocket
//! is not throttled like a browser. Repeated `rate_limited` answers end the connection.

use super::HubConfig;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

const ABUSE_WINDOW: Duration = Duration::from_secs(60);

pub struct ConnectionLimits {
    general: DefaultDirectRateLimiter,
    publish: DefaultDirectRateLimiter,
    rejections: VecDeque<Instant>,
    abuse_limit: usize,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl ConnectionLimits {
    pub fn new(config: &HubConfig) -> Self {
        let general = Quota::per_minute(nonzero(config.rate_per_min)).allow_burst(nonzero(config.rate_burst));
        let publish = Quota::per_second(nonzero(config.publish_rate_per_s));
        ConnectionLimits {
            general: RateLimiter::direct(general),
            publish: RateLimiter::direct(publish),
            rejections: VecDeque::new(),
            abuse_limit: config.abuse_limit as usize,
        }
    }

    /// Takes one message from the matching budget; false when it is spent.
    pub fn allow(&self, is_publish: bool) -> bool {
        let limiter = if is_publish { &self.publish } else { &self.general };
        limiter.check().is_ok()
    }

    /// Counts a `rate_limited` answer; true when the connection must now be closed.
    pub fn record_rejection(&mut self, now: Instant) -> bool {
        while self.rejections.front().is_some_and(|t| now.duration_since(*t) > ABUSE_WINDOW) {
            self.rejections.pop_front();
        }
        self.rejections.push_back(now);
        self.rejections.len() >= self.abuse_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn limits() -> ConnectionLimits {
        ConnectionLimits::new(&HubConfig::from(&Config::for_tests("unused".into())))
    }

    #[test]
    fn burst_of_twenty_then_limited() {
        let l = limits();
        let allowed = (0..30).filter(|_| l.allow(false)).count();
        assert_eq!(allowed, 20);
    }

    #[test]
    fn publish_has_its_own_budget() {
        let l = limits();
        while l.allow(false) {}
        let published = (0..5_000).filter(|_| l.allow(true)).count();
        assert_eq!(published, 5_000);
    }

    #[test]
    fn fifty_rejections_in_a_minute_is_abuse() {
        let mut l = limits();
        let t0 = Instant::now();
        for i in 0..49 {
            assert!(!l.record_rejection(t0 + Duration::from_millis(i)));
        }
        assert!(l.record_rejection(t0 + Duration::from_millis(50)));
        let mut l = limits();
        for i in 0..49 {
            l.record_rejection(t0 + Duration::from_secs(i * 2));
        }
        assert!(!l.record_rejection(t0 + Duration::from_secs(200)), "old ones expire");
    }
}
