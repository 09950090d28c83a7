//! The relay service: the intake routes, the worker feeding the runner, health, readiness,
//! metrics and rules reload, started on a listener and stopped gracefully (intake first,
//! then the worker once the calls in flight are answered and recorded).
//!
//! A write that fails under the worker (a full disk under the audit log, a store that
//! refuses commits) stops it as a crash would; it is started again after a wait that grows
//! from 1 s to 1 min on the relay's clock, and carries on what is unfinished exactly as a
//! restart does, so nothing accepted is lost. Meanwhile `/readyz` says why it is not ready
//! and intake answers `503`.

use super::connections::{ConnectionLimits, serve_connections};
use super::durability::{Durability, WatchedStore, restart_backoff};
use super::hearing::{Hearing, Listening, NotifySettings, listen};
use super::intake::{Intake, Source};
use super::leader::Leadership;
use super::metrics::{Gauges, Metrics};
use super::problem::Problem;
use super::readiness::Readiness;
use super::rules::{RELOAD_TIMEOUT, Rules, RulesError};
use super::store::TriggerStore;
use super::webhook_auth::BearerVerifier;
use super::worker::{WorkerError, WorkerParts, run_worker};
use crate::api::ScheduleApi;
use crate::api::notify::Notifications;
use crate::audit::writer::AuditWriter;
use crate::effects::clock::Clock;
use crate::runner::RunnerConfig;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::future::LocalBoxFuture;
use jiff::SignedDuration;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, watch};

/// How often the store is tried again while its writes fail (the delivery pruner's write).
const STORE_PROBE: SignedDuration = SignedDuration::from_secs(30);
/// What a `503` while nothing can be made durable asks the sender to wait, in seconds.
const RETRY_AFTER_SECONDS: &str = "30";

/// Everything the relay needs besides the API client.
pub struct RelaySettings {
    /// Webhook sources by name.
    pub sources: HashMap<String, Source>,
    /// The durable store.
    pub store: Arc<dyn TriggerStore>,
    /// How this process comes to run the worker, and its audit log.
    pub leadership: Leadership,
    /// The policy in force and its file.
    pub rules: Arc<Rules>,
    /// The bearer token of the admin routes; `None` turns them off.
    pub admin_token: Option<String>,
    /// The runner's bounds (the delivery retention among them).
    pub runner: RunnerConfig,
    /// The largest webhook body accepted.
    pub body_limit: usize,
    /// Timeouts and the cap on open connections.
    pub connections: ConnectionLimits,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Hear Genesys' notification channel (see [`Relay::start_hearing`]); `None` polls.
    pub notifications: Option<NotifySettings>,
}

/// Keeps the notification channel for the API client, on the worker's thread.
type Listen<A> = for<'a> fn(&'a A, &'a dyn Clock, Listening) -> LocalBoxFuture<'a, ()>;

/// What the HTTP handlers share.
struct AppState {
    store: Arc<dyn TriggerStore>,
    rules: Arc<Rules>,
    metrics: Arc<Metrics>,
    durability: Arc<Durability>,
    readiness: Arc<Readiness>,
    admin: Option<BearerVerifier>,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
    leadership: Leadership,
    /// Held while a rules file is being checked: one reload at a time.
    reloading: Arc<Mutex<()>>,
    /// The notification channel, when notifications are on.
    hearing: Option<Arc<Hearing>>,
}

/// A running relay.
pub struct Relay {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: std::thread::JoinHandle<Result<(), WorkerError>>,
    state: Arc<AppState>,
}

/// Why the relay stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Listening or serving failed.
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
    /// The worker stopped on an error.
    #[error("worker: {0}")]
    Worker(#[from] WorkerError),
    /// A task panicked.
    #[error("a relay task panicked")]
    Panicked,
    /// Notifications were asked of an API client that has no notification channel.
    #[error("notifications are on, but this API has no notification channel")]
    NoChannel,
}

