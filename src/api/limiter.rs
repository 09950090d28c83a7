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
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
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
    retry_after_cap: SignedDuration,
    pace: Pace,
}

/// What a limiter learnt and booked: the part every process of one OAuth client must share
/// (see [`SharedLimiter::in_file`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Pace {
    /// When the next call would conform at the steady rate.
    theoretical_arrival: Option<Timestamp>,
    /// No call goes before then (a `Retry-After`, or the server's count at its limit).
    hold_until: Option<Timestamp>,
    /// The server allows fewer calls than configured until its window resets.
    lowered: Option<Lowered>,
}

/// A server allowance below the configured rate, until the server's window resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Lowered {
    allowed: u32,
    until: Timestamp,
}

impl RateLimiter {
    /// `requests_per_minute` at a steady rate, with a burst of a few calls.
    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self::with_burst(requests_per_minute, DEFAULT_BURST)
    }

    /// `requests_per_minute` at a steady rate, `burst` calls allowed back to back.
    pub fn with_burst(requests_per_minute: u32, burst: u32) -> Self {
        Self {
            requests_per_minute,
            burst,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
            pace: Pace::default(),
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

    /// The spacing of calls and the slack for a burst, at the server's allowance while it
    /// is the lower.
    fn pacing(&self) -> (SignedDuration, SignedDuration) {
        match self.pace.lowered {
            Some(Lowered { allowed, .. }) if allowed < self.requests_per_minute => {
                pacing(allowed, self.burst.min(allowed))
            }
            _ => pacing(self.requests_per_minute, self.burst),
        }
    }

    /// Books the next call: how long after `now` it may go (zero: at once).
    pub fn reserve(&mut self, now: Timestamp) -> SignedDuration {
        if self.pace.lowered.is_some_and(|l| l.until <= now) {
            self.pace.lowered = None;
        }
        let (interval, tolerance) = self.pacing();
        let tat = self.pace.theoretical_arrival.map_or(now, |t| t.max(now));
        let conforming_at = tat.saturating_sub(tolerance).unwrap_or(now);
        let at = [Some(now), Some(conforming_at), self.pace.hold_until]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
        self.pace.theoretical_arrival = Some(
            tat.max(at)
                .saturating_add(interval)
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
            let until = now.saturating_add(reset).unwrap_or(Timestamp::MAX);
            let until = self.pace.lowered.map_or(until, |l| l.until.max(until));
            self.pace.lowered = Some(Lowered {
                allowed: info.allowed,
                until,
            });
        }
    }

    /// Holds further calls for the server's `Retry-After`; whether it is beyond the cap
    /// (the call that met it then fails rather than wait it out).
    pub fn hold_for(&mut self, wait: SignedDuration, now: Timestamp) -> bool {
        let until = now.saturating_add(wait).unwrap_or(Timestamp::MAX);
        self.pace.hold_until = Some(self.pace.hold_until.map_or(until, |h| h.max(until)));
        wait > self.retry_after_cap
    }

    /// How much longer a call that has waited its turn must wait for a hold that came
    /// meanwhile (zero: it may go).
    pub fn held(&self, now: Timestamp) -> SignedDuration {
        self.pace
            .hold_until
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
pub struct SharedLimiter(Arc<Mutex<Inner>>);

#[derive(Debug)]
struct Inner {
    limiter: RateLimiter,
    /// Where other processes of the same OAuth client keep the pace too, when shared.
    file: Option<PaceFile>,
    /// Whether a call fails rather than wait out a hold beyond the cap.
    impatient: bool,
}

impl SharedLimiter {
    /// Shares `limiter` within this process.
    pub fn new(limiter: RateLimiter) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            limiter,
            file: None,
            impatient: false,
        })))
    }

    /// Shares `limiter`'s pace with every process that opens the same `path`: several
    /// `publish-guard run` at once with one OAuth client book their calls against one budget
    /// and all hold on a 429 one of them met. The file is locked for each booking only.
    pub fn in_file(limiter: RateLimiter, path: &Path) -> Result<Self, LimiterFileError> {
        let file = PaceFile::open(path)?;
        Ok(Self(Arc::new(Mutex::new(Inner {
            limiter,
            file: Some(file),
            impatient: false,
        }))))
    }

    /// The same limiter, whose calls fail rather than wait out a hold beyond the cap: for
    /// a command someone is watching, which would otherwise sit silent for hours. (The
    /// relay waits: its triggers are kept, and go when the server allows.)
    pub fn impatient(self) -> Self {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .impatient = true;
        self
    }

    /// Waits on `clock` until the next call may go, looking at the hold again after each
    /// wait; how long it waited. Impatient, a hold beyond the cap is the error instead:
    /// how long it still lasts.
    pub async fn acquire(&self, clock: &dyn Clock) -> Result<SignedDuration, SignedDuration> {
        let start = clock.now();
        self.beyond_cap(start)?;
        let mut wait = self.with(|l| l.reserve(start));
        while wait.is_positive() {
            clock.sleep(wait).await;
            let now = clock.now();
            self.beyond_cap(now)?;
            wait = self.with(|l| l.held(now));
        }
        Ok(clock.now().duration_since(start))
    }

    /// The hold left at `now`, when this limiter is impatient and it is beyond the cap.
    fn beyond_cap(&self, now: Timestamp) -> Result<(), SignedDuration> {
        // A patient limiter (the relay's) pays nothing for this on each call.
        if !self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .impatient
        {
            return Ok(());
        }
        self.held_beyond_cap(now).map_or(Ok(()), Err)
    }

    /// The hold left at `now` in whole seconds (a `Retry-After` is in seconds), when it
    /// is beyond the cap.
    pub fn held_beyond_cap(&self, now: Timestamp) -> Option<SignedDuration> {
        let (held, cap) = self.with(|l| (l.held(now), l.retry_after_cap()));
        (held > cap).then(|| SignedDuration::from_secs(held.as_secs()))
    }

    /// Runs `f` on the limiter (on the pace the other processes left, when shared).
    pub fn with<T>(&self, f: impl FnOnce(&mut RateLimiter) -> T) -> T {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Inner { limiter, file, .. } = &mut *inner;
        match file {
            Some(file) => file.with(limiter, f),
            None => f(limiter),
        }
    }
}

