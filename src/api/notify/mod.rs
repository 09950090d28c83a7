//! Hearing Genesys instead of polling it: the notification channel, its health, and the
//! schedule events it carries.
//!
//! Genesys' Notifications API (platform-client-sdk-python build/docs/NotificationsApi.md):
//! `POST /api/v2/notifications/channels` makes a channel (`Channel`: `connectUri`, `id`,
//! `expires`; at most 10 per user, an 11th replaces the least recently used),
//! `PUT /api/v2/notifications/channels/{channelId}/subscriptions` replaces its topics with a
//! list of `ChannelTopic` (`{"id": topic}`), and the `connectUri` WebSocket then carries
//! every event of those topics. The schedule topic is
//! `v2.workforcemanagement.businessunits.{buId}.schedules`.
//!
//! The vendor calls sit behind [`Notifications`], like [`crate::api::ScheduleApi`]; the
//! socket itself is a plain WebSocket ([`client`]); the health rules are sans-IO
//! ([`health`]), and what the runner may know from events without a read is [`cache`].

pub mod cache;
#[cfg(feature = "genesys")]
pub mod channel;
#[cfg(feature = "genesys")]
pub mod client;
pub mod event;
pub mod health;

use crate::api::{Answer, ApiError};
use event::ScheduleNotification;
use health::{Continuity, Gap};
use jiff::Timestamp;

/// A channel Genesys made for us (`Channel`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelInfo {
    /// The channel id, for the subscriptions call.
    pub id: String,
    /// The WebSocket to open.
    pub connect_uri: String,
    /// When the channel expires, when the answer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
}

/// The two vendor calls a notification channel needs.
#[allow(async_fn_in_trait)]
pub trait Notifications {
    /// `POST /api/v2/notifications/channels`.
    async fn create_channel(&self) -> Result<Answer<ChannelInfo>, ApiError>;

    /// `PUT /api/v2/notifications/channels/{id}/subscriptions` with these topics.
    async fn subscribe(&self, channel_id: &str, topics: &[String]) -> Result<Answer<()>, ApiError>;
}

/// What the channel said, in order: the continuity's changes and the schedule events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// Subscribed and listening: a new epoch.
    Up(Continuity),
    /// The continuity broke: every state learnt before is stale.
    Gap {
        /// The continuity now (down).
        continuity: Continuity,
        /// Why.
        gap: Gap,
    },
    /// A schedule event.
    Schedule(ScheduleNotification),
}
