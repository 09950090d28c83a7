//! The notification client against the double, over HTTP and a real WebSocket, on the
//! manual clock: events heard, heartbeats tracked, renewal before expiry, reconnection
//! after a drop. Nothing sleeps: each step waits for what the client reports.

use crate::api_support::{double, genesys, schedule};
use jiff::SignedDuration;
use publish_guard::api::OperationStatus;
use publish_guard::api::double::{ApiDouble, CallKind, Outage};
use publish_guard::api::genesys::GenesysClient;
use publish_guard::api::model::NotifyConfig;
use publish_guard::api::notify::Heard;
use publish_guard::api::notify::client::NotificationClient;
use publish_guard::api::notify::health::{Continuity, Gap, HealthConfig, HealthReport};
use publish_guard::effects::clock::ManualClock;
use publish_guard::effects::random::SeededRandom;
use std::future::Future;
use tokio::sync::{mpsc, watch};

/// What a test sees of a running client.
struct Listening {
    heard: mpsc::Receiver<Heard>,
    health: watch::Receiver<HealthReport>,
}

impl Listening {
    async fn next(&mut self) -> Heard {
        match self.heard.recv().await {
            Some(heard) => heard,
            None => panic!("the client stopped"),
        }
    }

    /// Waits until the client has heard `n` messages in all.
    async fn messages(&mut self, n: u64) {
        let heard = self.health.wait_for(|r| r.messages >= n).await;
        assert!(heard.is_ok(), "the client stopped");
    }
}

/// Runs a notification client for bu-1 beside `test`, until `test` ends.
async fn with_client<F, Fut>(double: &ApiDouble, clock: &ManualClock, config: HealthConfig, test: F)
where
    F: FnOnce(Listening) -> Fut,
    Fut: Future<Output = ()>,
{
    let api: GenesysClient = genesys(double, clock);
    let client = NotificationClient::new(
        &api,
        clock,
        SeededRandom::new(7),
        &["bu-1".to_owned()],
        config,
    );
    let health = client.health();
    let (tx, rx) = mpsc::channel(64);
    let listening = Listening { heard: rx, health };
    tokio::join!(client.run(tx), test(listening));
}

async fn notifying_double() -> (ApiDouble, ManualClock) {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), true, 3);
    double.set_notifications(Some(NotifyConfig {
        delay: SignedDuration::from_millis(200),
        loss_per_mille: 0,
    }));
    (double, clock)
}

fn up(epoch: u64) -> Heard {
    Heard::Up(Continuity { up: true, epoch })
}

#[tokio::test]
async fn a_planner_s_edit_and_an_operation_s_end_are_heard() {
    let (double, clock) = notifying_double().await;
    let (double, clock) = (&double, &clock);
    with_client(double, clock, HealthConfig::default(), |mut l| async move {
        assert_eq!(l.next().await, up(1));
        assert!(double.person_edit(&schedule()).is_ok());
        clock.advance(SignedDuration::from_millis(200));
        let Heard::Schedule(edit) = l.next().await else {
            panic!("expected the edit");
        };
        assert_eq!(edit.schedule, schedule());
        assert_eq!((edit.snapshot.published, edit.snapshot.version), (false, 4));
        assert_eq!(edit.operation_id, None);
        assert!(
            double
                .fail_next_operation(&schedule(), OperationStatus::Error)
                .is_ok()
        );
        let op = double.person_publish(&schedule()).map(|o| o.operation_id);
        clock.advance(SignedDuration::from_secs(31));
        let mut ends = Vec::new();
        for _ in 0..2 {
            if let Heard::Schedule(n) = l.next().await {
                ends.push((n.status, n.operation_id, n.snapshot.version));
            }
        }
        let op = op.ok();
        assert_eq!(
            ends,
            [
                (OperationStatus::Processing, op.clone(), 4),
                (OperationStatus::Error, op, 4)
            ]
        );
    })
    .await;
    assert_eq!(double.calls(CallKind::CreateChannel), 1);
    assert_eq!(double.calls(CallKind::Subscribe), 1);
}

