//! The plain REST backend: a site's own gateway in front of the API, with configurable
//! paths for a status read (`{"state": "draft"|"publishing"|"published", "version": n}`)
//! and a publish call.
//!
//! Path templates name the schedule with `{businessUnitId}`, `{weekDate}` and
//! `{scheduleId}`; each value is percent-encoded into its path segment.

use crate::api::http::{self, Caller, RawAnswer};
use crate::api::limiter::{DEFAULT_REQUESTS_PER_MINUTE, DEFAULT_RETRY_AFTER_CAP, SharedLimiter};
use crate::api::model::PublishState;
use crate::api::secret::Secret;
use crate::api::week::WeekSettings;
use crate::api::{
    Answer, ApiError, ListedSchedule, PublishAccepted, ScheduleApi, ScheduleRef, ScheduleSnapshot,
};
use crate::effects::clock::Clock;
use jiff::SignedDuration;
use jiff::civil::Date;
use reqwest::Url;
use std::sync::Arc;
use std::time::Duration;

/// The placeholders a path template may use.
const PLACEHOLDERS: [&str; 3] = ["{businessUnitId}", "{weekDate}", "{scheduleId}"];

/// How to reach the gateway.
#[derive(Clone, Debug)]
pub struct RestConfig {
    /// The gateway's base URL.
    pub base_url: String,
    /// The status read's path template.
    pub status_path: String,
    /// The publish call's path template.
    pub publish_path: String,
    /// The week's list path template (answering a JSON array of ids), if the gateway has one.
    pub list_path: Option<String>,
    /// A bearer token to send, if the gateway wants one.
    pub bearer_token: Option<Secret>,
    /// The timeout of each call.
    pub timeout: Duration,
    /// The client-side rate limit, requests per minute.
    pub requests_per_minute: u32,
    /// The longest `Retry-After` a call waits out; beyond it the call fails (and every
    /// call is still held for it).
    pub retry_after_cap: SignedDuration,
}

impl RestConfig {
    /// The forum-described gateway's paths under `base_url`, with the default timeout
    /// (10 s) and rate (300 a minute).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            status_path: "/gateway/schedules/{scheduleId}/status".into(),
            publish_path: "/gateway/schedules/{scheduleId}/publish".into(),
            list_path: Some(
                "/gateway/businessunits/{businessUnitId}/weeks/{weekDate}/schedules".into(),
            ),
            bearer_token: None,
            timeout: Duration::from_secs(10),
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
        }
    }
}

/// A path template, split into segments and checked once.
#[derive(Clone, Debug)]
struct PathTemplate(Vec<String>);

impl PathTemplate {
    fn parse(template: &str) -> Result<Self, ApiError> {
        let mut rest = template.to_owned();
        for placeholder in PLACEHOLDERS {
            rest = rest.replace(placeholder, "");
        }
        if rest.contains(['{', '}']) {
            return Err(ApiError::Protocol {
                call: "client setup",
                reason: format!(
                    "path template {template:?} uses an unknown placeholder; known: {}",
                    PLACEHOLDERS.join(", ")
                ),
            });
        }
        let segments = template
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self(segments))
    }

    /// The URL under `base`, the placeholders filled with `values` in [`PLACEHOLDERS`] order.
    fn url(&self, base: &Url, values: [&str; 3]) -> Url {
        let segments: Vec<String> = self
            .0
            .iter()
            .map(|segment| {
                PLACEHOLDERS
                    .iter()
                    .zip(values)
                    .fold(segment.clone(), |s, (p, v)| s.replace(p, v))
            })
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        http::join(base, &segments)
    }
}

/// The gateway's status answer.
#[derive(serde::Deserialize)]
struct StatusBody {
    state: PublishState,
    version: i64,
}

/// The REST gateway [`ScheduleApi`].
#[derive(Clone)]
pub struct RestClient {
    caller: Caller,
    base: Url,
    status: PathTemplate,
    publish: PathTemplate,
    list: Option<PathTemplate>,
    bearer_token: Option<Secret>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base.as_str())
            .field("bearer_token", &self.bearer_token)
            .field("timeout", &self.caller.timeout)
            .finish_non_exhaustive()
    }
}

