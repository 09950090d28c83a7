//! The per-schedule state machine: one publish cycle at a time, triggers coalesced, every
//! step emitted once. No I/O, no clock, no randomness of its own: all come in through
//! [`Step`], so the live driver and the simulator run exactly this code.

use crate::api::notify::cache::{Cached, Learnt};
use crate::api::notify::event::ScheduleNotification;
use crate::api::{OperationStatus, ScheduleRef, ScheduleSnapshot};
use crate::effects::random::RandomSource;
use crate::evaluation::evaluator::evaluate;
use crate::language::ast::{Jitter, PhaseKind};
use crate::policy::Policy;
use crate::policy::backoff::{BackoffProfile, Delay};
use crate::policy::decision::Verdict;
use crate::policy::facts::Facts;
use crate::runner::budget::RetryBudget;
use crate::runner::confirm::{Seen, Unconfirmed};
use crate::runner::event::{
    CycleCause, Event, EventKind, Outcome, ReadPurpose, THROTTLE_WAIT_SHOWN, ThrottledCall,
    WaitReason,
};
use crate::runner::facts::{FactSources, ScheduleState, add_response, trigger_facts};
use crate::runner::write::{OurWrite, broken};
use crate::runner::{CallResult, Command, FailureKind, Input, RunnerConfig, TimerId, Trigger};
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What one call into a machine may use and where its commands go.
pub struct Step<'a> {
    /// The runner's clock, read by the driver.
    pub now: Timestamp,
    /// The policy in force.
    pub policy: &'a Policy,
    /// Jitter for backoff delays.
    pub random: &'a mut dyn RandomSource,
    /// The retry budget shared by all schedules.
    pub budget: &'a mut RetryBudget,
    /// Bounds and mode.
    pub config: &'a RunnerConfig,
    /// Commands for the driver, in order.
    pub out: &'a mut Vec<Command>,
    /// The policy's version as events name it (one shared copy, not one per event).
    pub policy_version: Arc<str>,
    /// The schedule's state as the notification channel's cache holds it, when it may be
    /// trusted (the channel has been up without a gap since it was learnt).
    pub known: Option<Cached>,
    /// The notification channel is up: a follow waits for our operation's event.
    pub hearing: bool,
    /// The longest a decision made from the channel's kept state waits for a read to
    /// confirm it (the cache's age limit).
    pub confirm_within: SignedDuration,
}

/// While the channel is up, a follow reads only this often: the operation's event ends it.
const HEARD_FOLLOW_POLL: SignedDuration = SignedDuration::from_secs(60);

/// A trigger coalesced during a follow brings the follow's next read forward, but never
/// closer than this to the cycle's previous call: a storm of webhooks is not a polling storm.
pub(crate) const EARLY_FOLLOW_READ_GAP: SignedDuration = SignedDuration::from_secs(8);

/// Following an update when the policy declares no backoff profile at all.
fn default_follow_profile() -> BackoffProfile {
    BackoffProfile {
        name: "follow".into(),
        initial: SignedDuration::from_secs(1),
        factor: 2.0,
        max: SignedDuration::from_secs(30),
        jitter: Jitter::Full,
        attempts: 10,
    }
}

/// The trigger a cycle evaluates: the latest one folded in, preferring non-duplicates.
#[derive(Clone, Debug)]
pub(super) struct Basis {
    trigger: Trigger,
    /// Every trigger folded in was a duplicate.
    duplicate: bool,
}

impl Basis {
    /// Fold a later trigger in: it becomes the basis unless it is a duplicate and the
    /// current basis is not.
    fn fold(&mut self, trigger: Trigger, duplicate: bool) {
        if !duplicate || self.duplicate {
            self.trigger = trigger;
        }
        self.duplicate &= duplicate;
    }
}

/// Where an in-flight cycle stands.
#[derive(Clone, Debug)]
enum Stage {
    /// A read is in flight.
    Reading(ReadPurpose),
    /// A write is in flight (the machine's [`OurWrite::Reserved`]).
    Publishing,
    /// A wait is armed until `until`; when it fires, read for `then`.
    Waiting {
        timer: TimerId,
        until: Timestamp,
        then: ReadPurpose,
    },
}

