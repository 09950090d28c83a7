//! Building the facts one evaluation sees from what the runner knows.

use crate::api::{OperationStatus, ScheduleRef, ScheduleSnapshot};
use crate::language::schema::FactId;
use crate::policy::facts::{Facts, NOW, RETRY_AFTER, Value, fact_id};
use crate::runner::Trigger;
use jiff::{SignedDuration, Timestamp};

const SCHEDULE_ID: FactId = fact_id("schedule.id");
const SCHEDULE_STATE: FactId = fact_id("schedule.state");
const SCHEDULE_PUBLISHED: FactId = fact_id("schedule.published");
const SCHEDULE_VERSION: FactId = fact_id("schedule.version");
const SCHEDULE_WEEK: FactId = fact_id("schedule.week");
const SCHEDULE_MODIFIED_AT: FactId = fact_id("schedule.modified_at");
const SCHEDULE_MODIFIED_BY: FactId = fact_id("schedule.modified_by");
const SCHEDULE_OTHER_PUBLISHED: FactId = fact_id("schedule.other_published");
const TRIGGER_SOURCE: FactId = fact_id("trigger.source");
const TRIGGER_EVENT: FactId = fact_id("trigger.event");
const TRIGGER_RECEIVED_AT: FactId = fact_id("trigger.received_at");
const TRIGGER_DUPLICATE: FactId = fact_id("trigger.duplicate");
const TRIGGER_COALESCED: FactId = fact_id("trigger.coalesced");
const LAST_PUBLISH_AT: FactId = fact_id("last_publish.at");
const LAST_PUBLISH_VERSION: FactId = fact_id("last_publish.version");
const RESPONSE_STATUS: FactId = fact_id("response.status");
const OPERATION_STATUS: FactId = fact_id("operation.status");
const ATTEMPT: FactId = fact_id("attempt");
const RECHECKS: FactId = fact_id("rechecks");

/// The derived `schedule.state`; the discriminant is the index in `schema::SCHEDULE_STATES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleState {
    /// Not published, and no update of ours is processing.
    Draft = 0,
    /// An update operation of ours is still processing.
    Publishing = 1,
    /// The API's flag says published.
    Published = 2,
    /// The schedule could not be read.
    Unknown = 3,
}

impl ScheduleState {
    /// Derive the state from a read (if it succeeded) and our latest operation's status:
    /// publishing while our operation processes or the backend says a publish is running.
    pub fn derive(snapshot: Option<&ScheduleSnapshot>, operation: Option<OperationStatus>) -> Self {
        match snapshot {
            None => ScheduleState::Unknown,
            Some(s) if s.published => ScheduleState::Published,
            Some(s) if s.publishing || operation == Some(OperationStatus::Processing) => {
                ScheduleState::Publishing
            }
            Some(_) => ScheduleState::Draft,
        }
    }

    /// The word rules use.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Draft => "draft",
            ScheduleState::Publishing => "publishing",
            ScheduleState::Published => "published",
            ScheduleState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ScheduleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The index of an operation status in `schema::OPERATION_STATUSES`.
fn operation_index(status: OperationStatus) -> u8 {
    match status {
        OperationStatus::Processing => 0,
        OperationStatus::Complete => 1,
        OperationStatus::Canceled => 2,
        OperationStatus::Error => 3,
    }
}

/// Everything the trigger phase's facts come from.
#[derive(Clone, Copy, Debug)]
pub struct FactSources<'a> {
    /// The schedule.
    pub schedule: &'a ScheduleRef,
    /// The latest read, when it succeeded.
    pub snapshot: Option<&'a ScheduleSnapshot>,
    /// Our latest update operation's status in this cycle.
    pub operation: Option<OperationStatus>,
    /// The trigger the cycle evaluates.
    pub trigger: &'a Trigger,
    /// Whether every trigger folded into the cycle was a duplicate.
    pub duplicate: bool,
    /// Further triggers folded into this evaluation.
    pub coalesced: u32,
    /// The runner's clock.
    pub now: Timestamp,
    /// When and at which version this process last saw the schedule published.
    pub last_publish: Option<(Timestamp, i64)>,
    /// Writes made in this cycle.
    pub attempt: u32,
    /// Rechecks made in this cycle.
    pub rechecks: u32,
}

