//! Shadowing: rules that can never decide because an earlier rule always decides first.
//!
//! Every assignment of the phase's [`FactSpace`] is evaluated with the evaluator's own
//! [`holds`], so the analysis and the runtime can never disagree on what a condition means.
//! Only the leading rules whose space is exact and small enough to enumerate are analysed,
//! within a step budget; the rest are not reported on, rather than guessed at, and when
//! cost rather than a condition it cannot see through stops it, it says so ([`Cut`]).

use crate::analysis::bits::Bits;
use crate::analysis::fact_space::{Cursor, FactSpace, mentioned};
use crate::evaluation::evaluator::holds;
use crate::language::ast::PhaseKind;
use crate::language::schema::FactId;
use crate::policy::{Cond, CondKind, Policy};
use std::collections::{BTreeMap, BTreeSet};

/// The most fact combinations the shadowing analysis walks (as many as `diff` enumerates).
/// Only a few numbers per combination are kept, so memory stays small; the time is
/// bounded by [`STEP_BUDGET`].
pub const SHADOWING_BUDGET: usize = crate::analysis::fact_space::MAX_ASSIGNMENTS;

/// The most steps the analysis takes: one step is one condition node tested against one
/// combination of facts (a window test counts [`WINDOW_STEPS`]). 15 to 30 ms of work on
/// this project's shared 2-core machine (a step costs about 10 ns): any file checks in
/// bounded time, inside 50 ms for 1,000 rules, and a file that needs more is told where
/// the analysis stopped (W206).
pub const STEP_BUDGET: u64 = 2_000_000;

/// Steps a window test counts: reading local time costs several plain comparisons.
const WINDOW_STEPS: u64 = 8;

/// What the analysis of one phase found, and what it cost.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The rules that never decide, in rule order.
    pub shadowed: Vec<Shadowed>,
    /// Where the analysis stopped short of the last rule because of its cost, if it did
    /// (a rule it cannot see through stops it too, but as designed and not reported).
    pub cut: Option<Cut>,
    /// Steps taken (see [`STEP_BUDGET`]).
    pub steps: u64,
    /// For each deferral asked about whose rule the analysis reached: facts, in words,
    /// under which that rule decides while the deferral's fact is absent (W204), if any.
    pub deferrals: Vec<(Deferral, Option<String>)>,
    /// When every rule was analysed: which decides each combination, for later questions
    /// of the same kind (W205) to be answered without testing a condition again.
    pub decided: Option<Decided>,
}

/// The rule that decides each combination of a phase's space.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The space of every condition of the phase.
    pub space: FactSpace,
    /// Per combination, the index of the rule that decides it; the rule count for
    /// `otherwise`.
    pub by: Vec<u32>,
}

/// A `defer until FACT + d` to check: rule `rule` of the phase (the rule count for
/// `otherwise`) defers until an instant `fact` that may be absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deferral {
    /// Index of the rule; the phase's rule count for `otherwise`.
    pub rule: usize,
    /// The fact deferred until.
    pub fact: FactId,
}

/// Where and why the analysis stopped: rules from `rule` on were not analysed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Index of the first rule not analysed.
    pub rule: usize,
    /// Why.
    pub reason: CutReason,
}

/// Why the analysis stopped before the last rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// With this rule the facts the rules tell apart exceed [`SHADOWING_BUDGET`] combinations.
    Combinations,
    /// Analysing this rule would exceed [`STEP_BUDGET`].
    Steps,
    /// Looking for a failing deferral (W204) at this rule would exceed [`STEP_BUDGET`].
    DeferralSteps,
}

/// A rule that never decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Shadowed {
    /// Index of the rule in its phase.
    pub rule: usize,
    /// Why: one earlier rule that matches whenever this one does, or else every earlier
    /// rule that decides first somewhere this one matches. Empty when the condition never
    /// holds at all.
    pub deciders: Vec<Decider>,
}

/// An earlier rule that decides in place of a shadowed one.
#[derive(Clone, Debug, PartialEq)]
pub struct Decider {
    /// Index of the earlier rule in the phase.
    pub rule: usize,
    /// Whether it matches whenever the shadowed rule does (on its own it shadows it).
    pub covers: bool,
    /// Facts, in words, under which both conditions hold (and, where possible, this rule
    /// decides first).
    pub witness: String,
}

/// No rule has decided this combination yet.
const UNDECIDED: usize = usize::MAX;

