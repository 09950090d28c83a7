//! What a simulation reports: the timeline (one row per step) and the summary, rendered
//! as a table for people or as JSON for tools.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What kind of step a row records; the SVG picks its mark from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// A trigger arrived and started an evaluation.
    Trigger,
    /// A trigger arrived during a cycle and was folded into it.
    Coalesced,
    /// The policy decided to publish.
    Publish,
    /// The policy decided to skip.
    Skip,
    /// The policy decided to back off (or the runner waited out a `Retry-After`).
    Backoff,
    /// The policy deferred to a later instant.
    Defer,
    /// Any other decision (`recheck`, `done`).
    Decision,
    /// A read of the schedule.
    Read,
    /// A publish call the API accepted.
    Accepted,
    /// The API answered 409.
    Conflict,
    /// The API answered 429.
    Throttled,
    /// The API answered 5xx or not at all, or an update operation ended unpublished.
    ServerError,
    /// A cycle ended in a recorded failure.
    Failure,
    /// A person edited or published the schedule in the UI.
    Person,
    /// A publish operation finished and the schedule is published.
    Published,
}

/// One step of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// When it happened on the virtual clock.
    pub at: Timestamp,
    /// Which schedule (index into [`Report::schedules`]).
    pub schedule: u32,
    /// The trigger it belongs to (its delivery id or `#n`), when one does.
    pub trigger: String,
    /// The decision, or what happened.
    pub decision: String,
    /// The rule that decided.
    pub rule: String,
    /// The API call made.
    pub call: String,
    /// The API's answer.
    pub answer: String,
    /// The kind of step.
    pub mark: Mark,
}

/// Median, 95th percentile and maximum of a set of durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Half are at or below this.
    pub median: SignedDuration,
    /// 95 % are at or below this.
    pub p95: SignedDuration,
    /// The longest.
    pub max: SignedDuration,
}

impl Percentiles {
    /// The percentiles of `values` (sorted in place); `None` when empty.
    pub fn of(values: &mut [SignedDuration]) -> Option<Percentiles> {
        values.sort_unstable();
        let last = values.len().checked_sub(1)?;
        // Nearest-rank: the smallest value with at least p% of the values at or below it.
        let rank = |p: usize| {
            values
                .get((values.len() * p).div_ceil(100).max(1) - 1)
                .copied()
        };
        Some(Percentiles {
            median: rank(50)?,
            p95: rank(95)?,
            max: *values.get(last)?,
        })
    }
}

/// The totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Triggers that arrived.
    pub triggers: u64,
    /// Publish calls the API accepted.
    pub publishes: u64,
    /// Skip decisions, by reason.
    pub skips: BTreeMap<String, u64>,
    /// Triggers folded into an evaluation already under way.
    pub coalesced: u64,
    /// Backoff decisions (including waits on `Retry-After`).
    pub backoffs: u64,
    /// Defer decisions.
    pub deferrals: u64,
    /// 409 answers.
    pub conflicts: u64,
    /// 429 answers.
    pub throttled: u64,
    /// 5xx answers and calls without an answer.
    pub server_errors: u64,
    /// API calls by kind (`read`, `publish`).
    pub api_calls: BTreeMap<String, u64>,
    /// Cycles that ended in a recorded failure.
    pub failures: u64,
    /// From a trigger's arrival to the schedule showing published, for triggers whose
    /// evaluation led to a publish.
    pub latency: Option<Percentiles>,
    /// Total time cycles spent waiting (backoffs, deferrals, `Retry-After`, follow reads),
    /// summed over every wait: waits of different cycles and schedules overlap.
    pub waiting: SignedDuration,
    /// How many waits `waiting` sums.
    pub waits: u64,
    /// How the cycles (evaluations of a schedule) began.
    pub cycles: CycleStarts,
    /// How the cycles ended.
    pub ended: CycleEnds,
    /// Coalesced triggers whose further evaluation had not started when the run stopped.
    pub coalesced_pending: u64,
    /// Deferred evaluations whose instant had not come when the run stopped.
    pub deferred_at_end: Vec<DeferredAtEnd>,
}

