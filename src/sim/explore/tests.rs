//! The explorer on fixed seeds: every shipped policy keeps every promise; the naive policy
//! and a deliberately broken runner are caught, and the shrunk world is pinned.

use super::invariants::Invariant;
use super::scenario_file::to_toml;
use super::*;
use crate::api::notify::cache::broken::IGNORE_GAPS;
use crate::runner::event::EventKind;
use crate::runner::write::broken::DROP_FOLLOW_VERSION_CHECK;
use crate::sim::durable::broken::FORGET_DEFERRALS;

/// Seeds each shipped policy must pass.
const SEEDS: u64 = 2_000;

fn policy(source: &str) -> Policy {
    match crate::compile(source) {
        Ok(checked) => checked.policy,
        Err(d) => panic!("{d:?}"),
    }
}

fn held(source: &str, rules: &str) {
    let found = explore(&policy(source), Path::new(rules), Seeds::Count(SEEDS), None);
    assert_eq!(found.runs, SEEDS);
    assert!(found.triggers > SEEDS * 10, "{} triggers", found.triggers);
    if let Some(f) = found.finding {
        panic!(
            "seed {}: {} {}\n{}",
            f.seed, f.violation.invariant, f.violation.detail, f.timeline
        );
    }
}

#[test]
fn the_default_policy_keeps_every_promise_on_the_fixed_seeds() {
    held(
        include_str!("../../../rules/default.rules"),
        "rules/default.rules",
    );
}

#[test]
fn the_follow_the_sun_example_keeps_every_promise_on_the_fixed_seeds() {
    held(
        include_str!("../../../rules/examples/follow-the-sun.rules"),
        "rules/examples/follow-the-sun.rules",
    );
}

#[test]
fn the_naive_policy_is_found_making_409s() {
    let naive = policy(include_str!("../../../rules/examples/naive.rules"));
    let found = explore(
        &naive,
        Path::new("rules/examples/naive.rules"),
        Seeds::Count(SEEDS),
        None,
    );
    let Some(f) = found.finding else {
        panic!("naive.rules kept every promise over {} worlds", found.runs)
    };
    assert!(
        matches!(
            f.shrunk_violation.invariant,
            Invariant::NoConflictOfOurMaking | Invariant::SingleWriteInFlight
        ),
        "{:?}",
        f.shrunk_violation
    );
    assert!(f.scenario.triggers.len() <= 2, "{:?}", f.scenario.triggers);
}

/// Explore the default policy with a deliberately broken feature switched on by `set`:
/// the finding, its shrunk world as a file, and whether that file replays it.
fn caught(set: fn(bool)) -> (Finding, String) {
    let default = policy(include_str!("../../../rules/default.rules"));
    set(true);
    let found = explore(
        &default,
        Path::new("rules/default.rules"),
        Seeds::Count(SEEDS),
        None,
    );
    let replay = found.finding.map(|f| {
        let comment = format!(
            "seed {}, shrunk; breaks {}: {}",
            f.seed, f.shrunk_violation.invariant, f.shrunk_violation.detail
        );
        let file = to_toml(&f.scenario, "rules/default.rules", &comment);
        let (_, trace) = run_traced(&f.scenario, &default);
        let again = check(&f.scenario, &default, &trace);
        (f, file, again)
    });
    set(false);
    let Some((finding, file, again)) = replay else {
        panic!(
            "the broken feature kept every promise over {} worlds",
            found.runs
        )
    };
    assert_eq!(
        again.map(|v| v.invariant),
        Some(finding.shrunk_violation.invariant),
        "the shrunk world replays the violation"
    );
    // The shrunk file, read back, is the same world.
    let parsed = crate::sim::scenario::parse(&file, "x", Path::new("."));
    assert!(parsed.is_ok(), "{parsed:?}");
    if let Ok(parsed) = parsed {
        let (_, trace) = run_traced(&parsed, &default);
        assert_eq!(
            check(&parsed, &default, &trace),
            check(
                &finding.scenario,
                &default,
                &run_traced(&finding.scenario, &default).1
            )
        );
    }
    (finding, file)
}

#[test]
fn a_runner_that_drops_the_follows_version_check_is_caught_and_shrunk() {
    let (_, file) = caught(|on| DROP_FOLLOW_VERSION_CHECK.with(|c| c.set(on)));
    insta::assert_snapshot!("broken_follow_shrunk", file);
}

