//! The API test double: a real HTTP server on loopback wrapping [`Model`] in Genesys'
//! routes (and a plain REST gateway's), with switchable faults and a log of every call.
//!
//! Time comes from the [`Clock`] in [`DoubleConfig`]: share one
//! [`ManualClock`](crate::effects::clock::ManualClock) between the test, the double and the code
//! under test, and a publish that "takes 30 s" completes when the test moves the clock.

mod conn;
mod fault;
mod notify;
mod routes;

pub use fault::{Fault, FaultEffect};
pub use notify::{CHANNEL_LIFETIME, CLOSING_NOTICE, HEARTBEAT_EVERY, Outage};

use crate::api::OperationStatus;
use crate::api::model::{Model, ModelConfig, NotifyConfig, Operation, Refusal, ScheduleView};
use crate::api::week::WeekSettings;
use crate::api::{ScheduleRef, ScheduleSnapshot};
use crate::effects::clock::{Clock, SystemClock};
use conn::{CuttableListener, Cutter};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How to start the double.
#[derive(Clone)]
pub struct DoubleConfig {
    /// How the modelled service behaves (processing time, requests per minute).
    pub model: ModelConfig,
    /// The OAuth client id the token endpoint accepts.
    pub client_id: String,
    /// The secret it accepts (a test value, never a real one).
    pub client_secret: String,
    /// The lifetime of the tokens it grants (`expires_in`).
    pub token_lifetime: SignedDuration,
    /// Where the double reads the time.
    pub clock: Arc<dyn Clock>,
}

impl Default for DoubleConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            client_id: "publish-guard".into(),
            client_secret: "double-secret".into(),
            token_lifetime: SignedDuration::from_secs(86_399),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The kinds of call the double serves, for counting and fault targeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `POST /oauth/token`.
    Token,
    /// `GET .../schedules/{id}`.
    GetSchedule,
    /// `GET .../weeks/{week}/schedules`.
    ListWeek,
    /// `GET .../businessunits/{bu}`.
    BusinessUnit,
    /// `POST .../update/uploadurl`.
    UploadUrl,
    /// `PUT` to an upload URL.
    Upload,
    /// `POST .../update`.
    Update,
    /// `GET /gateway/schedules/{id}/status`.
    GatewayStatus,
    /// `POST /gateway/schedules/{id}/publish`.
    GatewayPublish,
    /// `GET /gateway/businessunits/{bu}/weeks/{week}/schedules`.
    GatewayList,
    /// `POST /api/v2/notifications/channels`.
    CreateChannel,
    /// `PUT /api/v2/notifications/channels/{id}/subscriptions`.
    Subscribe,
    /// The notification WebSocket's upgrade request (not an API call).
    NotificationSocket,
}

/// One call the double received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// What was called.
    pub kind: CallKind,
    /// When (on the double's clock).
    pub at: Timestamp,
    /// The `Idempotency-Key` header, when sent.
    pub idempotency_key: Option<String>,
    /// The status answered; `None` while running, or when the connection was dropped.
    pub status: Option<u16>,
}

/// A field the SDK marks optional, which the double can leave out of its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionalField {
    /// `operationId` of the update's answer.
    OperationId,
    /// `result` of the update's answer.
    Result,
    /// `published` of a schedule (read and list).
    Published,
    /// `entities` of the week's list.
    Entities,
}

impl OptionalField {
    /// The field's name in the body it is left out of (`entities` drops the whole list).
    fn top_level_name(self) -> Option<&'static str> {
        match self {
            OptionalField::OperationId => Some("operationId"),
            OptionalField::Result => Some("result"),
            OptionalField::Published => Some("published"),
            OptionalField::Entities => None,
        }
    }
}

/// A token the double granted.
#[derive(Clone, Debug)]
struct Grant {
    client_id: String,
    expires_at: Timestamp,
}

/// Everything the routes and the test's handles share.
struct State {
    model: Model,
    grants: HashMap<String, Grant>,
    faults: Vec<Fault>,
    calls: Vec<Call>,
    issued_tokens: u64,
    channels: notify::Channels,
    left_out: Vec<OptionalField>,
}

