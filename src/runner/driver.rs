//! The live driver: carries the runner's commands out with tokio, a [`ScheduleApi`]
//! client, a [`Clock`] and a [`RandomSource`], and feeds the answers back.
//!
//! Everything runs on one task: calls and waits are futures polled together, so the
//! client's futures need not be `Send` and the machine needs no lock. The driver takes
//! every input that is ready at once, records all the events they produced as one batch
//! (awaited), and only then makes the calls and arms the waits they asked for: a step is
//! on record before anything it decided is done, and an error recording stops the driver.

use crate::api::notify::Heard;
use crate::api::notify::cache::StateCache;
use crate::api::{ScheduleApi, ScheduleRef};
use crate::effects::clock::Clock;
use crate::effects::random::RandomSource;
use crate::policy::Policy;
use crate::runner::event::{Batch, Event, EventKind, EventRecorder, WaitReason};
use crate::runner::{CallFailure, Command, EarlierWrite, Input, Runner, RunnerConfig, Trigger};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use tokio::sync::mpsc;

/// A call or a wait in flight, and what it feeds back to which schedule.
type InFlight<'a> = Pin<Box<dyn Future<Output = (ScheduleRef, Input)> + 'a>>;

/// Runs triggers through a [`Runner`] against a live (or test double) API.
pub struct Driver<'a, A, R, K: ?Sized> {
    api: &'a A,
    clock: &'a dyn Clock,
    recorder: &'a K,
    random: R,
    runner: Runner,
    wait_out_deferrals: bool,
    stop_on_close: bool,
    heard: Option<mpsc::Receiver<Heard>>,
}

/// Calls and waits in flight, kept apart so that stopping can drop the waits and still let
/// the calls answer.
struct Pending<'a> {
    calls: FuturesUnordered<InFlight<'a>>,
    waits: FuturesUnordered<InFlight<'a>>,
}

impl<'a> Pending<'a> {
    /// The next answer or timer.
    async fn next(&mut self) -> Option<(ScheduleRef, Input)> {
        tokio::select! {
            Some(done) = self.calls.next(), if !self.calls.is_empty() => Some(done),
            Some(done) = self.waits.next(), if !self.waits.is_empty() => Some(done),
            else => None,
        }
    }

    /// An answer or timer that is ready now, if any.
    fn ready(&mut self) -> Option<(ScheduleRef, Input)> {
        self.calls
            .next()
            .now_or_never()
            .flatten()
            .or_else(|| self.waits.next().now_or_never().flatten())
    }

    fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.waits.is_empty()
    }
}

/// The policy each schedule's cycle in flight started under: a reload takes effect for the
/// next cycle, never in the middle of one.
struct Pins<P> {
    by_schedule: HashMap<ScheduleRef, P>,
}

impl<P: Clone> Pins<P> {
    /// The policy `schedule`'s next step runs under.
    fn policy(&self, schedule: &ScheduleRef, current: &impl Fn() -> P) -> P {
        self.by_schedule
            .get(schedule)
            .cloned()
            .unwrap_or_else(current)
    }

    /// Follow cycles starting and ending.
    fn follow(&mut self, event: &Event, current: &impl Fn() -> P) {
        match event.kind {
            EventKind::CycleStarted { .. } => {
                self.by_schedule
                    .insert(ScheduleRef::clone(&event.schedule), current());
            }
            EventKind::Outcome { .. } => {
                self.by_schedule.remove(&event.schedule);
            }
            _ => {}
        }
    }
}

impl<'a, A: ScheduleApi, R: RandomSource, K: ?Sized> Driver<'a, A, R, K> {
    /// A driver that stops at deferrals (the outcome says until when) and, once its
    /// trigger channel closes, finishes every cycle in flight.
    pub fn new(
        api: &'a A,
        clock: &'a dyn Clock,
        recorder: &'a K,
        random: R,
        config: RunnerConfig,
    ) -> Self {
        Driver {
            api,
            clock,
            recorder,
            random,
            runner: Runner::new(config),
            wait_out_deferrals: false,
            stop_on_close: false,
            heard: None,
        }
    }

