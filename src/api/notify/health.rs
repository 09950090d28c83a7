//! The channel's health, sans-IO: whether it is up, since when without a gap, when the next
//! heartbeat is overdue, when to renew before expiry and when to reconnect.
//!
//! Genesys' socket sends a heartbeat every 30 s and a `v2.system.socket_closing` notice
//! before it closes; a channel lives 24 h (`Channel.expires`). Every way the link can break
//! (a drop, a heartbeat not heard, the closing notice, expiry) is a *gap*: events may have
//! been missed, so the continuity's epoch moves on and every state learnt before is stale.
//! Time and jitter come in as parameters, so the client and the tests run the same code.

use crate::effects::random::RandomSource;
use jiff::{SignedDuration, Timestamp};

/// How the client judges and keeps its channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthConfig {
    /// No message for this long is a missed heartbeat (Genesys sends one every 30 s).
    pub heartbeat_timeout: SignedDuration,
    /// A new channel is made this long before the current one expires.
    pub renew_before: SignedDuration,
    /// The first reconnect delay; it doubles on each failure.
    pub reconnect_initial: SignedDuration,
    /// The longest reconnect delay.
    pub reconnect_max: SignedDuration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout: SignedDuration::from_secs(75),
            renew_before: SignedDuration::from_mins(10),
            reconnect_initial: SignedDuration::from_secs(1),
            reconnect_max: SignedDuration::from_secs(60),
        }
    }
}

/// Why the continuity broke.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum Gap {
    /// The socket closed or failed.
    Dropped(String),
    /// No heartbeat within the timeout.
    MissedHeartbeat,
    /// The channel neared its expiry, or the socket announced it would close.
    Renewal,
    /// Making the channel or subscribing failed.
    Unreachable(String),
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gap::Dropped(why) => write!(f, "the socket dropped: {why}"),
            Gap::MissedHeartbeat => f.write_str("a heartbeat was missed"),
            Gap::Renewal => f.write_str("the channel was renewed before expiry"),
            Gap::Unreachable(why) => write!(f, "the channel could not be made: {why}"),
        }
    }
}

/// What the continuity is: the channel is up and has been since `epoch` began, or it is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Continuity {
    /// Whether events are being heard now.
    pub up: bool,
    /// Moves on at every gap: a state learnt in an earlier epoch may have missed events.
    pub epoch: u64,
}

/// What the client must do next, and by when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing before `until` (then poll again).
    Wait {
        /// When to poll again.
        until: Timestamp,
    },
    /// The heartbeat is overdue: close the socket (the gap is recorded) and reconnect.
    HeartbeatMissed,
    /// Renew: make a new channel (the current one expires soon).
    Renew,
    /// Connect now (make the channel, subscribe, open the socket).
    Connect,
}

#[derive(Clone, Debug)]
enum Link {
    Down {
        retry_at: Timestamp,
        failures: u32,
    },
    Up {
        last_heard: Timestamp,
        expires: Option<Timestamp>,
    },
}

/// The channel's health.
#[derive(Clone, Debug)]
pub struct ChannelHealth {
    config: HealthConfig,
    link: Link,
    epoch: u64,
    gaps: u64,
    messages: u64,
    last_gap: Option<(Timestamp, Gap)>,
}

/// What `/readyz` and the metrics show of the channel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HealthReport {
    /// Whether events are heard now.
    pub up: bool,
    /// The continuity's epoch.
    pub epoch: u64,
    /// Times the continuity broke (an up channel lost).
    pub gaps: u64,
    /// Messages heard (heartbeats and events).
    pub messages: u64,
    /// The last gap or failed attempt, when there was one.
    pub last_gap: Option<String>,
    /// When it was.
    pub last_gap_at: Option<Timestamp>,
}

impl ChannelHealth {
    /// A channel not yet connected: connect at once.
    pub fn new(config: HealthConfig, now: Timestamp) -> Self {
        Self {
            config,
            link: Link::Down {
                retry_at: now,
                failures: 0,
            },
            epoch: 0,
            gaps: 0,
            messages: 0,
            last_gap: None,
        }
    }

    /// The socket is open and subscribed: a new epoch begins.
    pub fn connected(&mut self, now: Timestamp, expires: Option<Timestamp>) -> Continuity {
        self.epoch += 1;
        self.link = Link::Up {
            last_heard: now,
            expires,
        };
        self.continuity()
    }

    /// A message (any: a heartbeat, an event, a pong) arrived.
    pub fn heard(&mut self, now: Timestamp) {
        if let Link::Up { last_heard, .. } = &mut self.link {
            *last_heard = now.max(*last_heard);
            self.messages += 1;
        }
    }

    /// The link broke (or could not be made): a gap; the next attempt waits out a backoff
    /// with full jitter, except after a renewal, which reconnects at once.
    pub fn lost(&mut self, now: Timestamp, gap: Gap, random: &mut dyn RandomSource) {
        let failures = match (&self.link, &gap) {
            (_, Gap::Renewal) => 0,
            (Link::Down { failures, .. }, _) => failures.saturating_add(1),
            (Link::Up { .. }, _) => 1,
        };
        if matches!(self.link, Link::Up { .. }) {
            self.gaps += 1;
        }
        let wait = self.backoff(failures, random);
        self.link = Link::Down {
            retry_at: now.saturating_add(wait).unwrap_or(Timestamp::MAX),
            failures,
        };
        self.last_gap = Some((now, gap));
    }

