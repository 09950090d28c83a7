//! Unit tests of the sans-IO runner, on the DESIGN.md reference policy built by hand (so
//! they depend on the evaluator only, not on the parser).

use super::budget::BudgetConfig;
use super::*;
use crate::api::{OperationStatus, PublishAccepted};
use crate::effects::random::SeededRandom;
use crate::language::ast::{ActionKind, CmpOp, Jitter};
use crate::language::span::Span;
use crate::policy::backoff::BackoffProfile;
use crate::policy::facts::{Value, fact_id};
use crate::policy::{
    BackoffId, CompiledAction, CompiledRule, Cond, CondKind, PhaseRules, Term, TermAction,
};
use crate::runner::event::{CycleCause, EventKind, Outcome, ReadPurpose};
use crate::runner::facts::ScheduleState;
use jiff::civil::date;

fn cond(kind: CondKind) -> Cond {
    Cond {
        kind,
        span: Span::default(),
    }
}

fn rule(name: &str, condition: CondKind, action: CompiledAction) -> CompiledRule {
    CompiledRule {
        name: name.into(),
        span: Span::default(),
        condition: cond(condition),
        action,
    }
}

fn is(fact: &str, op: CmpOp, value: Value) -> CondKind {
    CondKind::Compare {
        left: Term::Fact(fact_id_dyn(fact)),
        op,
        right: Term::Const(value),
    }
}

fn fact_id_dyn(name: &str) -> crate::language::schema::FactId {
    crate::language::schema::FactId::lookup(name).unwrap_or(fact_id("now"))
}

const STATE_PUBLISHED: u8 = 2;
const STATE_PUBLISHING: u8 = 1;
const STATE_DRAFT: u8 = 0;

/// The reference policy of DESIGN.md, minus the business-hours window, with `debounce`.
fn reference_policy(attempts: u32) -> Policy {
    let conflict = BackoffId(0);
    let skip = |r: &str| CompiledAction::Skip(r.into());
    Policy {
        name: "servicenow-autopublish".into(),
        version: "test-version".into(),
        timezone: jiff::tz::TimeZone::UTC,
        timezone_name: "UTC".into(),
        sources: vec!["servicenow".into(), "manual".into()],
        windows: vec![],
        backoffs: vec![BackoffProfile {
            name: "conflict".into(),
            initial: SignedDuration::from_secs(5),
            factor: 2.0,
            max: SignedDuration::from_secs(120),
            jitter: Jitter::Full,
            attempts,
        }],
        trigger: PhaseRules {
            rules: vec![
                rule(
                    "duplicate",
                    CondKind::IsTrue(Term::Fact(fact_id("trigger.duplicate"))),
                    skip("duplicate delivery"),
                ),
                rule(
                    "published",
                    is("schedule.state", CmpOp::Eq, Value::Enum(STATE_PUBLISHED)),
                    skip("already published"),
                ),
                rule(
                    "in_progress",
                    is("schedule.state", CmpOp::Eq, Value::Enum(STATE_PUBLISHING)),
                    CompiledAction::Backoff(conflict),
                ),
                rule(
                    "debounce",
                    CondKind::Compare {
                        left: Term::Since(fact_id("last_publish.at")),
                        op: CmpOp::Lt,
                        right: Term::Const(Value::Duration(SignedDuration::from_mins(15))),
                    },
                    CompiledAction::DeferUntilInstant(TermAction {
                        fact: fact_id("last_publish.at"),
                        offset: SignedDuration::from_mins(15),
                    }),
                ),
                rule(
                    "ready",
                    is("schedule.state", CmpOp::Eq, Value::Enum(STATE_DRAFT)),
                    CompiledAction::Publish,
                ),
            ],
            otherwise: skip("no rule matched"),
            otherwise_span: Span::default(),
        },
        response: PhaseRules {
            rules: vec![
                rule(
                    "ok",
                    CondKind::InRange {
                        term: Term::Fact(fact_id("response.status")),
                        negated: false,
                        low: 200,
                        high: 299,
                    },
                    CompiledAction::Done,
                ),
                rule(
                    "conflict",
                    is("response.status", CmpOp::Eq, Value::Int(409)),
                    CompiledAction::Recheck,
                ),
                rule(
                    "throttled",
                    is("response.status", CmpOp::Eq, Value::Int(429)),
                    CompiledAction::BackoffRetryAfter(conflict),
                ),
                rule(
                    "server",
                    is("response.status", CmpOp::Ge, Value::Int(500)),
                    CompiledAction::Backoff(conflict),
                ),
            ],
            otherwise: CompiledAction::Fail("unexpected response".into()),
            otherwise_span: Span::default(),
        },
    }
}

fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn schedule() -> ScheduleRef {
    ScheduleRef {
        business_unit: "bu-1".into(),
        week: date(2026, 3, 2),
        schedule_id: "sched-1".into(),
    }
}