    /// Listens to a notification client's reports (see [`Runner::with_notifications`]);
    /// states learnt expire after `max_age`.
    pub fn hearing(self, heard: mpsc::Receiver<Heard>, max_age: jiff::SignedDuration) -> Self {
        self.hearing_with(heard, StateCache::new(max_age))
    }

    /// As [`Driver::hearing`], keeping what is heard in `cache` (see [`Runner::with_cache`]).
    pub fn hearing_with(mut self, heard: mpsc::Receiver<Heard>, cache: StateCache) -> Self {
        self.runner = std::mem::replace(&mut self.runner, Runner::new(RunnerConfig::default()))
            .with_cache(cache);
        self.heard = Some(heard);
        self
    }

    /// Whether to sleep until a deferral runs out and evaluate again (a long-running
    /// service does; one `run` cycle does not).
    pub fn wait_out_deferrals(mut self, wait: bool) -> Self {
        self.wait_out_deferrals = wait;
        self
    }

    /// Whether, once the trigger channel closes, to stop as soon as the calls in flight
    /// (and any publish already decided) have answered and their steps are recorded, leaving
    /// waits and later reads undone (a service shutting down, whose store carries its
    /// triggers on after a restart).
    pub fn stop_on_close(mut self, stop: bool) -> Self {
        self.stop_on_close = stop;
        self
    }

    /// Feed triggers (each with a tag the recorder gets back beside the trigger's sequence
    /// number) until the channel closes, then finish (or stop, see
    /// [`Driver::stop_on_close`]). A new cycle starts under `policy()` as it is then.
    /// Returns the recorder's error, after which nothing more was done.
    pub async fn run<T, P>(
        &mut self,
        policy: impl Fn() -> P,
        mut triggers: mpsc::Receiver<(ScheduleRef, Trigger, T)>,
    ) -> Result<(), K::Error>
    where
        K: EventRecorder<T>,
        P: Deref<Target = Policy> + Clone,
    {
        let mut pending = Pending {
            calls: FuturesUnordered::new(),
            waits: FuturesUnordered::new(),
        };
        let mut pins = Pins {
            by_schedule: HashMap::new(),
        };
        let mut commands = Vec::new();
        let mut open = true;
        let mut heard = self.heard.take();
        loop {
            let mut fed = Vec::new();
            tokio::select! {
                // Triggers first: a burst that is already queued is coalesced, not raced.
                biased;
                next = triggers.recv(), if open => match next {
                    Some(trigger) => fed.push(self.trigger(&pins, &policy, trigger, &mut commands)),
                    None => open = false,
                },
                // Heard while there is something to hear for; the driver still ends when idle.
                Some(said) = next_heard(&mut heard), if heard.is_some() && (open || !pending.is_empty()) => {
                    self.heard(&pins, &policy, said, &mut commands);
                }
                Some((schedule, input)) = pending.next(), if !pending.is_empty() => {
                    self.input(&pins, &policy, schedule, input, &mut commands);
                }
                else => break,
            }
            // Take whatever else is ready too, so one batch records it all.
            while open && let Ok(trigger) = triggers.try_recv() {
                fed.push(self.trigger(&pins, &policy, trigger, &mut commands));
            }
            while let Some((schedule, input)) = pending.ready() {
                self.input(&pins, &policy, schedule, input, &mut commands);
            }
            let stopping = !open && self.stop_on_close;
            if stopping {
                pending.waits.clear();
            }
            let mut events = Vec::new();
            let mut actions = Vec::new();
            for command in commands.drain(..) {
                match command {
                    Command::Emit(event) => {
                        pins.follow(&event, &policy);
                        events.push(event);
                    }
                    action => actions.push(action),
                }
            }
            if !events.is_empty() || !fed.is_empty() {
                self.recorder.record_batch(Batch { fed, events }).await?;
            }
            // A publish decided and recorded still goes out while stopping, so a restart
            // knows its answer rather than guess whether it went out.
            for action in actions {
                if !stopping || matches!(action, Command::Publish { .. }) {
                    self.act(&mut pending, action);
                }
            }
        }
        Ok(())
    }

