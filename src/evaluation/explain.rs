//! `explain`: why a phase decided what it did.
//!
//! Every rule tried, in order, up to the one that decided; for each that did not match, the
//! smallest parts of its condition that were false and the fact values they saw (an absent
//! fact shown as absent). It asks the evaluator's own [`holds`] of each part, so the
//! explanation can never disagree with the decision.

use crate::evaluation::evaluator::{decide, decide_otherwise, holds, offset, since};
use crate::language::ast::{ActionKind, PhaseKind};
use crate::language::schema::FactId;
use crate::language::span::{LineCol, Span};
use crate::policy::decision::Verdict;
use crate::policy::facts::{Facts, NOW};
use crate::policy::{Cond, CondKind, Policy, Term};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::fmt::Write;

/// Why a phase decided what it did; owned, so it outlives the evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The policy's name.
    pub policy: String,
    /// The phase evaluated.
    pub phase: PhaseKind,
    /// The rules tried, in order, up to and including the deciding one.
    pub rules: Vec<RuleTrace>,
    /// What was decided.
    pub decision: DecisionRecord,
    /// Where the schedule's state came from.
    pub basis: StateBasis,
}

/// Where the schedule's state a decision saw came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum StateBasis {
    /// As given (a facts file, an embedder's facts).
    #[default]
    Given,
    /// The state the notification channel kept, without a read: learnt `since` (by a read
    /// or an event), the channel up without a gap since.
    Cached {
        /// When the state was learnt.
        since: Timestamp,
    },
}

/// One rule tried.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleTrace {
    /// The rule's name.
    pub rule: String,
    /// The whole rule.
    pub span: Span,
    /// Whether its condition held.
    pub matched: bool,
    /// Matched: the whole condition. Not matched: the smallest parts that were false.
    pub parts: Vec<Part>,
}

/// A part of a condition and the values it saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Part {
    /// The part's source text.
    pub span: Span,
    /// The facts (and values computed from them) it read, in order.
    pub seen: Vec<Seen>,
}

/// One value a condition read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Seen {
    /// A fact name, or what was computed (`since(last_publish.at)`, a window's name).
    pub name: String,
    /// The value as a rules file writes it; `None` when absent.
    pub value: Option<String>,
}

/// The decision, owned.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecisionRecord {
    /// The deciding rule, or `otherwise`.
    pub rule: String,
    /// Its span.
    pub span: Span,
    /// What to do.
    pub verdict: VerdictRecord,
}

/// An owned [`Verdict`], for explanations and JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum VerdictRecord {
    /// Publish the schedule.
    Publish,
    /// Do nothing.
    Skip {
        /// Why.
        reason: String,
    },
    /// Wait per a profile.
    Backoff {
        /// The profile's name.
        profile: String,
    },
    /// Wait the server's `Retry-After`, or per the profile without one.
    BackoffRetryAfter {
        /// The server's `Retry-After` (`7s`), when given.
        retry_after: Option<String>,
        /// The profile's name.
        fallback: String,
    },
    /// Re-evaluate at an instant.
    Defer {
        /// When.
        until: Timestamp,
        /// The same instant in the policy's time zone, for people.
        local: String,
    },
    /// Read the state again.
    Recheck,
    /// The cycle is finished.
    Done,
    /// Record a failure.
    Fail {
        /// Why.
        reason: String,
    },
}

/// Explain one phase's decision for `facts`.
pub fn explain(policy: &Policy, phase: PhaseKind, facts: &Facts) -> Explanation {
    let rules = policy.phase(phase);
    let mut traces = Vec::new();
    let mut decision = None;
    for rule in &rules.rules {
        let matched = holds(policy, &rule.condition, facts);
        let mut parts = Vec::new();
        if matched {
            parts.push(part(policy, &rule.condition, facts));
        } else {
            false_parts(policy, &rule.condition, facts, &mut parts);
        }
        traces.push(RuleTrace {
            rule: rule.name.clone(),
            span: rule.span,
            matched,
            parts,
        });
        if matched {
            decision = Some(decide(policy, &rule.action, &rule.name, rule.span, facts));
            break;
        }
    }
    let decision = decision.unwrap_or_else(|| decide_otherwise(policy, rules, facts));
    Explanation {
        policy: policy.name.clone(),
        phase,
        rules: traces,
        decision: DecisionRecord {
            rule: decision.rule.to_string(),
            span: decision.span,
            verdict: VerdictRecord::new(&decision.verdict, &policy.timezone),
        },
        basis: StateBasis::Given,
    }
}