fn snapshot(published: bool, version: i64) -> CallResult<ScheduleSnapshot> {
    Ok(Answer {
        status: 200,
        retry_after: None,
        rate_limit: None,
        body: Some(ScheduleSnapshot {
            published,
            version,
            modified_at: None,
            modified_by: None,
            publishing: false,
            other_published: None,
        }),
        waited: SignedDuration::ZERO,
    })
}

fn accepted(status: OperationStatus) -> CallResult<PublishAccepted> {
    Ok(Answer {
        status: 200,
        retry_after: None,
        rate_limit: None,
        body: Some(PublishAccepted {
            status,
            operation_id: Some("op-1".into()),
        }),
        waited: SignedDuration::ZERO,
    })
}

fn refused(status: u16, retry_after: Option<SignedDuration>) -> CallResult<PublishAccepted> {
    Ok(Answer {
        status,
        retry_after,
        rate_limit: None,
        body: None,
        waited: SignedDuration::ZERO,
    })
}

/// A runner, a policy and a clock, with every command kept for inspection.
struct Harness {
    runner: Runner,
    policy: Policy,
    random: SeededRandom,
    now: Timestamp,
    commands: Vec<Command>,
    seen: usize,
}

impl Harness {
    fn new(policy: Policy, config: RunnerConfig) -> Self {
        Harness {
            runner: Runner::new(config),
            policy,
            random: SeededRandom::new(42),
            now: t0(),
            commands: Vec::new(),
            seen: 0,
        }
    }

    fn reference() -> Self {
        Harness::new(reference_policy(6), RunnerConfig::default())
    }

    fn trigger(&mut self, delivery: Option<&str>) -> u64 {
        let trigger = Trigger {
            delivery_id: delivery.map(str::to_owned),
            source: "servicenow".into(),
            event: Some("case.created".into()),
            received_at: self.now,
        };
        self.runner.trigger(
            self.now,
            &self.policy,
            &mut self.random,
            schedule(),
            trigger,
            &mut self.commands,
        )
    }

    fn feed(&mut self, input: Input) {
        self.runner.input(
            self.now,
            &self.policy,
            &mut self.random,
            &schedule(),
            input,
            &mut self.commands,
        );
    }

    /// Commands since the last call.
    fn fresh(&mut self) -> Vec<Command> {
        let fresh = self.commands[self.seen..].to_vec();
        self.seen = self.commands.len();
        fresh
    }

    /// The non-event commands since the last call.
    fn actions(&mut self) -> Vec<Command> {
        self.fresh()
            .into_iter()
            .filter(|c| !matches!(c, Command::Emit(_)))
            .collect()
    }

    fn events(&self) -> Vec<EventKind> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::Emit(e) => Some(e.kind.clone()),
                _ => None,
            })
            .collect()
    }

    fn outcomes(&self) -> Vec<Outcome> {
        self.events()
            .into_iter()
            .filter_map(|k| match k {
                EventKind::Outcome { outcome, .. } => Some(outcome),
                _ => None,
            })
            .collect()
    }

    /// Why each read was made, in order.
    fn read_purposes(&self) -> Vec<ReadPurpose> {
        self.events()
            .into_iter()
            .filter_map(|k| match k {
                EventKind::StateRead { purpose, .. } => Some(purpose),
                _ => None,
            })
            .collect()
    }

    fn publishes(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| matches!(c, Command::Publish { .. }))
            .count()
    }

    /// The timer of the single wait among `actions`, moving the clock to its instant.
    fn wait_in(&mut self, actions: &[Command]) -> Option<TimerId> {
        let waits: Vec<(TimerId, Timestamp)> = actions
            .iter()
            .filter_map(|c| match c {
                Command::WaitUntil { timer, until, .. } => Some((*timer, *until)),
                _ => None,
            })
            .collect();
        match waits[..] {
            [(timer, until)] => {
                self.now = until;
                Some(timer)
            }
            _ => None,
        }
    }

    /// One trigger on a draft at `version`: its publish is accepted, Processing.
    fn publish_processing(&mut self, version: i64) {
        self.trigger(None);
        self.feed(Input::StateRead(snapshot(false, version)));
        self.feed(Input::PublishAnswered(accepted(
            OperationStatus::Processing,
        )));
    }

    /// Fire the single wait among the fresh commands.
    fn fire_wait(&mut self) {
        let actions = self.actions();
        let timer = self.wait_in(&actions);
        assert!(timer.is_some(), "expected one wait, got {actions:?}");
        if let Some(timer) = timer {
            self.feed(Input::TimerFired(timer));
        }
    }
}

fn read() -> Command {
    Command::Read(schedule())
}

