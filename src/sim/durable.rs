//! What the relay's store would hold at each instant of a simulated run, learnt from the
//! runner's events the way the relay's worker learns it: each trigger until its cycle ends
//! (done or failed, or deferred and due again), the delivery ids, and the write of ours a
//! cycle decided or had accepted. A `[[restart]]` keeps this and nothing else.

use crate::api::{OperationStatus, ScheduleRef};
use crate::language::ast::{ActionKind, PhaseKind};
use crate::runner::event::{CycleCause, Event, EventKind, Outcome};
use crate::runner::{EarlierWrite, Trigger};
use jiff::Timestamp;
use rustc_hash::FxHashMap;

/// Where a stored trigger stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Fed, its cycle not ended (pending or running, in the relay's words).
    Unfinished,
    /// Its cycle deferred it: fed again, without its delivery id, once due.
    Deferred(Timestamp),
    /// Done or failed: never fed again.
    Finished,
}

/// One stored trigger.
#[derive(Clone, Debug)]
struct Stored {
    schedule: u32,
    trigger: Trigger,
    /// The timeline's label for it.
    label: String,
    status: Status,
    /// Our write its cycle decided or had accepted, while it is unfinished.
    write: Option<EarlierWrite>,
}

/// A trigger the new process is fed, from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Again {
    /// Index of the stored trigger (for [`Durable::fed`]).
    pub stored: usize,
    /// Which schedule.
    pub schedule: u32,
    /// The trigger as the store hands it back.
    pub trigger: Trigger,
    /// The timeline's label.
    pub label: String,
    /// When it is due: at once, or when its deferral runs out.
    pub due: Timestamp,
}

/// What a restarted process starts from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kept {
    /// The unfinished triggers, fed again.
    pub again: Vec<Again>,
    /// Our writes unfinished triggers noted: followed, or taken for unconfirmed.
    pub writes: Vec<EarlierWrite>,
    /// Delivery ids of triggers not fed again with their id, and when first seen.
    pub deliveries: Vec<(String, Timestamp)>,
}

/// The store, as the events built it.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    stored: Vec<Stored>,
    /// Fed and not yet taken up by a cycle: `(worker, trigger)`.
    by_seq: FxHashMap<(u32, u64), usize>,
    /// The triggers each cycle answers: `(worker, schedule, cycle)`.
    cycles: FxHashMap<(u32, u32, u64), Vec<usize>>,
    /// Deferred triggers waiting for a worker's schedule: `(worker, schedule)`.
    deferred: FxHashMap<(u32, u32), Vec<usize>>,
    /// The version each cycle last read or knew: a decision to publish writes at it.
    read: FxHashMap<(u32, u32, u64), i64>,
}

impl Durable {
    /// A trigger was accepted and fed to `worker` as its `seq`; returns its index.
    pub fn accepted(
        &mut self,
        worker: u32,
        seq: u64,
        schedule: u32,
        trigger: Trigger,
        label: String,
    ) -> usize {
        self.stored.push(Stored {
            schedule,
            trigger,
            label,
            status: Status::Unfinished,
            write: None,
        });
        let index = self.stored.len() - 1;
        self.by_seq.insert((worker, seq), index);
        index
    }

    /// The stored trigger `index` was fed again to `worker` as its `seq`.
    pub fn fed(&mut self, worker: u32, seq: u64, index: usize) {
        if let Some(s) = self.stored.get_mut(index) {
            s.status = Status::Unfinished;
        }
        self.by_seq.insert((worker, seq), index);
    }

    /// Whether the stored trigger `index` still waits to be fed again.
    pub fn waiting(&self, index: usize) -> bool {
        self.stored
            .get(index)
            .is_some_and(|s| matches!(s.status, Status::Deferred(_)))
    }

