//! Turning the runner's events (and the simulator's own happenings: a person's actions, an
//! operation finishing) into timeline rows, totals, per-trigger outcomes and rule coverage.

use crate::event::{CycleCause, Event, EventKind, Outcome, WaitReason};
use crate::sim::expect::TriggerOutcome;
use crate::sim::report::{Mark, Percentiles, Row, Summary, clock, human};
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which cycle: the worker (one runner, or one per trigger without coalescing), the
/// schedule and the machine's cycle id.
type CycleKey = (u32, u32, u64);

/// What the recorder knows about a trigger when the runner names it.
#[derive(Clone, Debug)]
pub struct TriggerInfo {
    /// The timeline's label for it.
    pub label: String,
    /// Whether `[expect]` may ask about it (it has a delivery id in the scenario).
    pub tracked: bool,
}

/// What a finished run recorded.
#[derive(Debug)]
pub struct Recorded {
    /// The timeline rows (empty when not kept).
    pub rows: Vec<Row>,
    /// The totals.
    pub summary: Summary,
    /// Outcomes of tracked triggers by delivery id, in arrival order.
    pub outcomes: BTreeMap<String, Vec<TriggerOutcome>>,
    /// `(phase, rule)` of every rule that decided.
    pub decided: BTreeSet<(String, String)>,
}

/// Everything a run records.
#[derive(Debug, Default)]
pub struct Recorder {
    keep_timeline: bool,
    /// The timeline rows, when kept.
    pub rows: Vec<Row>,
    /// The totals so far.
    pub summary: Summary,
    /// Outcomes of tracked triggers by delivery id, in arrival order.
    pub outcomes: BTreeMap<String, Vec<TriggerOutcome>>,
    /// `(phase, rule)` of every rule that decided.
    pub decided: BTreeSet<(String, String)>,
    latencies: Vec<SignedDuration>,
    /// Arrival instants of the triggers each cycle answers.
    waiting_triggers: HashMap<CycleKey, Vec<Timestamp>>,
    /// Arrivals carried by a deferral to the cycle it starts.
    deferred_triggers: HashMap<(u32, u32), Vec<Timestamp>>,
    /// The tracked trigger that started a cycle, until the cycle's first decision.
    deciding: HashMap<CycleKey, String>,
    /// The timeline's label of each open cycle.
    cycle_labels: HashMap<CycleKey, String>,
    /// The trigger named by the last `trigger_received` per worker and schedule.
    last_trigger: HashMap<(u32, u32), (TriggerInfo, Timestamp)>,
}

impl Recorder {
    /// A recorder that keeps the timeline rows, or only the totals.
    pub fn new(keep_timeline: bool) -> Self {
        Recorder {
            keep_timeline,
            ..Recorder::default()
        }
    }

    fn row(&mut self, at: Timestamp, schedule: u32, mark: Mark, cells: [String; 5]) {
        if self.keep_timeline {
            let [trigger, decision, rule, call, answer] = cells;
            self.rows.push(Row {
                at,
                schedule,
                trigger,
                decision,
                rule,
                call,
                answer,
                mark,
            });
        }
    }

