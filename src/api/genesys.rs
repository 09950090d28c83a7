//! The Genesys Cloud client: the schedule read, the week's list, the business unit's week
//! settings, and the publish sequence (upload URL, gzip upload, update), with OAuth, a rate
//! limiter and a timeout on each call.
//!
//! The bodies follow platform-client-sdk-python's `build/docs` models: `BuScheduleListing`
//! (`entities` optional), `BuScheduleListItem` (every field optional),
//! `WfmVersionedEntityMetadata` (`version` required, `dateCreated` "if available"),
//! `BuAsyncScheduleResponse` (`status`, `operationId` and `result` optional),
//! `BusinessUnitResponse` (`settings` optional, present when expanded).

use crate::api::http::{self, Caller, RawAnswer};
use crate::api::limiter::{DEFAULT_REQUESTS_PER_MINUTE, DEFAULT_RETRY_AFTER_CAP, SharedLimiter};
use crate::api::region::Endpoints;
use crate::api::secret::Secret;
use crate::api::token::TokenSource;
use crate::api::upload::gzip_publish_body;
use crate::api::week::{WeekSettings, parse_weekday};
use crate::api::{
    Answer, ApiError, ListedSchedule, PublishAccepted, ScheduleApi, ScheduleRef, ScheduleSnapshot,
};
use crate::effects::clock::Clock;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use reqwest::Url;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How to reach and authenticate to Genesys Cloud.
#[derive(Clone, Debug)]
pub struct GenesysConfig {
    /// The login and API base URLs (see [`Endpoints::for_region`]).
    pub endpoints: Endpoints,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: Secret,
    /// The timeout of each HTTP call.
    pub timeout: Duration,
    /// The client-side rate limit, requests per minute.
    pub requests_per_minute: u32,
    /// The longest `Retry-After` a call waits out; beyond it the call fails (and every
    /// call is still held for it).
    pub retry_after_cap: SignedDuration,
}

impl GenesysConfig {
    /// A configuration with the default timeout (10 s) and rate (300 a minute).
    pub fn new(endpoints: Endpoints, client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self {
            endpoints,
            client_id: client_id.into(),
            client_secret,
            timeout: Duration::from_secs(10),
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
        }
    }
}

/// The Genesys Cloud [`ScheduleApi`].
#[derive(Clone)]
pub struct GenesysClient {
    caller: Caller,
    api_base: Url,
    tokens: Arc<TokenSource>,
}

/// The business-unit settings a week needs, as `expand` names them.
const WEEK_EXPANDS: [&str; 2] = ["settings.startDayOfWeek", "settings.timeZone"];

