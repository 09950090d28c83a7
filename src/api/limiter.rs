//! The client-side rate limiter: one per OAuth client, shared by every call made with it.
//!
//! A pure GCRA (generic cell rate algorithm) computation: given `now`, it says how long to
//! wait, and the caller waits on its own clock. The simulator uses it the same way on its
//! virtual clock. The server's `inin-ratelimit-*` headers and `Retry-After` tighten it: near
//! the server's limit, or after a 429, it holds every call until the server's window resets.

use crate::api::RateLimitInfo;
use crate::effects::clock::Clock;
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex, PoisonError};

/// Genesys' default: 300 requests a minute per OAuth client.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 300;
/// Calls that may go at once before the steady rate applies.
const DEFAULT_BURST: u32 = 10;

/// GCRA state for one OAuth client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimiter {
    interval: SignedDuration,
    tolerance: SignedDuration,
    theoretical_arrival: Option<Timestamp>,
    hold_until: Option<Timestamp>,
}

impl RateLimiter {
    /// `requests_per_minute` at a steady rate, with a burst of a few calls.
    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self::with_burst(requests_per_minute, DEFAULT_BURST)
    }

    /// `requests_per_minute` at a steady rate, `burst` calls allowed back to back.
    pub fn with_burst(requests_per_minute: u32, burst: u32) -> Self {
        let interval = SignedDuration::from_mins(1)
            / i32::try_from(requests_per_minute.max(1)).unwrap_or(i32::MAX);
        let tolerance = interval * i32::try_from(burst.max(1) - 1).unwrap_or(i32::MAX);
        Self {
            interval,
            tolerance,
            theoretical_arrival: None,
            hold_until: None,
        }
    }

    /// Books the next call: how long after `now` it may go (zero: at once).
    pub fn reserve(&mut self, now: Timestamp) -> SignedDuration {
        let tat = self.theoretical_arrival.map_or(now, |t| t.max(now));
        let conforming_at = tat.saturating_sub(self.tolerance).unwrap_or(now);
        let at = [Some(now), Some(conforming_at), self.hold_until]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
        self.theoretical_arrival = Some(
            tat.max(at)
                .saturating_add(self.interval)
                .unwrap_or(Timestamp::MAX),
        );
        at.duration_since(now)
    }

    /// Reads the server's count: when at most a fiftieth of its allowance is left (at least
    /// when none is), holds further calls until its window resets.
    pub fn observe(&mut self, info: RateLimitInfo, now: Timestamp) {
        let left = info.allowed.saturating_sub(info.count);
        if info.allowed > 0 && left <= info.allowed / 50 {
            self.hold_for(SignedDuration::from_secs(i64::from(info.reset_secs)), now);
        }
    }

    /// Holds further calls for the server's `Retry-After`.
    pub fn hold_for(&mut self, wait: SignedDuration, now: Timestamp) {
        let until = now.saturating_add(wait).unwrap_or(Timestamp::MAX);
        self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
    }
}

/// A [`RateLimiter`] shared by every client using one OAuth client; clones share it.
#[derive(Clone, Debug)]
pub struct SharedLimiter(Arc<Mutex<RateLimiter>>);

impl SharedLimiter {
    /// Shares `limiter`.
    pub fn new(limiter: RateLimiter) -> Self {
        Self(Arc::new(Mutex::new(limiter)))
    }

    /// Waits on `clock` until the next call may go.
    pub async fn acquire(&self, clock: &dyn Clock) {
        let wait = self.with(|l| l.reserve(clock.now()));
        if wait.is_positive() {
            clock.sleep(wait).await;
        }
    }

    /// Runs `f` on the limiter.
    pub fn with<T>(&self, f: impl FnOnce(&mut RateLimiter) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_772_442_000_000 + ms).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_burst_goes_at_once_then_calls_are_spaced() {
        let mut limiter = RateLimiter::with_burst(60, 3);
        let waits: Vec<i64> = (0..5)
            .map(|_| limiter.reserve(at(0)).as_millis() as i64)
            .collect();
        assert_eq!(waits, [0, 0, 0, 1000, 2000]);
    }

    #[test]
    fn idle_time_refills_the_burst() {
        let mut limiter = RateLimiter::with_burst(60, 2);
        assert!(limiter.reserve(at(0)).is_zero());
        assert!(limiter.reserve(at(0)).is_zero());
        assert!(limiter.reserve(at(10_000)).is_zero());
        assert!(limiter.reserve(at(10_000)).is_zero());
        assert_eq!(limiter.reserve(at(10_000)), SignedDuration::from_secs(1));
    }

    #[test]
    fn the_steady_rate_is_the_configured_one() {
        let mut limiter = RateLimiter::with_burst(300, 1);
        let mut now = at(0);
        for _ in 0..300 {
            now = now + limiter.reserve(now);
        }
        assert_eq!(
            now.duration_since(at(0)),
            SignedDuration::from_millis(59_800)
        );
    }

    #[test]
    fn the_server_nearing_its_limit_holds_calls_until_its_reset() {
        let mut limiter = RateLimiter::per_minute(300);
        let nearly = RateLimitInfo {
            count: 294,
            allowed: 300,
            reset_secs: 12,
        };
        limiter.observe(nearly, at(0));
        assert_eq!(limiter.reserve(at(2_000)), SignedDuration::from_secs(10));
    }

    #[test]
    fn the_server_far_from_its_limit_changes_nothing() {
        let mut limiter = RateLimiter::per_minute(300);
        let far = RateLimitInfo {
            count: 200,
            allowed: 300,
            reset_secs: 12,
        };
        limiter.observe(far, at(0));
        assert!(limiter.reserve(at(0)).is_zero());
    }

    #[test]
    fn retry_after_holds_calls() {
        let mut limiter = RateLimiter::per_minute(300);
        limiter.hold_for(SignedDuration::from_secs(7), at(0));
        assert_eq!(limiter.reserve(at(1_000)), SignedDuration::from_secs(6));
    }
}
