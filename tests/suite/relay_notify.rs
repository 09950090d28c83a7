//! The relay hearing Genesys, end to end: signed webhooks over loopback into the relay, the
//! relay's Genesys client and its notification channel (a real WebSocket) against the
//! double, all on one manual clock. A storm of 1,000 webhooks in four bursts, planners
//! editing between them: every change published, no 409, at most 10 reads (polling, the
//! same storm reads far more); a channel dropped mid-storm: `/readyz` says so, the edit made
//! meanwhile is never heard, and the next burst reads again and publishes it; a relay
//! restarted after a skip decided from the kept state that missed an edit (its event lost)
//! reads again and publishes the edit.
//!
//! Nothing sleeps to let time pass: the clock moves when the test moves it. The test waits
//! (bounded, in real time) for what the relay reports: the store settled, the double's
//! calls, `/readyz` and `/metrics`.

use crate::api_support::{double_at, genesys_config};
use crate::relay_support::{RelayFiles, start_relay};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, CallKind, Outage};
use publish_guard::api::model::NotifyConfig;
use publish_guard::api::notify::health::HealthConfig;
use publish_guard::audit::log::AuditOptions;
use publish_guard::effects::clock::{Clock, ManualClock};
use publish_guard::relay::hearing::NotifySettings;
use publish_guard::relay::intake::{Source, SourceAuth};
use publish_guard::relay::mapping::{Field, Mapping};
use publish_guard::relay::server::{Relay, RelaySettings};
use publish_guard::relay::store::{TriggerNote, TriggerStatus, TriggerStore};
use publish_guard::relay::webhook_auth::SignatureVerifier;
use publish_guard::runner::confirm::CONFIRM_QUIET;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BU: &str = "bu-1";
/// The storm: four bursts of this many webhooks.
const BURST: usize = 250;
/// How long the double's publish stays Processing.
const PROCESSING: SignedDuration = SignedDuration::from_secs(30);
/// How long after a change its event arrives.
const DELAY: SignedDuration = SignedDuration::from_millis(200);
/// Longer than the default policy's debounce.
const DEBOUNCE: SignedDuration = SignedDuration::from_mins(16);
/// The longest any condition below may take to come true (real time).
const PATIENCE: Duration = Duration::from_secs(60);

fn schedule() -> ScheduleRef {
    ScheduleRef {
        business_unit: BU.into(),
        week: Date::constant(2026, 3, 30),
        schedule_id: "s-1".into(),
    }
}

struct Rig {
    relay: Relay,
    double: ApiDouble,
    files: RelayFiles,
    clock: ManualClock,
    http: reqwest::Client,
    sent: usize,
    receipts: Vec<String>,
}

/// A relay (notifications on or off) before the double, a draft `s-1` at version 1.
async fn start(notifications: bool) -> Rig {
    let start = "2026-03-31T09:00:00Z".parse::<Timestamp>().unwrap();
    let (double, clock) = double_at(start, |c| {
        c.model.processing_time = PROCESSING;
        c.model.requests_per_minute = 100_000;
    })
    .await;
    double.add_schedule(&schedule(), false, 1);
    double.set_notifications(Some(NotifyConfig {
        delay: DELAY,
        loss_per_mille: 0,
    }));
    let files = RelayFiles::new(include_str!("../../rules/default.rules"));
    let relay = launch(&double, &files, &clock, notifications).await;
    let rig = Rig {
        relay,
        double,
        files,
        clock,
        http: reqwest::Client::new(),
        sent: 0,
        receipts: Vec::new(),
    };
    if notifications {
        rig.until_ready_says("notifications up").await;
    }
    rig
}

