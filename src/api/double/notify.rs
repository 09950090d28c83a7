//! The double's notification service: the channel and subscription endpoints, and a real
//! WebSocket that carries the model's schedule events, a heartbeat every 30 s, and the
//! closing notice a minute before the channel expires (24 h after it was made).

use super::routes::{Ctx, json_response};
use super::{CallKind, Shared, State};
use crate::api::model::Refusal;
use crate::api::notify::event::{closing_frame, heartbeat_frame};
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How often the socket sends `channel.metadata` heartbeats.
/// The notification channel's routes: making a channel, subscribing it, its WebSocket.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v2/notifications/channels", post(create_channel))
        .route(
            "/api/v2/notifications/channels/{id}/subscriptions",
            put(subscribe),
        )
        .route("/notifications/{id}", get(socket))
        .with_state(shared)
}

pub const HEARTBEAT_EVERY: SignedDuration = SignedDuration::from_secs(30);
/// How long before expiry the socket sends `v2.system.socket_closing`.
pub const CLOSING_NOTICE: SignedDuration = SignedDuration::from_secs(60);
/// How long a channel lives (Genesys: 24 h).
pub const CHANNEL_LIFETIME: SignedDuration = SignedDuration::from_hours(24);

/// How the channel fails while the model's notifications are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// The sockets are cut and new ones refused.
    Closed,
    /// The sockets stay open and say nothing, heartbeats included.
    Silent,
}

/// One channel the double made.
#[derive(Debug)]
pub(super) struct Channel {
    topics: HashSet<String>,
    expires: Timestamp,
    /// The open socket's queue, when one is open.
    socket: Option<mpsc::UnboundedSender<String>>,
}

/// The double's notification state.
#[derive(Debug, Default)]
pub(super) struct Channels {
    by_id: HashMap<String, Channel>,
    made: u64,
    pub(super) outage: Option<Outage>,
    pub(super) lifetime: Option<SignedDuration>,
}

impl Shared {
    /// Moves the events due from the model into the open sockets' queues; cuts the sockets
    /// when the channel is dropped closed. Answers whether the sockets must stay silent.
    fn pump(&self, now: Timestamp) -> bool {
        let mut state = self.lock();
        let State {
            model, channels, ..
        } = &mut *state;
        let due = model.notifications_due(now);
        let outage = channels.outage.filter(|_| due.down);
        if outage == Some(Outage::Closed) {
            for channel in channels.by_id.values_mut() {
                channel.socket = None;
            }
        }
        for event in &due.events {
            let topic = crate::api::notify::event::schedule_topic(&event.schedule.business_unit);
            let frame = event.to_frame();
            for channel in channels.by_id.values() {
                if let Some(socket) = channel
                    .socket
                    .as_ref()
                    .filter(|_| channel.topics.contains(&topic))
                {
                    let _ = socket.send(frame.clone());
                }
            }
        }
        outage == Some(Outage::Silent)
    }
}

/// `POST /api/v2/notifications/channels`.
pub(super) async fn create_channel(ctx: Ctx) -> Response {
    let base = ctx.shared.base_url.replacen("http://", "ws://", 1);
    ctx.serve_api(CallKind::CreateChannel, |state, now, client| {
        let admitted = state.model.admit(client, now);
        if let Err(throttled) = admitted {
            return super::routes::refusal(&throttled.refusal);
        }
        let channels = &mut state.channels;
        channels.made += 1;
        let id = format!("channel-{}", channels.made);
        let lifetime = channels.lifetime.unwrap_or(CHANNEL_LIFETIME);
        let expires = now.saturating_add(lifetime).unwrap_or(Timestamp::MAX);
        channels.by_id.insert(
            id.clone(),
            Channel {
                topics: HashSet::new(),
                expires,
                socket: None,
            },
        );
        let body = json!({
            "id": id,
            "connectUri": format!("{base}/notifications/{id}"),
            "expires": expires.to_string(),
        });
        json_response(StatusCode::OK, body)
    })
    .await
}

