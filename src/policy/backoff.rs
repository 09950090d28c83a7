//! Backoff profiles and the one place a retry delay is computed.

use crate::effects::random::RandomSource;
use crate::language::ast::Jitter;
use jiff::SignedDuration;

/// A named retry profile from a `backoff` block.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffProfile {
    /// The profile's name.
    pub name: String,
    /// The first delay.
    pub initial: SignedDuration,
    /// Growth per attempt (1 for `constant`).
    pub factor: f64,
    /// No single delay exceeds this.
    pub max: SignedDuration,
    /// How the delay is randomised.
    pub jitter: Jitter,
    /// Attempts allowed before the decision becomes a recorded failure.
    pub attempts: u32,
}

/// A computed wait, and whether the server's `Retry-After` set it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Delay {
    /// How long to wait.
    pub duration: SignedDuration,
    /// The server's `Retry-After`, when it decided the wait.
    pub retry_after: Option<SignedDuration>,
    /// Whether the profile's `max` cut the wait short.
    pub capped: bool,
}

impl BackoffProfile {
    /// The wait before retry number `retry` (0 for the first retry).
    ///
    /// `retry_after`, when the server gave one, takes precedence but is still capped by
    /// `max`. Otherwise the delay is `min(max, initial * factor^retry)` randomised by the
    /// profile's jitter: `full` draws from `[0, d)`, `equal` from `[d/2, d)`, `decorrelated`
    /// from `[initial, previous * 3)` (capped), `none` is `d`. `previous` is the last wait
    /// of this cycle, used only by `decorrelated`.
    pub fn delay(
        &self,
        retry: u32,
        previous: Option<SignedDuration>,
        retry_after: Option<SignedDuration>,
        random: &mut dyn RandomSource,
    ) -> Delay {
        let cap = self.max.as_secs_f64().max(0.0);
        if let Some(given) = retry_after {
            let wanted = given.as_secs_f64().max(0.0);
            return Delay {
                duration: seconds(wanted.min(cap)),
                retry_after: Some(given),
                capped: wanted > cap,
            };
        }
        let initial = self.initial.as_secs_f64().max(0.0);
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let grown = initial * self.factor.powi(exponent);
        // `f64::min` ignores NaN, so an absurd factor still yields the cap.
        let base = grown.min(cap);
        let capped = grown.is_nan() || grown > cap;
        let secs = match self.jitter {
            Jitter::None => base,
            Jitter::Full => random.unit() * base,
            Jitter::Equal => base / 2.0 + random.unit() * base / 2.0,
            Jitter::Decorrelated => {
                let last = previous.map_or(initial, |p| p.as_secs_f64().max(initial));
                let high = (last * 3.0).min(cap);
                (initial + random.unit() * (high - initial).max(0.0)).min(cap)
            }
        };
        Delay {
            duration: seconds(secs),
            retry_after: None,
            capped,
        }
    }
}

/// Seconds as a duration in whole milliseconds (finer is noise to a reader and to the
/// API); out-of-range values saturate instead of failing.
fn seconds(secs: f64) -> SignedDuration {
    let millis = (secs.max(0.0) * 1000.0).round();
    SignedDuration::try_from_secs_f64(millis / 1000.0).unwrap_or(SignedDuration::MAX)
}

#[cfg(all(test, feature = "runner"))]
mod tests {
    use super::*;
    use crate::effects::random::SeededRandom;

    fn profile(jitter: Jitter) -> BackoffProfile {
        BackoffProfile {
            name: "conflict".into(),
            initial: SignedDuration::from_secs(5),
            factor: 2.0,
            max: SignedDuration::from_secs(120),
            jitter,
            attempts: 6,
        }
    }

    /// A source that always answers the same number.
    struct Fixed(f64);
    impl RandomSource for Fixed {
        fn unit(&mut self) -> f64 {
            self.0
        }
    }

    fn secs(d: Delay) -> f64 {
        d.duration.as_secs_f64()
    }

    #[test]
    fn no_jitter_grows_exponentially_up_to_the_cap() {
        let p = profile(Jitter::None);
        let waits: Vec<f64> = (0..7)
            .map(|n| secs(p.delay(n, None, None, &mut Fixed(0.5))))
            .collect();
        assert_eq!(waits, [5.0, 10.0, 20.0, 40.0, 80.0, 120.0, 120.0]);
        assert!(!p.delay(4, None, None, &mut Fixed(0.0)).capped);
        assert!(p.delay(5, None, None, &mut Fixed(0.0)).capped);
    }

    #[test]
    fn full_jitter_scales_the_capped_delay_by_the_draw() {
        let p = profile(Jitter::Full);
        assert_eq!(secs(p.delay(2, None, None, &mut Fixed(0.25))), 5.0);
        assert_eq!(secs(p.delay(30, None, None, &mut Fixed(0.5))), 60.0);
        let mut random = SeededRandom::new(1);
        for n in 0..50 {
            let d = secs(p.delay(n, None, None, &mut random));
            let ceiling = (5.0 * 2f64.powi(n as i32)).min(120.0);
            assert!((0.0..ceiling).contains(&d), "retry {n}: {d}");
        }
    }

    #[test]
    fn equal_jitter_keeps_at_least_half() {
        let p = profile(Jitter::Equal);
        assert_eq!(secs(p.delay(1, None, None, &mut Fixed(0.0))), 5.0);
        assert_eq!(secs(p.delay(1, None, None, &mut Fixed(0.5))), 7.5);
    }

    #[test]
    fn decorrelated_jitter_draws_from_initial_to_three_times_the_last_wait() {
        let p = profile(Jitter::Decorrelated);
        assert_eq!(secs(p.delay(0, None, None, &mut Fixed(0.5))), 10.0);
        let last = Some(SignedDuration::from_secs(30));
        assert_eq!(secs(p.delay(3, last, None, &mut Fixed(0.0))), 5.0);
        assert_eq!(secs(p.delay(3, last, None, &mut Fixed(0.5))), 47.5);
        let huge = Some(SignedDuration::from_secs(1000));
        let near_top = secs(p.delay(3, huge, None, &mut Fixed(0.99)));
        assert!((118.0..=120.0).contains(&near_top), "{near_top}");
    }

    #[test]
    fn retry_after_takes_precedence_but_is_capped_and_recorded() {
        let p = profile(Jitter::Full);
        let seven = SignedDuration::from_secs(7);
        let d = p.delay(3, None, Some(seven), &mut Fixed(0.0));
        assert_eq!(
            d,
            Delay {
                duration: seven,
                retry_after: Some(seven),
                capped: false
            }
        );
        let hour = SignedDuration::from_secs(3600);
        let d = p.delay(0, None, Some(hour), &mut Fixed(0.0));
        assert_eq!(d.duration, SignedDuration::from_secs(120));
        assert_eq!(d.retry_after, Some(hour));
        assert!(d.capped);
    }

    #[test]
    fn absurd_inputs_saturate_instead_of_panicking() {
        let mut p = profile(Jitter::None);
        p.factor = f64::NAN;
        assert_eq!(secs(p.delay(u32::MAX, None, None, &mut Fixed(0.5))), 120.0);
        p.max = SignedDuration::MAX;
        p.factor = 10.0;
        assert!(p.delay(u32::MAX, None, None, &mut Fixed(0.5)).duration > SignedDuration::ZERO);
        let negative = Some(SignedDuration::from_secs(-4));
        assert_eq!(
            p.delay(0, None, negative, &mut Fixed(0.5)).duration,
            SignedDuration::ZERO
        );
    }
}
