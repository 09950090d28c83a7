//! The relay service: the intake routes, the worker feeding the runner, health, readiness,
//! metrics and rules reload, started on a listener and stopped gracefully (intake first,
//! then the worker once the calls in flight are answered and recorded).

use super::intake::{Intake, Source};
use super::metrics::{Gauges, Metrics};
use super::problem::Problem;
use super::readiness::Readiness;
use super::rules::{Rules, RulesError};
use super::store::TriggerStore;
use super::webhook_auth::BearerVerifier;
use super::worker::{WorkerError, WorkerParts, run_worker};
use crate::api::ScheduleApi;
use crate::audit::writer::AuditWriter;
use crate::effects::clock::Clock;
use crate::runner::RunnerConfig;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::SignedDuration;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// Everything the relay needs besides the API client.
pub struct RelaySettings {
    /// Webhook sources by name.
    pub sources: HashMap<String, Source>,
    /// The durable store.
    pub store: Arc<dyn TriggerStore>,
    /// The audit log's writer.
    pub audit: Arc<AuditWriter>,
    /// The policy in force and its file.
    pub rules: Arc<Rules>,
    /// The bearer token of the admin routes; `None` turns them off.
    pub admin_token: Option<String>,
    /// The runner's bounds (the delivery retention among them).
    pub runner: RunnerConfig,
    /// The largest webhook body accepted.
    pub body_limit: usize,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

/// What the HTTP handlers share.
struct AppState {
    store: Arc<dyn TriggerStore>,
    rules: Arc<Rules>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    admin: Option<BearerVerifier>,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
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
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            store: Arc::clone(&settings.store),
            rules: Arc::clone(&settings.rules),
            metrics: Arc::new(Metrics::default()),
            readiness: Arc::new(Readiness::default()),
            admin: settings.admin_token.map(|t| BearerVerifier::new(vec![t])),
            wake: Arc::new(Notify::new()),
            clock: Arc::clone(&settings.clock),
        });
        let parts = WorkerParts {
            store: Arc::clone(&settings.store),
            audit: settings.audit,
            rules: settings.rules,
            metrics: Arc::clone(&state.metrics),
            readiness: Arc::clone(&state.readiness),
            clock: Arc::clone(&settings.clock),
            config: settings.runner.clone(),
            wake: Arc::clone(&state.wake),
            stop: stop_rx.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let worker = std::thread::Builder::new()
            .name("relay-worker".into())
            .spawn(move || runtime.block_on(run_worker(make_api(), parts)))?;
        tokio::spawn(forget_old_deliveries(
            Arc::clone(&state),
            settings.runner.delivery_retention,
            stop_rx.clone(),
        ));
        let intake = Arc::new(Intake {
            sources: settings.sources,
            store: settings.store,
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
        let mut stopped = stop_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
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

    /// Check the rules file again and put it in force if it checks (SIGHUP does this).
    pub fn reload(&self) -> Result<String, RulesError> {
        reload(&self.state)
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

fn reload(state: &AppState) -> Result<String, RulesError> {
    let result = state.rules.reload();
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
    let response = next.run(request).await;
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
    match state.store.stats().await {
        Ok(_) if let Some(problem) = state.readiness.problem() => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}\n"),
        )
            .into_response(),
        Ok(_) => {
            let version = state.rules.current().version.clone();
            format!("ready: store open, policy {version}\n").into_response()
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
    let body = state.metrics.render(gauges);
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
    match reload(&state) {
        Ok(version) => {
            axum::Json(serde_json::json!({ "reloaded": true, "version": version })).into_response()
        }
        Err(e) => Problem::rules_rejected(e.to_string())
            .at("/admin/reload")
            .into_response(),
    }
}

/// Forget delivery ids older than the retention, hourly.
async fn forget_old_deliveries(
    state: Arc<AppState>,
    retention: SignedDuration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = state.clock.now();
        if let Ok(cutoff) = now.checked_sub(retention) {
            match state.store.forget_deliveries_before(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(forgotten = n, "delivery ids past retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "delivery ids not pruned"),
            }
        }
        let next = now
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or(now);
        tokio::select! {
            () = state.clock.sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
