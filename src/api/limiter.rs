//! The client-side rate limiter: one per OAuth client, shared by every call made with it.
//!
//! A pure GCRA (generic cell rate algorithm) computation: given `now`, it says how long to
//! wait, and the caller waits on its own clock. The simulator uses it the same way on its
//! virtual clock. The server's `inin-ratelimit-*` headers and `Retry-After` tighten it: near
//! the server's limit, or after a 429, it holds every call until the server's window resets;
//! a call that waited looks at the hold again before it goes (a 429 that arrived meanwhile
//! holds it too). An `inin-ratelimit-allowed` below the configured rate lowers the rate
//! until the server's window resets. A `Retry-After` above the cap (Genesys' SDKs give up
//! past 180 s, `retryMaxWait`) still holds every call, but the call that met it fails.

use crate::api::RateLimitInfo;
use crate::effects::clock::Clock;
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex, PoisonError};

/// Genesys' default: 300 requests a minute per OAuth client.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 300;
/// Calls that may go at once before the steady rate applies.
const DEFAULT_BURST: u32 = 10;
/// The longest `Retry-After` a call waits out; beyond it the call fails (a daily limit,
/// not a burst). Genesys' SDKs cap their retry wait at 3 minutes by default.
pub const DEFAULT_RETRY_AFTER_CAP: SignedDuration = SignedDuration::from_secs(180);

/// GCRA state for one OAuth client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimiter {
    requests_per_minute: u32,
    burst: u32,
    interval: SignedDuration,
    tolerance: SignedDuration,
    theoretical_arrival: Option<Timestamp>,
    hold_until: Option<Timestamp>,
    /// The server allows fewer calls than configured until then; the rate is its own.
    lowered_until: Option<Timestamp>,
    retry_after_cap: SignedDuration,
}

