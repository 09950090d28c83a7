//! One pure model of Genesys Cloud's schedule state machine and its rate limit.
//!
//! Every call takes the instant it happens at; nothing here reads a clock, sleeps or does
//! I/O, so the simulator drives it directly on a virtual clock and the HTTP double wraps it
//! in routes. A publish is settled lazily: a schedule whose operation has run its course is
//! published the first time anything looks at the service afterwards.
//!
//! As Genesys documents it: a business unit's weeks start on its own day in its own zone
//! (`BusinessUnitSettingsResponse`); a schedule spans `weekCount` weeks from its `weekDate`
//! (`BuScheduleListItem`); a week's list (`BuScheduleListing`) has no order and includes the
//! multi-week schedules that started earlier; and publishing one schedule un-publishes any
//! other of the business unit that covers one of its weeks.

use crate::api::notify::event::{ScheduleEventType, ScheduleNotification};
use crate::api::upload::gzip_publish_body;
use crate::api::week::WeekSettings;
use crate::api::{
    Answer, ListedSchedule, OperationStatus, PublishAccepted, RateLimitInfo, ScheduleRef,
    ScheduleSnapshot,
};
use flate2::read::GzDecoder;
use jiff::civil::{Date, Weekday};
use jiff::{SignedDuration, Timestamp};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// What Genesys says when a publish meets a published schedule or a running publish.
pub const MSG_ALREADY_PUBLISHING: &str = "Schedule cannot be published because it is already in a published state or a publish operation is currently in progress";
/// What Genesys says when the uploaded version is not the stored one.
pub const MSG_VERSION_MISMATCH: &str =
    "The version number of the modified resource must match the version number in the database";
/// The error code of a throttled call.
pub const CODE_TOO_MANY_REQUESTS: &str = "too.many.requests.retry.after";
/// The headers an upload URL requires (as the storage service's signature covers them).
pub const UPLOAD_HEADERS: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("Content-Encoding", "gzip"),
];
/// The length of the fixed rate-limit window.
const RATE_WINDOW: SignedDuration = SignedDuration::from_secs(60);
/// An upload is decompressed at most this far: uploads are tiny, and a bomb must not hurt.
const MAX_UPLOAD_JSON: u64 = 1 << 20;

/// How the modelled service behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// How long an accepted publish stays `Processing`; zero completes it at once.
    pub processing_time: SignedDuration,
    /// API requests allowed per client per minute (Genesys' default is 300).
    pub requests_per_minute: u32,
    /// The week of a business unit given no settings of its own.
    pub default_week: WeekSettings,
    /// Seeds the order a week's list comes in (a fresh shuffle each call).
    pub list_seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            processing_time: SignedDuration::from_secs(30),
            requests_per_minute: 300,
            // Monday in London: the shipped policy's zone.
            default_week: WeekSettings {
                start_day: Weekday::Monday,
                time_zone: jiff::tz::TimeZone::get("Europe/London").ok(),
            },
            list_seed: 0,
        }
    }
}

/// How the modelled service sends schedule notifications (when it sends them at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// How long after the change an event is delivered.
    pub delay: SignedDuration,
    /// Events lost, per thousand (chosen by the event's serial, so runs repeat).
    pub loss_per_mille: u16,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            delay: SignedDuration::from_millis(200),
            loss_per_mille: 0,
        }
    }
}

/// The notifications due at an instant, and whether the channel is down then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyDue {
    /// Events to deliver, oldest first.
    pub events: Vec<ScheduleNotification>,
    /// The channel is dropped: nothing is delivered (the events due meanwhile are lost).
    pub down: bool,
}

/// A schedule's state as a gateway reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishState {
    /// Not published, nothing running.
    Draft,
    /// A publish operation is running.
    Publishing,
    /// Published.
    Published,
}

/// Why the service refused a call: each maps to an HTTP status and a Genesys error body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 404: no such schedule, upload or operation.
    #[error("{0}")]
    NotFound(String),
    /// 400: the request or the upload is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 409: published already, or a publish is running.
    #[error("{MSG_ALREADY_PUBLISHING}")]
    AlreadyPublishing,
    /// 409: the uploaded version is stale.
    #[error("{MSG_VERSION_MISMATCH}")]
    VersionMismatch,
    /// 429: past the client's requests per minute.
    #[error("Rate limit exceeded the maximum. Retry the request in [{retry_after_secs}] seconds")]
    TooManyRequests {
        /// Seconds until the window resets (the `Retry-After` value).
        retry_after_secs: u32,
    },
}

impl Refusal {
    /// The HTTP status this refusal answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotFound(_) => 404,
            Refusal::BadRequest(_) => 400,
            Refusal::AlreadyPublishing | Refusal::VersionMismatch => 409,
            Refusal::TooManyRequests { .. } => 429,
        }
    }

    /// The Genesys error code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound(_) => "not.found",
            Refusal::BadRequest(_) => "bad.request",
            Refusal::AlreadyPublishing => "conflict",
            Refusal::VersionMismatch => "version.mismatch",
            Refusal::TooManyRequests { .. } => CODE_TOO_MANY_REQUESTS,
        }
    }

    /// The error body Genesys sends: `{"message", "code", "status"}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "message": self.to_string(),
            "code": self.code(),
            "status": self.status(),
        })
    }
}

/// The model's answer to an API call: the rate-limit state it carries, and the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply<T> {
    /// What `inin-ratelimit-*` reports after this call.
    pub rate_limit: RateLimitInfo,
    /// The result, or why it was refused.
    pub outcome: Result<T, Refusal>,
}

impl<T> Reply<T> {
    /// The answer a live client would give the runner: the body, or the refusal's status
    /// (and `Retry-After`), with the rate-limit headers.
    pub fn into_answer<U>(self, body: impl FnOnce(T) -> U) -> Answer<U> {
        match self.outcome {
            Ok(value) => Answer {
                status: 200,
                retry_after: None,
                rate_limit: Some(self.rate_limit),
                body: Some(body(value)),
                waited: SignedDuration::ZERO,
            },
            Err(refusal) => refusal.into_answer(Some(self.rate_limit)),
        }
    }
}

