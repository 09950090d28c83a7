//! The double's routes: Genesys' token, schedule and upload endpoints, and a REST gateway.

use super::conn::Cutter;
use super::{Call, CallKind, FaultEffect, Grant, OptionalField, Shared, State};
use crate::api::RateLimitInfo;
use crate::api::ScheduleRef;
use crate::api::model::{Operation, Refusal, Reply, ScheduleView, UPLOAD_HEADERS};
use crate::api::week::weekday_name;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};
use std::sync::Arc;

/// What every handler needs: the double, the connection (to cut it), the headers.
pub(super) struct Ctx {
    pub(super) shared: Arc<Shared>,
    conn: Cutter,
    headers: HeaderMap,
}

impl FromRequestParts<Arc<Shared>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, Response> {
        let ConnectInfo(conn) = ConnectInfo::<Cutter>::from_request_parts(parts, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            shared: Arc::clone(shared),
            conn,
            headers: parts.headers.clone(),
        })
    }
}

const SCHEDULES: &str = "/api/v2/workforcemanagement/businessunits/{bu}/weeks/{week}/schedules";

/// All routes, over the shared state.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route(
            "/api/v2/workforcemanagement/businessunits/{bu}",
            get(business_unit),
        )
        .route(SCHEDULES, get(list_week))
        .route(&format!("{SCHEDULES}/{{id}}"), get(get_schedule))
        .route(
            &format!("{SCHEDULES}/{{id}}/update/uploadurl"),
            post(upload_url),
        )
        .route(&format!("{SCHEDULES}/{{id}}/update"), post(update))
        .route("/uploads/{key}", put(upload))
        .route("/gateway/schedules/{id}/status", get(gateway_status))
        .route("/gateway/schedules/{id}/publish", post(gateway_publish))
        .route(
            "/gateway/businessunits/{bu}/weeks/{week}/schedules",
            get(gateway_list),
        )
        .with_state(shared)
}

impl Ctx {
    /// Records the call, applies a fault if one fires, and otherwise serves it.
    pub(super) async fn serve(
        &self,
        kind: CallKind,
        handle: impl FnOnce(&mut State, Timestamp) -> Response,
    ) -> Response {
        let (shared, conn, headers) = (&self.shared, &self.conn, &self.headers);
        let (index, effect) = {
            let mut state = shared.lock();
            let effect = state.faults.iter_mut().find_map(|f| f.hit(kind));
            state.calls.push(Call {
                kind,
                at: shared.clock.now(),
                idempotency_key: header_str(headers, "idempotency-key").map(str::to_owned),
                status: None,
            });
            (state.calls.len() - 1, effect)
        };
        let answer = match effect {
            Some(FaultEffect::Drop) => {
                conn.cut();
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            Some(FaultEffect::Status(status)) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = json!({
                    "message": "injected fault",
                    "code": "server.error",
                    "status": status.as_u16(),
                });
                json_response(status, body)
            }
            Some(FaultEffect::Throttled(retry_after_secs)) => {
                refusal(&Refusal::TooManyRequests { retry_after_secs })
            }
            Some(FaultEffect::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                self.serve_now(handle)
            }
            None => self.serve_now(handle),
        };
        if let Some(call) = shared.lock().calls.get_mut(index) {
            call.status = Some(answer.status().as_u16());
        }
        shared.changed.notify_waiters();
        answer
    }

    fn serve_now(&self, handle: impl FnOnce(&mut State, Timestamp) -> Response) -> Response {
        let now = self.shared.clock.now();
        handle(&mut self.shared.lock(), now)
    }

    /// Serves an API call for the client whose bearer token it carries, or answers 401.
    pub(super) async fn serve_api(
        &self,
        kind: CallKind,
        handle: impl FnOnce(&mut State, Timestamp, &str) -> Response,
    ) -> Response {
        let token = header_str(&self.headers, "authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        self.serve(kind, |state, now| {
            let client = token
                .and_then(|t| state.grants.get(&t))
                .filter(|g| g.expires_at > now)
                .map(|g| g.client_id.clone());
            let Some(client) = client else {
                let body = json!({
                    "message": "Authentication failed.",
                    "code": "authentication.required",
                    "status": 401,
                });
                return json_response(StatusCode::UNAUTHORIZED, body);
            };
            handle(state, now, &client)
        })
        .await
    }
}

/// The token request's form body.
#[derive(serde::Deserialize)]
struct TokenForm {
    grant_type: String,
}