/// [`UNDECIDED`] as a [`Pass`] holds it per combination.
const UNDECIDED_HELD: u32 = u32::MAX;

/// The rules of `phase` that can never decide, in rule order, and where the analysis
/// stopped.
///
/// One pass over the rules: each is tested only on the combinations no earlier rule
/// decided, and those it holds on are decided by it. A rule that decides nothing is
/// shadowed; only then is it tested everywhere, to name the rule that shadows it. The
/// cost is the steps actually taken, bounded by [`STEP_BUDGET`], and memory is 4 bytes and
/// 2 bits per combination, held only once the first rule is tested on every combination
/// (the cover vector and facts per pair of rules this replaced took 457 MB for 1,000
/// identical rules; 16 bytes per combination, held before the steps were counted, took
/// 3.5 MB for two chains of 445 comparisons that the budget then left unanalysed).
///
/// The same pass answers W204 for `deferrals`: the first combination their rule decides
/// with the fact absent.
pub fn shadowed_rules(policy: &Policy, phase: PhaseKind, deferrals: &[Deferral]) -> Analysis {
    let all: Vec<&Cond> = policy
        .phase(phase)
        .rules
        .iter()
        .map(|r| &r.condition)
        .collect();
    let mut analysis = Analysis {
        shadowed: Vec::new(),
        cut: None,
        steps: 0,
        deferrals: Vec::new(),
        decided: None,
    };
    // The longest run of leading rules whose space can be enumerated exactly: a rule past
    // it could be shadowed by one the analysis cannot see through, so it is left alone.
    let Some((conditions, space)) = enumerable_prefix(policy, &all) else {
        return analysis;
    };
    if conditions.len() < all.len() {
        let with_next = all.get(..=conditions.len()).unwrap_or_default();
        if FactSpace::for_conditions(policy, with_next).is_exact() {
            analysis.cut = Some(Cut {
                rule: conditions.len(),
                reason: CutReason::Combinations,
            });
        }
    }
    let mut pass = Pass {
        policy,
        conditions,
        space: &space,
        costs: conditions.iter().map(|c| steps_of(c)).collect(),
        count: space.size().unwrap_or(0),
        cursor: Cursor::new(&space),
        decided_by: Vec::new(),
        steps: 0,
    };
    let (shadowed, stopped) = pass.run();
    analysis.shadowed = shadowed;
    if let Some(rule) = stopped {
        analysis.cut = Some(Cut {
            rule,
            reason: CutReason::Steps,
        });
    }
    // A rule the pass finished decides exactly the combinations marked with it; `otherwise`
    // those left undecided once every rule was.
    let reached = stopped.unwrap_or(conditions.len());
    let whole = analysis.cut.is_none() && conditions.len() == all.len();
    for deferral in deferrals {
        let decider = match deferral.rule {
            rule if rule < reached => rule,
            rule if rule == all.len() && whole => UNDECIDED,
            _ => continue,
        };
        if !pass.take_plain(pass.count) {
            break;
        }
        analysis
            .deferrals
            .push((*deferral, pass.absent_witness(decider, deferral)));
    }
    analysis.steps = pass.steps;
    if whole && stopped.is_none() {
        // Every rule index fitted in a `u32` (else the pass stops), so the count does too.
        let rules = u32::try_from(all.len()).unwrap_or(UNDECIDED_HELD);
        let mut by = std::mem::take(&mut pass.decided_by);
        // With no rule to test nothing was held: `otherwise` decides everywhere.
        by.resize(pass.count, UNDECIDED_HELD);
        for d in &mut by {
            if *d == UNDECIDED_HELD {
                *d = rules;
            }
        }
        analysis.decided = Some(Decided { space, by });
    }
    analysis
}

/// One analysis: the combinations of facts, which rule decided each, the steps taken.
struct Pass<'a> {
    policy: &'a Policy,
    conditions: &'a [&'a Cond],
    space: &'a FactSpace,
    /// Steps one test of each condition counts.
    costs: Vec<u64>,
    /// How many combinations there are.
    count: usize,
    /// The combination being tested.
    cursor: Cursor<'a>,
    /// Per combination, the rule that decided it, or [`UNDECIDED_HELD`].
    decided_by: Vec<u32>,
    steps: u64,
}