    /// Hand one trigger to the runner; returns its sequence number and tag.
    fn trigger<T, P: Deref<Target = Policy> + Clone>(
        &mut self,
        pins: &Pins<P>,
        policy: &impl Fn() -> P,
        (schedule, trigger, tag): (ScheduleRef, Trigger, T),
        commands: &mut Vec<Command>,
    ) -> (u64, T) {
        let now = self.clock.now();
        let policy = pins.policy(&schedule, policy);
        let random: &mut dyn RandomSource = &mut self.random;
        let seq = self
            .runner
            .trigger(now, &policy, random, schedule, trigger, commands);
        (seq, tag)
    }

    /// Hand one answer or timer to the runner.
    fn input<P: Deref<Target = Policy> + Clone>(
        &mut self,
        pins: &Pins<P>,
        policy: &impl Fn() -> P,
        schedule: ScheduleRef,
        input: Input,
        commands: &mut Vec<Command>,
    ) {
        let now = self.clock.now();
        let policy = pins.policy(&schedule, policy);
        let random: &mut dyn RandomSource = &mut self.random;
        self.runner
            .input(now, &policy, random, &schedule, input, commands);
    }

    /// Start a call or arm a wait.
    fn heard<P: Deref<Target = Policy> + Clone>(
        &mut self,
        pins: &Pins<P>,
        policy: &impl Fn() -> P,
        said: Heard,
        commands: &mut Vec<Command>,
    ) {
        let now = self.clock.now();
        let policy = match &said {
            Heard::Schedule(event) => pins.policy(&event.schedule, policy),
            Heard::Up(_) | Heard::Gap { .. } => policy(),
        };
        let random: &mut dyn RandomSource = &mut self.random;
        self.runner.heard(now, &policy, random, said, commands);
    }

    fn act(&self, pending: &mut Pending<'a>, action: Command) {
        let (api, clock) = (self.api, self.clock);
        match action {
            Command::Emit(_) => {}
            Command::Read(schedule) => pending.calls.push(Box::pin(async move {
                let answer = api.read(&schedule).await;
                let input = Input::StateRead(answer.map_err(|e| CallFailure::from(&e)));
                (schedule, input)
            })),
            Command::Publish {
                schedule,
                version,
                idempotency_key,
            } => pending.calls.push(Box::pin(async move {
                let answer = api.publish(&schedule, version, &idempotency_key).await;
                let result = answer.map_err(|e| CallFailure::from(&e));
                (schedule, Input::PublishAnswered(result))
            })),
            Command::WaitUntil {
                reason: WaitReason::Defer,
                ..
            } if !self.wait_out_deferrals => {}
            Command::WaitUntil {
                schedule,
                timer,
                until,
                ..
            } => pending.waits.push(Box::pin(async move {
                clock.sleep_until(until).await;
                (schedule, Input::TimerFired(timer))
            })),
        }
    }

    /// Run these triggers (all queued at once, so they coalesce as a burst would) to the end.
    pub async fn run_triggers(
        &mut self,
        policy: &Policy,
        triggers: Vec<(ScheduleRef, Trigger)>,
    ) -> Result<(), K::Error>
    where
        K: EventRecorder<()>,
    {
        let (tx, rx) = mpsc::channel(triggers.len().max(1));
        for (schedule, trigger) in triggers {
            // The receiver is alive and the channel has room for every trigger.
            let _ = tx.try_send((schedule, trigger, ()));
        }
        drop(tx);
        self.run(|| policy, rx).await
    }

    /// Tell the runner of a write an earlier process made (see [`Runner::resume_publish`]).
    pub fn resume_publish(&mut self, write: EarlierWrite) {
        self.runner.resume_publish(write);
    }

    /// Whether no cycle is in flight.
    pub fn is_idle(&self) -> bool {
        self.runner.is_idle()
    }
}

/// The next report of the notification client; `None` (and the receiver dropped, so the
/// branch is off) once it has stopped.
async fn next_heard(heard: &mut Option<mpsc::Receiver<Heard>>) -> Option<Heard> {
    let said = match heard {
        Some(rx) => rx.recv().await,
        None => None,
    };
    if said.is_none() {
        *heard = None;
    }
    said
}