/// How cycles began; every trigger either starts one or is coalesced into the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CycleStarts {
    /// Started by a trigger that found no cycle under way.
    pub by_trigger: u64,
    /// The one further evaluation for triggers coalesced during a cycle.
    pub for_coalesced: u64,
    /// Started when a deferral ran out.
    pub after_deferral: u64,
    /// Started to confirm by a read what the channel's kept state decided (shown when any).
    #[serde(skip_serializing_if = "is_zero")]
    pub to_confirm: u64,
}

/// Whether a count is zero (left out of the JSON).
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CycleStarts {
    /// All cycles started.
    pub fn total(&self) -> u64 {
        self.by_trigger + self.for_coalesced + self.after_deferral + self.to_confirm
    }
}

/// How cycles ended, one count per outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CycleEnds {
    /// The schedule showed published, or our publish landed and it changed since.
    pub published: u64,
    /// The policy skipped.
    pub skipped: u64,
    /// The policy deferred to a later instant (a new cycle starts then).
    pub deferred: u64,
    /// A recorded failure.
    pub failed: u64,
    /// `done` without a write of ours to follow.
    pub done: u64,
    /// A dry run's decision.
    pub dry_run: u64,
    /// A confirm read showed the decisions made without a read missed nothing (shown when any).
    #[serde(skip_serializing_if = "is_zero")]
    pub confirmed: u64,
}

impl CycleEnds {
    /// All cycles that ended.
    pub fn total(&self) -> u64 {
        self.published
            + self.skipped
            + self.deferred
            + self.failed
            + self.done
            + self.dry_run
            + self.confirmed
    }
}

/// A deferred evaluation still waiting when the run stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeferredAtEnd {
    /// Which schedule (index into [`Report::schedules`]).
    pub schedule: u32,
    /// The cycle that deferred.
    pub cycle: u64,
    /// The triggers whose evaluation waits.
    pub triggers: u64,
    /// When it would have run.
    pub until: Timestamp,
}

/// A total that `[expect]` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Total {
    /// [`Summary::triggers`]
    Triggers,
    /// [`Summary::publishes`]
    Publishes,
    /// All skips, whatever the reason.
    Skips,
    /// [`Summary::coalesced`]
    Coalesced,
    /// [`Summary::backoffs`]
    Backoffs,
    /// [`Summary::deferrals`]
    Deferrals,
    /// [`Summary::conflicts`]
    Conflicts,
    /// [`Summary::throttled`]
    Throttled,
    /// [`Summary::server_errors`]
    ServerErrors,
    /// All API calls.
    ApiCalls,
    /// [`Summary::failures`]
    Failures,
}

impl Total {
    /// The key used in `[expect]` and the summary.
    pub fn name(self) -> &'static str {
        match self {
            Total::Triggers => "triggers",
            Total::Publishes => "publishes",
            Total::Skips => "skips",
            Total::Coalesced => "coalesced",
            Total::Backoffs => "backoffs",
            Total::Deferrals => "deferrals",
            Total::Conflicts => "conflicts",
            Total::Throttled => "throttled",
            Total::ServerErrors => "server_errors",
            Total::ApiCalls => "api_calls",
            Total::Failures => "failures",
        }
    }
}

impl Summary {
    /// The value of one total.
    pub fn total(&self, total: Total) -> u64 {
        match total {
            Total::Triggers => self.triggers,
            Total::Publishes => self.publishes,
            Total::Skips => self.skips.values().sum(),
            Total::Coalesced => self.coalesced,
            Total::Backoffs => self.backoffs,
            Total::Deferrals => self.deferrals,
            Total::Conflicts => self.conflicts,
            Total::Throttled => self.throttled,
            Total::ServerErrors => self.server_errors,
            Total::ApiCalls => self.api_calls.values().sum(),
            Total::Failures => self.failures,
        }
    }
}

/// A whole run: what ran, every step, and the totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The policy's name.
    pub policy: String,
    /// The seed the run used.
    pub seed: u64,
    /// Whether triggers were coalesced.
    pub coalesce: bool,
    /// When the clock started.
    pub start: Timestamp,
    /// When the last step happened.
    pub end: Timestamp,
    /// Schedule ids, indexed by [`Row::schedule`].
    pub schedules: Vec<String>,
    /// Every step, in the order it happened (empty when the timeline was not kept).
    pub timeline: Vec<Row>,
    /// The totals.
    pub summary: Summary,
}