#[tokio::test]
async fn heartbeats_keep_the_channel_and_a_missed_one_is_a_gap() {
    let (double, clock) = notifying_double().await;
    let (double, clock) = (&double, &clock);
    with_client(double, clock, HealthConfig::default(), |mut l| async move {
        assert_eq!(l.next().await, up(1));
        for beat in 1..=10 {
            clock.advance(SignedDuration::from_secs(30));
            l.messages(beat).await;
        }
        assert_eq!(
            l.health.borrow().epoch,
            1,
            "five minutes of heartbeats, no gap"
        );
        double.drop_notifications(SignedDuration::from_mins(5), Outage::Silent);
        clock.advance(SignedDuration::from_secs(75));
        assert_eq!(
            l.next().await,
            Heard::Gap {
                continuity: Continuity {
                    up: false,
                    epoch: 1
                },
                gap: Gap::MissedHeartbeat
            }
        );
        clock.advance(SignedDuration::from_secs(1));
        assert_eq!(l.next().await, up(2));
        assert_eq!(l.health.borrow().gaps, 1);
    })
    .await;
    assert_eq!(double.calls(CallKind::CreateChannel), 2);
}

#[tokio::test]
async fn the_channel_is_renewed_before_it_expires() {
    let (double, clock) = notifying_double().await;
    let (double, clock) = (&double, &clock);
    double.set_channel_lifetime(SignedDuration::from_mins(15));
    with_client(double, clock, HealthConfig::default(), |mut l| async move {
        assert_eq!(l.next().await, up(1));
        for beat in 1..=9 {
            clock.advance(SignedDuration::from_secs(30));
            l.messages(beat).await;
        }
        clock.advance(SignedDuration::from_secs(30));
        let renewed = l.next().await;
        assert!(
            matches!(
                &renewed,
                Heard::Gap {
                    gap: Gap::Renewal,
                    ..
                }
            ),
            "{renewed:?}"
        );
        assert_eq!(l.next().await, up(2), "at once, no backoff");
    })
    .await;
    assert_eq!(double.calls(CallKind::CreateChannel), 2);
}

#[tokio::test]
async fn the_closing_notice_renews_the_channel() {
    let (double, clock) = notifying_double().await;
    let (double, clock) = (&double, &clock);
    double.set_channel_lifetime(SignedDuration::from_secs(90));
    let config = HealthConfig {
        renew_before: SignedDuration::ZERO,
        ..HealthConfig::default()
    };
    with_client(double, clock, config, |mut l| async move {
        assert_eq!(l.next().await, up(1));
        clock.advance(SignedDuration::from_secs(30));
        let renewed = l.next().await;
        assert!(
            matches!(
                &renewed,
                Heard::Gap {
                    gap: Gap::Renewal,
                    ..
                }
            ),
            "{renewed:?}"
        );
        assert_eq!(l.next().await, up(2));
    })
    .await;
}

#[tokio::test]
async fn a_dropped_channel_reconnects_with_backoff_once_the_service_is_back() {
    let (double, clock) = notifying_double().await;
    let (double, clock) = (&double, &clock);
    with_client(double, clock, HealthConfig::default(), |mut l| async move {
        assert_eq!(l.next().await, up(1));
        double.drop_notifications(SignedDuration::from_secs(30), Outage::Closed);
        let dropped = l.next().await;
        assert!(
            matches!(
                &dropped,
                Heard::Gap {
                    gap: Gap::Dropped(_),
                    ..
                }
            ),
            "{dropped:?}"
        );
        assert!(
            double.person_edit(&schedule()).is_ok(),
            "an edit while down is lost"
        );
        clock.advance(SignedDuration::from_secs(31));
        assert_eq!(l.next().await, up(2));
        assert!(double.person_edit(&schedule()).is_ok());
        clock.advance(SignedDuration::from_millis(200));
        let Heard::Schedule(edit) = l.next().await else {
            panic!("expected the edit after the reconnect");
        };
        assert_eq!(
            edit.snapshot.version, 5,
            "the edit at v4 was lost, v5 heard"
        );
    })
    .await;
    assert!(double.calls(CallKind::NotificationSocket) >= 2);
}
