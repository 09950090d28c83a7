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
//! later) brings the read forward to at once. The read's cycle runs the trigger phase
//! again only when it shows such a miss ([`Seen::outdated_by`]); otherwise it ends
//! `confirmed` and the decisions stand. A change whose event was lost is thus decided on a
//! read at most that age after the first trigger that missed it.
//!
//! Measured on `rules/scenarios/storm-notified.toml` (`publish-guard simulate`): a read at
//! once after every such skip made 151 calls, a 5 s gather before it 107, this 30 (29
//! without any); the README has the storm's figures.

use crate::api::ScheduleSnapshot;
use crate::runner::TimerId;
use jiff::{SignedDuration, Timestamp};

/// How long a schedule's decisions made without a read must go quiet before the read.
pub const CONFIRM_QUIET: SignedDuration = SignedDuration::from_mins(10);

/// What the latest decision made without a read saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The version it decided on.
    pub version: i64,
    /// When it was made.
    pub at: Timestamp,
}

impl Seen {
    /// Whether `state` (heard or read since) shows the decision was made on an outdated
    /// state: a version between the two was never seen, or the change to it was made before
    /// the decision (or when, is not said). A change made after the decision is a later
    /// trigger's affair, as it would be without the channel.
    pub fn outdated_by(&self, state: &ScheduleSnapshot) -> bool {
        let version = state.version;
        let skipped = version > self.version.saturating_add(1);
        let before = state.modified_at.is_none_or(|at| at <= self.at);
        skipped || (version > self.version && before)
    }
}

/// Decisions of one schedule made from the channel's kept state since it was last read.
#[derive(Clone, Debug)]
pub(crate) struct Unconfirmed<B> {
    /// The first of them.
    pub cycle: u64,
    /// When it ended.
    pub first: Timestamp,
    /// The longest the first may wait for the read.
    pub within: SignedDuration,
    /// What the latest saw.
    pub seen: Seen,
    /// What the confirming cycle evaluates: the latest one's trigger (the caller folds each
    /// in, so a duplicate never displaces a delivery).
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
            within,
            seen: Seen { version, at: now },
            basis,
            timer,
            armed: now,
            due: false,
        };
        first.armed = first.until();
        first
    }

    /// Another decision, on `version`, at `now` (its trigger folded into `basis` by the
    /// caller).
    pub fn again(&mut self, version: i64, now: Timestamp) {
        self.seen = Seen { version, at: now };
    }

    /// When the read is due: the decisions quiet, or the first one's limit reached.
    pub fn until(&self) -> Timestamp {
        let quiet = self.seen.at.saturating_add(CONFIRM_QUIET);
        let within = self.first.saturating_add(self.within);
        match (quiet, within) {
            (Ok(q), Ok(w)) => q.min(w),
            (Ok(t), Err(_)) | (Err(_), Ok(t)) => t,
            (Err(_), Err(_)) => Timestamp::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_772_442_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn edit(version: i64, modified: Option<i64>) -> ScheduleSnapshot {
        ScheduleSnapshot {
            published: false,
            version,
            modified_at: modified.map(at),
            modified_by: Some("planner".into()),
            publishing: false,
            other_published: None,
        }
    }

    #[test]
    fn the_read_waits_for_quiet_but_never_past_the_limit() {
        let within = SignedDuration::from_mins(30);
        let mut u = Unconfirmed::new(1, 4, (), at(0), within, TimerId(1));
        assert_eq!(u.until(), at(600));
        u.again(4, at(500));
        assert_eq!(u.until(), at(1100));
        // Decisions every 500 s never go quiet: the first one's limit holds.
        for s in (1000..3000).step_by(500) {
            u.again(4, at(s));
        }
        assert_eq!(u.until(), at(1800));
        // A limit below the quiet: the limit.
        let short = Unconfirmed::new(1, 4, (), at(0), SignedDuration::from_mins(2), TimerId(1));
        assert_eq!(short.until(), at(120));
    }

    #[test]
    fn a_state_that_skips_a_version_or_changed_before_the_decision_outdates_it() {
        let seen = Seen {
            version: 4,
            at: at(100),
        };
        // The same version: the decision stands.
        assert!(!seen.outdated_by(&edit(4, Some(50))));
        // The next version, changed after the decision: a change of its own, not missed.
        assert!(!seen.outdated_by(&edit(5, Some(101))));
        // Changed before the decision, heard or read after it.
        assert!(seen.outdated_by(&edit(5, Some(99))));
        // When it changed is not said: taken for missed.
        assert!(seen.outdated_by(&edit(5, None)));
        // Version 5 was never seen: lost.
        assert!(seen.outdated_by(&edit(6, Some(200))));
    }
}