/// One publish cycle: from the first read to an outcome.
#[derive(Clone, Debug)]
struct Cycle {
    id: u64,
    basis: Basis,
    /// Triggers this cycle answers.
    triggers: u32,
    /// `trigger.coalesced`.
    coalesced: u32,
    stage: Stage,
    snapshot: Option<ScheduleSnapshot>,
    attempt: u32,
    retries: u32,
    rechecks: u32,
    follows: u32,
    /// A coalesced trigger has brought a follow read forward (once a cycle).
    hastened: bool,
    /// A deferral running out started it.
    from_deferral: bool,
    last_wait: Option<SignedDuration>,
    /// The profile of the last backoff, which also paces following.
    profile: Option<BackoffProfile>,
    /// The id of our accepted update operation, which its events name.
    operation_id: Option<String>,
    /// Our operation's end, heard while a follow read was in flight: applied when it answers.
    heard_end: Option<ScheduleNotification>,
    /// It decided from the channel's kept state and no call has answered since.
    from_channel: bool,
    /// It confirms decisions made without a read, which saw this.
    confirming: Option<Seen>,
    /// When the cycle's latest call answered (or, before any, when it started).
    last_call: Timestamp,
    /// When the cycle's latest read was asked for.
    read_sent: Option<Timestamp>,
}

/// Triggers that arrived during a cycle: one further evaluation when it ends.
#[derive(Clone, Debug)]
struct Pending {
    cycle: u64,
    basis: Basis,
    triggers: u32,
    /// When the latest trigger was folded in (none: only a deferral's evaluation).
    latest: Option<Timestamp>,
}

/// A deferral waiting for its instant.
#[derive(Clone, Debug)]
struct Deferral {
    timer: TimerId,
    until: Timestamp,
    cycle: u64,
    basis: Basis,
}

/// The state of one schedule in this process.
#[derive(Clone, Debug)]
pub struct ScheduleMachine {
    schedule: Arc<ScheduleRef>,
    cycle: Option<Cycle>,
    pending: Option<Pending>,
    deferral: Option<Deferral>,
    last_publish: Option<(Timestamp, i64)>,
    /// Our latest write, as far as this process knows.
    write: OurWrite,
    /// Decisions made from the channel's kept state that a read has not confirmed yet.
    unconfirmed: Option<Unconfirmed<Basis>>,
    next_cycle: u64,
    next_timer: u64,
}

impl ScheduleMachine {
    /// A machine with nothing in flight.
    pub fn new(schedule: ScheduleRef) -> Self {
        ScheduleMachine {
            schedule: Arc::new(schedule),
            cycle: None,
            pending: None,
            deferral: None,
            last_publish: None,
            write: OurWrite::None,
            unconfirmed: None,
            next_cycle: 0,
            next_timer: 0,
        }
    }

    /// Whether no cycle is in flight (a deferral may be armed).
    pub fn is_idle(&self) -> bool {
        self.cycle.is_none()
    }

    /// A write of ours at `version`, decided at `since` by an earlier process, was
    /// `accepted`, or may have gone out with its answer lost. The next cycles take the
    /// schedule for publishing (one that may have gone out, for a short grace) rather than
    /// write again; after that, if the same write meets a 409, it is taken for ours and
    /// followed (one 409 rather than a storm of them).
    pub fn resume_publish(&mut self, version: i64, since: Timestamp, accepted: bool) {
        self.write.resume(version, since, accepted);
    }

    /// A trigger arrived: start a cycle, or fold it into the one further evaluation.
    pub fn trigger(&mut self, step: &mut Step<'_>, seq: u64, trigger: Trigger, duplicate: bool) {
        self.emit(
            step,
            None,
            EventKind::TriggerReceived {
                trigger: seq,
                delivery_id: trigger.delivery_id.clone(),
                source: trigger.source.clone(),
                event: trigger.event.clone(),
                duplicate,
            },
        );
        if self.cycle.is_none() {
            let basis = Basis { trigger, duplicate };
            let id = self.allocate_cycle();
            let cause = CycleCause::Trigger { trigger: seq };
            self.start(step, id, basis, 1, 0, cause, None);
            return;
        }
        let into = match &mut self.pending {
            Some(p) => {
                p.basis.fold(trigger, duplicate);
                p.triggers += 1;
                p.latest = Some(step.now);
                p.cycle
            }
            None => {
                let cycle = self.allocate_cycle();
                self.pending = Some(Pending {
                    cycle,
                    basis: Basis { trigger, duplicate },
                    triggers: 1,
                    latest: Some(step.now),
                });
                cycle
            }
        };
        self.emit(
            step,
            Some(into),
            EventKind::TriggerCoalesced {
                trigger: seq,
                into_cycle: into,
            },
        );
        self.follow_sooner(step);
    }

