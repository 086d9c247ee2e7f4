// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rate limiting: a sliding window per key (the exact log of the requests in the last window),
//! sized by the key's tier.
//!
//! Each answer carries the IETF httpapi draft headers: `RateLimit-Policy: "<tier>";q=<quota>;w=<window s>`
//! and `RateLimit: "<tier>";r=<remaining>;t=<seconds until one more request is allowed>`; over
//! the limit, a 429 with `Retry-After` as well.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A tier's quota: `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests: u32,
    pub window: Duration,
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub remaining: u32,
    /// Seconds until a request is allowed again (0 while some remain), rounded up.
    pub reset_s: u64,
}

impl Decision {
    /// The `RateLimit` and `RateLimit-Policy` headers.
    pub fn headers(&self, tier: &str, quota: Quota) -> [(&'static str, String); 2] {
        [
            (
                "ratelimit-policy",
                format!(
                    "\"{tier}\";q={};w={}",
                    quota.requests,
                    quota.window.as_secs().max(1)
                ),
            ),
            (
                "ratelimit",
                format!("\"{tier}\";r={};t={}", self.remaining, self.reset_s),
            ),
        ]
    }
}

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimiter {
    /// Counts a request of `who` at `now` if the quota allows it.
    pub fn check(&self, who: &str, quota: Quota, now: Instant) -> Decision {
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned limiter must not lock everyone out, nor let everyone through unseen.
            return Decision {
                allowed: false,
                remaining: 0,
                reset_s: 1,
            };
        };
        let log = windows.entry(who.to_owned()).or_default();
        while log
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= quota.window)
        {
            log.pop_front();
        }
        let used = log.len() as u32;
        if used >= quota.requests {
            let oldest = log.front().copied().unwrap_or(now);
            let wait = quota
                .window
                .saturating_sub(now.saturating_duration_since(oldest));
            return Decision {
                allowed: false,
                remaining: 0,
                reset_s: ceil_secs(wait).max(1),
            };
        }
        log.push_back(now);
        let remaining = quota.requests - used - 1;
        let reset_s = if remaining > 0 {
            0
        } else {
            let oldest = log.front().copied().unwrap_or(now);
            ceil_secs(
                quota
                    .window
                    .saturating_sub(now.saturating_duration_since(oldest)),
            )
            .max(1)
        };
        Decision {
            allowed: true,
            remaining,
            reset_s,
        }
    }

    /// Whether `who` is over its quota, without counting a request.
    pub fn exhausted(&self, who: &str, quota: Quota, now: Instant) -> Option<u64> {
        let windows = self.windows.lock().ok()?;
        let log = windows.get(who)?;
        let live: Vec<&Instant> = log
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) < quota.window)
            .collect();
        if (live.len() as u32) < quota.requests {
            return None;
        }
        let oldest = **live.first()?;
        Some(
            ceil_secs(
                quota
                    .window
                    .saturating_sub(now.saturating_duration_since(oldest)),
            )
            .max(1),
        )
    }

    /// Forgets windows that have emptied (called now and then).
    pub fn prune(&self, longest: Duration, now: Instant) {
        if let Ok(mut windows) = self.windows.lock() {
            windows.retain(|_, log| {
                log.back()
                    .is_some_and(|&t| now.saturating_duration_since(t) < longest)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides() {
        let limiter = RateLimiter::default();
        let quota = Quota {
            requests: 3,
            window: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(limiter.check("k", quota, at(0)).remaining, 2);
        assert!(limiter.check("k", quota, at(4)).allowed);
        let last = limiter.check("k", quota, at(5));
        assert!(last.allowed && last.remaining == 0 && last.reset_s == 5);
        let refused = limiter.check("k", quota, at(6));
        assert!(!refused.allowed);
        assert_eq!(
            refused.reset_s, 4,
            "the request at 0 leaves the window at 10"
        );
        // Another key has its own window.
        assert!(limiter.check("other", quota, at(6)).allowed);
        // At 10 the first request has left the window: one more is allowed, not three.
        assert!(limiter.check("k", quota, at(10)).allowed);
        assert!(!limiter.check("k", quota, at(11)).allowed);
        let h = refused.headers("standard", quota);
        assert_eq!(h[0].1, "\"standard\";q=3;w=10");
        assert_eq!(h[1].1, "\"standard\";r=0;t=4");
    }
}
