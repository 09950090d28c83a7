//! W204: `defer until FACT + d` where FACT may be absent when the rule decides, so the
//! deferral would fail at run time instead of waiting.

use crate::analysis::fact_space::{FactSpace, mentioned};
use crate::evaluation::evaluator::holds;
use crate::language::ast::{self, Action, Item};
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Spanned;
use crate::policy::{CompiledAction, Cond, Policy, TermAction};

/// W204 for each rule (or `otherwise`) that defers until an optional instant it does not
/// guarantee: some facts make it decide while that instant is absent.
pub(super) fn deferral_warnings(policy: &Policy, file: &ast::File) -> Vec<Diagnostic> {
    let mut out = Vec::new();
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
        for (index, (action, (name, spanned))) in actions.zip(written).enumerate() {
            let CompiledAction::DeferUntilInstant(at) = action else {
                continue;
            };
            if !at.fact.def().optional {
                continue;
            }
            let Some(prefix) = conditions.get(..(index + 1).min(conditions.len())) else {
                continue;
            };
            if let Some(witness) = absent_witness(policy, prefix, index, at) {
                out.push(warning(name, spanned, at, &witness));
            }
        }
    }
    out
}

/// Facts (in words) under which rule `index` of `conditions` decides (or, past the last
/// rule, `otherwise` does) while the deferred instant is absent.
fn absent_witness(
    policy: &Policy,
    conditions: &[&Cond],
    index: usize,
    at: &TermAction,
) -> Option<String> {
    let space = FactSpace::for_conditions(policy, conditions);
    if !space.is_enumerable() {
        return None;
    }
    let named = conditions
        .get(index)
        .map(|c| mentioned(c))
        .unwrap_or_default();
    space
        .assignments()
        .find(|facts| {
            facts.get(at.fact).is_none()
                && conditions
                    .iter()
                    .position(|c| holds(policy, c, facts))
                    .is_none_or(|first| first == index)
                && conditions
                    .get(index)
                    .is_none_or(|c| holds(policy, c, facts))
        })
        .map(|facts| space.describe(&facts, &named))
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
