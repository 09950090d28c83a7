//! Typed events: every step the runner takes, emitted exactly once to an [`EventSink`].
//!
//! The relay's audit log implements the sink; `run` prints each event as it comes; tests
//! collect them. Each event names the policy version that made its decisions.

use crate::api::notify::cache::Learnt;
use crate::api::{OperationStatus, ScheduleRef};
use crate::language::ast::{ActionKind, PhaseKind};
use crate::policy::backoff::Delay;
use crate::runner::facts::ScheduleState;
use jiff::{SignedDuration, Timestamp};
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// One step of the runner, with where and when it happened.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Event {
    /// The runner's clock when the step happened.
    pub at: Timestamp,
    /// The schedule concerned (shared: a machine's events all name the one it holds).
    pub schedule: Arc<ScheduleRef>,
    /// The policy's version (hex SHA-256 of its source), shared by the events it decided.
    pub policy_version: Arc<str>,
    /// The publish cycle the step belongs to, once one has started.
    pub cycle: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, one variant per kind of step.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A trigger arrived. Each is followed by exactly one `cycle_started` naming it or one
    /// `trigger_coalesced`.
    TriggerReceived {
        /// The runner's sequence number for the trigger, unique in this process.
        trigger: u64,
        /// The sender's delivery id, when it gave one.
        delivery_id: Option<String>,
        /// Where it came from.
        source: String,
        /// The sender's event name.
        event: Option<String>,
        /// The delivery id was seen before, within the retention.
        duplicate: bool,
    },
    /// A trigger arrived while a cycle was in flight: it is folded into the one further
    /// evaluation (`cycle`) that runs when the current cycle ends.
    TriggerCoalesced {
        /// The trigger's sequence number.
        trigger: u64,
        /// The cycle that will evaluate it.
        into_cycle: u64,
    },
    /// A publish cycle began.
    CycleStarted {
        /// Why it began.
        cause: CycleCause,
    },
    /// The schedule was read.
    StateRead {
        /// Why it was read.
        purpose: ReadPurpose,
        /// The HTTP status, when an answer came.
        status: Option<u16>,
        /// Why no usable answer came.
        error: Option<String>,
        /// The derived `schedule.state`.
        state: ScheduleState,
        /// The `published` flag, when read.
        published: Option<bool>,
        /// `metadata.version`, when read.
        version: Option<i64>,
    },
    /// The schedule's state was taken from the notification channel's cache, without a read:
    /// the channel has been up without a gap since it was learnt.
    StateKnown {
        /// How it was learnt (a read, or an event).
        learnt: Learnt,
        /// When.
        learnt_at: Timestamp,
        /// The derived `schedule.state`.
        state: ScheduleState,
        /// The `published` flag.
        published: bool,
        /// `metadata.version`.
        version: i64,
    },
    /// An event for our update operation arrived on the notification channel.
    Heard {
        /// The operation's status.
        status: OperationStatus,
        /// The operation's id.
        operation_id: String,
        /// The schedule's `published` flag after it.
        published: bool,
        /// `metadata.version` after it.
        version: i64,
    },
    /// A phase of the policy decided.
    Decision {
        /// Which phase decided.
        phase: PhaseKind,
        /// The deciding rule, or `otherwise`.
        rule: String,
        /// The action's kind (serialised as its keyword: `publish`, `skip`, `backoff`, ...).
        action: ActionKind,
        /// The action's argument: a reason, a profile, an instant.
        detail: Option<String>,
    },
    /// A write to the API and its answer.
    PublishCall {
        /// The version the write asserted.
        version: i64,
        /// The `Idempotency-Key` sent.
        idempotency_key: String,
        /// The HTTP status; `None` when no answer came.
        status: Option<u16>,
        /// Why no answer came.
        error: Option<String>,
        /// The answer's `Retry-After`.
        retry_after: Option<SignedDuration>,
        /// The update operation's first status.
        operation: Option<OperationStatus>,
        /// The update operation's id.
        operation_id: Option<String>,
    },
    /// The runner waits before its next step.
    Wait {
        /// Why.
        reason: WaitReason,
        /// Until when.
        until: Timestamp,
        /// How long, and whether `Retry-After` decided it.
        delay: Delay,
        /// The backoff profile used, if any.
        profile: Option<String>,
        /// Waits of this kind so far in the cycle, this one included.
        count: u32,
    },
    /// The client-side rate limiter held a call before it went (waits over
    /// [`THROTTLE_WAIT_SHOWN`] only).
    ThrottleWait {
        /// Which call.
        call: ThrottledCall,
        /// How long it was held.
        waited: SignedDuration,
    },
    /// A cycle ended.
    Outcome {
        /// How it ended.
        outcome: Outcome,
        /// Triggers this cycle answered (the one that started it and those coalesced into it).
        triggers: u32,
    },
}

