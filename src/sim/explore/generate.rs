//! Random worlds for `explore`: 1 to 20 schedules, triggers from every declared source (bursts,
//! redeliveries, timers within and outside business hours, random arrivals), planners editing
//! and publishing at any instant, wide ranges of latency and processing time, server errors,
//! outages, a server allowing fewer calls than the runner is configured for, coalescing off,
//! the notification channel on (delayed and lost events, drops), and process restarts. A seed
//! gives one world, always the same.

use crate::sim::expect::Expectations;
use crate::sim::scenario::{
    ApiBehaviour, Generator, GeneratorKind, Notifications, Outage, PersonAction, PersonKind,
    RunnerOptions, Scenario, ScheduleSpec, Target, TriggerSpec,
};
use jiff::civil::{date, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Days the worlds start on: ordinary weekdays, a Saturday, and both of Europe/London's
/// daylight-saving days of 2026.
const DAYS: [(i16, i8, i8); 6] = [
    (2026, 3, 2),
    (2026, 3, 4),
    (2026, 3, 7),
    (2026, 3, 29),
    (2026, 10, 25),
    (2026, 6, 15),
];

/// The world of `seed`, whose triggers come from `sources`, decided by the rules at `rules`.
pub fn world(seed: u64, sources: &[String], rules: &Path) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (y, m, d) = DAYS[rng.random_range(0..DAYS.len())];
    let day = date(y, m, d);
    let hour = rng.random_range(0..24);
    let start = jiff::tz::TimeZone::UTC
        .to_timestamp(day.at(hour, 0, 0, 0))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let span = SignedDuration::from_mins(rng.random_range(5..=120));
    let at = |rng: &mut ChaCha8Rng| later(start, millis(rng, span));
    // Mostly a few schedules, sometimes up to 20.
    let count = if rng.random_bool(0.2) {
        rng.random_range(1..=20usize)
    } else {
        rng.random_range(1..=8usize)
    };
    let schedules: Vec<ScheduleSpec> = (0..count)
        .map(|i| ScheduleSpec {
            id: format!("s{:02}", i + 1),
            // A unit each: publishing one schedule un-publishes any other of its week.
            business_unit: format!("bu-{}", i + 1),
            week: date(2026, 3, 2),
            published: rng.random_bool(0.3),
            version: rng.random_range(1..20),
            weeks: 1,
            created: None,
            first_update_ends: None,
        })
        .collect();
    let pick = |rng: &mut ChaCha8Rng| rng.random_range(0..schedules.len());
    let mut triggers = Vec::new();
    let source = |rng: &mut ChaCha8Rng| {
        sources
            .get(rng.random_range(0..sources.len().max(1)))
            .cloned()
            .unwrap_or_else(|| "manual".into())
    };
    for n in 0..rng.random_range(5..=40u32) {
        let schedule = pick(&mut rng);
        let when = at(&mut rng);
        let delivery = format!("d{n}");
        triggers.push(TriggerSpec {
            at: when,
            schedule,
            source: source(&mut rng),
            delivery: Some(delivery.clone()),
            event: Some("case.updated".into()),
        });
        // A burst: a few more within seconds; or a redelivery of the same id.
        if rng.random_bool(0.15) {
            for b in 0..rng.random_range(2..8) {
                triggers.push(TriggerSpec {
                    at: later(
                        when,
                        SignedDuration::from_millis(rng.random_range(0..5_000)),
                    ),
                    schedule,
                    source: source(&mut rng),
                    delivery: Some(format!("d{n}b{b}")),
                    event: Some("case.created".into()),
                });
            }
        }
        if rng.random_bool(0.1) {
            let again = later(
                when,
                SignedDuration::from_millis(rng.random_range(100..60_000)),
            );
            triggers.push(TriggerSpec {
                at: again,
                schedule,
                source: source(&mut rng),
                delivery: Some(delivery),
                event: Some("case.updated".into()),
            });
        }
    }
    triggers.sort_by_key(|t| t.at);
    let mut people: Vec<PersonAction> = (0..rng.random_range(0..=6))
        .map(|_| PersonAction {
            at: at(&mut rng),
            schedule: pick(&mut rng),
            kind: if rng.random_bool(0.7) {
                PersonKind::Edit
            } else {
                PersonKind::Publish
            },
            who: "planner".into(),
        })
        .collect();
    people.sort_by_key(|p| p.at);
    let generators = timers(&mut rng, sources, schedules.len(), start, span);
    let mut outages = Vec::new();
    if rng.random_bool(0.2) {
        let from = at(&mut rng);
        let length = SignedDuration::from_secs(rng.random_range(30..900));
        outages.push(Outage {
            from,
            until: later(from, length),
            status: [500, 502, 503][rng.random_range(0..3)],
        });
    }
    let api = ApiBehaviour {
        processing: SignedDuration::from_millis(rng.random_range(500..180_000)),
        latency: SignedDuration::from_millis(rng.random_range(10..2_000)),
        rate_limit: if rng.random_bool(0.2) {
            rng.random_range(20..120)
        } else {
            300
        },
        outages,
        error_rate: if rng.random_bool(0.2) {
            rng.random_range(0.0..0.1)
        } else {
            0.0
        },
        error_status: [500, 502, 503, 504][rng.random_range(0..4)],
        notifications: rng
            .random_bool(0.3)
            .then(|| notifications(&mut rng, start, span)),
    };
    let runner = RunnerOptions {
        coalesce: rng.random_bool(0.8),
        ..RunnerOptions::default()
    };
    let mut restarts: Vec<Timestamp> = (0..[0, 0, 0, 1, 2][rng.random_range(0..5)])
        .map(|_| at(&mut rng))
        .collect();
    restarts.sort();
    Scenario {
        name: format!("explore-{seed}"),
        description: None,
        rules: rules.to_path_buf(),
        start,
        end: None,
        seed,
        business_units: Vec::new(),
        schedules,
        api,
        runner,
        people,
        triggers,
        generators,
        restarts,
        expect: Expectations::default(),
    }
}

