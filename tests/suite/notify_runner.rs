//! The runner hearing Genesys, over HTTP and a real WebSocket against the double, on the
//! manual clock: our publish completed by its event, an `Error` known at its event, a
//! planner's edit heard and published on the next trigger without a read, and a dropped
//! channel whose gap makes the cached state stale.
//!
//! The test stands between the notification client and the runner, forwarding each report
//! and waiting (on a one-slot channel) until the runner has taken it: nothing sleeps.

use crate::api_support::{double, genesys, schedule, start};
use crate::runner_support::trigger;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::OperationStatus;
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, CallKind, Outage};
use publish_guard::api::model::{ModelConfig, NotifyConfig};
use publish_guard::api::notify::Heard;
use publish_guard::api::notify::client::NotificationClient;
use publish_guard::api::notify::health::{Continuity, HealthConfig};
use publish_guard::effects::clock::ManualClock;
use publish_guard::effects::random::SeededRandom;
use publish_guard::policy::Policy;
use publish_guard::runner::driver::Driver;
use publish_guard::runner::event::{Event, EventKind, EventSink, Outcome};
use publish_guard::runner::{RunnerConfig, Trigger};
use std::future::Future;
use tokio::sync::{mpsc, watch};

/// Records events and lets the test wait for one.
struct WatchSink(watch::Sender<Vec<Event>>);

impl EventSink for WatchSink {
    fn record(&self, event: Event) {
        self.0.send_modify(|events| events.push(event));
    }
}

/// The test's hold on a running runner and notification client.
struct Stage<'a> {
    clock: &'a ManualClock,
    double: &'a ApiDouble,
    from_client: mpsc::Receiver<Heard>,
    to_runner: mpsc::Sender<Heard>,
    triggers: mpsc::Sender<(ScheduleRef, Trigger, ())>,
    events: watch::Receiver<Vec<Event>>,
    sent: usize,
}

impl Stage<'_> {
    /// Takes the client's next report and hands it to the runner, waiting until taken.
    async fn forward(&mut self) -> Heard {
        let Some(heard) = self.from_client.recv().await else {
            panic!("the notification client stopped");
        };
        assert!(self.to_runner.send(heard.clone()).await.is_ok());
        assert!(self.to_runner.reserve().await.is_ok(), "the runner stopped");
        heard
    }

    /// Forwards reports until one satisfies `last`.
    async fn forward_until(&mut self, last: impl Fn(&Heard) -> bool) {
        while !last(&self.forward().await) {}
    }

    async fn trigger(&mut self) {
        self.sent += 1;
        let delivery = format!("delivery-{}", self.sent);
        let mut trigger = trigger(&delivery);
        trigger.received_at = self.clock_now();
        assert!(self.triggers.send((schedule(), trigger, ())).await.is_ok());
    }

    fn clock_now(&self) -> Timestamp {
        publish_guard::effects::clock::Clock::now(self.clock)
    }

    /// Waits until `n` cycles have ended; returns every event so far.
    async fn outcomes(&mut self, n: usize) -> Vec<Event> {
        let events = self
            .events
            .wait_for(|events| outcomes(events).len() >= n)
            .await;
        match events {
            Ok(events) => events.clone(),
            Err(_) => panic!("the runner stopped"),
        }
    }

    /// Waits until the runner has emitted an event `matching`.
    async fn until(&mut self, matching: impl Fn(&EventKind) -> bool) {
        self.until_count(1, matching).await;
    }

    /// Waits until the runner has emitted `n` events `matching`.
    async fn until_count(&mut self, n: usize, matching: impl Fn(&EventKind) -> bool) {
        let found = self
            .events
            .wait_for(|events| events.iter().filter(|e| matching(&e.kind)).count() >= n)
            .await;
        assert!(found.is_ok(), "the runner stopped");
    }
}

