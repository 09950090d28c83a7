//! The live driver: carries the runner's commands out with tokio, a [`ScheduleApi`]
//! client, a [`Clock`] and a [`RandomSource`], and feeds the answers back.
//!
//! Everything runs on one task: calls and waits are futures polled together, so the
//! client's futures need not be `Send` and the machine needs no lock.

use crate::api::clock::Clock;
use crate::api::{ScheduleApi, ScheduleRef};
use crate::event::{EventSink, WaitReason};
use crate::policy::Policy;
use crate::runner::random::RandomSource;
use crate::runner::{CallFailure, Command, Input, Runner, RunnerConfig, Trigger};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// A call or a wait in flight, and what it feeds back to which schedule.
type InFlight<'a> = Pin<Box<dyn Future<Output = (ScheduleRef, Input)> + 'a>>;

/// Runs triggers through a [`Runner`] against a live (or test double) API.
pub struct Driver<'a, A, R> {
    api: &'a A,
    clock: &'a dyn Clock,
    sink: &'a dyn EventSink,
    random: R,
    runner: Runner,
    wait_out_deferrals: bool,
}

impl<'a, A: ScheduleApi, R: RandomSource> Driver<'a, A, R> {
    /// A driver that stops at deferrals (the outcome says until when).
    pub fn new(
        api: &'a A,
        clock: &'a dyn Clock,
        sink: &'a dyn EventSink,
        random: R,
        config: RunnerConfig,
    ) -> Self {
        Driver {
            api,
            clock,
            sink,
            random,
            runner: Runner::new(config),
            wait_out_deferrals: false,
        }
    }

    /// Whether to sleep until a deferral runs out and evaluate again (a long-running
    /// service does; one `run` cycle does not).
    pub fn wait_out_deferrals(mut self, wait: bool) -> Self {
        self.wait_out_deferrals = wait;
        self
    }

    /// Feed `triggers` until the channel closes, then finish every cycle in flight.
    pub async fn run(
        &mut self,
        policy: &Policy,
        mut triggers: mpsc::Receiver<(ScheduleRef, Trigger)>,
    ) {
        let (api, clock) = (self.api, self.clock);
        let mut in_flight: FuturesUnordered<InFlight<'a>> = FuturesUnordered::new();
        let mut commands = Vec::new();
        let mut open = true;
        loop {
            tokio::select! {
                // Triggers first: a burst that is already queued is coalesced, not raced.
                biased;
                next = triggers.recv(), if open => match next {
                    Some((schedule, trigger)) => {
                        let now = clock.now();
                        let random: &mut dyn RandomSource = &mut self.random;
                        self.runner.trigger(now, policy, random, schedule, trigger, &mut commands);
                    }
                    None => open = false,
                },
                Some((schedule, input)) = in_flight.next(), if !in_flight.is_empty() => {
                    let now = clock.now();
                    let random: &mut dyn RandomSource = &mut self.random;
                    self.runner.input(now, policy, random, &schedule, input, &mut commands);
                }
                else => break,
            }
            for command in commands.drain(..) {
                match command {
                    Command::Emit(event) => self.sink.record(event),
                    Command::Read(schedule) => in_flight.push(Box::pin(async move {
                        let answer = api.read(&schedule).await;
                        let input = Input::StateRead(answer.map_err(|e| CallFailure::from(&e)));
                        (schedule, input)
                    })),
                    Command::Publish {
                        schedule,
                        version,
                        idempotency_key,
                    } => in_flight.push(Box::pin(async move {
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
                    } => in_flight.push(Box::pin(async move {
                        clock.sleep_until(until).await;
                        (schedule, Input::TimerFired(timer))
                    })),
                }
            }
        }
    }

    /// Run these triggers (all queued at once, so they coalesce as a burst would) to the end.
    pub async fn run_triggers(&mut self, policy: &Policy, triggers: Vec<(ScheduleRef, Trigger)>) {
        let (tx, rx) = mpsc::channel(triggers.len().max(1));
        for t in triggers {
            // The receiver is alive and the channel has room for every trigger.
            let _ = tx.try_send(t);
        }
        drop(tx);
        self.run(policy, rx).await;
    }

    /// Whether no cycle is in flight.
    pub fn is_idle(&self) -> bool {
        self.runner.is_idle()
    }
}
