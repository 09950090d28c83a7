//! The promises a run must keep, each named: checked on the [`Trace`] of every run.

use crate::runner::event::{CycleCause, EventKind, Outcome};
use crate::runner::facts::ScheduleState;
use crate::sim::engine::Trace;
use crate::sim::scenario::Scenario;
use jiff::Timestamp;
use std::collections::HashMap;
use std::fmt;

/// API calls allowed per schedule for each trigger or change it saw (plus one): more is a
/// polling storm. A cycle reads, writes, follows for up to 15 minutes and may back off.
const CALLS_PER_CAUSE: usize = 60;

/// A promise of the runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// Never two of our writes in flight for one schedule.
    SingleWriteInFlight,
    /// A 409 answers our write only when someone else changed the schedule (or started a
    /// publish) between our read and that write.
    NoConflictOfOurMaking,
    /// Every trigger starts a cycle or is coalesced into one, exactly once, and every cycle
    /// ends with one outcome.
    TriggerAccountedOnce,
    /// A state we show never contradicts the model at that instant.
    ShownStateMatchesModel,
    /// A change followed by a trigger is published, unless the policy skipped it on purpose
    /// or an injected outage or error rate made the cycle fail.
    ChangePublished,
    /// Our API calls stay within a bound per trigger and change.
    CallsBounded,
}