/// The facts of the trigger phase.
pub fn trigger_facts(from: &FactSources<'_>) -> Facts {
    let mut facts = Facts::new();
    let state = ScheduleState::derive(from.snapshot, from.operation);
    facts.set(
        SCHEDULE_ID,
        Some(Value::Str(from.schedule.schedule_id.clone())),
    );
    facts.set(SCHEDULE_STATE, Some(Value::Enum(state as u8)));
    facts.set(SCHEDULE_WEEK, Some(Value::Date(from.schedule.week)));
    if let Some(s) = from.snapshot {
        facts.set(SCHEDULE_PUBLISHED, Some(Value::Bool(s.published)));
        facts.set(SCHEDULE_VERSION, Some(Value::Int(s.version)));
        facts.set(SCHEDULE_MODIFIED_AT, s.modified_at.map(Value::Instant));
        facts.set(SCHEDULE_MODIFIED_BY, s.modified_by.clone().map(Value::Str));
        facts.set(SCHEDULE_OTHER_PUBLISHED, s.other_published.map(Value::Bool));
    }
    let t = from.trigger;
    facts.set(TRIGGER_SOURCE, Some(Value::Str(t.source.clone())));
    facts.set(TRIGGER_EVENT, t.event.clone().map(Value::Str));
    facts.set(TRIGGER_RECEIVED_AT, Some(Value::Instant(t.received_at)));
    facts.set(TRIGGER_DUPLICATE, Some(Value::Bool(from.duplicate)));
    facts.set(
        TRIGGER_COALESCED,
        Some(Value::Int(i64::from(from.coalesced))),
    );
    facts.set(NOW, Some(Value::Instant(from.now)));
    if let Some((at, version)) = from.last_publish {
        facts.set(LAST_PUBLISH_AT, Some(Value::Instant(at)));
        facts.set(LAST_PUBLISH_VERSION, Some(Value::Int(version)));
    }
    facts.set(
        OPERATION_STATUS,
        from.operation.map(|s| Value::Enum(operation_index(s))),
    );
    facts.set(ATTEMPT, Some(Value::Int(i64::from(from.attempt))));
    facts.set(RECHECKS, Some(Value::Int(i64::from(from.rechecks))));
    facts
}

/// Add the response phase's facts: the write's status (0 when no answer came) and its
/// `Retry-After`.
pub fn add_response(facts: &mut Facts, status: u16, retry_after: Option<SignedDuration>) {
    facts.set(RESPONSE_STATUS, Some(Value::Int(i64::from(status))));
    facts.set(RETRY_AFTER, retry_after.map(Value::Duration));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::schema::{OPERATION_STATUSES, SCHEDULE_STATES};

    #[test]
    fn enum_indices_match_the_schema() {
        for state in [
            ScheduleState::Draft,
            ScheduleState::Publishing,
            ScheduleState::Published,
            ScheduleState::Unknown,
        ] {
            assert_eq!(SCHEDULE_STATES.get(state as usize), Some(&state.as_str()));
        }
        for (status, word) in [
            (OperationStatus::Processing, "processing"),
            (OperationStatus::Complete, "complete"),
            (OperationStatus::Canceled, "canceled"),
            (OperationStatus::Error, "error"),
        ] {
            assert_eq!(
                OPERATION_STATUSES.get(usize::from(operation_index(status))),
                Some(&word)
            );
        }
    }

    #[test]
    fn state_is_derived_from_the_flag_and_our_operation() {
        let snap = |published| ScheduleSnapshot {
            published,
            version: 3,
            modified_at: None,
            modified_by: None,
            publishing: false,
            other_published: None,
        };
        let processing = Some(OperationStatus::Processing);
        assert_eq!(
            ScheduleState::derive(None, processing),
            ScheduleState::Unknown
        );
        assert_eq!(
            ScheduleState::derive(Some(&snap(true)), processing),
            ScheduleState::Published
        );
        assert_eq!(
            ScheduleState::derive(Some(&snap(false)), processing),
            ScheduleState::Publishing
        );
        assert_eq!(
            ScheduleState::derive(Some(&snap(false)), Some(OperationStatus::Error)),
            ScheduleState::Draft
        );
    }
}
