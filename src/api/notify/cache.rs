//! What the runner may know about a schedule without reading it: the state last read or
//! heard, trusted only while the channel has stayed up without a gap since then, and only
//! for a configurable age.
//!
//! The version only moves when a write lands, so an event never takes a state backwards:
//! one older than what is known (a delayed event after a read) is ignored.

use super::Heard;
use super::event::ScheduleNotification;
use super::health::Continuity;
use crate::api::{OperationStatus, ScheduleRef, ScheduleSnapshot};
use jiff::{SignedDuration, Timestamp};
use std::collections::{HashMap, HashSet};

/// How long a cached state may decide a trigger unless configured otherwise.
pub const DEFAULT_MAX_AGE: SignedDuration = SignedDuration::from_mins(30);

/// How the last known state was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learnt {
    /// A read answered it.
    Read,
    /// An event on the channel told it.
    Event,
    /// The follow read that ended the cycle before, at this instant (no channel needed).
    Follow,
}

/// Why no cached state may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stale {
    /// Nothing was learnt about this schedule yet.
    Unknown,
    /// The channel is down now.
    ChannelDown,
    /// A gap since it was learnt: events may have been missed.
    Gap,
    /// Older than the configured age.
    TooOld,
}

/// A state the runner may decide from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    /// The schedule as last known.
    pub snapshot: ScheduleSnapshot,
    /// When it was learnt.
    pub at: Timestamp,
    /// How.
    pub by: Learnt,
}

#[derive(Clone, Debug)]
struct Entry {
    cached: Cached,
    epoch: u64,
}

/// The known states and the continuity they depend on.
#[derive(Clone, Debug)]
pub struct StateCache {
    max_age: SignedDuration,
    continuity: Continuity,
    entries: HashMap<ScheduleRef, Entry>,
    /// The business units whose topics are subscribed, when not all are: a schedule of
    /// another unit is never cached, since none of its changes would be heard.
    scope: Option<HashSet<String>>,
}

impl StateCache {
    /// An empty cache whose states expire after `max_age`; the channel is taken for down.
    pub fn new(max_age: SignedDuration) -> Self {
        Self {
            max_age,
            continuity: Continuity {
                up: false,
                epoch: 0,
            },
            entries: HashMap::new(),
            scope: None,
        }
    }

    /// Caches only the schedules of these business units (the topics subscribed).
    pub fn only(mut self, business_units: &[String]) -> Self {
        self.scope = Some(business_units.iter().cloned().collect());
        self
    }

