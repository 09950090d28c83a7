//! Turning the runner's events (and the simulator's own happenings: a person's actions, an
//! operation finishing) into timeline rows, totals, per-trigger outcomes and rule coverage.

use crate::api::notify::cache::Learnt;
use crate::language::ast::{ActionKind, PhaseKind};
use crate::runner::event::{CycleCause, Event, EventKind, Outcome, WaitReason};
use crate::sim::expect::TriggerOutcome;
use crate::sim::report::{DeferredAtEnd, Mark, Percentiles, Row, Summary, clock, human, triggers};
use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};

/// Which cycle: the worker (one runner, or one per trigger without coalescing), the
/// schedule and the machine's cycle id.
type CycleKey = (u32, u32, u64);

/// The five text cells of a timeline row: trigger, decision, rule, call, answer.
type Cells = [String; 5];

/// What the recorder knows about a trigger when the runner names it.
#[derive(Clone, Debug)]
pub struct TriggerInfo {
    /// The timeline's label for it; empty when neither the timeline nor `[expect]` shows it.
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
    pub decided: BTreeSet<(PhaseKind, String)>,
}

/// Everything a run records. Without the timeline, no row text is ever built: a big run
/// pays only for its totals.
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
    pub decided: BTreeSet<(PhaseKind, String)>,
    latencies: Vec<SignedDuration>,
    // Small integer keys: a fast hash, not a DoS-resistant one (nothing here is external).
    /// Arrival instants of the triggers each cycle answers.
    waiting_triggers: FxHashMap<CycleKey, Vec<Timestamp>>,
    /// Arrivals carried by a deferral to the cycle it starts.
    deferred_triggers: FxHashMap<(u32, u32), Vec<Timestamp>>,
    /// The cycle that deferred and its instant, per worker and schedule, until it runs.
    deferrals: FxHashMap<(u32, u32), (u64, Timestamp)>,
    /// Coalesced triggers whose further evaluation has started.
    coalesced_evaluated: u64,
    /// The tracked trigger that started a cycle, until the cycle's first decision.
    deciding: FxHashMap<CycleKey, String>,
    /// The timeline's label of each open cycle (kept with the timeline only).
    cycle_labels: FxHashMap<CycleKey, String>,
    /// The trigger named by the last `trigger_received` per worker and schedule.
    last_trigger: FxHashMap<(u32, u32), (TriggerInfo, Timestamp)>,
}

impl Recorder {
    /// A recorder that keeps the timeline rows, or only the totals.
    pub fn new(keep_timeline: bool) -> Self {
        Recorder {
            keep_timeline,
            ..Recorder::default()
        }
    }