#[test]
fn draft_one_trigger_publishes_once_follows_and_ends_published_with_each_step_once() {
    let mut h = Harness::reference();
    h.trigger(Some("d-1"));
    assert_eq!(h.actions(), [read()]);
    h.feed(Input::StateRead(snapshot(false, 3)));
    let actions = h.actions();
    assert!(
        matches!(&actions[..], [Command::Publish { version: 3, idempotency_key, .. }]
            if *idempotency_key == machine::idempotency_key(&schedule(), 3)),
        "{actions:?}"
    );
    h.feed(Input::PublishAnswered(accepted(
        OperationStatus::Processing,
    )));
    h.fire_wait();
    assert_eq!(h.actions(), [read()]);
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.fire_wait();
    assert_eq!(h.actions(), [read()]);
    h.feed(Input::StateRead(snapshot(true, 4)));
    assert_eq!(h.actions(), []);
    assert_eq!(h.outcomes(), [Outcome::Published { version: 4 }]);
    let kinds: Vec<&str> = h
        .events()
        .iter()
        .map(|k| match k {
            EventKind::TriggerReceived { .. } => "received",
            EventKind::TriggerCoalesced { .. } => "coalesced",
            EventKind::CycleStarted { .. } => "started",
            EventKind::StateRead { .. } => "read",
            EventKind::StateKnown { .. } => "known",
            EventKind::Heard { .. } => "heard",
            EventKind::Decision { .. } => "decision",
            EventKind::PublishCall { .. } => "publish",
            EventKind::Wait { .. } => "wait",
            EventKind::ThrottleWait { .. } => "throttle",
            EventKind::Outcome { .. } => "outcome",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "received", "started", "read", "decision", "publish", "decision", "wait", "read",
            "wait", "read", "outcome"
        ]
    );
    assert!(h.runner.is_idle());
}

#[test]
fn already_published_makes_no_write() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(true, 9)));
    assert_eq!(h.publishes(), 0);
    let reason = "already published".to_owned();
    assert_eq!(h.outcomes(), [Outcome::Skipped { reason }]);
}

#[test]
fn triggers_during_a_cycle_cause_exactly_one_further_evaluation() {
    let mut h = Harness::reference();
    let first = h.trigger(None);
    let later: Vec<u64> = (0..5).map(|_| h.trigger(None)).collect();
    assert_eq!(h.actions(), [read()], "no read per coalesced trigger");
    h.feed(Input::StateRead(snapshot(true, 2)));
    // The cycle ended; the coalesced triggers start exactly one more, which reads once.
    assert_eq!(h.actions(), [read()]);
    h.feed(Input::StateRead(snapshot(true, 2)));
    assert_eq!(h.actions(), []);
    let events = h.events();
    let coalesced: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|k| match k {
            EventKind::TriggerCoalesced {
                trigger,
                into_cycle,
            } => Some((*trigger, *into_cycle)),
            _ => None,
        })
        .collect();
    assert_eq!(coalesced, later.iter().map(|t| (*t, 2)).collect::<Vec<_>>());
    let starts: Vec<CycleCause> = events
        .iter()
        .filter_map(|k| match k {
            EventKind::CycleStarted { cause } => Some(cause.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        [
            CycleCause::Trigger { trigger: first },
            CycleCause::Coalesced { triggers: 5 }
        ]
    );
    let answered: u32 = events
        .iter()
        .filter_map(|k| match k {
            EventKind::Outcome { triggers, .. } => Some(*triggers),
            _ => None,
        })
        .sum();
    assert_eq!(
        answered, 6,
        "every trigger is answered by exactly one outcome"
    );
}

#[test]
fn a_repeated_delivery_id_is_the_fact_trigger_duplicate() {
    let mut h = Harness::reference();
    h.trigger(Some("d-1"));
    h.feed(Input::StateRead(snapshot(true, 2)));
    h.trigger(Some("d-1"));
    h.feed(Input::StateRead(snapshot(false, 2)));
    let dups: Vec<bool> = h
        .events()
        .iter()
        .filter_map(|k| match k {
            EventKind::TriggerReceived { duplicate, .. } => Some(*duplicate),
            _ => None,
        })
        .collect();
    assert_eq!(dups, [false, true]);
    let reason = "duplicate delivery".to_owned();
    assert_eq!(h.outcomes().last(), Some(&Outcome::Skipped { reason }));
    assert_eq!(h.publishes(), 0);
}

#[test]
fn a_duplicate_coalesced_with_a_fresh_trigger_is_not_a_duplicate() {
    let mut h = Harness::reference();
    h.trigger(Some("a"));
    h.trigger(Some("a"));
    h.trigger(Some("b"));
    h.feed(Input::StateRead(snapshot(true, 2)));
    h.feed(Input::StateRead(snapshot(false, 2)));
    assert_eq!(h.publishes(), 1);
}

#[test]
fn stale_version_409_rechecks_and_the_policy_decides_on_the_new_state() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.actions();
    h.feed(Input::PublishAnswered(refused(409, None)));
    // No blind retry: the next command is a read, not a write.
    assert_eq!(h.actions(), [read()]);
    h.feed(Input::StateRead(snapshot(false, 4)));
    let actions = h.actions();
    assert!(
        matches!(&actions[..], [Command::Publish { version: 4, idempotency_key, .. }]
            if *idempotency_key != machine::idempotency_key(&schedule(), 3)),
        "{actions:?}"
    );
    let decisions: Vec<(String, String)> = h
        .events()
        .iter()
        .filter_map(|k| match k {
            EventKind::Decision { rule, action, .. } => {
                Some((rule.clone(), action.keyword().to_owned()))
            }
            _ => None,
        })
        .collect();
    let pairs = [
        ("ready", "publish"),
        ("conflict", "recheck"),
        ("ready", "publish"),
    ];
    let expected: Vec<(String, String)> = pairs
        .iter()
        .map(|(r, a)| (r.to_string(), a.to_string()))
        .collect();
    assert_eq!(decisions, expected);
}

