//! The schedule API the runner drives, behind one small trait, and its backends.
//!
//! Everything vendor-specific (Genesys Cloud's upload-and-update flow, a site's own REST
//! gateway) stays behind [`ScheduleApi`]; the runner only reads a schedule and publishes it.

#[cfg(feature = "relay")]
pub mod double;
#[cfg(feature = "genesys")]
pub mod genesys;
#[cfg(feature = "genesys")]
pub(crate) mod http;
pub mod limiter;
pub mod model;
pub mod notify;
pub mod region;
#[cfg(feature = "genesys")]
pub mod rest;
pub mod secret;
#[cfg(feature = "genesys")]
pub(crate) mod token;
pub mod upload;
pub mod week;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use week::WeekSettings;

/// Which schedule: Genesys addresses a schedule by business unit, week and id.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ScheduleRef {
    /// The business unit id.
    pub business_unit: String,
    /// The first day of the schedule's week.
    pub week: Date,
    /// The schedule id.
    pub schedule_id: String,
}

/// What a read of the schedule shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleSnapshot {
    /// The API's `published` flag.
    pub published: bool,
    /// `metadata.version`.
    pub version: i64,
    /// `metadata.dateModified`.
    pub modified_at: Option<Timestamp>,
    /// `metadata.modifiedBy`.
    pub modified_by: Option<String>,
    /// A publish is known to be running: a REST gateway that reports `publishing` says so;
    /// Genesys' schedule read cannot tell, so its client always answers `false`.
    pub publishing: bool,
    /// Another schedule covering this week is published (Genesys: from the week's list);
    /// `None` when the backend cannot say.
    pub other_published: Option<bool>,
}

/// One entity of a week's list (`BuScheduleListItem`; every field but the id is optional
/// in the SDK, platform-client-sdk-python `build/docs/BuScheduleListItem.md`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListedSchedule {
    /// The schedule id.
    pub id: String,
    /// `weekDate`: the week it starts in.
    pub week: Option<Date>,
    /// `weekCount`: how many weeks it spans.
    pub week_count: Option<u32>,
    /// `published`.
    pub published: Option<bool>,
    /// `metadata.version`.
    pub version: Option<i64>,
    /// `metadata.dateCreated`, where the service gives it.
    pub created_at: Option<Timestamp>,
    /// `metadata.dateModified`.
    pub modified_at: Option<Timestamp>,
}

impl ListedSchedule {
    /// A listed id and nothing more (a gateway that lists ids).
    pub fn id_only(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            week: None,
            week_count: None,
            published: None,
            version: None,
            created_at: None,
            modified_at: None,
        }
    }

    /// The week it starts in: its `weekDate`, or the week it was listed for.
    pub fn starts(&self, listed_for: Date) -> Date {
        self.week.unwrap_or(listed_for)
    }

    /// Whether it spans `week` (from its start, `weekCount` weeks, one when not given).
    pub fn covers(&self, week: Date, listed_for: Date) -> bool {
        let start = self.starts(listed_for);
        let weeks = i64::from(self.week_count.unwrap_or(1).max(1));
        let end = start.checked_add(jiff::Span::new().days(7 * weeks)).ok();
        start <= week && end.is_none_or(|end| week < end)
    }
}

/// The status of an asynchronous update operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OperationStatus {
    /// Still running.
    Processing,
    /// Finished; the schedule is published.
    Complete,
    /// Cancelled by the service.
    Canceled,
    /// Failed.
    Error,
}

/// What the update call answered when it was accepted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishAccepted {
    /// The operation's status as first reported.
    pub status: OperationStatus,
    /// The operation's id (optional in the SDK's `BuAsyncScheduleResponse`: an update that
    /// completes at once may come without one).
    pub operation_id: Option<String>,
}

