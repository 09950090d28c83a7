//! W205: a trigger phase where `schedule.state == unknown` (a read that failed: 429, 5xx,
//! a timeout, a refused login) can end in a `skip`, so a failed read would drop the change.

use crate::analysis::fact_space::{FactSpace, mentioned};
use crate::evaluation::evaluator::holds;
use crate::language::ast::{self, Action, Item, PhaseKind};
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::schema::{FactId, SCHEDULE_STATES};
use crate::language::span::Spanned;
use crate::policy::facts::{Value, fact_id};
use crate::policy::{CompiledAction, Cond, Policy};

const SCHEDULE_STATE: FactId = fact_id("schedule.state");
const TRIGGER_DUPLICATE: FactId = fact_id("trigger.duplicate");

/// W205 for the first `skip` (a rule's or `otherwise`) that decides for some facts while
/// the state is unknown. A duplicate delivery carries no change of its own, so skipping
/// it drops nothing: only fresh triggers count.
pub(super) fn unknown_state_warnings(policy: &Policy, file: &ast::File) -> Vec<Diagnostic> {
    let Some(unknown) = SCHEDULE_STATES.iter().position(|s| *s == "unknown") else {
        return Vec::new();
    };
    let Ok(unknown) = u8::try_from(unknown) else {
        return Vec::new();
    };
    let Some(phase) = file.items.iter().find_map(|item| match item {
        Item::Phase(p) if p.kind.node == PhaseKind::Trigger => Some(p),
        _ => None,
    }) else {
        return Vec::new();
    };
    let rules = &policy.trigger;
    let conditions: Vec<&Cond> = rules.rules.iter().map(|r| &r.condition).collect();
    let space = FactSpace::for_conditions(policy, &conditions);
    if !space.is_enumerable() {
        return Vec::new();
    }
    let witness = space.assignments().find_map(|mut facts| {
        facts.set(SCHEDULE_STATE, Some(Value::Enum(unknown)));
        facts.set(TRIGGER_DUPLICATE, Some(Value::Bool(false)));
        let index = conditions
            .iter()
            .position(|c| holds(policy, c, &facts))
            .unwrap_or(conditions.len());
        let action = rules
            .rules
            .get(index)
            .map_or(&rules.otherwise, |r| &r.action);
        matches!(action, CompiledAction::Skip(_)).then(|| {
            let named = conditions
                .get(index)
                .map(|c| mentioned(c))
                .unwrap_or_default();
            (index, space.describe(&facts, &named))
        })
    });
    let Some((index, witness)) = witness else {
        return Vec::new();
    };
    let written = match phase.rules.get(index) {
        Some(rule) => Some((Some(&rule.name.node), &rule.action)),
        None => phase.otherwise.as_ref().map(|o| (None, o)),
    };
    written
        .map(|(name, action)| vec![warning(name, action, &witness)])
        .unwrap_or_default()
}

/// The W205 diagnostic, pointing at the `skip`.
fn warning(rule: Option<&String>, action: &Spanned<Action>, witness: &str) -> Diagnostic {
    let who = rule.map_or("`otherwise`".to_string(), |n| format!("rule `{n}`"));
    let also = if witness == "any facts" {
        String::new()
    } else {
        format!(" and {witness}")
    };
    Diagnostic::new(
        Code::UnknownStateSkipped,
        action.span,
        format!(
            "{who} skips when `schedule.state == unknown`{also}: a failed read would drop the change"
        ),
    )
    .with_help(
        "add `rule unreadable when schedule.state == unknown then backoff PROFILE` before it",
    )
}
