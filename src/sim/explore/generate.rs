//! Random worlds for `explore`: schedules, triggers from every declared source (bursts and
//! redeliveries among them), planners editing and publishing at any instant, wide ranges of
//! latency and processing time, server errors, outages and a server allowing fewer calls
//! than the runner is configured for. A seed gives one world, always the same.

use crate::sim::expect::Expectations;
use crate::sim::scenario::{
    ApiBehaviour, Outage, PersonAction, PersonKind, RunnerOptions, Scenario, ScheduleSpec,
    TriggerSpec,
};
use jiff::civil::date;
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
    let schedules: Vec<ScheduleSpec> =
        (0..rng.random_range(1..=20usize).min(rng.random_range(1..=8)))
            .map(|i| ScheduleSpec {
                id: format!("s{:02}", i + 1),
                // A unit each: publishing one schedule un-publishes any other of its week.
                business_unit: format!("bu-{}", i + 1),
                week: date(2026, 3, 2),
                published: rng.random_bool(0.3),
                version: rng.random_range(1..20),
                weeks: 1,
                created: None,
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
        // Worlds with notifications are not generated yet: explore checks polling.
        notifications: None,
    };
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
        runner: RunnerOptions::default(),
        people,
        triggers,
        generators: Vec::new(),
        expect: Expectations::default(),
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
