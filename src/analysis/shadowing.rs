//! Shadowing: rules that can never decide because an earlier rule always decides first.
//!
//! Every assignment of the phase's [`FactSpace`] is evaluated with the evaluator's own
//! [`holds`], so the analysis and the runtime can never disagree on what a condition means.
//! Only the leading rules whose space is exact and small enough to enumerate are analysed;
//! the rest are not reported on, rather than guessed at.

use crate::analysis::fact_space::{FactSpace, mentioned};
use crate::evaluation::evaluator::holds;
use crate::language::ast::PhaseKind;
use crate::policy::facts::Facts;
use crate::policy::{Cond, Policy};
use std::collections::{BTreeMap, BTreeSet};

/// The most fact combinations the shadowing analysis walks. `check` runs at every save and
/// in CI, so it must stay fast on large files: a space beyond this (far beyond any
/// hand-written policy's) gets no W201 rather than a slow check. `diff`, run once before a
/// deployment, enumerates up to [`crate::analysis::fact_space::MAX_ASSIGNMENTS`].
const SHADOWING_BUDGET: usize = 32_768;

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

/// What the enumeration learnt about one rule.
#[derive(Clone, Debug)]
struct Seen {
    /// It decides for some assignment.
    decides: bool,
    /// Per earlier rule: it held every time this one did.
    covered_by: Vec<bool>,
    /// Per earlier rule that decided first while this one held: the first such assignment.
    first: BTreeMap<usize, Facts>,
    /// Per earlier rule that held with this one: an assignment, and whether it decided first.
    both: BTreeMap<usize, (Facts, bool)>,
}

/// The rules of `phase` that can never decide, in rule order.
pub fn shadowed_rules(policy: &Policy, phase: PhaseKind) -> Vec<Shadowed> {
    let all: Vec<&Cond> = policy
        .phase(phase)
        .rules
        .iter()
        .map(|r| &r.condition)
        .collect();
    // The longest run of leading rules whose space can be enumerated exactly: a rule past
    // it could be shadowed by one the analysis cannot see through, so it is left alone.
    let Some((conditions, space)) = enumerable_prefix(policy, &all) else {
        return Vec::new();
    };
    let mut seen: Vec<Seen> = (0..conditions.len())
        .map(|i| Seen {
            decides: false,
            covered_by: vec![true; i],
            first: BTreeMap::new(),
            both: BTreeMap::new(),
        })
        .collect();
    for facts in space.assignments() {
        let held: Vec<bool> = conditions
            .iter()
            .map(|c| holds(policy, c, &facts))
            .collect();
        let Some(first) = held.iter().position(|h| *h) else {
            continue;
        };
        for (i, rule) in seen.iter_mut().enumerate() {
            if !held.get(i).copied().unwrap_or(false) {
                continue;
            }
            if i == first {
                rule.decides = true;
                continue;
            }
            if rule.decides {
                continue;
            }
            rule.first.entry(first).or_insert_with(|| facts.clone());
            for (j, covered) in rule.covered_by.iter_mut().enumerate() {
                let earlier_held = held.get(j).copied().unwrap_or(false);
                *covered &= earlier_held;
                if earlier_held {
                    let better = rule
                        .both
                        .get(&j)
                        .is_none_or(|(_, was_first)| !was_first && j == first);
                    if better {
                        rule.both.insert(j, (facts.clone(), j == first));
                    }
                }
            }
        }
    }
    let describe = |later: usize, earlier: usize, facts: &Facts| {
        let mut named = BTreeSet::new();
        for i in [later, earlier] {
            if let Some(c) = conditions.get(i) {
                named.extend(mentioned(c));
            }
        }
        space.describe(facts, &named)
    };
    seen.into_iter()
        .enumerate()
        .filter(|(_, s)| !s.decides)
        .map(|(rule, s)| {
            let cover = s
                .covered_by
                .iter()
                .position(|c| *c)
                .filter(|_| !s.first.is_empty());
            let deciders = match cover.and_then(|j| s.both.get(&j).map(|(f, _)| (j, f))) {
                Some((j, facts)) => vec![Decider {
                    rule: j,
                    covers: true,
                    witness: describe(rule, j, facts),
                }],
                None => s
                    .first
                    .iter()
                    .map(|(j, facts)| Decider {
                        rule: *j,
                        covers: false,
                        witness: describe(rule, *j, facts),
                    })
                    .collect(),
            };
            Shadowed { rule, deciders }
        })
        .collect()
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
        let found = shadowed_rules(&p, PhaseKind::Trigger);
        assert_eq!(found.len(), 0, "ready decides for a non-duplicate draft");

        let p = policy(
            "",
            "rule duplicate when trigger.duplicate then skip \"dup\"\n\
             rule drafts when schedule.state == draft then skip \"drafts\"\n\
             rule ready when schedule.state == draft then publish",
        );
        let found = shadowed_rules(&p, PhaseKind::Trigger);
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
        let found = shadowed_rules(&p, PhaseKind::Trigger);
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
        let found = shadowed_rules(&p, PhaseKind::Trigger);
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
        let found = shadowed_rules(&p, PhaseKind::Trigger);
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
        let found = shadowed_rules(&p, PhaseKind::Trigger);
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
        let found = shadowed_rules(&p, PhaseKind::Trigger);
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
        let found: Vec<usize> = shadowed_rules(&p, PhaseKind::Trigger)
            .iter()
            .map(|s| s.rule)
            .collect();
        assert_eq!(found, [1]);
    }
}
