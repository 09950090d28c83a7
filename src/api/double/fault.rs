//! Faults the double can be told to inject, and which call each one hits.

use super::CallKind;
use std::time::Duration;

/// What a fault does to a call it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultEffect {
    /// Answer this status (e.g. 500, 502, 503) with a Genesys error body, unserved.
    Status(u16),
    /// Wait this long (tokio time) before serving the call normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Answer 429 with this `Retry-After`, in seconds (a quota beyond the per-minute
    /// window, such as a daily limit), unserved.
    Throttled(u32),
}

/// A fault: its effect, the calls it applies to, how often and how many times it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    effect: FaultEffect,
    on: Option<CallKind>,
    every: u32,
    times: Option<u32>,
    seen: u32,
    fired: u32,
}

impl Fault {
    /// Answer `status` to every matching call.
    pub fn status(status: u16) -> Self {
        Self::new(FaultEffect::Status(status))
    }

    /// Answer every matching call 429 with `Retry-After: retry_after_secs`.
    pub fn throttled(retry_after_secs: u32) -> Self {
        Self::new(FaultEffect::Throttled(retry_after_secs))
    }

    /// Delay every matching call by `delay`.
    pub fn delay(delay: Duration) -> Self {
        Self::new(FaultEffect::Delay(delay))
    }

    /// Drop the connection of every matching call.
    pub fn drop_connection() -> Self {
        Self::new(FaultEffect::Drop)
    }

    fn new(effect: FaultEffect) -> Self {
        Self {
            effect,
            on: None,
            every: 1,
            times: None,
            seen: 0,
            fired: 0,
        }
    }

    /// Only calls of this kind (default: every call).
    pub fn on(mut self, kind: CallKind) -> Self {
        self.on = Some(kind);
        self
    }

    /// Fire on every `n`th matching call only (the `n`th, `2n`th, ...): a deterministic rate.
    pub fn every(mut self, n: u32) -> Self {
        self.every = n.max(1);
        self
    }

    /// Fire at most `n` times, then let calls through.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Counts a call against this fault; answers its effect when it fires.
    pub(super) fn hit(&mut self, kind: CallKind) -> Option<FaultEffect> {
        if self.on.is_some_and(|on| on != kind) || self.times.is_some_and(|t| self.fired >= t) {
            return None;
        }
        self.seen += 1;
        if !self.seen.is_multiple_of(self.every) {
            return None;
        }
        self.fired += 1;
        Some(self.effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_fires_on_its_kind_at_its_rate_and_count() {
        let mut fault = Fault::status(503).on(CallKind::Update).every(2).times(2);
        let fired: Vec<bool> = [
            CallKind::GetSchedule,
            CallKind::Update,
            CallKind::Update,
            CallKind::Update,
            CallKind::Update,
            CallKind::Update,
            CallKind::Update,
        ]
        .into_iter()
        .map(|kind| fault.hit(kind).is_some())
        .collect();
        assert_eq!(fired, [false, false, true, false, true, false, false]);
    }
}