    /// Whether changes to `schedule` are heard at all.
    fn in_scope(&self, schedule: &ScheduleRef) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|units| units.contains(&schedule.business_unit))
    }

    /// How long a state learnt may decide a trigger.
    pub fn max_age(&self) -> SignedDuration {
        self.max_age
    }

    /// The continuity as last heard.
    pub fn continuity(&self) -> Continuity {
        self.continuity
    }

    /// Takes in what the channel said, in the order it said it.
    pub fn heard(&mut self, heard: &Heard, now: Timestamp) {
        match heard {
            Heard::Up(continuity) | Heard::Gap { continuity, .. } => {
                self.continuity = *continuity;
                if !continuity.up && !broken::gaps_ignored() {
                    // Nothing learnt before a gap can be trusted again: drop it all.
                    self.entries.clear();
                }
            }
            Heard::Schedule(notification) => self.event(notification, now),
        }
    }

    /// A read, sent while the continuity was `sent_in`, answered `snapshot` at `now`.
    pub fn read(
        &mut self,
        schedule: &ScheduleRef,
        snapshot: &ScheduleSnapshot,
        sent_in: Continuity,
        now: Timestamp,
    ) {
        let gap = (!sent_in.up || sent_in != self.continuity) && !broken::gaps_ignored();
        if gap || !self.in_scope(schedule) {
            // A gap since the read went out (what it saw may already be overtaken unheard),
            // or a unit not subscribed (nothing of it is ever heard).
            self.entries.remove(schedule);
            return;
        }
        let newer = self
            .entries
            .get(schedule)
            .is_none_or(|e| e.cached.snapshot.version <= snapshot.version);
        if newer {
            self.put(schedule, snapshot.clone(), Learnt::Read, now);
        }
    }

    /// The state to decide from, or why there is none.
    pub fn lookup(&self, schedule: &ScheduleRef, now: Timestamp) -> Result<&Cached, Stale> {
        if !self.continuity.up {
            return Err(Stale::ChannelDown);
        }
        let entry = self.entries.get(schedule).ok_or(Stale::Unknown)?;
        if entry.epoch != self.continuity.epoch && !broken::gaps_ignored() {
            return Err(Stale::Gap);
        }
        if now.duration_since(entry.cached.at) > self.max_age {
            return Err(Stale::TooOld);
        }
        Ok(&entry.cached)
    }

    fn event(&mut self, n: &ScheduleNotification, now: Timestamp) {
        if !self.continuity.up || !self.in_scope(&n.schedule) {
            return;
        }
        let known = self.entries.get(&n.schedule).map(|e| &e.cached.snapshot);
        let next = match n.status {
            OperationStatus::Complete => {
                let newer = known.is_none_or(|k| k.version < n.snapshot.version);
                newer.then(|| n.snapshot.clone())
            }
            OperationStatus::Processing => {
                let current = known.is_none_or(|k| k.version <= n.snapshot.version);
                current.then(|| ScheduleSnapshot {
                    publishing: true,
                    ..n.snapshot.clone()
                })
            }
            // The operation failed: nothing changed but that it no longer runs.
            OperationStatus::Error | OperationStatus::Canceled => match known {
                Some(k) if k.version == n.snapshot.version => Some(ScheduleSnapshot {
                    publishing: false,
                    ..k.clone()
                }),
                Some(_) => None,
                None => Some(n.snapshot.clone()),
            },
        };
        if let Some(snapshot) = next {
            self.put(&n.schedule, snapshot, Learnt::Event, now);
        }
    }

    fn put(
        &mut self,
        schedule: &ScheduleRef,
        snapshot: ScheduleSnapshot,
        by: Learnt,
        at: Timestamp,
    ) {
        let entry = Entry {
            cached: Cached { snapshot, at, by },
            epoch: self.continuity.epoch,
        };
        self.entries.insert(schedule.clone(), entry);
    }
}

