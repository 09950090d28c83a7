//! What every HTTP client here shares: sending with errors mapped to [`ApiError`], and
//! reading the headers the runner acts on into an [`Answer`].

use crate::api::limiter::{RateLimiter, SharedLimiter};
use crate::api::{Answer, ApiError, OperationStatus, PublishAccepted, RateLimitInfo};
use crate::effects::clock::Clock;
use bytes::Bytes;
use jiff::SignedDuration;
use reqwest::Url;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

/// A raw answer: status, the headers that matter, the body.
#[derive(Clone, Debug)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<SignedDuration>,
    pub(crate) rate_limit: Option<RateLimitInfo>,
    pub(crate) body: Bytes,
    /// How long the client-side limiter held the call.
    pub(crate) waited: SignedDuration,
}

impl RawAnswer {
    /// Whether the status is 2xx.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The [`Answer`]: on 2xx the body decoded by `decode` (which must succeed), else none.
    pub(crate) fn into_answer<T>(
        self,
        call: &'static str,
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<Answer<T>, ApiError> {
        let body = if self.is_success() {
            Some(decode(&self.body).map_err(|reason| ApiError::Protocol { call, reason })?)
        } else {
            None
        };
        Ok(Answer {
            status: self.status,
            retry_after: self.retry_after,
            rate_limit: self.rate_limit,
            body,
            waited: self.waited,
        })
    }

    /// The same status and headers, without a body (a step that failed ends the sequence).
    pub(crate) fn without_body<T>(self) -> Answer<T> {
        Answer {
            status: self.status,
            retry_after: self.retry_after,
            rate_limit: self.rate_limit,
            body: None,
            waited: self.waited,
        }
    }
}

/// Decodes a JSON body, saying what was wrong without echoing it.
pub(crate) fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

/// What an accepted write's answer says (Genesys' update, a gateway's publish); either may
/// send less.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcceptedBody {
    status: Option<OperationStatus>,
    operation_id: Option<String>,
}

/// An accepted write's body. An empty 2xx accepted it and said nothing: the runner learns
/// how it ends by reading the state again, so it counts as Processing.
pub(crate) fn accepted(body: &[u8]) -> Result<PublishAccepted, String> {
    let body: AcceptedBody = if body.is_empty() {
        AcceptedBody {
            status: None,
            operation_id: None,
        }
    } else {
        json(body)?
    };
    Ok(PublishAccepted {
        status: body.status.unwrap_or(OperationStatus::Processing),
        operation_id: body.operation_id,
    })
}

/// Sends `request` and reads the whole answer, within `timeout` (set on the request).
async fn send(
    call: &'static str,
    timeout: Duration,
    request: reqwest::RequestBuilder,
) -> Result<RawAnswer, ApiError> {
    let failed = |e: reqwest::Error| transport_error(call, timeout, e);
    let response = request.timeout(timeout).send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let rate_limit = rate_limit(response.headers());
    let body = response.bytes().await.map_err(failed)?;
    Ok(RawAnswer {
        status,
        retry_after,
        rate_limit,
        body,
        waited: SignedDuration::ZERO,
    })
}

/// What a client needs to make calls: the HTTP client, the timeout of each call, the rate
/// limiter and the clock it waits on.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
    pub(crate) limiter: SharedLimiter,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Caller {
    /// A caller with its own limiter of `requests_per_minute`, waiting out a `Retry-After`
    /// of at most `retry_after_cap`.
    pub(crate) fn new(
        timeout: Duration,
        requests_per_minute: u32,
        retry_after_cap: SignedDuration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ApiError::Transport {
                call: "client setup",
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            timeout,
            limiter: SharedLimiter::new(
                RateLimiter::per_minute(requests_per_minute).with_retry_after_cap(retry_after_cap),
            ),
            clock,
        })
    }

    /// Sends `request` without the limiter (storage, login).
    pub(crate) async fn unlimited(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<RawAnswer, ApiError> {
        send(call, self.timeout, request).await
    }

    /// Sends `request` after waiting for the limiter; the answer's rate-limit headers and
    /// a 429's `Retry-After` then tighten the limiter.
    pub(crate) async fn limited(
        &self,
        call: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<RawAnswer, ApiError> {
        let clock = self.clock.as_ref();
        let waited = self
            .limiter
            .acquire(clock)
            .await
            .map_err(|after| ApiError::RetryAfterTooLong { call, after })?;
        let mut answer = self.unlimited(call, request).await?;
        answer.waited = waited;
        let now = clock.now();
        let too_long = self.limiter.with(|limiter| {
            if let Some(info) = answer.rate_limit {
                limiter.observe(info, now);
            }
            answer
                .retry_after
                .filter(|_| answer.status == 429)
                .filter(|wait| limiter.hold_for(*wait, now))
        });
        match too_long {
            Some(after) => Err(ApiError::RetryAfterTooLong { call, after }),
            None => Ok(answer),
        }
    }
}

/// A reqwest error as an [`ApiError`], without the URL (a signed upload URL is a secret).
fn transport_error(call: &'static str, timeout: Duration, error: reqwest::Error) -> ApiError {
    if error.is_timeout() {
        return ApiError::Timeout {
            call,
            after: timeout,
        };
    }
    let error = error.without_url();
    let mut reason = error.to_string();
    // reqwest's own message is terse; its causes say what happened (refused, reset, ...).
    let mut cause = std::error::Error::source(&error);
    while let Some(c) = cause {
        reason.push_str(": ");
        reason.push_str(&c.to_string());
        cause = c.source();
    }
    ApiError::Transport { call, reason }
}

/// `Retry-After` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<SignedDuration> {
    let secs: i64 = header(headers, "retry-after")?.parse().ok()?;
    (secs >= 0).then(|| SignedDuration::from_secs(secs))
}

/// `inin-ratelimit-count`, `-allowed`, `-reset`, when all three are there.
fn rate_limit(headers: &HeaderMap) -> Option<RateLimitInfo> {
    let number = |name| header(headers, name)?.parse().ok();
    Some(RateLimitInfo {
        count: number("inin-ratelimit-count")?,
        allowed: number("inin-ratelimit-allowed")?,
        reset_secs: number("inin-ratelimit-reset")?,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// Parses a configured base URL.
pub(crate) fn base_url(base: &str) -> Result<Url, ApiError> {
    let url = Url::parse(base).map_err(|e| ApiError::Protocol {
        call: "client setup",
        reason: format!("invalid base URL {base:?}: {e}"),
    })?;
    if url.cannot_be_a_base() {
        return Err(ApiError::Protocol {
            call: "client setup",
            reason: format!("{base:?} cannot be a base URL"),
        });
    }
    Ok(url)
}

/// `base` with `segments` appended, each percent-encoded (an id cannot change the path).
pub(crate) fn join<'a>(base: &Url, segments: impl IntoIterator<Item = &'a &'a str>) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}
