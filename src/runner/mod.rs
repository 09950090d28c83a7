//! The runner: drives policy decisions against the schedule API.
//!
//! The core is sans-IO. A state machine per schedule (`machine.rs`) takes inputs (a trigger
//! arrived, a read or a write answered, a timer fired) and returns [`Command`]s (read, publish,
//! wait until, emit this event). The [`Runner`] holds one machine per schedule plus what they
//! share (the delivery-id log and the retry budget). The live [`driver`] carries the commands
//! out with tokio, a [`crate::api::ScheduleApi`] client and a
//! [`crate::effects::clock::Clock`]; the simulator carries out the same commands on a virtual
//! clock.

pub mod budget;
pub mod confirm;
pub(crate) mod dedup;
pub mod driver;
pub mod event;
pub(crate) mod facts;
pub mod kept;
pub(crate) mod machine;
pub(crate) mod write;

pub use facts::ScheduleState;

use crate::api::notify::Heard;
use crate::api::notify::cache::{Cached, StateCache};
use crate::api::notify::health::Continuity;
use crate::api::{Answer, ApiError, PublishAccepted, ScheduleRef, ScheduleSnapshot};
use crate::effects::random::RandomSource;
use crate::policy::Policy;
use crate::runner::event::{Event, WaitReason};
use budget::{BudgetConfig, RetryBudget};
use dedup::DeliveryLog;
use jiff::{SignedDuration, Timestamp};
use machine::{ScheduleMachine, Step};
use std::collections::HashMap;
use std::sync::Arc;

/// Something asking for a schedule to be published.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trigger {
    /// The sender's delivery id, used to recognise repeats.
    pub delivery_id: Option<String>,
    /// Where it came from: one of the policy's `sources`.
    pub source: String,
    /// The sender's event name.
    pub event: Option<String>,
    /// When it arrived.
    pub received_at: Timestamp,
}

/// A write of ours that an earlier process decided and no read has shown published yet,
/// as a service keeps it across a restart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EarlierWrite {
    /// Which schedule.
    pub schedule: ScheduleRef,
    /// The version the write asserted.
    pub version: i64,
    /// When it was decided, or accepted.
    pub since: Timestamp,
    /// Whether an answer accepted it (else it may or may not have gone out).
    pub accepted: bool,
}

/// Settings of the runner (from `publish-guard.toml`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunnerConfig {
    /// Rechecks allowed in one cycle before it is a recorded failure.
    pub max_rechecks: u32,
    /// How long a delivery id is remembered for `trigger.duplicate`.
    pub delivery_retention: SignedDuration,
    /// How long to follow an accepted publish until the schedule shows published; a real
    /// publish can stay Processing for minutes, so this bounds following, not backoff attempts.
    pub follow_timeout: SignedDuration,
    /// The retry budget shared by all schedules.
    pub budget: BudgetConfig,
    /// Read and decide, but never write or wait.
    pub dry_run: bool,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            max_rechecks: 3,
            delivery_retention: SignedDuration::from_hours(24),
            follow_timeout: SignedDuration::from_mins(15),
            budget: BudgetConfig::default(),
            dry_run: false,
        }
    }
}

/// Identifies a wait, so a timer that fires after its wait was abandoned is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(pub u64);

/// Why a call brought no usable answer (a copyable summary of [`ApiError`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFailure {
    /// In words (never a secret).
    pub reason: String,
    /// What kind of failure it is.
    pub kind: FailureKind,
}

/// Whether a failed call is the policy's affair or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No usable answer came (a timeout, a dropped connection, an answer not understood):
    /// the policy decides what to do about `schedule.state == unknown`.
    NoAnswer,
    /// The login was refused or the API rejected our token: not a policy matter, the cycle
    /// fails at once naming the client id.
    Unauthorized,
}

impl CallFailure {
    /// A call that brought no usable answer, for `reason`.
    pub fn no_answer(reason: impl Into<String>) -> Self {
        CallFailure {
            reason: reason.into(),
            kind: FailureKind::NoAnswer,
        }
    }
}

impl From<&ApiError> for CallFailure {
    fn from(e: &ApiError) -> Self {
        let kind = match e {
            ApiError::Auth(_) => FailureKind::Unauthorized,
            _ => FailureKind::NoAnswer,
        };
        CallFailure {
            reason: e.to_string(),
            kind,
        }
    }
}

/// What a read or a write brought back.
pub type CallResult<T> = Result<Answer<T>, CallFailure>;

