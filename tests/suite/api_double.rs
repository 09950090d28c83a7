//! The double's routes as a raw HTTP client sees them: the shapes, headers and checks the
//! clients rely on, and the call log.

use crate::api_support::{double, schedule};
use publish_guard::api::double::{ApiDouble, CallKind, Fault};
use publish_guard::api::model::{MSG_ALREADY_PUBLISHING, ModelConfig};
use publish_guard::api::upload::gzip_publish_body;
use serde_json::{Value, json};

const SCHEDULE_PATH: &str =
    "/api/v2/workforcemanagement/businessunits/bu-1/weeks/2026-03-02/schedules/sched-1";

/// A token from the double.
async fn token(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> Option<String> {
    let answer = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .ok()?;
    let body: Value = answer.json().await.ok()?;
    body["access_token"].as_str().map(str::to_owned)
}

/// Status, selected headers and JSON body of an answer.
async fn seen(answer: reqwest::Response) -> (u16, Vec<Option<String>>, Value) {
    let headers = [
        "retry-after",
        "inin-ratelimit-count",
        "inin-ratelimit-allowed",
        "inin-ratelimit-reset",
    ]
    .iter()
    .map(|h| {
        answer
            .headers()
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
    .collect();
    let status = answer.status().as_u16();
    (status, headers, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn past_the_limit_the_double_answers_429_with_genesys_headers_and_body() {
    let (double, _clock) = double(|c| {
        c.model = ModelConfig {
            requests_per_minute: 1,
            ..ModelConfig::default()
        }
    })
    .await;
    double.add_schedule(&schedule(), false, 3);
    let http = reqwest::Client::new();
    let base = double.base_url();
    let bearer = token(&http, base, double.client_id(), double.client_secret()).await;
    let get = || {
        http.get(format!("{base}{SCHEDULE_PATH}"))
            .bearer_auth(bearer.clone().unwrap_or_default())
            .send()
    };
    let Ok(first) = get().await else {
        panic!("no answer");
    };
    let (status, headers, body) = seen(first).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers,
        [None, Some("1".into()), Some("1".into()), Some("60".into())]
    );
    assert_eq!(body["metadata"]["version"], json!(3));
    assert_eq!(body["weekDate"], json!("2026-03-02"));

    let Ok(second) = get().await else {
        panic!("no answer");
    };
    let (status, headers, body) = seen(second).await;
    assert_eq!(status, 429);
    assert_eq!(
        headers,
        [
            Some("60".into()),
            Some("1".into()),
            Some("1".into()),
            Some("60".into())
        ]
    );
    assert_eq!(
        body,
        json!({
            "message": "Rate limit exceeded the maximum. Retry the request in [60] seconds",
            "code": "too.many.requests.retry.after",
            "status": 429,
        })
    );
}

/// A raw client logged in to the double.
struct Raw {
    http: reqwest::Client,
    base: String,
    bearer: String,
}

impl Raw {
    async fn login(double: &ApiDouble) -> Self {
        let http = reqwest::Client::new();
        let base = double.base_url().to_owned();
        let bearer = token(&http, &base, double.client_id(), double.client_secret())
            .await
            .unwrap_or_default();
        Self { http, base, bearer }
    }

    /// `POST .../update/uploadurl`, answering its JSON body.
    async fn ticket(&self, len: usize) -> Value {
        let answer = self
            .http
            .post(format!("{}{SCHEDULE_PATH}/update/uploadurl", self.base))
            .bearer_auth(&self.bearer)
            .json(&json!({"contentLengthBytes": len}))
            .send()
            .await;
        match answer {
            Ok(answer) => seen(answer).await.2,
            Err(_) => Value::Null,
        }
    }

    /// `PUT`s `bytes` to the ticket's URL, with or without the gzip header it asks for.
    async fn put(&self, ticket: &Value, bytes: &[u8], gzip: bool) -> Option<u16> {
        let url = ticket["url"].as_str().unwrap_or_default();
        let request = self
            .http
            .put(url)
            .header("Content-Type", "application/json")
            .body(bytes.to_vec());
        let request = if gzip {
            request.header("Content-Encoding", "gzip")
        } else {
            request
        };
        request.send().await.ok().map(|r| r.status().as_u16())
    }
}

#[tokio::test]
async fn an_upload_is_checked_for_headers_length_and_gzip() {
    let (double, _clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let raw = Raw::login(&double).await;
    let body = gzip_publish_body(3).unwrap_or_default();

    let first = raw.ticket(body.len()).await;
    assert_eq!(first["headers"]["Content-Encoding"], json!("gzip"));
    assert_eq!(raw.put(&first, &body, false).await, Some(403));
    assert_eq!(raw.put(&first, &body[1..], true).await, Some(400));
    assert_eq!(raw.put(&first, &body, true).await, Some(200));

    let plain = br#"{"published":true,"metadata":{"version":3}}"#;
    let second = raw.ticket(plain.len()).await;
    assert_eq!(raw.put(&second, plain, true).await, Some(400));
    assert_eq!(double.calls(CallKind::Upload), 4);
}

#[tokio::test]
async fn an_update_of_a_published_schedule_answers_the_message_users_see() {
    let (double, _clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), true, 3);
    let raw = Raw::login(&double).await;
    let body = gzip_publish_body(3).unwrap_or_default();
    let ticket = raw.ticket(body.len()).await;
    assert_eq!(raw.put(&ticket, &body, true).await, Some(200));
    let update = raw
        .http
        .post(format!("{}{SCHEDULE_PATH}/update", raw.base))
        .bearer_auth(&raw.bearer)
        .json(&json!({"uploadKey": ticket["uploadKey"]}))
        .send()
        .await;
    let Ok(update) = update else {
        panic!("no answer");
    };
    let (status, _, body) = seen(update).await;
    assert_eq!(status, 409);
    assert_eq!(body["message"], json!(MSG_ALREADY_PUBLISHING));
}

#[tokio::test]
async fn the_token_endpoint_checks_secret_and_grant_type() {
    let (double, _clock) = double(|_| {}).await;
    let http = reqwest::Client::new();
    let base = double.base_url();
    assert!(
        token(&http, base, double.client_id(), "wrong")
            .await
            .is_none()
    );
    let bad_grant = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(double.client_id(), Some(double.client_secret()))
        .form(&[("grant_type", "password")])
        .send()
        .await;
    assert_eq!(bad_grant.map(|r| r.status().as_u16()).ok(), Some(400));
    let statuses: Vec<Option<u16>> = double.call_log().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(401), Some(400)]);
}

#[tokio::test]
async fn api_calls_without_a_valid_token_answer_401() {
    let (double, _clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let http = reqwest::Client::new();
    let answer = http
        .get(format!("{}{SCHEDULE_PATH}", double.base_url()))
        .bearer_auth("made-up")
        .send()
        .await;
    assert_eq!(answer.map(|r| r.status().as_u16()).ok(), Some(401));
}

#[tokio::test]
async fn a_dropped_connection_is_logged_without_a_status_and_faults_can_be_cleared() {
    let (double, _clock) = double(|_| {}).await;
    double.add_fault(Fault::drop_connection().on(CallKind::Token));
    let http = reqwest::Client::new();
    let base = double.base_url();
    assert!(
        token(&http, base, double.client_id(), double.client_secret())
            .await
            .is_none()
    );
    double.clear_faults();
    assert!(
        token(&http, base, double.client_id(), double.client_secret())
            .await
            .is_some()
    );
    let statuses: Vec<Option<u16>> = double.call_log().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [None, Some(200)]);
}

#[tokio::test]
async fn a_shut_down_double_refuses_connections() {
    let (double, _clock) = double(|_| {}).await;
    let base = double.base_url().to_owned();
    double.shutdown().await;
    let answer = reqwest::Client::new()
        .get(format!("{base}/oauth/token"))
        .send()
        .await;
    assert!(answer.is_err());
}