impl Relay {
    /// Start serving on `listener`; `make_api` builds the API client on the worker's own
    /// thread (the client's futures need not be `Send`).
    pub async fn start<A, F>(
        settings: RelaySettings,
        make_api: F,
        listener: TcpListener,
    ) -> Result<Relay, ServeError>
    where
        A: ScheduleApi + 'static,
        F: FnOnce() -> A + Send + 'static,
    {
        if settings.notifications.is_some() {
            return Err(ServeError::NoChannel);
        }
        Relay::launch(settings, make_api, listener, None).await
    }

    /// As [`Relay::start`], for an API with a notification channel: with
    /// `settings.notifications`, the channel is kept for the life of the relay and the
    /// runner decides from what it hears (polling while it is down).
    pub async fn start_hearing<A, F>(
        settings: RelaySettings,
        make_api: F,
        listener: TcpListener,
    ) -> Result<Relay, ServeError>
    where
        A: ScheduleApi + Notifications + 'static,
        F: FnOnce() -> A + Send + 'static,
    {
        let listen: Listen<A> = |api, clock, listening| Box::pin(listen(api, clock, listening));
        Relay::launch(settings, make_api, listener, Some(listen)).await
    }

    async fn launch<A, F>(
        settings: RelaySettings,
        make_api: F,
        listener: TcpListener,
        listen: Option<Listen<A>>,
    ) -> Result<Relay, ServeError>
    where
        A: ScheduleApi + 'static,
        F: FnOnce() -> A + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let (hearing, listening) = match (settings.notifications, listen) {
            (Some(notify), Some(listen)) => {
                let (hearing, listening) = Hearing::new(notify, &*settings.clock);
                (Some(Arc::new(hearing)), Some((listen, listening)))
            }
            _ => (None, None),
        };
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Metrics::default());
        let file_audit = match &settings.leadership {
            Leadership::Sole(audit) => Some(Arc::clone(audit)),
            #[cfg(feature = "postgres")]
            Leadership::Elected(_) => None,
        };
        let durability = Arc::new(Durability::new(file_audit, Arc::clone(&counters)));
        let store: Arc<dyn TriggerStore> = Arc::new(WatchedStore {
            inner: settings.store,
            durability: Arc::clone(&durability),
        });
        let state = Arc::new(AppState {
            store: Arc::clone(&store),
            rules: Arc::clone(&settings.rules),
            metrics: counters,
            durability,
            readiness: Arc::new(Readiness::default()),
            admin: settings.admin_token.map(|t| BearerVerifier::new(vec![t])),
            wake: Arc::new(Notify::new()),
            clock: Arc::clone(&settings.clock),
            reloading: Arc::new(Mutex::new(())),
            leadership: settings.leadership.clone(),
            hearing: hearing.clone(),
        });
        let shared = WorkerParts {
            store: Arc::clone(&store),
            rules: settings.rules,
            metrics: Arc::clone(&state.metrics),
            readiness: Arc::clone(&state.readiness),
            clock: Arc::clone(&settings.clock),
            config: settings.runner.clone(),
            wake: Arc::clone(&state.wake),
            stop: stop_rx.clone(),
            hearing,
        };
        let leadership = settings.leadership;
        let channel_clock = Arc::clone(&settings.clock);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let supervised = Arc::clone(&state);
        let worker = std::thread::Builder::new()
            .name("relay-worker".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let api = make_api();
                    let work = async {
                        match leadership {
                            Leadership::Sole(audit) => {
                                supervise(&api, &shared, &audit, &supervised).await
                            }
                            // A replica's worker stops when its lead ends; the election
                            // starts the next term.
                            #[cfg(feature = "postgres")]
                            Leadership::Elected(election) => election.serve(&api, shared).await,
                        }
                    };
                    let Some((listen, listening)) = listening else {
                        return work.await;
                    };
                    // The channel is kept while the relay runs, across worker restarts.
                    tokio::pin!(work);
                    tokio::select! {
                        worked = &mut work => worked,
                        () = listen(&api, &*channel_clock, listening) => work.await,
                    }
                })
            })?;
        tokio::spawn(forget_old_deliveries(
            Arc::clone(&state),
            settings.runner.delivery_retention,
            stop_rx.clone(),
        ));
        let intake = Arc::new(Intake {
            sources: settings.sources,
            store,
            clock: settings.clock,
            body_limit: settings.body_limit,
        });
        let webhooks = intake.router().layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            observe_webhook,
        ));
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/admin/reload", post(admin_reload))
            .with_state(Arc::clone(&state))
            .merge(webhooks);
        let server = tokio::spawn(serve_connections(
            listener,
            app,
            settings.connections,
            Arc::clone(&state.metrics),
            stop_rx,
        ));
        tracing::info!(%addr, "relay listening");
        Ok(Relay {
            addr,
            stop,
            server,
            worker,
            state,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// Check the rules file again and put it in force if it checks (SIGHUP does this); the
    /// check runs off the async runtime, one at a time, within [`RELOAD_TIMEOUT`].
    pub fn reload(&self) -> impl Future<Output = Result<String, RulesError>> + Send + 'static {
        let state = Arc::clone(&self.state);
        async move { reload(&state).await }
    }

    /// Stop intake, let the worker record the answers of the calls in flight, and return.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        self.server.await.map_err(|_| ServeError::Panicked)??;
        let worker = self.worker;
        tokio::task::spawn_blocking(move || worker.join())
            .await
            .map_err(|_| ServeError::Panicked)?
            .map_err(|_| ServeError::Panicked)??;
        tracing::info!("relay stopped");
        Ok(())
    }
}