impl Refusal {
    /// The answer a live client gives for this refusal.
    pub fn into_answer<U>(self, rate_limit: Option<RateLimitInfo>) -> Answer<U> {
        let retry_after = match self {
            Refusal::TooManyRequests { retry_after_secs } => {
                Some(SignedDuration::from_secs(i64::from(retry_after_secs)))
            }
            _ => None,
        };
        Answer {
            status: self.status(),
            retry_after,
            rate_limit,
            body: None,
            waited: SignedDuration::ZERO,
        }
    }
}

/// A call refused by the rate limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// What `inin-ratelimit-*` reports.
    pub rate_limit: RateLimitInfo,
    /// Always [`Refusal::TooManyRequests`].
    pub refusal: Refusal,
}

/// A schedule as a read shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleView {
    /// Which schedule.
    pub schedule: ScheduleRef,
    /// Its state.
    pub snapshot: ScheduleSnapshot,
    /// Its state as a gateway reports it.
    pub state: PublishState,
    /// As the week's list shows it.
    pub listed: ListedSchedule,
}

/// Where and how to upload a change (`update/uploadurl`'s answer, less the URL the double
/// builds from the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadTicket {
    /// The key to name in `update`.
    pub upload_key: String,
    /// Headers the upload must carry.
    pub headers: Vec<(&'static str, &'static str)>,
}

/// An accepted publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Its id.
    pub operation_id: String,
    /// `Processing`, or `Complete` when the model publishes at once.
    pub status: OperationStatus,
}

/// The uploaded change: the part of a schedule body the model acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
struct Change {
    published: bool,
    metadata: ChangeMetadata,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
struct ChangeMetadata {
    version: i64,
}

/// An upload slot: what was declared, and what arrived.
#[derive(Clone, Debug)]
struct Upload {
    schedule: ScheduleRef,
    declared_len: u64,
    change: Option<Change>,
}

/// A running publish.
#[derive(Clone, Debug)]
struct Pending {
    done_at: Timestamp,
    published: bool,
    by: String,
    /// How the operation ends: `Complete`, or `Error`/`Canceled` (nothing changes).
    ends: OperationStatus,
}

/// One stored schedule.
#[derive(Clone, Debug)]
struct Record {
    week_count: u32,
    published: bool,
    version: i64,
    created_at: Timestamp,
    modified_at: Timestamp,
    modified_by: String,
    pending: Option<Pending>,
    /// The next operation on this schedule ends so (a fault armed by a test or scenario).
    next_ends: Option<OperationStatus>,
}

impl Record {
    /// Applies a publish whose time has come; whether it published. An operation that
    /// ends `Error` or `Canceled` changes nothing.
    fn settle(&mut self, now: Timestamp) -> bool {
        let Some(pending) = self.pending.take_if(|p| p.done_at <= now) else {
            return false;
        };
        if pending.ends != OperationStatus::Complete {
            return false;
        }
        self.published = pending.published;
        self.version += 1;
        self.modified_at = pending.done_at;
        self.modified_by = pending.by;
        self.published
    }

    fn state(&self) -> PublishState {
        match (&self.pending, self.published) {
            (Some(_), _) => PublishState::Publishing,
            (None, true) => PublishState::Published,
            (None, false) => PublishState::Draft,
        }
    }

    fn snapshot(&self) -> ScheduleSnapshot {
        ScheduleSnapshot {
            published: self.published,
            version: self.version,
            modified_at: Some(self.modified_at),
            modified_by: Some(self.modified_by.clone()),
            publishing: self.pending.is_some(),
            other_published: None,
        }
    }

    fn listed(&self, schedule: &ScheduleRef) -> ListedSchedule {
        ListedSchedule {
            id: schedule.schedule_id.clone(),
            week: Some(schedule.week),
            week_count: Some(self.week_count),
            published: Some(self.published),
            version: Some(self.version),
            created_at: Some(self.created_at),
            modified_at: Some(self.modified_at),
        }
    }
}

/// One client's fixed rate-limit window.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Timestamp,
    count: u32,
}

/// The modelled service: schedules, uploads, running publishes, rate-limit windows.
#[derive(Clone, Debug, Default)]
pub struct Model {
    config: ModelConfig,
    schedules: HashMap<ScheduleRef, Record>,
    by_id: HashMap<String, ScheduleRef>,
    /// The schedules covering each (business unit, week), in creation order.
    by_week: HashMap<(String, Date), Vec<ScheduleRef>>,
    /// Business units' own week settings.
    units: HashMap<String, WeekSettings>,
    /// Schedules with a publish running.
    running: Vec<ScheduleRef>,
    uploads: HashMap<String, Upload>,
    windows: HashMap<String, Window>,
    issued: u64,
    notify: Option<NotifyConfig>,
    /// Events by (delivery instant, serial): equal instants in the order they were queued.
    outbox: BTreeMap<(Timestamp, u64), ScheduleNotification>,
    notify_down_until: Option<Timestamp>,
    events_queued: u64,
    lists: u64,
}

