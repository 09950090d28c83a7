//! The notification client: keeps one channel subscribed to the schedule topic of every
//! business unit served, reads its WebSocket, and reports what it heard, in order.
//!
//! Heartbeats are tracked, not answered: Genesys' `channel.metadata` heartbeat needs no
//! reply (WebSocket-level pings are answered by tungstenite itself). A heartbeat not heard
//! in time, the closing notice, nearing expiry and any drop all end the socket; the
//! continuity then breaks ([`Heard::Gap`]) and a new channel is made, at once for a renewal
//! and after a jittered backoff otherwise ([`super::health`]).

use super::event::{Message, schedule_topic};
use super::health::{ChannelHealth, Due, Gap, HealthConfig, HealthReport};
use super::{ChannelInfo, Heard, Notifications};
use crate::api::ApiError;
use crate::effects::clock::Clock;
use crate::effects::random::RandomSource;
use futures_util::StreamExt;
use jiff::Timestamp;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Keeps the channel; reports what it hears to a receiver and its health to a watcher.
pub struct NotificationClient<'a, N, R> {
    api: &'a N,
    clock: &'a dyn Clock,
    random: R,
    topics: Vec<String>,
    health: ChannelHealth,
    report: watch::Sender<HealthReport>,
}

impl<'a, N: Notifications, R: RandomSource> NotificationClient<'a, N, R> {
    /// A client for these business units' schedule topics.
    pub fn new(
        api: &'a N,
        clock: &'a dyn Clock,
        random: R,
        business_units: &[String],
        config: HealthConfig,
    ) -> Self {
        let health = ChannelHealth::new(config, clock.now());
        let (report, _) = watch::channel(health.report());
        Self {
            api,
            clock,
            random,
            topics: business_units.iter().map(|bu| schedule_topic(bu)).collect(),
            health,
            report,
        }
    }

    /// Reports the health to `report` (made before the client, by the relay) from now on.
    pub fn reporting_to(mut self, report: watch::Sender<HealthReport>) -> Self {
        report.send_replace(self.health.report());
        self.report = report;
        self
    }

    /// Watches the channel's health (for `/readyz` and the metrics).
    pub fn health(&self) -> watch::Receiver<HealthReport> {
        self.report.subscribe()
    }

    /// Runs until `out`'s receiver is dropped.
    pub async fn run(mut self, out: mpsc::Sender<Heard>) {
        let mut socket: Option<Socket> = None;
        loop {
            let now = self.clock.now();
            let broke = match (self.health.poll(now), socket.as_mut()) {
                (Due::Connect, _) => match self.connect().await {
                    Ok((opened, expires)) => {
                        socket = Some(opened);
                        let up = self.health.connected(self.clock.now(), expires);
                        tracing::info!(epoch = up.epoch, "notification channel up");
                        self.publish_health();
                        if out.send(Heard::Up(up)).await.is_err() {
                            return;
                        }
                        None
                    }
                    Err(e) => Some(Gap::Unreachable(e.to_string())),
                },
                (Due::HeartbeatMissed, _) => Some(Gap::MissedHeartbeat),
                (Due::Renew, _) => Some(Gap::Renewal),
                (Due::Wait { until }, None) => {
                    tokio::select! {
                        () = self.clock.sleep_until(until) => None,
                        () = out.closed() => return,
                    }
                }
                (Due::Wait { until }, Some(open)) => {
                    tokio::select! {
                        () = self.clock.sleep_until(until) => None,
                        () = out.closed() => return,
                        frame = open.next() => match self.take(frame, &out).await {
                            Ok(gap) => gap,
                            Err(Closed) => return,
                        },
                    }
                }
            };
            if let Some(gap) = broke {
                if let Some(mut open) = socket.take() {
                    let _ = open.close(None).await;
                }
                let was_up = self.health.continuity().up;
                self.health
                    .lost(self.clock.now(), gap.clone(), &mut self.random);
                tracing::warn!(%gap, "notification channel gap");
                self.publish_health();
                let continuity = self.health.continuity();
                if was_up && out.send(Heard::Gap { continuity, gap }).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Makes a channel, subscribes the topics, opens the socket.
    async fn connect(&self) -> Result<(Socket, Option<Timestamp>), ApiError> {
        let created = self.api.create_channel().await?;
        let channel: ChannelInfo = created
            .body
            .ok_or_else(|| refused("create_channel", created.status))?;
        let subscribed = self.api.subscribe(&channel.id, &self.topics).await?;
        if subscribed.body.is_none() {
            return Err(refused("subscribe", subscribed.status));
        }
        let (socket, _) = tokio_tungstenite::connect_async(channel.connect_uri.as_str())
            .await
            .map_err(|e| ApiError::Transport {
                call: "notification socket",
                reason: e.to_string(),
            })?;
        Ok((socket, channel.expires))
    }

    /// Handles one frame; a gap when the socket ended or announced its end.
    async fn take(
        &mut self,
        frame: Option<Result<Frame, tokio_tungstenite::tungstenite::Error>>,
        out: &mpsc::Sender<Heard>,
    ) -> Result<Option<Gap>, Closed> {
        let text = match frame {
            None => return Ok(Some(Gap::Dropped("the socket closed".into()))),
            Some(Err(e)) => return Ok(Some(Gap::Dropped(e.to_string()))),
            Some(Ok(Frame::Close(_))) => {
                return Ok(Some(Gap::Dropped("closed by the service".into())));
            }
            Some(Ok(Frame::Text(text))) => text,
            Some(Ok(_)) => {
                self.health.heard(self.clock.now());
                return Ok(None);
            }
        };
        self.health.heard(self.clock.now());
        self.publish_health();
        match Message::parse(&text) {
            Ok(Message::Schedule(event)) => {
                out.send(Heard::Schedule(event)).await.map_err(|_| Closed)?;
                Ok(None)
            }
            Ok(Message::Closing) => Ok(Some(Gap::Renewal)),
            Ok(Message::Heartbeat | Message::Pong | Message::Other(_)) => Ok(None),
            Err(e) => {
                // An event we cannot read is an event missed.
                tracing::warn!(error = %e, "unreadable notification");
                Ok(Some(Gap::Dropped(e.to_string())))
            }
        }
    }

    fn publish_health(&self) {
        self.report.send_replace(self.health.report());
    }
}

/// The receiver of what is heard is gone.
struct Closed;

fn refused(call: &'static str, status: u16) -> ApiError {
    ApiError::Protocol {
        call,
        reason: format!("answered {status}"),
    }
}
