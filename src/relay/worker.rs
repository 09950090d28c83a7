//! The worker: one long-lived run of the runner's live driver, fed from the store. A feeder
//! takes newly accepted and newly due triggers (woken by intake, or at the next instant one
//! is due) and feeds them in as they come, so triggers that arrive mid-cycle coalesce into
//! it and one schedule's backoff never holds up another's. The driver records each step in
//! the audit log before it makes the calls the step decided; once a cycle's outcome is on
//! disk, the triggers it answered are marked in the store. A trigger not marked is carried
//! on after a restart; a write its cycle decided is noted on it (before the call goes out,
//! and again once accepted), so the restarted runner follows that write rather than publish
//! again; an answer that does not accept the write (but a 409) takes the note off. A cycle
//! that decided from the channel's kept state leaves its triggers pending, noted
//! unconfirmed, until a cycle that reads the schedule ends: a restarted worker feeds them
//! again at once, and, its cache empty, reads. What is noted is read from the events by
//! `runner::kept`, as the simulator's restarts read it.
//!
//! Step ids: `{receipt}/received` for a trigger's arrival (the one step a restart records
//! again, so the log keeps the first), `run-{n}/{k}` for every other step, where `n` is the
//! audit log's next sequence number when the worker starts: a fresh prefix per start, since
//! a run that recorded anything moved the log past its own `n`.

use super::hearing::Hearing;
use super::mapping::ScheduleTarget;
use super::metrics::Metrics;
use super::readiness::Readiness;
use super::resolve::{Unresolved, WeekCache, resolve};
use super::rules::Rules;
use super::store::{Progress, StoredTrigger, TriggerNote, TriggerStatus, TriggerStore};
use crate::api::notify::cache::Learnt;
use crate::api::{ScheduleApi, ScheduleRef};
use crate::audit::writer::AuditWriter;
use crate::effects::clock::Clock;
use crate::effects::random::SeededRandom;
use crate::policy::Policy;
use crate::runner::driver::Driver;
use crate::runner::event::{Batch, Event, EventKind, EventRecorder, Outcome};
use crate::runner::kept::{After, Change, KeptCycles};
use crate::runner::{RunnerConfig, Trigger};
use jiff::{SignedDuration, Timestamp};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, watch};

/// How long to wait before resolving a schedule again after the API failed to list a week.
const RESOLVE_RETRY: SignedDuration = SignedDuration::from_secs(30);
/// How many triggers may wait for the driver (the feeder waits beyond that).
const FEED_QUEUE: usize = 256;

/// What the worker shares with the server, whatever its audit log (a replica's comes with
/// its term).
#[derive(Clone)]
pub struct WorkerParts {
    /// Where accepted triggers are.
    pub store: Arc<dyn TriggerStore>,
    /// The policy in force.
    pub rules: Arc<Rules>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// What `/readyz` reports beyond the store (credentials the API refused).
    pub readiness: Arc<Readiness>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The runner's bounds.
    pub config: RunnerConfig,
    /// Notified when a trigger is accepted.
    pub wake: Arc<Notify>,
    /// Becomes `true` when the worker is to stop.
    pub stop: watch::Receiver<bool>,
    /// The notification channel's reports, when notifications are on.
    pub hearing: Option<Arc<Hearing>>,
}

/// Why the worker stopped before being asked to.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
    /// The audit log failed: the steps are not done and stay unfinished in the store.
    #[error(transparent)]
    Audit(#[from] crate::audit::writer::RecordError),
}

/// What an arrival's step id ends with.
const ARRIVAL: &str = "/received";

/// The step id of the arrival of the trigger with this receipt.
fn arrival_step(receipt: &str) -> String {
    format!("{receipt}{ARRIVAL}")
}

/// The receipt of the trigger whose arrival `step` records, when it records one.
pub fn arrival_receipt(step: &str) -> Option<&str> {
    step.strip_suffix(ARRIVAL)
}

/// A trigger for the driver, tagged with its receipt.
type Feed = (ScheduleRef, Trigger, String);