async fn token(ctx: Ctx, form: Result<Form<TokenForm>, FormRejection>) -> Response {
    let basic = header_str(&ctx.headers, "authorization").and_then(|v| v.strip_prefix("Basic "));
    let credentials = basic
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let grant_type_ok = form.is_ok_and(|Form(f)| f.grant_type == "client_credentials");
    let expected = format!("{}:{}", ctx.shared.client_id, ctx.shared.client_secret);
    let lifetime = ctx.shared.token_lifetime;
    let client_id = ctx.shared.client_id.clone();
    ctx.serve(CallKind::Token, |state, now| {
        if !grant_type_ok {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type"}),
            );
        }
        if credentials.as_deref() != Some(expected.as_str()) {
            return json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_client", "description": "client not found or bad secret"}),
            );
        }
        state.issued_tokens += 1;
        let token = format!("double-token-{}", state.issued_tokens);
        let expires_at = now.saturating_add(lifetime).unwrap_or(Timestamp::MAX);
        state.grants.insert(
            token.clone(),
            Grant {
                client_id,
                expires_at,
            },
        );
        axum::Json(json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": lifetime.as_secs(),
        }))
        .into_response()
    })
    .await
}

async fn get_schedule(ctx: Ctx, SchedulePath(schedule): SchedulePath) -> Response {
    ctx.serve_api(CallKind::GetSchedule, |state, now, client| {
        let left_out = state.left_out.clone();
        reply(state.model.get(client, now, &schedule), |v| {
            (StatusCode::OK, without(schedule_json(&v), &left_out))
        })
    })
    .await
}

async fn list_week(ctx: Ctx, WeekPath(bu, week): WeekPath) -> Response {
    ctx.serve_api(CallKind::ListWeek, |state, now, client| {
        let left_out = state.left_out.clone();
        reply(state.model.list_week(client, now, &bu, week), |views| {
            if left_out.contains(&OptionalField::Entities) {
                return (StatusCode::OK, json!({}));
            }
            let entities: Vec<Value> = views
                .iter()
                .map(|v| without(schedule_json(v), &left_out))
                .collect();
            (StatusCode::OK, json!({"entities": entities}))
        })
    })
    .await
}