#[test]
fn a_cache_that_trusts_states_across_a_gap_is_caught_and_shrunk() {
    let (f, file) = caught(|on| IGNORE_GAPS.with(|c| c.set(on)));
    assert_eq!(
        f.shrunk_violation.invariant,
        Invariant::NoStaleCachedDecision
    );
    insta::assert_snapshot!("broken_cache_shrunk", file);
}

#[test]
fn a_restart_that_forgets_the_deferred_triggers_is_caught_and_shrunk() {
    let (f, file) = caught(|on| FORGET_DEFERRALS.with(|c| c.set(on)));
    assert_eq!(f.shrunk_violation.invariant, Invariant::ChangePublished);
    insta::assert_snapshot!("forgotten_deferral_shrunk", file);
}

#[test]
fn the_fixed_seeds_cover_every_kind_of_world() {
    let default = policy(include_str!("../../../rules/default.rules"));
    let (mut many, mut timers, mut off, mut restarted, mut fed_again) = (0, 0, 0, 0, 0);
    let (mut cached, mut gaps, mut lossy, mut deferred, mut confirmed) = (0, 0, 0, 0, 0);
    for seed in 0..SEEDS {
        let world = generate::world(seed, &default.sources, Path::new("rules/default.rules"));
        let (_, trace) = run_traced(&world, &default);
        many += u32::from(world.schedules.len() > 8);
        timers += u32::from(!world.generators.is_empty());
        off += u32::from(!world.runner.coalesce);
        restarted += u32::from(!world.restarts.is_empty());
        fed_again += u32::from(trace.restarts.iter().any(|r| !r.fed_again.is_empty()));
        let n = world.api.notifications.as_ref();
        gaps += u32::from(n.is_some_and(|n| !n.drops.is_empty()));
        lossy += u32::from(n.is_some_and(|n| n.loss_per_mille > 0));
        let kinds = |p: fn(&EventKind) -> bool| trace.events.iter().any(|e| p(&e.event.kind));
        cached += u32::from(kinds(|k| matches!(k, EventKind::StateKnown { .. })));
        confirmed += u32::from(kinds(|k| {
            matches!(
                k,
                EventKind::StateRead {
                    purpose: crate::runner::event::ReadPurpose::Confirm,
                    ..
                }
            )
        }));
        deferred += u32::from(kinds(|k| {
            matches!(
                k,
                EventKind::Outcome {
                    outcome: crate::runner::event::Outcome::Deferred { .. },
                    ..
                }
            )
        }));
    }
    let counts = [
        ("more than 8 schedules", many),
        ("timers or random arrivals", timers),
        ("coalescing off", off),
        ("restarts", restarted),
        ("triggers fed again after a restart", fed_again),
        ("decisions from a cached state", cached),
        ("channel drops", gaps),
        ("lost events", lossy),
        ("confirm reads of decisions made without a read", confirmed),
        ("deferrals (business hours, debounce)", deferred),
    ];
    for (what, count) in counts {
        assert!(count >= 50, "only {count} of {SEEDS} worlds with {what}");
    }
}

/// A small world: one draft schedule, one trigger that publishes it.
fn one_publish() -> Scenario {
    let file = r#"
rules = "rules/default.rules"
start = "2026-03-02T10:00:00Z"
[[schedule]]
id = "s01"
bu = "bu-1"
week = "2026-03-02"
[[trigger]]
at = "2026-03-02T10:00:01Z"
schedule = "s01"
source = "manual"
"#;
    match crate::sim::scenario::parse(file, "one", Path::new(".")) {
        Ok(s) => s,
        Err(d) => panic!("{d:?}"),
    }
}

#[test]
fn a_decided_publish_that_never_shows_published_breaks_the_liveness_bound() {
    let default = policy(include_str!("../../../rules/default.rules"));
    let world = one_publish();
    let (_, mut trace) = run_traced(&world, &default);
    assert_eq!(check(&world, &default, &trace), None);
    assert_eq!(trace.published.len(), 1, "the publish showed published");
    // The same run, had the operation never finished and the run gone on past the bound.
    trace.published.clear();
    let bound = invariants::publish_bound(&world, &default);
    trace.end = trace.end.saturating_add(bound).expect("instant");
    let v = check(&world, &default, &trace).expect("a violation");
    assert_eq!(v.invariant, Invariant::PublishedInTime);
    insta::assert_snapshot!(v.detail, @"a publish decided here did not show published within 1h 3m 38s");
}