/// Limiter waits shorter than this are not events (a call spaced by a few ms is not news).
pub const THROTTLE_WAIT_SHOWN: SignedDuration = SignedDuration::from_millis(5);

/// A call the rate limiter held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottledCall {
    /// A read of the schedule.
    Read,
    /// A publish.
    Publish,
}

impl ThrottledCall {
    /// The call in words.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottledCall::Read => "read",
            ThrottledCall::Publish => "publish",
        }
    }
}

/// Why a cycle began.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum CycleCause {
    /// A trigger arrived while no cycle was in flight.
    Trigger {
        /// Its sequence number.
        trigger: u64,
    },
    /// Triggers were coalesced during the previous cycle.
    Coalesced {
        /// How many.
        triggers: u32,
    },
    /// A deferral ran out.
    Deferral {
        /// The cycle that deferred.
        deferred_cycle: u64,
    },
    /// A decision made from the channel's kept state is confirmed by a read: the channel
    /// may have lost the event of a change it should have seen.
    Confirm {
        /// The first cycle decided without a read since the schedule was last read.
        unconfirmed_cycle: u64,
    },
}

/// Why the schedule was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadPurpose {
    /// To run the trigger phase.
    Evaluate,
    /// To follow our update operation until the schedule shows published.
    Follow,
    /// To confirm decisions made from the channel's kept state (the trigger phase runs on it).
    Confirm,
}

/// Why the runner waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// A `backoff` decision.
    Backoff,
    /// Following an update operation that is still processing.
    Follow,
    /// A `defer` decision.
    Defer,
    /// Until decisions made without a read are confirmed by one ([`crate::runner::confirm`]).
    Confirm,
}

/// How a cycle ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The schedule shows published.
    Published {
        /// At this version.
        version: i64,
    },
    /// The policy skipped.
    Skipped {
        /// The rule's reason.
        reason: String,
    },
    /// The policy deferred; a new cycle starts then.
    Deferred {
        /// When.
        until: Timestamp,
    },
    /// Our publish landed (a follow read showed a version above the one we wrote at), and
    /// the schedule changed again since: it is a draft at `version`. Triggers coalesced
    /// meanwhile start their cycle at once.
    LandedThenChanged {
        /// The version the follow read showed.
        version: i64,
    },
    /// The policy said `done` without a publish to confirm.
    Done,
    /// A confirm read showed nothing that the decisions made without a read had missed: they
    /// stand (a change made after them is a later trigger's affair).
    Confirmed {
        /// The version read.
        version: i64,
    },
    /// A dry run stopped before acting.
    DryRun {
        /// The action the policy chose.
        action: ActionKind,
    },
    /// The cycle failed: a `fail` rule, exhausted attempts, rechecks or retry budget.
    Failed {
        /// Why.
        reason: String,
    },
    /// The login was refused or the API rejected our token: the cycle fails at once,
    /// whatever the policy (no rule can fix credentials).
    Unauthorized {
        /// Why, naming the client id (never the secret).
        reason: String,
    },
}

impl Outcome {
    /// Whether this is a failure (the `run` command exits 1).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. } | Outcome::Unauthorized { .. })
    }
}