/// Sometimes a timer on one schedule (every 1 to 30 minutes, now and then only in business
/// hours, read in London), sometimes random arrivals on all of them.
fn timers(
    rng: &mut ChaCha8Rng,
    sources: &[String],
    schedules: usize,
    start: Timestamp,
    span: SignedDuration,
) -> Vec<Generator> {
    let timer = sources
        .iter()
        .find(|s| *s == "timer")
        .or(sources.first())
        .cloned()
        .unwrap_or_else(|| "timer".into());
    let until = later(start, span);
    let mut out = Vec::new();
    if rng.random_bool(0.3) {
        let between = rng
            .random_bool(0.5)
            .then(|| (time(7, 0, 0, 0), time(20, 0, 0, 0)));
        out.push(Generator {
            target: Target::One(rng.random_range(0..schedules)),
            source: timer,
            event: None,
            kind: GeneratorKind::Every {
                interval: SignedDuration::from_mins(rng.random_range(1..=30)),
                from: later(start, millis(rng, span)),
                until,
                between,
                timezone: TimeZone::get("Europe/London").unwrap_or(TimeZone::UTC),
            },
        });
    }
    if rng.random_bool(0.15) {
        let source = sources
            .get(rng.random_range(0..sources.len().max(1)))
            .cloned()
            .unwrap_or_else(|| "manual".into());
        // About a dozen arrivals over the span.
        let minutes = span.as_secs_f64() / 60.0;
        out.push(Generator {
            target: Target::All,
            source,
            event: None,
            kind: GeneratorKind::Random {
                per_minute: rng.random_range(2.0..20.0) / minutes.max(1.0),
                from: start,
                until,
            },
        });
    }
    out
}

/// The notification channel on: events 0 to 5 s late, up to 10% lost, states trusted 1 to 30
/// minutes, and up to two drops of the channel within the span.
fn notifications(rng: &mut ChaCha8Rng, start: Timestamp, span: SignedDuration) -> Notifications {
    let mut drops: Vec<(Timestamp, Timestamp)> = Vec::new();
    for _ in 0..rng.random_range(0..=2) {
        let from = later(start, millis(rng, span));
        let until = later(from, SignedDuration::from_secs(rng.random_range(1..600)));
        // Drops do not overlap: the channel is either down or up.
        if drops.iter().all(|&(f, u)| until < f || u < from) {
            drops.push((from, until));
        }
    }
    drops.sort();
    Notifications {
        delay: SignedDuration::from_millis(rng.random_range(0..5_000)),
        loss_per_mille: if rng.random_bool(0.5) {
            rng.random_range(1..100)
        } else {
            0
        },
        max_age: SignedDuration::from_mins(rng.random_range(1..=30)),
        drops,
    }
}

/// A random offset within `span`.
fn millis(rng: &mut ChaCha8Rng, span: SignedDuration) -> SignedDuration {
    let max = i64::try_from(span.as_millis()).unwrap_or(i64::MAX).max(1);
    SignedDuration::from_millis(rng.random_range(0..max))
}

/// `t + d`, saturating.
fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(t)
}