/// `GET .../businessunits/{bu}`: the settings come only as far as `expand` asks
/// (`expand=settings.startDayOfWeek&expand=settings.timeZone`, or comma-separated).
async fn business_unit(ctx: Ctx, Path(bu): Path<String>, uri: axum::http::Uri) -> Response {
    let expands: Vec<String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("expand="))
        .map(|v| {
            v.replace("%2C", ",")
                .replace("%2c", ",")
                .replace("%20", " ")
        })
        .flat_map(|v| {
            v.split([',', ' '])
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let wants = |field: &str| {
        expands
            .iter()
            .any(|e| e == "settings" || e == &format!("settings.{field}"))
    };
    let (start_day, time_zone) = (wants("startDayOfWeek"), wants("timeZone"));
    ctx.serve_api(CallKind::BusinessUnit, |state, now, client| {
        reply(state.model.business_unit(client, now, &bu), |settings| {
            let mut body = json!({
                "id": bu,
                "name": format!("Business unit {bu}"),
                "selfUri": format!("/api/v2/workforcemanagement/businessunits/{bu}"),
            });
            if start_day || time_zone {
                let mut fields = serde_json::Map::new();
                if start_day {
                    let day = weekday_name(settings.start_day);
                    fields.insert("startDayOfWeek".into(), Value::from(day));
                }
                if time_zone {
                    let zone = settings.time_zone.as_ref().and_then(|z| z.iana_name());
                    fields.insert("timeZone".into(), Value::from(zone.unwrap_or("UTC")));
                }
                fields.insert("metadata".into(), json!({"version": 1}));
                body["settings"] = Value::Object(fields);
            }
            (StatusCode::OK, body)
        })
    })
    .await
}

async fn upload_url(ctx: Ctx, SchedulePath(schedule): SchedulePath, body: Bytes) -> Response {
    let declared = json_field(&body, "contentLengthBytes").and_then(|v| v.as_u64());
    let base = ctx.shared.base_url.clone();
    ctx.serve_api(CallKind::UploadUrl, |state, now, client| {
        let Some(declared) = declared else {
            return refusal(&Refusal::BadRequest(
                "contentLengthBytes is required".into(),
            ));
        };
        reply(
            state.model.upload_url(client, now, &schedule, declared),
            |ticket| {
                let headers: serde_json::Map<String, Value> = ticket
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                    .collect();
                let url = format!("{base}/uploads/{}", ticket.upload_key);
                (
                    StatusCode::OK,
                    json!({"uploadKey": ticket.upload_key, "url": url, "headers": headers}),
                )
            },
        )
    })
    .await
}

async fn upload(ctx: Ctx, Path(key): Path<String>, body: Bytes) -> Response {
    let missing = UPLOAD_HEADERS
        .iter()
        .find(|(name, value)| header_str(&ctx.headers, name) != Some(*value))
        .map(|(name, _)| *name);
    ctx.serve(CallKind::Upload, |state, _now| {
        if let Some(name) = missing {
            let message = format!("the upload must carry the header {name} it was given");
            return json_response(StatusCode::FORBIDDEN, json!({"message": message}));
        }
        match state.model.upload(&key, &body) {
            Ok(()) => StatusCode::OK.into_response(),
            Err(r) => refusal(&r),
        }
    })
    .await
}

async fn update(ctx: Ctx, SchedulePath(schedule): SchedulePath, body: Bytes) -> Response {
    let key = json_field(&body, "uploadKey").and_then(|v| v.as_str().map(str::to_owned));
    ctx.serve_api(CallKind::Update, |state, now, client| {
        let Some(key) = key else {
            return refusal(&Refusal::BadRequest("uploadKey is required".into()));
        };
        let left_out = state.left_out.clone();
        reply(state.model.update(client, now, &schedule, &key), |op| {
            (StatusCode::OK, without(operation_json(&op), &left_out))
        })
    })
    .await
}

async fn gateway_status(ctx: Ctx, Path(id): Path<String>) -> Response {
    ctx.serve(CallKind::GatewayStatus, |state, now| {
        reply(state.model.gateway_status("gateway", now, &id), |v| {
            (
                StatusCode::OK,
                json!({"state": v.state, "version": v.snapshot.version}),
            )
        })
    })
    .await
}

async fn gateway_publish(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Response {
    let version = json_field(&body, "version").and_then(|v| v.as_i64());
    ctx.serve(CallKind::GatewayPublish, |state, now| {
        reply(
            state.model.gateway_publish("gateway", now, &id, version),
            |op| (StatusCode::ACCEPTED, operation_json(&op)),
        )
    })
    .await
}

async fn gateway_list(ctx: Ctx, WeekPath(bu, week): WeekPath) -> Response {
    ctx.serve(CallKind::GatewayList, |state, now| {
        reply(state.model.list_week("gateway", now, &bu, week), |views| {
            let ids: Vec<&str> = views
                .iter()
                .map(|v| v.schedule.schedule_id.as_str())
                .collect();
            (StatusCode::OK, json!(ids))
        })
    })
    .await
}

/// An answer from the model: its body or its refusal, with the rate-limit headers.
fn reply<T>(reply: Reply<T>, ok: impl FnOnce(T) -> (StatusCode, Value)) -> Response {
    let mut response = match reply.outcome {
        Ok(value) => {
            let (status, body) = ok(value);
            json_response(status, body)
        }
        Err(r) => refusal(&r),
    };
    add_rate_limit(response.headers_mut(), reply.rate_limit);
    response
}

pub(super) fn refusal(refusal: &Refusal) -> Response {
    let status =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, refusal.body());
    if let Refusal::TooManyRequests { retry_after_secs } = refusal {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    response
}

pub(super) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn add_rate_limit(headers: &mut HeaderMap, info: RateLimitInfo) {
    for (name, value) in [
        ("inin-ratelimit-count", info.count),
        ("inin-ratelimit-allowed", info.allowed),
        ("inin-ratelimit-reset", info.reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

fn schedule_json(view: &ScheduleView) -> Value {
    let s = &view.schedule;
    let snap = &view.snapshot;
    json!({
        "id": s.schedule_id,
        "weekDate": s.week.to_string(),
        "weekCount": view.listed.week_count,
        "published": snap.published,
        "metadata": {
            "version": snap.version,
            "dateCreated": view.listed.created_at.map(|t| t.to_string()),
            "dateModified": snap.modified_at.map(|t| t.to_string()),
            "modifiedBy": snap.modified_by.as_ref().map(|id| json!({"id": id, "selfUri": format!("/api/v2/users/{id}")})),
        },
        "selfUri": format!("/api/v2/workforcemanagement/businessunits/{}/weeks/{}/schedules/{}", s.business_unit, s.week, s.schedule_id),
    })
}

fn operation_json(op: &Operation) -> Value {
    json!({"status": op.status, "operationId": op.operation_id, "result": null})
}

/// `body` less the optional fields the test asked the double to leave out.
fn without(mut body: Value, left_out: &[OptionalField]) -> Value {
    if let Value::Object(fields) = &mut body {
        for field in left_out {
            if let Some(name) = field.top_level_name() {
                fields.remove(name);
            }
        }
    }
    body
}

/// One field of a JSON body, if the body is JSON and has it.
fn json_field(body: &[u8], name: &str) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get_mut(name)
        .map(Value::take)
}

/// The `{bu}/weeks/{week}/schedules/{id}` part of a path, as a [`ScheduleRef`].
struct SchedulePath(ScheduleRef);

impl<S: Send + Sync> FromRequestParts<S> for SchedulePath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path((business_unit, week, schedule_id)) =
            Path::<(String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let Ok(week_date) = week.parse() else {
            return Err(bad_week(&week));
        };
        Ok(Self(ScheduleRef {
            business_unit,
            week: week_date,
            schedule_id,
        }))
    }
}

/// The `{bu}/weeks/{week}` part of a path.
struct WeekPath(String, Date);

impl<S: Send + Sync> FromRequestParts<S> for WeekPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path((business_unit, week)) =
            Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let Ok(week_date) = week.parse() else {
            return Err(bad_week(&week));
        };
        Ok(Self(business_unit, week_date))
    }
}

fn bad_week(week: &str) -> Response {
    refusal(&Refusal::BadRequest(format!(
        "weekDate {week:?} is not yyyy-MM-dd"
    )))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
