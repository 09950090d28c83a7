//! The evaluator: a pure function from a policy and facts to a decision.
//!
//! Rules of a phase are tried top to bottom; the first whose condition holds decides, else
//! `otherwise` does. Absent facts make every comparison false, the negated forms
//! (`!=`, `not in`) included; `exists(fact)` asks explicitly and `not (...)` negates the
//! result. No clock, no I/O, no allocation: `now` is a fact like any other.

use crate::language::ast::{CmpOp, PhaseKind};
use crate::language::schema::FactId;
use crate::language::span::Span;
use crate::policy::decision::{Decision, Verdict};
use crate::policy::facts::{Facts, NOW, RETRY_AFTER, Value};
use crate::policy::window::LocalTime;
use crate::policy::{CompiledAction, Cond, CondKind, PhaseRules, Policy, Term, WindowId};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use std::cell::Cell;
use std::cmp::Ordering;

/// The reason a `defer until WINDOW` fails when there is no `now` to start from.
pub const NO_NOW: &str = "cannot defer: the fact `now` is absent";
/// The reason a `defer until WINDOW` fails when the window has no opening ahead.
pub const WINDOW_NEVER_OPENS: &str = "cannot defer: the window never opens";
/// The reason a `defer until INSTANT` fails when the instant's fact is absent.
pub const INSTANT_ABSENT: &str = "cannot defer: the instant it names is absent";

/// Decide one phase: the first rule whose condition holds, else `otherwise`. Allocates nothing.
pub fn evaluate<'p>(policy: &'p Policy, phase: PhaseKind, facts: &Facts) -> Decision<'p> {
    let rules = policy.phase(phase);
    let eval = Eval::new(policy, facts);
    for rule in &rules.rules {
        if eval.holds(&rule.condition) {
            return decide(policy, &rule.action, &rule.name, rule.span, facts);
        }
    }
    decide_otherwise(policy, rules, facts)
}

/// The decision of a phase's `otherwise`, taken when no rule holds.
pub(crate) fn decide_otherwise<'p>(
    policy: &'p Policy,
    rules: &'p PhaseRules,
    facts: &Facts,
) -> Decision<'p> {
    decide(
        policy,
        &rules.otherwise,
        "otherwise",
        rules.otherwise_span,
        facts,
    )
}

/// Whether `cond` holds for `facts`.
pub fn holds(policy: &Policy, cond: &Cond, facts: &Facts) -> bool {
    Eval::new(policy, facts).holds(cond)
}

/// One evaluation's inputs, and the last instant read on a window's wall clock: rules
/// often test the same window, and reading local time is most of what a test costs.
struct Eval<'a> {
    policy: &'a Policy,
    facts: &'a Facts,
    local: Cell<Option<(WindowId, Timestamp, LocalTime)>>,
}

impl<'a> Eval<'a> {
    fn new(policy: &'a Policy, facts: &'a Facts) -> Self {
        Eval {
            policy,
            facts,
            local: Cell::new(None),
        }
    }

    fn holds(&self, cond: &Cond) -> bool {
        let facts = self.facts;
        match &cond.kind {
            CondKind::And(parts) => parts.iter().all(|c| self.holds(c)),
            CondKind::Or(parts) => parts.iter().any(|c| self.holds(c)),
            CondKind::Not(inner) => !self.holds(inner),
            CondKind::Compare { left, op, right } => {
                match (term_value(left, facts), term_value(right, facts)) {
                    (Some(l), Some(r)) => l.compare(r).is_some_and(|ord| op_holds(*op, ord)),
                    _ => false,
                }
            }
            CondKind::InSet {
                term,
                negated,
                values,
            } => term_value(term, facts).is_some_and(|v| {
                values
                    .iter()
                    .any(|c| v.compare(Scalar::of(c)) == Some(Ordering::Equal))
                    != *negated
            }),
            CondKind::InRange {
                term,
                negated,
                low,
                high,
            } => match term_value(term, facts) {
                Some(Scalar::Int(v)) => (*low..=*high).contains(&v) != *negated,
                _ => false,
            },
            CondKind::InWindow {
                term,
                negated,
                window,
            } => match term_value(term, facts) {
                Some(Scalar::Instant(t)) => self.in_window(*window, t) != *negated,
                _ => false,
            },
            CondKind::Exists(fact) => facts.get(*fact).is_some(),
            CondKind::IsTrue(term) => term_value(term, facts) == Some(Scalar::Bool(true)),
        }
    }

