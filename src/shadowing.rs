//! Shadowing: rules that can never decide because an earlier rule always decides first.
//!
//! Every assignment of the phase's [`FactSpace`] is evaluated with the evaluator's own
//! [`holds`], so the analysis and the runtime can never disagree on what a condition means.
//! When the space is inexact or too large to enumerate, nothing is reported.

use crate::ast::PhaseKind;
use crate::evaluator::holds;
use crate::fact_space::{FactSpace, mentioned};
use crate::facts::Facts;
use crate::policy::{Cond, Policy};
use std::collections::BTreeMap;

/// A rule that never decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Shadowed {
    /// Index of the rule in its phase.
    pub rule: usize,
    /// The earlier rules that decide whenever this one's condition holds, each with a
    /// witness. Empty when the condition never holds at all.
    pub deciders: Vec<Decider>,
}

/// An earlier rule that decides in place of a shadowed one.
#[derive(Clone, Debug, PartialEq)]
pub struct Decider {
    /// Index of the earlier rule in the phase.
    pub rule: usize,
    /// Facts, in words, under which both conditions hold and this rule decides first.
    pub witness: String,
}

/// The rules of `phase` that can never decide, in rule order.
pub fn shadowed_rules(policy: &Policy, phase: PhaseKind) -> Vec<Shadowed> {
    let rules = &policy.phase(phase).rules;
    let conditions: Vec<&Cond> = rules.iter().map(|r| &r.condition).collect();
    let space = FactSpace::for_conditions(policy, &conditions);
    if !space.is_enumerable() {
        return Vec::new();
    }
    let mut decides = vec![false; rules.len()];
    let mut witnesses: Vec<BTreeMap<usize, Facts>> = vec![BTreeMap::new(); rules.len()];
    for facts in space.assignments() {
        let mut first: Option<usize> = None;
        for (i, condition) in conditions.iter().enumerate() {
            if !holds(policy, condition, &facts) {
                continue;
            }
            match first {
                None => {
                    first = Some(i);
                    if let Some(d) = decides.get_mut(i) {
                        *d = true;
                    }
                }
                Some(earlier) if !decides.get(i).copied().unwrap_or(true) => {
                    if let Some(w) = witnesses.get_mut(i) {
                        w.entry(earlier).or_insert_with(|| facts.clone());
                    }
                }
                Some(_) => {}
            }
        }
    }
    decides
        .iter()
        .zip(witnesses)
        .enumerate()
        .filter(|(_, (decided, _))| !**decided)
        .map(|(rule, (_, found))| Shadowed {
            rule,
            deciders: found
                .into_iter()
                .map(|(earlier, facts)| {
                    let mut facts_named = conditions
                        .get(rule)
                        .map(|c| mentioned(c))
                        .unwrap_or_default();
                    if let Some(c) = conditions.get(earlier) {
                        facts_named.extend(mentioned(c));
                    }
                    Decider {
                        rule: earlier,
                        witness: space.describe(&facts, &facts_named),
                    }
                })
                .collect(),
        })
        .collect()
}
