//! Checking the declarations: time zones, windows and backoff profiles.

use super::{Checker, PolicyZone};
use crate::language::ast::{self, BackoffSetting, DaySpec, DurationLit, Jitter, Weekday};
use crate::language::diagnostic::quoted;
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Spanned;
use crate::policy::backoff::BackoffProfile;
use crate::policy::window::{WeeklyRange, Window};
use jiff::SignedDuration;
use jiff::tz::TimeZone;

/// Attempts a profile allows when it does not say.
const DEFAULT_ATTEMPTS: u32 = 5;
/// More attempts than this is a mistake, not a policy.
const MAX_ATTEMPTS: i64 = 100;
/// Growth per attempt when `factor` is not given.
const DEFAULT_FACTOR: f64 = 2.0;
/// Growth beyond this reaches the cap at once; almost certainly a typo.
const MAX_FACTOR: f64 = 10.0;
/// The cap when `max` is not given (or the initial delay, if longer).
const DEFAULT_CAP: SignedDuration = SignedDuration::from_hours(1);
/// `24:00` in minutes.
const END_OF_DAY: u16 = 1440;

impl Checker<'_> {
    /// Look a time-zone name up in the bundled database, reporting E107 when unknown.
    pub(super) fn zone(&mut self, name: &Spanned<String>) -> Option<TimeZone> {
        match TimeZone::get(&name.node) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let known: Vec<String> = jiff::tz::db()
                    .available()
                    .map(|n| n.as_str().to_string())
                    .collect();
                let help = super::timezone::help(&name.node, &known);
                self.report(
                    Diagnostic::new(
                        Code::InvalidTimezone,
                        name.span,
                        format!("`{}` is not an IANA time-zone name", quoted(&name.node)),
                    )
                    .with_help(help),
                );
                None
            }
        }
    }

    /// Compile a window: its zone and one weekly range per day of each line.
    pub(super) fn window(&mut self, window: &ast::Window, policy_zone: &PolicyZone) -> Window {
        let timezone = match (&window.timezone, policy_zone) {
            (Some(own), _) => self.zone(own).unwrap_or(TimeZone::UTC),
            (None, PolicyZone::Valid(tz, _)) => tz.clone(),
            (None, PolicyZone::Invalid) => TimeZone::UTC,
            (None, PolicyZone::Utc(tz, _)) => {
                self.report(
                    Diagnostic::new(
                        Code::MissingDeclaration,
                        window.name.span,
                        format!(
                            "window `{}` has no time zone to read its times in",
                            window.name.node
                        ),
                    )
                    .with_help(format!(
                        "declare the policy's zone near the top (`timezone \"Europe/London\"`) or the window's own (`window {} timezone \"Europe/London\" {{`)",
                        window.name.node
                    )),
                );
                tz.clone()
            }
        };
        if window.lines.is_empty() {
            self.report(
                Diagnostic::new(
                    Code::InvalidWindow,
                    window.name.span,
                    format!(
                        "window `{}` has no lines, so it is never open",
                        window.name.node
                    ),
                )
                .with_help("add a line such as `mon..fri 09:00..17:00`"),
            );
        }
        let mut ranges = Vec::new();
        for line in &window.lines {
            if !self.window_times_valid(&line.times) {
                continue;
            }
            for day in line.days.iter().flat_map(|d| days(d.node)) {
                ranges.push(WeeklyRange {
                    day,
                    start: line.times.start,
                    end: line.times.end,
                });
            }
        }
        Window {
            name: window.name.node.clone(),
            timezone,
            ranges,
        }
    }

    /// E115 for a time range that is empty or opens at `24:00`.
    fn window_times_valid(&mut self, times: &Spanned<ast::TimeRange>) -> bool {
        let text = self.text(times.span);
        if times.start.0 >= END_OF_DAY {
            self.report(
                Diagnostic::new(
                    Code::InvalidWindow,
                    times.span,
                    format!("the range `{text}` opens at 24:00, which is the end of the day"),
                )
                .with_help("open it at `00:00` on the next day instead"),
            );
            return false;
        }
        if times.start == times.end {
            self.report(
                Diagnostic::new(
                    Code::InvalidWindow,
                    times.span,
                    format!("the range `{text}` closes when it opens, so it is empty"),
                )
                .with_help("for the whole day write `00:00..24:00`; an end before the start crosses midnight"),
            );
            return false;
        }
        true
    }

    /// Compile a backoff profile, reporting lines that cannot work.
    pub(super) fn backoff(&mut self, backoff: &ast::Backoff) -> BackoffProfile {
        let name = &backoff.name.node;
        let mut delay: Option<&Spanned<BackoffSetting>> = None;
        let mut jitter: Option<&Spanned<BackoffSetting>> = None;
        let mut attempts: Option<&Spanned<BackoffSetting>> = None;
        for setting in &backoff.settings {
            let (slot, what) = match setting.node {
                BackoffSetting::Exponential { .. } | BackoffSetting::Constant(_) => {
                    (&mut delay, "a delay (`exponential` or `constant`)")
                }
                BackoffSetting::Jitter(_) => (&mut jitter, "`jitter`"),
                BackoffSetting::Attempts(_) => (&mut attempts, "`attempts`"),
            };
            match slot {
                Some(first) => {
                    let first = first.span;
                    self.report(
                        Diagnostic::new(
                            Code::InvalidBackoff,
                            setting.span,
                            format!("backoff `{name}` sets {what} twice"),
                        )
                        .with_help("keep one of the two lines")
                        .with_note(first, "first set here"),
                    );
                }
                None => *slot = Some(setting),
            }
        }
        let (initial, factor, max) = match delay.map(|d| &d.node) {
            Some(BackoffSetting::Exponential {
                initial,
                factor,
                max,
            }) => {
                let initial_delay = self.positive_delay(name, initial);
                let factor = factor
                    .as_ref()
                    .map_or(DEFAULT_FACTOR, |f| self.factor(name, f));
                let max = match max {
                    Some(max) => {
                        let cap = self.positive_delay(name, max);
                        if cap < initial_delay {
                            self.report(
                                Diagnostic::new(
                                    Code::CapBelowInitial,
                                    max.span,
                                    format!(
                                        "backoff `{name}` caps every delay at {}, below its first delay of {}, so every delay is {}",
                                        self.text(max.span),
                                        self.text(initial.span),
                                        self.text(max.span)
                                    ),
                                )
                                .with_help("raise `max` above the first delay, or use `constant` for a fixed delay"),
                            );
                        }
                        cap
                    }
                    None => initial_delay.max(DEFAULT_CAP),
                };
                (initial_delay, factor, max)
            }
            Some(BackoffSetting::Constant(d)) => {
                let d = self.positive_delay(name, d);
                (d, 1.0, d)
            }
            _ => {
                self.report(
                    Diagnostic::new(
                        Code::InvalidBackoff,
                        backoff.name.span,
                        format!("backoff `{name}` says nothing about how long to wait"),
                    )
                    .with_help(
                        "add a delay line, e.g. `exponential 5s factor 2 max 2m` or `constant 30s`",
                    ),
                );
                (SignedDuration::ZERO, 1.0, SignedDuration::ZERO)
            }
        };
        let jitter = match jitter.map(|j| &j.node) {
            Some(BackoffSetting::Jitter(j)) => j.node,
            _ => Jitter::Full,
        };
        let attempts = match attempts.map(|a| &a.node) {
            Some(BackoffSetting::Attempts(n)) => self.attempts(name, n),
            _ => DEFAULT_ATTEMPTS,
        };
        BackoffProfile {
            name: name.clone(),
            initial,
            factor,
            max,
            jitter,
            attempts,
        }
    }

    /// A delay that must be longer than zero.
    fn positive_delay(&mut self, name: &str, lit: &Spanned<DurationLit>) -> SignedDuration {
        let delay = self.duration(lit).unwrap_or(SignedDuration::ZERO);
        if delay <= SignedDuration::ZERO {
            self.report(
                Diagnostic::new(
                    Code::InvalidBackoff,
                    lit.span,
                    format!(
                        "backoff `{name}` waits `{}`, which is no wait at all",
                        self.text(lit.span)
                    ),
                )
                .with_help("give a delay longer than zero, e.g. `5s`"),
            );
        }
        delay
    }

    /// A growth factor in `1..=10`.
    fn factor(&mut self, name: &str, factor: &Spanned<f64>) -> f64 {
        if !(1.0..=MAX_FACTOR).contains(&factor.node) {
            let why = if factor.node < 1.0 {
                "below 1 the delays shrink"
            } else {
                "above 10 the delays reach the cap almost at once"
            };
            self.report(
                Diagnostic::new(
                    Code::InvalidBackoff,
                    factor.span,
                    format!(
                        "backoff `{name}` grows by a factor of {}: {why}",
                        self.text(factor.span)
                    ),
                )
                .with_help("use a factor from 1 to 10; 2 doubles each delay, 1 keeps it constant"),
            );
        }
        factor.node
    }

    /// An attempt limit in `1..=100`.
    fn attempts(&mut self, name: &str, n: &Spanned<i64>) -> u32 {
        match u32::try_from(n.node) {
            Ok(count) if (1..=MAX_ATTEMPTS).contains(&n.node) => count,
            _ => {
                let why = if n.node < 1 {
                    "it would never try at all"
                } else {
                    "that many retries hammer the API for hours"
                };
                self.report(
                    Diagnostic::new(
                        Code::InvalidBackoff,
                        n.span,
                        format!("backoff `{name}` allows {} attempts: {why}", n.node),
                    )
                    .with_help("allow from 1 to 100 attempts; when they run out the decision becomes a recorded failure"),
                );
                DEFAULT_ATTEMPTS
            }
        }
    }

    /// A duration literal's value; P003 when it does not fit.
    pub(super) fn duration(&mut self, lit: &Spanned<DurationLit>) -> Option<SignedDuration> {
        match lit.amount.checked_mul(lit.unit.millis()) {
            Some(ms) => Some(SignedDuration::from_millis(ms)),
            None => {
                self.report(
                    Diagnostic::new(
                        Code::BadLiteral,
                        lit.span,
                        format!("the duration `{}` is too long", self.text(lit.span)),
                    )
                    .with_help("use a duration under a few thousand years"),
                );
                None
            }
        }
    }
}

/// The days a day spec covers, in order (ranges may wrap past Sunday).
fn days(spec: DaySpec) -> Vec<Weekday> {
    match spec {
        DaySpec::Day(day) => vec![day],
        DaySpec::Range(first, last) => {
            let count = (last.index() + 7 - first.index()) % 7 + 1;
            Weekday::ALL
                .iter()
                .cycle()
                .skip(first.index())
                .take(count)
                .copied()
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges_wrap_past_sunday() {
        use Weekday::*;
        assert_eq!(
            days(DaySpec::Range(Mon, Fri)),
            vec![Mon, Tue, Wed, Thu, Fri]
        );
        assert_eq!(days(DaySpec::Range(Fri, Mon)), vec![Fri, Sat, Sun, Mon]);
        assert_eq!(days(DaySpec::Day(Sat)), vec![Sat]);
    }
}