    /// Whether window `id` is open at `t`.
    fn in_window(&self, id: WindowId, t: Timestamp) -> bool {
        let window = self.policy.window(id);
        let local = match self.local.get() {
            Some((cached, at, local)) if cached == id && at == t => local,
            _ => {
                let local = window.local_time(t);
                self.local.set(Some((id, t, local)));
                local
            }
        };
        window.contains_local(local)
    }
}

/// The verdict of `action`, attributed to `rule` at `span`.
pub(crate) fn decide<'p>(
    policy: &'p Policy,
    action: &'p CompiledAction,
    rule: &'p str,
    span: Span,
    facts: &Facts,
) -> Decision<'p> {
    let verdict = match action {
        CompiledAction::Publish => Verdict::Publish,
        CompiledAction::Skip(reason) => Verdict::Skip { reason },
        CompiledAction::Backoff(id) => Verdict::Backoff {
            profile: policy.backoff(*id),
        },
        CompiledAction::BackoffRetryAfter(id) => Verdict::BackoffRetryAfter {
            retry_after: facts.duration(RETRY_AFTER),
            fallback: policy.backoff(*id),
        },
        CompiledAction::DeferUntilWindow(id) => match facts.instant(NOW) {
            None => Verdict::Fail { reason: NO_NOW },
            Some(now) => match policy.window(*id).next_open(now) {
                Some(until) => Verdict::Defer { until },
                None => Verdict::Fail {
                    reason: WINDOW_NEVER_OPENS,
                },
            },
        },
        CompiledAction::DeferUntilInstant(at) => match offset(at.fact, at.offset, facts) {
            Some(until) => Verdict::Defer { until },
            None => Verdict::Fail {
                reason: INSTANT_ABSENT,
            },
        },
        CompiledAction::Recheck => Verdict::Recheck,
        CompiledAction::Done => Verdict::Done,
        CompiledAction::Fail(reason) => Verdict::Fail { reason },
    };
    Decision {
        verdict,
        rule,
        span,
    }
}

/// A value as a condition sees it: a fact's or constant's, borrowed, or a computed one.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scalar<'a> {
    Enum(u8),
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Instant(Timestamp),
    Duration(SignedDuration),
    Date(Date),
}

impl<'a> Scalar<'a> {
    fn of(value: &'a Value) -> Scalar<'a> {
        match value {
            Value::Enum(i) => Scalar::Enum(*i),
            Value::Str(s) => Scalar::Str(s),
            Value::Int(n) => Scalar::Int(*n),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Instant(t) => Scalar::Instant(*t),
            Value::Duration(d) => Scalar::Duration(*d),
            Value::Date(d) => Scalar::Date(*d),
        }
    }

    /// The order of two values of one type; `None` across types (the checker rules that out).
    fn compare(self, other: Scalar<'_>) -> Option<Ordering> {
        match (self, other) {
            (Scalar::Enum(a), Scalar::Enum(b)) => Some(a.cmp(&b)),
            (Scalar::Str(a), Scalar::Str(b)) => Some(a.cmp(b)),
            (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(&b)),
            (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(&b)),
            (Scalar::Instant(a), Scalar::Instant(b)) => Some(a.cmp(&b)),
            (Scalar::Duration(a), Scalar::Duration(b)) => Some(a.cmp(&b)),
            (Scalar::Date(a), Scalar::Date(b)) => Some(a.cmp(&b)),
            _ => None,
        }
    }
}

/// The value of `term`, or `None` when a fact it needs is absent.
fn term_value<'a>(term: &'a Term, facts: &'a Facts) -> Option<Scalar<'a>> {
    match term {
        Term::Fact(fact) => facts.get(*fact).map(Scalar::of),
        Term::Const(value) => Some(Scalar::of(value)),
        Term::Since(fact) => since(*fact, facts).map(Scalar::Duration),
        Term::Offset(fact, by) => offset(*fact, *by, facts).map(Scalar::Instant),
    }
}

/// `since(fact)`: `now - fact`, or `None` when either is absent.
pub(crate) fn since(fact: FactId, facts: &Facts) -> Option<SignedDuration> {
    Some(facts.instant(NOW)?.duration_since(facts.instant(fact)?))
}

/// `fact + by`, or `None` when the fact is absent (or the sum out of range).
pub(crate) fn offset(fact: FactId, by: SignedDuration, facts: &Facts) -> Option<Timestamp> {
    facts.instant(fact)?.checked_add(by).ok()
}

fn op_holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::language::ast::{Jitter, TimeOfDay, Weekday};
    use crate::language::schema::FactId;
    use crate::policy::backoff::BackoffProfile;
    use crate::policy::window::{WeeklyRange, Window};
    use crate::policy::{BackoffId, CompiledRule, PhaseRules, TermAction, WindowId};
    use jiff::tz::TimeZone;