/// `PUT /api/v2/notifications/channels/{id}/subscriptions` with `[{"id": topic}]`.
pub(super) async fn subscribe(ctx: Ctx, Path(id): Path<String>, body: Bytes) -> Response {
    let topics: Option<Vec<String>> =
        serde_json::from_slice::<Vec<Value>>(&body)
            .ok()
            .map(|list| {
                list.iter()
                    .filter_map(|t| t.get("id")?.as_str().map(str::to_owned))
                    .collect()
            });
    ctx.serve_api(CallKind::Subscribe, |state, now, client| {
        if let Err(throttled) = state.model.admit(client, now) {
            return super::routes::refusal(&throttled.refusal);
        }
        let Some(topics) = topics else {
            let bad = Refusal::BadRequest("the body must be a list of ChannelTopic".into());
            return super::routes::refusal(&bad);
        };
        let Some(channel) = state.channels.by_id.get_mut(&id) else {
            return super::routes::refusal(&Refusal::NotFound(format!("no channel {id}")));
        };
        channel.topics = topics.iter().cloned().collect();
        let entities: Vec<Value> = topics.iter().map(|t| json!({"id": t})).collect();
        json_response(StatusCode::OK, json!({"entities": entities}))
    })
    .await
}

/// `GET /notifications/{id}`: the channel's WebSocket.
pub(super) async fn socket(
    ctx: Ctx,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let shared = Arc::clone(&ctx.shared);
    ctx.serve(CallKind::NotificationSocket, move |state, now| {
        let down =
            state.channels.outage == Some(Outage::Closed) && state.model.notifications_down(now);
        let Some(channel) = state
            .channels
            .by_id
            .get_mut(&id)
            .filter(|c| c.expires > now)
        else {
            return super::routes::refusal(&Refusal::NotFound(format!("no channel {id}")));
        };
        if down {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let (queue, frames) = mpsc::unbounded_channel();
        // One socket per channel: a new one replaces (and so ends) the old.
        channel.socket = Some(queue);
        let expires = channel.expires;
        upgrade.on_upgrade(move |ws| serve_socket(shared, ws, frames, expires))
    })
    .await
}

/// Sends the queued events, the heartbeats and the closing notice until the channel ends.
async fn serve_socket(
    shared: Arc<Shared>,
    mut ws: WebSocket,
    mut frames: mpsc::UnboundedReceiver<String>,
    expires: Timestamp,
) {
    let clock = Arc::clone(&shared.clock);
    let notice_at = expires
        .saturating_sub(CLOSING_NOTICE)
        .unwrap_or(Timestamp::MIN);
    let mut noticed = false;
    let mut heartbeat_at = clock
        .now()
        .saturating_add(HEARTBEAT_EVERY)
        .unwrap_or(Timestamp::MAX);
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let now = clock.now();
        let silent = shared.pump(now);
        loop {
            match frames.try_recv() {
                Ok(frame) => {
                    if ws.send(Frame::Text(frame.into())).await.is_err() {
                        return;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                // Cut (a drop) or replaced: end without a close frame, as a lost link does.
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        if now >= expires {
            let _ = ws.send(Frame::Close(None)).await;
            return;
        }
        let mut say = Vec::new();
        if !silent && !noticed && now >= notice_at {
            noticed = true;
            say.push(closing_frame());
        }
        if now >= heartbeat_at {
            heartbeat_at = now
                .saturating_add(HEARTBEAT_EVERY)
                .unwrap_or(Timestamp::MAX);
            if !silent {
                say.push(heartbeat_frame());
            }
        }
        for frame in say {
            if ws.send(Frame::Text(frame.into())).await.is_err() {
                return;
            }
        }
        let next_event = shared.lock().model.next_notification_at();
        let mut wake_at = heartbeat_at.min(expires);
        if !noticed {
            wake_at = wake_at.min(notice_at);
        }
        if let Some(at) = next_event {
            wake_at = wake_at.min(at);
        }
        tokio::select! {
            () = clock.sleep_until(wake_at) => {}
            () = &mut changed => {}
            received = ws.recv() => match received {
                Some(Ok(Frame::Text(text))) if text.as_str().contains("ping") => {
                    let pong = json!({"topicName": "channel.metadata", "eventBody": {"message": "pong"}});
                    if ws.send(Frame::Text(pong.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Frame::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