fn outcomes(events: &[Event]) -> Vec<Outcome> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Outcome { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

fn default_policy() -> Policy {
    crate::common::compile_valid(include_str!("../../rules/default.rules"))
}

fn is_up(heard: &Heard) -> bool {
    matches!(heard, Heard::Up(_))
}

/// A double at `published`/`version`, 30 s of processing, events 200 ms after the change.
async fn notifying(published: bool, version: i64) -> (ApiDouble, ManualClock) {
    let (double, clock) = double(|c| {
        c.model = ModelConfig {
            processing_time: SignedDuration::from_secs(30),
            ..ModelConfig::default()
        };
    })
    .await;
    double.add_schedule(&schedule(), published, version);
    double.set_notifications(Some(NotifyConfig {
        delay: SignedDuration::from_millis(200),
        loss_per_mille: 0,
    }));
    (double, clock)
}

/// Runs the runner (default policy) and a notification client beside `script`.
async fn staged<'a, F, Fut>(double: &'a ApiDouble, clock: &'a ManualClock, script: F) -> Vec<Event>
where
    F: FnOnce(Stage<'a>) -> Fut,
    Fut: Future<Output = ()>,
{
    let api = genesys(double, clock);
    let listener_api = genesys(double, clock);
    let policy = default_policy();
    let (events_tx, events) = watch::channel(Vec::new());
    let sink = WatchSink(events_tx);
    let (to_client, from_client) = mpsc::channel(64);
    let (to_runner, heard) = mpsc::channel(1);
    let (triggers, trigger_rx) = mpsc::channel(64);
    let client = NotificationClient::new(
        &listener_api,
        clock,
        SeededRandom::new(3),
        &["bu-1".to_owned()],
        HealthConfig::default(),
    );
    let mut driver = Driver::new(
        &api,
        clock,
        &sink,
        SeededRandom::new(7),
        RunnerConfig::default(),
    )
    .hearing(heard, SignedDuration::from_mins(5));
    let stage = Stage {
        clock,
        double,
        from_client,
        to_runner,
        triggers,
        events: events.clone(),
        sent: 0,
    };
    let script = async move {
        script(stage).await;
    };
    let driving = driver.run(|| &policy, trigger_rx);
    tokio::select! {
        () = async { tokio::join!(client.run(to_client), script); } => {}
        ran = driving => assert!(ran.is_ok()),
    }
    events.borrow().clone()
}

fn reads(double: &ApiDouble) -> usize {
    double.calls(CallKind::GetSchedule)
}

#[tokio::test]
async fn our_publish_is_completed_by_its_event_without_polling() {
    let (double, clock) = notifying(false, 3).await;
    let (double, clock) = (&double, &clock);
    let events = staged(double, clock, |mut s| async move {
        s.forward_until(is_up).await;
        s.trigger().await;
        s.until(|k| matches!(k, EventKind::Wait { .. })).await;
        s.clock.advance(SignedDuration::from_millis(30_200));
        s.forward_until(
            |h| matches!(h, Heard::Schedule(n) if n.status == OperationStatus::Complete),
        )
        .await;
        let events = s.outcomes(1).await;
        assert_eq!(outcomes(&events), [Outcome::Published { version: 4 }]);
        let done = events.last().map(|e| e.at);
        let completed = start() + SignedDuration::from_secs(30);
        assert!(done.is_some_and(|at| at.duration_since(completed) < SignedDuration::from_secs(1)));
        let _ = s.double;
    })
    .await;
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Heard {
            status: OperationStatus::Complete,
            version: 4,
            ..
        }
    )));
    assert_eq!(reads(double), 1, "the first read only: no follow read");
    assert_eq!(double.conflicts(), 0);
}

#[tokio::test]
async fn an_error_is_known_at_its_event_and_the_policy_publishes_again() {
    let (double, clock) = notifying(false, 3).await;
    let (double, clock) = (&double, &clock);
    assert!(
        double
            .fail_next_operation(&schedule(), OperationStatus::Error)
            .is_ok()
    );
    let events = staged(double, clock, |mut s| async move {
        s.forward_until(is_up).await;
        s.trigger().await;
        s.until(|k| matches!(k, EventKind::Wait { .. })).await;
        s.clock.advance(SignedDuration::from_millis(30_200));
        s.forward_until(|h| matches!(h, Heard::Schedule(n) if n.status == OperationStatus::Error))
            .await;
        s.until_count(2, |k| matches!(k, EventKind::PublishCall { .. }))
            .await;
        let heard_at = s.clock_now();
        // The second publish goes out at the instant the Error was heard.
        let events = s.events.borrow().clone();
        let publishes: Vec<Timestamp> = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::PublishCall { .. }))
            .map(|e| e.at)
            .collect();
        assert_eq!(publishes.len(), 2, "{events:#?}");
        assert_eq!(publishes.last(), Some(&heard_at));
        s.clock.advance(SignedDuration::from_millis(30_200));
        s.forward_until(
            |h| matches!(h, Heard::Schedule(n) if n.status == OperationStatus::Complete),
        )
        .await;
        s.outcomes(1).await;
    })
    .await;
    assert_eq!(outcomes(&events), [Outcome::Published { version: 4 }]);
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Heard {
            status: OperationStatus::Error,
            version: 3,
            ..
        }
    )));
    assert_eq!(double.calls(CallKind::Update), 2);
    assert_eq!(
        reads(double),
        1,
        "the Error's event, not a read, went back to the policy"
    );
}