#[test]
fn rechecks_are_bounded_and_exhaustion_is_a_recorded_failure() {
    let mut h = Harness::reference();
    h.trigger(None);
    for _ in 0..=3 {
        h.feed(Input::StateRead(snapshot(false, 3)));
        h.feed(Input::PublishAnswered(refused(409, None)));
    }
    assert_eq!(h.publishes(), 4);
    let reason = "rechecks exhausted: 3".to_owned();
    assert_eq!(h.outcomes(), [Outcome::Failed { reason }]);
    assert!(h.runner.is_idle());
}

#[test]
fn server_errors_back_off_with_growing_jittered_waits_until_attempts_run_out() {
    let mut h = Harness::reference();
    h.trigger(None);
    let mut waits = Vec::new();
    loop {
        let actions = h.actions();
        match &actions[..] {
            [Command::Read(_)] => h.feed(Input::StateRead(snapshot(false, 3))),
            [Command::Publish { .. }] => h.feed(Input::PublishAnswered(refused(503, None))),
            [Command::WaitUntil { until, timer, .. }] => {
                waits.push(until.duration_since(h.now));
                h.now = *until;
                h.feed(Input::TimerFired(*timer));
            }
            [] => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(h.publishes(), 6, "attempts 6 allows six tries");
    assert_eq!(waits.len(), 5);
    for (n, wait) in waits.iter().enumerate() {
        let ceiling = SignedDuration::from_secs(5 * (1 << n)).min(SignedDuration::from_secs(120));
        assert!(
            *wait >= SignedDuration::ZERO && *wait < ceiling,
            "wait {n}: {wait:?}"
        );
    }
    let reason = "attempts exhausted: 6 of backoff `conflict`".to_owned();
    assert_eq!(h.outcomes(), [Outcome::Failed { reason }]);
}

#[test]
fn retry_after_sets_the_wait_and_is_recorded() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    let seven = SignedDuration::from_secs(7);
    h.feed(Input::PublishAnswered(refused(429, Some(seven))));
    let wait = h.events().into_iter().find_map(|k| match k {
        EventKind::Wait { delay, until, .. } => Some((delay, until)),
        _ => None,
    });
    let Some((delay, until)) = wait else {
        panic!("no wait event")
    };
    assert_eq!(delay.duration, seven);
    assert_eq!(delay.retry_after, Some(seven));
    assert_eq!(until, t0() + seven);
    h.fire_wait();
    assert_eq!(
        h.actions(),
        [read()],
        "after the wait, look again before writing"
    );
}

#[test]
fn an_empty_retry_budget_turns_a_backoff_into_a_recorded_failure() {
    let config = RunnerConfig {
        budget: BudgetConfig {
            ttl: SignedDuration::from_secs(10),
            min_per_sec: 0,
            retry_ratio: 0.0,
        },
        ..RunnerConfig::default()
    };
    let mut h = Harness::new(reference_policy(6), config);
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.feed(Input::PublishAnswered(refused(503, None)));
    let reason = "retry budget exhausted".to_owned();
    assert_eq!(h.outcomes(), [Outcome::Failed { reason }]);
}

#[test]
fn a_timeout_is_status_zero_for_the_response_phase() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    let failure = CallFailure::no_answer("publish timed out after 10s");
    h.feed(Input::PublishAnswered(Err(failure)));
    let reason = "unexpected response".to_owned();
    assert_eq!(h.outcomes(), [Outcome::Failed { reason }]);
    let status = h.events().into_iter().find_map(|k| match k {
        EventKind::PublishCall { status, error, .. } => Some((status, error)),
        _ => None,
    });
    assert_eq!(
        status,
        Some((None, Some("publish timed out after 10s".into())))
    );
}