impl Model {
    /// An empty service.
    pub fn new(config: ModelConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The behaviour in force.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Changes the behaviour from now on (running publishes keep their end).
    pub fn set_config(&mut self, config: ModelConfig) {
        self.config = config;
    }

    /// Creates (or replaces) a one-week schedule, as the scheduling team would.
    pub fn insert(
        &mut self,
        schedule: ScheduleRef,
        published: bool,
        version: i64,
        now: Timestamp,
        by: &str,
    ) {
        // A schedule takes a serial as uploads and operations do: ids stay as they were.
        self.next_serial();
        self.unindex(&schedule);
        self.running.retain(|s| *s != schedule);
        self.by_id
            .insert(schedule.schedule_id.clone(), schedule.clone());
        self.schedules.insert(
            schedule.clone(),
            Record {
                week_count: 1,
                published,
                version,
                created_at: now,
                modified_at: now,
                modified_by: by.to_owned(),
                pending: None,
                next_ends: None,
            },
        );
        self.index(&schedule);
    }

    /// Makes a schedule span `weeks` weeks from its `weekDate` (`weekCount`).
    pub fn set_week_count(&mut self, schedule: &ScheduleRef, weeks: u32) -> Result<(), Refusal> {
        if !self.schedules.contains_key(schedule) {
            return Err(not_found(schedule));
        }
        self.unindex(schedule);
        if let Some(record) = self.schedules.get_mut(schedule) {
            record.week_count = weeks.max(1);
        }
        self.index(schedule);
        Ok(())
    }

    /// Gives a business unit its own start day and time zone.
    pub fn set_week_settings(&mut self, business_unit: &str, settings: WeekSettings) {
        self.units.insert(business_unit.to_owned(), settings);
    }

    /// The schedule with this id, whatever its business unit and week.
    pub fn find(&self, schedule_id: &str) -> Option<&ScheduleRef> {
        self.by_id.get(schedule_id)
    }

    /// Looks at a schedule without counting a call (for tests and the simulator's report).
    pub fn peek(&mut self, schedule: &ScheduleRef, now: Timestamp) -> Option<ScheduleView> {
        self.settle(now);
        self.view(schedule).ok()
    }

    /// A person edits the schedule: a new draft at the next version.
    pub fn person_edit(
        &mut self,
        schedule: &ScheduleRef,
        now: Timestamp,
        by: &str,
    ) -> Result<ScheduleSnapshot, Refusal> {
        let record = self.record(schedule, now)?;
        if record.pending.is_some() {
            return Err(Refusal::AlreadyPublishing);
        }
        record.published = false;
        record.version += 1;
        record.modified_at = now;
        record.modified_by = by.to_owned();
        let snapshot = record.snapshot();
        self.notify(
            now,
            schedule,
            OperationStatus::Complete,
            None,
            snapshot.clone(),
        );
        Ok(snapshot)
    }

    /// A person presses "publish" in the UI.
    pub fn person_publish(
        &mut self,
        schedule: &ScheduleRef,
        now: Timestamp,
        by: &str,
    ) -> Result<Operation, Refusal> {
        let version = self.record(schedule, now)?.version;
        self.start_publish(schedule, now, version, true, by)
    }

    /// `GET .../schedules/{id}`.
    pub fn get(
        &mut self,
        client: &str,
        now: Timestamp,
        schedule: &ScheduleRef,
    ) -> Reply<ScheduleView> {
        self.admitted(client, now, |model| {
            model.settle(now);
            model.view(schedule)
        })
    }

    /// `GET .../weeks/{week}/schedules`: every schedule covering the week, including those
    /// that started in earlier weeks, in a fresh order each call.
    pub fn list_week(
        &mut self,
        client: &str,
        now: Timestamp,
        business_unit: &str,
        week: Date,
    ) -> Reply<Vec<ScheduleView>> {
        self.admitted(client, now, |model| {
            model.settle(now);
            let key = (business_unit.to_owned(), week);
            let covering = model.by_week.get(&key).cloned().unwrap_or_default();
            let mut views = covering
                .iter()
                .map(|s| model.view(s))
                .collect::<Result<Vec<_>, _>>()?;
            model.lists += 1;
            let mut rng = ChaCha8Rng::seed_from_u64(model.config.list_seed ^ model.lists);
            views.shuffle(&mut rng);
            Ok(views)
        })
    }

    /// `GET /api/v2/workforcemanagement/businessunits/{bu}` with its week settings: a unit
    /// the model knows of (it has settings or schedules) answers; any other is not found.
    pub fn business_unit(
        &mut self,
        client: &str,
        now: Timestamp,
        business_unit: &str,
    ) -> Reply<WeekSettings> {
        self.admitted(client, now, |model| {
            if let Some(settings) = model.units.get(business_unit) {
                return Ok(settings.clone());
            }
            let known = model.by_week.keys().any(|(bu, _)| bu == business_unit);
            if known {
                Ok(model.config.default_week.clone())
            } else {
                Err(Refusal::NotFound(format!(
                    "business unit {business_unit} not found"
                )))
            }
        })
    }

    /// What the Genesys client's publish does, in one call: `uploadurl`, the gzip upload of
    /// `{"published": true, "metadata": {"version": version}}`, `update`.
    pub fn client_publish(
        &mut self,
        client: &str,
        now: Timestamp,
        schedule: &ScheduleRef,
        version: i64,
    ) -> std::io::Result<Answer<PublishAccepted>> {
        let body = gzip_publish_body(version)?;
        let ticket = self.upload_url(client, now, schedule, body.len() as u64);
        let key = match ticket.outcome {
            Ok(t) => t.upload_key,
            Err(refusal) => return Ok(refusal.into_answer(Some(ticket.rate_limit))),
        };
        if let Err(refusal) = self.upload(&key, &body) {
            return Ok(refusal.into_answer(None));
        }
        let reply = self.update(client, now, schedule, &key);
        Ok(reply.into_answer(|op| PublishAccepted {
            status: op.status,
            operation_id: Some(op.operation_id),
        }))
    }

    /// `POST .../update/uploadurl` with `{"contentLengthBytes": declared_len}`.
    pub fn upload_url(
        &mut self,
        client: &str,
        now: Timestamp,
        schedule: &ScheduleRef,
        declared_len: u64,
    ) -> Reply<UploadTicket> {
        self.admitted(client, now, |model| {
            model.record(schedule, now)?;
            if declared_len == 0 {
                return Err(Refusal::BadRequest(
                    "contentLengthBytes must be positive".into(),
                ));
            }
            let upload_key = format!("upload-{}", model.next_serial());
            model.uploads.insert(
                upload_key.clone(),
                Upload {
                    schedule: schedule.clone(),
                    declared_len,
                    change: None,
                },
            );
            Ok(UploadTicket {
                upload_key,
                headers: UPLOAD_HEADERS.to_vec(),
            })
        })
    }
    /// The `PUT` to the upload URL: gzip-encoded JSON of exactly the declared length.
    /// Storage, not the API: it counts against no rate limit.
    pub fn upload(&mut self, upload_key: &str, bytes: &[u8]) -> Result<(), Refusal> {
        let upload = self
            .uploads
            .get_mut(upload_key)
            .ok_or_else(|| Refusal::NotFound(format!("no upload slot {upload_key}")))?;
        if u64::try_from(bytes.len()).ok() != Some(upload.declared_len) {
            return Err(Refusal::BadRequest(format!(
                "declared {} bytes, received {}",
                upload.declared_len,
                bytes.len()
            )));
        }
        let mut json = Vec::new();
        GzDecoder::new(bytes)
            .take(MAX_UPLOAD_JSON)
            .read_to_end(&mut json)
            .map_err(|e| Refusal::BadRequest(format!("the upload is not gzip: {e}")))?;
        let change: Change = serde_json::from_slice(&json).map_err(|e| {
            Refusal::BadRequest(format!("the upload is not a schedule change: {e}"))
        })?;
        upload.change = Some(change);
        Ok(())
    }

    /// `POST .../update` with `{"uploadKey"}`: starts the publish the upload describes.
    pub fn update(
        &mut self,
        client: &str,
        now: Timestamp,
        schedule: &ScheduleRef,
        upload_key: &str,
    ) -> Reply<Operation> {
        self.admitted(client, now, |model| {
            let upload = model
                .uploads
                .get(upload_key)
                .filter(|u| u.schedule == *schedule)
                .ok_or_else(|| Refusal::BadRequest(format!("unknown uploadKey {upload_key}")))?;
            let change = upload.change.ok_or_else(|| {
                Refusal::BadRequest(format!("nothing was uploaded for {upload_key}"))
            })?;
            let started = model.start_publish(
                schedule,
                now,
                change.metadata.version,
                change.published,
                client,
            );
            if started.is_ok() {
                model.uploads.remove(upload_key);
            }
            started
        })
    }

    /// The gateway's `GET /gateway/schedules/{id}/status`.
    pub fn gateway_status(
        &mut self,
        client: &str,
        now: Timestamp,
        schedule_id: &str,
    ) -> Reply<ScheduleView> {
        self.admitted(client, now, |model| {
            let schedule = model.gateway_ref(schedule_id)?;
            model.settle(now);
            model.view(&schedule)
        })
    }

    /// The gateway's `POST /gateway/schedules/{id}/publish`, at `version` or the current one.
    pub fn gateway_publish(
        &mut self,
        client: &str,
        now: Timestamp,
        schedule_id: &str,
        version: Option<i64>,
    ) -> Reply<Operation> {
        self.admitted(client, now, |model| {
            let schedule = model.gateway_ref(schedule_id)?;
            let version = match version {
                Some(v) => v,
                None => model.record(&schedule, now)?.version,
            };
            model.start_publish(&schedule, now, version, true, client)
        })
    }

    /// Counts a call against `client`'s window; past the limit, refuses it unserved.
    pub fn admit(&mut self, client: &str, now: Timestamp) -> Result<RateLimitInfo, Throttled> {
        let allowed = self.config.requests_per_minute;
        // Looked up before inserting: the client's name is copied once, not on every call.
        let window = match self.windows.get_mut(client) {
            Some(window) => window,
            None => self.windows.entry(client.to_owned()).or_insert(Window {
                start: now,
                count: 0,
            }),
        };
        if now.duration_since(window.start) >= RATE_WINDOW || now < window.start {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        let reset_secs = ceil_secs(RATE_WINDOW - now.duration_since(window.start));
        if window.count >= allowed {
            return Err(Throttled {
                rate_limit: RateLimitInfo {
                    count: window.count,
                    allowed,
                    reset_secs,
                },
                refusal: Refusal::TooManyRequests {
                    retry_after_secs: reset_secs.max(1),
                },
            });
        }
        window.count += 1;
        Ok(RateLimitInfo {
            count: window.count,
            allowed,
            reset_secs,
        })
    }

    fn admitted<T>(
        &mut self,
        client: &str,
        now: Timestamp,
        serve: impl FnOnce(&mut Self) -> Result<T, Refusal>,
    ) -> Reply<T> {
        match self.admit(client, now) {
            Ok(rate_limit) => Reply {
                rate_limit,
                outcome: serve(self),
            },
            Err(throttled) => Reply {
                rate_limit: throttled.rate_limit,
                outcome: Err(throttled.refusal),
            },
        }
    }

    /// The one transition into `Processing` (or straight to published).
    fn start_publish(
        &mut self,
        schedule: &ScheduleRef,
        now: Timestamp,
        version: i64,
        published: bool,
        by: &str,
    ) -> Result<Operation, Refusal> {
        let processing_time = self.config.processing_time;
        let serial = self.issued + 1;
        let operation_id = format!("op-{serial}");
        let record = self.record(schedule, now)?;
        if record.pending.is_some() || (published && record.published) {
            return Err(Refusal::AlreadyPublishing);
        }
        if version != record.version {
            return Err(Refusal::VersionMismatch);
        }
        let done_at = now
            .saturating_add(processing_time)
            .unwrap_or(Timestamp::MAX);
        let ends = record.next_ends.take().unwrap_or(OperationStatus::Complete);
        let before = record.snapshot();
        record.pending = Some(Pending {
            done_at,
            published,
            by: by.to_owned(),
            ends,
        });
        let started = record.snapshot();
        // What the operation's events will say is settled now: nothing can change a
        // schedule while its operation runs.
        let after = match ends {
            OperationStatus::Complete => ScheduleSnapshot {
                published,
                version: before.version + 1,
                modified_at: Some(done_at),
                modified_by: Some(by.to_owned()),
                publishing: false,
                other_published: None,
            },
            _ => before,
        };
        self.issued = serial;
        self.running.push(schedule.clone());
        self.settle(now);
        let status = if self.running.contains(schedule) {
            OperationStatus::Processing
        } else {
            ends
        };
        let id = Some(operation_id.clone());
        if status == OperationStatus::Processing {
            self.notify(now, schedule, status, id.clone(), started);
        }
        self.notify(done_at, schedule, ends, id, after);
        Ok(Operation {
            operation_id,
            status,
        })
    }

    /// Turns schedule notifications on (or off with `None`) from now on.
    pub fn set_notifications(&mut self, config: Option<NotifyConfig>) {
        self.notify = config;
        if config.is_none() {
            self.outbox.clear();
        }
    }

    /// The next operation started on `schedule` ends `status` (`Error` or `Canceled`): it
    /// runs its processing time, then leaves the schedule as it was.
    pub fn fail_next_operation(
        &mut self,
        schedule: &ScheduleRef,
        status: OperationStatus,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        self.record(schedule, now)?.next_ends = Some(status);
        Ok(())
    }

    /// Drops the notification channel until `until`: the events due meanwhile are lost.
    pub fn drop_notifications_until(&mut self, until: Timestamp) {
        self.notify_down_until = Some(until);
    }

    /// Whether the notification channel is dropped at `now`.
    pub fn notifications_down(&self, now: Timestamp) -> bool {
        self.notify_down_until.is_some_and(|until| now < until)
    }

    /// The notifications due by `now`, taken from the queue.
    pub fn notifications_due(&mut self, now: Timestamp) -> NotifyDue {
        let down = self.notifications_down(now);
        let later = match now.checked_add(SignedDuration::from_nanos(1)) {
            Ok(after) => self.outbox.split_off(&(after, 0)),
            Err(_) => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.outbox, later);
        let loss = self.notify.map_or(0, |n| n.loss_per_mille);
        let down_until = self.notify_down_until;
        let events = due
            .into_iter()
            .filter(|((at, _), _)| down_until.is_none_or(|until| *at >= until))
            .filter(|((_, serial), _)| !lost(*serial, loss))
            .map(|(_, event)| event)
            .collect();
        NotifyDue { events, down }
    }

    /// When the next queued notification is due.
    pub fn next_notification_at(&self) -> Option<Timestamp> {
        self.outbox.keys().next().map(|(at, _)| *at)
    }

    /// Queues the event of a change that happens at `at`, when notifications are on.
    fn notify(
        &mut self,
        at: Timestamp,
        schedule: &ScheduleRef,
        status: OperationStatus,
        operation_id: Option<String>,
        snapshot: ScheduleSnapshot,
    ) {
        let Some(config) = self.notify else { return };
        self.events_queued += 1;
        let due = at.saturating_add(config.delay).unwrap_or(Timestamp::MAX);
        let event = ScheduleNotification {
            schedule: schedule.clone(),
            status,
            operation_id,
            event_type: ScheduleEventType::Update,
            snapshot,
        };
        self.outbox.insert((due, self.events_queued), event);
    }

    /// Ends every publish whose time has come, in the order they end; one that publishes
    /// un-publishes the business unit's other schedules sharing a week with it.
    fn settle(&mut self, now: Timestamp) {
        if self.running.is_empty() {
            return;
        }
        let mut due: Vec<(Timestamp, ScheduleRef)> = Vec::new();
        self.running.retain(|s| {
            let done_at = self
                .schedules
                .get(s)
                .and_then(|r| r.pending.as_ref())
                .map(|p| p.done_at);
            match done_at {
                Some(at) if at <= now => {
                    due.push((at, s.clone()));
                    false
                }
                Some(_) => true,
                None => false,
            }
        });
        due.sort();
        for (at, schedule) in due {
            let Some(record) = self.schedules.get_mut(&schedule) else {
                continue;
            };
            let by = record.pending.as_ref().map(|p| p.by.clone());
            if record.settle(now) {
                self.unpublish_others(&schedule, at, by.as_deref().unwrap_or_default());
            }
        }
    }

    /// Publishing `schedule` un-publishes every other schedule covering one of its weeks.
    fn unpublish_others(&mut self, schedule: &ScheduleRef, at: Timestamp, by: &str) {
        let others: Vec<ScheduleRef> = self
            .weeks_of(schedule)
            .into_iter()
            .filter_map(|week| self.by_week.get(&(schedule.business_unit.clone(), week)))
            .flatten()
            .filter(|s| *s != schedule)
            .cloned()
            .collect();
        for other in others {
            if let Some(record) = self.schedules.get_mut(&other)
                && record.published
            {
                record.published = false;
                record.version += 1;
                record.modified_at = at;
                record.modified_by = by.to_owned();
                let snapshot = record.snapshot();
                // Everyone else's changes are announced on the topic too.
                self.notify(at, &other, OperationStatus::Complete, None, snapshot);
            }
        }
    }

    /// The schedule as a read shows it, with whether another sharing a week is published.
    fn view(&self, schedule: &ScheduleRef) -> Result<ScheduleView, Refusal> {
        let record = self
            .schedules
            .get(schedule)
            .ok_or_else(|| not_found(schedule))?;
        // Publishing it would un-publish any other schedule sharing one of its weeks.
        let other_published = self.weeks_of(schedule).into_iter().any(|week| {
            let key = (schedule.business_unit.clone(), week);
            self.by_week.get(&key).is_some_and(|covering| {
                covering
                    .iter()
                    .any(|s| s != schedule && self.schedules.get(s).is_some_and(|r| r.published))
            })
        });
        let mut snapshot = record.snapshot();
        snapshot.other_published = Some(other_published);
        Ok(ScheduleView {
            schedule: schedule.clone(),
            snapshot,
            state: record.state(),
            listed: record.listed(schedule),
        })
    }

    /// The weeks a stored schedule covers.
    fn weeks_of(&self, schedule: &ScheduleRef) -> Vec<Date> {
        let weeks = self.schedules.get(schedule).map_or(0, |r| r.week_count);
        (0..weeks)
            .filter_map(|n| {
                schedule
                    .week
                    .checked_add(jiff::Span::new().days(7 * i64::from(n)))
                    .ok()
            })
            .collect()
    }

    fn index(&mut self, schedule: &ScheduleRef) {
        for week in self.weeks_of(schedule) {
            let key = (schedule.business_unit.clone(), week);
            self.by_week.entry(key).or_default().push(schedule.clone());
        }
    }

    fn unindex(&mut self, schedule: &ScheduleRef) {
        for week in self.weeks_of(schedule) {
            let key = (schedule.business_unit.clone(), week);
            if let Some(covering) = self.by_week.get_mut(&key) {
                covering.retain(|s| s != schedule);
            }
        }
    }

    fn record(&mut self, schedule: &ScheduleRef, now: Timestamp) -> Result<&mut Record, Refusal> {
        self.settle(now);
        self.schedules
            .get_mut(schedule)
            .ok_or_else(|| not_found(schedule))
    }

    fn gateway_ref(&self, schedule_id: &str) -> Result<ScheduleRef, Refusal> {
        self.find(schedule_id)
            .cloned()
            .ok_or_else(|| Refusal::NotFound(format!("schedule {schedule_id} not found")))
    }

    fn next_serial(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }
}

fn not_found(schedule: &ScheduleRef) -> Refusal {
    Refusal::NotFound(format!(
        "schedule {} not found in week {} of business unit {}",
        schedule.schedule_id, schedule.week, schedule.business_unit
    ))
}

/// Whether the event with this serial is lost, at `per_mille` (a fixed mix of the serial).
fn lost(serial: u64, per_mille: u16) -> bool {
    if per_mille == 0 {
        return false;
    }
    let mut x = serial.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    x % 1000 < u64::from(per_mille)
}

/// Whole seconds, rounded up, never negative.
fn ceil_secs(d: SignedDuration) -> u32 {
    let secs = d.as_secs() + i64::from(d.subsec_nanos() > 0);
    u32::try_from(secs.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "client-a";

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_772_442_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn sched(id: &str) -> ScheduleRef {
        ScheduleRef {
            business_unit: "bu-1".into(),
            week: jiff::civil::date(2026, 3, 2),
            schedule_id: id.into(),
        }
    }

    fn model_with(published: bool, version: i64) -> Model {
        let mut model = Model::new(ModelConfig::default());
        model.insert(sched("s1"), published, version, at(0), "planner");
        model
    }

    /// Uploads a publish of `version` and calls update, at `now`.
    fn publish(model: &mut Model, now: Timestamp, version: i64) -> Result<Operation, Refusal> {
        let body = gzip_publish_body(version).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let ticket = model
            .upload_url(CLIENT, now, &sched("s1"), body.len() as u64)
            .outcome?;
        model.upload(&ticket.upload_key, &body)?;
        model
            .update(CLIENT, now, &sched("s1"), &ticket.upload_key)
            .outcome
    }

    fn state(model: &mut Model, now: Timestamp) -> (PublishState, i64) {
        let view = model.peek(&sched("s1"), now);
        view.map_or((PublishState::Draft, -1), |v| (v.state, v.snapshot.version))
    }

    #[test]
    fn an_update_processes_then_publishes_at_the_next_version() {
        let mut model = model_with(false, 3);
        let op = publish(&mut model, at(10), 3);
        assert_eq!(op.map(|o| o.status), Ok(OperationStatus::Processing));
        assert_eq!(state(&mut model, at(39)), (PublishState::Publishing, 3));
        assert_eq!(state(&mut model, at(40)), (PublishState::Published, 4));
        let view = model.get(CLIENT, at(41), &sched("s1")).outcome;
        assert_eq!(
            view.map(|v| (v.snapshot.modified_at, v.snapshot.modified_by)),
            Ok((Some(at(40)), Some(CLIENT.to_owned())))
        );
    }

    #[test]
    fn zero_processing_time_completes_at_once() {
        let mut model = model_with(false, 1);
        model.set_config(ModelConfig {
            processing_time: SignedDuration::ZERO,
            ..ModelConfig::default()
        });
        let op = publish(&mut model, at(5), 1);
        assert_eq!(op.map(|o| o.status), Ok(OperationStatus::Complete));
        assert_eq!(state(&mut model, at(5)), (PublishState::Published, 2));
    }

    #[test]
    fn an_update_while_processing_conflicts() {
        let mut model = model_with(false, 3);
        assert!(publish(&mut model, at(0), 3).is_ok());
        let second = publish(&mut model, at(5), 3);
        assert_eq!(second, Err(Refusal::AlreadyPublishing));
        assert_eq!(
            second.err().map(|r| (r.status(), r.to_string())),
            Some((409, MSG_ALREADY_PUBLISHING.to_owned()))
        );
    }

    #[test]
    fn publishing_a_published_schedule_conflicts() {
        let mut model = model_with(true, 3);
        assert_eq!(
            publish(&mut model, at(0), 3),
            Err(Refusal::AlreadyPublishing)
        );
    }

    #[test]
    fn a_stale_version_conflicts() {
        let mut model = model_with(false, 3);
        let refusal = publish(&mut model, at(0), 2).err();
        assert_eq!(refusal, Some(Refusal::VersionMismatch));
        assert_eq!(
            refusal.map(|r| (r.status(), r.body()["message"].clone())),
            Some((409, MSG_VERSION_MISMATCH.into()))
        );
    }

    #[test]
    fn a_person_edit_makes_a_new_draft_and_stales_earlier_reads() {
        let mut model = model_with(true, 3);
        let edited = model.person_edit(&sched("s1"), at(1), "planner");
        assert_eq!(edited.map(|s| (s.published, s.version)), Ok((false, 4)));
        assert_eq!(publish(&mut model, at(2), 3), Err(Refusal::VersionMismatch));
        assert!(publish(&mut model, at(3), 4).is_ok());
    }

    #[test]
    fn a_person_publish_blocks_ours_until_it_completes() {
        let mut model = model_with(false, 3);
        assert!(model.person_publish(&sched("s1"), at(0), "planner").is_ok());
        assert_eq!(
            publish(&mut model, at(1), 3),
            Err(Refusal::AlreadyPublishing)
        );
        assert_eq!(state(&mut model, at(30)), (PublishState::Published, 4));
    }

    #[test]
    fn an_upload_must_have_the_declared_length() {
        let mut model = model_with(false, 3);
        let body = gzip_publish_body(3).unwrap_or_default();
        let ticket = model.upload_url(CLIENT, at(0), &sched("s1"), body.len() as u64 + 1);
        let key = ticket.outcome.map(|t| t.upload_key).unwrap_or_default();
        let refused = model.upload(&key, &body);
        assert!(matches!(refused, Err(Refusal::BadRequest(m)) if m.contains("declared")));
    }

    #[test]
    fn an_upload_must_be_gzip() {
        let mut model = model_with(false, 3);
        let plain = br#"{"published":true,"metadata":{"version":3}}"#;
        let ticket = model.upload_url(CLIENT, at(0), &sched("s1"), plain.len() as u64);
        let key = ticket.outcome.map(|t| t.upload_key).unwrap_or_default();
        let refused = model.upload(&key, plain);
        assert!(matches!(refused, Err(Refusal::BadRequest(m)) if m.contains("not gzip")));
        let update = model.update(CLIENT, at(0), &sched("s1"), &key).outcome;
        assert!(
            matches!(update, Err(Refusal::BadRequest(m)) if m.contains("nothing was uploaded"))
        );
    }

    #[test]
    fn an_upload_key_serves_one_update() {
        let mut model = model_with(false, 3);
        let body = gzip_publish_body(3).unwrap_or_default();
        let ticket = model.upload_url(CLIENT, at(0), &sched("s1"), body.len() as u64);
        let key = ticket.outcome.map(|t| t.upload_key).unwrap_or_default();
        assert_eq!(model.upload(&key, &body), Ok(()));
        assert!(
            model
                .update(CLIENT, at(0), &sched("s1"), &key)
                .outcome
                .is_ok()
        );
        let again = model.update(CLIENT, at(60), &sched("s1"), &key).outcome;
        assert!(matches!(again, Err(Refusal::BadRequest(m)) if m.contains("unknown uploadKey")));
    }

    #[test]
    fn past_the_limit_calls_are_throttled_until_the_window_resets() {
        let mut model = model_with(false, 3);
        model.set_config(ModelConfig {
            requests_per_minute: 2,
            ..ModelConfig::default()
        });
        let first = model.get(CLIENT, at(0), &sched("s1"));
        assert_eq!(
            first.rate_limit,
            RateLimitInfo {
                count: 1,
                allowed: 2,
                reset_secs: 60
            }
        );
        assert!(model.get(CLIENT, at(10), &sched("s1")).outcome.is_ok());
        let third = model.get(CLIENT, at(15), &sched("s1"));
        assert_eq!(
            third.outcome,
            Err(Refusal::TooManyRequests {
                retry_after_secs: 45
            })
        );
        assert_eq!(
            third.outcome.err().map(|r| r.body()),
            Some(serde_json::json!({
                "message": "Rate limit exceeded the maximum. Retry the request in [45] seconds",
                "code": "too.many.requests.retry.after",
                "status": 429,
            }))
        );
        assert!(model.get("client-b", at(15), &sched("s1")).outcome.is_ok());
        assert!(model.get(CLIENT, at(60), &sched("s1")).outcome.is_ok());
    }

    fn ids(views: &[ScheduleView]) -> Vec<String> {
        views
            .iter()
            .map(|v| v.schedule.schedule_id.clone())
            .collect()
    }

    /// `s1` this week; `m` from the week before spanning two; `s2` this week; `x` next week.
    fn a_busy_week() -> Model {
        let mut model = model_with(false, 3);
        let mut multi = sched("m");
        multi.week = jiff::civil::date(2026, 2, 23);
        model.insert(multi.clone(), true, 1, at(1), "planner");
        assert_eq!(model.set_week_count(&multi, 2), Ok(()));
        model.insert(sched("s2"), false, 1, at(2), "planner");
        let mut next = sched("x");
        next.week = jiff::civil::date(2026, 3, 9);
        model.insert(next, false, 1, at(3), "planner");
        model
    }

    #[test]
    fn the_week_lists_every_schedule_covering_it_in_no_fixed_order() {
        let mut model = a_busy_week();
        let week = jiff::civil::date(2026, 3, 2);
        let orders: Vec<Vec<String>> = (0..8)
            .map(|n| {
                let listed = model.list_week(CLIENT, at(4 + n), "bu-1", week).outcome;
                ids(&listed.unwrap_or_default())
            })
            .collect();
        for order in &orders {
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, ["m", "s1", "s2"]);
        }
        assert!(
            orders.iter().any(|o| *o != orders[0]),
            "the order changes between calls: {orders:?}"
        );
        let listed = model.list_week(CLIENT, at(20), "bu-1", week).outcome;
        let multi = listed
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.schedule.schedule_id == "m")
            .map(|v| (v.listed.week, v.listed.week_count, v.listed.created_at));
        assert_eq!(
            multi,
            Some((Some(jiff::civil::date(2026, 2, 23)), Some(2), Some(at(1))))
        );
    }

    #[test]
    fn publishing_one_schedule_unpublishes_another_of_its_week() {
        let mut model = a_busy_week();
        let read = |model: &mut Model, id: &str| {
            let schedule = model.find(id).cloned().unwrap_or_else(|| sched(id));
            model.peek(&schedule, at(100)).map(|v| {
                (
                    v.snapshot.published,
                    v.snapshot.version,
                    v.snapshot.other_published,
                )
            })
        };
        assert_eq!(read(&mut model, "s1"), Some((false, 3, Some(true))));
        assert_eq!(read(&mut model, "x"), Some((false, 1, Some(false))));
        assert!(publish(&mut model, at(10), 3).is_ok());
        assert_eq!(
            read(&mut model, "m"),
            Some((false, 2, Some(true))),
            "un-published"
        );
        assert_eq!(read(&mut model, "s1"), Some((true, 4, Some(false))));
    }

    #[test]
    fn a_business_unit_answers_its_own_week_or_the_default() {
        let mut model = model_with(false, 3);
        let sunday = WeekSettings {
            start_day: Weekday::Sunday,
            time_zone: jiff::tz::TimeZone::get("America/Chicago").ok(),
        };
        model.set_week_settings("bu-2", sunday.clone());
        assert_eq!(
            model.business_unit(CLIENT, at(0), "bu-2").outcome,
            Ok(sunday)
        );
        let default = model.business_unit(CLIENT, at(0), "bu-1").outcome;
        assert_eq!(default, Ok(ModelConfig::default().default_week));
        let unknown = model.business_unit(CLIENT, at(0), "bu-9").outcome;
        assert_eq!(unknown.map_err(|r| r.status()), Err(404));
    }

    fn heard(model: &mut Model, now: Timestamp) -> Vec<(OperationStatus, bool, i64)> {
        let due = model.notifications_due(now);
        due.events
            .into_iter()
            .map(|e| (e.status, e.snapshot.published, e.snapshot.version))
            .collect()
    }

    fn notifying(published: bool, version: i64) -> Model {
        let mut model = model_with(published, version);
        model.set_notifications(Some(NotifyConfig::default()));
        model
    }

    #[test]
    fn an_update_is_announced_processing_then_complete_at_its_new_version() {
        let mut model = notifying(false, 3);
        let op = publish(&mut model, at(10), 3).map(|o| o.operation_id);
        assert_eq!(heard(&mut model, at(10)), []);
        let start = model.notifications_due(at(11)).events;
        assert_eq!(start.len(), 1);
        assert_eq!(
            start.first().and_then(|e| e.operation_id.clone()),
            op.clone().ok()
        );
        assert_eq!(
            start.first().map(|e| (e.status, e.snapshot.version)),
            Some((OperationStatus::Processing, 3))
        );
        assert_eq!(heard(&mut model, at(40)), [], "delivered after the delay");
        let end = model.notifications_due(at(41)).events;
        assert_eq!(
            end.first()
                .map(|e| (e.status, e.snapshot.published, e.snapshot.version)),
            Some((OperationStatus::Complete, true, 4))
        );
        assert_eq!(end.first().and_then(|e| e.operation_id.clone()), op.ok());
    }

    #[test]
    fn a_failed_operation_is_announced_and_changes_nothing() {
        let mut model = notifying(false, 3);
        let armed = model.fail_next_operation(&sched("s1"), OperationStatus::Error, at(0));
        assert_eq!(armed, Ok(()));
        assert!(publish(&mut model, at(0), 3).is_ok());
        assert_eq!(
            heard(&mut model, at(31)),
            [
                (OperationStatus::Processing, false, 3),
                (OperationStatus::Error, false, 3)
            ]
        );
        assert_eq!(state(&mut model, at(31)), (PublishState::Draft, 3));
        assert!(
            publish(&mut model, at(32), 3).is_ok(),
            "the next one may run"
        );
    }

    #[test]
    fn a_person_edit_is_announced_without_an_operation_of_ours() {
        let mut model = notifying(true, 3);
        assert!(model.person_edit(&sched("s1"), at(1), "planner").is_ok());
        let events = model.notifications_due(at(2)).events;
        assert_eq!(
            events.first().map(|e| (
                e.operation_id.clone(),
                e.snapshot.published,
                e.snapshot.version
            )),
            Some((None, false, 4))
        );
    }

    #[test]
    fn events_due_while_the_channel_is_dropped_are_lost() {
        let mut model = notifying(true, 3);
        model.drop_notifications_until(at(30));
        assert!(model.person_edit(&sched("s1"), at(1), "planner").is_ok());
        assert_eq!(
            model.notifications_due(at(2)),
            NotifyDue {
                events: vec![],
                down: true
            }
        );
        assert!(
            model
                .person_publish(&sched("s1"), at(40), "planner")
                .is_ok()
        );
        assert_eq!(
            heard(&mut model, at(41)),
            [(OperationStatus::Processing, false, 4)]
        );
        assert!(!model.notifications_due(at(41)).down);
    }

    #[test]
    fn loss_drops_about_its_share_and_off_queues_nothing() {
        let mut model = model_with(true, 1);
        assert!(model.person_edit(&sched("s1"), at(0), "planner").is_ok());
        assert_eq!(model.next_notification_at(), None, "off: nothing queued");
        model.set_notifications(Some(NotifyConfig {
            delay: SignedDuration::ZERO,
            loss_per_mille: 250,
        }));
        for i in 0..1000 {
            assert!(model.person_edit(&sched("s1"), at(i), "planner").is_ok());
        }
        let delivered = model.notifications_due(at(1000)).events.len();
        assert!(
            (650..850).contains(&delivered),
            "{delivered} of 1000 delivered"
        );
    }

    #[test]
    fn the_gateway_reads_and_publishes_by_id() {
        let mut model = model_with(false, 3);
        let read = model.gateway_status(CLIENT, at(0), "s1").outcome;
        assert_eq!(read.map(|v| v.state), Ok(PublishState::Draft));
        assert!(
            model
                .gateway_publish(CLIENT, at(1), "s1", None)
                .outcome
                .is_ok()
        );
        let read = model.gateway_status(CLIENT, at(2), "s1").outcome;
        assert_eq!(read.map(|v| v.state), Ok(PublishState::Publishing));
        let again = model.gateway_publish(CLIENT, at(3), "s1", Some(3)).outcome;
        assert_eq!(again, Err(Refusal::AlreadyPublishing));
        let missing = model.gateway_status(CLIENT, at(3), "nope").outcome;
        assert_eq!(missing.map_err(|r| r.status()), Err(404));
    }
}