    pub(crate) fn id(name: &str) -> FactId {
        FactId::lookup(name).unwrap()
    }

    fn cond(kind: CondKind) -> Cond {
        Cond {
            kind,
            span: Span::default(),
        }
    }

    fn compare(fact: &str, op: CmpOp, value: Value) -> Cond {
        cond(CondKind::Compare {
            left: Term::Fact(id(fact)),
            op,
            right: Term::Const(value),
        })
    }

    fn rule(name: &str, condition: Cond, action: CompiledAction) -> CompiledRule {
        CompiledRule {
            name: name.into(),
            span: Span::default(),
            condition,
            action,
        }
    }

    /// The design's reference policy (trigger phase and part of response), by hand.
    pub(crate) fn policy() -> Policy {
        let london = TimeZone::get("Europe/London").unwrap();
        let weekday = |day| WeeklyRange {
            day,
            start: TimeOfDay(7 * 60),
            end: TimeOfDay(20 * 60),
        };
        let window = Window {
            name: "business_hours".into(),
            timezone: london.clone(),
            ranges: vec![
                weekday(Weekday::Mon),
                weekday(Weekday::Tue),
                weekday(Weekday::Wed),
                weekday(Weekday::Thu),
                weekday(Weekday::Fri),
            ],
        };
        let conflict = BackoffProfile {
            name: "conflict".into(),
            initial: SignedDuration::from_secs(5),
            factor: 2.0,
            max: SignedDuration::from_mins(2),
            jitter: Jitter::Full,
            attempts: 6,
        };
        let state = |s: &str| {
            Value::Enum(
                crate::language::schema::SCHEDULE_STATES
                    .iter()
                    .position(|v| *v == s)
                    .unwrap() as u8,
            )
        };
        let trigger = PhaseRules {
            rules: vec![
                rule(
                    "duplicate",
                    cond(CondKind::IsTrue(Term::Fact(id("trigger.duplicate")))),
                    CompiledAction::Skip("duplicate delivery".into()),
                ),
                rule(
                    "published",
                    compare("schedule.state", CmpOp::Eq, state("published")),
                    CompiledAction::Skip("already published".into()),
                ),
                rule(
                    "in_progress",
                    compare("schedule.state", CmpOp::Eq, state("publishing")),
                    CompiledAction::Backoff(BackoffId(0)),
                ),
                rule(
                    "after_hours",
                    cond(CondKind::And(Box::new([
                        compare("trigger.source", CmpOp::Eq, Value::Str("servicenow".into())),
                        cond(CondKind::InWindow {
                            term: Term::Fact(NOW),
                            negated: true,
                            window: WindowId(0),
                        }),
                    ]))),
                    CompiledAction::DeferUntilWindow(WindowId(0)),
                ),
                rule(
                    "debounce",
                    cond(CondKind::Compare {
                        left: Term::Since(id("last_publish.at")),
                        op: CmpOp::Lt,
                        right: Term::Const(Value::Duration(SignedDuration::from_mins(15))),
                    }),
                    CompiledAction::DeferUntilInstant(TermAction {
                        fact: id("last_publish.at"),
                        offset: SignedDuration::from_mins(15),
                    }),
                ),
                rule(
                    "ready",
                    compare("schedule.state", CmpOp::Eq, state("draft")),
                    CompiledAction::Publish,
                ),
            ],
            otherwise: CompiledAction::Skip("no rule matched".into()),
            otherwise_span: Span::default(),
        };
        let response = PhaseRules {
            rules: vec![
                rule(
                    "ok",
                    cond(CondKind::InRange {
                        term: Term::Fact(id("response.status")),
                        negated: false,
                        low: 200,
                        high: 299,
                    }),
                    CompiledAction::Done,
                ),
                rule(
                    "throttled",
                    compare("response.status", CmpOp::Eq, Value::Int(429)),
                    CompiledAction::BackoffRetryAfter(BackoffId(0)),
                ),
            ],
            otherwise: CompiledAction::Fail("unexpected response".into()),
            otherwise_span: Span::default(),
        };
        Policy {
            name: "test".into(),
            version: String::new(),
            timezone: london,
            timezone_name: "Europe/London".into(),
            sources: vec!["servicenow".into(), "manual".into()],
            windows: vec![window],
            backoffs: vec![conflict],
            trigger,
            response,
        }
    }