#[test]
fn an_unreadable_schedule_is_state_unknown_and_never_published() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(Err(CallFailure::no_answer(
        "read timed out",
    ))));
    let state = h.events().into_iter().find_map(|k| match k {
        EventKind::StateRead { state, .. } => Some(state),
        _ => None,
    });
    assert_eq!(state, Some(ScheduleState::Unknown));
    assert_eq!(h.publishes(), 0);
}

#[test]
fn a_publish_in_progress_backs_off_then_looks_again() {
    let mut h = Harness::reference();
    h.publish_processing(3);
    // While following our own operation a new trigger arrives and is coalesced.
    h.trigger(None);
    h.fire_wait();
    h.feed(Input::StateRead(snapshot(true, 4)));
    // The coalesced evaluation reads, sees published and skips: still one write.
    h.feed(Input::StateRead(snapshot(true, 4)));
    assert_eq!(h.publishes(), 1);
    let reason = "already published".to_owned();
    assert_eq!(
        h.outcomes(),
        [
            Outcome::Published { version: 4 },
            Outcome::Skipped { reason }
        ]
    );
}

#[test]
fn a_failed_operation_is_a_recorded_failure() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.feed(Input::PublishAnswered(accepted(OperationStatus::Error)));
    let reason = "update operation ended Error".to_owned();
    assert_eq!(h.outcomes(), [Outcome::Failed { reason }]);
}

#[test]
fn following_outlasts_the_backoff_attempts_until_the_follow_timeout() {
    // Three backoff attempts in the policy; a publish Processing for many more reads than
    // that is still followed, until `follow_timeout` has passed since following began.
    let config = RunnerConfig {
        follow_timeout: SignedDuration::from_mins(5),
        ..RunnerConfig::default()
    };
    let mut h = Harness::new(reference_policy(3), config);
    h.publish_processing(3);
    let began = h.now;
    let mut reads = 0;
    while h.outcomes().is_empty() {
        h.fire_wait();
        reads += 1;
        h.feed(Input::StateRead(snapshot(false, 3)));
    }
    assert!(reads > 3, "followed for {reads} reads only");
    let followed = h.now.duration_since(began);
    assert!(
        followed >= SignedDuration::from_mins(5) && followed < SignedDuration::from_mins(8),
        "gave up after {followed:#}"
    );
    let reason = format!("the update did not show published within 5m ({reads} reads)");
    assert_eq!(h.outcomes(), [Outcome::Failed { reason }]);
}

#[test]
fn a_long_publish_that_completes_within_the_follow_timeout_ends_published() {
    let mut h = Harness::new(reference_policy(3), RunnerConfig::default());
    h.publish_processing(3);
    let began = h.now;
    while h.now.duration_since(began) < SignedDuration::from_mins(4) {
        h.fire_wait();
        h.feed(Input::StateRead(snapshot(false, 3)));
    }
    h.fire_wait();
    h.feed(Input::StateRead(snapshot(true, 4)));
    assert_eq!(h.outcomes(), [Outcome::Published { version: 4 }]);
}

#[test]
fn a_debounce_deferral_ends_the_cycle_and_evaluates_again_when_due() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.feed(Input::PublishAnswered(accepted(OperationStatus::Complete)));
    h.feed(Input::StateRead(snapshot(true, 4)));
    let published_at = h.now;
    h.now = published_at + SignedDuration::from_mins(5);
    h.trigger(None);
    h.fresh();
    // A person edits: the schedule is a draft again, but we published 5 minutes ago.
    h.feed(Input::StateRead(snapshot(false, 5)));
    let until = published_at + SignedDuration::from_mins(15);
    assert_eq!(h.outcomes().last(), Some(&Outcome::Deferred { until }));
    assert!(h.runner.is_idle());
    let actions = h.actions();
    assert!(
        matches!(&actions[..], [Command::WaitUntil { reason: WaitReason::Defer, until: u, .. }] if *u == until),
        "{actions:?}"
    );
    if let Some(timer) = h.wait_in(&actions) {
        h.feed(Input::TimerFired(timer));
    }
    assert_eq!(h.actions(), [read()]);
    h.feed(Input::StateRead(snapshot(false, 5)));
    assert!(matches!(
        &h.actions()[..],
        [Command::Publish { version: 5, .. }]
    ));
}

#[test]
fn a_dry_run_decides_without_writing() {
    let config = RunnerConfig {
        dry_run: true,
        ..RunnerConfig::default()
    };
    let mut h = Harness::new(reference_policy(6), config);
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    assert_eq!(h.publishes(), 0);
    let action = ActionKind::Publish;
    assert_eq!(h.outcomes(), [Outcome::DryRun { action }]);
}