/// Run the worker; when a write fails under it, count and log that, say so in `/readyz`,
/// wait (longer each time while the failures go on), and start it again: it carries on
/// whatever is unfinished in the store, as after a restart.
async fn supervise<A: ScheduleApi>(
    api: &A,
    parts: &WorkerParts,
    audit: &Arc<AuditWriter>,
    state: &AppState,
) -> Result<(), WorkerError> {
    let mut wait = restart_backoff();
    let mut retry = 0;
    let mut stop = parts.stop.clone();
    loop {
        let batches = audit.syncs();
        let failed = match run_worker(api, parts.clone(), Arc::clone(audit)).await {
            Ok(()) => return Ok(()),
            Err(failed) => failed,
        };
        if *stop.borrow() {
            return Err(failed);
        }
        // A store failure was counted as the store answered; an audit one is counted here.
        if let WorkerError::Audit(e) = &failed {
            state.durability.audit_failed(e);
        }
        // Writes worked again since the last start: the waits start over.
        if audit.syncs() > batches {
            retry = 0;
        }
        let now = state.clock.now();
        let at = now.checked_add(wait(retry)).unwrap_or(now);
        retry = retry.saturating_add(1);
        state.durability.worker_down(&failed, at);
        tokio::select! {
            () = state.clock.sleep_until(at) => {}
            _ = stop.wait_for(|s| *s) => return Err(failed),
        }
        state.durability.worker_up();
    }
}

async fn reload(state: &AppState) -> Result<String, RulesError> {
    let result = check_and_install(state).await;
    let outcome = if result.is_ok() { "ok" } else { "rejected" };
    state
        .metrics
        .inc("publish_guard_reloads_total", &[("result", outcome)]);
    match &result {
        Ok(version) => tracing::info!(version, "rules reloaded"),
        Err(e) => tracing::warn!(error = %e, "rules reload rejected; the running policy stays"),
    }
    result
}

/// Check the rules file on a blocking thread, so a slow check holds up no request, and put
/// it in force if it checks in time. A check given up on finishes on its own; until then no
/// other reload starts.
async fn check_and_install(state: &AppState) -> Result<String, RulesError> {
    let turn = Arc::clone(&state.reloading)
        .try_lock_owned()
        .map_err(|_| RulesError::Busy)?;
    let rules = Arc::clone(&state.rules);
    let checking = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        rules.check_file()
    });
    let policy = tokio::select! {
        checked = checking => checked.map_err(|_| RulesError::Panicked)??,
        () = state.clock.sleep(RELOAD_TIMEOUT) => return Err(RulesError::TimedOut),
    };
    Ok(state.rules.install(policy))
}

