//! What a durable store keeps of one runner's cycles across a restart, read from the runner's
//! events: the triggers each cycle answers until it ends, and the write of ours the cycle has
//! under way, noted on those triggers. A cycle that decided from the channel's kept state
//! (`runner::confirm`) leaves its triggers pending, unconfirmed, until a read of the schedule:
//! the confirm read is the runner's memory only, so a restart must read again. The relay's worker keeps it in its store and the
//! simulator's `[[restart]]` keeps the same, both from this one reading, so they cannot
//! drift apart.

use super::EarlierWrite;
use super::event::{CycleCause, Event, EventKind, Outcome};
use crate::api::notify::cache::Learnt;
use crate::api::{OperationStatus, ScheduleRef};
use crate::language::ast::{ActionKind, PhaseKind};
use jiff::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use std::hash::Hash;

/// What an event changes in what the store keeps of a cycle's triggers.
#[derive(Clone, Debug, PartialEq)]
pub enum Change<T> {
    /// The note of our write on each of `triggers` is now `write` (`None`: no write of
    /// ours is under way).
    Write {
        /// The cycle's triggers.
        triggers: Vec<T>,
        /// The write, as a restarted runner is to resume it.
        write: Option<EarlierWrite>,
    },
    /// The cycle ended: each of `triggers` stands as `after` says, with no write noted.
    Ended {
        /// The triggers it answered.
        triggers: Vec<T>,
        /// Where they stand.
        after: After,
    },
}

/// Where a trigger stands once a cycle that answers it has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    /// Deferred: fed again once `due`, not as a new delivery.
    Again {
        /// When the deferral runs out.
        due: Timestamp,
    },
    /// Decided from the channel's kept state and not confirmed by a read yet: kept pending
    /// until a read of the schedule settles it, fed again at once after a restart (whose
    /// cache is empty, so it reads).
    Unconfirmed,
    /// Given up on (a failure, a refused login): never fed again.
    Failed {
        /// Why.
        reason: String,
    },
    /// Finished otherwise: never fed again.
    Done,
}

impl After {
    /// Where a cycle that ended in `outcome` leaves its triggers; `from_kept`: it decided
    /// from the channel's kept state, no read since. Such a skip or `done` made no call
    /// that could have shown a missed change (a publish would meet a 409), so it waits for
    /// the runner's confirm read.
    pub fn of(outcome: &Outcome, from_kept: bool) -> After {
        match outcome {
            Outcome::Deferred { until } => After::Again { due: *until },
            Outcome::Failed { reason } | Outcome::Unauthorized { reason } => After::Failed {
                reason: reason.clone(),
            },
            Outcome::Skipped { .. } | Outcome::Done if from_kept => After::Unconfirmed,
            _ => After::Done,
        }
    }
}

/// One runner's cycles as its store sees them: triggers `T` (as the store names them) fed
/// by sequence number, claimed by cycles of schedules `S` (as the caller names them).
#[derive(Clone, Debug)]
pub struct KeptCycles<S, T> {
    /// Fed and not yet taken up by a cycle, by the runner's sequence number.
    by_seq: FxHashMap<u64, T>,
    /// The triggers each cycle in flight answers.
    cycles: FxHashMap<(S, u64), Vec<T>>,
    /// The version each cycle last read or knew: a decision to publish writes at it.
    read: FxHashMap<(S, u64), i64>,
    /// Cycles deciding from the channel's kept state, with no read of their own since.
    from_kept: FxHashSet<(S, u64)>,
    /// Triggers of ended cycles that decided from the kept state, by schedule, until a read
    /// of it: the cycle that reads (the confirming one, or any other) answers them too.
    unconfirmed: FxHashMap<S, Vec<T>>,
}

impl<S, T> Default for KeptCycles<S, T> {
    fn default() -> Self {
        Self {
            by_seq: FxHashMap::default(),
            cycles: FxHashMap::default(),
            read: FxHashMap::default(),
            from_kept: FxHashSet::default(),
            unconfirmed: FxHashMap::default(),
        }
    }
}