/// A duration as people read it: `1m 5.2s`, `350ms`.
pub fn human(d: SignedDuration) -> String {
    let millis = d.as_millis();
    if millis.abs() < 1000 {
        return format!("{millis}ms");
    }
    let secs = millis / 1000;
    let tenths = (millis % 1000) / 100;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let s = if tenths == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{tenths}s")
    };
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m {s}"),
        (h, m) => format!("{h}h {m}m {s}"),
    }
}

/// An instant as the timeline shows it (UTC, to the millisecond).
pub fn clock(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

impl Report {
    /// The report as aligned text: the timeline, then the summary.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {}  policy {}  seed {}  coalescing {}",
            self.scenario,
            self.policy,
            self.seed,
            if self.coalesce { "on" } else { "off" }
        );
        if !self.timeline.is_empty() {
            out.push('\n');
            out.push_str(&self.timeline_table());
        }
        out.push('\n');
        out.push_str(&self.summary_table());
        out
    }

    fn timeline_table(&self) -> String {
        let header = [
            "time", "schedule", "trigger", "decision", "rule", "api call", "answer",
        ];
        let cells: Vec<[String; 7]> = self
            .timeline
            .iter()
            .map(|r| {
                [
                    clock(r.at),
                    self.schedule_name(r.schedule).to_string(),
                    r.trigger.clone(),
                    r.decision.clone(),
                    r.rule.clone(),
                    r.call.clone(),
                    r.answer.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, row: &[&str]| {
            let mut text = String::new();
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let _ = write!(text, "{cell:w$}");
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, &header);
        for row in &cells {
            let refs: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&mut out, &refs);
        }
        out
    }

    fn schedule_name(&self, index: u32) -> &str {
        self.schedules
            .get(index as usize)
            .map_or("?", String::as_str)
    }

    /// The totals, each with what it counts: triggers add up to how they were handled,
    /// cycles to how they began and how they ended.
    fn summary_table(&self) -> String {
        let s = &self.summary;
        let mut rows: Vec<[String; 3]> = Vec::new();
        let mut row = |key: &str, value: String, note: String| {
            rows.push([key.to_string(), value, note]);
        };
        let started_cycle = s.triggers.saturating_sub(s.coalesced);
        row(
            "triggers",
            s.triggers.to_string(),
            format!(
                "arrivals = {started_cycle} started a cycle + {} coalesced into the one after the cycle under way",
                s.coalesced
            ),
        );
        let c = &s.cycles;
        let confirm = if c.to_confirm > 0 {
            format!(
                " + {} to confirm a decision made without a read",
                c.to_confirm
            )
        } else {
            String::new()
        };
        row(
            "cycles",
            c.total().to_string(),
            format!(
                "evaluations = {} started by a trigger + {} for coalesced triggers + {} after a deferral{confirm}",
                c.by_trigger, c.for_coalesced, c.after_deferral
            ),
        );
        let e = &s.ended;
        let unfinished = c.total().saturating_sub(e.total());
        row(
            "  published",
            e.published.to_string(),
            "ended with the schedule published".into(),
        );
        let by_reason = if s.skips.is_empty() {
            ""
        } else {
            ", by reason:"
        };
        row(
            "  skipped",
            e.skipped.to_string(),
            format!("ended by skip{by_reason}"),
        );
        for (reason, n) in &s.skips {
            row(&format!("    {reason}"), n.to_string(), String::new());
        }
        row(
            "  deferred",
            e.deferred.to_string(),
            "ended by defer (a schedule's deferrals merge into one later cycle)".into(),
        );
        row(
            "  failed",
            e.failed.to_string(),
            "ended in a recorded failure".into(),
        );
        row(
            "  done",
            e.done.to_string(),
            "ended by done, with no write of ours to follow".into(),
        );
        if e.dry_run > 0 {
            row(
                "  dry run",
                e.dry_run.to_string(),
                "ended by a dry run's decision".into(),
            );
        }
        if e.confirmed > 0 {
            row(
                "  confirmed",
                e.confirmed.to_string(),
                "ended by a confirm read: the decisions made without a read missed nothing".into(),
            );
        }
        row(
            "  unfinished",
            unfinished.to_string(),
            "still under way when the run stopped".into(),
        );
        row("left at end", String::new(), self.at_end());
        row(
            "publishes",
            s.publishes.to_string(),
            "publish calls the API accepted".into(),
        );
        row(
            "backoffs",
            s.backoffs.to_string(),
            "backoff waits within cycles (Retry-After included)".into(),
        );
        row("409 conflicts", s.conflicts.to_string(), "answers".into());
        row("429 throttled", s.throttled.to_string(), "answers".into());
        row(
            "5xx / no answer",
            s.server_errors.to_string(),
            "answers, and calls that got none".into(),
        );
        let calls: u64 = s.api_calls.values().sum();
        row("api calls", calls.to_string(), String::new());
        for (kind, n) in &s.api_calls {
            row(&format!("  {kind}"), n.to_string(), String::new());
        }
        let latency = s.latency.map_or("-".to_string(), |p| {
            format!(
                "median {}  p95 {}  max {}",
                human(p.median),
                human(p.p95),
                human(p.max)
            )
        });
        row(
            "trigger to published",
            latency,
            "per trigger whose cycle published: from its arrival to the schedule showing published"
                .into(),
        );
        row(
            "time spent waiting",
            human(s.waiting),
            format!(
                "summed over {} waits of all cycles, which overlap (first to last step: {})",
                s.waits,
                human(self.end.duration_since(self.start))
            ),
        );
        // Counts line up; a longer value (the latency, the waiting time) pushes its note on.
        let width = |i: usize, most: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .filter(|&w| w <= most)
                .max()
                .unwrap_or(0)
        };
        let (keys, values) = (width(0, usize::MAX), width(1, 6));
        let mut out = String::from("summary\n");
        for [k, v, note] in rows {
            let line = format!("  {k:keys$}  {v:values$}  {note}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// What the run left undone when it stopped.
    fn at_end(&self) -> String {
        let s = &self.summary;
        let mut parts: Vec<String> = self
            .summary
            .deferred_at_end
            .iter()
            .map(|d| {
                format!(
                    "{} on {} deferred until {}",
                    triggers(d.triggers),
                    self.schedule_name(d.schedule),
                    clock(d.until)
                )
            })
            .collect();
        if s.coalesced_pending > 0 {
            parts.push(format!(
                "{} coalesced, not yet evaluated",
                triggers(s.coalesced_pending)
            ));
        }
        if parts.is_empty() {
            "nothing deferred, no coalesced trigger waiting".to_string()
        } else {
            parts.join("; ")
        }
    }

    /// The report as pretty-printed JSON (instants RFC 3339, durations in milliseconds).
    pub fn json(&self) -> String {
        let value = serde_json::json!({
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "coalesce": self.coalesce,
            "start": self.start,
            "end": self.end,
            "timeline": self.timeline.iter().map(|r| serde_json::json!({
                "at": r.at,
                "schedule": self.schedule_name(r.schedule),
                "trigger": r.trigger,
                "decision": r.decision,
                "rule": r.rule,
                "call": r.call,
                "answer": r.answer,
                "mark": r.mark,
            })).collect::<Vec<_>>(),
            "summary": summary_json(&self.summary, &self.schedules),
        });
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn summary_json(s: &Summary, schedule_names: &[String]) -> serde_json::Value {
    let ms = |d: SignedDuration| d.as_millis() as i64;
    serde_json::json!({
        "triggers": s.triggers,
        "publishes": s.publishes,
        "skips": s.skips,
        "coalesced": s.coalesced,
        "backoffs": s.backoffs,
        "deferrals": s.deferrals,
        "conflicts": s.conflicts,
        "throttled": s.throttled,
        "server_errors": s.server_errors,
        "api_calls": s.api_calls,
        "failures": s.failures,
        "latency_ms": s.latency.map(|p| serde_json::json!({
            "median": ms(p.median), "p95": ms(p.p95), "max": ms(p.max),
        })),
        "waiting_ms": ms(s.waiting),
        "waits": s.waits,
        "cycles": s.cycles,
        "ended": s.ended,
        "coalesced_pending": s.coalesced_pending,
        "deferred_at_end": s.deferred_at_end.iter().map(|d| serde_json::json!({
            "schedule": schedule_names.get(d.schedule as usize),
            "cycle": d.cycle,
            "triggers": d.triggers,
            "until": d.until,
        })).collect::<Vec<_>>(),
    })
}

/// `1 trigger`, `3 triggers`.
pub fn triggers(n: u64) -> String {
    if n == 1 {
        "1 trigger".to_string()
    } else {
        format!("{n} triggers")
    }
}
