//! The Genesys client's [`Notifications`]: making a channel and subscribing its topics,
//! with the same token, limiter and timeout as every other call.

use super::{ChannelInfo, Notifications};
use crate::api::genesys::GenesysClient;
use crate::api::http;
use crate::api::{Answer, ApiError};

/// `ChannelTopic`: one subscription.
#[derive(serde::Serialize)]
struct ChannelTopic<'a> {
    id: &'a str,
}

impl Notifications for GenesysClient {
    async fn create_channel(&self) -> Result<Answer<ChannelInfo>, ApiError> {
        let url = self.api_url(&["api", "v2", "notifications", "channels"]);
        let answer = self
            .call("create_channel", || self.http().post(url.clone()))
            .await?;
        answer.into_answer("create_channel", http::json)
    }

    async fn subscribe(&self, channel_id: &str, topics: &[String]) -> Result<Answer<()>, ApiError> {
        let path = [
            "api",
            "v2",
            "notifications",
            "channels",
            channel_id,
            "subscriptions",
        ];
        let url = self.api_url(&path);
        let body: Vec<ChannelTopic<'_>> = topics.iter().map(|t| ChannelTopic { id: t }).collect();
        let answer = self
            .call("subscribe", || self.http().put(url.clone()).json(&body))
            .await?;
        answer.into_answer("subscribe", |_| Ok(()))
    }
}