/// A deliberately broken cache, for tests only: `explore` must catch it.
pub mod broken {
    #[cfg(test)]
    thread_local! {
        /// Keep what was learnt across a gap in the channel, as if no event could have been
        /// missed.
        pub static IGNORE_GAPS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Whether this thread's cache trusts states across gaps (tests only).
    pub fn gaps_ignored() -> bool {
        #[cfg(test)]
        {
            IGNORE_GAPS.with(std::cell::Cell::get)
        }
        #[cfg(not(test))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::notify::event::ScheduleEventType;
    use crate::api::notify::health::Gap;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_772_442_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn sched() -> ScheduleRef {
        ScheduleRef {
            business_unit: "bu-1".into(),
            week: jiff::civil::date(2026, 3, 2),
            schedule_id: "s1".into(),
        }
    }

    fn snap(published: bool, version: i64) -> ScheduleSnapshot {
        ScheduleSnapshot {
            published,
            version,
            modified_at: None,
            modified_by: None,
            publishing: false,
            other_published: None,
        }
    }

    fn event(status: OperationStatus, published: bool, version: i64) -> Heard {
        Heard::Schedule(ScheduleNotification {
            schedule: sched(),
            status,
            operation_id: None,
            event_type: ScheduleEventType::Update,
            snapshot: snap(published, version),
        })
    }

    fn up(epoch: u64) -> Heard {
        Heard::Up(Continuity { up: true, epoch })
    }

    fn published_version(cache: &StateCache, now: Timestamp) -> Result<(bool, i64), Stale> {
        cache
            .lookup(&sched(), now)
            .map(|c| (c.snapshot.published, c.snapshot.version))
    }

    #[test]
    fn a_read_then_events_keep_the_state_current() {
        let mut cache = StateCache::new(SignedDuration::from_mins(5));
        assert_eq!(published_version(&cache, at(0)), Err(Stale::ChannelDown));
        cache.heard(&up(1), at(0));
        assert_eq!(published_version(&cache, at(0)), Err(Stale::Unknown));
        cache.read(&sched(), &snap(true, 4), cache.continuity(), at(1));
        assert_eq!(published_version(&cache, at(2)), Ok((true, 4)));
        cache.heard(&event(OperationStatus::Complete, false, 5), at(3));
        assert_eq!(published_version(&cache, at(4)), Ok((false, 5)));
        assert_eq!(
            cache.lookup(&sched(), at(4)).map(|c| c.by),
            Ok(Learnt::Event)
        );
    }

    #[test]
    fn a_delayed_event_never_takes_the_state_back() {
        let mut cache = StateCache::new(SignedDuration::from_mins(5));
        cache.heard(&up(1), at(0));
        cache.read(&sched(), &snap(true, 6), cache.continuity(), at(1));
        cache.heard(&event(OperationStatus::Complete, false, 5), at(2));
        assert_eq!(published_version(&cache, at(3)), Ok((true, 6)));
    }

    #[test]
    fn processing_then_error_leaves_the_version_and_clears_publishing() {
        let mut cache = StateCache::new(SignedDuration::from_mins(5));
        cache.heard(&up(1), at(0));
        cache.read(&sched(), &snap(false, 5), cache.continuity(), at(1));
        cache.heard(&event(OperationStatus::Processing, false, 5), at(2));
        assert_eq!(
            cache.lookup(&sched(), at(2)).map(|c| c.snapshot.publishing),
            Ok(true)
        );
        cache.heard(&event(OperationStatus::Error, false, 5), at(3));
        let known = cache.lookup(&sched(), at(3)).map(|c| c.snapshot.clone());
        assert_eq!(known, Ok(snap(false, 5)));
    }

    #[test]
    fn a_gap_makes_every_state_stale_until_read_again() {
        let mut cache = StateCache::new(SignedDuration::from_mins(5));
        cache.heard(&up(1), at(0));
        cache.read(&sched(), &snap(false, 5), cache.continuity(), at(1));
        let down = Continuity {
            up: false,
            epoch: 1,
        };
        cache.heard(
            &Heard::Gap {
                continuity: down,
                gap: Gap::MissedHeartbeat,
            },
            at(2),
        );
        assert_eq!(published_version(&cache, at(2)), Err(Stale::ChannelDown));
        cache.heard(&up(2), at(3));
        assert_eq!(published_version(&cache, at(3)), Err(Stale::Unknown));
        cache.read(&sched(), &snap(true, 6), cache.continuity(), at(4));
        assert_eq!(published_version(&cache, at(4)), Ok((true, 6)));
    }

    #[test]
    fn a_read_sent_before_a_gap_is_not_trusted() {
        let mut cache = StateCache::new(SignedDuration::from_mins(5));
        cache.heard(&up(1), at(0));
        let sent_in = cache.continuity();
        cache.heard(&up(2), at(1));
        cache.read(&sched(), &snap(true, 6), sent_in, at(2));
        assert_eq!(published_version(&cache, at(2)), Err(Stale::Unknown));
    }

    #[test]
    fn a_schedule_of_a_unit_not_subscribed_is_never_cached() {
        let mut cache = StateCache::new(SignedDuration::from_mins(5)).only(&["bu-2".into()]);
        cache.heard(&up(1), at(0));
        cache.read(&sched(), &snap(true, 6), cache.continuity(), at(1));
        assert_eq!(published_version(&cache, at(1)), Err(Stale::Unknown));
        cache.heard(&event(OperationStatus::Complete, true, 7), at(2));
        assert_eq!(published_version(&cache, at(2)), Err(Stale::Unknown));
    }

    #[test]
    fn a_state_expires_after_its_age() {
        let mut cache = StateCache::new(SignedDuration::from_mins(5));
        cache.heard(&up(1), at(0));
        cache.read(&sched(), &snap(true, 6), cache.continuity(), at(0));
        assert!(cache.lookup(&sched(), at(300)).is_ok());
        assert_eq!(published_version(&cache, at(301)), Err(Stale::TooOld));
    }
}