/// The rate-limit headers Genesys sends on every answer (`inin-ratelimit-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateLimitInfo {
    /// Requests counted in the current period.
    pub count: u32,
    /// Requests allowed in the period.
    pub allowed: u32,
    /// Seconds until the period resets.
    pub reset_secs: u32,
}

/// An HTTP answer: its status and the headers the runner acts on, and the body when it
/// was a success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<T> {
    /// The HTTP status (the last one of a multi-call sequence).
    pub status: u16,
    /// `Retry-After`, when given.
    pub retry_after: Option<SignedDuration>,
    /// `inin-ratelimit-*`, when given.
    pub rate_limit: Option<RateLimitInfo>,
    /// The decoded body of a 2xx answer; `None` otherwise.
    pub body: Option<T>,
    /// How long the client-side rate limiter held the call before it went.
    pub waited: SignedDuration,
}

/// Why a call produced no HTTP answer at all.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The call took longer than its timeout.
    #[error("{call} timed out after {after:?}")]
    Timeout {
        /// Which call.
        call: &'static str,
        /// The timeout that ran out.
        after: std::time::Duration,
    },
    /// The connection failed or dropped.
    #[error("{call} failed: {reason}")]
    Transport {
        /// Which call.
        call: &'static str,
        /// What went wrong (never contains a secret).
        reason: String,
    },
    /// A 429's `Retry-After` is beyond what a call waits out (a daily limit, not a burst);
    /// every call is held for it all the same.
    #[error("{call}: retry after {after:#}: daily limit?")]
    RetryAfterTooLong {
        /// Which call.
        call: &'static str,
        /// The server's `Retry-After`.
        after: SignedDuration,
    },
    /// Authentication failed (bad client id or secret, or a token refused twice).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The answer could not be understood.
    #[error("{call} answered something unexpected: {reason}")]
    Protocol {
        /// Which call.
        call: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// The two operations a publish policy needs, plus finding a week's schedules.
///
/// `publish` performs the whole write (for Genesys: uploadurl, the gzip PUT, update) and
/// answers with the update call's status; following a `Processing` operation to its end is
/// the runner's job (it reads the schedule again under the policy's backoff).
#[allow(async_fn_in_trait)]
pub trait ScheduleApi {
    /// Read the schedule's publish state.
    async fn read(&self, schedule: &ScheduleRef) -> Result<Answer<ScheduleSnapshot>, ApiError>;

    /// Publish the schedule at `version`, sending `idempotency_key` with every write.
    async fn publish(
        &self,
        schedule: &ScheduleRef,
        version: i64,
        idempotency_key: &str,
    ) -> Result<Answer<PublishAccepted>, ApiError>;

    /// The schedules the API lists for a week, in no particular order; they may include
    /// multi-week schedules that started earlier.
    async fn list_week(
        &self,
        business_unit: &str,
        week: Date,
    ) -> Result<Answer<Vec<ListedSchedule>>, ApiError>;

    /// When the business unit's weeks start.
    async fn week_settings(&self, business_unit: &str) -> Result<Answer<WeekSettings>, ApiError>;
}

/// A borrowed client is a client: the relay keeps one across its worker's restarts.
impl<A: ScheduleApi + ?Sized> ScheduleApi for &A {
    async fn read(&self, schedule: &ScheduleRef) -> Result<Answer<ScheduleSnapshot>, ApiError> {
        (**self).read(schedule).await
    }

    async fn publish(
        &self,
        schedule: &ScheduleRef,
        version: i64,
        idempotency_key: &str,
    ) -> Result<Answer<PublishAccepted>, ApiError> {
        (**self).publish(schedule, version, idempotency_key).await
    }

    async fn list_week(
        &self,
        business_unit: &str,
        week: Date,
    ) -> Result<Answer<Vec<ListedSchedule>>, ApiError> {
        (**self).list_week(business_unit, week).await
    }

    async fn week_settings(&self, business_unit: &str) -> Result<Answer<WeekSettings>, ApiError> {
        (**self).week_settings(business_unit).await
    }
}
