//! What the notification socket carries, typed: heartbeats, the closing notice, and the
//! schedule topic's `WfmBuScheduleTopicBuScheduleNotification`.
//!
//! Every message is `{"topicName", "eventBody"}`. The socket's own messages come on
//! `channel.metadata` (`{"message": "WebSocket Heartbeat"}`, and `pong` in answer to our
//! `{"message": "ping"}`) and `v2.system.socket_closing` (the notice before the channel
//! closes). The schedule payload is as the SDKs document it
//! (platform-client-sdk-python build/docs/WfmBuScheduleTopicBuScheduleNotification.md:
//! `status`, `operationId`, `eventType`, `result` a `WfmBuScheduleTopicBuScheduleMetadata`
//! with `id`, `weekDate`, `published`, `metadata` = `version`, `modifiedBy`, `dateModified`).

use crate::api::{OperationStatus, ScheduleRef, ScheduleSnapshot};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The topic the socket's own messages (heartbeat, pong) come on.
pub const TOPIC_CHANNEL_METADATA: &str = "channel.metadata";
/// The topic of the notice that the socket is about to close (expiry, maintenance).
pub const TOPIC_SOCKET_CLOSING: &str = "v2.system.socket_closing";
/// The heartbeat's message.
pub const HEARTBEAT_MESSAGE: &str = "WebSocket Heartbeat";

/// The schedule topic of one business unit.
pub fn schedule_topic(business_unit: &str) -> String {
    format!("v2.workforcemanagement.businessunits.{business_unit}.schedules")
}

/// The business unit a schedule topic names, if it is one.
pub fn topic_business_unit(topic: &str) -> Option<&str> {
    topic
        .strip_prefix("v2.workforcemanagement.businessunits.")?
        .strip_suffix(".schedules")
}

/// What kind of change a schedule notification reports (`eventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScheduleEventType {
    /// An update: an edit or a publish.
    Update,
    /// An import.
    Import,
    /// A copy.
    Copy,
    /// A deletion.
    Delete,
    /// A creation or any other value the service adds later.
    #[serde(other)]
    Other,
}

/// One schedule notification, as the runner uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleNotification {
    /// Which schedule.
    pub schedule: ScheduleRef,
    /// The operation's status.
    pub status: OperationStatus,
    /// The operation it reports on, when it reports on one.
    pub operation_id: Option<String>,
    /// What happened.
    pub event_type: ScheduleEventType,
    /// The schedule as it stands after the change.
    pub snapshot: ScheduleSnapshot,
}

/// One message read from the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The socket's heartbeat.
    Heartbeat,
    /// The answer to our ping.
    Pong,
    /// The channel is about to close.
    Closing,
    /// A schedule changed, or one of its operations ended.
    Schedule(ScheduleNotification),
    /// A topic this client does not act on.
    Other(String),
}