/// The double's shared core.
struct Shared {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    client_id: String,
    client_secret: String,
    token_lifetime: SignedDuration,
    base_url: String,
    /// Woken when a call or a test changed the model, so the sockets look for new events.
    changed: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running double. Stops on [`ApiDouble::shutdown`] or when dropped.
pub struct ApiDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl ApiDouble {
    /// Starts the double on an ephemeral port of 127.0.0.1.
    pub async fn start(config: DoubleConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                model: Model::new(config.model),
                grants: HashMap::new(),
                faults: Vec::new(),
                calls: Vec::new(),
                issued_tokens: 0,
                channels: notify::Channels::default(),
                left_out: Vec::new(),
            }),
            clock: config.clock,
            client_id: config.client_id,
            client_secret: config.client_secret,
            token_lifetime: config.token_lifetime,
            base_url: format!("http://{addr}"),
            changed: tokio::sync::Notify::new(),
        });
        let app = routes::router(Arc::clone(&shared))
            .merge(notify::router(Arc::clone(&shared)))
            .into_make_service_with_connect_info::<Cutter>();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serving =
                axum::serve(CuttableListener(listener), app).with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
            if let Err(e) = serving.await {
                tracing::warn!("the API double stopped: {e}");
            }
        });
        Ok(Self {
            shared,
            addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: the login and the API base URL alike.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OAuth client id it accepts.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// The secret it accepts.
    pub fn client_secret(&self) -> &str {
        &self.shared.client_secret
    }

    /// Creates (or replaces) a schedule.
    pub fn add_schedule(&self, schedule: &ScheduleRef, published: bool, version: i64) {
        let now = self.shared.clock.now();
        self.shared
            .lock()
            .model
            .insert(schedule.clone(), published, version, now, "planner");
    }

    /// Makes the schedule span `weeks` weeks (`weekCount`).
    pub fn set_week_count(&self, schedule: &ScheduleRef, weeks: u32) -> Result<(), Refusal> {
        self.shared.lock().model.set_week_count(schedule, weeks)
    }

    /// Gives a business unit its own start day and time zone.
    pub fn set_week_settings(&self, business_unit: &str, settings: WeekSettings) {
        self.shared
            .lock()
            .model
            .set_week_settings(business_unit, settings);
    }

    /// Leaves `field` out of every answer from now on, as the SDK allows.
    pub fn leave_out(&self, field: OptionalField) {
        self.shared.lock().left_out.push(field);
    }

    /// The schedule as it stands now, without counting a call.
    pub fn schedule(&self, schedule: &ScheduleRef) -> Option<ScheduleView> {
        let now = self.shared.clock.now();
        self.shared.lock().model.peek(schedule, now)
    }

    /// A person edits the schedule in the UI: a new draft at the next version.
    pub fn person_edit(&self, schedule: &ScheduleRef) -> Result<ScheduleSnapshot, Refusal> {
        self.change(|model, now| model.person_edit(schedule, now, "planner"))
    }

    /// A person publishes the schedule from the UI.
    pub fn person_publish(&self, schedule: &ScheduleRef) -> Result<Operation, Refusal> {
        self.change(|model, now| model.person_publish(schedule, now, "planner"))
    }

    /// Turns the model's schedule notifications on (or off) from now on.
    pub fn set_notifications(&self, config: Option<NotifyConfig>) {
        self.change(|model, _| model.set_notifications(config));
    }

    /// The next operation started on `schedule` ends `status` (`Error` or `Canceled`).
    pub fn fail_next_operation(
        &self,
        schedule: &ScheduleRef,
        status: OperationStatus,
    ) -> Result<(), Refusal> {
        self.change(|model, now| model.fail_next_operation(schedule, status, now))
    }

    /// Drops the notification channel for `lasting` from now: the events due meanwhile are
    /// lost, and the sockets are cut (new ones refused) or fall silent.
    pub fn drop_notifications(&self, lasting: SignedDuration, outage: Outage) {
        self.shared.lock().channels.outage = Some(outage);
        self.change(|model, now| {
            model.drop_notifications_until(now.saturating_add(lasting).unwrap_or(Timestamp::MAX));
        });
    }

    /// Channels made from now on live this long (default [`CHANNEL_LIFETIME`]).
    pub fn set_channel_lifetime(&self, lifetime: SignedDuration) {
        self.shared.lock().channels.lifetime = Some(lifetime);
    }

    /// Changes the model at the double's now, then wakes the sockets.
    fn change<T>(&self, change: impl FnOnce(&mut Model, Timestamp) -> T) -> T {
        let now = self.shared.clock.now();
        let changed = change(&mut self.shared.lock().model, now);
        self.shared.changed.notify_waiters();
        changed
    }

    /// Changes how the modelled service behaves from now on.
    pub fn set_model_config(&self, config: ModelConfig) {
        self.shared.lock().model.set_config(config);
    }

    /// Adds a fault; the first fault that fires on a call decides its effect.
    pub fn add_fault(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Expires every token granted so far: API calls with them answer 401.
    pub fn expire_tokens(&self) {
        let now = self.shared.clock.now();
        for grant in self.shared.lock().grants.values_mut() {
            grant.expires_at = grant.expires_at.min(now);
        }
    }

    /// How many calls of this kind arrived.
    pub fn calls(&self, kind: CallKind) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.kind == kind)
            .count()
    }

    /// How many calls answered `409 Conflict`.
    pub fn conflicts(&self) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.status == Some(409))
            .count()
    }

    /// Every call so far, in arrival order.
    pub fn call_log(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Stops accepting connections and lets the open ones finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for ApiDouble {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