    /// A row, its text built only when the timeline is kept.
    fn row(
        &mut self,
        at: Timestamp,
        schedule: u32,
        mark: Mark,
        cells: impl FnOnce(&Self) -> Cells,
    ) {
        if self.keep_timeline {
            let [trigger, decision, rule, call, answer] = cells(self);
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
        self.row(at, schedule, Mark::Person, |_| {
            [
                String::new(),
                what,
                String::new(),
                String::new(),
                String::new(),
            ]
        });
    }

    /// An update operation finished: the schedule is published, or (the operation ended
    /// `Error` or `Canceled`, or a person changed it meanwhile) it is not.
    pub fn settled(&mut self, at: Timestamp, schedule: u32, version: i64, published: bool) {
        let (mark, what, state) = if published {
            (Mark::Published, "operation complete", "published")
        } else {
            (Mark::ServerError, "operation ended", "draft")
        };
        self.row(at, schedule, mark, |_| {
            [
                String::new(),
                String::new(),
                String::new(),
                what.into(),
                format!("{state} v{version}"),
            ]
        });
    }

    /// A trigger is about to be handed to worker `worker`: its `trigger_received` event
    /// comes next and is labelled with `label`, which is asked for only when something
    /// will show it (the timeline, or `[expect]` for a tracked trigger).
    pub fn arriving(
        &mut self,
        worker: u32,
        schedule: u32,
        tracked: bool,
        label: impl FnOnce() -> String,
        at: Timestamp,
    ) {
        let label = if self.keep_timeline || tracked {
            label()
        } else {
            String::new()
        };
        self.last_trigger
            .insert((worker, schedule), (TriggerInfo { label, tracked }, at));
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
                self.row(at, schedule, Mark::Trigger, |r| {
                    let label = r
                        .last_trigger
                        .get(&(worker, schedule))
                        .map_or("", |(i, _)| i.label.as_str());
                    let what = match name {
                        Some(name) => format!("{label} {source}/{name}"),
                        None => format!("{label} {source}"),
                    };
                    let decision = if duplicate {
                        "arrived (duplicate)"
                    } else {
                        "arrived"
                    };
                    [
                        what,
                        decision.into(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]
                });
            }
            EventKind::TriggerCoalesced { into_cycle, .. } => {
                self.summary.coalesced += 1;
                if let Some((info, arrived)) = self.last_trigger.get(&(worker, schedule)) {
                    let arrived = *arrived;
                    if info.tracked {
                        self.outcomes
                            .entry(info.label.clone())
                            .or_default()
                            .push(TriggerOutcome {
                                decision: "coalesced".into(),
                                rule: String::new(),
                            });
                    }
                    self.waiting_triggers
                        .entry(key(into_cycle))
                        .or_default()
                        .push(arrived);
                }
                if let Some(last) = self.rows.last_mut().filter(|r| r.mark == Mark::Trigger) {
                    last.decision = format!("coalesced into cycle {into_cycle}");
                    last.mark = Mark::Coalesced;
                }
            }
            EventKind::CycleStarted { cause } => {
                let label = match cause {
                    CycleCause::Trigger { .. } => {
                        self.summary.cycles.by_trigger += 1;
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
                    CycleCause::Coalesced { triggers } => {
                        self.summary.cycles.for_coalesced += 1;
                        self.coalesced_evaluated += u64::from(triggers);
                        format!("{triggers} coalesced")
                    }
                    CycleCause::Deferral { deferred_cycle } => {
                        self.summary.cycles.after_deferral += 1;
                        self.deferrals.remove(&(worker, schedule));
                        if let Some(list) = self.deferred_triggers.remove(&(worker, schedule)) {
                            self.waiting_triggers
                                .entry(key(cycle))
                                .or_default()
                                .extend(list);
                        }
                        format!("deferred (cycle {deferred_cycle})")
                    }
                    CycleCause::Confirm { unconfirmed_cycle } => {
                        self.summary.cycles.to_confirm += 1;
                        format!("confirm (cycle {unconfirmed_cycle})")
                    }
                };
                if self.keep_timeline {
                    self.cycle_labels.insert(key(cycle), label);
                }
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
                let mark = match status {
                    Some(200..=299) if version.is_some() => Mark::Read,
                    Some(s) => self.status_mark(s),
                    None => {
                        self.summary.server_errors += 1;
                        Mark::ServerError
                    }
                };
                self.row(at, schedule, mark, |r| {
                    let answer = match (status, version) {
                        (Some(s @ 200..=299), Some(v)) => format!("{s} {state} v{v}"),
                        (Some(s), _) => s.to_string(),
                        (None, _) => error.unwrap_or_default(),
                    };
                    let call = match purpose {
                        crate::runner::event::ReadPurpose::Evaluate => "read",
                        crate::runner::event::ReadPurpose::Follow => "read (follow)",
                        crate::runner::event::ReadPurpose::Confirm => "read (confirm)",
                    };
                    [
                        r.cycle_label(key(cycle)),
                        String::new(),
                        String::new(),
                        call.into(),
                        answer,
                    ]
                });
            }
            EventKind::StateKnown {
                learnt,
                state,
                version,
                ..
            } => {
                self.row(at, schedule, Mark::Decision, |r| {
                    let how = match learnt {
                        Learnt::Read => "read",
                        Learnt::Event => "heard",
                        Learnt::Follow => "follow read",
                    };
                    [
                        r.cycle_label(key(cycle)),
                        String::new(),
                        String::new(),
                        "known (no read)".into(),
                        format!("{state} v{version} ({how})"),
                    ]
                });
            }
            EventKind::Heard {
                status, version, ..
            } => {
                self.row(at, schedule, Mark::Decision, |r| {
                    [
                        r.cycle_label(key(cycle)),
                        String::new(),
                        String::new(),
                        "event".into(),
                        format!("{status:?} v{version}"),
                    ]
                });
            }
            EventKind::Decision {
                phase,
                rule,
                action,
                detail,
            } => {
                if phase == PhaseKind::Trigger
                    && let Some(label) = self.deciding.remove(&key(cycle))
                {
                    self.outcomes
                        .entry(label)
                        .or_default()
                        .push(TriggerOutcome {
                            decision: action.keyword().to_owned(),
                            rule: rule.clone(),
                        });
                }
                let mark = match action {
                    ActionKind::Publish => Mark::Publish,
                    ActionKind::Skip => Mark::Skip,
                    ActionKind::Backoff => Mark::Backoff,
                    ActionKind::Defer => {
                        self.summary.deferrals += 1;
                        Mark::Defer
                    }
                    ActionKind::Fail => Mark::Failure,
                    ActionKind::Recheck | ActionKind::Done => Mark::Decision,
                };
                self.row(at, schedule, mark, |r| {
                    let text = match (&detail, action) {
                        (Some(d), ActionKind::Skip | ActionKind::Fail) => {
                            format!("{action} \"{d}\"")
                        }
                        (Some(d), ActionKind::Defer) => format!("defer until {}", short(d)),
                        (Some(d), _) => format!("{action} {d}"),
                        (None, _) => action.keyword().to_owned(),
                    };
                    let text = if phase == PhaseKind::Response {
                        format!("on response: {text}")
                    } else {
                        text
                    };
                    [
                        r.cycle_label(key(cycle)),
                        text,
                        rule.clone(),
                        String::new(),
                        String::new(),
                    ]
                });
                if mark == Mark::Skip {
                    count(
                        &mut self.summary.skips,
                        detail.as_deref().unwrap_or_default(),
                    );
                }
                self.decided.insert((phase, rule));
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
                let mark = match (status, operation) {
                    (Some(200..=299), Some(_)) => {
                        self.summary.publishes += 1;
                        Mark::Accepted
                    }
                    (Some(s), _) => self.status_mark(s),
                    (None, _) => {
                        self.summary.server_errors += 1;
                        Mark::ServerError
                    }
                };
                self.row(at, schedule, mark, |r| {
                    let answer = match (status, operation) {
                        (Some(s @ 200..=299), Some(op)) => {
                            format!("{s} {op:?} {}", operation_id.unwrap_or_default())
                        }
                        (Some(s), _) => match retry_after {
                            Some(after) => format!("{s} retry after {}", human(after)),
                            None => s.to_string(),
                        },
                        (None, _) => error.unwrap_or_default(),
                    };
                    [
                        r.cycle_label(key(cycle)),
                        String::new(),
                        String::new(),
                        format!("publish v{version}"),
                        answer,
                    ]
                });
            }
            EventKind::Wait {
                reason,
                until,
                delay,
                profile,
                ..
            } => {
                self.summary.waiting += delay.duration;
                self.summary.waits += 1;
                if reason == WaitReason::Backoff {
                    self.summary.backoffs += 1;
                }
                self.row(at, schedule, Mark::Decision, |r| {
                    let text = match reason {
                        WaitReason::Backoff => {
                            let by = if delay.retry_after.is_some() {
                                "retry-after".to_string()
                            } else {
                                profile.unwrap_or_default()
                            };
                            format!("wait {} ({by})", human(delay.duration))
                        }
                        WaitReason::Follow => format!("wait {} (follow)", human(delay.duration)),
                        WaitReason::Defer => format!("wait until {}", clock(until)),
                        WaitReason::Confirm => format!("wait until {} (confirm)", clock(until)),
                    };
                    [
                        r.cycle_label(key(cycle)),
                        text,
                        String::new(),
                        String::new(),
                        String::new(),
                    ]
                });
            }
            EventKind::ThrottleWait { call, waited } => {
                self.row(at, schedule, Mark::Decision, |r| {
                    [
                        r.cycle_label(key(cycle)),
                        format!("throttle wait {} ({})", human(waited), call.as_str()),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]
                });
            }
            EventKind::Outcome { outcome, .. } => {
                let waiting = self
                    .waiting_triggers
                    .remove(&key(cycle))
                    .unwrap_or_default();
                let ended = &mut self.summary.ended;
                let mark = match &outcome {
                    Outcome::Published { .. } => {
                        ended.published += 1;
                        self.latencies
                            .extend(waiting.iter().map(|t| at.duration_since(*t)));
                        Mark::Decision
                    }
                    Outcome::Deferred { until } => {
                        ended.deferred += 1;
                        self.deferrals.insert((worker, schedule), (cycle, *until));
                        self.deferred_triggers
                            .entry((worker, schedule))
                            .or_default()
                            .extend(waiting);
                        Mark::Decision
                    }
                    Outcome::Failed { .. } | Outcome::Unauthorized { .. } => {
                        ended.failed += 1;
                        self.summary.failures += 1;
                        Mark::Failure
                    }
                    // Our publish landed; an edit since starts the next cycle at once.
                    Outcome::LandedThenChanged { .. } => {
                        ended.published += 1;
                        self.latencies
                            .extend(waiting.iter().map(|t| at.duration_since(*t)));
                        Mark::Decision
                    }
                    Outcome::Skipped { .. } => {
                        ended.skipped += 1;
                        Mark::Decision
                    }
                    Outcome::Done => {
                        ended.done += 1;
                        Mark::Decision
                    }
                    Outcome::Confirmed { .. } => {
                        ended.confirmed += 1;
                        Mark::Decision
                    }
                    Outcome::DryRun { .. } => {
                        ended.dry_run += 1;
                        Mark::Decision
                    }
                };
                self.row(at, schedule, mark, |r| {
                    let text = match outcome {
                        Outcome::Published { version } => format!("= published v{version}"),
                        Outcome::Skipped { .. } => "= skipped".to_string(),
                        Outcome::Deferred { until } => format!("= deferred to {}", clock(until)),
                        Outcome::LandedThenChanged { version } => {
                            format!("= landed, then changed: draft v{version}")
                        }
                        Outcome::Done => "= done".to_string(),
                        Outcome::Confirmed { version } => format!("= confirmed v{version}"),
                        Outcome::DryRun { action } => format!("= dry run: {action}"),
                        Outcome::Failed { reason } | Outcome::Unauthorized { reason } => {
                            format!("= failed: {reason}")
                        }
                    };
                    [
                        r.cycle_label(key(cycle)),
                        text,
                        String::new(),
                        String::new(),
                        String::new(),
                    ]
                });
                self.cycle_labels.remove(&key(cycle));
                self.deciding.remove(&key(cycle));
            }
        }
    }

    fn call(&mut self, kind: &str) {
        count(&mut self.summary.api_calls, kind);
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

    /// Everything recorded when the run stopped at `stop`: the latency percentiles filled
    /// in, and a row for each deferred evaluation whose instant had not come.
    pub fn finish(mut self, stop: Timestamp) -> Recorded {
        self.summary.latency = Percentiles::of(&mut self.latencies);
        self.summary.coalesced_pending = self
            .summary
            .coalesced
            .saturating_sub(self.coalesced_evaluated);
        let mut left: Vec<DeferredAtEnd> = self
            .deferrals
            .iter()
            .filter(|(_, (_, until))| *until > stop)
            .map(|(key, &(cycle, until))| DeferredAtEnd {
                schedule: key.1,
                cycle,
                triggers: self
                    .deferred_triggers
                    .get(key)
                    .map_or(0, |t| t.len() as u64),
                until,
            })
            .collect();
        left.sort_by_key(|d| (d.schedule, d.cycle));
        for d in &left {
            self.row(stop, d.schedule, Mark::Defer, |_| {
                [
                    format!("deferred (cycle {})", d.cycle),
                    format!(
                        "still deferred when the run stopped: {}, until {}",
                        triggers(d.triggers),
                        clock(d.until)
                    ),
                    String::new(),
                    String::new(),
                    String::new(),
                ]
            });
        }
        self.summary.deferred_at_end = left;
        Recorded {
            rows: self.rows,
            summary: self.summary,
            outcomes: self.outcomes,
            decided: self.decided,
        }
    }
}

/// One more under `name`, allocating the name only the first time it is counted.
fn count(totals: &mut BTreeMap<String, u64>, name: &str) {
    match totals.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            totals.insert(name.to_owned(), 1);
        }
    }
}

/// An instant written by the runner, as the timeline shows instants (to the millisecond).
fn short(instant: &str) -> String {
    instant
        .parse::<Timestamp>()
        .map_or_else(|_| instant.to_string(), clock)
}