    fn cycle_label(&self, key: CycleKey) -> String {
        self.cycle_labels
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("cycle {}", key.2))
    }

    /// A person's action in the UI, and what it did.
    pub fn person(&mut self, at: Timestamp, schedule: u32, what: String) {
        self.row(
            at,
            schedule,
            Mark::Person,
            [
                String::new(),
                what,
                String::new(),
                String::new(),
                String::new(),
            ],
        );
    }

    /// An update operation finished: the schedule is published.
    pub fn settled(&mut self, at: Timestamp, schedule: u32, version: i64) {
        self.row(
            at,
            schedule,
            Mark::Published,
            [
                String::new(),
                String::new(),
                String::new(),
                "operation complete".into(),
                format!("published v{version}"),
            ],
        );
    }

    /// A trigger is about to be handed to worker `worker`: its `trigger_received` event
    /// comes next and is labelled with this.
    pub fn arriving(&mut self, worker: u32, schedule: u32, info: TriggerInfo, at: Timestamp) {
        self.last_trigger.insert((worker, schedule), (info, at));
    }

    /// One of the runner's events, from worker `worker` about schedule `schedule`.
    pub fn event(&mut self, worker: u32, schedule: u32, event: Event) {
        let at = event.at;
        let key = |cycle: u64| (worker, schedule, cycle);
        let cycle = event.cycle.unwrap_or(0);
        match event.kind {
            EventKind::TriggerReceived {
                source,
                event: name,
                duplicate,
                ..
            } => {
                self.summary.triggers += 1;
                let label = self
                    .last_trigger
                    .get(&(worker, schedule))
                    .map_or_else(String::new, |(i, _)| i.label.clone());
                let what = match name {
                    Some(name) => format!("{label} {source}/{name}"),
                    None => format!("{label} {source}"),
                };
                let decision = if duplicate {
                    "arrived (duplicate)"
                } else {
                    "arrived"
                };
                self.row(
                    at,
                    schedule,
                    Mark::Trigger,
                    [
                        what,
                        decision.into(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ],
                );
            }
            EventKind::TriggerCoalesced { into_cycle, .. } => {
                self.summary.coalesced += 1;
                if let Some((info, arrived)) = self.last_trigger.get(&(worker, schedule)) {
                    let (info, arrived) = (info.clone(), *arrived);
                    self.waiting_triggers
                        .entry(key(into_cycle))
                        .or_default()
                        .push(arrived);
                    if info.tracked {
                        self.outcomes
                            .entry(info.label.clone())
                            .or_default()
                            .push(TriggerOutcome {
                                decision: "coalesced".into(),
                                rule: String::new(),
                            });
                    }
                }
                if let Some(last) = self.rows.last_mut().filter(|r| r.mark == Mark::Trigger) {
                    last.decision = format!("coalesced into cycle {into_cycle}");
                    last.mark = Mark::Coalesced;
                }
            }
            EventKind::CycleStarted { cause } => {
                let label = match cause {
                    CycleCause::Trigger { .. } => {
                        let (info, arrived) = self
                            .last_trigger
                            .get(&(worker, schedule))
                            .cloned()
                            .unwrap_or((
                                TriggerInfo {
                                    label: String::new(),
                                    tracked: false,
                                },
                                at,
                            ));
                        self.waiting_triggers
                            .entry(key(cycle))
                            .or_default()
                            .push(arrived);
                        if info.tracked {
                            self.deciding.insert(key(cycle), info.label.clone());
                        }
                        info.label
                    }
                    CycleCause::Coalesced { triggers } => format!("{triggers} coalesced"),
                    CycleCause::Deferral { deferred_cycle } => {
                        if let Some(list) = self.deferred_triggers.remove(&(worker, schedule)) {
                            self.waiting_triggers
                                .entry(key(cycle))
                                .or_default()
                                .extend(list);
                        }
                        format!("deferred (cycle {deferred_cycle})")
                    }
                };
                self.cycle_labels.insert(key(cycle), label);
            }
            EventKind::StateRead {
                status,
                error,
                state,
                version,
                purpose,
                ..
            } => {
                self.call("read");
                let (mark, answer) = match (status, version) {
                    (Some(s @ 200..=299), Some(v)) => (Mark::Read, format!("{s} {state} v{v}")),
                    (Some(s), _) => (self.status_mark(s), s.to_string()),
                    (None, _) => {
                        self.summary.server_errors += 1;
                        (Mark::ServerError, error.unwrap_or_default())
                    }
                };
                let call = match purpose {
                    crate::event::ReadPurpose::Evaluate => "read",
                    crate::event::ReadPurpose::Follow => "read (follow)",
                };
                let label = self.cycle_label(key(cycle));
                self.row(
                    at,
                    schedule,
                    mark,
                    [label, String::new(), String::new(), call.into(), answer],
                );
            }
            EventKind::Decision {
                phase,
                rule,
                action,
                detail,
            } => {
                if phase == "trigger"
                    && let Some(label) = self.deciding.remove(&key(cycle))
                {
                    self.outcomes
                        .entry(label)
                        .or_default()
                        .push(TriggerOutcome {
                            decision: action.clone(),
                            rule: rule.clone(),
                        });
                }
                let mark = match action.as_str() {
                    "publish" => Mark::Publish,
                    "skip" => {
                        *self
                            .summary
                            .skips
                            .entry(detail.clone().unwrap_or_default())
                            .or_default() += 1;
                        Mark::Skip
                    }
                    "backoff" => Mark::Backoff,
                    "defer" => {
                        self.summary.deferrals += 1;
                        Mark::Defer
                    }
                    "fail" => Mark::Failure,
                    _ => Mark::Decision,
                };
                let text = match &detail {
                    Some(d) if action == "skip" || action == "fail" => format!("{action} \"{d}\""),
                    Some(d) if action == "defer" => format!("defer until {}", short(d)),
                    Some(d) => format!("{action} {d}"),
                    None => action.clone(),
                };
                let text = if phase == "response" {
                    format!("on response: {text}")
                } else {
                    text
                };
                self.decided.insert((phase, rule.clone()));
                let label = self.cycle_label(key(cycle));
                self.row(
                    at,
                    schedule,
                    mark,
                    [label, text, rule, String::new(), String::new()],
                );
            }
            EventKind::PublishCall {
                version,
                status,
                error,
                retry_after,
                operation,
                operation_id,
                ..
            } => {
                self.call("publish");
                let (mark, answer) = match (status, operation) {
                    (Some(s @ 200..=299), Some(op)) => {
                        self.summary.publishes += 1;
                        let id = operation_id.unwrap_or_default();
                        (Mark::Accepted, format!("{s} {op:?} {id}"))
                    }
                    (Some(s), _) => {
                        let mark = self.status_mark(s);
                        let answer = match retry_after {
                            Some(after) => format!("{s} retry after {}", human(after)),
                            None => s.to_string(),
                        };
                        (mark, answer)
                    }
                    (None, _) => {
                        self.summary.server_errors += 1;
                        (Mark::ServerError, error.unwrap_or_default())
                    }
                };
                let label = self.cycle_label(key(cycle));
                self.row(
                    at,
                    schedule,
                    mark,
                    [
                        label,
                        String::new(),
                        String::new(),
                        format!("publish v{version}"),
                        answer,
                    ],
                );
            }
            EventKind::Wait {
                reason,
                until,
                delay,
                profile,
                ..
            } => {
                self.summary.waiting += delay.duration;
                let text = match reason {
                    WaitReason::Backoff => {
                        self.summary.backoffs += 1;
                        let by = if delay.retry_after.is_some() {
                            "retry-after".to_string()
                        } else {
                            profile.unwrap_or_default()
                        };
                        format!("wait {} ({by})", human(delay.duration))
                    }
                    WaitReason::Follow => format!("wait {} (follow)", human(delay.duration)),
                    WaitReason::Defer => format!("wait until {}", clock(until)),
                };
                let label = self.cycle_label(key(cycle));
                self.row(
                    at,
                    schedule,
                    Mark::Decision,
                    [label, text, String::new(), String::new(), String::new()],
                );
            }
            EventKind::Outcome { outcome, .. } => {
                let waiting = self
                    .waiting_triggers
                    .remove(&key(cycle))
                    .unwrap_or_default();
                let (mark, text) = match &outcome {
                    Outcome::Published { version } => {
                        self.latencies
                            .extend(waiting.iter().map(|t| at.duration_since(*t)));
                        (Mark::Decision, format!("= published v{version}"))
                    }
                    Outcome::Skipped { .. } => (Mark::Decision, "= skipped".to_string()),
                    Outcome::Deferred { until } => {
                        self.deferred_triggers
                            .entry((worker, schedule))
                            .or_default()
                            .extend(waiting);
                        (Mark::Decision, format!("= deferred to {}", clock(*until)))
                    }
                    Outcome::Done => (Mark::Decision, "= done".to_string()),
                    Outcome::DryRun { action } => (Mark::Decision, format!("= dry run: {action}")),
                    Outcome::Failed { reason } => {
                        self.summary.failures += 1;
                        (Mark::Failure, format!("= failed: {reason}"))
                    }
                };
                let label = self.cycle_label(key(cycle));
                self.cycle_labels.remove(&key(cycle));
                self.deciding.remove(&key(cycle));
                self.row(
                    at,
                    schedule,
                    mark,
                    [label, text, String::new(), String::new(), String::new()],
                );
            }
        }
    }

    fn call(&mut self, kind: &str) {
        *self.summary.api_calls.entry(kind.to_string()).or_default() += 1;
    }

    fn status_mark(&mut self, status: u16) -> Mark {
        match status {
            409 => {
                self.summary.conflicts += 1;
                Mark::Conflict
            }
            429 => {
                self.summary.throttled += 1;
                Mark::Throttled
            }
            500.. => {
                self.summary.server_errors += 1;
                Mark::ServerError
            }
            _ => Mark::Read,
        }
    }

    /// Everything recorded, with the latency percentiles filled in.
    pub fn finish(mut self) -> Recorded {
        self.summary.latency = Percentiles::of(&mut self.latencies);
        Recorded {
            rows: self.rows,
            summary: self.summary,
            outcomes: self.outcomes,
            decided: self.decided,
        }
    }
}

/// An instant written by the runner, as the timeline shows instants (to the millisecond).
fn short(instant: &str) -> String {
    instant
        .parse::<Timestamp>()
        .map_or_else(|_| instant.to_string(), clock)
}
