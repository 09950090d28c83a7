//! W204: `defer until FACT + d` where FACT may be absent when the rule decides, so the
//! deferral would fail at run time instead of waiting.

use crate::analysis::fact_space::{FactSpace, mentioned};
use crate::analysis::shadowing::{CutReason, Deferral, STEP_BUDGET, steps_of};
use crate::evaluation::evaluator::holds;
use crate::language::ast::{self, Action, Item};
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Spanned;
use crate::policy::{CompiledAction, Cond, PhaseRules, Policy, TermAction};

/// W204 for each rule (or `otherwise`) that defers until an optional instant it does not
/// guarantee: some facts make it decide while that instant is absent. The search shares
/// one [`STEP_BUDGET`] per phase; where it runs out, W206 says so. Also the steps taken.
///
/// `known` holds what the shadowing pass already found, per phase (see [`Deferral`]);
/// only deferrals it did not reach are searched here.
pub(super) fn deferral_warnings(
    policy: &Policy,
    file: &ast::File,
    known: &super::KnownDeferrals,
) -> (Vec<Diagnostic>, u64) {
    let mut out = Vec::new();
    let mut taken = 0;
    for item in &file.items {
        let Item::Phase(phase) = item else { continue };
        let rules = &policy.phase(phase.kind.node);
        let conditions: Vec<&Cond> = rules.rules.iter().map(|r| &r.condition).collect();
        let actions = rules
            .rules
            .iter()
            .map(|r| &r.action)
            .chain(std::iter::once(&rules.otherwise));
        let written = phase
            .rules
            .iter()
            .map(|r| (Some(&r.name.node), &r.action))
            .chain(phase.otherwise.iter().map(|o| (None, o)));
        let mut steps = 0;
        for (index, (action, (name, spanned))) in actions.zip(written).enumerate() {
            let CompiledAction::DeferUntilInstant(at) = action else {
                continue;
            };
            if !at.fact.def().optional {
                continue;
            }
            let found = known
                .iter()
                .filter(|(kind, _)| *kind == phase.kind.node)
                .flat_map(|(_, found)| found)
                .find(|(d, _)| d.rule == index);
            if let Some((_, witness)) = found {
                if let Some(witness) = witness {
                    out.push(warning(name, spanned, at, witness));
                }
                continue;
            }
            let Some(prefix) = conditions.get(..(index + 1).min(conditions.len())) else {
                continue;
            };
            match absent_witness(policy, prefix, index, at, &mut steps) {
                Search::Found(witness) => out.push(warning(name, spanned, at, &witness)),
                Search::None => {}
                Search::OutOfSteps => {
                    if let Some(rule) = phase
                        .rules
                        .get(index.min(phase.rules.len().saturating_sub(1)))
                    {
                        out.push(super::cut_short(rule, CutReason::DeferralSteps));
                    }
                    break;
                }
            }
        }
        taken += steps;
    }
    (out, taken)
}

/// The deferrals of a phase W204 asks about: each `defer until FACT + d` on an optional
/// fact, by rule index (the rule count for `otherwise`).
pub(super) fn deferrals(rules: &PhaseRules) -> Vec<Deferral> {
    rules
        .rules
        .iter()
        .map(|r| &r.action)
        .chain(std::iter::once(&rules.otherwise))
        .enumerate()
        .filter_map(|(rule, action)| match action {
            CompiledAction::DeferUntilInstant(at) if at.fact.def().optional => Some(Deferral {
                rule,
                fact: at.fact,
            }),
            _ => None,
        })
        .collect()
}

/// What the search for a failing deferral came to.
enum Search {
    /// Facts, in words, under which the deferral fails.
    Found(String),
    /// There are none (or the analysis cannot see through the conditions).
    None,
    /// The steps ran out first.
    OutOfSteps,
}

/// Facts (in words) under which rule `index` of `conditions` decides (or, past the last
/// rule, `otherwise` does) while the deferred instant is absent. `steps` counts condition
/// nodes tested, against [`STEP_BUDGET`].
fn absent_witness(
    policy: &Policy,
    conditions: &[&Cond],
    index: usize,
    at: &TermAction,
    steps: &mut u64,
) -> Search {
    let costs: Vec<u64> = conditions.iter().map(|c| steps_of(c)).collect();
    // Building the space reads every condition once.
    *steps += costs.iter().sum::<u64>();
    let space = FactSpace::for_conditions(policy, conditions);
    if !space.is_enumerable() {
        return Search::None;
    }
    let named = conditions
        .get(index)
        .map(|c| mentioned(c))
        .unwrap_or_default();
    for facts in space.assignments() {
        if *steps > STEP_BUDGET {
            return Search::OutOfSteps;
        }
        if facts.get(at.fact).is_some() {
            continue;
        }
        let first = conditions.iter().zip(&costs).position(|(c, cost)| {
            *steps += cost;
            holds(policy, c, &facts)
        });
        let decides = match first {
            Some(first) => first == index,
            None => index >= conditions.len(),
        };
        if decides {
            return Search::Found(space.describe(&facts, &named));
        }
    }
    Search::None
}

/// The W204 diagnostic, pointing at the action.
fn warning(
    rule: Option<&String>,
    action: &Spanned<Action>,
    at: &TermAction,
    witness: &str,
) -> Diagnostic {
    let fact = at.fact.name();
    let who = rule.map_or("`otherwise`".to_string(), |n| format!("rule `{n}`"));
    let example = if witness == "any facts" {
        String::new()
    } else {
        format!(" (e.g. with {witness})")
    };
    Diagnostic::new(
        Code::DeferMayFail,
        action.span,
        format!(
            "{who} can decide while `{fact}` is absent{example}, and then the deferral fails instead of waiting"
        ),
    )
    .with_help(format!(
        "require it in the condition, e.g. `exists({fact}) and ...`, or defer until a window"
    ))
}