#[test]
fn a_timer_for_an_abandoned_wait_is_ignored() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::TimerFired(TimerId(99)));
    h.feed(Input::PublishAnswered(refused(409, None)));
    assert_eq!(h.actions(), [read()]);
    assert_eq!(h.events().len(), 2);
}

#[test]
fn events_carry_the_policy_version_and_the_schedule() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(true, 1)));
    for c in &h.commands {
        if let Command::Emit(e) = c {
            assert_eq!(&*e.policy_version, "test-version");
            assert_eq!(*e.schedule, schedule());
        }
    }
}

#[test]
fn events_share_one_copy_of_the_version_until_the_policy_changes() {
    // A million events must not mean a million copies of the same strings; a reloaded
    // policy must still be named by the events it decides.
    let emitted = |commands: &[Command]| -> Vec<Event> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::Emit(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    };
    let mut h = Harness::reference();
    h.trigger(None);
    let before = emitted(&h.commands);
    h.policy.version = "reloaded".into();
    h.feed(Input::StateRead(snapshot(true, 1)));
    let all = emitted(&h.commands);
    let after = all.get(before.len()..).unwrap_or_default();
    let (Some(first), Some(later)) = (before.first(), after.first()) else {
        panic!("events before and after the reload: {all:?}");
    };
    assert!(before.len() >= 2 && after.len() >= 2);
    for e in &before {
        assert!(Arc::ptr_eq(&e.policy_version, &first.policy_version));
        assert!(Arc::ptr_eq(&e.schedule, &first.schedule));
    }
    for e in after {
        assert_eq!(&*e.policy_version, "reloaded");
        assert!(Arc::ptr_eq(&e.policy_version, &later.policy_version));
        assert!(Arc::ptr_eq(&e.schedule, &first.schedule));
    }
}