impl Pass<'_> {
    /// The shadowed rules, and the first rule not analysed when the steps ran out.
    fn run(&mut self) -> (Vec<Shadowed>, Option<usize>) {
        let mut undecided: Option<Bits> = None;
        let mut shadowed = Vec::new();
        for i in 0..self.conditions.len() {
            let Ok(rule) = u32::try_from(i) else {
                return (shadowed, Some(i));
            };
            if !self.take(i, undecided.as_ref().map_or(self.count, Bits::len)) {
                return (shadowed, Some(i));
            }
            // Only now is anything held per combination: a space the first rule's test
            // does not fit the budget for costs no memory.
            let undecided = undecided.get_or_insert_with(|| {
                self.decided_by = vec![UNDECIDED_HELD; self.count];
                Bits::full(self.count)
            });
            let before = undecided.len();
            undecided.retain(|a| {
                let held = self.holds(i, a);
                if let (true, Some(d)) = (held, self.decided_by.get_mut(a)) {
                    *d = rule;
                }
                !held
            });
            if undecided.len() < before {
                continue;
            }
            // It decides nothing: where does it hold (only where an earlier rule decided)?
            if !self.take(i, self.count - undecided.len()) {
                return (shadowed, Some(i));
            }
            let mut held = Bits::empty(self.count);
            for a in 0..self.count {
                if !undecided.contains(a) && self.holds(i, a) {
                    held.insert(a);
                }
            }
            let Some(deciders) = self.deciders(i, &held) else {
                return (shadowed, Some(i));
            };
            shadowed.push(Shadowed { rule: i, deciders });
        }
        (shadowed, None)
    }

    /// Whether condition `i` holds for combination `a`.
    fn holds(&mut self, i: usize, a: usize) -> bool {
        let Some(cond) = self.conditions.get(i) else {
            return false;
        };
        holds(self.policy, cond, self.cursor.at(a))
    }

    /// The rule that decided combination `a`, or [`UNDECIDED`].
    fn decider_of(&self, a: usize) -> usize {
        match self.decided_by.get(a) {
            Some(&d) if d != UNDECIDED_HELD => d as usize,
            _ => UNDECIDED,
        }
    }

    /// Take the steps of testing condition `i` on `times` combinations, unless that
    /// exceeds [`STEP_BUDGET`].
    fn take(&mut self, i: usize, times: usize) -> bool {
        let cost = self.costs.get(i).copied().unwrap_or(1);
        let after = self.steps.saturating_add(cost.saturating_mul(times as u64));
        let fits = after <= STEP_BUDGET;
        if fits {
            self.steps = after;
        }
        fits
    }

    /// Take `steps` steps, unless that exceeds [`STEP_BUDGET`].
    fn take_plain(&mut self, steps: usize) -> bool {
        let after = self.steps.saturating_add(steps as u64);
        let fits = after <= STEP_BUDGET;
        if fits {
            self.steps = after;
        }
        fits
    }

    /// The first combination `decider` decides with the deferral's fact absent, in words
    /// naming the facts the deferring rule mentions.
    fn absent_witness(&mut self, decider: usize, deferral: &Deferral) -> Option<String> {
        let a = (0..self.count).find(|&a| {
            self.decider_of(a) == decider && self.cursor.at(a).get(deferral.fact).is_none()
        })?;
        let named = self
            .conditions
            .get(deferral.rule)
            .map(|c| mentioned(c))
            .unwrap_or_default();
        let space = self.space;
        Some(space.describe(self.cursor.at(a), &named))
    }

    /// Why shadowed rule `i` never decides, given the combinations it `held` on: the first
    /// earlier rule that holds wherever it does, or else each rule that decides first
    /// somewhere it holds. `None` when the steps run out.
    fn deciders(&mut self, i: usize, held: &Bits) -> Option<Vec<Decider>> {
        let Some(first_held) = held.iter().next() else {
            return Some(Vec::new());
        };
        // A rule before the latest first decider does not hold where that one decided.
        let latest = held.iter().map(|a| self.decider_of(a)).max().unwrap_or(0);
        for j in latest..i {
            if !self.take(j, held.len()) {
                return None;
            }
            if held.iter().all(|a| self.holds(j, a)) {
                let witness = held
                    .iter()
                    .find(|&a| self.decider_of(a) == j)
                    .unwrap_or(first_held);
                return Some(vec![Decider {
                    rule: j,
                    covers: true,
                    witness: self.describe(i, j, witness),
                }]);
            }
        }
        let mut first: BTreeMap<usize, usize> = BTreeMap::new();
        for a in held.iter() {
            first.entry(self.decider_of(a)).or_insert(a);
        }
        Some(
            first
                .into_iter()
                .map(|(j, a)| Decider {
                    rule: j,
                    covers: false,
                    witness: self.describe(i, j, a),
                })
                .collect(),
        )
    }

    /// Combination `a` in words, naming the facts rules `later` and `earlier` mention.
    fn describe(&mut self, later: usize, earlier: usize, a: usize) -> String {
        let mut named = BTreeSet::new();
        for i in [later, earlier] {
            if let Some(c) = self.conditions.get(i) {
                named.extend(mentioned(c));
            }
        }
        let space = self.space;
        space.describe(self.cursor.at(a), &named)
    }
}