/// A pace file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("the rate limiter's shared state {path}: {source}")]
pub struct LimiterFileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// The pace of one OAuth client in a file, locked while a booking reads and rewrites it.
#[derive(Debug)]
struct PaceFile {
    path: PathBuf,
    file: File,
    /// Whether a failed read or write was already reported (once is enough).
    warned: bool,
}

impl PaceFile {
    fn open(path: &Path) -> Result<Self, LimiterFileError> {
        let error = |source| LimiterFileError {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(error)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            warned: false,
        })
    }

    /// Runs `f` on `limiter` with the file's pace, and leaves the new pace in the file.
    /// The file is only knowledge about the server: unreadable, the process goes on with
    /// its own (a torn or foreign file reads as empty), and says so once.
    fn with<T>(&mut self, limiter: &mut RateLimiter, f: impl FnOnce(&mut RateLimiter) -> T) -> T {
        if let Err(e) = self.file.lock() {
            self.warn(&e);
            return f(limiter);
        }
        match self.read() {
            Ok(Some(pace)) => limiter.pace = pace,
            Ok(None) => {}
            Err(e) => self.warn(&e),
        }
        let answer = f(limiter);
        if let Err(e) = self.write(&limiter.pace) {
            self.warn(&e);
        }
        if let Err(e) = self.file.unlock() {
            self.warn(&e);
        }
        answer
    }

    fn read(&mut self) -> std::io::Result<Option<Pace>> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_string(&mut text)?;
        Ok(serde_json::from_str(&text).ok())
    }

    fn write(&mut self, pace: &Pace) -> std::io::Result<()> {
        let text = serde_json::to_string(pace).map_err(std::io::Error::other)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.set_len(0)?;
        self.file.write_all(text.as_bytes())
    }

    fn warn(&mut self, error: &std::io::Error) {
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(
                path = %self.path.display(),
                %error,
                "the rate limiter's shared state is unusable: pacing this process alone"
            );
        }
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

    fn pace_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("limit.json");
        (dir, path)
    }

    #[test]
    fn limiters_on_one_file_book_against_one_budget() {
        let (_dir, path) = pace_file();
        let first = SharedLimiter::in_file(RateLimiter::with_burst(60, 2), &path).unwrap();
        let second = SharedLimiter::in_file(RateLimiter::with_burst(60, 2), &path).unwrap();
        assert!(first.with(|l| l.reserve(at(0))).is_zero());
        assert!(second.with(|l| l.reserve(at(0))).is_zero());
        // The burst of two is spent between them: the third call waits its turn.
        assert_eq!(
            first.with(|l| l.reserve(at(0))),
            SignedDuration::from_secs(1)
        );
        assert_eq!(
            second.with(|l| l.reserve(at(0))),
            SignedDuration::from_secs(2)
        );
    }

    #[test]
    fn a_429_one_process_met_holds_the_others() {
        let (_dir, path) = pace_file();
        let met = SharedLimiter::in_file(RateLimiter::per_minute(300), &path).unwrap();
        let other = SharedLimiter::in_file(RateLimiter::per_minute(300), &path).unwrap();
        met.with(|l| l.hold_for(SignedDuration::from_secs(30), at(0)));
        assert_eq!(
            other.with(|l| l.held(at(10_000))),
            SignedDuration::from_secs(20)
        );
        let lower = RateLimitInfo {
            count: 3,
            allowed: 30,
            reset_secs: 60,
        };
        met.with(|l| l.observe(lower, at(31_000)));
        assert!(other.with(|l| l.reserve(at(31_000))).is_zero());
        // Paced at the server's 30 a minute, not the configured 300.
        let waits: Vec<i64> = (0..10)
            .map(|_| other.with(|l| l.reserve(at(31_000))).as_secs())
            .collect();
        assert_eq!(waits.last(), Some(&2));
    }

    #[test]
    fn a_torn_or_foreign_file_reads_as_no_knowledge() {
        let (_dir, path) = pace_file();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"theoretical_arrival\": \"2026-").unwrap();
        let shared = SharedLimiter::in_file(RateLimiter::with_burst(60, 1), &path).unwrap();
        assert!(shared.with(|l| l.reserve(at(0))).is_zero());
        assert_eq!(
            shared.with(|l| l.reserve(at(0))),
            SignedDuration::from_secs(1)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("theoretical_arrival"), "{text}");
    }

    #[test]
    fn a_file_that_cannot_be_made_is_an_error_naming_it() {
        let (dir, _) = pace_file();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let path = blocker.join("limit.json");
        let error = SharedLimiter::in_file(RateLimiter::per_minute(300), &path).unwrap_err();
        assert!(
            error.to_string().contains("not-a-dir/limit.json"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_impatient_call_fails_on_a_hold_beyond_the_cap_and_a_patient_one_waits() {
        let clock = crate::effects::clock::ManualClock::new(at(0));
        let patient = SharedLimiter::new(RateLimiter::per_minute(300));
        let impatient = SharedLimiter::new(RateLimiter::per_minute(300)).impatient();
        for limiter in [&patient, &impatient] {
            limiter.with(|l| l.hold_for(SignedDuration::from_hours(4), at(0)));
        }
        assert_eq!(
            impatient.acquire(&clock).await,
            Err(SignedDuration::from_hours(4))
        );
        let mut waiting = Box::pin(patient.acquire(&clock));
        assert!(futures_util::FutureExt::now_or_never(&mut waiting).is_none());
        clock.set(at(4 * 3_600_000));
        assert_eq!(waiting.await, Ok(SignedDuration::from_hours(4)));
        // A hold within the cap is waited out either way.
        impatient.with(|l| l.hold_for(SignedDuration::from_secs(5), at(4 * 3_600_000)));
        let mut short = Box::pin(impatient.acquire(&clock));
        assert!(futures_util::FutureExt::now_or_never(&mut short).is_none());
        clock.set(at(4 * 3_600_000 + 5_000));
        assert_eq!(short.await, Ok(SignedDuration::from_secs(5)));
    }
}