/// A relay on `files` (the same store and audit log on a restart), hearing the channel when
/// `notifications` says so.
async fn launch(
    double: &ApiDouble,
    files: &RelayFiles,
    clock: &ManualClock,
    notifications: bool,
) -> Relay {
    let source = Source {
        auth: SourceAuth::Signed(SignatureVerifier::new(vec![SECRET.parse().unwrap()])),
        mapping: Mapping {
            business_unit: Field::Fixed(BU.into()),
            week: Field::Pointer("/week".into()),
            schedule_id: Field::Pointer("/schedule_id".into()),
            event: Field::Pointer("/event".into()),
            delivery_id: None,
        },
    };
    let relay_clock = Arc::new(clock.clone());
    let settings = RelaySettings {
        notifications: notifications.then(|| NotifySettings {
            business_units: vec![BU.into()],
            max_age: SignedDuration::from_mins(30),
            // The clock jumps minutes at a time here; heartbeats are tested in notify_client.
            health: HealthConfig {
                heartbeat_timeout: SignedDuration::from_hours(1),
                ..HealthConfig::default()
            },
        }),
        ..files.settings("servicenow", source, relay_clock, AuditOptions::default())
    };
    let mut config = genesys_config(double);
    config.timeout = Duration::from_secs(5);
    config.requests_per_minute = 100_000;
    start_relay(settings, config, Arc::new(clock.clone())).await
}

impl Rig {
    /// The relay's process stops, then starts again on the same files (notifications on).
    async fn restart(self) -> Rig {
        let Rig {
            relay,
            double,
            files,
            clock,
            http,
            sent,
            receipts,
        } = self;
        relay.shutdown().await.unwrap();
        let relay = launch(&double, &files, &clock, true).await;
        Rig {
            relay,
            double,
            files,
            clock,
            http,
            sent,
            receipts,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.relay.addr())
    }

    /// Sends `n` signed webhooks about `s-1` at once; each must be accepted.
    async fn burst(&mut self, n: usize) {
        let first = self.sent;
        self.sent += n;
        let answers = futures_util::future::join_all(
            (first..first + n).map(|k| self.webhook(format!("msg-{k}"))),
        )
        .await;
        for (status, answer) in answers {
            assert_eq!(status, 202, "{answer}");
            self.receipts
                .push(answer["receipt"].as_str().unwrap_or_default().to_owned());
        }
    }

