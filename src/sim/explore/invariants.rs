//! The promises a run must keep, each named: checked on the [`Trace`] of every run.

use crate::api::notify::cache::Learnt;
use crate::language::ast::{ActionKind, PhaseKind};
use crate::policy::Policy;
use crate::runner::RunnerConfig;
use crate::runner::event::{CycleCause, EventKind, Outcome};
use crate::runner::facts::ScheduleState;
use crate::runner::kept::After;
use crate::sim::engine::{Trace, TracedEvent};
use crate::sim::scenario::Scenario;
use jiff::{SignedDuration, Timestamp};
use std::collections::{HashMap, HashSet};
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
    /// ends with one outcome; across a restart, a trigger whose cycle the restart cut is fed
    /// again exactly once, one whose cycle decided from the kept state at most once (until a
    /// read settles it), and one already accounted never.
    TriggerAccountedOnce,
    /// A state we show never contradicts the model at that instant.
    ShownStateMatchesModel,
    /// A change followed by a trigger is published, unless the policy skipped it on purpose
    /// or an injected outage or error rate made the cycle fail.
    ChangePublished,
    /// Our API calls stay within a bound per trigger and change.
    CallsBounded,
    /// A publish the policy decided shows published within the bound the scenario allows
    /// (its processing, latency, the policy's backoffs at their caps, the limiter), unless
    /// someone changed the schedule since or an injected outage or throttle lasts; every
    /// cycle ends within the follow timeout and that bound; and a decision made from a kept
    /// state that missed a change is read again within the staleness bound and that bound.
    PublishedInTime,
    /// A state decided from without a read was learnt since the channel's last gap and
    /// within the age the runner trusts.
    NoStaleCachedDecision,
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
            Invariant::NoStaleCachedDecision => "no_stale_cached_decision",
            Invariant::PublishedInTime => "published_in_time",
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

/// The first broken promise of a run under `policy`, if any.
pub fn check(scenario: &Scenario, policy: &Policy, trace: &Trace) -> Option<Violation> {
    let coalesce = scenario.runner.coalesce;
    single_write_in_flight(trace, coalesce)
        .or_else(|| no_conflict_of_our_making(trace, coalesce))
        .or_else(|| trigger_accounted_once(trace))
        .or_else(|| shown_state_matches_model(trace))
        .or_else(|| no_stale_cached_decision(scenario, trace))
        .or_else(|| change_published(scenario, trace))
        .or_else(|| calls_bounded(scenario, trace))
        .or_else(|| published_in_time(scenario, policy, trace))
        .or_else(|| outdated_decision_confirmed(scenario, policy, trace))
}

fn violation(invariant: Invariant, schedule: u32, at: Timestamp, detail: String) -> Violation {
    Violation {
        invariant,
        schedule,
        at,
        detail,
    }
}

/// Without coalescing every trigger has a runner of its own, as independent webhook handlers
/// would: the promise is each one's (`who` tells them apart); with it, the one process's,
/// restarts included.
fn who(coalesce: bool, worker: u32) -> u32 {
    if coalesce { 0 } else { worker }
}

fn single_write_in_flight(trace: &Trace, coalesce: bool) -> Option<Violation> {
    let mut in_flight: HashMap<(u32, u32), Timestamp> = HashMap::new();
    for call in trace.calls.iter().filter(|c| c.publish.is_some()) {
        let key = (call.schedule, who(coalesce, call.worker));
        if let Some(until) = in_flight.get(&key)
            && call.at < *until
        {
            return Some(violation(
                Invariant::SingleWriteInFlight,
                call.schedule,
                call.at,
                format!("a second write went out while the first was unanswered until {until}"),
            ));
        }
        in_flight.insert(key, call.answered_at);
    }
    None
}

