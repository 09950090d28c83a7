//! Expectations a scenario carries (`[expect]`), and how a run is held against them.

use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;
use crate::sim::report::{Summary, Total};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use toml::Spanned;

/// What a run should show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expectations {
    /// Totals from the summary, in file order.
    pub totals: Vec<(Total, u64)>,
    /// The decisions given triggers should get.
    pub decisions: Vec<ExpectedDecision>,
}

impl Expectations {
    /// Whether the scenario expects anything at all.
    pub fn is_empty(&self) -> bool {
        self.totals.is_empty() && self.decisions.is_empty()
    }
}

/// The decision one trigger should get.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedDecision {
    /// The trigger's delivery id.
    pub trigger: String,
    /// Which arrival of that delivery id (1 for the first; redeliveries count up).
    pub occurrence: usize,
    /// The decision keyword (`publish`, `skip`, `defer`, `backoff`, `fail`, `coalesced`).
    pub decision: String,
    /// The deciding rule, when the expectation names one.
    pub rule: Option<String>,
}

/// What the run decided for a trigger: the first decision of the evaluation it took part in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TriggerOutcome {
    /// The decision keyword, or `coalesced` when it was folded into another evaluation.
    pub decision: String,
    /// The deciding rule (empty when coalesced).
    pub rule: String,
}

/// One expectation the run did not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What was expected of (a total's name, or a trigger).
    pub what: String,
    /// As the scenario says.
    pub expected: String,
    /// As the run showed.
    pub actual: String,
}

/// The keywords `decision` may take.
const DECISIONS: &[&str] = &[
    "publish",
    "skip",
    "backoff",
    "defer",
    "recheck",
    "fail",
    "coalesced",
];

/// `[expect]` as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    triggers: Option<u64>,
    publishes: Option<u64>,
    skips: Option<u64>,
    coalesced: Option<u64>,
    backoffs: Option<u64>,
    deferrals: Option<u64>,
    conflicts: Option<u64>,
    throttled: Option<u64>,
    server_errors: Option<u64>,
    api_calls: Option<u64>,
    failures: Option<u64>,
    #[serde(default)]
    decision: Vec<RawDecision>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDecision {
    trigger: Spanned<String>,
    #[serde(default = "first")]
    occurrence: Spanned<usize>,
    decision: Spanned<String>,
    rule: Option<String>,
}

fn first() -> Spanned<usize> {
    Spanned::new(0..0, 1)
}

fn span_of<T>(value: &Spanned<T>) -> Span {
    let r = value.span();
    Span::new(r.start, r.end)
}

/// Turn `[expect]` into [`Expectations`]; `deliveries` are the delivery ids the scenario's
/// explicit triggers carry, so a misspelt one is caught at load time.
pub fn validate(
    raw: RawExpect,
    deliveries: &[&str],
    diagnostics: &mut Vec<Diagnostic>,
) -> Expectations {
    let totals = [
        (Total::Triggers, raw.triggers),
        (Total::Publishes, raw.publishes),
        (Total::Skips, raw.skips),
        (Total::Coalesced, raw.coalesced),
        (Total::Backoffs, raw.backoffs),
        (Total::Deferrals, raw.deferrals),
        (Total::Conflicts, raw.conflicts),
        (Total::Throttled, raw.throttled),
        (Total::ServerErrors, raw.server_errors),
        (Total::ApiCalls, raw.api_calls),
        (Total::Failures, raw.failures),
    ]
    .into_iter()
    .filter_map(|(total, value)| value.map(|v| (total, v)))
    .collect();
    let mut decisions = Vec::with_capacity(raw.decision.len());
    for d in raw.decision {
        let seen = deliveries
            .iter()
            .filter(|id| **id == d.trigger.get_ref())
            .count();
        if seen == 0 {
            diagnostics.push(Diagnostic::new(
                Code::BadScenario,
                span_of(&d.trigger),
                format!("no [[trigger]] has delivery id `{}`", d.trigger.get_ref()),
            ));
        } else if *d.occurrence.get_ref() == 0 || *d.occurrence.get_ref() > seen {
            diagnostics.push(Diagnostic::new(
                Code::BadScenario,
                span_of(&d.occurrence),
                format!(
                    "delivery `{}` arrives {seen} time(s); occurrence must be 1..={seen}",
                    d.trigger.get_ref()
                ),
            ));
        }
        if !DECISIONS.contains(&d.decision.get_ref().as_str()) {
            diagnostics.push(
                Diagnostic::new(
                    Code::BadScenario,
                    span_of(&d.decision),
                    format!("`{}` is not a decision", d.decision.get_ref()),
                )
                .with_help(format!("expected one of: {}", DECISIONS.join(", "))),
            );
        }
        decisions.push(ExpectedDecision {
            trigger: d.trigger.into_inner(),
            occurrence: d.occurrence.into_inner(),
            decision: d.decision.into_inner(),
            rule: d.rule,
        });
    }
    Expectations { totals, decisions }
}

/// Hold a run's summary and per-trigger outcomes (by delivery id, in arrival order)
/// against the expectations; empty when every one is met.
pub fn check(
    expect: &Expectations,
    summary: &Summary,
    outcomes: &BTreeMap<String, Vec<TriggerOutcome>>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for &(total, expected) in &expect.totals {
        let actual = summary.total(total);
        if actual != expected {
            out.push(Mismatch {
                what: total.name().to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    for e in &expect.decisions {
        let actual = outcomes
            .get(&e.trigger)
            .and_then(|all| all.get(e.occurrence.saturating_sub(1)));
        let what = if e.occurrence == 1 {
            format!("trigger {}", e.trigger)
        } else {
            format!("trigger {} (arrival {})", e.trigger, e.occurrence)
        };
        let expected = match &e.rule {
            Some(rule) => format!("{} by rule {rule}", e.decision),
            None => e.decision.clone(),
        };
        let matches = actual.is_some_and(|a| {
            a.decision == e.decision && e.rule.as_ref().is_none_or(|r| *r == a.rule)
        });
        if !matches {
            let actual = match actual {
                None => "no decision (the run never evaluated it)".to_string(),
                Some(a) if a.rule.is_empty() => a.decision.clone(),
                Some(a) => format!("{} by rule {}", a.decision, a.rule),
            };
            out.push(Mismatch {
                what,
                expected,
                actual,
            });
        }
    }
    out
}

/// The mismatches as a readable diff: `-` what the scenario expects, `+` what happened.
pub fn render(mismatches: &[Mismatch]) -> String {
    let width = mismatches.iter().map(|m| m.what.len()).max().unwrap_or(0);
    let mut out = String::new();
    for m in mismatches {
        let _ = writeln!(out, "  - {:width$}  {}", m.what, m.expected);
        let _ = writeln!(out, "  + {:width$}  {}", m.what, m.actual);
    }
    out
}
