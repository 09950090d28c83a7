//! Shrinking a failing world: drop triggers, people, timers, restarts, outages, random
//! errors and the notification channel's drops (then the channel), and shorten the API's
//! times, while the same invariant stays broken.

use crate::policy::Policy;
use crate::sim::engine::run_traced;
use crate::sim::explore::invariants::{Invariant, check};
use crate::sim::scenario::{Scenario, Target};
use jiff::SignedDuration;

/// The smallest world found that still breaks `invariant`, within `budget` runs.
pub fn shrink(scenario: &Scenario, policy: &Policy, invariant: Invariant, budget: u32) -> Scenario {
    let mut best = scenario.clone();
    let mut runs = 0;
    let still = |candidate: &Scenario, runs: &mut u32| {
        *runs += 1;
        let (_, trace) = run_traced(candidate, policy);
        check(candidate, policy, &trace).is_some_and(|v| v.invariant == invariant)
    };
    let mut changed = true;
    while changed && runs < budget {
        changed = false;
        // Drop chunks of triggers, halving the chunk down to one at a time.
        let mut chunk = best.triggers.len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < best.triggers.len() && runs < budget {
                let mut candidate = best.clone();
                let end = (i + chunk).min(candidate.triggers.len());
                candidate.triggers.drain(i..end);
                if still(&candidate, &mut runs) {
                    best = candidate;
                    changed = true;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        for i in (0..best.people.len()).rev() {
            let mut candidate = best.clone();
            candidate.people.remove(i);
            if runs < budget && still(&candidate, &mut runs) {
                best = candidate;
                changed = true;
            }
        }
        let mut fewer: Vec<Scenario> = Vec::new();
        for i in (0..best.generators.len()).rev() {
            let mut candidate = best.clone();
            candidate.generators.remove(i);
            fewer.push(candidate);
        }
        for i in (0..best.restarts.len()).rev() {
            let mut candidate = best.clone();
            candidate.restarts.remove(i);
            fewer.push(candidate);
        }
        for i in (0..best.api.outages.len()).rev() {
            let mut candidate = best.clone();
            candidate.api.outages.remove(i);
            fewer.push(candidate);
        }
        if let Some(n) = &best.api.notifications {
            for i in (0..n.drops.len()).rev() {
                let mut candidate = best.clone();
                if let Some(n) = &mut candidate.api.notifications {
                    n.drops.remove(i);
                }
                fewer.push(candidate);
            }
            if n.loss_per_mille > 0 {
                let mut candidate = best.clone();
                if let Some(n) = &mut candidate.api.notifications {
                    n.loss_per_mille = 0;
                }
                fewer.push(candidate);
            }
            let mut candidate = best.clone();
            candidate.api.notifications = None;
            fewer.push(candidate);
        }
        // Each simplification is tried on the world as it stood; the first that keeps the
        // violation is taken, the rest wait for the next round.
        for candidate in fewer {
            if runs < budget && still(&candidate, &mut runs) {
                best = candidate;
                changed = true;
                break;
            }
        }
        if best.api.error_rate > 0.0 {
            let mut candidate = best.clone();
            candidate.api.error_rate = 0.0;
            if runs < budget && still(&candidate, &mut runs) {
                best = candidate;
                changed = true;
            }
        }
        changed |= drop_unused_schedules(&mut best, policy, invariant, &mut runs, budget);
        for shorten in [shorten_processing, shorten_latency] {
            if let Some(candidate) = shorten(&best)
                && runs < budget
                && still(&candidate, &mut runs)
            {
                best = candidate;
                changed = true;
            }
        }
    }
    best
}

/// Drop schedules no trigger or person refers to (renumbering the others).
fn drop_unused_schedules(
    best: &mut Scenario,
    policy: &Policy,
    invariant: Invariant,
    runs: &mut u32,
    budget: u32,
) -> bool {
    let used = |s: usize, sc: &Scenario| {
        sc.triggers.iter().any(|t| t.schedule == s)
            || sc.people.iter().any(|p| p.schedule == s)
            || sc
                .generators
                .iter()
                .any(|g| matches!(g.target, Target::All) || g.target == Target::One(s))
    };
    let mut changed = false;
    for s in (0..best.schedules.len()).rev() {
        if used(s, best) || best.schedules.len() == 1 || *runs >= budget {
            continue;
        }
        let mut candidate = best.clone();
        candidate.schedules.remove(s);
        for t in &mut candidate.triggers {
            if t.schedule > s {
                t.schedule -= 1;
            }
        }
        for p in &mut candidate.people {
            if p.schedule > s {
                p.schedule -= 1;
            }
        }
        *runs += 1;
        let (_, trace) = run_traced(&candidate, policy);
        if check(&candidate, policy, &trace).is_some_and(|v| v.invariant == invariant) {
            *best = candidate;
            changed = true;
        }
    }
    changed
}

/// Half the processing time, down to a second.
fn shorten_processing(s: &Scenario) -> Option<Scenario> {
    let half = s.api.processing / 2;
    (half >= SignedDuration::from_secs(1)).then(|| {
        let mut c = s.clone();
        c.api.processing = round_ms(half);
        c
    })
}

/// Half the latency, down to 10 ms.
fn shorten_latency(s: &Scenario) -> Option<Scenario> {
    let half = s.api.latency / 2;
    (half >= SignedDuration::from_millis(10)).then(|| {
        let mut c = s.clone();
        c.api.latency = round_ms(half);
        c
    })
}

/// Whole milliseconds, so the scenario file writes them as they are.
fn round_ms(d: SignedDuration) -> SignedDuration {
    SignedDuration::from_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