impl RestClient {
    /// A client for the gateway `config` describes, with its own rate limiter.
    pub fn new(config: RestConfig, clock: Arc<dyn Clock>) -> Result<Self, ApiError> {
        Ok(Self {
            caller: Caller::new(
                config.timeout,
                config.requests_per_minute,
                config.retry_after_cap,
                clock,
            )?,
            base: http::base_url(&config.base_url)?,
            status: PathTemplate::parse(&config.status_path)?,
            publish: PathTemplate::parse(&config.publish_path)?,
            list: config
                .list_path
                .as_deref()
                .map(PathTemplate::parse)
                .transpose()?,
            bearer_token: config.bearer_token,
        })
    }

    /// Uses `limiter` instead of its own.
    pub fn with_limiter(mut self, limiter: SharedLimiter) -> Self {
        self.caller.limiter = limiter;
        self
    }

    /// The limiter its calls take.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.caller.limiter
    }

    async fn call(
        &self,
        name: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<RawAnswer, ApiError> {
        let request = match &self.bearer_token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        };
        self.caller.limited(name, request).await
    }
}

fn values<'a>(schedule: &'a ScheduleRef, week: &'a str) -> [&'a str; 3] {
    [&schedule.business_unit, week, &schedule.schedule_id]
}

impl ScheduleApi for RestClient {
    async fn read(&self, schedule: &ScheduleRef) -> Result<Answer<ScheduleSnapshot>, ApiError> {
        let week = schedule.week.to_string();
        let url = self.status.url(&self.base, values(schedule, &week));
        let answer = self.call("read", self.caller.http.get(url)).await?;
        answer.into_answer("read", |body| {
            let status: StatusBody = http::json(body)?;
            Ok(ScheduleSnapshot {
                published: status.state == PublishState::Published,
                version: status.version,
                modified_at: None,
                modified_by: None,
                publishing: status.state == PublishState::Publishing,
                other_published: None,
            })
        })
    }

    async fn publish(
        &self,
        schedule: &ScheduleRef,
        version: i64,
        idempotency_key: &str,
    ) -> Result<Answer<PublishAccepted>, ApiError> {
        let week = schedule.week.to_string();
        let url = self.publish.url(&self.base, values(schedule, &week));
        let request = self
            .caller
            .http
            .post(url)
            .header("Idempotency-Key", format!("{idempotency_key}:publish"))
            .json(&serde_json::json!({"version": version}));
        let answer = self.call("publish", request).await?;
        answer.into_answer("publish", http::accepted)
    }

    async fn list_week(
        &self,
        business_unit: &str,
        week: Date,
    ) -> Result<Answer<Vec<ListedSchedule>>, ApiError> {
        let Some(list) = &self.list else {
            return Err(ApiError::Protocol {
                call: "list_week",
                reason: "the REST gateway has no list path configured".into(),
            });
        };
        let week_date = week;
        let week = week.to_string();
        let url = list.url(&self.base, [business_unit, &week, ""]);
        let answer = self.call("list_week", self.caller.http.get(url)).await?;
        answer.into_answer("list_week", |body| {
            // A gateway lists ids only: each starts in the week asked for, and nothing
            // tells them apart, so `latest` picks one only when one is listed.
            let ids: Vec<String> = http::json(body)?;
            Ok(ids
                .into_iter()
                .map(|id| ListedSchedule {
                    week: Some(week_date),
                    ..ListedSchedule::id_only(id)
                })
                .collect())
        })
    }

    /// A gateway has no business-unit settings: weeks start on Monday in the policy's zone.
    async fn week_settings(&self, _business_unit: &str) -> Result<Answer<WeekSettings>, ApiError> {
        Ok(Answer {
            status: 200,
            retry_after: None,
            rate_limit: None,
            body: Some(WeekSettings::MONDAY_IN_POLICY_ZONE),
            waited: jiff::SignedDuration::ZERO,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_fills_and_escapes_each_placeholder() {
        let base = Url::parse("https://gw.example/root/").ok();
        let template = PathTemplate::parse("/v1/{businessUnitId}/w/{weekDate}/s/{scheduleId}.json");
        let url = base
            .zip(template.ok())
            .map(|(b, t)| t.url(&b, ["bu 1", "2026-03-02", "a/b"]).to_string());
        assert_eq!(
            url.as_deref(),
            Some("https://gw.example/root/v1/bu%201/w/2026-03-02/s/a%2Fb.json")
        );
    }

    #[test]
    fn an_unknown_placeholder_is_a_setup_error() {
        let err = PathTemplate::parse("/s/{id}/status")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("{id}") && m.contains("{scheduleId}")));
    }
}