impl VerdictRecord {
    /// The owned form of `verdict`; `zone` gives a deferral's local time.
    pub fn new(verdict: &Verdict<'_>, zone: &TimeZone) -> VerdictRecord {
        match *verdict {
            Verdict::Publish => VerdictRecord::Publish,
            Verdict::Skip { reason } => VerdictRecord::Skip {
                reason: reason.to_string(),
            },
            Verdict::Backoff { profile } => VerdictRecord::Backoff {
                profile: profile.name.clone(),
            },
            Verdict::BackoffRetryAfter {
                retry_after,
                fallback,
            } => VerdictRecord::BackoffRetryAfter {
                retry_after: retry_after.map(|d| format!("{d:#}")),
                fallback: fallback.name.clone(),
            },
            Verdict::Defer { until } => VerdictRecord::Defer {
                until,
                local: local_time(until, zone),
            },
            Verdict::Recheck => VerdictRecord::Recheck,
            Verdict::Done => VerdictRecord::Done,
            Verdict::Fail { reason } => VerdictRecord::Fail {
                reason: reason.to_string(),
            },
        }
    }

    /// The verdict as a person reads it: `defer until ...`, `skip "..."`.
    pub fn describe(&self) -> String {
        let (kind, argument) = match self {
            VerdictRecord::BackoffRetryAfter {
                retry_after: Some(after),
                fallback,
            } => {
                return format!(
                    "backoff {after} (the server's Retry-After; without one, profile {fallback})"
                );
            }
            VerdictRecord::BackoffRetryAfter {
                retry_after: None,
                fallback,
            } => return format!("backoff {fallback} (the server gave no Retry-After)"),
            VerdictRecord::Defer { until, local } => {
                let words = ActionKind::Defer.with_argument(Some(&until.to_string()));
                return format!("{words} ({local})");
            }
            VerdictRecord::Publish => (ActionKind::Publish, None),
            VerdictRecord::Skip { reason } => (ActionKind::Skip, Some(reason)),
            VerdictRecord::Backoff { profile } => (ActionKind::Backoff, Some(profile)),
            VerdictRecord::Recheck => (ActionKind::Recheck, None),
            VerdictRecord::Done => (ActionKind::Done, None),
            VerdictRecord::Fail { reason } => (ActionKind::Fail, Some(reason)),
        };
        kind.with_argument(argument.map(String::as_str))
    }
}