    /// A trigger coalesced while we follow our write says the schedule may have changed
    /// since it landed (an edit sends a webhook): the follow's next read comes at once, or
    /// [`EARLY_FOLLOW_READ_GAP`] after the cycle's previous call, whichever is later. A
    /// follow waiting for our operation's event (the channel up) is left to it.
    fn follow_sooner(&mut self, step: &mut Step<'_>) {
        let Some(cycle) = &mut self.cycle else { return };
        let Stage::Waiting {
            until,
            then: ReadPurpose::Follow,
            ..
        } = cycle.stage
        else {
            return;
        };
        if step.hearing || cycle.hastened {
            return;
        }
        let sooner = later(cycle.last_call, EARLY_FOLLOW_READ_GAP).max(step.now);
        if sooner >= until {
            return;
        }
        cycle.hastened = true;
        if sooner == step.now {
            self.read(step, ReadPurpose::Follow);
            return;
        }
        let delay = Delay {
            duration: step.now.duration_until(sooner),
            retry_after: None,
            capped: false,
        };
        let count = cycle.follows;
        self.wait(
            step,
            WaitReason::Follow,
            delay,
            None,
            count,
            ReadPurpose::Follow,
        );
    }

    /// An answer or a timer for this schedule. Inputs no command asked for are ignored.
    pub fn input(&mut self, step: &mut Step<'_>, input: Input) {
        match input {
            Input::StateRead(result) => {
                if let Some(Stage::Reading(purpose)) = self.cycle.as_ref().map(|c| &c.stage) {
                    let purpose = *purpose;
                    self.on_read(step, purpose, result);
                }
            }
            Input::PublishAnswered(result) => {
                if let Some(Stage::Publishing) = self.cycle.as_ref().map(|c| &c.stage)
                    && let Some((version, key)) = self.write.reserved()
                {
                    let key = key.to_owned();
                    self.on_publish_answer(step, version, key, result);
                }
            }
            Input::TimerFired(timer) => self.on_timer(step, timer),
        }
    }

    fn allocate_cycle(&mut self) -> u64 {
        self.next_cycle += 1;
        self.next_cycle
    }