    /// What is due at `now`.
    pub fn poll(&self, now: Timestamp) -> Due {
        match &self.link {
            Link::Down { retry_at, .. } if *retry_at <= now => Due::Connect,
            Link::Down { retry_at, .. } => Due::Wait { until: *retry_at },
            Link::Up {
                last_heard,
                expires,
            } => {
                let overdue = last_heard
                    .saturating_add(self.config.heartbeat_timeout)
                    .unwrap_or(Timestamp::MAX);
                let renew = expires.map(|e| {
                    e.saturating_sub(self.config.renew_before)
                        .unwrap_or(Timestamp::MIN)
                });
                if overdue <= now {
                    Due::HeartbeatMissed
                } else if renew.is_some_and(|r| r <= now) {
                    Due::Renew
                } else {
                    Due::Wait {
                        until: renew.map_or(overdue, |r| r.min(overdue)),
                    }
                }
            }
        }
    }

    /// Whether the channel is up, and its epoch.
    pub fn continuity(&self) -> Continuity {
        Continuity {
            up: matches!(self.link, Link::Up { .. }),
            epoch: self.epoch,
        }
    }

    /// For `/readyz` and the metrics.
    pub fn report(&self) -> HealthReport {
        HealthReport {
            up: self.continuity().up,
            epoch: self.epoch,
            gaps: self.gaps,
            messages: self.messages,
            last_gap: self.last_gap.as_ref().map(|(_, g)| g.to_string()),
            last_gap_at: self.last_gap.as_ref().map(|(at, _)| *at),
        }
    }

    /// Exponential from `reconnect_initial`, capped, full jitter; none after a renewal.
    fn backoff(&self, failures: u32, random: &mut dyn RandomSource) -> SignedDuration {
        if failures == 0 {
            return SignedDuration::ZERO;
        }
        let exponent = i32::try_from(failures - 1).unwrap_or(i32::MAX).min(30);
        let cap = self.config.reconnect_max.as_secs_f64();
        let ceiling = (self.config.reconnect_initial.as_secs_f64() * 2f64.powi(exponent)).min(cap);
        SignedDuration::try_from_secs_f64(ceiling * random.unit()).unwrap_or(SignedDuration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::clock::{Clock, ManualClock};
    use crate::effects::random::SeededRandom;

    fn start() -> Timestamp {
        Timestamp::from_second(1_772_442_000).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    #[test]
    fn heartbeats_keep_the_epoch_and_a_missed_one_is_due() {
        let clock = ManualClock::new(start());
        let mut health = ChannelHealth::new(HealthConfig::default(), clock.now());
        assert_eq!(health.poll(clock.now()), Due::Connect);
        let first = health.connected(clock.now(), None);
        assert_eq!(first, Continuity { up: true, epoch: 1 });
        for _ in 0..4 {
            clock.advance(secs(30));
            health.heard(clock.now());
            assert!(matches!(health.poll(clock.now()), Due::Wait { .. }));
        }
        assert_eq!(health.continuity(), first);
        clock.advance(secs(74));
        assert!(matches!(health.poll(clock.now()), Due::Wait { .. }));
        clock.advance(secs(1));
        assert_eq!(health.poll(clock.now()), Due::HeartbeatMissed);
    }

    #[test]
    fn a_gap_moves_the_epoch_on_and_reconnects_after_a_jittered_backoff() {
        let clock = ManualClock::new(start());
        let mut random = SeededRandom::new(3);
        let mut health = ChannelHealth::new(HealthConfig::default(), clock.now());
        health.connected(clock.now(), None);
        health.lost(clock.now(), Gap::MissedHeartbeat, &mut random);
        assert_eq!(
            health.continuity(),
            Continuity {
                up: false,
                epoch: 1
            }
        );
        let Due::Wait { until } = health.poll(clock.now()) else {
            return assert_eq!(health.poll(clock.now()), Due::Connect);
        };
        assert!(until <= clock.now() + secs(1));
        clock.set(until);
        assert_eq!(health.poll(clock.now()), Due::Connect);
        assert_eq!(
            health.connected(clock.now(), None),
            Continuity { up: true, epoch: 2 }
        );
        let report = health.report();
        assert_eq!(
            (report.gaps, report.last_gap.as_deref()),
            (1, Some("a heartbeat was missed"))
        );
    }

    #[test]
    fn failed_reconnects_back_off_up_to_the_cap() {
        let clock = ManualClock::new(start());
        let mut random = SeededRandom::new(9);
        let config = HealthConfig::default();
        let mut health = ChannelHealth::new(config, clock.now());
        let mut longest = SignedDuration::ZERO;
        for _ in 0..12 {
            health.lost(clock.now(), Gap::Unreachable("503".into()), &mut random);
            if let Due::Wait { until } = health.poll(clock.now()) {
                longest = longest.max(until.duration_since(clock.now()));
            }
        }
        assert!(longest > secs(8), "the backoff grows: {longest:?}");
        assert!(longest <= config.reconnect_max);
        assert_eq!(health.report().gaps, 0, "nothing was up to break");
    }

    #[test]
    fn the_channel_is_renewed_before_it_expires_and_at_once() {
        let clock = ManualClock::new(start());
        let mut random = SeededRandom::new(1);
        let mut health = ChannelHealth::new(HealthConfig::default(), clock.now());
        let expires = clock.now() + SignedDuration::from_hours(24);
        health.connected(clock.now(), Some(expires));
        let renew_at = expires - SignedDuration::from_mins(10);
        let mut at = clock.now();
        while at < renew_at {
            at += secs(30);
            health.heard(at.min(renew_at));
        }
        clock.set(renew_at - secs(1));
        assert!(matches!(health.poll(clock.now()), Due::Wait { until } if until == renew_at));
        clock.set(renew_at);
        assert_eq!(health.poll(clock.now()), Due::Renew);
        health.lost(clock.now(), Gap::Renewal, &mut random);
        assert_eq!(health.poll(clock.now()), Due::Connect);
        assert_eq!(health.connected(clock.now(), None).epoch, 2);
    }
}