/// `t` as a wall clock in `zone` reads it: `Mon 2026-03-30 07:00 BST`.
fn local_time(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned_datetime(zone.clone())
        .strftime("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Push the smallest false parts of the false condition `cond`.
fn false_parts(policy: &Policy, cond: &Cond, facts: &Facts, out: &mut Vec<Part>) {
    match &cond.kind {
        CondKind::And(children) | CondKind::Or(children) => {
            for child in children.iter().filter(|c| !holds(policy, c, facts)) {
                false_parts(policy, child, facts, out);
            }
        }
        _ => out.push(part(policy, cond, facts)),
    }
}

/// `cond` and every value it read.
fn part(policy: &Policy, cond: &Cond, facts: &Facts) -> Part {
    let mut seen = Vec::new();
    read_cond(policy, cond, facts, &mut seen);
    Part {
        span: cond.span,
        seen,
    }
}

fn read_cond(policy: &Policy, cond: &Cond, facts: &Facts, seen: &mut Vec<Seen>) {
    match &cond.kind {
        CondKind::And(children) | CondKind::Or(children) => {
            for child in children.iter() {
                read_cond(policy, child, facts, seen);
            }
        }
        CondKind::Not(inner) => read_cond(policy, inner, facts, seen),
        CondKind::Compare { left, right, .. } => {
            read_term(left, facts, seen);
            read_term(right, facts, seen);
        }
        CondKind::InSet { term, .. } | CondKind::InRange { term, .. } => {
            read_term(term, facts, seen)
        }
        CondKind::InWindow { term, window, .. } => {
            read_term(term, facts, seen);
            let window = policy.window(*window);
            let Some(t) = term_instant(term, facts) else {
                return;
            };
            let state = if window.contains(t) { "open" } else { "closed" };
            let zone = window.timezone.iana_name().unwrap_or("its zone");
            let local = local_time(t, &window.timezone);
            note(
                seen,
                format!("window {}", window.name),
                Some(format!("{state} at {local} ({zone})")),
            );
        }
        CondKind::Exists(fact) => read_fact(*fact, facts, seen),
        CondKind::IsTrue(term) => read_term(term, facts, seen),
    }
}

fn read_term(term: &Term, facts: &Facts, seen: &mut Vec<Seen>) {
    match term {
        Term::Const(_) => {}
        Term::Fact(fact) => read_fact(*fact, facts, seen),
        Term::Since(fact) => {
            read_fact(NOW, facts, seen);
            read_fact(*fact, facts, seen);
            let value = since(*fact, facts).map(|d| format!("{d:#}"));
            note(seen, format!("since({})", fact.name()), value);
        }
        Term::Offset(fact, by) => {
            read_fact(*fact, facts, seen);
            let sign = if by.is_negative() { '-' } else { '+' };
            let value = offset(*fact, *by, facts).map(|t| t.to_string());
            note(
                seen,
                format!("{} {sign} {:#}", fact.name(), by.abs()),
                value,
            );
        }
    }
}

/// The instant a window test reads (`now`, or an offset instant).
fn term_instant(term: &Term, facts: &Facts) -> Option<Timestamp> {
    match term {
        Term::Fact(fact) => facts.instant(*fact),
        Term::Offset(fact, by) => offset(*fact, *by, facts),
        Term::Const(_) | Term::Since(_) => None,
    }
}

fn read_fact(fact: FactId, facts: &Facts, seen: &mut Vec<Seen>) {
    let value = facts.get(fact).map(|v| v.render(fact.def().ty));
    note(seen, fact.name().to_string(), value);
}

/// Record a value once, in the order first read.
fn note(seen: &mut Vec<Seen>, name: String, value: Option<String>) {
    if !seen.iter().any(|s| s.name == name) {
        seen.push(Seen { name, value });
    }
}

/// A span's source text on one line: runs of whitespace (line breaks included) become one space.
fn quote(span: Span, source: &str) -> String {
    span.text(source)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Explanation {
    /// The same explanation, saying where the schedule's state came from.
    pub fn on(mut self, basis: StateBasis) -> Explanation {
        self.basis = basis;
        self
    }

    /// The explanation for people (`publish-guard explain`); `source` is the rules file.
    pub fn render_human(&self, source: &str) -> String {
        let mut out = String::new();
        let line = |span: Span| LineCol::of(source, span.start).line;
        let _ = writeln!(
            out,
            "policy {:?}, on {}\n",
            self.policy,
            self.phase.keyword()
        );
        for trace in &self.rules {
            let (verdict, label) = if trace.matched {
                ("MATCH", "true")
            } else {
                ("no match", "false")
            };
            let _ = writeln!(
                out,
                "rule {}, line {}: {verdict}",
                trace.rule,
                line(trace.span)
            );
            for part in &trace.parts {
                let _ = writeln!(out, "  {label}: {}", quote(part.span, source));
                for seen in &part.seen {
                    let value = seen.value.as_deref().unwrap_or("absent");
                    let _ = writeln!(out, "    {} = {value}", seen.name);
                }
            }
        }
        if self.decision.rule == "otherwise" {
            let _ = writeln!(
                out,
                "otherwise, line {}: no rule matched",
                line(self.decision.span)
            );
        }
        let by = if self.decision.rule == "otherwise" {
            "otherwise".to_string()
        } else {
            format!("rule {}", self.decision.rule)
        };
        let _ = writeln!(
            out,
            "\ndecision: {}\n  by {by}, line {}",
            self.decision.verdict.describe(),
            line(self.decision.span)
        );
        if let StateBasis::Cached { since } = self.basis {
            let _ = writeln!(
                out,
                "  made without a read: on the state the notification channel kept, learnt at \
                 {since} and heard without a gap since"
            );
        }
        out
    }

    /// The explanation as JSON, each span given with its line, column and text.
    pub fn render_json(&self, source: &str) -> serde_json::Value {
        let rules: Vec<_> = self
            .rules
            .iter()
            .map(|t| JsonRule {
                rule: &t.rule,
                at: JsonSpan::new(t.span, source),
                matched: t.matched,
                parts: t
                    .parts
                    .iter()
                    .map(|p| JsonPart {
                        at: JsonSpan::new(p.span, source),
                        seen: &p.seen,
                    })
                    .collect(),
            })
            .collect();
        let json = JsonExplanation {
            policy: &self.policy,
            phase: self.phase,
            rules,
            decision: JsonDecision {
                rule: &self.decision.rule,
                at: JsonSpan::new(self.decision.span, source),
                verdict: &self.decision.verdict,
            },
            state: &self.basis,
        };
        serde_json::to_value(json).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Serialize)]
struct JsonExplanation<'a> {
    policy: &'a str,
    phase: PhaseKind,
    rules: Vec<JsonRule<'a>>,
    decision: JsonDecision<'a>,
    state: &'a StateBasis,
}

#[derive(Serialize)]
struct JsonRule<'a> {
    rule: &'a str,
    #[serde(flatten)]
    at: JsonSpan,
    matched: bool,
    parts: Vec<JsonPart<'a>>,
}

#[derive(Serialize)]
struct JsonPart<'a> {
    #[serde(flatten)]
    at: JsonSpan,
    seen: &'a [Seen],
}