/// Why a socket message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not the `{"topicName", "eventBody"}` envelope.
    #[error("not a notification: {0}")]
    Envelope(serde_json::Error),
    /// A schedule topic whose body is not a schedule notification.
    #[error("a schedule notification on {topic} is malformed: {reason}")]
    Schedule {
        /// The topic.
        topic: String,
        /// What was wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    topic_name: String,
    #[serde(default)]
    event_body: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleBody {
    status: OperationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operation_id: Option<String>,
    event_type: ScheduleEventType,
    result: ResultBody,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultBody {
    id: String,
    week_date: Date,
    published: bool,
    metadata: MetadataBody,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataBody {
    version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    modified_by: Option<UserBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    date_modified: Option<Timestamp>,
}

#[derive(Serialize, Deserialize)]
struct UserBody {
    id: String,
}

#[derive(Deserialize)]
struct MetadataMessage {
    #[serde(default)]
    message: String,
}

impl Message {
    /// Reads one text frame.
    pub fn parse(text: &str) -> Result<Message, MessageError> {
        let envelope: Envelope = serde_json::from_str(text).map_err(MessageError::Envelope)?;
        let topic = envelope.topic_name;
        if topic == TOPIC_CHANNEL_METADATA {
            let body: MetadataMessage =
                serde_json::from_value(envelope.event_body).unwrap_or(MetadataMessage {
                    message: String::new(),
                });
            return Ok(match body.message.as_str() {
                "pong" => Message::Pong,
                _ => Message::Heartbeat,
            });
        }
        if topic == TOPIC_SOCKET_CLOSING {
            return Ok(Message::Closing);
        }
        let Some(business_unit) = topic_business_unit(&topic) else {
            return Ok(Message::Other(topic));
        };
        let business_unit = business_unit.to_owned();
        let body: ScheduleBody =
            serde_json::from_value(envelope.event_body).map_err(|e| MessageError::Schedule {
                topic,
                reason: e.to_string(),
            })?;
        Ok(Message::Schedule(ScheduleNotification {
            schedule: ScheduleRef {
                business_unit,
                week: body.result.week_date,
                schedule_id: body.result.id,
            },
            status: body.status,
            operation_id: body.operation_id,
            event_type: body.event_type,
            snapshot: ScheduleSnapshot {
                published: body.result.published,
                version: body.result.metadata.version,
                modified_at: body.result.metadata.date_modified,
                modified_by: body.result.metadata.modified_by.map(|u| u.id),
                publishing: false,
                other_published: None,
            },
        }))
    }
}

impl ScheduleNotification {
    /// The text frame Genesys sends for it.
    pub fn to_frame(&self) -> String {
        let body = ScheduleBody {
            status: self.status,
            operation_id: self.operation_id.clone(),
            event_type: self.event_type,
            result: ResultBody {
                id: self.schedule.schedule_id.clone(),
                week_date: self.schedule.week,
                published: self.snapshot.published,
                metadata: MetadataBody {
                    version: self.snapshot.version,
                    modified_by: self.snapshot.modified_by.clone().map(|id| UserBody { id }),
                    date_modified: self.snapshot.modified_at,
                },
            },
        };
        frame(
            &schedule_topic(&self.schedule.business_unit),
            serde_json::to_value(body).unwrap_or_default(),
        )
    }
}

/// The heartbeat frame.
pub fn heartbeat_frame() -> String {
    frame(
        TOPIC_CHANNEL_METADATA,
        serde_json::json!({"message": HEARTBEAT_MESSAGE}),
    )
}

/// The closing notice's frame.
pub fn closing_frame() -> String {
    frame(
        TOPIC_SOCKET_CLOSING,
        serde_json::json!({"message": "The socket will close soon"}),
    )
}

fn frame(topic: &str, body: serde_json::Value) -> String {
    serde_json::json!({"topicName": topic, "eventBody": body}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification() -> ScheduleNotification {
        ScheduleNotification {
            schedule: ScheduleRef {
                business_unit: "bu-1".into(),
                week: jiff::civil::date(2026, 3, 2),
                schedule_id: "s1".into(),
            },
            status: OperationStatus::Complete,
            operation_id: Some("op-7".into()),
            event_type: ScheduleEventType::Update,
            snapshot: ScheduleSnapshot {
                published: true,
                version: 4,
                modified_at: Some(Timestamp::UNIX_EPOCH),
                modified_by: Some("client-a".into()),
                publishing: false,
                other_published: None,
            },
        }
    }

    #[test]
    fn a_schedule_notification_reads_back_as_it_was_written() {
        let sent = notification();
        let frame = sent.to_frame();
        assert!(frame.contains("v2.workforcemanagement.businessunits.bu-1.schedules"));
        assert!(frame.contains(r#""operationId":"op-7""#));
        assert!(frame.contains(r#""weekDate":"2026-03-02""#));
        assert_eq!(Message::parse(&frame).ok(), Some(Message::Schedule(sent)));
    }

    #[test]
    fn the_socket_s_own_messages_are_recognised() {
        assert_eq!(
            Message::parse(&heartbeat_frame()).ok(),
            Some(Message::Heartbeat)
        );
        assert_eq!(
            Message::parse(&closing_frame()).ok(),
            Some(Message::Closing)
        );
        let pong = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;
        assert_eq!(Message::parse(pong).ok(), Some(Message::Pong));
        let other = r#"{"topicName":"v2.users.u1.presence","eventBody":{}}"#;
        assert_eq!(
            Message::parse(other).ok(),
            Some(Message::Other("v2.users.u1.presence".into()))
        );
    }

    #[test]
    fn a_malformed_schedule_body_names_its_topic() {
        let bad = r#"{"topicName":"v2.workforcemanagement.businessunits.bu-1.schedules","eventBody":{"status":"Complete"}}"#;
        let err = Message::parse(bad).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("businessunits.bu-1.schedules")));
        assert!(Message::parse("not json").is_err());
    }

    #[test]
    fn unknown_event_types_are_read_as_other() {
        let frame = notification()
            .to_frame()
            .replace(r#""eventType":"Update""#, r#""eventType":"Generate""#);
        let read = Message::parse(&frame).ok();
        assert!(matches!(
            read,
            Some(Message::Schedule(n)) if n.event_type == ScheduleEventType::Other
        ));
    }
}
