//! `POST /webhooks/{source}`: check the request (source, content type, size, authentication,
//! JSON, mapping), commit the trigger to the store, then answer `202` with a receipt, `200`
//! with the first receipt for a repeat, or an RFC 9457 problem. Nothing rejected is stored.

use super::mapping::Mapping;
use super::problem::Problem;
use super::store::{Acceptance, NewTrigger, Receipt, TriggerStore};
use super::webhook_auth::{
    BearerVerifier, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, SignatureVerifier, SignedHeaders,
};
use crate::audit::canonical::sha256_hex;
use crate::effects::clock::Clock;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The body limit unless configured otherwise: webhook payloads are small.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// The longest delivery id stored, in bytes (Standard Webhooks ids are far shorter).
pub const MAX_DELIVERY_ID: usize = 256;

/// How a source proves who it is.
#[derive(Clone, Debug)]
pub enum SourceAuth {
    /// Standard Webhooks signatures.
    Signed(SignatureVerifier),
    /// A bearer token, for senders that cannot sign.
    Bearer(BearerVerifier),
}

/// One configured webhook source.
#[derive(Clone, Debug)]
pub struct Source {
    /// How it authenticates.
    pub auth: SourceAuth,
    /// How its JSON maps to a trigger.
    pub mapping: Mapping,
}

/// The intake: the configured sources, the store and the clock.
pub struct Intake {
    /// Sources by the name in the URL.
    pub sources: HashMap<String, Source>,
    /// Where accepted triggers go.
    pub store: Arc<dyn TriggerStore>,
    /// The time used for timestamp tolerance and `received_at`.
    pub clock: Arc<dyn Clock>,
    /// The largest body accepted, in bytes.
    pub body_limit: usize,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

/// The body of a `202` or `200` answer.
#[derive(Debug, Serialize)]
struct ReceiptBody<'a> {
    receipt: &'a str,
    received_at: jiff::Timestamp,
    duplicate: bool,
}

impl Intake {
    /// The routes this intake serves: `POST /webhooks/{source}`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/webhooks/{source}", post(receive))
            .with_state(self)
    }

    /// Check, store and answer one webhook.
    async fn handle(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response, Problem> {
        let config = self
            .sources
            .get(source)
            .ok_or_else(|| Problem::unknown_source(source))?;
        check_content_type(headers)?;
        // A token needs no body: refuse a bad one before reading it.
        if let SourceAuth::Bearer(verifier) = &config.auth {
            verifier
                .verify(text(headers, header::AUTHORIZATION.as_str()))
                .map_err(|e| Problem::unauthorized(e.to_string()))?;
        }
        let body = self.read_body(headers, body).await?;
        let now = self.clock.now();
        let signed_id = match &config.auth {
            SourceAuth::Signed(verifier) => {
                // Refused before its HMAC is computed.
                if let Some(id) = text(headers, HEADER_ID) {
                    check_delivery_id(id)?;
                }
                let signed = SignedHeaders {
                    id: text(headers, HEADER_ID),
                    timestamp: text(headers, HEADER_TIMESTAMP),
                    signature: text(headers, HEADER_SIGNATURE),
                };
                let verified = verifier
                    .verify(signed, &body, now)
                    .map_err(|e| Problem::unauthorized(e.to_string()))?;
                Some(verified.id)
            }
            SourceAuth::Bearer(_) => None,
        };
        let payload: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| Problem::malformed_json(e.to_string()))?;
        let mapped = config
            .mapping
            .apply(&payload)
            .map_err(|e| Problem::invalid_payload(e.to_string()))?;
        let body_hash = sha256_hex(&body);
        // The signed message id, else the mapped field, else the `Idempotency-Key` header;
        // a sender with none of these is deduplicated by the body itself.
        let delivery_id = signed_id
            .or(mapped.delivery_id)
            .or_else(|| text(headers, "idempotency-key").map(str::to_owned))
            .unwrap_or_else(|| format!("sha256:{body_hash}"));
        check_delivery_id(&delivery_id)?;
        let trigger = NewTrigger {
            source: source.to_owned(),
            delivery_id: delivery_id.clone(),
            body_hash,
            target: mapped.target,
            event: mapped.event,
            received_at: now,
        };
        match self.store.accept(trigger).await {
            Ok(Acceptance::Accepted(receipt)) => {
                tracing::info!(
                    source,
                    delivery_id,
                    receipt = receipt.id,
                    "webhook accepted"
                );
                Ok(answer(StatusCode::ACCEPTED, &receipt, false))
            }
            Ok(Acceptance::Repeat(receipt)) => {
                tracing::info!(
                    source,
                    delivery_id,
                    receipt = receipt.id,
                    "webhook repeated"
                );
                Ok(answer(StatusCode::OK, &receipt, true))
            }
            Ok(Acceptance::Conflict) => Err(Problem::delivery_conflict(&delivery_id)),
            Err(e) => {
                tracing::error!(source, delivery_id, error = %e, "webhook not stored");
                Err(Problem::store_unavailable(e.to_string()))
            }
        }
    }

    /// Read the body, refusing more than the limit (declared or actual).
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Problem> {
        let declared = text(headers, header::CONTENT_LENGTH.as_str())
            .and_then(|length| length.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.body_limit as u64) {
            return Err(Problem::too_large(self.body_limit));
        }
        match Limited::new(body, self.body_limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(Problem::too_large(self.body_limit)),
            Err(e) => Err(Problem::malformed_json(format!(
                "the body could not be read: {e}"
            ))),
        }
    }
}

async fn receive(
    State(intake): State<Arc<Intake>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match intake.handle(&source, &headers, body).await {
        Ok(response) => response,
        Err(problem) => {
            tracing::warn!(
                source,
                status = problem.status,
                detail = problem.detail,
                "webhook rejected"
            );
            problem.at(format!("/webhooks/{source}")).into_response()
        }
    }
}

fn answer(status: StatusCode, receipt: &Receipt, duplicate: bool) -> Response {
    let body = ReceiptBody {
        receipt: &receipt.id,
        received_at: receipt.received_at,
        duplicate,
    };
    (status, axum::Json(body)).into_response()
}

/// A delivery id is 1 to [`MAX_DELIVERY_ID`] bytes.
fn check_delivery_id(id: &str) -> Result<(), Problem> {
    if id.is_empty() {
        return Err(Problem::invalid_delivery_id("the delivery id is empty"));
    }
    if id.len() > MAX_DELIVERY_ID {
        return Err(Problem::invalid_delivery_id(format!(
            "the delivery id is {} bytes long; the limit is {MAX_DELIVERY_ID}",
            id.len()
        )));
    }
    Ok(())
}

/// A header's value, when present and visible ASCII.
fn text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Accept `application/json` and `application/*+json`, with any parameters.
fn check_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let value = text(headers, header::CONTENT_TYPE.as_str());
    let essence = value
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(media) if media.starts_with("application/") && media.ends_with("+json") => Ok(()),
        _ => Err(Problem::unsupported_media_type(value)),
    }
}