/// Something that happened to a schedule's machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The schedule was read.
    StateRead(CallResult<ScheduleSnapshot>),
    /// The write answered.
    PublishAnswered(CallResult<PublishAccepted>),
    /// A wait ran out.
    TimerFired(TimerId),
}

/// Something the runner asks its driver to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Read the schedule, then feed back [`Input::StateRead`].
    Read(ScheduleRef),
    /// Publish the schedule, then feed back [`Input::PublishAnswered`].
    Publish {
        /// Which.
        schedule: ScheduleRef,
        /// The version the write asserts (optimistic concurrency).
        version: i64,
        /// Sent with every write of this publish; the same schedule and version give the
        /// same key, so a write repeated after a lost answer is recognised by the server.
        idempotency_key: String,
    },
    /// At `until`, feed back [`Input::TimerFired`] with `timer`.
    WaitUntil {
        /// Whose wait.
        schedule: ScheduleRef,
        /// The wait's id.
        timer: TimerId,
        /// When.
        until: Timestamp,
        /// Why (a driver running one cycle does not wait out deferrals).
        reason: WaitReason,
    },
    /// Record this event.
    Emit(Event),
}

/// One machine per schedule, and what they share.
#[derive(Debug)]
pub struct Runner {
    config: RunnerConfig,
    machines: HashMap<ScheduleRef, ScheduleMachine>,
    deliveries: DeliveryLog,
    budget: RetryBudget,
    next_trigger: u64,
    /// The version events name: one shared copy while the policy stays the same.
    policy_version: Arc<str>,
    /// What the notification channel lets the runner know without a read, when it listens.
    cache: Option<StateCache>,
    /// The continuity each schedule's read in flight was sent in.
    reads_sent: HashMap<ScheduleRef, Continuity>,
}

impl Runner {
    /// A runner with no schedules yet.
    pub fn new(config: RunnerConfig) -> Self {
        Runner {
            deliveries: DeliveryLog::new(config.delivery_retention),
            budget: RetryBudget::new(config.budget),
            machines: HashMap::new(),
            next_trigger: 0,
            policy_version: Arc::from(""),
            config,
            cache: None,
            reads_sent: HashMap::new(),
        }
    }

    /// Listens to the notification channel ([`Runner::heard`]): a trigger may be decided
    /// from a state learnt at most `max_age` ago with the channel up since, and a follow
    /// waits for our operation's event. Without it (notifications off) every trigger reads.
    pub fn with_notifications(self, max_age: SignedDuration) -> Self {
        self.with_cache(StateCache::new(max_age))
    }

