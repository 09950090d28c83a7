//! `evaluate` allocates nothing: the counting allocator watches this thread while it
//! decides every kind of verdict the reference policy can give, windows and deferrals included.

use crate::peak;
use jiff::{SignedDuration, Timestamp};
use publish_guard::Facts;
use publish_guard::evaluation::evaluator::evaluate;
use publish_guard::language::ast::PhaseKind;

/// Allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    peak::measure(f).1.allocations
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A draft from ServiceNow at `now`, never published.
fn facts(now: &str) -> Facts {
    let mut f = Facts::new();
    f.set_by_name("now", at(now))
        .and_then(|f| f.set_by_name("trigger.duplicate", false))
        .and_then(|f| f.set_by_name("trigger.source", "servicenow"))
        .and_then(|f| f.set_by_name("schedule.state", "draft"))
        .unwrap();
    f
}

#[test]
fn evaluate_allocates_nothing_for_any_verdict() {
    let source = include_str!("../fixtures/explain/reference.rules");
    let policy = crate::common::compile_valid(source);

    let publish = facts("2026-03-25T12:00:00Z");
    let mut duplicate = publish.clone();
    duplicate.set_by_name("trigger.duplicate", true).unwrap();
    let mut in_progress = publish.clone();
    in_progress
        .set_by_name("schedule.state", "publishing")
        .unwrap();
    // Saturday night: defer until Monday's opening, across the spring clock change.
    let after_hours = facts("2026-03-28T22:00:00Z");
    let mut debounce = publish.clone();
    debounce
        .set_by_name("last_publish.at", at("2026-03-25T11:55:00Z"))
        .unwrap();
    let mut otherwise = publish.clone();
    otherwise.set_by_name("schedule.state", "unknown").unwrap();
    let mut throttled = publish.clone();
    throttled.set_by_name("response.status", 429).unwrap();
    throttled
        .set_by_name("response.retry_after", SignedDuration::from_secs(7))
        .unwrap();
    let mut unexpected = publish.clone();
    unexpected.set_by_name("response.status", 302).unwrap();

    let cases = [
        (PhaseKind::Trigger, &publish, "publish"),
        (PhaseKind::Trigger, &duplicate, "skip"),
        (PhaseKind::Trigger, &in_progress, "backoff"),
        (PhaseKind::Trigger, &after_hours, "defer"),
        (PhaseKind::Trigger, &debounce, "defer"),
        (PhaseKind::Trigger, &otherwise, "skip"),
        (PhaseKind::Response, &throttled, "backoff"),
        (PhaseKind::Response, &unexpected, "fail"),
    ];
    for (phase, facts, keyword) in cases {
        let mut decided = None;
        let count = allocations_in(|| decided = Some(evaluate(&policy, phase, facts).verdict));
        assert_eq!(decided.map(|v| v.kind().keyword()), Some(keyword));
        assert_eq!(count, 0, "{keyword} in {phase:?} allocated");
    }
}

#[test]
fn the_counter_sees_allocations() {
    let count = allocations_in(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(count, 1);
}