/// Run until `parts.stop` turns true, recording every step in `audit`; then stop feeding,
/// let the calls in flight answer and their steps be recorded, and return. Cycles left
/// unfinished are carried on after a restart.
pub async fn run_worker<A: ScheduleApi>(
    api: A,
    parts: WorkerParts,
    audit: Arc<AuditWriter>,
) -> Result<(), WorkerError> {
    let book = RefCell::new(Book::default());
    let weeks = Weeks::default();
    let recorder = AuditRecorder {
        parts: &parts,
        run: audit.last_seq() + 1,
        audit,
        book: &book,
        weeks: &weeks,
        steps: Cell::new(0),
    };
    let (tx, rx) = mpsc::channel(FEED_QUEUE);
    let random = SeededRandom::from_entropy();
    let config = parts.config.clone();
    let driver = Driver::new(&api, &*parts.clock, &recorder, random, config).stop_on_close(true);
    let (mut driver, forwarding) = match parts.hearing.as_deref() {
        Some(hearing) => {
            let (driver, forwarding) = hearing.attach(driver);
            (driver, Some(forwarding))
        }
        None => (driver, None),
    };
    let unfinished = parts.store.unfinished().await?;
    for write in unfinished
        .iter()
        .filter_map(|t| t.note.as_ref()?.publishing())
    {
        driver.resume_publish(write.clone());
    }
    let rules = &parts.rules;
    let run = driver.run(|| rules.current(), rx);
    let driving = async {
        let Some(forwarding) = forwarding else {
            return run.await;
        };
        tokio::pin!(run);
        tokio::select! {
            ran = &mut run => ran,
            () = forwarding => run.await,
        }
    };
    let feeding = feed(&api, &parts, &book, &weeks, unfinished, tx);
    tokio::pin!(driving, feeding);
    tokio::select! {
        // While the feeder runs, the driver ends only on an error.
        driven = &mut driving => driven,
        fed = &mut feeding => {
            fed?;
            driving.await
        }
    }
}

/// What the feeder and the recorder share. They run on one task and never hold it across
/// an `.await`.
#[derive(Default)]
struct Book {
    /// Triggers fed to the driver whose cycle has not ended, by receipt.
    fed: HashMap<String, StoredTrigger>,
    /// What the store keeps of the runner's cycles, by receipt.
    kept: KeptCycles<ScheduleRef, String>,
    /// Triggers not fed yet: new, deferred, or waiting to be resolved (see `due_at`).
    waiting: Vec<StoredTrigger>,
}

/// Business units' week settings: the feeder reads them, and forgets a unit's once a read
/// of one of its schedules answers 404.
type Weeks = RefCell<WeekCache>;

impl Book {
    /// Take the waiting triggers due at `now`; returns them and when the next one is due.
    fn take_due(&mut self, now: Timestamp) -> (Vec<StoredTrigger>, Option<Timestamp>) {
        let (due, later) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|t| t.due_at.is_none_or(|at| at <= now));
        self.waiting = later;
        let next = self.waiting.iter().filter_map(|t| t.due_at).min();
        (due, next)
    }

    /// Whether this feeding of `receipt` is its arrival (not a deferral's re-evaluation, nor
    /// an unconfirmed decision's after a restart).
    fn is_arrival(&self, receipt: &str) -> bool {
        self.fed
            .get(receipt)
            .is_some_and(|t| !t.note.as_ref().is_some_and(TriggerNote::fed_again))
    }

    /// Follow the batch's triggers into their cycles; returns the progress to record, in
    /// the order of the events.
    fn answer(&mut self, batch: &Batch<String>) -> Vec<Mark> {
        for (seq, receipt) in &batch.fed {
            self.kept.fed(*seq, receipt.clone());
        }
        let mut marks = Vec::new();
        for event in &batch.events {
            match self.kept.event(ScheduleRef::clone(&event.schedule), event) {
                Some(Change::Write { triggers, write }) => {
                    let progress = Progress {
                        status: TriggerStatus::Pending,
                        note: write.map(|write| TriggerNote::Publishing { write }),
                        due_at: None,
                    };
                    marks.extend(triggers.into_iter().map(|receipt| Mark {
                        receipt,
                        progress: progress.clone(),
                        again: None,
                    }));
                }
                Some(Change::Ended { triggers, after }) => {
                    let progress = progress_after(&after);
                    for receipt in triggers {
                        if after == After::Unconfirmed {
                            // Kept in `fed`: the cycle that reads the schedule next answers it.
                            marks.push(Mark {
                                receipt,
                                progress: progress.clone(),
                                again: None,
                            });
                            continue;
                        }
                        let Some(mut stored) = self.fed.remove(&receipt) else {
                            continue;
                        };
                        let again = (progress.status == TriggerStatus::Pending).then(|| {
                            stored.note.clone_from(&progress.note);
                            stored.due_at = progress.due_at;
                            stored
                        });
                        marks.push(Mark {
                            receipt,
                            progress: progress.clone(),
                            again,
                        });
                    }
                }
                None => {}
            }
        }
        marks
    }
}

/// A trigger's progress to record.
struct Mark {
    receipt: String,
    progress: Progress,
    /// The trigger, when its cycle ended and it is to be fed again when due.
    again: Option<StoredTrigger>,
}