    /// One signed webhook; its status and JSON answer.
    async fn webhook(&self, id: String) -> (u16, Value) {
        let body = json!({"week": "2026-03-30", "schedule_id": "s-1", "event": "case.created"})
            .to_string();
        let url = self.url("/webhooks/servicenow");
        let at = self.clock.now().as_second();
        let answer = crate::common::signed_webhook(&self.http, &url, SECRET, &id, at, body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// Waits (bounded) until `ready` holds.
    async fn until(&self, what: &str, ready: impl AsyncFn() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !ready().await {
            assert!(Instant::now() < deadline, "waited in vain for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the double has taken `n` publishes.
    async fn until_publishes(&self, n: usize) {
        self.until(&format!("{n} publish(es)"), async || self.writes() >= n)
            .await;
    }

    /// Waits until the store holds nothing unfinished but the triggers of skips decided
    /// from the kept state, pending until the confirm read.
    async fn settled(&self) {
        self.until("the store to settle", async || {
            let unfinished = self.files.store.unfinished().await.unwrap();
            unfinished.iter().all(|t| {
                (t.status, &t.note) == (TriggerStatus::Pending, &Some(TriggerNote::Unconfirmed))
            })
        })
        .await;
    }

    /// `/readyz`'s text.
    async fn readiness(&self) -> String {
        let answer = self.http.get(self.url("/readyz")).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        answer.text().await.unwrap()
    }

    async fn until_ready_says(&self, words: &str) {
        self.until(&format!("/readyz to say {words:?}"), async || {
            self.readiness().await.contains(words)
        })
        .await;
    }

    async fn metrics(&self) -> String {
        let answer = self.http.get(self.url("/metrics")).send().await.unwrap();
        answer.text().await.unwrap()
    }

    /// Waits until the runner has taken `n` schedule events.
    async fn events_taken(&self) -> u64 {
        let metrics = self.metrics().await;
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix("publish_guard_notification_events_total "));
        value.and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// Waits until the runner has taken more than `before` schedule events.
    async fn until_events_taken_beyond(&self, before: u64) {
        self.until("an event taken in", async || {
            self.events_taken().await > before
        })
        .await;
    }

    /// One burst, its publish completed (30 s of processing, then the event).
    async fn storm_burst(&mut self, publishes: usize) {
        let waits = self.follow_waits();
        self.burst(BURST).await;
        self.until_publishes(publishes).await;
        // The clock moves only once the runner has armed its follow's wait: moved before,
        // the wait would be set past the processing's end and nothing would wake it.
        self.until("the follow's wait", async || self.follow_waits() > waits)
            .await;
        self.clock.advance(PROCESSING + DELAY);
        self.settled().await;
    }

    /// The follow waits the runner has armed, as the audit log has them.
    fn follow_waits(&self) -> usize {
        fn is_follow_wait(v: &Value) -> bool {
            match v {
                Value::Object(m) => {
                    (m.get("kind") == Some(&json!("wait"))
                        && m.get("reason") == Some(&json!("follow")))
                        || m.values().any(is_follow_wait)
                }
                _ => false,
            }
        }
        std::fs::read_to_string(&self.files.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(is_follow_wait)
            .count()
    }

    fn writes(&self) -> usize {
        self.double.calls(CallKind::Update)
    }

    fn reads(&self) -> usize {
        self.double.calls(CallKind::GetSchedule)
    }

    /// `s-1`'s published flag and version at the double.
    fn state(&self) -> (bool, i64) {
        let view = self.double.schedule(&schedule()).unwrap();
        (view.snapshot.published, view.snapshot.version)
    }

    /// Waits until the store holds nothing unfinished: the confirm reads made.
    async fn confirmed(&self) {
        self.until("the confirm reads", async || {
            let stats = self.files.store.stats().await.unwrap();
            stats.pending + stats.running == 0
        })
        .await;
    }

    /// Once the confirm reads are due and made, every trigger the store holds is done; the
    /// audit log has each arrival.
    async fn every_webhook_accounted(&self) {
        self.clock.advance(CONFIRM_QUIET);
        self.confirmed().await;
        let entries: Vec<Value> = std::fs::read_to_string(&self.files.audit_path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let arrivals = entries
            .iter()
            .filter_map(|e| e["step"].as_str())
            .filter(|step| step.ends_with("/received"))
            .count();
        assert_eq!(arrivals, self.sent, "each webhook's arrival is audited");
        assert_eq!(self.receipts.len(), self.sent);
        for receipt in &self.receipts {
            let stored = self.files.store.get(receipt).await.unwrap();
            let status = stored.map(|t| t.status);
            assert_eq!(status, Some(TriggerStatus::Done), "{receipt}");
        }
    }
}

/// The storm: four bursts, a planner's edit between each (with notifications, heard
/// before the next burst comes).
async fn storm(rig: &mut Rig, heard: bool) {
    rig.storm_burst(1).await;
    for burst in 2..=4 {
        let published = (true, 2 * i64::try_from(burst).unwrap() - 2);
        assert_eq!(rig.state(), published, "burst {} published", burst - 1);
        // Past the policy's debounce (one publish per 15 minutes).
        rig.clock.advance(DEBOUNCE);
        let before = rig.events_taken().await;
        assert!(rig.double.person_edit(&schedule()).is_ok());
        rig.clock.advance(DELAY);
        if heard {
            rig.until_events_taken_beyond(before).await;
        }
        rig.storm_burst(burst).await;
    }
    assert_eq!(rig.state(), (true, 8), "every change published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_1000_webhooks_heard_makes_at_most_10_reads_and_publishes_every_change() {
    let mut rig = start(true).await;
    storm(&mut rig, true).await;
    assert_eq!(rig.writes(), 4, "one publish per change");
    assert_eq!(rig.double.conflicts(), 0, "no 409");
    let reads = rig.reads();
    assert!(reads <= 10, "{reads} reads for {} webhooks", rig.sent);
    rig.every_webhook_accounted().await;
    let metrics = rig.metrics().await;
    assert!(
        metrics.contains("publish_guard_notifications_up 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("publish_guard_states_known_total{learnt=\"event\"}"),
        "triggers decided from what was heard: {metrics}"
    );
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_storm_polling_reads_after_every_burst_and_follow() {
    let mut rig = start(false).await;
    storm(&mut rig, false).await;
    assert_eq!((rig.writes(), rig.double.conflicts()), (4, 0));
    // A read for each burst and one for each follow (the coalesced cycle after a follow
    // decides from the follow read): 8, where hearing makes 1.
    assert!(rig.reads() >= 8, "{} reads polling", rig.reads());
    assert!(
        !rig.readiness().await.contains("notifications"),
        "no channel when off"
    );
    assert!(
        !rig.metrics()
            .await
            .contains("publish_guard_notifications_up")
    );
    rig.every_webhook_accounted().await;
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_dropped_mid_storm_reads_again_and_publishes_the_edit_it_missed() {
    let mut rig = start(true).await;
    rig.storm_burst(1).await;
    assert_eq!(rig.state(), (true, 2));
    // A planner's edit, heard: the runner knows s-1 as a draft at v3 without a read.
    rig.clock.advance(DEBOUNCE);
    let before = rig.events_taken().await;
    assert!(rig.double.person_edit(&schedule()).is_ok());
    rig.clock.advance(DELAY);
    rig.until_events_taken_beyond(before).await;
    let reads = rig.reads();
    rig.double
        .drop_notifications(SignedDuration::from_secs(30), Outage::Closed);
    rig.until_ready_says("notifications down").await;
    // Never heard: a cache that outlived the gap would publish at v3 and meet a 409.
    assert!(rig.double.person_edit(&schedule()).is_ok());
    rig.clock.advance(SignedDuration::from_secs(31));
    rig.until_ready_says("epoch 2").await;
    rig.storm_burst(2).await;
    assert_eq!(
        rig.double.conflicts(),
        0,
        "nothing decided from the stale state"
    );
    assert_eq!(
        rig.state(),
        (true, 5),
        "the edit missed in the gap is published"
    );
    assert_eq!(rig.reads(), reads + 1, "read again at once after the gap");
    assert_eq!(rig.writes(), 2);
    let metrics = rig.metrics().await;
    assert!(
        metrics.contains("publish_guard_notification_gaps_total 1\n"),
        "{metrics}"
    );
    rig.every_webhook_accounted().await;
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_skip_from_the_kept_state_reads_again_and_publishes_the_lost_edit() {
    let mut rig = start(true).await;
    rig.storm_burst(1).await;
    assert_eq!(rig.state(), (true, 2));
    // Burst 1's skips from the kept state are confirmed by a read (published v2)...
    let before = rig.reads();
    rig.clock.advance(DEBOUNCE);
    rig.until("the confirm read", async || rig.reads() > before)
        .await;
    rig.confirmed().await;
    // ... then a planner's edit whose event is lost (every event from here on is).
    rig.double.set_notifications(Some(NotifyConfig {
        delay: DELAY,
        loss_per_mille: 1000,
    }));
    assert!(rig.double.person_edit(&schedule()).is_ok());
    rig.clock.advance(DELAY);
    let reads = rig.reads();
    // A webhook skips "already published" from the kept state at v2, without a read.
    rig.burst(1).await;
    let receipt = rig.receipts.last().cloned().unwrap_or_default();
    let store = Arc::clone(&rig.files.store);
    rig.until("the skip noted unconfirmed", async || {
        let stored = store.get(&receipt).await.unwrap();
        stored.is_some_and(|t| {
            (t.status, t.note) == (TriggerStatus::Pending, Some(TriggerNote::Unconfirmed))
        })
    })
    .await;
    assert_eq!(rig.reads(), reads, "decided without a read");
    // The process restarts before the confirm read (10 minutes of quiet) was made.
    let rig = rig.restart().await;
    // Fed again at once; the new cache is empty, so it reads the draft and publishes it.
    rig.until_publishes(2).await;
    assert_eq!(rig.reads(), reads + 1, "one read after the restart");
    rig.until("the follow's wait", async || rig.follow_waits() >= 2)
        .await;
    // Its Complete event is lost too: the follow reads after its wait.
    rig.clock.advance(SignedDuration::from_mins(2));
    rig.settled().await;
    assert_eq!(rig.state(), (true, 4), "the lost edit is published");
    assert_eq!(rig.double.conflicts(), 0);
    rig.every_webhook_accounted().await;
    rig.relay.shutdown().await.unwrap();
}
