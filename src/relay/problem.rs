//! RFC 9457 problem details: the `application/problem+json` body of every rejected request.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem-details body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where the problem type URIs live; each kind appends its own name.
const TYPE_PREFIX: &str = "urn:publish-guard:problem:";

/// An RFC 9457 problem: what kind of failure, a short title, the status, and what exactly was
/// wrong with this request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem (stable: clients may match on it).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What was wrong with this request.
    pub detail: String,
    /// The request the problem is about (the path), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Problem {
    fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_PREFIX}{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
        }
    }

    /// The same problem, naming the request it is about.
    pub fn at(self, instance: impl Into<String>) -> Self {
        Self {
            instance: Some(instance.into()),
            ..self
        }
    }

    /// 400: the body is not JSON.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The body is not valid JSON",
            detail,
        )
    }

    /// 401: the request failed authentication (signature, timestamp or token).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The request could not be authenticated",
            detail,
        )
    }

    /// 404: no webhook source of that name is configured.
    pub fn unknown_source(source: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown-source",
            "No such webhook source",
            format!("no webhook source named {source:?} is configured"),
        )
    }

    /// 413: the body exceeds the configured limit.
    pub fn too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The body is too large",
            format!("the body exceeds the limit of {limit_bytes} bytes"),
        )
    }

    /// 415: the content type is not JSON.
    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let detail = match got {
            Some(got) => format!("expected `application/json`, got `{got}`"),
            None => "expected `content-type: application/json`, got none".to_owned(),
        };
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The content type is not JSON",
            detail,
        )
    }

    /// 422: the JSON does not carry what the source's mapping requires.
    pub fn invalid_payload(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-payload",
            "The payload does not match the source's mapping",
            detail,
        )
    }

    /// 422: the delivery id was seen before with a different body (the IETF
    /// Idempotency-Key draft's semantics: a key may not be reused for another request).
    pub fn delivery_conflict(delivery_id: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "delivery-conflict",
            "The delivery id was already used for a different body",
            format!("delivery {delivery_id:?} was accepted before with a different body"),
        )
    }

    /// 503: the request could not be stored, so it was not accepted; the sender should retry.
    pub fn store_unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "The webhook could not be stored",
            detail,
        )
    }

    /// 400: the delivery id (`webhook-id`, the mapped field or `Idempotency-Key`) is empty
    /// or longer than the limit.
    pub fn invalid_delivery_id(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-delivery-id",
            "The delivery id is empty or too long",
            detail,
        )
    }

    /// 503: the audit log cannot be written now, so nothing accepted could be processed and
    /// recorded; the sender should retry later.
    pub fn not_durable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-durable",
            "The relay cannot make anything durable now",
            detail,
        )
    }

    /// 409: another reload is still checking its file.
    pub fn reload_in_progress() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "reload-in-progress",
            "A reload is already in progress",
            "another reload is still checking the rules file; the running policy stays in force",
        )
    }

    /// 422: a reloaded rules file does not check; the running policy stays in force.
    pub fn rules_rejected(diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rules-rejected",
            "The rules file does not check; the running policy stays in force",
            diagnostics,
        )
    }

    /// The HTTP status as a `StatusCode`.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl Problem {
    /// The problem as plain text (title, then detail), for a client that asked for
    /// `text/plain`: multi-line details such as diagnostics stay readable.
    pub fn into_text_response(self) -> Response {
        let body = format!("{}\n\n{}\n", self.title, self.detail.trim_end());
        let mut response = (self.status_code(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        // Serialising a struct of strings and an integer cannot fail; keep a valid body anyway.
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_serialises_as_rfc_9457() {
        let problems = [
            Problem::malformed_json("expected value at line 1 column 1"),
            Problem::unauthorized("no signature matches an active secret"),
            Problem::unknown_source("jira"),
            Problem::too_large(65536),
            Problem::unsupported_media_type(Some("text/plain")),
            Problem::unsupported_media_type(None),
            Problem::invalid_payload("`/sys_id` is missing"),
            Problem::delivery_conflict("msg_1").at("/webhooks/servicenow"),
            Problem::store_unavailable("database is locked"),
        ];
        let lines: Vec<String> = problems
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn the_hardening_kinds_serialise_as_rfc_9457() {
        let problems = [
            Problem::invalid_delivery_id("the delivery id is empty").at("/webhooks/servicenow"),
            Problem::not_durable("the audit log cannot be written: No space left on device"),
            Problem::reload_in_progress().at("/admin/reload"),
        ];
        let lines: Vec<String> = problems
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[tokio::test]
    async fn the_response_carries_status_media_type_and_body() {
        let response = Problem::too_large(10).at("/webhooks/x").into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["status"], 413);
        assert_eq!(json["type"], "urn:publish-guard:problem:too-large");
        assert_eq!(json["instance"], "/webhooks/x");
    }
}