/// Where a trigger stands in the store once a cycle that answers it has ended.
fn progress_after(after: &After) -> Progress {
    match after {
        After::Again { due } => Progress {
            status: TriggerStatus::Pending,
            note: Some(TriggerNote::Deferred),
            due_at: Some(*due),
        },
        After::Unconfirmed => Progress {
            status: TriggerStatus::Pending,
            note: Some(TriggerNote::Unconfirmed),
            due_at: None,
        },
        After::Failed { reason } => Progress {
            status: TriggerStatus::Failed,
            note: Some(TriggerNote::Failed {
                reason: reason.clone(),
            }),
            due_at: None,
        },
        After::Done => Progress {
            status: TriggerStatus::Done,
            note: None,
            due_at: None,
        },
    }
}

/// Feed the driver until `stop` turns true: first the triggers `unfinished` at start, then
/// each trigger accepted since, and each waiting one once it is due.
async fn feed<A: ScheduleApi>(
    api: &A,
    parts: &WorkerParts,
    book: &RefCell<Book>,
    weeks: &Weeks,
    unfinished: Vec<StoredTrigger>,
    driver: mpsc::Sender<Feed>,
) -> Result<(), WorkerError> {
    let mut stop = parts.stop.clone();
    let mut first = Some(unfinished);
    // The last trigger taken from the store; `None` until the first is.
    let mut cursor: Option<String> = None;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let fresh = match (first.take(), &cursor) {
            (Some(unfinished), _) => unfinished,
            (None, None) => parts.store.unfinished().await?,
            (None, Some(after)) => parts.store.unfinished_after(after).await?,
        };
        if let Some(last) = fresh.last() {
            cursor = Some(last.receipt.id.clone());
        }
        let now = parts.clock.now();
        let (due, next_due) = {
            let mut book = book.borrow_mut();
            book.waiting.extend(fresh);
            book.take_due(now)
        };
        if !due.is_empty() {
            let policy = parts.rules.current();
            for (stored, schedule) in resolve_all(api, &policy, parts, book, weeks, due).await? {
                let trigger = trigger_of(&stored);
                let receipt = stored.receipt.id.clone();
                book.borrow_mut().fed.insert(receipt.clone(), stored);
                if driver.send((schedule, trigger, receipt)).await.is_err() {
                    // The driver has stopped; its error is the worker's.
                    return Ok(());
                }
            }
            continue;
        }
        let sleep = async {
            match next_due {
                Some(at) => parts.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = parts.wake.notified() => {}
            _ = stop.changed() => {}
            () = sleep => {}
        }
    }
}

/// The runner's trigger for a stored one; a deferred or unconfirmed trigger fed again
/// carries no delivery id, so the runner does not take it for a repeat.
fn trigger_of(stored: &StoredTrigger) -> Trigger {
    let again = stored.note.as_ref().is_some_and(TriggerNote::fed_again);
    Trigger {
        delivery_id: (!again).then(|| stored.delivery_id.clone()),
        source: stored.source.clone(),
        event: Some(stored.event.clone()),
        received_at: stored.receipt.received_at,
    }
}

/// Resolve each trigger's schedule; one that cannot be resolved now waits or fails.
async fn resolve_all<A: ScheduleApi>(
    api: &A,
    policy: &Policy,
    parts: &WorkerParts,
    book: &RefCell<Book>,
    weeks: &Weeks,
    due: Vec<StoredTrigger>,
) -> Result<Vec<(StoredTrigger, ScheduleRef)>, WorkerError> {
    let mut fed = Vec::with_capacity(due.len());
    let mut cache: HashMap<ScheduleTarget, Result<ScheduleRef, Unresolved>> = HashMap::new();
    for mut stored in due {
        let now = parts.clock.now();
        let resolved = match cache.get(&stored.target) {
            Some(r) => r.clone(),
            None => {
                let r = resolve(api, &policy.timezone, now, &stored.target, weeks).await;
                cache.insert(stored.target.clone(), r.clone());
                r
            }
        };
        if let Err(Unresolved::Refused(why)) = &resolved {
            parts.readiness.refused(why);
            parts.metrics.inc("publish_guard_auth_failures_total", &[]);
        }
        match resolved {
            Ok(schedule) => fed.push((stored, schedule)),
            Err(Unresolved::Later(why) | Unresolved::Refused(why)) => {
                tracing::warn!(
                    receipt = stored.receipt.id,
                    why,
                    "schedule not resolved yet"
                );
                stored.due_at = now.checked_add(RESOLVE_RETRY).ok();
                let progress = Progress {
                    status: TriggerStatus::Pending,
                    note: stored.note.clone(),
                    due_at: stored.due_at,
                };
                parts.store.record(&stored.receipt.id, progress).await?;
                book.borrow_mut().waiting.push(stored);
            }
            Err(Unresolved::Never(why)) => {
                tracing::error!(
                    receipt = stored.receipt.id,
                    why,
                    "schedule cannot be resolved"
                );
                let progress = Progress {
                    status: TriggerStatus::Failed,
                    note: Some(TriggerNote::Failed { reason: why }),
                    due_at: None,
                };
                parts.store.record(&stored.receipt.id, progress).await?;
            }
        }
    }
    Ok(fed)
}