    /// As [`Runner::with_notifications`], with this (empty) cache, e.g. one scoped to the
    /// business units subscribed.
    pub fn with_cache(mut self, cache: StateCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The channel is up (a runner made while it already is): nothing else is due.
    pub fn hear_up(&mut self, continuity: Continuity) {
        if let Some(cache) = &mut self.cache {
            cache.heard(&Heard::Up(continuity), Timestamp::UNIX_EPOCH);
        }
    }

    /// What the notification channel said, in the order it said it.
    pub fn heard(
        &mut self,
        now: Timestamp,
        policy: &Policy,
        random: &mut dyn RandomSource,
        heard: Heard,
        out: &mut Vec<Command>,
    ) {
        let Some(cache) = &mut self.cache else { return };
        cache.heard(&heard, now);
        let policy_version = self.policy_version(policy);
        // A cycle that starts from this event (the next after our follow) may use it.
        let confirm_within = self.confirm_within();
        let (known, hearing) = match &heard {
            Heard::Schedule(event) => self.known(&event.schedule, now),
            Heard::Up(_) | Heard::Gap { .. } => (None, self.known_hearing()),
        };
        let from = out.len();
        let mut step = Step {
            now,
            policy,
            random,
            budget: &mut self.budget,
            config: &self.config,
            out,
            policy_version,
            known,
            hearing,
            confirm_within,
        };
        match &heard {
            Heard::Schedule(event) => {
                if let Some(machine) = self.machines.get_mut(&event.schedule) {
                    machine.heard(&mut step, event);
                }
            }
            Heard::Gap { .. } => {
                for machine in self.machines.values_mut() {
                    machine.gap(&mut step);
                }
            }
            Heard::Up(_) => {}
        }
        self.note_reads(&out[from..]);
    }

    /// The cached state of `schedule` the machine may decide from, and whether it listens.
    fn known(&self, schedule: &ScheduleRef, now: Timestamp) -> (Option<Cached>, bool) {
        let known = self
            .cache
            .as_ref()
            .and_then(|c| c.lookup(schedule, now).ok());
        (known.cloned(), self.known_hearing())
    }

    /// How long a decision made from the channel's kept state may stand without a read: as
    /// long as the cache trusts a state.
    fn confirm_within(&self) -> SignedDuration {
        self.cache.as_ref().map_or(
            crate::api::notify::cache::DEFAULT_MAX_AGE,
            StateCache::max_age,
        )
    }

    /// Whether the channel is up now.
    fn known_hearing(&self) -> bool {
        self.cache.as_ref().is_some_and(|c| c.continuity().up)
    }

    /// Remembers the continuity the reads just asked for go out in.
    fn note_reads(&mut self, commands: &[Command]) {
        let Some(cache) = &self.cache else { return };
        for command in commands {
            if let Command::Read(schedule) = command {
                self.reads_sent.insert(schedule.clone(), cache.continuity());
            }
        }
    }

    /// A trigger arrived for `schedule`; returns its sequence number (events name it).
    pub fn trigger(
        &mut self,
        now: Timestamp,
        policy: &Policy,
        random: &mut dyn RandomSource,
        schedule: ScheduleRef,
        trigger: Trigger,
        out: &mut Vec<Command>,
    ) -> u64 {
        self.next_trigger += 1;
        let seq = self.next_trigger;
        let duplicate = trigger
            .delivery_id
            .as_deref()
            .is_some_and(|id| self.deliveries.seen(id, now));
        let policy_version = self.policy_version(policy);
        let (known, hearing) = self.known(&schedule, now);
        let confirm_within = self.confirm_within();
        let from = out.len();
        let machine = self
            .machines
            .entry(schedule)
            .or_insert_with_key(|s| ScheduleMachine::new(s.clone()));
        let mut step = Step {
            now,
            policy,
            random,
            budget: &mut self.budget,
            config: &self.config,
            out,
            policy_version,
            known,
            hearing,
            confirm_within,
        };
        machine.trigger(&mut step, seq, trigger, duplicate);
        self.note_reads(&out[from..]);
        seq
    }

    /// Feed an answer or a timer to `schedule`'s machine. Inputs for a schedule the runner
    /// has never seen are ignored (no command could have asked for them).
    pub fn input(
        &mut self,
        now: Timestamp,
        policy: &Policy,
        random: &mut dyn RandomSource,
        schedule: &ScheduleRef,
        input: Input,
        out: &mut Vec<Command>,
    ) {
        let policy_version = self.policy_version(policy);
        if let (Some(cache), Input::StateRead(Ok(answer))) = (&mut self.cache, &input)
            && let Some(snapshot) = answer.body.as_ref()
            && let Some(sent_in) = self.reads_sent.remove(schedule)
        {
            cache.read(schedule, snapshot, sent_in, now);
        }
        let (known, hearing) = self.known(schedule, now);
        let confirm_within = self.confirm_within();
        let from = out.len();
        let Some(machine) = self.machines.get_mut(schedule) else {
            return;
        };
        let mut step = Step {
            now,
            policy,
            random,
            budget: &mut self.budget,
            config: &self.config,
            out,
            policy_version,
            known,
            hearing,
            confirm_within,
        };
        machine.input(&mut step, input);
        self.note_reads(&out[from..]);
    }

    /// The shared copy of `policy`'s version, made anew only when the policy changed.
    fn policy_version(&mut self, policy: &Policy) -> Arc<str> {
        if *self.policy_version != *policy.version {
            self.policy_version = Arc::from(policy.version.as_str());
        }
        Arc::clone(&self.policy_version)
    }

    /// Tell `write`'s schedule of a write an earlier process made (see
    /// the machine's `resume_publish`).
    pub fn resume_publish(&mut self, write: EarlierWrite) {
        self.machines
            .entry(write.schedule)
            .or_insert_with_key(|s| ScheduleMachine::new(s.clone()))
            .resume_publish(write.version, write.since, write.accepted);
    }

    /// A delivery id an earlier process took at `first_seen`, as the relay's store keeps
    /// it across a restart: a repeat of it is `trigger.duplicate`.
    pub fn remember_delivery(&mut self, id: &str, first_seen: Timestamp) {
        self.deliveries.seen(id, first_seen);
    }

    /// Whether no cycle is in flight for any schedule (deferrals may still be armed).
    pub fn is_idle(&self) -> bool {
        self.machines.values().all(ScheduleMachine::is_idle)
    }
}

#[cfg(test)]
mod tests;