/// `GET .../schedules/{id}`'s answer, the part we read. `published` is optional in the SDK;
/// absent, the schedule is taken for unpublished (a publish then meets a 409 at worst).
#[derive(serde::Deserialize)]
struct ScheduleBody {
    #[serde(default)]
    published: bool,
    metadata: MetadataBody,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataBody {
    version: i64,
    date_modified: Option<Timestamp>,
    date_created: Option<Timestamp>,
    modified_by: Option<UserRef>,
}

#[derive(serde::Deserialize)]
struct UserRef {
    id: String,
}

#[derive(serde::Deserialize)]
struct ListBody {
    #[serde(default)]
    entities: Vec<ListItemBody>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListItemBody {
    id: Option<String>,
    week_date: Option<Date>,
    week_count: Option<u32>,
    published: Option<bool>,
    metadata: Option<MetadataBody>,
}

impl ListItemBody {
    /// The entity, when it has an id to address it by.
    fn into_listed(self) -> Option<ListedSchedule> {
        let metadata = self.metadata;
        Some(ListedSchedule {
            id: self.id?,
            week: self.week_date,
            week_count: self.week_count,
            published: self.published,
            version: metadata.as_ref().map(|m| m.version),
            created_at: metadata.as_ref().and_then(|m| m.date_created),
            modified_at: metadata.as_ref().and_then(|m| m.date_modified),
        })
    }
}

#[derive(serde::Deserialize)]
struct BusinessUnitBody {
    settings: Option<SettingsBody>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsBody {
    start_day_of_week: String,
    time_zone: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadUrlBody {
    upload_key: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl GenesysClient {
    /// A client with its own rate limiter.
    pub fn new(config: GenesysConfig, clock: Arc<dyn Clock>) -> Result<Self, ApiError> {
        let caller = Caller::new(
            config.timeout,
            config.requests_per_minute,
            config.retry_after_cap,
            clock,
        )?;
        let tokens = TokenSource::new(
            caller.clone(),
            &config.endpoints.login,
            config.client_id,
            config.client_secret,
        );
        Ok(Self {
            caller,
            api_base: http::base_url(&config.endpoints.api)?,
            tokens: Arc::new(tokens),
        })
    }

    /// Uses `limiter` instead of its own: every client of one OAuth client shares one.
    pub fn with_limiter(mut self, limiter: SharedLimiter) -> Self {
        self.caller.limiter = limiter;
        self
    }

    /// The limiter its calls take.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.caller.limiter
    }

    /// The API base with `segments` appended, each escaped.
    pub(crate) fn api_url(&self, segments: &[&str]) -> Url {
        http::join(&self.api_base, segments)
    }

    /// The HTTP client its calls are built on.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.caller.http
    }

    /// `.../businessunits/{bu}/weeks/{week}/schedules` and then `more`, each escaped.
    fn schedules_url(&self, business_unit: &str, week: Date, more: &[&str]) -> Url {
        let week = week.to_string();
        let path = [
            "api",
            "v2",
            "workforcemanagement",
            "businessunits",
            business_unit,
            "weeks",
            &week,
            "schedules",
        ];
        http::join(&self.api_base, path.iter().chain(more))
    }

    fn schedule_url(&self, schedule: &ScheduleRef, more: &[&str]) -> Url {
        let path: Vec<&str> = std::iter::once(schedule.schedule_id.as_str())
            .chain(more.iter().copied())
            .collect();
        self.schedules_url(&schedule.business_unit, schedule.week, &path)
    }

    /// One API call: waits for the limiter, sends with the token, and on a 401 renews the
    /// token and tries once more. The answer's rate-limit headers tighten the limiter.
    pub(crate) async fn call(
        &self,
        name: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<RawAnswer, ApiError> {
        let with = |token: &Secret| request().bearer_auth(token.expose());
        let token = self.tokens.bearer().await?;
        let answer = self.caller.limited(name, with(&token)).await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let fresh = self.tokens.renew(&token).await?;
        let answer = self.caller.limited(name, with(&fresh)).await?;
        if answer.status == 401 {
            return Err(ApiError::Auth(format!(
                "{name}: the API refused a freshly issued token"
            )));
        }
        Ok(answer)
    }

    /// The gzip `PUT` to the upload URL: storage, not the API, so no token and no limiter.
    async fn upload(
        &self,
        ticket: &UploadUrlBody,
        body: Vec<u8>,
        idempotency_key: &str,
    ) -> Result<RawAnswer, ApiError> {
        let mut request = self
            .caller
            .http
            .put(&ticket.url)
            .header("Idempotency-Key", format!("{idempotency_key}:upload"))
            .body(body);
        for (name, value) in &ticket.headers {
            request = request.header(name, value);
        }
        self.caller.unlimited("upload", request).await
    }
}

impl std::fmt::Debug for GenesysClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenesysClient")
            .field("api_base", &self.api_base.as_str())
            .field("timeout", &self.caller.timeout)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl ScheduleApi for GenesysClient {
    async fn read(&self, schedule: &ScheduleRef) -> Result<Answer<ScheduleSnapshot>, ApiError> {
        let url = self.schedule_url(schedule, &[]);
        let answer = self
            .call("read", || self.caller.http.get(url.clone()))
            .await?;
        let mut read = answer.into_answer("read", |body| {
            let s: ScheduleBody = http::json(body)?;
            Ok(ScheduleSnapshot {
                published: s.published,
                version: s.metadata.version,
                modified_at: s.metadata.date_modified,
                modified_by: s.metadata.modified_by.map(|u| u.id),
                publishing: false,
                other_published: None,
            })
        })?;
        if let Some(snapshot) = read.body.as_mut() {
            snapshot.other_published = self.other_published(schedule).await;
        }
        Ok(read)
    }

    async fn publish(
        &self,
        schedule: &ScheduleRef,
        version: i64,
        idempotency_key: &str,
    ) -> Result<Answer<PublishAccepted>, ApiError> {
        let body = gzip_publish_body(version).map_err(|e| ApiError::Protocol {
            call: "publish",
            reason: format!("could not gzip the upload: {e}"),
        })?;
        let declared = serde_json::json!({"contentLengthBytes": body.len()});
        let ticket_url = self.schedule_url(schedule, &["update", "uploadurl"]);
        let ticket = self
            .call("uploadurl", || {
                self.caller
                    .http
                    .post(ticket_url.clone())
                    .header("Idempotency-Key", format!("{idempotency_key}:uploadurl"))
                    .json(&declared)
            })
            .await?;
        if !ticket.is_success() {
            return Ok(ticket.without_body());
        }
        let ticket: UploadUrlBody =
            http::json(&ticket.body).map_err(|reason| ApiError::Protocol {
                call: "uploadurl",
                reason,
            })?;
        let uploaded = self.upload(&ticket, body, idempotency_key).await?;
        if !uploaded.is_success() {
            return Ok(uploaded.without_body());
        }
        let update_url = self.schedule_url(schedule, &["update"]);
        let update = serde_json::json!({"uploadKey": ticket.upload_key});
        let answer = self
            .call("update", || {
                self.caller
                    .http
                    .post(update_url.clone())
                    .header("Idempotency-Key", format!("{idempotency_key}:update"))
                    .json(&update)
            })
            .await?;
        answer.into_answer("update", http::accepted)
    }

    async fn list_week(
        &self,
        business_unit: &str,
        week: Date,
    ) -> Result<Answer<Vec<ListedSchedule>>, ApiError> {
        let url = self.schedules_url(business_unit, week, &[]);
        let answer = self
            .call("list_week", || self.caller.http.get(url.clone()))
            .await?;
        answer.into_answer("list_week", |body| {
            let list: ListBody = http::json(body)?;
            Ok(list
                .entities
                .into_iter()
                .filter_map(ListItemBody::into_listed)
                .collect())
        })
    }

    async fn week_settings(&self, business_unit: &str) -> Result<Answer<WeekSettings>, ApiError> {
        let path = ["api", "v2", "workforcemanagement", "businessunits"];
        let url = http::join(&self.api_base, path.iter().chain([&business_unit]));
        let expand: Vec<(&str, &str)> = WEEK_EXPANDS.iter().map(|e| ("expand", *e)).collect();
        let answer = self
            .call("week_settings", || {
                self.caller.http.get(url.clone()).query(&expand)
            })
            .await?;
        answer.into_answer("week_settings", |body| {
            let unit: BusinessUnitBody = http::json(body)?;
            let settings = unit
                .settings
                .ok_or("the business unit came without its settings")?;
            let start_day =
                parse_weekday(&settings.start_day_of_week).map_err(|e| e.to_string())?;
            let time_zone = jiff::tz::TimeZone::get(&settings.time_zone)
                .map_err(|e| format!("settings.timeZone {:?}: {e}", settings.time_zone))?;
            Ok(WeekSettings {
                start_day,
                time_zone: Some(time_zone),
            })
        })
    }
}

impl GenesysClient {
    /// Whether the week's list shows another published schedule covering `schedule`'s week;
    /// `None` when the list cannot be had.
    async fn other_published(&self, schedule: &ScheduleRef) -> Option<bool> {
        let listed = self
            .list_week(&schedule.business_unit, schedule.week)
            .await
            .ok()?;
        let entities = listed.body?;
        Some(entities.iter().any(|e| {
            e.id != schedule.schedule_id
                && e.published == Some(true)
                && e.covers(schedule.week, schedule.week)
        }))
    }
}