#[test]
fn a_restart_while_our_publish_is_processing_waits_for_it_and_never_writes_again() {
    let default = policy(include_str!("../../../rules/default.rules"));
    let mut world = one_publish();
    // The publish is accepted at about 10:00:01.4 and runs 30 s: the process restarts
    // in the middle of it, with a redelivery of the same trigger after.
    world.restarts = vec!["2026-03-02T10:00:10Z".parse().expect("instant")];
    world.triggers[0].delivery = Some("d1".into());
    let mut again = world.triggers[0].clone();
    again.at = "2026-03-02T10:00:20Z".parse().expect("instant");
    world.triggers.push(again);
    let (result, trace) = run_traced(&world, &default);
    assert_eq!(check(&world, &default, &trace), None);
    let writes = trace.calls.iter().filter(|c| c.publish.is_some()).count();
    assert_eq!(writes, 1, "{:?}", trace.calls);
    let restart = &trace.restarts[0];
    assert_eq!(
        restart.fed_again.len(),
        1,
        "the unfinished trigger is fed again"
    );
    let duplicates: Vec<bool> = trace
        .events
        .iter()
        .filter_map(|e| match e.event.kind {
            EventKind::TriggerReceived { duplicate, .. } => Some(duplicate),
            _ => None,
        })
        .collect();
    // The trigger, fed again (not a repeat), then its redelivery (a repeat).
    assert_eq!(duplicates, [false, false, true]);
    let report = run(&world, &default, RunOptions::default()).report;
    insta::assert_snapshot!(report.table());
    assert_eq!(result.report.summary.triggers, 3);
}

/// The world the explorer found at seed 1835 (shrunk) when a lost event let a cached skip
/// drop a change: s02's edit to version 19 at 08:30:48 is never heard, and the trigger at
/// 08:38:38 decides "already published" from the kept state at version 18.
const LOST_EDIT: &str = r#"
name = "explore-1835"
rules = "rules/default.rules"
start = "2026-03-04T08:00:00Z"
seed = 1835

[api]
processing = "1889ms"
latency = "13ms"
rate_limit = 26
[api.notifications]
delay = "2440ms"
loss = 0.073
max_age = "1260000ms"
[[api.notifications.drop]]
from = "2026-03-04T08:16:56.986Z"
until = "2026-03-04T08:26:18.986Z"

[runner]
coalesce = true
requests_per_minute = 300

[[schedule]]
id = "s01"
bu = "bu-1"
week = "2026-03-02"
published = false
version = 10

[[schedule]]
id = "s02"
bu = "bu-2"
week = "2026-03-02"
published = true
version = 18

[[schedule]]
id = "s03"
bu = "bu-3"
week = "2026-03-02"
published = true
version = 9

[[person]]
at = "2026-03-04T08:10:21.199Z"
schedule = "s01"
action = "publish"
who = "planner"

[[person]]
at = "2026-03-04T08:30:48.882Z"
schedule = "s02"
action = "edit"
who = "planner"

[[trigger]]
at = "2026-03-04T08:38:38.4Z"
schedule = "s02"
source = "timer"
delivery = "d12"
event = "case.updated"

[[random]]
schedule = "*"
source = "timer"
per_minute = 0.14127997010050297
from = "2026-03-04T08:00:00Z"
until = "2026-03-04T08:47:00Z"
"#;