#[test]
fn events_serialize_as_tagged_json() {
    let mut h = Harness::reference();
    h.trigger(Some("d-9"));
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.feed(Input::PublishAnswered(refused(
        429,
        Some(SignedDuration::from_secs(7)),
    )));
    let lines: Vec<String> = h
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Emit(e) => serde_json::to_string(e).ok(),
            _ => None,
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn follow_reads_are_told_apart_from_evaluations() {
    let mut h = Harness::reference();
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.feed(Input::PublishAnswered(accepted(OperationStatus::Complete)));
    h.feed(Input::StateRead(snapshot(true, 4)));
    assert_eq!(
        h.read_purposes(),
        [ReadPurpose::Evaluate, ReadPurpose::Follow]
    );
}

#[test]
fn events_read_as_one_line_each() {
    let mut h = Harness::reference();
    h.trigger(Some("d-7"));
    h.trigger(Some("d-7"));
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.feed(Input::PublishAnswered(refused(
        429,
        Some(SignedDuration::from_secs(7)),
    )));
    h.fire_wait();
    h.feed(Input::StateRead(snapshot(false, 3)));
    h.feed(Input::PublishAnswered(refused(409, None)));
    h.feed(Input::StateRead(snapshot(false, 4)));
    h.feed(Input::PublishAnswered(accepted(
        OperationStatus::Processing,
    )));
    h.fire_wait();
    h.feed(Input::StateRead(snapshot(true, 5)));
    h.trigger(Some("d-8"));
    h.feed(Input::StateRead(Err(CallFailure::no_answer(
        "read timed out after 200ms",
    ))));
    let lines: Vec<String> = h
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Emit(e) => Some(e.to_string()),
            _ => None,
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn a_follow_read_above_our_version_that_is_a_draft_ends_the_follow_landed_then_changed() {
    let mut h = Harness::reference();
    h.publish_processing(3);
    // Our publish completed at version 4; a planner edited to a draft at 5 before we looked.
    h.trigger(None);
    h.fire_wait();
    h.fresh();
    h.feed(Input::StateRead(snapshot(false, 5)));
    assert_eq!(
        h.outcomes(),
        [Outcome::LandedThenChanged { version: 5 }],
        "one follow read, no follow timeout"
    );
    // The coalesced trigger's cycle starts at once from that read (asked for after the
    // trigger came) and publishes the edit, with no second read.
    assert!(
        matches!(&h.actions()[..], [Command::Publish { version: 5, .. }]),
        "the edit is published, neither backed off as `publishing` nor debounced"
    );
}

#[test]
fn our_operation_is_in_progress_only_at_the_version_we_wrote_at() {
    let mut h = Harness::reference();
    h.publish_processing(3);
    h.fire_wait();
    h.feed(Input::StateRead(snapshot(true, 4)));
    // Next cycle within the follow timeout: a draft above our version is a draft.
    h.trigger(None);
    h.feed(Input::StateRead(snapshot(false, 5)));
    let states: Vec<ScheduleState> = h
        .events()
        .into_iter()
        .filter_map(|k| match k {
            EventKind::StateRead { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(states.last(), Some(&ScheduleState::Draft), "{states:?}");
}

#[test]
fn a_refused_login_ends_the_cycle_as_a_failure_whatever_the_policy() {
    let mut h = Harness::reference();
    h.trigger(None);
    let reason = "authentication failed: the login service refused client id \"pg\": HTTP 401";
    h.feed(Input::StateRead(Err(CallFailure {
        reason: reason.into(),
        kind: FailureKind::Unauthorized,
    })));
    assert_eq!(
        h.outcomes(),
        [Outcome::Unauthorized {
            reason: reason.into()
        }]
    );
    assert!(h.outcomes()[0].is_failure());
    assert!(h.runner.is_idle());
}

/// Publish at version 3 and follow until the armed follow wait is more than 10 s away;
/// returns the instant of the follow read that armed it.
fn follow_into_a_long_wait(h: &mut Harness) -> Timestamp {
    h.publish_processing(3);
    for _ in 0..12 {
        let actions = h.actions();
        let read_at = h.now;
        let until = actions.iter().find_map(|c| match c {
            Command::WaitUntil { until, .. } => Some(*until),
            _ => None,
        });
        let Some(until) = until else {
            panic!("no follow wait in {actions:?}")
        };
        if until.duration_since(read_at) > SignedDuration::from_secs(10) {
            return read_at;
        }
        h.now = until;
        let timer = actions.iter().find_map(|c| match c {
            Command::WaitUntil { timer, .. } => Some(*timer),
            _ => None,
        });
        if let Some(timer) = timer {
            h.feed(Input::TimerFired(timer));
        }
        h.feed(Input::StateRead(snapshot(false, 3)));
    }
    panic!("the follow never waited more than 10 s")
}

#[test]
fn a_trigger_coalesced_during_a_follow_brings_its_next_read_forward_once() {
    let mut h = Harness::reference();
    let read_at = follow_into_a_long_wait(&mut h);
    // The edit's webhook, 2 s after that read: the next read comes 8 s after it.
    h.now = read_at + SignedDuration::from_secs(2);
    h.trigger(Some("edit"));
    let sooner = read_at + machine::EARLY_FOLLOW_READ_GAP;
    let actions = h.actions();
    let waits: Vec<Timestamp> = actions
        .iter()
        .filter_map(|c| match c {
            Command::WaitUntil { until, .. } => Some(*until),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [sooner], "{actions:?}");
    // A storm of further webhooks brings nothing more forward.
    for n in 0..20 {
        h.now += SignedDuration::from_millis(100);
        h.trigger(Some(&format!("storm-{n}")));
    }
    assert_eq!(h.actions(), []);
    // The read at `sooner` sees the edit: the follow ends, and the coalesced triggers'
    // cycle publishes the edit from that read.
    h.now = sooner;
    let timer = actions.iter().find_map(|c| match c {
        Command::WaitUntil { timer, .. } => Some(*timer),
        _ => None,
    });
    if let Some(timer) = timer {
        h.feed(Input::TimerFired(timer));
    }
    assert_eq!(h.actions(), [read()]);
    h.feed(Input::StateRead(snapshot(false, 5)));
    assert_eq!(h.outcomes(), [Outcome::LandedThenChanged { version: 5 }]);
    assert!(
        matches!(&h.actions()[..], [Command::Publish { version: 5, .. }]),
        "the edit is published at once"
    );
}

#[test]
fn a_trigger_that_came_while_the_follow_read_was_out_makes_the_next_cycle_read_again() {
    let mut h = Harness::reference();
    h.publish_processing(3);
    h.fire_wait();
    assert_eq!(h.actions(), [read()]);
    // The read is out; an edit's webhook comes before its answer, which may predate it.
    h.now += SignedDuration::from_millis(50);
    h.trigger(None);
    h.now += SignedDuration::from_millis(50);
    h.feed(Input::StateRead(snapshot(true, 4)));
    assert_eq!(h.outcomes(), [Outcome::Published { version: 4 }]);
    assert_eq!(h.actions(), [read()], "the next cycle reads for itself");
}

/// A harness whose runner hears the channel (up), its cache trusting states for 30 minutes.
fn hearing() -> Harness {
    let mut h = Harness::reference();
    h.runner =
        Runner::new(RunnerConfig::default()).with_notifications(SignedDuration::from_mins(30));
    h.runner
        .hear_up(crate::api::notify::health::Continuity { up: true, epoch: 1 });
    h
}

/// A read answered: the schedule `published` at `version`, last changed at `modified`.
fn read_at(published: bool, version: i64, modified: Timestamp) -> Input {
    let mut answer = snapshot(published, version);
    if let Ok(a) = &mut answer
        && let Some(body) = &mut a.body
    {
        body.modified_at = Some(modified);
    }
    Input::StateRead(answer)
}

/// The wait armed to confirm decisions made without a read, among `actions`.
fn confirm_wait(actions: &[Command]) -> Option<(TimerId, Timestamp)> {
    actions.iter().find_map(|c| match c {
        Command::WaitUntil {
            timer,
            until,
            reason: WaitReason::Confirm,
            ..
        } => Some((*timer, *until)),
        _ => None,
    })
}

/// A read at `t0` shows published at version 9; a minute later a trigger skips from the
/// kept state, without a read. Returns the confirm wait it armed.
fn skipped_from_the_kept_state(h: &mut Harness) -> (TimerId, Timestamp) {
    h.trigger(None);
    h.feed(read_at(true, 9, t0()));
    h.fresh();
    h.now = t0() + SignedDuration::from_mins(1);
    h.trigger(None);
    let actions = h.actions();
    assert!(!actions.contains(&read()), "{actions:?}");
    let wait = confirm_wait(&actions);
    assert!(wait.is_some(), "{actions:?}");
    wait.unwrap_or((TimerId(0), t0()))
}

#[test]
fn a_skip_from_the_kept_state_is_confirmed_by_one_read_after_the_triggers_go_quiet() {
    let mut h = hearing();
    let (timer, until) = skipped_from_the_kept_state(&mut h);
    assert_eq!(until, h.now + crate::runner::confirm::CONFIRM_QUIET);
    // More skips from the kept state push the read on, but arm no second wait.
    h.now += SignedDuration::from_mins(5);
    h.trigger(None);
    assert_eq!(confirm_wait(&h.actions()), None);
    h.now = until;
    h.feed(Input::TimerFired(timer));
    let (timer, until) = confirm_wait(&h.actions()).expect("waits on for the quiet");
    assert_eq!(until, t0() + SignedDuration::from_mins(16));
    h.now = until;
    h.feed(Input::TimerFired(timer));
    assert_eq!(h.actions(), [read()]);
    // A planner's edit made before the skips and never heard: the policy decides on it.
    h.feed(read_at(false, 10, t0() + SignedDuration::from_secs(30)));
    assert_eq!(h.publishes(), 1);
    assert_eq!(
        h.read_purposes(),
        [ReadPurpose::Evaluate, ReadPurpose::Confirm]
    );
    assert!(h.events().iter().any(|k| matches!(
        k,
        EventKind::CycleStarted {
            cause: CycleCause::Confirm {
                unconfirmed_cycle: 2
            }
        }
    )));
}

#[test]
fn a_confirm_read_that_shows_only_a_later_change_leaves_the_skips_standing() {
    let mut h = hearing();
    let (timer, until) = skipped_from_the_kept_state(&mut h);
    h.now = until;
    h.feed(Input::TimerFired(timer));
    assert_eq!(h.actions(), [read()]);
    // Edited after the skip: its own trigger will publish it, as without the channel.
    h.feed(read_at(false, 10, t0() + SignedDuration::from_mins(2)));
    assert_eq!(h.publishes(), 0);
    assert_eq!(
        h.outcomes().last(),
        Some(&Outcome::Confirmed { version: 10 })
    );
}

#[test]
fn any_read_of_the_schedule_meanwhile_confirms_the_skips() {
    let mut h = hearing();
    let (timer, until) = skipped_from_the_kept_state(&mut h);
    // The state ages out of the cache: the next trigger reads.
    h.now = t0() + SignedDuration::from_mins(31);
    h.trigger(None);
    assert_eq!(h.actions(), [read()]);
    h.feed(read_at(true, 9, t0()));
    h.fresh();
    h.now = h.now.max(until);
    h.feed(Input::TimerFired(timer));
    assert_eq!(h.actions(), [], "no confirm read after a read");
}

#[test]
fn an_event_that_skips_a_version_brings_the_confirm_read_forward() {
    let mut h = hearing();
    skipped_from_the_kept_state(&mut h);
    h.now += SignedDuration::from_secs(10);
    // Version 10's event was lost; 11 is heard.
    let event = crate::api::notify::event::ScheduleNotification {
        schedule: schedule(),
        status: OperationStatus::Complete,
        operation_id: None,
        event_type: crate::api::notify::event::ScheduleEventType::Update,
        snapshot: ScheduleSnapshot {
            published: false,
            version: 11,
            modified_at: Some(h.now),
            modified_by: Some("planner".into()),
            publishing: false,
            other_published: None,
        },
    };
    h.runner.heard(
        h.now,
        &h.policy,
        &mut h.random,
        crate::api::notify::Heard::Schedule(event),
        &mut h.commands,
    );
    assert_eq!(h.actions(), [read()]);
}