impl RateLimiter {
    /// `requests_per_minute` at a steady rate, with a burst of a few calls.
    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self::with_burst(requests_per_minute, DEFAULT_BURST)
    }

    /// `requests_per_minute` at a steady rate, `burst` calls allowed back to back.
    pub fn with_burst(requests_per_minute: u32, burst: u32) -> Self {
        let (interval, tolerance) = pacing(requests_per_minute, burst);
        Self {
            requests_per_minute,
            burst,
            interval,
            tolerance,
            theoretical_arrival: None,
            hold_until: None,
            lowered_until: None,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
        }
    }

    /// The same limiter with another `Retry-After` cap.
    pub fn with_retry_after_cap(mut self, cap: SignedDuration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// The longest `Retry-After` a call waits out.
    pub fn retry_after_cap(&self) -> SignedDuration {
        self.retry_after_cap
    }

    /// Books the next call: how long after `now` it may go (zero: at once).
    pub fn reserve(&mut self, now: Timestamp) -> SignedDuration {
        if self.lowered_until.is_some_and(|until| until <= now) {
            self.lowered_until = None;
            (self.interval, self.tolerance) = pacing(self.requests_per_minute, self.burst);
        }
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
    /// When the server allows fewer than the configured rate, paces calls at its rate
    /// until its window resets.
    pub fn observe(&mut self, info: RateLimitInfo, now: Timestamp) {
        let reset = SignedDuration::from_secs(i64::from(info.reset_secs));
        let left = info.allowed.saturating_sub(info.count);
        if info.allowed > 0 && left <= info.allowed / 50 {
            self.hold_for(reset, now);
        }
        if info.allowed > 0 && info.allowed < self.requests_per_minute {
            (self.interval, self.tolerance) = pacing(info.allowed, self.burst.min(info.allowed));
            let until = now.saturating_add(reset).unwrap_or(Timestamp::MAX);
            self.lowered_until = Some(self.lowered_until.map_or(until, |u| u.max(until)));
        }
    }

    /// Holds further calls for the server's `Retry-After`; whether it is beyond the cap
    /// (the call that met it then fails rather than wait it out).
    pub fn hold_for(&mut self, wait: SignedDuration, now: Timestamp) -> bool {
        let until = now.saturating_add(wait).unwrap_or(Timestamp::MAX);
        self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
        wait > self.retry_after_cap
    }

    /// How much longer a call that has waited its turn must wait for a hold that came
    /// meanwhile (zero: it may go).
    pub fn held(&self, now: Timestamp) -> SignedDuration {
        self.hold_until
            .filter(|h| *h > now)
            .map_or(SignedDuration::ZERO, |h| h.duration_since(now))
    }
}

/// The spacing of calls at `requests_per_minute`, and the slack for `burst` back to back.
fn pacing(requests_per_minute: u32, burst: u32) -> (SignedDuration, SignedDuration) {
    let interval = SignedDuration::from_mins(1)
        / i32::try_from(requests_per_minute.max(1)).unwrap_or(i32::MAX);
    let tolerance = interval * i32::try_from(burst.max(1) - 1).unwrap_or(i32::MAX);
    (interval, tolerance)
}

/// A [`RateLimiter`] shared by every client using one OAuth client; clones share it.
#[derive(Clone, Debug)]
pub struct SharedLimiter(Arc<Mutex<RateLimiter>>);

impl SharedLimiter {
    /// Shares `limiter`.
    pub fn new(limiter: RateLimiter) -> Self {
        Self(Arc::new(Mutex::new(limiter)))
    }

    /// Waits on `clock` until the next call may go, looking at the hold again after each
    /// wait; how long it waited.
    pub async fn acquire(&self, clock: &dyn Clock) -> SignedDuration {
        let start = clock.now();
        let mut wait = self.with(|l| l.reserve(start));
        while wait.is_positive() {
            clock.sleep(wait).await;
            wait = self.with(|l| l.held(clock.now()));
        }
        clock.now().duration_since(start)
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
        assert!(!limiter.hold_for(SignedDuration::from_secs(7), at(0)));
        assert_eq!(limiter.reserve(at(1_000)), SignedDuration::from_secs(6));
    }

    #[test]
    fn a_call_that_reserved_before_a_429_sees_its_hold() {
        let mut limiter = RateLimiter::with_burst(60, 1);
        assert!(limiter.reserve(at(0)).is_zero());
        // The second call's turn is at 1 s; a 429 at 0.5 s holds calls for 10 s.
        assert_eq!(limiter.reserve(at(0)), SignedDuration::from_secs(1));
        limiter.hold_for(SignedDuration::from_secs(10), at(500));
        assert_eq!(limiter.held(at(1_000)), SignedDuration::from_millis(9_500));
        assert!(limiter.held(at(10_500)).is_zero());
    }

    #[test]
    fn a_lower_server_allowance_lowers_the_rate_until_its_reset() {
        let mut limiter = RateLimiter::with_burst(300, 1);
        let lower = RateLimitInfo {
            count: 1,
            allowed: 30,
            reset_secs: 60,
        };
        limiter.observe(lower, at(0));
        assert!(limiter.reserve(at(0)).is_zero());
        assert_eq!(limiter.reserve(at(0)), SignedDuration::from_secs(2));
        // After the reset, the configured rate again.
        assert!(limiter.reserve(at(70_000)).is_zero());
        assert_eq!(
            limiter.reserve(at(70_000)),
            SignedDuration::from_millis(200)
        );
    }

    #[test]
    fn a_retry_after_beyond_the_cap_still_holds_every_call() {
        let mut limiter = RateLimiter::per_minute(300);
        let four_hours = SignedDuration::from_hours(4);
        assert!(limiter.hold_for(four_hours, at(0)));
        assert_eq!(limiter.reserve(at(0)), four_hours);
        let capped = RateLimiter::per_minute(300).with_retry_after_cap(four_hours);
        assert_eq!(capped.retry_after_cap(), four_hours);
    }
}