#[test]
fn a_change_whose_event_was_lost_is_published_after_the_confirm_read_within_the_bound() {
    let default = policy(include_str!("../../../rules/default.rules"));
    let world = match crate::sim::scenario::parse(LOST_EDIT, "lost", Path::new(".")) {
        Ok(s) => s,
        Err(d) => panic!("{d:?}"),
    };
    let (_, trace) = run_traced(&world, &default);
    assert_eq!(check(&world, &default, &trace), None);
    let s02 = 1;
    // The skip decided from the kept state that missed the edit.
    let skipped = trace
        .events
        .iter()
        .find(|e| {
            e.schedule == s02
                && matches!(e.event.kind, EventKind::StateKnown { version: 18, .. })
                && e.event.at > "2026-03-04T08:30:48.882Z".parse().expect("instant")
        })
        .map(|e| e.event.at)
        .expect("a decision from the kept state at version 18 after the edit");
    let confirm = trace.events.iter().any(|e| {
        e.schedule == s02
            && matches!(
                e.event.kind,
                EventKind::StateRead {
                    purpose: crate::runner::event::ReadPurpose::Confirm,
                    version: Some(19),
                    ..
                }
            )
    });
    assert!(confirm, "a confirm read saw version 19");
    let bound = invariants::staleness_bound(&world) + invariants::publish_bound(&world, &default);
    let published = trace
        .published
        .iter()
        .find(|(at, s)| *s == s02 && *at > skipped)
        .map(|(at, _)| *at)
        .expect("the edit was published");
    assert!(
        published.duration_since(skipped) <= bound,
        "published {:#} after the skip, bound {bound:#}",
        published.duration_since(skipped)
    );
    assert_eq!(trace.end_states[s02 as usize], (true, 20));
    let mut report = run(&world, &default, RunOptions::default()).report;
    report.timeline.retain(|row| row.schedule == s02);
    insta::assert_snapshot!("lost_edit_confirmed", report.table());
}

#[test]
fn the_seeds_where_a_confirm_read_was_lost_or_misled_keep_every_promise() {
    let cases = [
        ("rules/examples/follow-the-sun.rules", 6718),
        ("rules/examples/follow-the-sun.rules", 12213),
        ("rules/default.rules", 10533),
        // A duplicate's skip from the kept state made the confirm cycle skip as a duplicate.
        ("rules/examples/follow-the-sun.rules", 125_799),
    ];
    for (rules, seed) in cases {
        let source = std::fs::read_to_string(rules).unwrap();
        let found = explore(&policy(&source), Path::new(rules), Seeds::One(seed), None);
        assert_eq!(found.runs, 1);
        if let Some(f) = found.finding {
            panic!(
                "{rules} seed {seed}: {}\n{}",
                f.violation.detail, f.timeline
            );
        }
    }
}

/// The world the explorer found at seed 6718 of follow-the-sun (shrunk) when a restart lost
/// a confirm read's deferral: d4 skips "already published" from the kept state at v17 after
/// the planner's edit to v18, whose late event brings the confirm read forward; the read
/// sees the draft and `too_soon` defers it, then the process restarts.
const RESTART_AFTER_CONFIRM: &str = r#"
name = "explore-6718"
rules = "rules/examples/follow-the-sun.rules"
start = "2026-03-02T02:00:00Z"
seed = 6718

[api]
processing = "1015ms"
latency = "13ms"
rate_limit = 300
[api.notifications]
delay = "3812ms"
loss = 0.0
max_age = "1080000ms"

[runner]
coalesce = true
requests_per_minute = 300

[[schedule]]
id = "s10"
bu = "bu-10"
week = "2026-03-02"
published = false
version = 16

[[person]]
at = "2026-03-02T02:03:21.342Z"
schedule = "s10"
action = "edit"
who = "planner"

[[trigger]]
at = "2026-03-02T02:00:51.821Z"
schedule = "s10"
source = "workforce_app"
delivery = "d35"
event = "case.updated"

[[trigger]]
at = "2026-03-02T02:03:23.002Z"
schedule = "s10"
source = "workforce_app"
delivery = "d4"
event = "case.updated"

[[restart]]
at = "2026-03-02T02:04:55.557Z"
"#;

#[test]
fn a_restart_keeps_the_deferral_a_confirm_cycle_decided_and_the_edit_is_published() {
    let sun = policy(include_str!("../../../rules/examples/follow-the-sun.rules"));
    let world = match crate::sim::scenario::parse(RESTART_AFTER_CONFIRM, "x", Path::new(".")) {
        Ok(s) => s,
        Err(d) => panic!("{d:?}"),
    };
    let (_, trace) = run_traced(&world, &sun);
    assert_eq!(check(&world, &sun, &trace), None);
    // d4's skip was decided from the kept state; the confirm cycle deferred it; the store
    // feeds it again when that deferral runs out.
    let fed: Vec<usize> = trace.restarts.iter().map(|r| r.fed_again.len()).collect();
    assert_eq!(fed, [1]);
    assert_eq!(trace.end_states[0], (true, 19));
    let report = run(&world, &sun, RunOptions::default()).report;
    insta::assert_snapshot!("restart_after_confirm", report.table());
}
