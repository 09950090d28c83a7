//! Where the API clients and the test double read the time, and how they wait.
//!
//! Production uses [`SystemClock`]. Tests share one [`ManualClock`] between the test, the
//! double and the code under test, and move it by hand: nothing sleeps for real, and real
//! sockets keep working (tokio's paused time would auto-advance past a pending timeout while
//! a loopback answer is still in flight). [`TokioClock`] follows tokio's clock, for tests
//! that use `start_paused` without real I/O.

use jiff::{SignedDuration, Timestamp};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// A boxed future, so that [`Clock`] stays usable as `dyn Clock`.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current instant and a way to wait for a later one.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_>;

    /// Completes once `duration` has passed on this clock.
    fn sleep(&self, duration: SignedDuration) -> Sleep<'_> {
        let deadline = self
            .now()
            .saturating_add(duration)
            .unwrap_or(Timestamp::MAX);
        self.sleep_until(deadline)
    }
}

/// The operating system's clock, waiting with tokio timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            let left = deadline.duration_since(Timestamp::now());
            if let Ok(left) = std::time::Duration::try_from(left) {
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<watch::Sender<Timestamp>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the clock to `to` (never backwards), waking whoever waits until then.
    pub fn set(&self, to: Timestamp) {
        self.now.send_if_modified(|now| {
            let later = to > *now;
            if later {
                *now = to;
            }
            later
        });
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: SignedDuration) {
        let to = self.now().saturating_add(by).unwrap_or(Timestamp::MAX);
        self.set(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`, so `wait_for` cannot fail while we borrow it.
            let _ = now.wait_for(|now| *now >= deadline).await;
        })
    }
}

/// A clock that follows tokio's (pausable) time from a chosen starting instant.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `base` now and moves with `tokio::time`.
    pub fn new(base: Timestamp) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.base.saturating_add(elapsed).unwrap_or(Timestamp::MAX)
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        let left = deadline.duration_since(self.now());
        Box::pin(async move {
            if let Ok(left) = std::time::Duration::try_from(left) {
                tokio::time::sleep(left).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[tokio::test]
    async fn manual_sleep_wakes_only_when_moved_past_its_deadline() {
        let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
        let sleeper = clock.clone();
        let woke = tokio::spawn(async move {
            sleeper.sleep(SignedDuration::from_secs(30)).await;
            sleeper.now()
        });
        tokio::task::yield_now().await;
        clock.advance(SignedDuration::from_secs(10));
        tokio::task::yield_now().await;
        assert!(!woke.is_finished());
        clock.advance(SignedDuration::from_secs(25));
        assert_eq!(woke.await.ok(), Some(at("2026-03-02T09:00:35Z")));
    }

    #[test]
    fn manual_clock_never_goes_backwards() {
        let clock = ManualClock::new(at("2026-03-02T09:00:00Z"));
        clock.set(at("2026-03-02T08:00:00Z"));
        assert_eq!(clock.now(), at("2026-03-02T09:00:00Z"));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new(at("2026-03-02T09:00:00Z"));
        clock.sleep(SignedDuration::from_mins(5)).await;
        assert_eq!(clock.now(), at("2026-03-02T09:05:00Z"));
    }
}
