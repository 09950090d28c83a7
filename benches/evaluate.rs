//! One decision on the reference policy, against a hand-written `match` of the same policy
//! (the floor), and on a generated 50-rule policy.

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use publish_guard::evaluation::evaluator::evaluate;
use publish_guard::language::ast::PhaseKind;
use publish_guard::policy::facts_file::load_facts;
use std::hint::black_box;

#[path = "support/generated.rs"]
mod generated;

const DEFAULT_RULES: &str = include_str!("../rules/default.rules");

/// Facts under which only the last generated rule holds: a weekday-noon draft, published
/// two hours before.
const GENERATED_FACTS: &str = r#"
now = "2026-03-25T12:00:00Z"
trigger.source = "servicenow"
schedule.state = "draft"
schedule.version = 7
last_publish.at = "2026-03-25T10:00:00Z"
"#;

/// A ServiceNow trigger for a draft at Wednesday noon, published an hour before: every
/// trigger rule is tried (the window included) before `ready` publishes.
const PUBLISH_FACTS: &str = r#"
now = "2026-03-25T12:00:00Z"
trigger.source = "servicenow"
schedule.state = "draft"
last_publish.at = "2026-03-25T11:00:00Z"
"#;

/// The reference policy's trigger phase written by hand: what the evaluator competes with.
mod hand {
    use super::*;

    #[derive(Clone, Copy, PartialEq)]
    pub enum State {
        Draft,
        Publishing,
        Published,
    }

    #[derive(Clone, Copy, PartialEq)]
    pub enum Source {
        ServiceNow,
    }

    pub struct Facts {
        pub duplicate: bool,
        pub state: State,
        pub source: Source,
        pub now: Timestamp,
        pub last_publish: Option<Timestamp>,
    }

    #[derive(Debug, PartialEq)]
    pub enum Action {
        Skip,
        Backoff,
        DeferUntilHours,
        Defer(Timestamp),
        Publish,
    }

    impl Action {
        pub fn keyword(&self) -> &'static str {
            match self {
                Action::Skip => "skip",
                Action::Backoff => "backoff",
                Action::DeferUntilHours | Action::Defer(_) => "defer",
                Action::Publish => "publish",
            }
        }
    }

    fn business_hours(zone: &TimeZone, t: Timestamp) -> bool {
        let local = zone.to_datetime(t);
        let minute = i32::from(local.hour()) * 60 + i32::from(local.minute());
        match local.weekday().to_monday_zero_offset() {
            0..=4 => (420..1200).contains(&minute),
            5 => (480..840).contains(&minute),
            _ => false,
        }
    }

    pub fn decide(f: &Facts, zone: &TimeZone) -> Action {
        let debounce = SignedDuration::from_mins(15);
        match f.state {
            _ if f.duplicate => Action::Skip,
            State::Published => Action::Skip,
            State::Publishing => Action::Backoff,
            _ if f.source == Source::ServiceNow && !business_hours(zone, f.now) => {
                Action::DeferUntilHours
            }
            _ if f
                .last_publish
                .is_some_and(|at| f.now.duration_since(at) < debounce) =>
            {
                Action::Defer(f.last_publish.unwrap_or(f.now) + debounce)
            }
            State::Draft => Action::Publish,
        }
    }
}

fn bench(c: &mut Criterion) {
    let policy = publish_guard::compile(DEFAULT_RULES).unwrap().policy;
    let facts = load_facts(PUBLISH_FACTS, &policy).unwrap();
    c.bench_function("evaluate default.rules (publish, 6 rules tried)", |b| {
        b.iter(|| evaluate(black_box(&policy), PhaseKind::Trigger, black_box(&facts)))
    });

    let zone = TimeZone::get("Europe/London").unwrap();
    let native = |state| hand::Facts {
        duplicate: false,
        state,
        source: hand::Source::ServiceNow,
        now: "2026-03-25T12:00:00Z".parse().unwrap(),
        last_publish: Some("2026-03-25T11:00:00Z".parse().unwrap()),
    };
    // The floor must be the same policy: it decides as the evaluator does in every state.
    for (state, name, keyword) in [
        (hand::State::Draft, "draft", "publish"),
        (hand::State::Publishing, "publishing", "backoff"),
        (hand::State::Published, "published", "skip"),
    ] {
        let text = PUBLISH_FACTS.replace("\"draft\"", &format!("{name:?}"));
        let facts = load_facts(&text, &policy).unwrap();
        assert_eq!(
            evaluate(&policy, PhaseKind::Trigger, &facts)
                .verdict
                .kind()
                .keyword(),
            keyword
        );
        assert_eq!(hand::decide(&native(state), &zone).keyword(), keyword);
    }
    let native = native(hand::State::Draft);
    c.bench_function("hand-written match (floor)", |b| {
        b.iter(|| hand::decide(black_box(&native), black_box(&zone)))
    });

    let source = generated::rules_file(50);
    let policy = publish_guard::compile(&source).unwrap().policy;
    let facts = load_facts(GENERATED_FACTS, &policy).unwrap();
    assert_eq!(evaluate(&policy, PhaseKind::Trigger, &facts).rule, "last");
    c.bench_function("evaluate generated 50-rule policy (all tried)", |b| {
        b.iter(|| evaluate(black_box(&policy), PhaseKind::Trigger, black_box(&facts)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