impl fmt::Display for Event {
    /// One line for a person watching: time, schedule, cycle, then the step.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.at, self.schedule.schedule_id)?;
        match self.cycle {
            Some(c) => write!(f, " #{c:<3} {}", self.kind),
            None => write!(f, "      {}", self.kind),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::TriggerReceived {
                trigger,
                delivery_id,
                source,
                event,
                duplicate,
            } => {
                write!(f, "trigger {trigger} from {source}")?;
                if let Some(e) = event {
                    write!(f, " ({e})")?;
                }
                if let Some(d) = delivery_id {
                    write!(f, " delivery {d}")?;
                }
                if *duplicate {
                    f.write_str(", a duplicate")?;
                }
                Ok(())
            }
            EventKind::TriggerCoalesced {
                trigger,
                into_cycle,
            } => write!(f, "trigger {trigger} coalesced into cycle {into_cycle}"),
            EventKind::CycleStarted { cause } => match cause {
                CycleCause::Trigger { trigger } => write!(f, "cycle started by trigger {trigger}"),
                CycleCause::Coalesced { triggers } => {
                    write!(f, "cycle started for {triggers} coalesced trigger(s)")
                }
                CycleCause::Deferral { deferred_cycle } => {
                    write!(
                        f,
                        "cycle started: cycle {deferred_cycle}'s deferral ran out"
                    )
                }
                CycleCause::Confirm { unconfirmed_cycle } => write!(
                    f,
                    "cycle started: a read confirms what cycle {unconfirmed_cycle} and any since decided without one"
                ),
            },
            EventKind::StateRead {
                purpose,
                status,
                error,
                state,
                version,
                ..
            } => {
                let why = match purpose {
                    ReadPurpose::Evaluate => "read",
                    ReadPurpose::Follow => "follow read",
                    ReadPurpose::Confirm => "confirm read",
                };
                write!(f, "{why}: {state}")?;
                if let Some(v) = version {
                    write!(f, " at version {v}")?;
                }
                write_answer(f, *status, error.as_deref())
            }
            EventKind::StateKnown {
                learnt,
                learnt_at,
                state,
                version,
                ..
            } => {
                let how = match learnt {
                    Learnt::Read => "read",
                    Learnt::Event => "heard",
                    Learnt::Follow => {
                        return write!(
                            f,
                            "known from the follow read that ended the cycle before: {state} at version {version}"
                        );
                    }
                };
                write!(
                    f,
                    "known from the channel, no read: {state} at version {version} ({how} at {learnt_at}, no gap since)"
                )
            }
            EventKind::Heard {
                status,
                operation_id,
                published,
                version,
            } => {
                let state = if *published {
                    "published"
                } else {
                    "not published"
                };
                write!(
                    f,
                    "heard: operation {operation_id} {status:?}, {state} at version {version}"
                )
            }
            EventKind::Decision {
                phase,
                rule,
                action,
                detail,
            } => {
                write!(f, "{phase} phase: rule {rule} -> {action}")?;
                match detail {
                    Some(d) => write!(f, ": {d}"),
                    None => Ok(()),
                }
            }
            EventKind::PublishCall {
                version,
                status,
                error,
                retry_after,
                operation,
                ..
            } => {
                write!(f, "publish at version {version}")?;
                write_answer(f, *status, error.as_deref())?;
                if let Some(op) = operation {
                    write!(f, ", operation {op:?}")?;
                }
                match retry_after {
                    Some(after) => write!(f, ", Retry-After {after:#}"),
                    None => Ok(()),
                }
            }
            EventKind::Wait {
                reason,
                until,
                delay,
                profile,
                count,
            } => {
                let why = match reason {
                    WaitReason::Backoff => "backoff",
                    WaitReason::Follow => "follow",
                    WaitReason::Defer => "defer",
                    WaitReason::Confirm => "confirm",
                };
                write!(f, "wait {:#} until {until} ({why}", delay.duration)?;
                if let Some(p) = profile {
                    write!(f, " `{p}` #{count}")?;
                }
                if let Some(after) = delay.retry_after {
                    write!(f, ", Retry-After {after:#}")?;
                }
                if delay.capped {
                    f.write_str(", capped")?;
                }
                f.write_str(")")
            }
            EventKind::ThrottleWait { call, waited } => {
                let call = call.as_str();
                write!(f, "throttle wait {waited:#} before the {call} (rate limit)")
            }
            EventKind::Outcome { outcome, triggers } => {
                write!(f, "outcome: ")?;
                match outcome {
                    Outcome::Published { version } => write!(f, "published at version {version}"),
                    Outcome::Skipped { reason } => write!(f, "skipped, {reason}"),
                    Outcome::Deferred { until } => write!(f, "deferred until {until}"),
                    Outcome::LandedThenChanged { version } => write!(
                        f,
                        "our publish landed, then the schedule changed (draft at version {version})"
                    ),
                    Outcome::Done => f.write_str("done"),
                    Outcome::Confirmed { version } => write!(
                        f,
                        "confirmed, nothing missed (version {version}): the decisions made without a read stand"
                    ),
                    Outcome::DryRun { action } => write!(f, "dry run, would {action}"),
                    Outcome::Failed { reason } => write!(f, "FAILED, {reason}"),
                    Outcome::Unauthorized { reason } => {
                        write!(f, "FAILED, not authorized: {reason}")
                    }
                }?;
                write!(f, " ({triggers} trigger(s))")
            }
        }
    }
}

