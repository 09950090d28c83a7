//! Whether the relay can make anything durable now. The audit writer knows when its last
//! batch failed; the store's writes are watched at the `TriggerStore` seam; the worker, when
//! a write failed under it, is down until its next start. `/readyz` reports the first reason,
//! intake refuses webhooks with `503` while the audit log cannot be written, and each failure
//! is logged and counted the moment it is seen.

use super::metrics::{Metrics, WRITE_FAILURES};
use super::store::{
    Acceptance, NewTrigger, Progress, StoreError, StoreFuture, StoreStats, StoredTrigger,
    TriggerStore,
};
use crate::audit::writer::AuditWriter;
use crate::effects::random::SeededRandom;
use crate::language::ast::Jitter;
use crate::policy::backoff::BackoffProfile;
use jiff::{SignedDuration, Timestamp};
use std::sync::{Arc, Mutex, PoisonError};

/// What the relay's writes depend on, and why one of them fails now.
#[derive(Debug)]
pub struct Durability {
    /// The file audit log (`None` for replicas: their log is the leader's, in the database,
    /// and a failing append stops the leader's worker, which `worker` reports).
    audit: Option<Arc<AuditWriter>>,
    metrics: Arc<Metrics>,
    /// Why the store's last write failed; `None` once one commits.
    store: Mutex<Option<String>>,
    /// Why the worker stopped, while it waits to start again.
    worker: Mutex<Option<String>>,
}

fn read(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

fn write(slot: &Mutex<Option<String>>, value: Option<String>) -> Option<String> {
    std::mem::replace(
        &mut *slot.lock().unwrap_or_else(PoisonError::into_inner),
        value,
    )
}

impl Durability {
    /// Watch `audit` and count failures in `metrics`.
    pub fn new(audit: Option<Arc<AuditWriter>>, metrics: Arc<Metrics>) -> Self {
        Self {
            audit,
            metrics,
            store: Mutex::new(None),
            worker: Mutex::new(None),
        }
    }

    /// Why the audit log cannot be written now, if it cannot.
    pub fn audit_failing(&self) -> Option<String> {
        self.audit
            .as_ref()?
            .failing()
            .map(|e| format!("the audit log cannot be written: {e}"))
    }

    /// Why the relay is not ready, if it is not: the audit log, the store, the worker.
    pub fn not_ready(&self) -> Option<String> {
        self.audit_failing()
            .or_else(|| read(&self.store).map(|e| format!("the store cannot be written: {e}")))
            .or_else(|| read(&self.worker))
    }

    /// Whether the store's last write failed.
    pub fn store_failing(&self) -> bool {
        read(&self.store).is_some()
    }

    /// Count and log an audit write the worker could not make.
    pub fn audit_failed(&self, error: &dyn std::fmt::Display) {
        self.metrics.inc(WRITE_FAILURES, &[("target", "audit")]);
        tracing::error!(error = %error, "the audit log cannot be written; processing waits");
    }

    /// The worker stopped on `error` and starts again at `at`.
    pub fn worker_down(&self, error: &dyn std::fmt::Display, at: Timestamp) {
        let why = format!("processing stopped ({error}); it starts again at {at}");
        tracing::warn!("{why}");
        write(&self.worker, Some(why));
    }

    /// The worker starts again.
    pub fn worker_up(&self) {
        if write(&self.worker, None).is_some() {
            tracing::info!("processing starts again");
        }
    }

    /// Note a store write's outcome: a failure is counted and logged, the first success after
    /// one is logged.
    fn store_wrote<T>(&self, outcome: &Result<T, StoreError>) {
        match outcome {
            // Only a database failure says the disk (or the server) refuses writes; the other
            // errors are answers about one trigger.
            Err(StoreError::Database(why)) => {
                self.metrics.inc(WRITE_FAILURES, &[("target", "store")]);
                tracing::error!(error = %why, "the store cannot be written");
                write(&self.store, Some(why.clone()));
            }
            Err(_) => {}
            Ok(_) => {
                if write(&self.store, None).is_some() {
                    tracing::info!("store writes succeed again");
                }
            }
        }
    }
}

/// The waits between the worker's starts after write failures: 1 s doubling to 1 min.
pub fn restart_backoff() -> impl FnMut(u32) -> SignedDuration {
    let profile = BackoffProfile {
        name: "durability".into(),
        initial: SignedDuration::from_secs(1),
        factor: 2.0,
        max: SignedDuration::from_mins(1),
        jitter: Jitter::None,
        attempts: u32::MAX,
    };
    // No jitter: nothing is drawn.
    let mut random = SeededRandom::new(0);
    move |retry| profile.delay(retry, None, None, &mut random).duration
}

/// The store as the relay uses it: every write's outcome is noted in [`Durability`].
pub struct WatchedStore {
    /// The store itself.
    pub inner: Arc<dyn TriggerStore>,
    /// Where outcomes are noted.
    pub durability: Arc<Durability>,
}

impl WatchedStore {
    fn watch<'a, T: Send + 'a>(&'a self, write: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        Box::pin(async move {
            let outcome = write.await;
            self.durability.store_wrote(&outcome);
            outcome
        })
    }
}

impl TriggerStore for WatchedStore {
    fn accept(&self, trigger: NewTrigger) -> StoreFuture<'_, Acceptance> {
        self.watch(self.inner.accept(trigger))
    }

    fn record(&self, receipt: &str, progress: Progress) -> StoreFuture<'_, ()> {
        self.watch(self.inner.record(receipt, progress))
    }

    fn get(&self, receipt: &str) -> StoreFuture<'_, Option<StoredTrigger>> {
        self.inner.get(receipt)
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<StoredTrigger>> {
        self.inner.unfinished()
    }

    fn unfinished_after(&self, after: &str) -> StoreFuture<'_, Vec<StoredTrigger>> {
        self.inner.unfinished_after(after)
    }

    fn forget_deliveries_before(&self, cutoff: Timestamp) -> StoreFuture<'_, u64> {
        self.watch(self.inner.forget_deliveries_before(cutoff))
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        self.inner.stats()
    }
}