#[tokio::test]
async fn a_planner_s_edit_is_heard_and_published_on_the_next_trigger_without_a_read() {
    let (double, clock) = notifying(true, 3).await;
    let (double, clock) = (&double, &clock);
    let events = staged(double, clock, |mut s| async move {
        s.forward_until(is_up).await;
        s.trigger().await;
        s.outcomes(1).await;
        assert!(s.double.person_edit(&schedule()).is_ok());
        s.clock.advance(SignedDuration::from_millis(200));
        s.forward_until(|h| matches!(h, Heard::Schedule(_))).await;
        s.trigger().await;
        s.until(|k| matches!(k, EventKind::Wait { .. })).await;
        s.clock.advance(SignedDuration::from_millis(30_200));
        s.forward_until(
            |h| matches!(h, Heard::Schedule(n) if n.status == OperationStatus::Complete),
        )
        .await;
        s.outcomes(2).await;
    })
    .await;
    let reason = "already published".to_owned();
    assert_eq!(
        outcomes(&events),
        [
            Outcome::Skipped { reason },
            Outcome::Published { version: 5 }
        ]
    );
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::StateKnown {
            version: 4,
            published: false,
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::PublishCall {
            version: 4,
            status: Some(200),
            ..
        }
    )));
    assert_eq!(
        reads(double),
        1,
        "the second trigger decided from the heard edit"
    );
    // The decision's events say it was made from the channel's state, not a read.
    let second: Vec<String> = events
        .iter()
        .filter(|e| e.cycle == Some(2))
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!(second.join("\n"));
    assert_eq!(double.conflicts(), 0);
}

#[tokio::test]
async fn after_a_dropped_channel_the_cached_state_is_stale_and_read_again() {
    let (double, clock) = notifying(true, 3).await;
    let (double, clock) = (&double, &clock);
    let events = staged(double, clock, |mut s| async move {
        s.forward_until(is_up).await;
        s.trigger().await;
        s.outcomes(1).await;
        // The channel drops; the planner's edit meanwhile is never heard.
        s.double
            .drop_notifications(SignedDuration::from_secs(30), Outage::Closed);
        s.forward_until(|h| matches!(h, Heard::Gap { .. })).await;
        assert!(s.double.person_edit(&schedule()).is_ok());
        s.clock.advance(SignedDuration::from_secs(31));
        s.forward_until(is_up).await;
        // A cache that outlived the gap would say "published at v3" and skip.
        s.trigger().await;
        let decided = s
            .events
            .wait_for(|events| {
                outcomes(events).len() >= 2
                    || events
                        .iter()
                        .any(|e| matches!(e.kind, EventKind::Wait { .. }))
            })
            .await
            .map(|events| outcomes(&events).len());
        assert_eq!(decided.ok(), Some(1), "decided from a stale cache");
        s.clock.advance(SignedDuration::from_millis(30_200));
        s.forward_until(
            |h| matches!(h, Heard::Schedule(n) if n.status == OperationStatus::Complete),
        )
        .await;
        s.outcomes(2).await;
    })
    .await;
    let reason = "already published".to_owned();
    assert_eq!(
        outcomes(&events),
        [
            Outcome::Skipped { reason },
            Outcome::Published { version: 5 }
        ]
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, EventKind::StateKnown { .. }))
    );
    assert_eq!(
        reads(double),
        2,
        "the second trigger read again after the gap"
    );
    let second_up = Continuity { up: true, epoch: 2 };
    let _ = second_up;
}
