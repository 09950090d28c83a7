//! The discrete-event loop: a virtual clock, a queue of what is due, and the runner's own
//! machines carrying triggers through the API model. Nothing here waits for real time, and
//! every choice is ordered (arrival order, then queue order), so a scenario and a seed
//! always give the same run.

use crate::api::limiter::RateLimiter;
use crate::api::model::NotifyConfig;
use crate::api::notify::Heard;
use crate::api::notify::health::{Continuity, Gap};
use crate::api::{ApiError, ScheduleRef};
use crate::effects::random::SeededRandom;
use crate::language::ast::PhaseKind;
use crate::policy::Policy;
use crate::runner::event::Event;
use crate::runner::{
    CallFailure, CallResult, Command, Input, Runner, RunnerConfig, TimerId, Trigger,
};
use crate::sim::api::{SimApi, is_processing};
use crate::sim::durable::{Again, Durable};
use crate::sim::expect::TriggerOutcome;
use crate::sim::generate::{Arrivals, arrivals};
use crate::sim::record::Recorder;
use crate::sim::report::Report;
use crate::sim::scenario::{PersonKind, Scenario};
use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// How to run a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Keep every timeline row (for reports); off, only the totals are kept.
    pub keep_timeline: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            keep_timeline: true,
        }
    }
}

/// Everything one run produced.
#[derive(Debug)]
pub struct RunResult {
    /// The timeline and totals.
    pub report: Report,
    /// What each scenario trigger with a delivery id got, in arrival order.
    pub outcomes: BTreeMap<String, Vec<TriggerOutcome>>,
    /// `(phase, rule)` of every rule that decided at least once.
    pub decided: BTreeSet<(PhaseKind, String)>,
}

/// What `explore` checks a run against: every call with what the model held when it was
/// made, every event, every change a person made, and how things stood at the end.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Every API call, in the order made.
    pub calls: Vec<TracedCall>,
    /// Every runner event, in order.
    pub events: Vec<TracedEvent>,
    /// Each restart: when, and every trigger fed again to the new process.
    pub restarts: Vec<TracedRestart>,
    /// Each person's action the model took (an edit or a publish), with its schedule.
    pub changes: Vec<(Timestamp, u32)>,
    /// Each instant an update operation finished with the schedule published: `(at,
    /// schedule)`.
    pub published: Vec<(Timestamp, u32)>,
    /// Each schedule's `(published, version)` when the run ended.
    pub end_states: Vec<(bool, i64)>,
    /// When the run ended.
    pub end: Timestamp,
    /// Whether every machine had finished its cycle when the run ended.
    pub idle: bool,
}

/// One runner event.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedEvent {
    /// Its schedule's index.
    pub schedule: u32,
    /// The runner process that emitted it (without coalescing, one per trigger; a restart
    /// starts a new one).
    pub worker: u32,
    /// The event.
    pub event: Event,
}

/// A process restart, as `explore` checks it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TracedRestart {
    /// When.
    pub at: Timestamp,
    /// The processes it ended.
    pub ended: Vec<u32>,
    /// Each trigger fed again: the `(worker, trigger)` it was before and is now.
    pub fed_again: Vec<((u32, u64), (u32, u64))>,
}

/// One API call the runner made.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedCall {
    /// Which schedule.
    pub schedule: u32,
    /// The runner process that made it.
    pub worker: u32,
    /// When it reached the model.
    pub at: Timestamp,
    /// When its answer reached the machine.
    pub answered_at: Timestamp,
    /// The version a publish asserted; `None` for a read.
    pub publish: Option<i64>,
    /// The answer's status; `None` when none came.
    pub status: Option<u16>,
    /// Whether a publish was running in the model when the call was made.
    pub model_publishing: bool,
    /// The model's version when the call was made.
    pub model_version: i64,
}

/// Something due at an instant.
#[derive(Clone, Debug, PartialEq)]
enum Due {
    /// A person acts (index into the scenario's people).
    Person(usize),
    /// A call's answer or a timer reaches a worker's machine for a schedule.
    Input {
        worker: u32,
        schedule: u32,
        input: Delivery,
    },
    /// An accepted update finishes processing (for the timeline only).
    Settled { schedule: u32 },
    /// A call the client-side rate limiter held reaches its turn.
    Call {
        worker: u32,
        schedule: u32,
        call: Box<HeldCall>,
    },
    /// Notifications are due from the model: deliver them to every runner.
    Notify,
    /// The notification channel drops (the scenario's `[[api.notifications.drop]]`).
    ChannelDown { until: Timestamp },
    /// The channel is back: a new epoch.
    ChannelUp,
    /// The runner's process restarts (the scenario's `[[restart]]`).
    Restart,
    /// A stored trigger is fed again, its deferral run out, unless another restart came
    /// since (`epoch`, the restarts before it was queued).
    Again { stored: u32, epoch: u32 },
}