    /// Start cycle `id`; it decides from `fresh` (the read that ended the cycle before it)
    /// or a known state when one may be used, else it reads.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        step: &mut Step<'_>,
        id: u64,
        basis: Basis,
        triggers: u32,
        coalesced: u32,
        cause: CycleCause,
        fresh: Option<Cached>,
    ) {
        let timeout = step.config.follow_timeout;
        self.write = std::mem::take(&mut self.write).at_cycle_start(step.now, timeout);
        self.cycle = Some(Cycle {
            id,
            basis,
            triggers,
            coalesced,
            stage: Stage::Reading(ReadPurpose::Evaluate),
            snapshot: None,
            attempt: 0,
            retries: 0,
            rechecks: 0,
            follows: 0,
            hastened: false,
            from_deferral: matches!(cause, CycleCause::Deferral { .. }),
            last_wait: None,
            profile: None,
            operation_id: None,
            heard_end: None,
            from_channel: false,
            confirming: None,
            last_call: step.now,
            read_sent: None,
        });
        let confirm = matches!(cause, CycleCause::Confirm { .. });
        self.emit(step, Some(id), EventKind::CycleStarted { cause });
        if confirm {
            self.read(step, ReadPurpose::Confirm);
            return;
        }
        // A known state decides only when no write of ours may still be running.
        let known = fresh.or_else(|| step.known.clone());
        match known.filter(|_| self.write == OurWrite::None) {
            Some(known) => self.on_known(step, known),
            None => self.read(step, ReadPurpose::Evaluate),
        }
    }

    /// The trigger phase runs on the cached state, as it would on a read.
    fn on_known(&mut self, step: &mut Step<'_>, known: Cached) {
        let operation = self.write.operation(step.now);
        let Some(cycle) = &mut self.cycle else { return };
        let state = ScheduleState::derive(Some(&known.snapshot), operation);
        let id = cycle.id;
        let event = EventKind::StateKnown {
            learnt: known.by,
            learnt_at: known.at,
            state,
            published: known.snapshot.published,
            version: known.snapshot.version,
        };
        cycle.snapshot = Some(known.snapshot);
        cycle.from_channel = known.by != Learnt::Follow;
        self.emit(step, Some(id), event);
        self.decide(step, PhaseKind::Trigger, None);
    }

    /// An event on the notification channel for this schedule. One for our operation's end
    /// ends the follow at once; others' changes only feed the cache (the runner's).
    pub fn heard(&mut self, step: &mut Step<'_>, heard: &ScheduleNotification) {
        let ours = heard.operation_id.is_some()
            && heard.operation_id == self.cycle.as_ref().and_then(|c| c.operation_id.clone());
        if !ours
            && let Some(u) = &mut self.unconfirmed
            && u.seen.outdated_by(&heard.snapshot)
        {
            u.due = true;
            self.confirm_if_due(step);
        }
        let Some(cycle) = &mut self.cycle else { return };
        if !ours || heard.status == OperationStatus::Processing {
            return;
        }
        match cycle.stage {
            Stage::Reading(ReadPurpose::Follow) => cycle.heard_end = Some(heard.clone()),
            Stage::Waiting {
                then: ReadPurpose::Follow,
                ..
            } => self.end_follow(step, heard.clone()),
            _ => {}
        }
    }

    /// The channel had a gap: a follow that waited for an event reads at once instead.
    pub fn gap(&mut self, step: &mut Step<'_>) {
        if let Some(Stage::Waiting {
            then: ReadPurpose::Follow,
            ..
        }) = self.cycle.as_ref().map(|c| &c.stage)
        {
            self.read(step, ReadPurpose::Follow);
        }
    }

    /// Our operation ended, as its event says: `Complete` is published at the event's
    /// version; `Error` and `Canceled` go back to the policy (a recheck, so bounded).
    fn end_follow(&mut self, step: &mut Step<'_>, heard: ScheduleNotification) {
        let followed = self.write.followed(step.now);
        let Some(cycle) = &mut self.cycle else { return };
        let id = cycle.id;
        let event = EventKind::Heard {
            status: heard.status,
            operation_id: heard.operation_id.clone().unwrap_or_default(),
            published: heard.snapshot.published,
            version: heard.snapshot.version,
        };
        let status = heard.status;
        let version = heard.snapshot.version;
        cycle.snapshot = Some(heard.snapshot);
        cycle.operation_id = None;
        if let Some(followed) = followed {
            self.write = OurWrite::Finished {
                version: followed,
                status,
            };
        }
        self.emit(step, Some(id), event);
        if status == OperationStatus::Complete {
            self.finish(step, Outcome::Published { version });
            return;
        }
        let Some(cycle) = &mut self.cycle else { return };
        if cycle.rechecks >= step.config.max_rechecks {
            let reason = format!("update operation ended {status:?}");
            self.finish(step, Outcome::Failed { reason });
            return;
        }
        cycle.rechecks += 1;
        self.decide(step, PhaseKind::Trigger, None);
    }

    fn read(&mut self, step: &mut Step<'_>, purpose: ReadPurpose) {
        if let Some(c) = &mut self.cycle {
            c.stage = Stage::Reading(purpose);
            c.read_sent = Some(step.now);
            step.out
                .push(Command::Read(ScheduleRef::clone(&self.schedule)));
        }
    }

    fn on_read(
        &mut self,
        step: &mut Step<'_>,
        purpose: ReadPurpose,
        result: CallResult<ScheduleSnapshot>,
    ) {
        if let Ok(answer) = &result {
            self.throttled(step, ThrottledCall::Read, answer.waited);
        }
        let mut unauthorized = None;
        let (status, error, snapshot) = match result {
            Ok(answer) => match answer.body {
                Some(body) if (200..300).contains(&answer.status) => {
                    step.budget.deposit(step.now);
                    (Some(answer.status), None, Some(body))
                }
                _ => (
                    Some(answer.status),
                    Some(format!("HTTP {}", answer.status)),
                    None,
                ),
            },
            Err(failure) => {
                if failure.kind == FailureKind::Unauthorized {
                    unauthorized = Some(failure.reason.clone());
                }
                (None, Some(failure.reason), None)
            }
        };
        let followed = self.write.followed(step.now);
        if let Some(s) = &snapshot {
            self.write.read(s.published, s.version);
            // A read sent after every decision made without one: this cycle decides on it.
            self.unconfirmed = None;
        }
        let operation = self.write.operation(step.now);
        let Some(cycle) = &mut self.cycle else { return };
        cycle.last_call = step.now;
        if snapshot.is_some() {
            cycle.from_channel = false;
        }
        let state = ScheduleState::derive(snapshot.as_ref(), operation);
        let id = cycle.id;
        let event = EventKind::StateRead {
            purpose,
            status,
            error,
            state,
            published: snapshot.as_ref().map(|s| s.published),
            version: snapshot.as_ref().map(|s| s.version),
        };
        if let Some(reason) = unauthorized {
            self.emit(step, Some(id), event);
            self.finish(step, Outcome::Unauthorized { reason });
            return;
        }
        match purpose {
            ReadPurpose::Evaluate => {
                cycle.snapshot = snapshot;
                self.emit(step, Some(id), event);
                self.decide(step, PhaseKind::Trigger, None);
            }
            ReadPurpose::Confirm => {
                let stands = cycle
                    .confirming
                    .zip(snapshot.as_ref())
                    .filter(|(seen, s)| !seen.outdated_by(s))
                    .map(|(_, s)| s.version);
                cycle.snapshot = snapshot;
                self.emit(step, Some(id), event);
                match stands {
                    Some(version) => self.finish(step, Outcome::Confirmed { version }),
                    None => self.decide(step, PhaseKind::Trigger, None),
                }
            }
            ReadPurpose::Follow => {
                // The version only moves when a write lands: above ours, ours has landed.
                let ended = snapshot.as_ref().and_then(|s| match followed {
                    Some(v) if s.version <= v => None,
                    _ if s.published => Some(Outcome::Published { version: s.version }),
                    Some(_) if !broken::follow_version_check_dropped() => {
                        Some(Outcome::LandedThenChanged { version: s.version })
                    }
                    Some(_) => None,
                    None => None,
                });
                if snapshot.is_some() {
                    cycle.snapshot = snapshot;
                }
                let heard = cycle.heard_end.take();
                self.emit(step, Some(id), event);
                match (ended, heard) {
                    (Some(outcome), _) => self.finish(step, outcome),
                    (None, Some(heard)) => self.end_follow(step, heard),
                    (None, None) => self.follow_wait(step),
                }
            }
        }
    }

    fn on_publish_answer(
        &mut self,
        step: &mut Step<'_>,
        version: i64,
        key: String,
        result: CallResult<crate::api::PublishAccepted>,
    ) {
        let Some(id) = self.cycle.as_ref().map(|c| c.id) else {
            return;
        };
        if let Ok(answer) = &result {
            self.throttled(step, ThrottledCall::Publish, answer.waited);
        }
        let mut unauthorized = None;
        let (status, retry_after, error, accepted) = match result {
            Ok(answer) => {
                let accepted = answer.body.filter(|_| (200..300).contains(&answer.status));
                let error = match (&accepted, answer.status) {
                    (None, 200..300) => Some("no update operation in the answer".to_owned()),
                    _ => None,
                };
                (answer.status, answer.retry_after, error, accepted)
            }
            Err(failure) => {
                if failure.kind == FailureKind::Unauthorized {
                    unauthorized = Some(failure.reason.clone());
                }
                (0, None, Some(failure.reason), None)
            }
        };
        if let Some(cycle) = &mut self.cycle {
            cycle.last_call = step.now;
            if let Some(a) = &accepted {
                cycle.operation_id = a.operation_id.clone();
                // Accepted at the version it asserted: the state it was decided on was current.
                cycle.from_channel = false;
            }
        }
        if accepted.is_some() {
            step.budget.deposit(step.now);
        }
        self.write
            .answered(step.now, status, accepted.as_ref().map(|a| a.status));
        self.emit(
            step,
            Some(id),
            EventKind::PublishCall {
                version,
                idempotency_key: key,
                status: (status != 0).then_some(status),
                error,
                retry_after,
                operation: accepted.as_ref().map(|a| a.status),
                operation_id: accepted.and_then(|a| a.operation_id),
            },
        );
        match unauthorized {
            Some(reason) => self.finish(step, Outcome::Unauthorized { reason }),
            None => self.decide(step, PhaseKind::Response, Some((status, retry_after))),
        }
    }

    /// A `throttle_wait` event when the limiter held the call long enough to notice.
    fn throttled(&self, step: &mut Step<'_>, call: ThrottledCall, waited: SignedDuration) {
        if waited >= THROTTLE_WAIT_SHOWN {
            let cycle = self.cycle.as_ref().map(|c| c.id);
            self.emit(step, cycle, EventKind::ThrottleWait { call, waited });
        }
    }

    fn on_timer(&mut self, step: &mut Step<'_>, timer: TimerId) {
        if let Some(Stage::Waiting { timer: t, then, .. }) = self.cycle.as_ref().map(|c| &c.stage)
            && *t == timer
        {
            let then = *then;
            self.read(step, then);
            return;
        }
        if self.unconfirmed.as_ref().is_some_and(|u| u.timer == timer) {
            self.on_confirm_timer(step);
            return;
        }
        let Some(d) = self.deferral.take_if(|d| d.timer == timer) else {
            return;
        };
        if self.cycle.is_none() {
            let cause = CycleCause::Deferral {
                deferred_cycle: d.cycle,
            };
            let id = self.allocate_cycle();
            self.start(step, id, d.basis, 0, 0, cause, None);
            return;
        }
        // A cycle is in flight: the deferred evaluation joins the one after it.
        match &mut self.pending {
            Some(p) => p.basis.fold(d.basis.trigger, d.basis.duplicate),
            None => {
                let cycle = self.allocate_cycle();
                self.pending = Some(Pending {
                    cycle,
                    basis: d.basis,
                    triggers: 0,
                    latest: None,
                });
            }
        }
    }

    /// Run a phase on the current facts and act on its decision.
    fn decide(
        &mut self,
        step: &mut Step<'_>,
        phase: PhaseKind,
        response: Option<(u16, Option<SignedDuration>)>,
    ) {
        let Some(cycle) = &self.cycle else { return };
        let mut facts: Facts = trigger_facts(&FactSources {
            schedule: &self.schedule,
            snapshot: cycle.snapshot.as_ref(),
            operation: self.write.operation(step.now),
            trigger: &cycle.basis.trigger,
            duplicate: cycle.basis.duplicate,
            coalesced: cycle.coalesced,
            now: step.now,
            last_publish: self.last_publish,
            attempt: cycle.attempt,
            rechecks: cycle.rechecks,
        });
        if let Some((status, retry_after)) = response {
            add_response(&mut facts, status, retry_after);
        }
        let policy = step.policy;
        let decision = evaluate(policy, phase, &facts);
        let id = cycle.id;
        self.emit(
            step,
            Some(id),
            EventKind::Decision {
                phase,
                rule: decision.rule.to_owned(),
                action: decision.verdict.kind(),
                detail: decision.verdict.argument(),
            },
        );
        if step.config.dry_run {
            let action = decision.verdict.kind();
            self.finish(step, Outcome::DryRun { action });
            return;
        }
        self.act(step, phase, decision.verdict);
    }

    fn act(&mut self, step: &mut Step<'_>, phase: PhaseKind, verdict: Verdict<'_>) {
        match verdict {
            Verdict::Publish if phase == PhaseKind::Response => {
                let reason = "`publish` is not an action of `on response`".to_owned();
                self.finish(step, Outcome::Failed { reason });
            }
            Verdict::Publish => self.publish(step),
            Verdict::Skip { reason } => {
                let reason = reason.to_owned();
                self.finish(step, Outcome::Skipped { reason });
            }
            Verdict::Backoff { profile } => self.backoff(step, profile, None),
            Verdict::BackoffRetryAfter {
                retry_after,
                fallback,
            } => self.backoff(step, fallback, retry_after),
            Verdict::Defer { until } => self.defer(step, until),
            Verdict::Recheck => self.recheck(step),
            Verdict::Done => self.done(step),
            Verdict::Fail { reason } => {
                let reason = reason.to_owned();
                self.finish(step, Outcome::Failed { reason });
            }
        }
    }

    fn publish(&mut self, step: &mut Step<'_>) {
        let Some(cycle) = &mut self.cycle else { return };
        let Some(version) = cycle.snapshot.as_ref().map(|s| s.version) else {
            let reason = "cannot publish: the schedule's version is unknown".to_owned();
            self.finish(step, Outcome::Failed { reason });
            return;
        };
        cycle.attempt += 1;
        let key = idempotency_key(&self.schedule, version);
        cycle.stage = Stage::Publishing;
        self.write.reserve(version, key.clone());
        step.out.push(Command::Publish {
            schedule: ScheduleRef::clone(&self.schedule),
            version,
            idempotency_key: key,
        });
    }

    fn backoff(
        &mut self,
        step: &mut Step<'_>,
        profile: &BackoffProfile,
        retry_after: Option<SignedDuration>,
    ) {
        let Some(cycle) = &mut self.cycle else { return };
        // `attempts N` allows N tries: the N-th backoff decision is a failure, not a wait.
        if cycle.retries + 1 >= profile.attempts {
            let reason = format!(
                "attempts exhausted: {} of backoff `{}`",
                profile.attempts, profile.name
            );
            self.finish(step, Outcome::Failed { reason });
            return;
        }
        if !step.budget.withdraw(step.now) {
            let reason = "retry budget exhausted".to_owned();
            self.finish(step, Outcome::Failed { reason });
            return;
        }
        let delay = profile.delay(cycle.retries, cycle.last_wait, retry_after, step.random);
        cycle.retries += 1;
        cycle.last_wait = Some(delay.duration);
        cycle.profile = Some(profile.clone());
        let count = cycle.retries;
        let name = profile.name.clone();
        self.wait(
            step,
            WaitReason::Backoff,
            delay,
            Some(name),
            count,
            ReadPurpose::Evaluate,
        );
    }

    fn recheck(&mut self, step: &mut Step<'_>) {
        let Some(cycle) = &mut self.cycle else { return };
        if cycle.rechecks >= step.config.max_rechecks {
            let reason = format!("rechecks exhausted: {}", step.config.max_rechecks);
            self.finish(step, Outcome::Failed { reason });
            return;
        }
        if !step.budget.withdraw(step.now) {
            let reason = "retry budget exhausted".to_owned();
            self.finish(step, Outcome::Failed { reason });
            return;
        }
        cycle.rechecks += 1;
        self.read(step, ReadPurpose::Evaluate);
    }

    /// `done`: when our write was accepted, follow it until the schedule shows published.
    fn done(&mut self, step: &mut Step<'_>) {
        if self.cycle.is_none() {
            return;
        }
        if self.write.followed(step.now).is_none() {
            self.finish(step, Outcome::Done);
            return;
        }
        match self.write.operation(step.now) {
            Some(status @ (OperationStatus::Canceled | OperationStatus::Error)) => {
                let reason = format!("update operation ended {status:?}");
                self.finish(step, Outcome::Failed { reason });
            }
            // Complete: one read confirms the new version.
            Some(OperationStatus::Complete) => self.read(step, ReadPurpose::Follow),
            Some(OperationStatus::Processing) | None => self.follow_wait(step),
        }
    }

    /// Wait before the next follow read, paced by the cycle's (or the policy's first)
    /// backoff profile and bounded by the runner's follow timeout: the profile's attempts
    /// count tries of our own, while how long a publish stays Processing is the API's affair.
    fn follow_wait(&mut self, step: &mut Step<'_>) {
        let Some(cycle) = &mut self.cycle else { return };
        let profile = cycle
            .profile
            .clone()
            .or_else(|| step.policy.backoffs.first().cloned())
            .unwrap_or_else(default_follow_profile);
        let since = self.write.since().unwrap_or(step.now);
        let timeout = step.config.follow_timeout;
        if step.now.duration_since(since) >= timeout {
            let reason = format!(
                "the update did not show published within {timeout:#} ({} reads)",
                cycle.follows
            );
            self.finish(step, Outcome::Failed { reason });
            return;
        }
        let mut delay = profile.delay(cycle.follows, None, None, step.random);
        if step.hearing {
            delay.duration = delay.duration.max(HEARD_FOLLOW_POLL);
        }
        cycle.follows += 1;
        let count = cycle.follows;
        let name = profile.name;
        self.wait(
            step,
            WaitReason::Follow,
            delay,
            Some(name),
            count,
            ReadPurpose::Follow,
        );
    }

    fn wait(
        &mut self,
        step: &mut Step<'_>,
        reason: WaitReason,
        delay: Delay,
        profile: Option<String>,
        count: u32,
        then: ReadPurpose,
    ) {
        let timer = self.allocate_timer();
        let until = later(step.now, delay.duration);
        let Some(cycle) = &mut self.cycle else { return };
        cycle.stage = Stage::Waiting { timer, until, then };
        let id = cycle.id;
        self.emit(
            step,
            Some(id),
            EventKind::Wait {
                reason,
                until,
                delay,
                profile,
                count,
            },
        );
        step.out.push(Command::WaitUntil {
            schedule: ScheduleRef::clone(&self.schedule),
            timer,
            until,
            reason,
        });
    }

    /// `defer until T`: the cycle ends deferred; at T a new cycle evaluates again. Only one
    /// deferral is kept: the earliest instant, with the latest basis.
    fn defer(&mut self, step: &mut Step<'_>, until: Timestamp) {
        let Some(cycle) = &self.cycle else { return };
        // A deferral's own cycle deferring again to an instant already here (a window open
        // now) would repeat at once, forever, a read each time (found by `explore`).
        if cycle.from_deferral && until <= step.now {
            let reason = format!(
                "deferred again until {until}, an instant already here: the deferral would repeat at once"
            );
            self.finish(step, Outcome::Failed { reason });
            return;
        }
        let (id, mut basis) = (cycle.id, cycle.basis.clone());
        let until = match self.deferral.take() {
            Some(earlier) => {
                let mut merged = earlier.basis;
                merged.fold(basis.trigger, basis.duplicate);
                basis = merged;
                // One already due never ran (a driver that does not wait out deferrals
                // feeds the trigger again instead): this evaluation is its run.
                if earlier.until > step.now {
                    until.min(earlier.until)
                } else {
                    until
                }
            }
            None => until,
        };
        let timer = self.allocate_timer();
        let delay = Delay {
            duration: step.now.duration_until(until).max(SignedDuration::ZERO),
            retry_after: None,
            capped: false,
        };
        self.emit(
            step,
            Some(id),
            EventKind::Wait {
                reason: WaitReason::Defer,
                until,
                delay,
                profile: None,
                count: 1,
            },
        );
        step.out.push(Command::WaitUntil {
            schedule: ScheduleRef::clone(&self.schedule),
            timer,
            until,
            reason: WaitReason::Defer,
        });
        self.deferral = Some(Deferral {
            timer,
            until,
            cycle: id,
            basis,
        });
        self.finish(step, Outcome::Deferred { until });
    }

    /// End the cycle with `outcome`, then run the one further evaluation if triggers came.
    fn finish(&mut self, step: &mut Step<'_>, outcome: Outcome) {
        let Some(cycle) = self.cycle.take() else {
            return;
        };
        if let Outcome::Published { version } = outcome {
            self.last_publish = Some((step.now, version));
        }
        // A deferral decides again when it runs out; anything else decided without a read
        // stands until one confirms it.
        if cycle.from_channel && !matches!(outcome, Outcome::Deferred { .. }) {
            let version = cycle.snapshot.as_ref().map_or(0, |s| s.version);
            self.unconfirmed_decision(step, cycle.id, version, cycle.basis.clone());
        }
        let fresh =
            (self.pending.as_ref()).and_then(|p| fresh_read(&cycle, &outcome, p.latest, step.now));
        self.emit(
            step,
            Some(cycle.id),
            EventKind::Outcome {
                outcome,
                triggers: cycle.triggers,
            },
        );
        if let Some(p) = self.pending.take() {
            let cause = CycleCause::Coalesced {
                triggers: p.triggers,
            };
            self.start(step, p.cycle, p.basis, p.triggers, p.triggers, cause, fresh);
        }
        self.confirm_if_due(step);
    }

    /// Cycle `cycle` decided on `version` from the channel's kept state and ended without a
    /// call: one read confirms it with any others (see [`crate::runner::confirm`]).
    fn unconfirmed_decision(
        &mut self,
        step: &mut Step<'_>,
        cycle: u64,
        version: i64,
        basis: Basis,
    ) {
        if let Some(u) = &mut self.unconfirmed {
            // A duplicate's skip must not make the confirming cycle skip as a duplicate.
            u.basis.fold(basis.trigger, basis.duplicate);
            u.again(version, step.now);
            return;
        }
        let timer = self.allocate_timer();
        let u = Unconfirmed::new(cycle, version, basis, step.now, step.confirm_within, timer);
        self.arm_confirm(step, timer, u.armed);
        self.unconfirmed = Some(u);
    }

    fn arm_confirm(&self, step: &mut Step<'_>, timer: TimerId, until: Timestamp) {
        step.out.push(Command::WaitUntil {
            schedule: ScheduleRef::clone(&self.schedule),
            timer,
            until,
            reason: WaitReason::Confirm,
        });
    }

    /// The confirm wait ran out: wait on while decisions keep coming (within the limit),
    /// else the read is due.
    fn on_confirm_timer(&mut self, step: &mut Step<'_>) {
        let timer = self.allocate_timer();
        let Some(u) = &mut self.unconfirmed else {
            return;
        };
        let until = u.until();
        if until > step.now {
            u.timer = timer;
            u.armed = until;
            self.arm_confirm(step, timer, until);
            return;
        }
        u.due = true;
        self.confirm_if_due(step);
    }

    /// Start the confirming cycle when its read is due and no cycle is under way.
    fn confirm_if_due(&mut self, step: &mut Step<'_>) {
        if self.cycle.is_some() {
            return;
        }
        let Some(u) = self.unconfirmed.take_if(|u| u.due) else {
            return;
        };
        let id = self.allocate_cycle();
        let cause = CycleCause::Confirm {
            unconfirmed_cycle: u.cycle,
        };
        self.start(step, id, u.basis, 0, 0, cause, None);
        if let Some(cycle) = &mut self.cycle {
            cycle.confirming = Some(u.seen);
        }
    }

    fn allocate_timer(&mut self) -> TimerId {
        self.next_timer += 1;
        TimerId(self.next_timer)
    }

    fn emit(&self, step: &mut Step<'_>, cycle: Option<u64>, kind: EventKind) {
        step.out.push(Command::Emit(Event {
            at: step.now,
            schedule: Arc::clone(&self.schedule),
            policy_version: Arc::clone(&step.policy_version),
            cycle,
            kind,
        }));
    }
}