/// Count each webhook answer by source and status; wake the worker on an acceptance.
async fn observe_webhook(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let source = request
        .uri()
        .path()
        .strip_prefix("/webhooks/")
        .unwrap_or_default()
        .to_owned();
    let response = match state.durability.audit_failing() {
        // Nothing accepted now could be processed and recorded: the sender keeps it.
        Some(why) => {
            let mut refused = Problem::not_durable(why)
                .at(request.uri().path())
                .into_response();
            refused.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            refused
        }
        None => next.run(request).await,
    };
    let status = response.status();
    // An unknown source's name is the sender's text: do not let it grow the label set.
    let label = if status == StatusCode::NOT_FOUND {
        "(unknown)"
    } else {
        source.as_str()
    };
    state.metrics.inc(
        "publish_guard_webhooks_total",
        &[("source", label), ("status", status.as_str())],
    );
    if status == StatusCode::ACCEPTED {
        state.wake.notify_one();
    }
    response
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if let Some(why) = state.durability.not_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response();
    }
    match state.store.stats().await {
        Ok(_) if let Some(problem) = state.readiness.problem() => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}\n"),
        )
            .into_response(),
        Ok(_) => {
            let version = state.rules.current().version.clone();
            let leader = state.leadership.view().describe();
            let channel = state.hearing.as_ref().map(|h| h.describe());
            let channel = channel.unwrap_or_default();
            format!("ready: store open, policy {version}{leader}{channel}\n").into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stats = state.store.stats().await.unwrap_or_default();
    let now = state.clock.now();
    let gauges = Gauges {
        queue_depth: stats.pending + stats.running,
        oldest_pending_age_seconds: stats
            .oldest_unfinished
            .map_or(0.0, |at| now.duration_since(at).as_secs_f64().max(0.0)),
    };
    let mut body = state.metrics.render(gauges);
    body.push_str(&state.leadership.view().metrics_text());
    if let Some(hearing) = &state.hearing {
        body.push_str(&hearing.metrics_text());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn admin_reload(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(admin) = &state.admin else {
        let problem =
            Problem::unauthorized("no admin token is configured ([serve] admin_token_env)");
        return problem.at("/admin/reload").into_response();
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = admin.verify(authorization) {
        return Problem::unauthorized(e.to_string())
            .at("/admin/reload")
            .into_response();
    }
    match reload(&state).await {
        Ok(version) => {
            axum::Json(serde_json::json!({ "reloaded": true, "version": version })).into_response()
        }
        Err(RulesError::Busy) => Problem::reload_in_progress()
            .at("/admin/reload")
            .into_response(),
        Err(e) => {
            let problem = Problem::rules_rejected(e.to_string()).at("/admin/reload");
            if accepts_text(&headers) {
                problem.into_text_response()
            } else {
                problem.into_response()
            }
        }
    }
}

/// Whether the client asked for plain text (`Accept: text/plain`) rather than JSON.
fn accepts_text(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.trim().starts_with("text/plain"))
}

/// Forget delivery ids older than the retention, hourly; while the store's writes fail, more
/// often, so that a store nobody writes to is seen to work again.
async fn forget_old_deliveries(
    state: Arc<AppState>,
    retention: SignedDuration,
    mut stop: watch::Receiver<bool>,
) {
    let mut due = state.clock.now();
    loop {
        let now = state.clock.now();
        if now >= due || state.durability.store_failing() {
            if let Ok(cutoff) = now.checked_sub(retention) {
                match state.store.forget_deliveries_before(cutoff).await {
                    Ok(n) if n > 0 => tracing::info!(forgotten = n, "delivery ids past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "delivery ids not pruned"),
                }
            }
            due = now
                .checked_add(SignedDuration::from_hours(1))
                .unwrap_or(now);
        }
        let probe = now.checked_add(STORE_PROBE).unwrap_or(now);
        let next = due.min(probe);
        tokio::select! {
            () = state.clock.sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