fn no_conflict_of_our_making(trace: &Trace, coalesce: bool) -> Option<Violation> {
    let mut last_read: HashMap<(u32, u32), Timestamp> = HashMap::new();
    for call in &trace.calls {
        let me = who(coalesce, call.worker);
        let Some(version) = call.publish else {
            last_read.insert((call.schedule, me), call.at);
            continue;
        };
        if call.status != Some(409) {
            continue;
        }
        let since = last_read.get(&(call.schedule, me)).copied();
        let between = |at: Timestamp| since.is_none_or(|r| r <= at) && at <= call.at;
        let someone_else = trace
            .changes
            .iter()
            .any(|(at, s)| *s == call.schedule && between(*at))
            // Without coalescing, another handler's write is someone else's.
            || trace.calls.iter().any(|c| {
                c.schedule == call.schedule
                    && c.publish.is_some()
                    && who(coalesce, c.worker) != me
                    && between(c.at)
            });
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
    // Keys: `(worker, schedule, trigger)` and `(worker, schedule, cycle)`.
    let mut taken_up: HashMap<(u32, u32, u64), (u64, u32)> = HashMap::new();
    let mut received: Vec<(u32, u32, u64, Timestamp, bool)> = Vec::new();
    let mut open: HashMap<(u32, u32, u64), Timestamp> = HashMap::new();
    let mut ended: HashMap<(u32, u32, u64), After> = HashMap::new();
    // Cycles deciding from the channel's kept state, no read of their own since.
    let mut from_kept: HashSet<(u32, u32, u64)> = HashSet::new();
    for TracedEvent {
        schedule: s,
        worker: w,
        event,
    } in &trace.events
    {
        let (s, w) = (*s, *w);
        match (&event.kind, event.cycle) {
            (
                EventKind::TriggerReceived {
                    trigger, duplicate, ..
                },
                _,
            ) => {
                received.push((w, s, *trigger, event.at, *duplicate));
            }
            (EventKind::TriggerCoalesced { trigger, .. }, Some(c))
            | (
                EventKind::CycleStarted {
                    cause: CycleCause::Trigger { trigger },
                },
                Some(c),
            ) => {
                let entry = taken_up.entry((w, s, *trigger)).or_insert((c, 0));
                entry.1 += 1;
            }
            _ => {}
        }
        match (&event.kind, event.cycle) {
            (EventKind::CycleStarted { .. }, Some(c))
                if open.insert((w, s, c), event.at).is_some() =>
            {
                return Some(violation(
                    Invariant::TriggerAccountedOnce,
                    s,
                    event.at,
                    format!("cycle {c} started twice"),
                ));
            }
            (EventKind::Outcome { outcome, .. }, Some(c)) => {
                if open.remove(&(w, s, c)).is_none() {
                    return Some(violation(
                        Invariant::TriggerAccountedOnce,
                        s,
                        event.at,
                        format!("cycle {c} ended without having started, or twice"),
                    ));
                }
                let kept = from_kept.remove(&(w, s, c));
                ended.insert((w, s, c), After::of(outcome, kept));
            }
            (EventKind::StateKnown { learnt, .. }, Some(c)) if *learnt != Learnt::Follow => {
                from_kept.insert((w, s, c));
            }
            (
                EventKind::StateRead {
                    version: Some(_), ..
                },
                Some(c),
            ) => {
                from_kept.remove(&(w, s, c));
            }
            _ => {}
        }
    }
    for &(w, s, trigger, at, _) in &received {
        let times = taken_up.get(&(w, s, trigger)).map_or(0, |t| t.1);
        if times != 1 {
            return Some(violation(
                Invariant::TriggerAccountedOnce,
                s,
                at,
                format!("trigger {trigger} was taken up {times} times, not once"),
            ));
        }
    }
    // Across restarts: what each fed again, against what it cut.
    let mut fed_again: HashMap<(u32, u64), u32> = HashMap::new();
    for restart in &trace.restarts {
        for (before, _) in &restart.fed_again {
            *fed_again.entry(*before).or_default() += 1;
        }
    }
    let ended_workers: Vec<u32> = trace
        .restarts
        .iter()
        .flat_map(|r| r.ended.clone())
        .collect();
    for &(w, s, trigger, at, duplicate) in &received {
        let again = fed_again.get(&(w, trigger)).copied().unwrap_or(0);
        let cycle = taken_up.get(&(w, s, trigger)).map_or(0, |t| t.0);
        let outcome = ended.get(&(w, s, cycle));
        let detail = match outcome {
            // Decided from the kept state: fed again at most once, to be read.
            Some(After::Unconfirmed) if again > 1 => format!(
                "trigger {trigger}, its cycle {cycle} decided from the kept state, was fed again {again} times"
            ),
            // Answered for good: feeding it again would take it up twice.
            Some(After::Done | After::Failed { .. }) if again > 0 => format!(
                "trigger {trigger} was fed again after a restart though its cycle {cycle} had ended"
            ),
            // Its cycle was cut by the restart: it must be carried on, once.
            None if ended_workers.contains(&w) && !duplicate && again != 1 => format!(
                "trigger {trigger}, in cycle {cycle} when the process restarted, was fed again {again} times, not once"
            ),
            _ => continue,
        };
        return Some(violation(Invariant::TriggerAccountedOnce, s, at, detail));
    }
    if let Some(((w, s, c), at)) = open
        .into_iter()
        .filter(|((w, _, _), _)| !ended_workers.contains(w))
        .min_by_key(|(_, at)| *at)
    {
        return Some(violation(
            Invariant::TriggerAccountedOnce,
            s,
            at,
            format!("cycle {c} of worker {w} never ended"),
        ));
    }
    None
}

fn shown_state_matches_model(trace: &Trace) -> Option<Violation> {
    let mut reads: HashMap<(u32, u32), Vec<&crate::sim::engine::TracedCall>> = HashMap::new();
    for call in trace.calls.iter().filter(|c| c.publish.is_none()).rev() {
        reads
            .entry((call.schedule, call.worker))
            .or_default()
            .push(call);
    }
    for TracedEvent {
        schedule,
        worker,
        event,
    } in &trace.events
    {
        let EventKind::StateRead { state, version, .. } = &event.kind else {
            continue;
        };
        let Some(call) = reads.get_mut(&(*schedule, *worker)).and_then(Vec::pop) else {
            continue;
        };
        // A write an earlier process decided, its answer not kept, is taken for running for
        // a grace after the restart: the runner says so on purpose.
        let unconfirmed = trace.restarts.iter().any(|r| {
            r.at <= event.at
                && event.at.duration_since(r.at) < crate::runner::write::UNCONFIRMED_GRACE
        });
        if *state == ScheduleState::Publishing && !call.model_publishing && !unconfirmed {
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
        // The processes that took a trigger after the change: without coalescing, an older
        // handler's cycle may end later and say nothing of the change.
        let takers: Vec<u32> = trace
            .events
            .iter()
            .filter(|e| {
                e.schedule == s
                    && e.event.at >= last_change
                    && matches!(e.event.kind, EventKind::TriggerReceived { .. })
            })
            .map(|e| e.worker)
            .collect();
        if takers.is_empty() {
            continue;
        }
        // A duplicate delivery carries no change of its own: skipping it drops nothing.
        let mut last = None;
        let (mut unknown, mut duplicate) = (false, false);
        // The version a cached state showed the deciding cycle, when it decided without a read.
        let mut cached: Option<i64> = None;
        for e in trace
            .events
            .iter()
            .filter(|e| e.schedule == s && takers.contains(&e.worker))
            .map(|e| &e.event)
        {
            match &e.kind {
                EventKind::TriggerReceived { duplicate: d, .. } => duplicate = *d,
                EventKind::StateRead { state, .. } => {
                    unknown = *state == ScheduleState::Unknown;
                    cached = None;
                }
                EventKind::StateKnown { version, .. } => {
                    unknown = false;
                    cached = Some(*version);
                }
                EventKind::Outcome { outcome, .. } => {
                    let stale = cached.filter(|v| v < version && !duplicate);
                    last = Some((e.at, outcome.clone(), unknown && !duplicate, stale));
                }
                _ => {}
            }
        }
        let Some((at, outcome, unknown, stale)) = last else {
            continue;
        };
        let dropped = match &outcome {
            Outcome::Skipped { .. } => unknown || stale.is_some(),
            Outcome::Failed { .. } | Outcome::Unauthorized { .. } => !faults,
            Outcome::Done | Outcome::DryRun { .. } | Outcome::Confirmed { .. } => false,
            Outcome::Published { .. } | Outcome::LandedThenChanged { .. } => true,
            Outcome::Deferred { .. } => true,
        };
        if dropped {
            let why = match (unknown, stale, &outcome) {
                (true, _, _) => "a failed read dropped it".to_string(),
                (_, Some(known), Outcome::Skipped { .. }) => format!(
                    "a skip decided from a cached state at version {known} dropped it (the event of the change was lost)"
                ),
                _ => format!("the last cycle ended {outcome:?}"),
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
            .filter(|e| {
                e.schedule == s && matches!(e.event.kind, EventKind::TriggerReceived { .. })
            })
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

fn no_stale_cached_decision(scenario: &Scenario, trace: &Trace) -> Option<Violation> {
    let notifications = scenario.api.notifications.as_ref()?;
    for e in &trace.events {
        let EventKind::StateKnown {
            learnt,
            learnt_at,
            version,
            ..
        } = &e.event.kind
        else {
            continue;
        };
        // The follow read that ended the cycle before is a read, not something the channel kept.
        if *learnt == Learnt::Follow {
            continue;
        }
        let at = e.event.at;
        let gap = notifications
            .drops
            .iter()
            .find(|(from, until)| *from < at && learnt_at < until);
        let detail = if let Some((from, _)) = gap {
            format!(
                "decided from version {version} learnt at {learnt_at}, before the channel dropped at {from}"
            )
        } else if at.duration_since(*learnt_at) > notifications.max_age {
            format!(
                "decided from version {version} learnt at {learnt_at}, older than the {:#} trusted",
                notifications.max_age
            )
        } else {
            continue;
        };
        return Some(violation(
            Invariant::NoStaleCachedDecision,
            e.schedule,
            at,
            detail,
        ));
    }
    None
}

/// How long a publish the policy decided may take to show published: the processing, every
/// backoff of the policy waited out at its cap, a minute of the limiter's spacing, and the
/// latency of a few dozen calls; an injected outage adds its length (and one still lasting
/// within the bound excuses the publish, as does a 429 answered then).
pub fn publish_bound(scenario: &Scenario, policy: &Policy) -> SignedDuration {
    let backoffs = policy
        .backoffs
        .iter()
        .map(|b| {
            b.max
                .saturating_mul(i32::try_from(b.attempts).unwrap_or(i32::MAX))
        })
        .fold(SignedDuration::ZERO, SignedDuration::saturating_add);
    let outages = scenario
        .api
        .outages
        .iter()
        .map(|o| o.until.duration_since(o.from))
        .fold(SignedDuration::ZERO, SignedDuration::saturating_add);
    scenario
        .api
        .processing
        .saturating_add(backoffs)
        .saturating_add(outages)
        .saturating_add(SignedDuration::from_mins(1))
        .saturating_add(scenario.api.latency.saturating_mul(40))
}

/// Whether an injected fault lasts into the window from `at` to `by`: an outage (it may
/// fail the cycle outright), or a throttle (a 429 answered within it).
fn faulted(scenario: &Scenario, trace: &Trace, at: Timestamp, by: Timestamp) -> bool {
    let outage = scenario
        .api
        .outages
        .iter()
        .any(|o| o.from <= by && at < o.until);
    let throttled = trace
        .calls
        .iter()
        .any(|c| c.status == Some(429) && at <= c.at && c.at <= by);
    outage || throttled
}

fn published_in_time(scenario: &Scenario, policy: &Policy, trace: &Trace) -> Option<Violation> {
    // Random server errors may fail a cycle at any step: its failure names the reason.
    if scenario.api.error_rate > 0.0 {
        return None;
    }
    let bound = publish_bound(scenario, policy);
    let follow = RunnerConfig::default().follow_timeout;
    let end = trace.end;
    let mut started: HashMap<(u32, u32, u64), Timestamp> = HashMap::new();
    for TracedEvent {
        schedule: s,
        worker: w,
        event,
    } in &trace.events
    {
        let (s, at) = (*s, event.at);
        let by = at.saturating_add(bound).unwrap_or(at);
        match (&event.kind, event.cycle) {
            (EventKind::CycleStarted { .. }, Some(c)) => {
                started.insert((*w, s, c), at);
            }
            (EventKind::Outcome { .. }, Some(c)) => {
                if let Some(from) = started.remove(&(*w, s, c))
                    && at.duration_since(from) > follow.saturating_add(bound)
                {
                    return Some(violation(
                        Invariant::PublishedInTime,
                        s,
                        from,
                        format!(
                            "cycle {c} ran {:#}, past the follow timeout and the {:#} bound",
                            at.duration_since(from)
                                .round(jiff::Unit::Second)
                                .unwrap_or_default(),
                            bound.round(jiff::Unit::Second).unwrap_or_default()
                        ),
                    ));
                }
            }
            (
                EventKind::Decision {
                    phase: PhaseKind::Trigger,
                    action: ActionKind::Publish,
                    ..
                },
                _,
            ) => {
                // The version it decided on: the one since the last change before it. A
                // publish already landing (its answer still on the way) counts.
                let since = trace
                    .changes
                    .iter()
                    .filter(|(c, cs)| *cs == s && *c <= at)
                    .map(|(c, _)| *c)
                    .max()
                    .unwrap_or(scenario.start);
                let published = trace
                    .published
                    .iter()
                    .any(|(p, ps)| *ps == s && since <= *p && *p <= by);
                let changed = trace
                    .changes
                    .iter()
                    .any(|(c, cs)| *cs == s && at < *c && *c <= by);
                // A run that stopped first cannot tell.
                if !published && !changed && !faulted(scenario, trace, at, by) && by < end {
                    return Some(violation(
                        Invariant::PublishedInTime,
                        s,
                        at,
                        format!(
                            "a publish decided here did not show published within {:#}",
                            bound.round(jiff::Unit::Second).unwrap_or_default()
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// How long a decision made from the channel's kept state may stand on a state that missed
/// a change: in a world whose channel loses events (at random, or in a drop), the age the
/// runner trusts a state for (its confirm read comes at most that long after the decision,
/// see [`crate::runner::confirm`]); where none is lost, nothing (a late event brings the
/// read forward at once, within the publish bound).
pub fn staleness_bound(scenario: &Scenario) -> SignedDuration {
    match &scenario.api.notifications {
        Some(n) if n.loss_per_mille > 0 || !n.drops.is_empty() => n.max_age,
        _ => SignedDuration::ZERO,
    }
}

/// Liveness of decisions made without a read: one made from a kept state that missed a
/// person's change (its event lost or late) is followed, within the staleness bound and the
/// publish bound, by a read or an accepted write of the same process, or the schedule shows
/// published; unless the cycle deferred (its deferral decides again), an injected outage or
/// throttle lasts into that window, or the process ended first.
fn outdated_decision_confirmed(
    scenario: &Scenario,
    policy: &Policy,
    trace: &Trace,
) -> Option<Violation> {
    if scenario.api.error_rate > 0.0 || scenario.api.notifications.is_none() {
        return None;
    }
    let window = staleness_bound(scenario).saturating_add(publish_bound(scenario, policy));
    let deferred: std::collections::HashSet<(u32, u32, u64)> = trace
        .events
        .iter()
        .filter_map(|e| match (&e.event.kind, e.event.cycle) {
            (
                EventKind::Outcome {
                    outcome: Outcome::Deferred { .. },
                    ..
                },
                Some(c),
            ) => Some((e.worker, e.schedule, c)),
            _ => None,
        })
        .collect();
    for e in &trace.events {
        let EventKind::StateKnown {
            learnt, learnt_at, ..
        } = &e.event.kind
        else {
            continue;
        };
        let (s, w, at) = (e.schedule, e.worker, e.event.at);
        let deferring = e.event.cycle.is_some_and(|c| deferred.contains(&(w, s, c)));
        if *learnt == Learnt::Follow || deferring {
            continue;
        }
        let Some(missed) = trace
            .changes
            .iter()
            .filter(|(c, cs)| *cs == s && learnt_at < c && *c <= at)
            .map(|(c, _)| *c)
            .min()
        else {
            continue;
        };
        let by = at.saturating_add(window).unwrap_or(at);
        let confirmed = trace.events.iter().any(|later| {
            later.schedule == s
                && later.worker == w
                && at < later.event.at
                && later.event.at <= by
                && match &later.event.kind {
                    EventKind::StateRead { version, .. } => version.is_some(),
                    EventKind::PublishCall { status, .. } => {
                        status.is_some_and(|st| (200..300).contains(&st))
                    }
                    _ => false,
                }
        });
        let published = trace
            .published
            .iter()
            .any(|(p, ps)| *ps == s && missed <= *p && *p <= by);
        let ended = trace
            .restarts
            .iter()
            .any(|r| at < r.at && r.at <= by && r.ended.contains(&w));
        let excused = faulted(scenario, trace, at, by) || ended;
        if !confirmed && !published && !excused && by < trace.end {
            return Some(violation(
                Invariant::PublishedInTime,
                s,
                at,
                format!(
                    "decided without a read on a state that missed the change at {missed}, and not read again within {:#}",
                    window.round(jiff::Unit::Second).unwrap_or_default()
                ),
            ));
        }
    }
    None
}