impl<S: Hash + Eq + Clone, T: Clone> KeptCycles<S, T> {
    /// `trigger` was fed to the runner as its `seq`.
    pub fn fed(&mut self, seq: u64, trigger: T) {
        self.by_seq.insert(seq, trigger);
    }

    /// The trigger fed as `seq`, taken back before any cycle claimed it.
    pub fn take_fed(&mut self, seq: u64) -> Option<T> {
        self.by_seq.remove(&seq)
    }

    /// `triggers` join the cycle `cycle` of `schedule` (their deferral ran out into it).
    pub fn join(&mut self, schedule: S, cycle: u64, triggers: impl IntoIterator<Item = T>) {
        self.cycles
            .entry((schedule, cycle))
            .or_default()
            .extend(triggers);
    }

    /// What `event`, about `schedule`, changes in what the store keeps.
    pub fn event(&mut self, schedule: S, event: &Event) -> Option<Change<T>> {
        let key = (schedule, event.cycle?);
        match &event.kind {
            EventKind::CycleStarted {
                cause: CycleCause::Trigger { trigger },
            }
            | EventKind::TriggerCoalesced { trigger, .. } => {
                if let Some(t) = self.by_seq.remove(trigger) {
                    self.cycles.entry(key).or_default().push(t);
                }
                None
            }
            // The read decides what the unconfirmed decisions decided, so its cycle answers
            // their triggers.
            EventKind::CycleStarted {
                cause: CycleCause::Confirm { .. },
            } => {
                self.take_unconfirmed(key);
                None
            }
            EventKind::StateRead {
                version: Some(version),
                ..
            } => {
                self.read.insert(key.clone(), *version);
                self.from_kept.remove(&key);
                self.take_unconfirmed(key);
                None
            }
            EventKind::StateKnown {
                version, learnt, ..
            } => {
                self.read.insert(key.clone(), *version);
                // The follow read that ended the cycle before is a read.
                if *learnt != Learnt::Follow {
                    self.from_kept.insert(key);
                }
                None
            }
            // Noted before the call goes out, and again once it is accepted.
            EventKind::Decision {
                phase: PhaseKind::Trigger,
                action: ActionKind::Publish,
                ..
            } => {
                let version = *self.read.get(&key)?;
                self.write(&key, Some(ours(event, version, false)))
            }
            EventKind::PublishCall {
                version,
                status: Some(200..=299),
                operation: Some(OperationStatus::Processing | OperationStatus::Complete),
                ..
            } => self.write(&key, Some(ours(event, *version, true))),
            // Answered without accepting it (a 5xx or no answer, which Genesys may or may
            // not have taken; a 429; an operation that ended at once): the runner holds what
            // it knew before the write, no write of ours running. A 409 keeps the note: to
            // the same write as an earlier process's, it shows that one ours and running.
            EventKind::PublishCall { status, .. } if *status != Some(409) => self.write(&key, None),
            EventKind::Outcome { outcome, .. } => {
                self.read.remove(&key);
                let from_kept = self.from_kept.remove(&key);
                let triggers = self.cycles.remove(&key).unwrap_or_default();
                let after = After::of(outcome, from_kept);
                if after == After::Unconfirmed {
                    let (schedule, _) = key;
                    let waiting = self.unconfirmed.entry(schedule).or_default();
                    waiting.extend(triggers.iter().cloned());
                }
                Some(Change::Ended { triggers, after })
            }
            _ => None,
        }
    }

    /// The unconfirmed triggers of `key`'s schedule join the cycle `key`.
    fn take_unconfirmed(&mut self, key: (S, u64)) {
        if let Some(waiting) = self.unconfirmed.remove(&key.0) {
            self.cycles.entry(key).or_default().extend(waiting);
        }
    }

    /// The note of our write on the triggers of the cycle `key` is now `write`.
    fn write(&self, key: &(S, u64), write: Option<EarlierWrite>) -> Option<Change<T>> {
        let triggers = self.cycles.get(key)?.clone();
        Some(Change::Write { triggers, write })
    }
}