/// The steps one test of `cond` against one combination counts: its nodes, a window test
/// counting [`WINDOW_STEPS`].
pub(crate) fn steps_of(cond: &Cond) -> u64 {
    match &cond.kind {
        CondKind::And(parts) | CondKind::Or(parts) => 1 + parts.iter().map(steps_of).sum::<u64>(),
        CondKind::Not(inner) => 1 + steps_of(inner),
        CondKind::InWindow { .. } => WINDOW_STEPS,
        _ => 1,
    }
}

/// The longest leading conditions whose space is enumerable, and that space.
///
/// Adding a condition never makes a space enumerable again (an inexact space stays inexact
/// and candidates only grow), so the prefix is found by doubling then bisecting: a few
/// spaces of about the prefix's length are built, not one per rule (which made checking a
/// long file quadratic in its rules).
fn enumerable_prefix<'c>(
    policy: &Policy,
    all: &'c [&'c Cond],
) -> Option<(&'c [&'c Cond], FactSpace)> {
    let space = |n: usize| {
        let conditions = all.get(..n)?;
        let space = FactSpace::for_conditions(policy, conditions);
        space.fits(SHADOWING_BUDGET).then_some((conditions, space))
    };
    // Most files fit whole: one space, not one per doubling.
    if let Some(whole) = space(all.len()) {
        return Some(whole);
    }
    let mut best = space(0)?;
    // Double until a prefix fails (or all fit): the answer lies in `best..failed`.
    let mut failed = all.len() + 1;
    let mut next = 1;
    while next <= all.len() {
        match space(next) {
            Some(found) => best = found,
            None => {
                failed = next;
                break;
            }
        }
        next *= 2;
    }
    if failed > all.len() && best.0.len() < all.len() {
        match space(all.len()) {
            Some(found) => return Some(found),
            None => failed = all.len(),
        }
    }
    while failed - best.0.len() > 1 {
        let middle = best.0.len() + (failed - best.0.len()) / 2;
        match space(middle) {
            Some(found) => best = found,
            None => failed = middle,
        }
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile;

    /// A policy whose `on trigger` holds `rules`.
    fn policy(windows: &str, rules: &str) -> Policy {
        let source = format!(
            "policy \"t\"\ntimezone \"Europe/London\"\nsources servicenow, manual\n{windows}\n\
             on trigger {{\n{rules}\n  otherwise skip \"none\"\n}}\n\
             on response {{\n  otherwise done\n}}\n"
        );
        match compile(&source) {
            Ok(checked) => checked.policy,
            Err(d) => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_later_rule_decided_by_different_earlier_rules_names_each_with_a_witness() {
        let p = policy(
            "",
            "rule duplicate when trigger.duplicate then skip \"dup\"\n\
             rule busy when not trigger.duplicate and schedule.state != draft then skip \"busy\"\n\
             rule ready when schedule.state in [draft, published] and trigger.source == servicenow then publish",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger, &[]).shadowed;
        assert_eq!(found.len(), 0, "ready decides for a non-duplicate draft");

        let p = policy(
            "",
            "rule duplicate when trigger.duplicate then skip \"dup\"\n\
             rule drafts when schedule.state == draft then skip \"drafts\"\n\
             rule ready when schedule.state == draft then publish",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger, &[]).shadowed;
        assert_eq!(
            found,
            vec![Shadowed {
                rule: 2,
                deciders: vec![Decider {
                    rule: 1,
                    covers: true,
                    witness: "schedule.state = draft".into(),
                }],
            }]
        );
    }

    #[test]
    fn without_a_single_covering_rule_every_first_decider_is_named() {
        let p = policy(
            "",
            "rule duplicate when trigger.duplicate then skip \"dup\"\n\
             rule fresh when not trigger.duplicate then skip \"fresh\"\n\
             rule ready when schedule.state == draft then publish",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger, &[]).shadowed;
        assert_eq!(
            found,
            vec![Shadowed {
                rule: 2,
                deciders: vec![
                    Decider {
                        rule: 0,
                        covers: false,
                        witness: "schedule.state = draft and trigger.duplicate = true".into(),
                    },
                    Decider {
                        rule: 1,
                        covers: false,
                        witness: "schedule.state = draft and trigger.duplicate = false".into(),
                    },
                ],
            }]
        );
    }

    #[test]
    fn integer_ranges_shadow_the_comparisons_inside_them() {
        let p = policy(
            "",
            "rule many when attempt in 3..10 then skip \"many\"\n\
             rule five when attempt == 5 then skip \"five\"\n\
             rule above when attempt > 8 then skip \"above\"",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger, &[]).shadowed;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, 1);
        assert_eq!(found[0].deciders[0].witness, "attempt = 5");
    }

    #[test]
    fn a_window_inside_an_earlier_window_is_shadowed_and_an_overlapping_one_is_not() {
        let windows = "window business { mon..fri 07:00..20:00 }\n\
                       window core { mon..fri 10:00..16:00 }\n\
                       window evening { fri 18:00..22:00 }\n";
        let p = policy(
            windows,
            "rule office when now in business then publish\n\
             rule core when now in core then publish\n\
             rule evening when now in evening then publish",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger, &[]).shadowed;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, 1);
        assert_eq!(
            found[0].deciders[0].witness,
            "now = Mon 10:00 in Europe/London"
        );
    }

    #[test]
    fn time_since_an_instant_shadows_a_shorter_threshold_and_absence_is_covered() {
        let p = policy(
            "",
            "rule recent when since(last_publish.at) < 15m then skip \"recent\"\n\
             rule very_recent when since(last_publish.at) < 5m then skip \"very recent\"\n\
             rule never when not exists(last_publish.at) then publish",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger, &[]).shadowed;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, 1);
        assert_eq!(
            found[0].deciders[0].witness,
            "last_publish.at = 2m 30s before now"
        );
    }

    #[test]
    fn a_contradiction_is_reported_with_no_decider() {
        let p = policy(
            "",
            "rule odd when schedule.state == draft and schedule.state == published then publish",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger, &[]).shadowed;
        assert_eq!(
            found,
            vec![Shadowed {
                rule: 0,
                deciders: Vec::new()
            }]
        );
    }

    #[test]
    fn the_enumerable_prefix_is_the_longest_one_a_rule_by_rule_scan_finds() {
        // Each rule adds constants, so the space outgrows the cap part-way through.
        let rules: String = (0..60)
            .map(|i| {
                format!(
                    "rule r{i} when attempt == {i} and schedule.version > {} \
                     and trigger.coalesced < {} then skip \"r{i}\"\n",
                    i * 7,
                    i * 5
                )
            })
            .collect();
        let p = policy("", &rules);
        let all: Vec<&Cond> = p.trigger.rules.iter().map(|r| &r.condition).collect();
        for n in 0..=all.len() {
            let prefix = all.get(..n).unwrap_or_default();
            let scanned = (0..=prefix.len())
                .rev()
                .find(|k| FactSpace::for_conditions(&p, &prefix[..*k]).fits(SHADOWING_BUDGET));
            let found = enumerable_prefix(&p, prefix).map(|(c, _)| c.len());
            assert_eq!(found, scanned, "{n} rules");
        }
        let longest = enumerable_prefix(&p, &all).map_or(0, |(c, _)| c.len());
        assert!(0 < longest && longest < all.len(), "{longest}");
    }

    #[test]
    fn rules_after_one_the_analysis_cannot_see_through_are_left_alone() {
        let p = policy(
            "",
            "rule drafts when schedule.state == draft then skip \"drafts\"\n\
             rule ready when schedule.state == draft then publish\n\
             rule changed when schedule.modified_at > last_publish.at then publish\n\
             rule again when schedule.state == draft then publish",
        );
        let found: Vec<usize> = shadowed_rules(&p, PhaseKind::Trigger, &[])
            .shadowed
            .iter()
            .map(|s| s.rule)
            .collect();
        assert_eq!(found, [1]);
    }
}