impl Invariant {
    /// Its name, as reports and tests use it.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::SingleWriteInFlight => "single_write_in_flight",
            Invariant::NoConflictOfOurMaking => "no_conflict_of_our_making",
            Invariant::TriggerAccountedOnce => "trigger_accounted_once",
            Invariant::ShownStateMatchesModel => "shown_state_matches_model",
            Invariant::ChangePublished => "change_published",
            Invariant::CallsBounded => "calls_bounded",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken promise: which, where, when, and what was seen.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Violation {
    /// Which promise.
    pub invariant: Invariant,
    /// The schedule (index into the scenario's schedules).
    pub schedule: u32,
    /// When it was seen broken.
    pub at: Timestamp,
    /// What was seen, in words.
    pub detail: String,
}

/// The first broken promise of a run, if any.
pub fn check(scenario: &Scenario, trace: &Trace) -> Option<Violation> {
    single_write_in_flight(trace)
        .or_else(|| no_conflict_of_our_making(trace))
        .or_else(|| trigger_accounted_once(trace))
        .or_else(|| shown_state_matches_model(trace))
        .or_else(|| change_published(scenario, trace))
        .or_else(|| calls_bounded(scenario, trace))
}

fn violation(invariant: Invariant, schedule: u32, at: Timestamp, detail: String) -> Violation {
    Violation {
        invariant,
        schedule,
        at,
        detail,
    }
}

fn single_write_in_flight(trace: &Trace) -> Option<Violation> {
    let mut in_flight: HashMap<u32, Timestamp> = HashMap::new();
    for call in trace.calls.iter().filter(|c| c.publish.is_some()) {
        if let Some(until) = in_flight.get(&call.schedule)
            && call.at < *until
        {
            return Some(violation(
                Invariant::SingleWriteInFlight,
                call.schedule,
                call.at,
                format!("a second write went out while the first was unanswered until {until}"),
            ));
        }
        in_flight.insert(call.schedule, call.answered_at);
    }
    None
}

fn no_conflict_of_our_making(trace: &Trace) -> Option<Violation> {
    let mut last_read: HashMap<u32, Timestamp> = HashMap::new();
    for call in &trace.calls {
        let Some(version) = call.publish else {
            last_read.insert(call.schedule, call.at);
            continue;
        };
        if call.status != Some(409) {
            continue;
        }
        let since = last_read.get(&call.schedule).copied();
        let someone_else = trace
            .changes
            .iter()
            .any(|(at, s)| *s == call.schedule && since.is_none_or(|r| r <= *at) && *at <= call.at);
        if !someone_else {
            let why = if call.model_publishing {
                "a publish of ours was still running"
            } else {
                "the schedule was already published or our version was stale"
            };
            return Some(violation(
                Invariant::NoConflictOfOurMaking,
                call.schedule,
                call.at,
                format!(
                    "our write at version {version} met 409 ({why}) though nobody else changed the schedule since our read"
                ),
            ));
        }
    }
    None
}

fn trigger_accounted_once(trace: &Trace) -> Option<Violation> {
    let mut accounted: HashMap<(u32, u64), u32> = HashMap::new();
    let mut received: Vec<(u32, u64, Timestamp)> = Vec::new();
    let mut open: HashMap<(u32, u64), Timestamp> = HashMap::new();
    for (schedule, event) in &trace.events {
        let s = *schedule;
        match &event.kind {
            EventKind::TriggerReceived { trigger, .. } => received.push((s, *trigger, event.at)),
            EventKind::TriggerCoalesced { trigger, .. }
            | EventKind::CycleStarted {
                cause: CycleCause::Trigger { trigger },
            } => *accounted.entry((s, *trigger)).or_default() += 1,
            _ => {}
        }
        match (&event.kind, event.cycle) {
            (EventKind::CycleStarted { .. }, Some(c))
                if open.insert((s, c), event.at).is_some() =>
            {
                return Some(violation(
                    Invariant::TriggerAccountedOnce,
                    s,
                    event.at,
                    format!("cycle {c} started twice"),
                ));
            }
            (EventKind::Outcome { .. }, Some(c)) if open.remove(&(s, c)).is_none() => {
                return Some(violation(
                    Invariant::TriggerAccountedOnce,
                    s,
                    event.at,
                    format!("cycle {c} ended without having started, or twice"),
                ));
            }
            _ => {}
        }
    }
    for (s, trigger, at) in received {
        let times = accounted.get(&(s, trigger)).copied().unwrap_or(0);
        if times != 1 {
            return Some(violation(
                Invariant::TriggerAccountedOnce,
                s,
                at,
                format!("trigger {trigger} was taken up {times} times, not once"),
            ));
        }
    }
    if let Some(((s, c), at)) = open.into_iter().min_by_key(|(_, at)| *at) {
        return Some(violation(
            Invariant::TriggerAccountedOnce,
            s,
            at,
            format!("cycle {c} never ended"),
        ));
    }
    None
}

fn shown_state_matches_model(trace: &Trace) -> Option<Violation> {
    let mut reads: HashMap<u32, Vec<&crate::sim::engine::TracedCall>> = HashMap::new();
    for call in trace.calls.iter().filter(|c| c.publish.is_none()).rev() {
        reads.entry(call.schedule).or_default().push(call);
    }
    for (schedule, event) in &trace.events {
        let EventKind::StateRead { state, version, .. } = &event.kind else {
            continue;
        };
        let Some(call) = reads.get_mut(schedule).and_then(Vec::pop) else {
            continue;
        };
        if *state == ScheduleState::Publishing && !call.model_publishing {
            let at = version.map_or_else(String::new, |v| format!(" at version {v}"));
            return Some(violation(
                Invariant::ShownStateMatchesModel,
                *schedule,
                event.at,
                format!("shown `publishing`{at} while the model ran no publish"),
            ));
        }
    }
    None
}

fn change_published(scenario: &Scenario, trace: &Trace) -> Option<Violation> {
    let faults = !scenario.api.outages.is_empty() || scenario.api.error_rate > 0.0;
    for (index, (published, version)) in trace.end_states.iter().enumerate() {
        let s = u32::try_from(index).unwrap_or(u32::MAX);
        if *published {
            continue;
        }
        let last_change = trace
            .changes
            .iter()
            .filter(|(_, c)| *c == s)
            .map(|(at, _)| *at)
            .max()
            .unwrap_or(scenario.start);
        let triggered = trace.events.iter().any(|(c, e)| {
            *c == s && e.at >= last_change && matches!(e.kind, EventKind::TriggerReceived { .. })
        });
        if !triggered {
            continue;
        }
        // A duplicate delivery carries no change of its own: skipping it drops nothing.
        let mut last = None;
        let (mut unknown, mut duplicate) = (false, false);
        for (_, e) in trace.events.iter().filter(|(c, _)| *c == s) {
            match &e.kind {
                EventKind::TriggerReceived { duplicate: d, .. } => duplicate = *d,
                EventKind::StateRead { state, .. } => unknown = *state == ScheduleState::Unknown,
                EventKind::Outcome { outcome, .. } => {
                    last = Some((e.at, outcome.clone(), unknown && !duplicate));
                }
                _ => {}
            }
        }
        let Some((at, outcome, unknown)) = last else {
            continue;
        };
        let dropped = match &outcome {
            Outcome::Skipped { .. } => unknown,
            Outcome::Failed { .. } | Outcome::Unauthorized { .. } => !faults,
            Outcome::Done | Outcome::DryRun { .. } => false,
            Outcome::Published { .. } | Outcome::LandedThenChanged { .. } => true,
            Outcome::Deferred { .. } => true,
        };
        if dropped {
            let why = if unknown {
                "a failed read dropped it".to_string()
            } else {
                format!("the last cycle ended {outcome:?}")
            };
            return Some(violation(
                Invariant::ChangePublished,
                s,
                at,
                format!("version {version} was left unpublished after a trigger: {why}"),
            ));
        }
    }
    None
}

fn calls_bounded(scenario: &Scenario, trace: &Trace) -> Option<Violation> {
    for s in 0..scenario.schedules.len() {
        let s = u32::try_from(s).unwrap_or(u32::MAX);
        let causes = trace
            .events
            .iter()
            .filter(|(c, e)| *c == s && matches!(e.kind, EventKind::TriggerReceived { .. }))
            .count()
            + trace.changes.iter().filter(|(_, c)| *c == s).count()
            + 1;
        let calls: Vec<_> = trace.calls.iter().filter(|c| c.schedule == s).collect();
        if calls.len() > causes * CALLS_PER_CAUSE {
            let at = calls.last().map_or(scenario.start, |c| c.at);
            return Some(violation(
                Invariant::CallsBounded,
                s,
                at,
                format!(
                    "{} API calls for {causes} triggers and changes (at most {CALLS_PER_CAUSE} each)",
                    calls.len()
                ),
            ));
        }
    }
    None
}
