//! What the runner's acceptance tests share: the reference policy, a double on a clock
//! that knows who sleeps on it, and a pump that moves that clock to the next sleeper's
//! deadline whenever one waits, so waits of seconds or minutes cost no real time.

#![allow(dead_code)] // each test file uses its own part of this

use crate::api_support::{schedule, start};
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::double::{ApiDouble, DoubleConfig};
use publish_guard::api::model::ModelConfig;
use publish_guard::api::{ScheduleApi, ScheduleRef};
use publish_guard::effects::clock::{Clock, ManualClock, Sleep};
use publish_guard::effects::random::SeededRandom;
use publish_guard::policy::Policy;
use publish_guard::runner::driver::Driver;
use publish_guard::runner::event::{Event, EventKind, EventSink, MemorySink, Outcome, WaitReason};
use publish_guard::runner::{RunnerConfig, Trigger};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// The DESIGN.md reference policy, compiled.
pub fn reference_policy() -> Policy {
    crate::common::compile_valid(include_str!("../../fixtures/runner/reference.rules"))
}

/// The API double holding one schedule, on a clock the test owns, and the policy.
pub struct Rig {
    /// The double.
    pub double: ApiDouble,
    /// The clock of the double, the client and the runner.
    pub clock: SteppedClock,
    /// The reference policy.
    pub policy: Policy,
}

impl Rig {
    /// A double whose one schedule is `published` at `version`; a publish takes `processing`.
    pub async fn new(published: bool, version: i64, processing: SignedDuration) -> Rig {
        let clock = SteppedClock::new(start());
        let config = DoubleConfig {
            model: ModelConfig {
                processing_time: processing,
                ..ModelConfig::default()
            },
            clock: Arc::new(clock.clone()),
            ..DoubleConfig::default()
        };
        let double = match ApiDouble::start(config).await {
            Ok(d) => d,
            Err(e) => panic!("the double did not start: {e}"),
        };
        double.add_schedule(&schedule(), published, version);
        Rig {
            double,
            clock,
            policy: reference_policy(),
        }
    }

    /// Run `count` triggers through `api`, queued at once as a burst, to the end of every
    /// cycle, pumping the clock through every wait.
    pub async fn run<A: ScheduleApi>(&self, api: &A, count: usize, sink: &HookSink<'_>) {
        let mut driver = Driver::new(
            api,
            &self.clock,
            sink,
            SeededRandom::new(7),
            RunnerConfig::default(),
        );
        let triggers: Vec<(ScheduleRef, Trigger)> = (0..count)
            .map(|i| (schedule(), trigger(&format!("delivery-{i}"))))
            .collect();
        self.clock
            .pump(driver.run_triggers(&self.policy, triggers))
            .await;
    }

    /// Clock time since the test started.
    pub fn elapsed(&self) -> SignedDuration {
        self.clock.now().duration_since(start())
    }
}

/// A published schedule and one trigger: the cycle skips (the caller counts the writes).
pub async fn scenario_already_published<A: ScheduleApi>(client: impl Fn(&Rig) -> A) -> Rig {
    let rig = Rig::new(true, 3, SignedDuration::ZERO).await;
    let sink = HookSink::plain();
    rig.run(&client(&rig), 1, &sink).await;
    let reason = "already published".to_owned();
    assert_eq!(sink.outcomes(), [Outcome::Skipped { reason }]);
    rig
}

/// A draft and a burst of 100 triggers: one cycle publishes, one more evaluation answers
/// the 99 coalesced triggers, and no call meets a 409 (the caller counts the writes).
pub async fn scenario_burst_of_100<A: ScheduleApi>(
    client: impl Fn(&Rig) -> A,
) -> (Rig, HookSink<'static>) {
    let rig = Rig::new(false, 1, SignedDuration::from_secs(10)).await;
    let sink = HookSink::plain();
    rig.run(&client(&rig), 100, &sink).await;
    assert_eq!(rig.double.conflicts(), 0);
    assert_eq!(sink.count("trigger_received"), 100);
    let reason = "already published".to_owned();
    assert_eq!(
        sink.outcomes(),
        [
            Outcome::Published { version: 2 },
            Outcome::Skipped { reason }
        ],
        "one publish, then exactly one evaluation for the 99 coalesced triggers"
    );
    (rig, sink)
}

/// A 429 with `Retry-After: 7`: another caller of the same API starts the rate window 53 s
/// before our run and uses up the minute's allowance right after our read. The runner
/// waits exactly 7 s of the clock, reads again, and publishes.
pub async fn scenario_throttled_retry_after_7<A: ScheduleApi>(client: impl Fn(&Rig) -> A) {
    let rig = Rig::new(false, 1, SignedDuration::ZERO).await;
    let first = client(&rig).read(&schedule()).await.ok().map(|a| a.status);
    assert_eq!(first, Some(200));
    rig.clock.set(start() + SignedDuration::from_secs(53));
    let throttled_yet = || rig.double.call_log().iter().any(|c| c.status == Some(429));
    let limit = |requests_per_minute| {
        rig.double.set_model_config(ModelConfig {
            processing_time: SignedDuration::ZERO,
            requests_per_minute,
            ..ModelConfig::default()
        })
    };
    let sink = HookSink::new(|event| match &event.kind {
        EventKind::StateRead { .. } if !throttled_yet() => limit(2),
        EventKind::Wait { .. } => limit(300),
        _ => {}
    });
    rig.run(&client(&rig), 1, &sink).await;

    let events = sink.events.events();
    let throttled = events.iter().position(|e| {
        matches!(
            &e.kind,
            EventKind::PublishCall {
                status: Some(429),
                ..
            }
        )
    });
    let Some(throttled) = throttled else {
        panic!("no 429: {events:#?}")
    };
    let seven = SignedDuration::from_secs(7);
    let wait = events[throttled..].iter().find_map(|e| match &e.kind {
        EventKind::Wait {
            delay,
            reason: WaitReason::Backoff,
            ..
        } => Some((e.at, *delay)),
        _ => None,
    });
    let Some((waited_at, delay)) = wait else {
        panic!("no wait after the 429")
    };
    assert_eq!(delay.duration, seven);
    assert_eq!(delay.retry_after, Some(seven));
    let next_read = events[throttled..].iter().find_map(|e| match &e.kind {
        EventKind::StateRead { .. } => Some(e.at),
        _ => None,
    });
    assert_eq!(
        next_read,
        Some(waited_at + seven),
        "the next step is 7 s later"
    );
    assert_eq!(sink.outcomes(), [Outcome::Published { version: 2 }]);
}

/// A ServiceNow trigger with this delivery id.
pub fn trigger(delivery: &str) -> Trigger {
    Trigger {
        delivery_id: Some(delivery.into()),
        source: "servicenow".into(),
        event: Some("case.updated".into()),
        received_at: start(),
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
