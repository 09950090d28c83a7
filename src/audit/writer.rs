//! A shared, asynchronous front for the audit log: callers on any task submit steps; one
//! thread appends whatever has queued up as one batch with one sync (group commit), then
//! answers each caller. A storm of events costs one fsync per batch, not one per event, and
//! no caller hears "recorded" before its entry is on disk. A failed batch leaves the log as
//! it was and the writer running, so the same steps can be submitted again; until a batch
//! succeeds, [`AuditWriter::failing`] says why the log cannot be written. Relay replicas
//! write to the database log the same way, one transaction per batch.

use super::log::{Appended, AuditError, AuditLog, Record};
use crate::group_commit::GroupCommit;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// The most entries appended with one sync.
const MAX_BATCH: usize = 1024;
/// How many steps may wait for the writer before callers wait to enqueue.
const QUEUE: usize = 16 * 1024;

/// Why a step was not recorded.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RecordError {
    /// The log failed; the whole batch holding the step was not written.
    #[error(transparent)]
    Log(Arc<AuditError>),
    /// The writer has stopped.
    #[error("the audit writer has stopped")]
    Closed,
}

struct Pending {
    step: String,
    at: Timestamp,
    event: Value,
    reply: oneshot::Sender<Result<Appended, RecordError>>,
}

/// Where the batches go.
#[derive(Debug)]
enum Queue {
    /// The file log's writer thread.
    File(GroupCommit<Pending>),
    /// The database log's writer task.
    #[cfg(feature = "postgres")]
    Database(tokio::sync::mpsc::Sender<Pending>),
}

/// The handle callers share. Dropping it lets the writer finish what is queued, then stops it.
#[derive(Debug)]
pub struct AuditWriter {
    queue: Queue,
    syncs: Arc<AtomicU64>,
    last_seq: Arc<AtomicU64>,
    failing: Failing,
}

/// Why the last batch failed; `None` once one succeeds.
type Failing = Arc<Mutex<Option<Arc<AuditError>>>>;

impl AuditWriter {
    /// Take over an open log and start its writer thread.
    pub fn start(mut log: AuditLog) -> std::io::Result<Self> {
        let syncs = Arc::new(AtomicU64::new(0));
        let last_seq = Arc::new(AtomicU64::new(log.head().0));
        let failing = Failing::default();
        let (counter, head, fault) = (
            Arc::clone(&syncs),
            Arc::clone(&last_seq),
            Arc::clone(&failing),
        );
        let worker = GroupCommit::start("audit-writer", QUEUE, MAX_BATCH, move |batch| {
            write_batch(&mut log, batch, &counter, &head, &fault);
        })?;
        Ok(Self {
            queue: Queue::File(worker),
            syncs,
            last_seq,
            failing,
        })
    }

    /// Take over a database log and start its writer task on the current runtime: each batch
    /// is one transaction.
    #[cfg(feature = "postgres")]
    pub fn start_database(mut log: super::pg_log::PgAuditLog) -> Self {
        let syncs = Arc::new(AtomicU64::new(0));
        let last_seq = Arc::new(AtomicU64::new(log.last_seq()));
        let failing = Failing::default();
        let (counter, head, fault) = (
            Arc::clone(&syncs),
            Arc::clone(&last_seq),
            Arc::clone(&failing),
        );
        let (queue, mut receiver) = tokio::sync::mpsc::channel::<Pending>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let taken = std::mem::take(&mut batch);
                let records: Vec<Record<'_, Value>> = taken.iter().map(Pending::record).collect();
                let appended = log.append_batch(&records).await;
                drop(records);
                head.store(log.last_seq(), Ordering::Release);
                answer(taken, appended, &counter, &fault);
            }
        });
        Self {
            queue: Queue::Database(queue),
            syncs,
            last_seq,
            failing,
        }
    }

    /// Why the last batch could not be written, until a later one is.
    pub fn failing(&self) -> Option<Arc<AuditError>> {
        self.failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The sequence number of the last entry on disk (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// How many batches have been written (each with one sync).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Record one step; resolves once its entry is on disk (or the step was recorded before).
    pub async fn record<E: Serialize>(
        &self,
        step: &str,
        at: Timestamp,
        event: &E,
    ) -> Result<Appended, RecordError> {
        let event = serde_json::to_value(event)
            .map_err(|e| RecordError::Log(Arc::new(AuditError::Serialize(e))))?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            step: step.to_owned(),
            at,
            event,
            reply,
        };
        match &self.queue {
            Queue::File(worker) => worker
                .submit(pending)
                .await
                .map_err(|_| RecordError::Closed)?,
            #[cfg(feature = "postgres")]
            Queue::Database(queue) => queue.send(pending).await.map_err(|_| RecordError::Closed)?,
        }
        answer.await.map_err(|_| RecordError::Closed)?
    }
}

/// Append one batch with one sync, note whether it failed, and answer each caller.
fn write_batch(
    log: &mut AuditLog,
    batch: Vec<Pending>,
    syncs: &AtomicU64,
    head: &AtomicU64,
    failing: &Mutex<Option<Arc<AuditError>>>,
) {
    let records: Vec<Record<'_, Value>> = batch.iter().map(Pending::record).collect();
    let appended = log.append_batch(&records);
    drop(records);
    // Before any caller hears back, so none reads an older head; also after a failure that
    // came once the entries were written (a checkpoint), so a restart numbers its steps anew.
    head.store(log.head().0, Ordering::Release);
    answer(batch, appended, syncs, failing);
}

impl Pending {
    fn record(&self) -> Record<'_, Value> {
        Record {
            step: &self.step,
            at: self.at,
            event: &self.event,
        }
    }
}

/// Note whether a batch failed, and tell each of its callers what became of its step.
fn answer(
    batch: Vec<Pending>,
    appended: Result<Vec<Appended>, AuditError>,
    syncs: &AtomicU64,
    failing: &Mutex<Option<Arc<AuditError>>>,
) {
    let appended = appended.map_err(Arc::new);
    *failing.lock().unwrap_or_else(PoisonError::into_inner) = appended.as_ref().err().cloned();
    match appended {
        Ok(outcomes) => {
            if outcomes
                .iter()
                .any(|o| matches!(o, Appended::Written { .. }))
            {
                syncs.fetch_add(1, Ordering::Relaxed);
            }
            for (pending, outcome) in batch.into_iter().zip(outcomes) {
                let _ = pending.reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            for pending in batch {
                let _ = pending
                    .reply
                    .send(Err(RecordError::Log(Arc::clone(&error))));
            }
        }
    }
}