/// A call waiting for the rate limiter, and since when.
#[derive(Clone, Debug, PartialEq)]
struct HeldCall {
    call: Call,
    since: Timestamp,
}

/// A call the runner asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Call {
    Read,
    Publish { version: i64 },
}

/// What reaches a machine, kept small: the queue may hold a timer for every deferred
/// trigger of a night, and an answer (rarely many in flight) is several times a timer's size.
#[derive(Clone, Debug, PartialEq)]
enum Delivery {
    /// A wait ran out.
    Timer(TimerId),
    /// A call answered.
    Answer(Box<Input>),
}

impl From<Input> for Delivery {
    fn from(input: Input) -> Self {
        match input {
            Input::TimerFired(timer) => Delivery::Timer(timer),
            answer => Delivery::Answer(Box::new(answer)),
        }
    }
}

impl From<Delivery> for Input {
    fn from(delivery: Delivery) -> Self {
        match delivery {
            Delivery::Timer(timer) => Input::TimerFired(timer),
            Delivery::Answer(answer) => *answer,
        }
    }
}

/// Something due, in the queue: the earliest instant first, then the order of queueing.
#[derive(Debug)]
struct Queued {
    at: Timestamp,
    seq: u64,
    due: Due,
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` pops its greatest entry, and the earliest must come first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

/// One runner: all schedules' machines with coalescing, or one trigger's without.
#[derive(Debug)]
struct Worker {
    runner: Runner,
    /// Calls and timers it still waits for; a per-trigger worker with none left is done.
    outstanding: u32,
    /// The process it stands for, unique in the run (slots are reused, processes not).
    process: u32,
}

/// The loop's state.
struct Engine<'a> {
    scenario: &'a Scenario,
    policy: &'a Policy,
    refs: Vec<ScheduleRef>,
    index: FxHashMap<ScheduleRef, u32>,
    api: SimApi,
    random: SeededRandom,
    queue: BinaryHeap<Queued>,
    next_seq: u64,
    workers: Vec<Option<Worker>>,
    free: Vec<u32>,
    recorder: Recorder,
    commands: Vec<Command>,
    now: Timestamp,
    /// The OAuth client's limiter, as the live clients apply it.
    limiter: RateLimiter,
    /// Kept for `explore` only.
    trace: Option<Trace>,
    /// The channel as the runners hear it, when the scenario turns notifications on.
    channel: Option<Channel>,
    /// What the relay's store would hold, when the scenario restarts the process.
    durable: Option<Durable>,
    /// With coalescing, the worker that is the running process.
    current: u32,
    /// Restarts so far.
    epoch: u32,
    /// Processes started so far.
    processes: u32,
    /// Each stored trigger's latest incarnation `(worker, trigger)`, for the trace.
    incarnation: Vec<(u32, u64)>,
}

/// The simulated notification channel's state.
#[derive(Clone, Copy, Debug)]
struct Channel {
    continuity: Continuity,
    /// When the next [`Due::Notify`] is queued for, if one is.
    notify_at: Option<Timestamp>,
    max_age: SignedDuration,
}

/// Run `scenario` under `policy` and report what happened.
pub fn run(scenario: &Scenario, policy: &Policy, options: RunOptions) -> RunResult {
    run_with(scenario, policy, options, None).0
}

/// Run `scenario` as [`run`] does, keeping the [`Trace`] `explore` checks (no timeline).
pub fn run_traced(scenario: &Scenario, policy: &Policy) -> (RunResult, Trace) {
    let options = RunOptions {
        keep_timeline: false,
    };
    let (result, trace) = run_with(scenario, policy, options, Some(Trace::default()));
    (result, trace.unwrap_or_default())
}

fn run_with(
    scenario: &Scenario,
    policy: &Policy,
    options: RunOptions,
    trace: Option<Trace>,
) -> (RunResult, Option<Trace>) {
    let refs: Vec<ScheduleRef> = scenario
        .schedules
        .iter()
        .map(|s| ScheduleRef {
            business_unit: s.business_unit.clone(),
            week: s.week,
            schedule_id: s.id.clone(),
        })
        .collect();
    let index = refs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.clone(), i as u32))
        .collect();
    let mut engine = Engine {
        scenario,
        policy,
        api: SimApi::new(scenario, &refs),
        refs,
        index,
        random: SeededRandom::new(scenario.seed),
        queue: BinaryHeap::new(),
        next_seq: 0,
        workers: Vec::new(),
        free: Vec::new(),
        recorder: Recorder::new(options.keep_timeline),
        commands: Vec::new(),
        now: scenario.start,
        limiter: RateLimiter::per_minute(scenario.runner.requests_per_minute),
        trace,
        channel: None,
        durable: (!scenario.restarts.is_empty()).then(Durable::default),
        current: 0,
        epoch: 0,
        processes: 0,
        incarnation: Vec::new(),
    };
    for &at in &scenario.restarts {
        engine.schedule_due(at, Due::Restart);
    }
    for (i, p) in scenario.people.iter().enumerate() {
        engine.schedule_due(p.at, Due::Person(i));
    }
    if let Some(n) = &scenario.api.notifications {
        engine.api.model().set_notifications(Some(NotifyConfig {
            delay: n.delay,
            loss_per_mille: n.loss_per_mille,
        }));
        engine.channel = Some(Channel {
            continuity: Continuity { up: true, epoch: 1 },
            notify_at: None,
            max_age: n.max_age,
        });
        for &(from, until) in &n.drops {
            engine.schedule_due(from, Due::ChannelDown { until });
            engine.schedule_due(until, Due::ChannelUp);
        }
    }
    let arrivals = arrivals(scenario);
    engine.run(&arrivals);
    let end = engine.now;
    let mut trace = engine.trace.take();
    if let Some(t) = &mut trace {
        for sref in &engine.refs {
            let state = engine.api.model().peek(sref, end);
            t.end_states
                .push(state.map_or((false, 0), |v| (v.snapshot.published, v.snapshot.version)));
        }
        t.idle = engine.workers.iter().flatten().all(|w| w.runner.is_idle());
        t.end = end;
    }
    let recorded = engine.recorder.finish(scenario.end.unwrap_or(end));
    let result = RunResult {
        report: Report {
            scenario: scenario.name.clone(),
            policy: policy.name.clone(),
            seed: scenario.seed,
            coalesce: scenario.runner.coalesce,
            start: scenario.start,
            end,
            schedules: scenario.schedules.iter().map(|s| s.id.clone()).collect(),
            timeline: recorded.rows,
            summary: recorded.summary,
        },
        outcomes: recorded.outcomes,
        decided: recorded.decided,
    };
    (result, trace)
}

impl Engine<'_> {
    fn schedule_due(&mut self, at: Timestamp, due: Due) {
        self.next_seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.next_seq,
            due,
        });
    }

    fn run(&mut self, arrivals: &Arrivals) {
        let mut next = 0;
        loop {
            let arrival = arrivals.list.get(next);
            let queued = self.queue.peek().map(|q| q.at);
            // Arrivals go first at equal instants: a burst already at the door is coalesced.
            let take_arrival = match (arrival, queued) {
                (Some(a), Some(q)) => a.at <= q,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let at = if take_arrival {
                arrival.map_or(self.now, |a| a.at)
            } else {
                queued.unwrap_or(self.now)
            };
            if self.scenario.end.is_some_and(|end| at > end) {
                break;
            }
            self.now = at.max(self.now);
            if take_arrival {
                if let Some(a) = arrival {
                    self.arrive(arrivals, a);
                }
                next += 1;
            } else if let Some(queued) = self.queue.pop() {
                self.fire(queued.due);
            }
            self.arm_notify();
        }
    }

    /// Queues the delivery of the model's next notification, unless one comes sooner.
    fn arm_notify(&mut self) {
        let Some(channel) = &mut self.channel else {
            return;
        };
        let Some(next) = self.api.model().next_notification_at() else {
            return;
        };
        if channel.notify_at.is_none_or(|at| next < at) {
            channel.notify_at = Some(next);
            self.schedule_due(next.max(self.now), Due::Notify);
        }
    }

    /// Tells every runner what the channel said, and carries out what they decide.
    fn tell(&mut self, heard: &Heard, hint: u32) {
        for worker in 0..self.workers.len() as u32 {
            if let Some(Some(w)) = self.workers.get_mut(worker as usize) {
                w.runner.heard(
                    self.now,
                    self.policy,
                    &mut self.random,
                    heard.clone(),
                    &mut self.commands,
                );
                self.carry_out(worker, hint);
            }
        }
    }

    fn channel_event(&mut self, due: Due) {
        let Some(channel) = &mut self.channel else {
            return;
        };
        let heard = match due {
            Due::Notify => {
                channel.notify_at = None;
                let events = self.api.model().notifications_due(self.now).events;
                for event in events {
                    let hint = self.index.get(&event.schedule).copied().unwrap_or(0);
                    self.tell(&Heard::Schedule(event), hint);
                }
                return;
            }
            Due::ChannelDown { until } => {
                channel.continuity.up = false;
                self.api.model().drop_notifications_until(until);
                Heard::Gap {
                    continuity: channel.continuity,
                    gap: Gap::Dropped("the scenario drops the channel".into()),
                }
            }
            Due::ChannelUp => {
                channel.continuity = Continuity {
                    up: true,
                    epoch: channel.continuity.epoch + 1,
                };
                Heard::Up(channel.continuity)
            }
            _ => return,
        };
        self.tell(&heard, 0);
    }

    fn arrive(&mut self, arrivals: &Arrivals, a: &crate::sim::generate::Arrival) {
        let worker = self.worker_for_trigger();
        let trigger = Trigger {
            // Generated triggers carry no delivery id, as a sender without one would: the
            // runner's duplicate log then holds only the ids a scenario writes out.
            delivery_id: a.delivery.map(|_| arrivals.delivery_id(a)),
            source: arrivals.source(a).to_string(),
            event: arrivals.event(a).map(str::to_string),
            received_at: self.now,
        };
        self.recorder.arriving(
            worker,
            a.schedule,
            a.delivery.is_some(),
            || arrivals.label(a),
            self.now,
        );
        let Some(schedule) = self.refs.get(a.schedule as usize).cloned() else {
            return;
        };
        let kept = self.durable.is_some().then(|| trigger.clone());
        if let Some(Some(w)) = self.workers.get_mut(worker as usize) {
            let seq = w.runner.trigger(
                self.now,
                self.policy,
                &mut self.random,
                schedule,
                trigger,
                &mut self.commands,
            );
            let process = w.process;
            if let (Some(durable), Some(trigger)) = (&mut self.durable, kept) {
                durable.accepted(process, seq, a.schedule, trigger, arrivals.label(a));
                self.incarnation.push((process, seq));
            }
        }
        self.carry_out(worker, a.schedule);
    }

    /// The process restarts: every worker's memory and calls in flight are lost; a new
    /// process starts from what the store keeps, as the relay's worker does after a crash.
    fn restart(&mut self) {
        let Some(durable) = &mut self.durable else {
            return;
        };
        let kept = durable.restart(self.now);
        self.epoch += 1;
        let mut ended = Vec::new();
        for slot in &mut self.workers {
            // Slots of ended workers are never reused: answers queued for them are lost.
            if let Some(w) = slot.take() {
                ended.push(w.process);
            }
        }
        self.free.clear();
        if let Some(trace) = &mut self.trace {
            trace.restarts.push(TracedRestart {
                at: self.now,
                ended,
                fed_again: Vec::new(),
            });
        }
        let what = format!(
            "the process restarts (cycles under way end unfinished): the store feeds {} trigger(s) again, knows {} write(s) of ours",
            kept.again.len(),
            kept.writes.len()
        );
        self.recorder.person(self.now, 0, what);
        if self.scenario.runner.coalesce {
            let fresh = self.fresh_worker();
            self.workers.push(Some(fresh));
            self.current = (self.workers.len() - 1) as u32;
            if let Some(Some(w)) = self.workers.get_mut(self.current as usize) {
                for (id, at) in &kept.deliveries {
                    w.runner.remember_delivery(id, *at);
                }
                for write in &kept.writes {
                    w.runner.resume_publish(write.clone());
                }
            }
        }
        let writes = kept.writes;
        for again in kept.again {
            if again.due > self.now {
                let stored = again.stored as u32;
                let epoch = self.epoch;
                self.schedule_due(again.due, Due::Again { stored, epoch });
            } else {
                self.feed_again(again, &writes);
            }
        }
    }

    /// Feed a stored trigger to the new process, as the relay's worker does.
    fn feed_again(&mut self, again: Again, writes: &[crate::runner::EarlierWrite]) {
        let worker = self.worker_for_trigger();
        let Some(schedule) = self.refs.get(again.schedule as usize).cloned() else {
            return;
        };
        self.recorder.arriving(
            worker,
            again.schedule,
            again.trigger.delivery_id.is_some(),
            || again.label.clone(),
            self.now,
        );
        let Some(Some(w)) = self.workers.get_mut(worker as usize) else {
            return;
        };
        if !self.scenario.runner.coalesce {
            // Without coalescing each trigger has a process of its own: it learns the
            // writes of its schedule.
            for write in writes.iter().filter(|w| w.schedule == schedule) {
                w.runner.resume_publish(write.clone());
            }
        }
        let seq = w.runner.trigger(
            self.now,
            self.policy,
            &mut self.random,
            schedule,
            again.trigger,
            &mut self.commands,
        );
        let process = w.process;
        if let Some(durable) = &mut self.durable {
            durable.fed(process, seq, again.stored);
        }
        if let Some(slot) = self.incarnation.get_mut(again.stored) {
            let before = std::mem::replace(slot, (process, seq));
            if let Some(restart) = self.trace.as_mut().and_then(|t| t.restarts.last_mut()) {
                restart.fed_again.push((before, (process, seq)));
            }
        }
        self.carry_out(worker, again.schedule);
    }

    /// With coalescing, the one runner; without, a fresh runner for each trigger, as
    /// independent webhook handlers would be.
    fn worker_for_trigger(&mut self) -> u32 {
        if self.scenario.runner.coalesce {
            if self.workers.is_empty() {
                let fresh = self.fresh_worker();
                self.workers.push(Some(fresh));
            }
            return self.current;
        }
        let fresh = self.fresh_worker();
        match self.free.pop() {
            Some(slot) => {
                if let Some(w) = self.workers.get_mut(slot as usize) {
                    *w = Some(fresh);
                }
                slot
            }
            None => {
                self.workers.push(Some(fresh));
                (self.workers.len() - 1) as u32
            }
        }
    }

    /// A new runner process, listening to the channel when the scenario has one.
    fn fresh_worker(&mut self) -> Worker {
        self.processes += 1;
        let mut runner = Runner::new(RunnerConfig::default());
        if let Some(channel) = self.channel {
            runner = runner.with_notifications(channel.max_age);
            if channel.continuity.up {
                runner.hear_up(channel.continuity);
            }
        }
        Worker {
            runner,
            outstanding: 0,
            process: self.processes,
        }
    }

    /// The process a worker slot stands for now.
    fn process(&self, worker: u32) -> u32 {
        match self.workers.get(worker as usize) {
            Some(Some(w)) => w.process,
            _ => 0,
        }
    }

    fn fire(&mut self, due: Due) {
        match due {
            Due::Notify | Due::ChannelDown { .. } | Due::ChannelUp => self.channel_event(due),
            Due::Person(i) => self.person(i),
            Due::Restart => self.restart(),
            Due::Again { stored, epoch } => {
                let index = stored as usize;
                let waiting = self.durable.as_ref().is_some_and(|d| d.waiting(index));
                if epoch != self.epoch || !waiting {
                    return;
                }
                if let Some(again) = self.durable.as_ref().and_then(|d| d.again(index, self.now)) {
                    self.feed_again(again, &[]);
                }
            }
            Due::Settled { schedule } => {
                if let Some(view) = self
                    .refs
                    .get(schedule as usize)
                    .and_then(|r| self.api.model().peek(r, self.now))
                {
                    if let Some(trace) = &mut self.trace
                        && view.snapshot.published
                    {
                        trace.published.push((self.now, schedule));
                    }
                    self.recorder.settled(
                        self.now,
                        schedule,
                        view.snapshot.version,
                        view.snapshot.published,
                    );
                }
            }
            Due::Call {
                worker,
                schedule,
                call,
            } => {
                let held = self.limiter.held(self.now);
                if held.is_positive() {
                    // A 429 came while it waited its turn: it waits for the hold too.
                    let at = self.now.saturating_add(held).unwrap_or(self.now);
                    self.schedule_due(
                        at,
                        Due::Call {
                            worker,
                            schedule,
                            call,
                        },
                    );
                    return;
                }
                match self.workers.get_mut(worker as usize) {
                    Some(Some(w)) => w.outstanding = w.outstanding.saturating_sub(1),
                    // Its process ended before the call went out.
                    _ => return,
                }
                self.call(worker, schedule, call.call, call.since);
            }
            Due::Input {
                worker,
                schedule,
                input,
            } => {
                let Some(sref) = self.refs.get(schedule as usize) else {
                    return;
                };
                if let Some(Some(w)) = self.workers.get_mut(worker as usize) {
                    w.outstanding = w.outstanding.saturating_sub(1);
                    w.runner.input(
                        self.now,
                        self.policy,
                        &mut self.random,
                        sref,
                        input.into(),
                        &mut self.commands,
                    );
                }
                self.carry_out(worker, schedule);
            }
        }
    }

    fn person(&mut self, i: usize) {
        let Some(p) = self.scenario.people.get(i) else {
            return;
        };
        let Some(sref) = self.refs.get(p.schedule).cloned() else {
            return;
        };
        let schedule = p.schedule as u32;
        let (now, who) = (self.now, &p.who);
        let what = match p.kind {
            PersonKind::Edit => match self.api.model().person_edit(&sref, now, who) {
                Ok(s) => {
                    if let Some(trace) = &mut self.trace {
                        trace.changes.push((now, schedule));
                    }
                    format!("{} edits: draft v{}", p.who, s.version)
                }
                Err(refusal) => format!("{} edit refused: {}", p.who, refusal.status()),
            },
            PersonKind::Publish => match self.api.model().person_publish(&sref, self.now, &p.who) {
                Ok(op) => {
                    if let Some(trace) = &mut self.trace {
                        trace.changes.push((now, schedule));
                    }
                    if op.status == crate::api::OperationStatus::Processing {
                        let done = self.now.saturating_add(self.api.processing());
                        self.schedule_due(done.unwrap_or(self.now), Due::Settled { schedule });
                    }
                    format!("{} publishes in the UI", p.who)
                }
                Err(refusal) => format!("{} publish refused: {}", p.who, refusal.status()),
            },
        };
        self.recorder.person(self.now, schedule, what);
    }

    /// Carry out the commands a worker's runner just returned, when called about
    /// `schedule` (the index of the schedule its commands name, checked by [`Self::locate`]).
    fn carry_out(&mut self, worker: u32, schedule: u32) {
        let hint = schedule;
        let mut commands = std::mem::take(&mut self.commands);
        for command in commands.drain(..) {
            match command {
                Command::Emit(event) => self.emit(worker, hint, event),
                Command::Read(sref) => {
                    if let Some(schedule) = self.locate(&sref, hint) {
                        self.request(worker, schedule, Call::Read);
                    }
                }
                Command::Publish {
                    schedule: sref,
                    version,
                    ..
                } => {
                    if let Some(schedule) = self.locate(&sref, hint) {
                        self.request(worker, schedule, Call::Publish { version });
                    }
                }
                Command::WaitUntil {
                    schedule: sref,
                    timer,
                    until,
                    ..
                } => {
                    let Some(schedule) = self.locate(&sref, hint) else {
                        continue;
                    };
                    let at = until.max(self.now);
                    self.deliver(at, worker, schedule, Input::TimerFired(timer));
                }
            }
        }
        self.commands = commands;
        self.release_if_done(worker);
    }

    /// A call goes through the limiter: at once, or queued for its turn.
    fn request(&mut self, worker: u32, schedule: u32, call: Call) {
        let wait = self.limiter.reserve(self.now);
        if wait.is_zero() {
            self.call(worker, schedule, call, self.now);
            return;
        }
        if let Some(Some(w)) = self.workers.get_mut(worker as usize) {
            w.outstanding += 1;
        }
        let at = self.now.saturating_add(wait).unwrap_or(self.now);
        let since = self.now;
        let call = Box::new(HeldCall { call, since });
        self.schedule_due(
            at,
            Due::Call {
                worker,
                schedule,
                call,
            },
        );
    }

    /// Make `call` now (it was asked for at `since`); its answer reaches the machine after
    /// the scenario's latency and tightens the limiter as a live answer does.
    fn call(&mut self, worker: u32, schedule: u32, call: Call, since: Timestamp) {
        let Some(sref) = self.refs.get(schedule as usize).cloned() else {
            return;
        };
        let answer_at = self
            .now
            .saturating_add(self.scenario.api.latency)
            .unwrap_or(self.now);
        let waited = self.now.duration_since(since);
        let before = self.trace.is_some().then(|| {
            let view = self.api.model().peek(&sref, self.now);
            view.map_or((false, 0), |v| (v.snapshot.publishing, v.snapshot.version))
        });
        let input = match call {
            Call::Read => {
                let result = self.api.read(self.now, &sref);
                Input::StateRead(self.limited("read", result, waited))
            }
            Call::Publish { version } => {
                let result = self.api.publish(self.now, &sref, version);
                if let Ok(accepted) = &result
                    && let Some(body) = &accepted.body
                    && is_processing(body)
                {
                    let done = self.now.saturating_add(self.api.processing());
                    self.schedule_due(done.unwrap_or(self.now), Due::Settled { schedule });
                }
                Input::PublishAnswered(self.limited("publish", result, waited))
            }
        };
        let process = self.process(worker);
        if let (Some(trace), Some((model_publishing, model_version))) = (&mut self.trace, before) {
            let status = match &input {
                Input::StateRead(r) => r.as_ref().ok().map(|a| a.status),
                Input::PublishAnswered(r) => r.as_ref().ok().map(|a| a.status),
                Input::TimerFired(_) => None,
            };
            trace.calls.push(TracedCall {
                schedule,
                worker: process,
                at: self.now,
                answered_at: answer_at,
                publish: match call {
                    Call::Read => None,
                    Call::Publish { version } => Some(version),
                },
                status,
                model_publishing,
                model_version,
            });
        }
        self.deliver(answer_at, worker, schedule, input);
    }

    /// The answer as the live client hands it over: its wait noted, the limiter told of
    /// its rate-limit headers and Retry-After (one beyond the cap fails the call).
    fn limited<T>(
        &mut self,
        call: &'static str,
        result: CallResult<T>,
        waited: SignedDuration,
    ) -> CallResult<T> {
        let mut answer = result?;
        answer.waited = waited;
        if let Some(info) = answer.rate_limit {
            self.limiter.observe(info, self.now);
        }
        if answer.status == 429
            && let Some(after) = answer.retry_after
            && self.limiter.hold_for(after, self.now)
        {
            let error = ApiError::RetryAfterTooLong { call, after };
            return Err(CallFailure::from(&error));
        }
        Ok(answer)
    }

    fn emit(&mut self, worker: u32, hint: u32, event: Event) {
        let schedule = self.locate(&event.schedule, hint).unwrap_or(0);
        let process = self.process(worker);
        if let Some(durable) = &mut self.durable {
            durable.event(process, schedule, &event);
        }
        if let Some(trace) = &mut self.trace {
            trace.events.push(TracedEvent {
                schedule,
                worker: process,
                event: event.clone(),
            });
        }
        self.recorder.event(worker, schedule, event);
    }

    /// The index of `sref`: `hint` when that is it (a machine's commands name its own
    /// schedule, so this is the rule), else a look-up.
    fn locate(&self, sref: &ScheduleRef, hint: u32) -> Option<u32> {
        if self.refs.get(hint as usize) == Some(sref) {
            return Some(hint);
        }
        self.index.get(sref).copied()
    }

    /// Feed `input` to a worker's machine for `schedule` at `at`.
    fn deliver(&mut self, at: Timestamp, worker: u32, schedule: u32, input: Input) {
        if let Some(Some(w)) = self.workers.get_mut(worker as usize) {
            w.outstanding += 1;
        }
        let due = Due::Input {
            worker,
            schedule,
            input: input.into(),
        };
        self.schedule_due(at, due);
    }

    /// Without coalescing, a worker whose trigger is fully handled is freed for reuse.
    fn release_if_done(&mut self, worker: u32) {
        if self.scenario.runner.coalesce {
            return;
        }
        if let Some(slot) = self.workers.get_mut(worker as usize)
            && slot
                .as_ref()
                .is_some_and(|w| w.outstanding == 0 && w.runner.is_idle())
        {
            *slot = None;
            self.free.push(worker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_entry_stays_small() {
        // The queue can hold a timer for every trigger deferred overnight: hundreds of
        // thousands in a million-trigger run, so each entry's size is peak memory.
        let size = std::mem::size_of::<Queued>();
        assert!(size <= 64, "a queue entry takes {size} bytes");
    }
}