/// The follow read that just ended `cycle` with `outcome`, when it was asked for after the
/// latest trigger folded into the next cycle (at `latest`): that cycle decides from it
/// rather than read again at once. A trigger that came while the read was out may tell of
/// a change it missed, and then the next cycle reads.
fn fresh_read(
    cycle: &Cycle,
    outcome: &Outcome,
    latest: Option<Timestamp>,
    now: Timestamp,
) -> Option<Cached> {
    let ended_by_read = matches!(
        outcome,
        Outcome::Published { .. } | Outcome::LandedThenChanged { .. }
    ) && matches!(cycle.stage, Stage::Reading(ReadPurpose::Follow));
    let sent = cycle.read_sent?;
    if !ended_by_read || latest.is_some_and(|t| t > sent) {
        return None;
    }
    cycle.snapshot.clone().map(|snapshot| Cached {
        snapshot,
        at: now,
        by: Learnt::Follow,
    })
}

/// `t + d`, saturating at the end of time.
fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// The `Idempotency-Key` of publishing `schedule` at `version`: the same logical write
/// always gets the same key, in any process.
pub fn idempotency_key(schedule: &ScheduleRef, version: i64) -> String {
    let mut hash = Sha256::new();
    for part in [
        schedule.business_unit.as_str(),
        &schedule.week.to_string(),
        schedule.schedule_id.as_str(),
        &version.to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("pg-{hex}")
}
