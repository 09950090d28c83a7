//! The explorer on fixed seeds: every shipped policy keeps every promise; the naive policy
//! and a deliberately broken runner are caught, and the shrunk world is pinned.

use super::invariants::Invariant;
use super::scenario_file::to_toml;
use super::*;
use crate::runner::write::broken::DROP_FOLLOW_VERSION_CHECK;

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

#[test]
fn a_runner_that_drops_the_follows_version_check_is_caught_and_shrunk() {
    let default = policy(include_str!("../../../rules/default.rules"));
    DROP_FOLLOW_VERSION_CHECK.with(|c| c.set(true));
    let found = explore(
        &default,
        Path::new("rules/default.rules"),
        Seeds::Count(SEEDS),
        None,
    );
    let replay = found.finding.as_ref().map(|f| {
        let comment = format!(
            "seed {}, shrunk; breaks {}: {}",
            f.seed, f.shrunk_violation.invariant, f.shrunk_violation.detail
        );
        let (_, trace) = run_traced(&f.scenario, &default);
        (
            to_toml(&f.scenario, "rules/default.rules", &comment),
            check(&f.scenario, &trace),
        )
    });
    DROP_FOLLOW_VERSION_CHECK.with(|c| c.set(false));
    let Some((file, again)) = replay else {
        panic!(
            "the broken runner kept every promise over {} worlds",
            found.runs
        )
    };
    assert!(again.is_some(), "the shrunk world replays the violation");
    insta::assert_snapshot!("broken_follow_shrunk", file);
    // The shrunk file, read back, is the same world.
    let parsed = crate::sim::scenario::parse(&file, "x", Path::new("."));
    assert!(parsed.is_ok(), "{parsed:?}");
}