#[derive(Serialize)]
struct JsonDecision<'a> {
    rule: &'a str,
    #[serde(flatten)]
    at: JsonSpan,
    verdict: &'a VerdictRecord,
}

/// A span as JSON readers want it: where, and what it says.
#[derive(Serialize)]
struct JsonSpan {
    line: usize,
    column: usize,
    text: String,
}

impl JsonSpan {
    fn new(span: Span, source: &str) -> JsonSpan {
        let at = LineCol::of(source, span.start);
        JsonSpan {
            line: at.line,
            column: at.column,
            text: quote(span, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::evaluator::evaluate;
    use crate::evaluation::evaluator::tests::{at, facts, id, policy};
    use crate::policy::facts::Value;

    fn seen(name: &str, value: Option<&str>) -> Seen {
        Seen {
            name: name.into(),
            value: value.map(String::from),
        }
    }

    #[test]
    fn traces_every_rule_up_to_the_deciding_one() {
        let p = policy();
        let mut f = facts();
        f.set(id("schedule.state"), Some(Value::Enum(1)));
        let e = explain(&p, PhaseKind::Trigger, &f);
        let names: Vec<_> = e
            .rules
            .iter()
            .map(|t| (t.rule.as_str(), t.matched))
            .collect();
        assert_eq!(
            names,
            [
                ("duplicate", false),
                ("published", false),
                ("in_progress", true)
            ]
        );
        assert_eq!(
            e.decision.verdict,
            VerdictRecord::Backoff {
                profile: "conflict".into()
            }
        );
        assert_eq!(
            e.rules[1].parts[0].seen,
            [seen("schedule.state", Some("publishing"))]
        );
    }

    #[test]
    fn shows_absent_facts_and_what_was_computed_from_them() {
        let p = policy();
        let e = explain(&p, PhaseKind::Trigger, &facts());
        let debounce = e.rules.iter().find(|t| t.rule == "debounce").unwrap();
        assert!(!debounce.matched);
        assert_eq!(
            debounce.parts[0].seen,
            [
                seen("now", Some("2026-03-25T12:00:00Z")),
                seen("last_publish.at", None),
                seen("since(last_publish.at)", None),
            ]
        );
        assert_eq!(
            e.decision.rule,
            evaluate(&p, PhaseKind::Trigger, &facts()).rule
        );
    }

    #[test]
    fn an_and_reports_only_its_false_parts() {
        let p = policy();
        let mut f = facts();
        f.set(id("trigger.source"), Some(Value::Str("servicenow".into())));
        let e = explain(&p, PhaseKind::Trigger, &f);
        let after_hours = e.rules.iter().find(|t| t.rule == "after_hours").unwrap();
        assert_eq!(after_hours.parts.len(), 1);
        assert_eq!(
            after_hours.parts[0].seen,
            [
                seen("now", Some("2026-03-25T12:00:00Z")),
                seen(
                    "window business_hours",
                    Some("open at Wed 2026-03-25 12:00 GMT (Europe/London)")
                ),
            ]
        );
    }

    #[test]
    fn a_deferral_is_also_given_in_local_time() {
        let p = policy();
        let mut f = facts();
        f.set(id("trigger.source"), Some(Value::Str("servicenow".into())));
        f.set(NOW, Some(Value::Instant(at("2026-03-28T22:00:00Z"))));
        let e = explain(&p, PhaseKind::Trigger, &f);
        assert_eq!(
            e.decision.verdict.describe(),
            "defer until 2026-03-30T06:00:00Z (Mon 2026-03-30 07:00 BST)"
        );
    }
}
