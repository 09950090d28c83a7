//! The relay hearing Genesys (`[genesys] notifications = true`): one notification channel
//! for the life of the process, subscribed to the schedule topic of every business unit the
//! relay serves, whose reports go to whichever worker runs. A worker started again (after a
//! failed write, or a new leadership term) gets a fresh runner: it is told the channel is up
//! and learns every state afresh, by a read, so nothing cached outlives the runner that
//! learnt it. The channel's health is shown in `/readyz` and the metrics; while it is down
//! the runner polls, as with notifications off.

use crate::api::ScheduleApi;
use crate::api::notify::cache::StateCache;
use crate::api::notify::client::NotificationClient;
use crate::api::notify::health::{ChannelHealth, Continuity, Gap, HealthConfig, HealthReport};
use crate::api::notify::{Heard, Notifications};
use crate::effects::clock::Clock;
use crate::effects::random::{RandomSource, SeededRandom};
use crate::runner::driver::Driver;
use jiff::SignedDuration;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::{mpsc, watch};

/// How many reports may wait for the worker (the client waits beyond that).
const HEARD_QUEUE: usize = 256;

/// What the relay's channel listens to and how long what it hears is trusted.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifySettings {
    /// The business units whose schedule topics are subscribed.
    pub business_units: Vec<String>,
    /// How long a state read or heard may decide a trigger without a read.
    pub max_age: SignedDuration,
    /// How the channel is judged and kept.
    pub health: HealthConfig,
}

/// The channel's reports, taken by one worker run at a time, and its health.
pub struct Hearing {
    settings: NotifySettings,
    heard: tokio::sync::Mutex<mpsc::Receiver<Heard>>,
    /// The continuity last handed to a worker, so the next one starts knowing it.
    last: Mutex<Option<Continuity>>,
    health: watch::Receiver<HealthReport>,
    /// Schedule events the runner has taken.
    events: AtomicU64,
}

/// The client's ends of the [`Hearing`]: where it reports what it hears and its health.
pub struct Listening {
    settings: NotifySettings,
    heard: mpsc::Sender<Heard>,
    health: watch::Sender<HealthReport>,
}

impl Hearing {
    /// A hearing for `settings`, and the ends its client reports to; the channel is down
    /// until the client says otherwise.
    pub fn new(settings: NotifySettings, clock: &dyn Clock) -> (Hearing, Listening) {
        let (heard_tx, heard_rx) = mpsc::channel(HEARD_QUEUE);
        let report = ChannelHealth::new(settings.health, clock.now()).report();
        let (health_tx, health_rx) = watch::channel(report);
        let hearing = Hearing {
            settings: settings.clone(),
            heard: tokio::sync::Mutex::new(heard_rx),
            last: Mutex::new(None),
            health: health_rx,
            events: AtomicU64::new(0),
        };
        let listening = Listening {
            settings,
            heard: heard_tx,
            health: health_tx,
        };
        (hearing, listening)
    }

    /// `driver`, hearing the channel, and the future that hands it the reports (run it
    /// beside the driver; it waits while another worker still holds the reports).
    pub fn attach<'h, 'a, A: ScheduleApi, R: RandomSource, K: ?Sized>(
        &'h self,
        driver: Driver<'a, A, R, K>,
    ) -> (Driver<'a, A, R, K>, impl Future<Output = ()> + 'h) {
        let (tx, rx) = mpsc::channel(1);
        let cache = StateCache::new(self.settings.max_age).only(&self.settings.business_units);
        (driver.hearing_with(rx, cache), self.forward(tx))
    }

    /// Hands the reports to `to` until its driver stops: first that the channel is up, when
    /// it is, then each report as it comes.
    async fn forward(&self, to: mpsc::Sender<Heard>) {
        let mut heard = self.heard.lock().await;
        if let Some(up) = self.last_continuity().filter(|c| c.up)
            && to.send(Heard::Up(up)).await.is_err()
        {
            return;
        }
        loop {
            let said = tokio::select! {
                said = heard.recv() => said,
                () = to.closed() => return,
            };
            let Some(said) = said else {
                // The client stopped: nothing more is heard, so nothing cached holds.
                let continuity = Continuity {
                    up: false,
                    epoch: self.last_continuity().map_or(0, |c| c.epoch),
                };
                let gap = Gap::Dropped("the notification client stopped".into());
                let _ = to.send(Heard::Gap { continuity, gap }).await;
                return;
            };
            if let Heard::Up(continuity) | Heard::Gap { continuity, .. } = &said {
                *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(*continuity);
            }
            let event = matches!(said, Heard::Schedule(_));
            // Sent, then taken: the runner has applied it once there is room again.
            if to.send(said).await.is_err() || to.reserve().await.is_err() {
                // The driver stopped between the two: the next one is told of the
                // continuity, and a lost schedule event only means a read.
                return;
            }
            if event {
                self.events.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The continuity last handed to a worker.
    fn last_continuity(&self) -> Option<Continuity> {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The channel's health now.
    pub fn report(&self) -> HealthReport {
        self.health.borrow().clone()
    }

    /// What `/readyz` adds: whether the channel is heard, or the runner polls and why.
    pub fn describe(&self) -> String {
        let report = self.report();
        let units = self.settings.business_units.len();
        if report.up {
            return format!(
                ", notifications up ({units} business unit(s), epoch {}, {} gap(s))",
                report.epoch, report.gaps
            );
        }
        match &report.last_gap {
            Some(why) => format!(", notifications down ({why}): polling"),
            None => ", notifications connecting: polling".to_owned(),
        }
    }

    /// The channel's gauges and counters in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let report = self.report();
        format!(
            "# HELP publish_guard_notifications_up Whether the notification channel is heard (1) or the runner polls (0).\n\
             # TYPE publish_guard_notifications_up gauge\npublish_guard_notifications_up {}\n\
             # HELP publish_guard_notification_gaps_total Times the channel's continuity broke (every cached state then stale).\n\
             # TYPE publish_guard_notification_gaps_total counter\npublish_guard_notification_gaps_total {}\n\
             # HELP publish_guard_notification_messages_total Messages heard on the channel (heartbeats and events).\n\
             # TYPE publish_guard_notification_messages_total counter\npublish_guard_notification_messages_total {}\n\
             # HELP publish_guard_notification_events_total Schedule events the runner has taken in.\n\
             # TYPE publish_guard_notification_events_total counter\npublish_guard_notification_events_total {}\n",
            u8::from(report.up),
            report.gaps,
            report.messages,
            self.events.load(Ordering::Relaxed)
        )
    }
}

/// Keeps the channel for `api` until the relay stops (drop the future).
pub async fn listen<N: Notifications>(api: &N, clock: &dyn Clock, listening: Listening) {
    let Listening {
        settings,
        heard,
        health,
    } = listening;
    tracing::info!(
        business_units = ?settings.business_units,
        max_age = %format!("{:#}", settings.max_age),
        "notifications on: hearing the schedule topics"
    );
    let client = NotificationClient::new(
        api,
        clock,
        SeededRandom::from_entropy(),
        &settings.business_units,
        settings.health,
    )
    .reporting_to(health);
    client.run(heard).await;
}
