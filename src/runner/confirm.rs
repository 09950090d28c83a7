//! Confirming decisions made without a read.
//!
//! Genesys' notification service does not guarantee delivery: an event can be lost with no
//! gap the channel notices, and the state the channel kept then misses a change. So a cycle
//! that decided from a kept state and ended without a call of its own (a skip, `done`) is
//! confirmed by one read, debounced per schedule: once its decisions have gone quiet for
//! [`CONFIRM_QUIET`], and at most the cache's age limit (`notifications_max_age`) after the
//! first of them: a state trusted that long decides that long and no longer unconfirmed.
//! Any read of the schedule meanwhile confirms them instead, and an event that shows one was
//! made on an outdated state (a version skipped, or a change made before it heard only
//! later) brings the read forward to at once. A change whose event was lost is thus decided
//! on a read at most that age after the first trigger that missed it.
//!
//! Measured on the storm (`cargo run --release --example storm_table`): a read at once
//! after every such skip made 151 calls on storm-notified.toml, a 5 s gather 107, this 30.

use crate::api::notify::event::ScheduleNotification;
use crate::runner::TimerId;
use jiff::{SignedDuration, Timestamp};

/// How long a schedule's decisions made without a read must go quiet before the read.
pub const CONFIRM_QUIET: SignedDuration = SignedDuration::from_mins(10);

/// Decisions of one schedule made from the channel's kept state since it was last read.
#[derive(Clone, Debug)]
pub(crate) struct Unconfirmed<B> {
    /// The first of them.
    pub cycle: u64,
    /// When it ended.
    pub first: Timestamp,
    /// When the latest ended.
    pub last: Timestamp,
    /// The longest the first may wait for the read.
    pub within: SignedDuration,
    /// The version the latest decided on.
    pub version: i64,
    /// What the confirming cycle evaluates: the latest one's trigger.
    pub basis: B,
    /// The wait armed: its id and instant.
    pub timer: TimerId,
    /// When the armed wait fires.
    pub armed: Timestamp,
    /// The read is due, and waits for the cycle under way to end.
    pub due: bool,
}

impl<B> Unconfirmed<B> {
    /// The first decision (cycle `cycle`, on `version`) at `now`, to be read at most
    /// `within` later, its wait armed as `timer` (at [`Unconfirmed::until`]).
    pub fn new(
        cycle: u64,
        version: i64,
        basis: B,
        now: Timestamp,
        within: SignedDuration,
        timer: TimerId,
    ) -> Self {
        let mut first = Unconfirmed {
            cycle,
            first: now,
            last: now,
            within,
            version,
            basis,
            timer,
            armed: now,
            due: false,
        };
        first.armed = first.until();
        first
    }

    /// Another decision, on `version`, at `now`.
    pub fn again(&mut self, version: i64, basis: B, now: Timestamp) {
        self.last = now;
        self.version = version;
        self.basis = basis;
    }

    /// When the read is due: the decisions quiet, or the first one's limit reached.
    pub fn until(&self) -> Timestamp {
        let quiet = self.last.saturating_add(CONFIRM_QUIET);
        let within = self.first.saturating_add(self.within);
        match (quiet, within) {
            (Ok(q), Ok(w)) => q.min(w),
            (Ok(t), Err(_)) | (Err(_), Ok(t)) => t,
            (Err(_), Err(_)) => Timestamp::MAX,
        }
    }

    /// Whether `event` (someone else's change) shows the latest decision was made on an
    /// outdated state: a version between it and the event's was never heard, or the change
    /// was made before the decision and heard after it.
    pub fn outdated_by(&self, event: &ScheduleNotification) -> bool {
        let version = event.snapshot.version;
        let skipped = version > self.version.saturating_add(1);
        let late =
            version > self.version && event.snapshot.modified_at.is_some_and(|at| at <= self.last);
        skipped || late
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::notify::event::ScheduleEventType;
    use crate::api::{OperationStatus, ScheduleRef, ScheduleSnapshot};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_772_442_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn edit(version: i64, modified: i64) -> ScheduleNotification {
        ScheduleNotification {
            schedule: ScheduleRef {
                business_unit: "bu-1".into(),
                week: jiff::civil::date(2026, 3, 2),
                schedule_id: "s1".into(),
            },
            status: OperationStatus::Complete,
            operation_id: None,
            event_type: ScheduleEventType::Update,
            snapshot: ScheduleSnapshot {
                published: false,
                version,
                modified_at: Some(at(modified)),
                modified_by: Some("planner".into()),
                publishing: false,
                other_published: None,
            },
        }
    }

    #[test]
    fn the_read_waits_for_quiet_but_never_past_the_limit() {
        let within = SignedDuration::from_mins(30);
        let mut u = Unconfirmed::new(1, 4, (), at(0), within, TimerId(1));
        assert_eq!(u.until(), at(600));
        u.again(4, (), at(500));
        assert_eq!(u.until(), at(1100));
        // Decisions every 500 s never go quiet: the first one's limit holds.
        for s in (1000..3000).step_by(500) {
            u.again(4, (), at(s));
        }
        assert_eq!(u.until(), at(1800));
        // A limit below the quiet: the limit.
        let short = Unconfirmed::new(1, 4, (), at(0), SignedDuration::from_mins(2), TimerId(1));
        assert_eq!(short.until(), at(120));
    }

    #[test]
    fn an_event_that_skips_a_version_or_came_late_outdates_the_decision() {
        let u = Unconfirmed::new(1, 4, (), at(100), SignedDuration::from_mins(30), TimerId(1));
        // The next version, changed after the decision: a change of its own, not missed.
        assert!(!u.outdated_by(&edit(5, 101)));
        // Changed before the decision, heard after it.
        assert!(u.outdated_by(&edit(5, 99)));
        // Version 5's event never came: lost.
        assert!(u.outdated_by(&edit(6, 200)));
        // An older state, heard late, says nothing new.
        assert!(!u.outdated_by(&edit(4, 50)));
    }
}
