//! `explore`: random worlds through the very engine `simulate` uses, named invariants
//! checked after every run, and a violation shrunk to a scenario file that replays it.
//!
//! In the spirit of FoundationDB's and TigerBeetle's simulation testing: the runner is
//! sans-IO and the API has one model, so a seed is a whole world, replayed exactly.

pub mod generate;
pub mod invariants;
pub mod scenario_file;
pub mod shrink;

use crate::policy::Policy;
use crate::sim::engine::{RunOptions, run, run_traced};
use crate::sim::scenario::Scenario;
use invariants::{Violation, check};
use jiff::SignedDuration;
use std::path::Path;
use std::time::Instant;

/// Runs a shrink may take.
const SHRINK_BUDGET: u32 = 2_000;
/// How far either side of the violation the timeline shows.
const AROUND: SignedDuration = SignedDuration::from_mins(5);

/// Which worlds to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// Seeds `0..n`.
    Count(u64),
    /// One seed.
    One(u64),
}

/// A broken promise, with what replays it.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The world's seed.
    pub seed: u64,
    /// What broke in the world as generated.
    pub violation: Violation,
    /// What broke in the shrunk world.
    pub shrunk_violation: Violation,
    /// The shrunk world.
    pub scenario: Scenario,
    /// The shrunk world's timeline around the violation.
    pub timeline: String,
}

/// What an exploration did.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// Worlds run.
    pub runs: u64,
    /// Triggers across them.
    pub triggers: u64,
    /// The first broken promise, if any.
    pub finding: Option<Finding>,
}

/// Run the worlds of `seeds` under `policy` (at `rules`) until one breaks a promise or
/// `deadline` passes; a finding is shrunk.
pub fn explore(
    policy: &Policy,
    rules: &Path,
    seeds: Seeds,
    deadline: Option<Instant>,
) -> Exploration {
    let (first, count) = match seeds {
        Seeds::Count(n) => (0, n),
        Seeds::One(s) => (s, 1),
    };
    let mut done = Exploration {
        runs: 0,
        triggers: 0,
        finding: None,
    };
    for seed in (first..).take(usize::try_from(count).unwrap_or(usize::MAX)) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let world = generate::world(seed, &policy.sources, rules);
        let (result, trace) = run_traced(&world, policy);
        done.runs += 1;
        done.triggers += result.report.summary.triggers;
        if let Some(violation) = check(&world, policy, &trace) {
            done.finding = Some(finding(seed, violation, &world, policy));
            break;
        }
    }
    done
}

/// Shrink the world, and show its timeline around what broke.
fn finding(seed: u64, violation: Violation, world: &Scenario, policy: &Policy) -> Finding {
    let scenario = shrink::shrink(world, policy, violation.invariant, SHRINK_BUDGET);
    let (_, trace) = run_traced(&scenario, policy);
    let shrunk_violation = check(&scenario, policy, &trace).unwrap_or_else(|| violation.clone());
    let mut report = run(&scenario, policy, RunOptions::default()).report;
    let at = shrunk_violation.at;
    report
        .timeline
        .retain(|row| row.at.duration_since(at).abs() <= AROUND);
    Finding {
        seed,
        violation,
        shrunk_violation,
        scenario,
        timeline: report.table(),
    }
}

#[cfg(test)]
mod tests;