/// ` (HTTP 200)`, ` (HTTP 409: ...)` or ` (no answer: ...)`.
fn write_answer(
    f: &mut fmt::Formatter<'_>,
    status: Option<u16>,
    error: Option<&str>,
) -> fmt::Result {
    match (status, error) {
        (Some(s), None) => write!(f, " (HTTP {s})"),
        (Some(s), Some(e)) if e == format!("HTTP {s}") => write!(f, " (HTTP {s})"),
        (Some(s), Some(e)) => write!(f, " (HTTP {s}: {e})"),
        (None, Some(e)) => write!(f, " (no answer: {e})"),
        (None, None) => f.write_str(" (no answer)"),
    }
}

/// A sink that prints each event on its own line as it happens (the `run` command).
#[derive(Debug, Default)]
pub struct PrintSink;

impl EventSink for PrintSink {
    fn record(&self, event: Event) {
        println!("{event}");
    }
}

/// Where events go. Implementations must not block for long: the runner waits on them.
pub trait EventSink {
    /// Record one event.
    fn record(&self, event: Event);
}

/// The events that the inputs the live driver took at once produced, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T> {
    /// The triggers among those inputs: each one's sequence number (which its events name)
    /// and the tag it was fed with.
    pub fed: Vec<(u64, T)>,
    /// The events, in order.
    pub events: Vec<Event>,
}

/// Where the live driver records events: asynchronously, and possibly failing. The driver
/// awaits each batch before it makes the calls and waits that follow the batch's steps, and
/// stops on an error, so a recorder that answers once its entries are durable guarantees
/// that no step is acted on before it is recorded.
pub trait EventRecorder<T> {
    /// Why a batch was not recorded.
    type Error;

    /// Record `batch`; resolves once it is recorded.
    fn record_batch(&self, batch: Batch<T>) -> impl Future<Output = Result<(), Self::Error>>;
}

/// Every sink is a recorder that never fails: it takes each event as it comes.
impl<S: EventSink + ?Sized, T> EventRecorder<T> for S {
    type Error = Infallible;

    async fn record_batch(&self, batch: Batch<T>) -> Result<(), Infallible> {
        for event in batch.events {
            self.record(event);
        }
        Ok(())
    }
}

/// A sink that keeps every event in memory, for tests and summaries.
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Vec<Event>>);

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// The events recorded so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The events recorded so far, in order, leaving the sink empty.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl EventSink for MemorySink {
    fn record(&self, event: Event) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}
