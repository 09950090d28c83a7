//! What the runner's acceptance tests share: the reference policy, a double on a clock
//! that knows who sleeps on it, and a pump that moves that clock to the next sleeper's
//! deadline whenever one waits, so waits of seconds or minutes cost no real time.

#![allow(dead_code)] // each test file uses its own part of this

use jiff::Timestamp;
use publish_guard::api::clock::{Clock, ManualClock, Sleep};
use publish_guard::event::{Event, EventKind, EventSink, MemorySink, Outcome};
use publish_guard::policy::Policy;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// The DESIGN.md reference policy, compiled.
pub fn reference_policy() -> Policy {
    let source = include_str!("../fixtures/runner/reference.rules");
    match publish_guard::compile(source) {
        Ok(checked) => checked.policy,
        Err(diagnostics) => panic!("the reference policy does not check: {diagnostics:?}"),
    }
}

/// A [`ManualClock`] that keeps the deadlines of its current sleepers.
#[derive(Clone, Debug)]
pub struct SteppedClock {
    inner: ManualClock,
    sleepers: Arc<Mutex<Vec<(u64, Timestamp)>>>,
    changed: Arc<watch::Sender<u64>>,
    next_id: Arc<AtomicU64>,
}

/// Removes a sleeper's deadline when its sleep ends or is dropped.
struct Registration {
    id: u64,
    sleepers: Arc<Mutex<Vec<(u64, Timestamp)>>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut sleepers = self.sleepers.lock().unwrap_or_else(PoisonError::into_inner);
        sleepers.retain(|(id, _)| *id != self.id);
    }
}

impl SteppedClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        SteppedClock {
            inner: ManualClock::new(start),
            sleepers: Arc::new(Mutex::new(Vec::new())),
            changed: Arc::new(watch::Sender::new(0)),
            next_id: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Move the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        self.inner.set(to);
    }

    /// The earliest deadline still ahead of the clock, once some sleeper has one.
    async fn next_deadline(&self) -> Timestamp {
        let mut changed = self.changed.subscribe();
        loop {
            let now = self.now();
            let next = {
                let sleepers = self.sleepers.lock().unwrap_or_else(PoisonError::into_inner);
                sleepers
                    .iter()
                    .map(|(_, at)| *at)
                    .filter(|at| *at > now)
                    .min()
            };
            if let Some(at) = next {
                return at;
            }
            if changed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Run `work` to its end, moving the clock to each sleeper's deadline as it sleeps.
    pub async fn pump<T>(&self, work: impl Future<Output = T>) -> T {
        let mut work = pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                at = self.next_deadline() => self.set(at),
            }
        }
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        let registration = (deadline > self.now()).then(|| {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut sleepers = self.sleepers.lock().unwrap_or_else(PoisonError::into_inner);
            sleepers.push((id, deadline));
            Registration {
                id,
                sleepers: self.sleepers.clone(),
            }
        });
        // Announce only once the deadline is in the list the pump reads.
        if registration.is_some() {
            self.changed.send_modify(|n| *n += 1);
        }
        let sleep = self.inner.sleep_until(deadline);
        Box::pin(async move {
            sleep.await;
            drop(registration);
        })
    }
}

/// A sink that keeps every event and lets a test act on some of them as they happen
/// (a person editing the schedule between our read and our write, say).
pub struct HookSink<'a> {
    /// Every event, in order.
    pub events: MemorySink,
    hook: Box<dyn Fn(&Event) + 'a>,
}

impl<'a> HookSink<'a> {
    /// A sink calling `hook` on each event before keeping it.
    pub fn new(hook: impl Fn(&Event) + 'a) -> Self {
        HookSink {
            events: MemorySink::new(),
            hook: Box::new(hook),
        }
    }

    /// A sink that only keeps events.
    pub fn plain() -> Self {
        HookSink::new(|_| {})
    }

    /// The kinds of the events recorded, in order.
    pub fn kinds(&self) -> Vec<EventKind> {
        self.events.events().into_iter().map(|e| e.kind).collect()
    }

    /// The outcomes recorded, in order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.kinds()
            .into_iter()
            .filter_map(|k| match k {
                EventKind::Outcome { outcome, .. } => Some(outcome),
                _ => None,
            })
            .collect()
    }

    /// How many events of the kind `name` (`trigger_received`, `publish_call`, ...).
    pub fn count(&self, name: &str) -> usize {
        self.events
            .events()
            .iter()
            .filter(|e| {
                serde_json::to_value(e)
                    .ok()
                    .and_then(|v| v.get("kind").cloned())
                    == Some(name.into())
            })
            .count()
    }
}

impl EventSink for HookSink<'_> {
    fn record(&self, event: Event) {
        (self.hook)(&event);
        self.events.record(event);
    }
}