    /// Note what `event`, from `worker` about `schedule`, changes in the store.
    pub fn event(&mut self, worker: u32, schedule: u32, event: &Event) {
        if let EventKind::TriggerReceived {
            trigger,
            duplicate: true,
            ..
        } = &event.kind
        {
            // A repeat: the relay's store answers it with the first one's receipt and keeps
            // nothing of it.
            if let Some(i) = self.by_seq.remove(&(worker, *trigger))
                && let Some(s) = self.stored.get_mut(i)
            {
                s.status = Status::Finished;
            }
            return;
        }
        let Some(cycle) = event.cycle else { return };
        let key = (worker, schedule, cycle);
        match &event.kind {
            EventKind::CycleStarted {
                cause: CycleCause::Trigger { trigger },
            }
            | EventKind::TriggerCoalesced { trigger, .. } => {
                if let Some(index) = self.by_seq.remove(&(worker, *trigger)) {
                    self.cycles.entry(key).or_default().push(index);
                }
            }
            // A deferred evaluation (on its own or folded into a coalesced cycle) answers
            // the triggers whose deferral has run out.
            EventKind::CycleStarted { .. } => {
                let waiting = self
                    .deferred
                    .remove(&(worker, schedule))
                    .unwrap_or_default();
                let (due, later): (Vec<usize>, Vec<usize>) = waiting.into_iter().partition(|&i| {
                    self.stored
                        .get(i)
                        .is_some_and(|s| matches!(s.status, Status::Deferred(u) if u <= event.at))
                });
                for &i in &due {
                    if let Some(s) = self.stored.get_mut(i) {
                        s.status = Status::Unfinished;
                    }
                }
                self.cycles.entry(key).or_default().extend(due);
                if !later.is_empty() {
                    self.deferred.insert((worker, schedule), later);
                }
            }
            EventKind::StateRead {
                version: Some(version),
                ..
            }
            | EventKind::StateKnown { version, .. } => {
                self.read.insert(key, *version);
            }
            EventKind::Decision {
                phase: PhaseKind::Trigger,
                action: ActionKind::Publish,
                ..
            } => {
                if let Some(&version) = self.read.get(&key) {
                    self.note(key, &event.schedule, version, event.at, false);
                }
            }
            EventKind::PublishCall {
                version,
                status: Some(200..=299),
                operation: Some(OperationStatus::Processing | OperationStatus::Complete),
                ..
            } => self.note(key, &event.schedule, *version, event.at, true),
            // Answered without accepting it: as the relay's worker, no write of ours is kept.
            EventKind::PublishCall { status, .. } if *status != Some(409) => {
                for &i in self.cycles.get(&key).map(Vec::as_slice).unwrap_or_default() {
                    if let Some(s) = self.stored.get_mut(i) {
                        s.write = None;
                    }
                }
            }
            EventKind::Outcome { outcome, .. } => {
                self.read.remove(&key);
                let answered = self.cycles.remove(&key).unwrap_or_default();
                let status = match outcome {
                    Outcome::Deferred { until } => Status::Deferred(*until),
                    _ => Status::Finished,
                };
                for &i in &answered {
                    if let Some(s) = self.stored.get_mut(i) {
                        s.status = status;
                        s.write = None;
                    }
                }
                if matches!(status, Status::Deferred(_)) {
                    self.deferred
                        .entry((worker, schedule))
                        .or_default()
                        .extend(answered);
                }
            }
            _ => {}
        }
    }

    /// Note our write at `version` on each trigger of the cycle `key`.
    fn note(
        &mut self,
        key: (u32, u32, u64),
        schedule: &ScheduleRef,
        version: i64,
        since: Timestamp,
        accepted: bool,
    ) {
        for &i in self.cycles.get(&key).map(Vec::as_slice).unwrap_or_default() {
            if let Some(s) = self.stored.get_mut(i) {
                s.write = Some(EarlierWrite {
                    schedule: schedule.clone(),
                    version,
                    since,
                    accepted,
                });
            }
        }
    }

    /// The stored trigger `index`, deferred, as the store hands it back at `now`.
    pub fn again(&self, index: usize, now: Timestamp) -> Option<Again> {
        let s = self.stored.get(index)?;
        Some(Again {
            stored: index,
            schedule: s.schedule,
            trigger: Trigger {
                delivery_id: None,
                ..s.trigger.clone()
            },
            label: s.label.clone(),
            due: now,
        })
    }

    /// The process dies at `now`: what the store hands the next one. Nothing of the dead
    /// process's cycles is kept.
    pub fn restart(&mut self, now: Timestamp) -> Kept {
        self.by_seq.clear();
        self.cycles.clear();
        self.deferred.clear();
        self.read.clear();
        let mut kept = Kept::default();
        for (index, s) in self.stored.iter().enumerate() {
            let first_seen = s.trigger.received_at;
            match s.status {
                Status::Unfinished => {
                    kept.again.push(Again {
                        stored: index,
                        schedule: s.schedule,
                        trigger: s.trigger.clone(),
                        label: s.label.clone(),
                        due: now,
                    });
                    kept.writes.extend(s.write.clone());
                    continue;
                }
                // Fed again when due, not as a new delivery.
                Status::Deferred(until) if !broken::deferrals_forgotten() => {
                    kept.again.extend(self.again(index, until.max(now)));
                }
                Status::Deferred(_) => {}
                Status::Finished => {}
            }
            if let Some(id) = &s.trigger.delivery_id {
                kept.deliveries.push((id.clone(), first_seen));
            }
        }
        kept
    }
}

/// A deliberately broken store, for tests only: `explore` must catch it.
pub mod broken {
    #[cfg(test)]
    thread_local! {
        /// Keep no deferred trigger across a restart, as if a deferral were finished work.
        pub static FORGET_DEFERRALS: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }

    /// Whether this thread's store forgets deferred triggers at a restart (tests only).
    pub fn deferrals_forgotten() -> bool {
        #[cfg(test)]
        {
            FORGET_DEFERRALS.with(std::cell::Cell::get)
        }
        #[cfg(not(test))]
        {
            false
        }
    }
}
