//! The worker: takes due triggers from the store, runs them as one burst through the runner's
//! live driver under the policy in force when the burst starts, records every event in the
//! audit log (on disk before anything is marked done), then records each trigger's progress.
//! A trigger whose events were not recorded stays unfinished and is carried on after a restart.

use super::mapping::ScheduleTarget;
use super::metrics::Metrics;
use super::rules::Rules;
use super::store::{Progress, StoredTrigger, TriggerStatus, TriggerStore};
use crate::api::clock::Clock;
use crate::api::{ScheduleApi, ScheduleRef};
use crate::audit::canonical::sha256_hex;
use crate::audit::writer::AuditWriter;
use crate::event::{Event, EventKind, MemorySink, Outcome};
use crate::policy::Policy;
use crate::runner::driver::Driver;
use crate::runner::random::SeededRandom;
use crate::runner::{RunnerConfig, Trigger};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// The progress note of a trigger waiting out a deferral: fed again, it is not a new delivery.
const DEFERRED: &str = "deferred";
/// How long to wait before resolving a schedule again after the API failed to list a week.
const RESOLVE_RETRY: SignedDuration = SignedDuration::from_secs(30);

/// What the worker shares with the server.
pub struct WorkerParts {
    /// Where accepted triggers are.
    pub store: Arc<dyn TriggerStore>,
    /// Where every event goes.
    pub audit: Arc<AuditWriter>,
    /// The policy in force.
    pub rules: Arc<Rules>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The runner's bounds.
    pub config: RunnerConfig,
    /// Notified when a trigger is accepted.
    pub wake: Arc<Notify>,
    /// Becomes `true` when the service stops.
    pub stop: watch::Receiver<bool>,
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

/// A trigger of the burst, resolved to its schedule.
struct Fed {
    stored: StoredTrigger,
    schedule: ScheduleRef,
}

/// Run until `stop` turns true, then return once the burst in flight is recorded.
pub async fn run_worker<A: ScheduleApi>(api: A, mut parts: WorkerParts) -> Result<(), WorkerError> {
    // Keeps a burst's events until they are written to the audit log.
    let sink = MemorySink::new();
    let random = SeededRandom::from_entropy();
    let clock = Arc::clone(&parts.clock);
    let mut driver = Driver::new(&api, &*clock, &sink, random, parts.config.clone());
    loop {
        if *parts.stop.borrow() {
            return Ok(());
        }
        let now = clock.now();
        let unfinished = parts.store.unfinished().await?;
        let next_due = unfinished
            .iter()
            .filter_map(|t| t.due_at)
            .filter(|due| *due > now)
            .min();
        let due: Vec<StoredTrigger> = unfinished
            .into_iter()
            .filter(|t| t.due_at.is_none_or(|due| due <= now))
            .collect();
        if due.is_empty() {
            let sleep = async {
                match next_due {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = parts.wake.notified() => {}
                _ = parts.stop.changed() => {}
                () = sleep => {}
            }
            continue;
        }
        let policy = parts.rules.current();
        let fed = resolve_all(&api, &policy, &parts, due).await?;
        let triggers = fed
            .iter()
            .map(|f| (f.schedule.clone(), trigger_of(&f.stored)))
            .collect();
        driver.run_triggers(&policy, triggers).await;
        let events = sink.take();
        record_events(&parts, &fed, &events).await?;
        count(&parts.metrics, &events);
        finish(&parts, &fed, &events).await?;
    }
}

/// The runner's trigger for a stored one; a deferred trigger fed again carries no delivery
/// id, so the runner does not take it for a repeat.
fn trigger_of(stored: &StoredTrigger) -> Trigger {
    let again = stored.progress.as_deref() == Some(DEFERRED);
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
    due: Vec<StoredTrigger>,
) -> Result<Vec<Fed>, WorkerError> {
    let mut fed = Vec::with_capacity(due.len());
    let mut cache: HashMap<String, Result<ScheduleRef, Unresolved>> = HashMap::new();
    for stored in due {
        let now = parts.clock.now();
        let resolved = match cache.get(&stored.schedule) {
            Some(r) => r.clone(),
            None => {
                let r = resolve(api, policy, now, &stored.schedule).await;
                cache.insert(stored.schedule.clone(), r.clone());
                r
            }
        };
        let progress = match resolved {
            Ok(schedule) => {
                fed.push(Fed { stored, schedule });
                continue;
            }
            Err(Unresolved::Later(why)) => {
                tracing::warn!(
                    receipt = stored.receipt.id,
                    why,
                    "schedule not resolved yet"
                );
                Progress {
                    status: TriggerStatus::Pending,
                    progress: stored.progress.clone(),
                    due_at: now.checked_add(RESOLVE_RETRY).ok(),
                }
            }
            Err(Unresolved::Never(why)) => {
                tracing::error!(
                    receipt = stored.receipt.id,
                    why,
                    "schedule cannot be resolved"
                );
                Progress {
                    status: TriggerStatus::Failed,
                    progress: Some(why),
                    due_at: None,
                }
            }
        };
        parts.store.record(&stored.receipt.id, progress).await?;
    }
    Ok(fed)
}

/// Why a trigger's schedule is not known.
#[derive(Clone, Debug)]
enum Unresolved {
    /// The API could not say now; try again later.
    Later(String),
    /// The stored target is unusable.
    Never(String),
}

/// The schedule a stored target names: `current` is the week (from Monday) containing now
/// in the policy's time zone; `latest` is the newest schedule the API lists for that week.
async fn resolve<A: ScheduleApi>(
    api: &A,
    policy: &Policy,
    now: Timestamp,
    stored: &str,
) -> Result<ScheduleRef, Unresolved> {
    let target: ScheduleTarget =
        serde_json::from_str(stored).map_err(|e| Unresolved::Never(e.to_string()))?;
    let week = if target.week == "current" {
        let today = policy.timezone.to_datetime(now).date();
        let back = i64::from(today.weekday().to_monday_zero_offset());
        today
            .checked_sub(jiff::Span::new().days(back))
            .map_err(|e| Unresolved::Never(e.to_string()))?
    } else {
        target
            .week
            .parse::<Date>()
            .map_err(|e| Unresolved::Never(format!("week {:?}: {e}", target.week)))?
    };
    let schedule_id = if target.schedule_id == "latest" {
        let answer = api
            .list_week(&target.business_unit, week)
            .await
            .map_err(|e| Unresolved::Later(e.to_string()))?;
        let listed = answer.body.filter(|_| (200..300).contains(&answer.status));
        let Some(ids) = listed else {
            return Err(Unresolved::Later(format!(
                "list answered {}",
                answer.status
            )));
        };
        ids.last().cloned().ok_or_else(|| {
            Unresolved::Later(format!("no schedule listed for the week of {week}"))
        })?
    } else {
        target.schedule_id
    };
    Ok(ScheduleRef {
        business_unit: target.business_unit,
        week,
        schedule_id,
    })
}

/// Write the burst's events, each under a step id that is the same if the same burst is
/// run again after a restart: `{receipt}/received` for a trigger's arrival (the k-th
/// arrival is the k-th trigger fed), `burst-{hash of the receipts}/{n}` for the rest.
async fn record_events(
    parts: &WorkerParts,
    fed: &[Fed],
    events: &[Event],
) -> Result<(), WorkerError> {
    let receipts: Vec<&str> = fed.iter().map(|f| f.stored.receipt.id.as_str()).collect();
    let burst = sha256_hex(receipts.join(",").as_bytes());
    let burst = burst.get(..16).unwrap_or(&burst);
    let mut arrivals = fed.iter();
    let steps: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(n, event)| match &event.kind {
            EventKind::TriggerReceived { .. } => match arrivals.next() {
                Some(f) => format!("{}/received", f.stored.receipt.id),
                None => format!("burst-{burst}/{n}"),
            },
            _ => format!("burst-{burst}/{n}"),
        })
        .collect();
    let writes = steps
        .iter()
        .zip(events)
        .map(|(step, event)| parts.audit.record(step, event.at, event));
    for written in futures_util::future::join_all(writes).await {
        written?;
    }
    Ok(())
}

/// Count decisions and API calls.
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
                &[("phase", phase), ("rule", rule), ("action", action)],
            ),
            EventKind::StateRead { status: s, .. } => metrics.inc(
                "publish_guard_api_calls_total",
                &[("kind", "read"), ("status", &status(s))],
            ),
            EventKind::PublishCall { status: s, .. } => metrics.inc(
                "publish_guard_api_calls_total",
                &[("kind", "publish"), ("status", &status(s))],
            ),
            _ => {}
        }
    }
}

/// Record each trigger's progress from its schedule's last outcome in the burst.
async fn finish(parts: &WorkerParts, fed: &[Fed], events: &[Event]) -> Result<(), WorkerError> {
    let mut last: HashMap<&ScheduleRef, &Outcome> = HashMap::new();
    for event in events {
        if let EventKind::Outcome { outcome, .. } = &event.kind {
            last.insert(&event.schedule, outcome);
        }
    }
    let records = fed.iter().map(|f| {
        let progress = match last.get(&f.schedule) {
            Some(Outcome::Deferred { until }) => Progress {
                status: TriggerStatus::Pending,
                progress: Some(DEFERRED.into()),
                due_at: Some(*until),
            },
            Some(Outcome::Failed { reason }) => Progress {
                status: TriggerStatus::Failed,
                progress: Some(reason.clone()),
                due_at: None,
            },
            _ => Progress {
                status: TriggerStatus::Done,
                progress: None,
                due_at: None,
            },
        };
        parts.store.record(&f.stored.receipt.id, progress)
    });
    for recorded in futures_util::future::join_all(records).await {
        recorded?;
    }
    Ok(())
}