    pub(crate) fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A weekday-noon draft from `manual`, never published: the `ready` rule's case.
    pub(crate) fn facts() -> Facts {
        let mut f = Facts::new();
        f.set(id("trigger.duplicate"), Some(Value::Bool(false)));
        f.set(id("schedule.state"), Some(Value::Enum(0)));
        f.set(id("trigger.source"), Some(Value::Str("manual".into())));
        f.set(NOW, Some(Value::Instant(at("2026-03-25T12:00:00Z"))));
        f
    }

    fn decide_trigger<'p>(policy: &'p Policy, facts: &Facts) -> (&'p str, Verdict<'p>) {
        let d = evaluate(policy, PhaseKind::Trigger, facts);
        (d.rule, d.verdict)
    }

    #[test]
    fn first_matching_rule_decides() {
        let p = policy();
        let mut f = facts();
        assert_eq!(decide_trigger(&p, &f).0, "ready");
        f.set(id("trigger.duplicate"), Some(Value::Bool(true)));
        f.set(id("schedule.state"), Some(Value::Enum(2)));
        assert_eq!(decide_trigger(&p, &f).0, "duplicate");
    }

    #[test]
    fn otherwise_decides_when_nothing_holds() {
        let p = policy();
        let mut f = facts();
        f.set(id("schedule.state"), Some(Value::Enum(3)));
        let d = evaluate(&p, PhaseKind::Trigger, &f);
        assert_eq!(d.rule, "otherwise");
        assert_eq!(
            d.verdict,
            Verdict::Skip {
                reason: "no rule matched"
            }
        );
    }

    #[test]
    fn absent_fact_makes_comparisons_false_even_negated() {
        let p = policy();
        let f = Facts::new();
        for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Ge] {
            assert!(!holds(
                &p,
                &compare("schedule.version", op, Value::Int(1)),
                &f
            ));
        }
        let not_in = cond(CondKind::InSet {
            term: Term::Fact(id("schedule.state")),
            negated: true,
            values: Box::new([Value::Enum(0)]),
        });
        assert!(!holds(&p, &not_in, &f));
        let not_range = cond(CondKind::InRange {
            term: Term::Fact(id("response.status")),
            negated: true,
            low: 200,
            high: 299,
        });
        assert!(!holds(&p, &not_range, &f));
        let negation = cond(CondKind::Not(Box::new(compare(
            "schedule.version",
            CmpOp::Eq,
            Value::Int(1),
        ))));
        assert!(holds(&p, &negation, &f));
        assert!(!holds(
            &p,
            &cond(CondKind::Exists(id("last_publish.at"))),
            &f
        ));
    }

    #[test]
    fn in_set_and_range_with_values() {
        let p = policy();
        let mut f = facts();
        f.set(id("response.status"), Some(Value::Int(299)));
        let set = |negated| {
            cond(CondKind::InSet {
                term: Term::Fact(id("schedule.state")),
                negated,
                values: Box::new([Value::Enum(0), Value::Enum(1)]),
            })
        };
        assert!(holds(&p, &set(false), &f));
        assert!(!holds(&p, &set(true), &f));
        assert_eq!(evaluate(&p, PhaseKind::Response, &f).verdict, Verdict::Done);
        f.set(id("response.status"), Some(Value::Int(300)));
        assert_eq!(
            evaluate(&p, PhaseKind::Response, &f).verdict,
            Verdict::Fail {
                reason: "unexpected response"
            }
        );
    }

    #[test]
    fn debounce_defers_until_fact_plus_offset() {
        let p = policy();
        let mut f = facts();
        f.set(
            id("last_publish.at"),
            Some(Value::Instant(at("2026-03-25T11:50:00Z"))),
        );
        assert_eq!(
            decide_trigger(&p, &f),
            (
                "debounce",
                Verdict::Defer {
                    until: at("2026-03-25T12:05:00Z")
                }
            )
        );
        f.set(
            id("last_publish.at"),
            Some(Value::Instant(at("2026-03-25T11:45:00Z"))),
        );
        assert_eq!(decide_trigger(&p, &f).0, "ready");
    }

    #[test]
    fn after_hours_defers_until_the_window_opens() {
        let p = policy();
        let mut f = facts();
        f.set(id("trigger.source"), Some(Value::Str("servicenow".into())));
        f.set(NOW, Some(Value::Instant(at("2026-03-27T21:00:00Z"))));
        // Friday 21:00 GMT: next opening Monday 07:00 BST (the clocks went forward Sunday).
        assert_eq!(
            decide_trigger(&p, &f),
            (
                "after_hours",
                Verdict::Defer {
                    until: at("2026-03-30T06:00:00Z")
                }
            )
        );
    }

    #[test]
    fn defer_without_its_instant_fails_with_a_reason() {
        let mut p = policy();
        p.trigger.rules.truncate(0);
        p.trigger.otherwise = CompiledAction::DeferUntilInstant(TermAction {
            fact: id("last_publish.at"),
            offset: SignedDuration::from_mins(15),
        });
        assert_eq!(
            evaluate(&p, PhaseKind::Trigger, &facts()).verdict,
            Verdict::Fail {
                reason: INSTANT_ABSENT
            }
        );
        p.trigger.otherwise = CompiledAction::DeferUntilWindow(WindowId(0));
        assert_eq!(
            evaluate(&p, PhaseKind::Trigger, &Facts::new()).verdict,
            Verdict::Fail { reason: NO_NOW }
        );
        p.windows[0].ranges.clear();
        assert_eq!(
            evaluate(&p, PhaseKind::Trigger, &facts()).verdict,
            Verdict::Fail {
                reason: WINDOW_NEVER_OPENS
            }
        );
    }

    #[test]
    fn retry_after_is_carried_when_given() {
        let p = policy();
        let mut f = facts();
        f.set(id("response.status"), Some(Value::Int(429)));
        let fallback = &p.backoffs[0];
        assert_eq!(
            evaluate(&p, PhaseKind::Response, &f).verdict,
            Verdict::BackoffRetryAfter {
                retry_after: None,
                fallback
            }
        );
        f.set(
            RETRY_AFTER,
            Some(Value::Duration(SignedDuration::from_secs(7))),
        );
        assert_eq!(
            evaluate(&p, PhaseKind::Response, &f).verdict,
            Verdict::BackoffRetryAfter {
                retry_after: Some(SignedDuration::from_secs(7)),
                fallback
            }
        );
    }
}
