//! The durable store of accepted webhooks, as the relay and the runner see it: accept a
//! delivery exactly once, record each trigger's progress, and hand back everything unfinished
//! after a restart. SQLite is the embedded implementation for one machine; PostgreSQL serves
//! several replicas (`postgres_store`).

use super::mapping::ScheduleTarget;
use crate::runner::EarlierWrite;
use jiff::Timestamp;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the store can be used as `dyn TriggerStore`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store failed; the operation did not take effect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("store: {0}")]
    Database(String),
    /// The store's writer has stopped (shutting down or crashed).
    #[error("store: the writer has stopped")]
    Closed,
    /// No trigger has this receipt.
    #[error("store: no trigger with receipt {0:?}")]
    UnknownReceipt(String),
    /// The trigger is done or failed; finished work is never reopened.
    #[error("store: trigger {0:?} is already finished")]
    Finished(String),
    /// A stored value could not be read back.
    #[error("store: corrupt row: {0}")]
    Corrupt(String),
    /// Another process has the store open (why, and who).
    #[error("store: {0}")]
    InUse(String),
    /// This replica does not lead (any more): a leader's write was refused.
    #[error("store: this replica is not the leader (term {0} is over)")]
    Deposed(i64),
}

/// A webhook that passed authentication and validation, about to be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTrigger {
    /// The webhook source's configured name.
    pub source: String,
    /// The sender's delivery id (unique per source).
    pub delivery_id: String,
    /// Hex SHA-256 of the raw body: a repeat must carry the same body.
    pub body_hash: String,
    /// Which schedule the trigger is about, in the form the runner resolves.
    pub target: ScheduleTarget,
    /// The sender's event name.
    pub event: String,
    /// When the relay received it.
    pub received_at: Timestamp,
}

/// The answer given for an accepted delivery, and again for each repeat of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The receipt id.
    pub id: String,
    /// When the delivery was first received (to the microsecond).
    pub received_at: Timestamp,
}

/// What `accept` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// A new trigger was stored durably.
    Accepted(Receipt),
    /// The same delivery with the same body was accepted before: its receipt, nothing stored.
    Repeat(Receipt),
    /// The delivery id was accepted before with a different body: nothing stored.
    Conflict,
}

/// Where a trigger stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerStatus {
    /// Waiting to be (re)evaluated, possibly not before `due_at`.
    Pending,
    /// A cycle is working on it.
    Running,
    /// Finished: nothing more will be done.
    Done,
    /// Given up on, recorded as a failure.
    Failed,
}

impl TriggerStatus {
    /// The status's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Parse a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether nothing more will happen to the trigger.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

/// What the worker notes on a trigger it has not finished, or why it failed. Stored as JSON
/// tagged by `kind`, so a restarted worker reads back exactly what its predecessor meant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerNote {
    /// Waiting out a deferral: fed again when due, it is not a new delivery.
    Deferred,
    /// Its cycle decided (or had accepted) a publish: after a restart the runner follows that
    /// write rather than publish again.
    Publishing {
        /// The write.
        write: EarlierWrite,
    },
    /// Decided from the channel's kept state, not confirmed by a read yet: after a restart
    /// it is fed again at once (the new cache is empty, so it reads); the runner's confirm
    /// read, or any read of the schedule, settles it with that cycle.
    Unconfirmed,
    /// Given up on.
    Failed {
        /// Why.
        reason: String,
    },
}

impl TriggerNote {
    /// A note as stored: JSON tagged by `kind`.
    pub fn encode(note: Option<&Self>) -> Result<Option<String>, StoreError> {
        note.map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// A stored note read back.
    pub fn decode(text: Option<String>) -> Result<Option<Self>, StoreError> {
        text.map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("note: {e}")))
    }

    /// The publish this note says is under way, if any.
    pub fn publishing(&self) -> Option<&EarlierWrite> {
        match self {
            Self::Publishing { write } => Some(write),
            Self::Deferred | Self::Unconfirmed | Self::Failed { .. } => None,
        }
    }

    /// Whether a trigger so noted was taken up before and is fed again, not as a delivery.
    pub fn fed_again(&self) -> bool {
        matches!(self, Self::Deferred | Self::Unconfirmed)
    }
}

/// A stored trigger and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTrigger {
    /// Its receipt.
    pub receipt: Receipt,
    /// The webhook source.
    pub source: String,
    /// The sender's delivery id.
    pub delivery_id: String,
    /// Hex SHA-256 of the body.
    pub body_hash: String,
    /// The schedule the trigger is about.
    pub target: ScheduleTarget,
    /// The sender's event name.
    pub event: String,
    /// Where it stands.
    pub status: TriggerStatus,
    /// What the worker noted about how far it got.
    pub note: Option<TriggerNote>,
    /// A pending backoff: not to be retried before this instant.
    pub due_at: Option<Timestamp>,
}

/// A change of a trigger's state, recorded by the runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The new status.
    pub status: TriggerStatus,
    /// What the worker notes about how far it got.
    pub note: Option<TriggerNote>,
    /// When a pending trigger is next due (a backoff or a deferral).
    pub due_at: Option<Timestamp>,
}

/// Counts for health and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Triggers pending.
    pub pending: u64,
    /// Triggers running.
    pub running: u64,
    /// When the oldest unfinished trigger was received.
    pub oldest_unfinished: Option<Timestamp>,
}

/// An instant stored as microseconds since the epoch, read back.
pub fn instant_of_micros(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(micros).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A new receipt id: random, so replicas sharing a store never mint the same one.
pub fn new_receipt_id() -> String {
    format!("rcpt_{:032x}", rand::random::<u128>())
}

/// The durable store of triggers. Every method's effect is durable when its future resolves.
pub trait TriggerStore: Send + Sync {
    /// Store a new delivery, or recognise a repeat or a conflicting reuse of its id.
    fn accept(&self, trigger: NewTrigger) -> StoreFuture<'_, Acceptance>;

    /// Record a trigger's progress. Finished triggers refuse further changes.
    fn record(&self, receipt: &str, progress: Progress) -> StoreFuture<'_, ()>;

    /// One trigger by receipt.
    fn get(&self, receipt: &str) -> StoreFuture<'_, Option<StoredTrigger>>;

    /// Every trigger not yet finished (pending or running), oldest first: after a restart the
    /// runner carries each on from where it stood.
    fn unfinished(&self) -> StoreFuture<'_, Vec<StoredTrigger>>;

    /// The unfinished triggers accepted after the one with receipt `after`, oldest first: a
    /// worker that has taken every trigger up to `after` takes the new ones without reading
    /// the whole backlog again.
    fn unfinished_after(&self, after: &str) -> StoreFuture<'_, Vec<StoredTrigger>>;

    /// Forget delivery ids first seen before `cutoff` (the retention window); a later repeat
    /// of one is then a new delivery. Returns how many were forgotten.
    fn forget_deliveries_before(&self, cutoff: Timestamp) -> StoreFuture<'_, u64>;

    /// Counts for health and metrics.
    fn stats(&self) -> StoreFuture<'_, StoreStats>;
}