/// Records the driver's batches in the audit log, then the progress of the triggers whose
/// cycles ended in them.
struct AuditRecorder<'p> {
    parts: &'p WorkerParts,
    /// Where every event goes.
    audit: Arc<AuditWriter>,
    book: &'p RefCell<Book>,
    weeks: &'p Weeks,
    /// This run's step-id prefix.
    run: u64,
    /// Steps numbered so far in this run.
    steps: Cell<u64>,
}

impl AuditRecorder<'_> {
    /// Each event's step id (see the module's documentation).
    fn step_ids(&self, batch: &Batch<String>) -> Vec<String> {
        let book = self.book.borrow();
        let arrivals: HashMap<u64, &str> = batch
            .fed
            .iter()
            .filter(|(_, receipt)| book.is_arrival(receipt))
            .map(|(seq, receipt)| (*seq, receipt.as_str()))
            .collect();
        batch
            .events
            .iter()
            .map(|event| match &event.kind {
                EventKind::TriggerReceived { trigger, .. } if arrivals.contains_key(trigger) => {
                    arrival_step(arrivals.get(trigger).copied().unwrap_or_default())
                }
                _ => {
                    let n = self.steps.get() + 1;
                    self.steps.set(n);
                    format!("run-{}/{n}", self.run)
                }
            })
            .collect()
    }
}

impl EventRecorder<String> for AuditRecorder<'_> {
    type Error = WorkerError;

    async fn record_batch(&self, batch: Batch<String>) -> Result<(), WorkerError> {
        let steps = self.step_ids(&batch);
        let audit = &self.audit;
        let writes = steps
            .iter()
            .zip(&batch.events)
            .map(|(step, event)| audit.record(step, event.at, event));
        for written in futures_util::future::join_all(writes).await {
            written?;
        }
        count(&self.parts.metrics, &batch.events);
        for event in &batch.events {
            if let EventKind::StateRead {
                status: Some(404), ..
            } = &event.kind
            {
                self.weeks
                    .borrow_mut()
                    .forget(&event.schedule.business_unit);
            }
        }
        note_readiness(&self.parts.readiness, &batch.events);
        let marks = self.book.borrow_mut().answer(&batch);
        let store = &self.parts.store;
        // Submitted in order, so a cycle's publish note never lands after its outcome.
        let records = marks
            .iter()
            .map(|mark| store.record(&mark.receipt, mark.progress.clone()));
        for recorded in futures_util::future::join_all(records).await {
            recorded?;
        }
        let mut again = marks.into_iter().filter_map(|mark| mark.again).peekable();
        if again.peek().is_some() {
            self.book.borrow_mut().waiting.extend(again);
            // The feeder may be asleep until a later instant.
            self.parts.wake.notify_one();
        }
        Ok(())
    }
}

/// A refused login makes the relay not ready until a read goes through again.
fn note_readiness(readiness: &Readiness, events: &[Event]) {
    for event in events {
        match &event.kind {
            EventKind::Outcome {
                outcome: Outcome::Unauthorized { reason },
                ..
            } => readiness.refused(reason),
            EventKind::StateRead {
                status: Some(200..=299),
                ..
            } => readiness.authorized(),
            _ => {}
        }
    }
}

/// Count decisions, API calls, states known without a read and refused logins.
fn count(metrics: &Metrics, events: &[Event]) {
    let status = |s: &Option<u16>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
    for event in events {
        match &event.kind {
            EventKind::Decision {
                phase,
                rule,
                action,
                ..
            } => metrics.inc(
                "publish_guard_decisions_total",
                &[
                    ("phase", phase.keyword()),
                    ("rule", rule),
                    ("action", action.keyword()),
                ],
            ),
            EventKind::StateRead { status: s, .. } => metrics.inc(
                "publish_guard_api_calls_total",
                &[("kind", "read"), ("status", &status(s))],
            ),
            EventKind::StateKnown { learnt, .. } => metrics.inc(
                "publish_guard_states_known_total",
                &[(
                    "learnt",
                    match learnt {
                        Learnt::Read => "read",
                        Learnt::Event => "event",
                        Learnt::Follow => "follow",
                    },
                )],
            ),
            EventKind::PublishCall { status: s, .. } => metrics.inc(
                "publish_guard_api_calls_total",
                &[("kind", "publish"), ("status", &status(s))],
            ),
            EventKind::Outcome {
                outcome: Outcome::Unauthorized { .. },
                ..
            } => metrics.inc("publish_guard_auth_failures_total", &[]),
            _ => {}
        }
    }
}
