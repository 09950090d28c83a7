//! What the relay's store would hold at each instant of a simulated run, learnt from the
//! runner's events as the relay's worker learns it (`runner::kept`): each trigger until its
//! cycle ends (done or failed, or deferred and due again; or, decided from the channel's kept
//! state, until a read of its schedule), the delivery ids, and the write of ours a cycle
//! decided or had accepted. A `[[restart]]` keeps this and nothing else.

use crate::runner::event::{CycleCause, Event, EventKind};
use crate::runner::kept::{After, Change, KeptCycles};
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
    /// Its cycle decided from the kept state, no read of the schedule since: after a
    /// restart, fed again at once without its delivery id.
    Unconfirmed,
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
    /// What the store keeps of each worker's cycles, by schedule and stored trigger.
    kept: FxHashMap<u32, KeptCycles<u32, usize>>,
    /// Deferred triggers waiting for a worker's schedule: `(worker, schedule)`.
    deferred: FxHashMap<(u32, u32), Vec<usize>>,
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
        self.kept.entry(worker).or_default().fed(seq, index);
        index
    }

    /// The stored trigger `index` was fed again to `worker` as its `seq`.
    pub fn fed(&mut self, worker: u32, seq: u64, index: usize) {
        if let Some(s) = self.stored.get_mut(index) {
            s.status = Status::Unfinished;
        }
        self.kept.entry(worker).or_default().fed(seq, index);
    }

    /// Whether the stored trigger `index` still waits to be fed again.
    pub fn waiting(&self, index: usize) -> bool {
        self.stored
            .get(index)
            .is_some_and(|s| matches!(s.status, Status::Deferred(_)))
    }

    /// Note what `event`, from `worker` about `schedule`, changes in the store.
    pub fn event(&mut self, worker: u32, schedule: u32, event: &Event) {
        let kept = self.kept.entry(worker).or_default();
        match &event.kind {
            EventKind::TriggerReceived {
                trigger,
                duplicate: true,
                ..
            } => {
                // A repeat: the relay's store answers it with the first one's receipt and
                // keeps nothing of it.
                if let Some(i) = kept.take_fed(*trigger)
                    && let Some(s) = self.stored.get_mut(i)
                {
                    s.status = Status::Finished;
                }
                return;
            }
            // A deferred evaluation (on its own or folded into a coalesced cycle) answers
            // the triggers whose deferral has run out.
            EventKind::CycleStarted { cause } if !matches!(cause, CycleCause::Trigger { .. }) => {
                let Some(cycle) = event.cycle else { return };
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
                kept.join(schedule, cycle, due);
                if !later.is_empty() {
                    self.deferred.insert((worker, schedule), later);
                }
            }
            _ => {}
        }
        match kept.event(schedule, event) {
            Some(Change::Write { triggers, write }) => {
                for i in triggers {
                    if let Some(s) = self.stored.get_mut(i) {
                        s.write.clone_from(&write);
                    }
                }
            }
            Some(Change::Ended { triggers, after }) => {
                let status = match after {
                    After::Again { due } => Status::Deferred(due),
                    After::Unconfirmed => Status::Unconfirmed,
                    After::Failed { .. } | After::Done => Status::Finished,
                };
                for &i in &triggers {
                    if let Some(s) = self.stored.get_mut(i) {
                        s.status = status;
                        s.write = None;
                    }
                }
                if matches!(status, Status::Deferred(_)) {
                    self.deferred
                        .entry((worker, schedule))
                        .or_default()
                        .extend(triggers);
                }
            }
            None => {}
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
        self.kept.clear();
        self.deferred.clear();
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
                Status::Unconfirmed => kept.again.extend(self.again(index, now)),
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