/// Our write at `version`, as `event` decided or accepted it.
fn ours(event: &Event, version: i64, accepted: bool) -> EarlierWrite {
    EarlierWrite {
        schedule: ScheduleRef::clone(&event.schedule),
        version,
        since: event.at,
        accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(cycle: u64, kind: EventKind) -> Event {
        Event {
            at: "2026-03-02T10:00:00Z".parse().expect("instant"),
            schedule: Arc::new(ScheduleRef {
                business_unit: "bu-1".into(),
                week: jiff::civil::date(2026, 3, 2),
                schedule_id: "s01".into(),
            }),
            policy_version: Arc::from("v"),
            cycle: Some(cycle),
            kind,
        }
    }

    fn publish_call(status: Option<u16>, operation: Option<OperationStatus>) -> EventKind {
        EventKind::PublishCall {
            version: 3,
            idempotency_key: "k".into(),
            status,
            error: None,
            retry_after: None,
            operation,
            operation_id: None,
        }
    }

    /// A read of the schedule that found a draft at `version`.
    fn draft_read(version: i64) -> EventKind {
        EventKind::StateRead {
            purpose: crate::runner::event::ReadPurpose::Evaluate,
            status: Some(200),
            error: None,
            state: crate::runner::ScheduleState::Draft,
            published: Some(false),
            version: Some(version),
        }
    }

    /// A cycle of trigger "t" that read version 3 and decided to publish, then `answer`:
    /// the note the answer leaves on "t", if it changes it.
    fn note_after(answer: EventKind) -> Option<Option<EarlierWrite>> {
        let mut kept = KeptCycles::<u32, &str>::default();
        kept.fed(7, "t");
        let started = EventKind::CycleStarted {
            cause: CycleCause::Trigger { trigger: 7 },
        };
        assert_eq!(kept.event(0, &event(1, started)), None);
        let read = draft_read(3);
        assert_eq!(kept.event(0, &event(1, read)), None);
        let decision = EventKind::Decision {
            phase: PhaseKind::Trigger,
            rule: "ready".into(),
            action: ActionKind::Publish,
            detail: None,
        };
        let decided = kept.event(0, &event(1, decision));
        let Some(Change::Write { triggers, write }) = decided else {
            panic!("{decided:?}");
        };
        assert_eq!(triggers, ["t"]);
        assert_eq!(write.map(|w| (w.version, w.accepted)), Some((3, false)));
        match kept.event(0, &event(1, answer)) {
            Some(Change::Write { triggers, write }) => {
                assert_eq!(triggers, ["t"]);
                Some(write)
            }
            None => None,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_accepted_write_is_noted_accepted() {
        let note = note_after(publish_call(Some(202), Some(OperationStatus::Processing)));
        let write = note.flatten().expect("a write");
        assert!(write.accepted);
    }

    #[test]
    fn a_write_answered_without_being_accepted_leaves_no_note() {
        for answer in [
            publish_call(Some(503), None),
            publish_call(Some(429), None),
            publish_call(None, None),
            publish_call(Some(200), Some(OperationStatus::Error)),
        ] {
            assert_eq!(note_after(answer.clone()), Some(None), "{answer:?}");
        }
    }

    #[test]
    fn a_409_keeps_the_decided_note() {
        assert_eq!(note_after(publish_call(Some(409), None)), None);
    }

    #[test]
    fn an_outcome_ends_the_cycle_for_its_triggers() {
        let mut kept = KeptCycles::<u32, &str>::default();
        kept.fed(1, "a");
        kept.fed(2, "b");
        let started = EventKind::CycleStarted {
            cause: CycleCause::Trigger { trigger: 1 },
        };
        kept.event(0, &event(4, started));
        let coalesced = EventKind::TriggerCoalesced {
            trigger: 2,
            into_cycle: 4,
        };
        kept.event(0, &event(4, coalesced));
        let until: Timestamp = "2026-03-02T12:00:00Z".parse().expect("instant");
        let ended = EventKind::Outcome {
            outcome: Outcome::Deferred { until },
            triggers: 2,
        };
        assert_eq!(
            kept.event(0, &event(4, ended.clone())),
            Some(Change::Ended {
                triggers: vec!["a", "b"],
                after: After::Again { due: until },
            })
        );
        // Nothing is left of the cycle.
        assert_eq!(
            kept.event(0, &event(4, ended)),
            Some(Change::Ended {
                triggers: vec![],
                after: After::Again { due: until },
            })
        );
    }

    fn known() -> EventKind {
        EventKind::StateKnown {
            learnt: Learnt::Event,
            learnt_at: "2026-03-02T09:59:00Z".parse().expect("instant"),
            state: crate::runner::ScheduleState::Published,
            published: true,
            version: 3,
        }
    }

    fn outcome(outcome: Outcome) -> EventKind {
        EventKind::Outcome {
            outcome,
            triggers: 1,
        }
    }

    fn skipped() -> EventKind {
        outcome(Outcome::Skipped {
            reason: "already published".into(),
        })
    }

    /// Trigger "t" decided from the kept state in cycle 1 and skipped: where it stands.
    fn skipped_unread(kept: &mut KeptCycles<u32, &'static str>) -> Option<Change<&'static str>> {
        kept.fed(1, "t");
        let started = EventKind::CycleStarted {
            cause: CycleCause::Trigger { trigger: 1 },
        };
        kept.event(0, &event(1, started));
        kept.event(0, &event(1, known()));
        kept.event(0, &event(1, skipped()))
    }

    #[test]
    fn a_cycle_decided_from_the_kept_state_leaves_its_triggers_unconfirmed_for_the_confirm_cycle() {
        let mut kept = KeptCycles::<u32, &str>::default();
        assert_eq!(
            skipped_unread(&mut kept),
            Some(Change::Ended {
                triggers: vec!["t"],
                after: After::Unconfirmed,
            })
        );
        // The confirm cycle answers them: its deferral is theirs.
        let confirm = EventKind::CycleStarted {
            cause: CycleCause::Confirm {
                unconfirmed_cycle: 1,
            },
        };
        kept.event(0, &event(2, confirm));
        let until: Timestamp = "2026-03-02T12:00:00Z".parse().expect("instant");
        assert_eq!(
            kept.event(0, &event(2, outcome(Outcome::Deferred { until }))),
            Some(Change::Ended {
                triggers: vec!["t"],
                after: After::Again { due: until },
            })
        );
    }

    /// A cycle of `schedule` for trigger `name` fed as `seq`: the state known, then read,
    /// then a skip.
    fn read_and_skipped(
        kept: &mut KeptCycles<u32, &'static str>,
        schedule: u32,
        seq: u64,
        name: &'static str,
    ) -> Option<Change<&'static str>> {
        kept.fed(seq, name);
        let started = EventKind::CycleStarted {
            cause: CycleCause::Trigger { trigger: seq },
        };
        let read = draft_read(4);
        let cycle = seq + 10;
        for kind in [started, known(), read] {
            assert_eq!(kept.event(schedule, &event(cycle, kind)), None);
        }
        kept.event(schedule, &event(cycle, skipped()))
    }

    #[test]
    fn a_read_of_the_schedule_takes_up_its_unconfirmed_triggers() {
        let mut kept = KeptCycles::<u32, &str>::default();
        skipped_unread(&mut kept);
        // Another schedule's read leaves them.
        assert_eq!(
            read_and_skipped(&mut kept, 1, 2, "u"),
            Some(Change::Ended {
                triggers: vec!["u"],
                after: After::Done,
            })
        );
        // A cycle of theirs that read decided on the read: they end with it.
        assert_eq!(
            read_and_skipped(&mut kept, 0, 3, "v"),
            Some(Change::Ended {
                triggers: vec!["v", "t"],
                after: After::Done,
            })
        );
    }
}
