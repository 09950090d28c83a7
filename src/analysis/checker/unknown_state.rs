//! W205: a trigger phase where `schedule.state == unknown` (a read that failed: 429, 5xx,
//! a timeout, a refused login) can end in a `skip`, so a failed read would drop the change.

use crate::analysis::fact_space::{Cursor, FactSpace, mentioned};
use crate::analysis::shadowing::Decided;
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
pub(super) fn unknown_state_warnings(
    policy: &Policy,
    file: &ast::File,
    decided: Option<&Decided>,
) -> Vec<Diagnostic> {
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
    let skips = |index: usize| {
        let action = rules
            .rules
            .get(index)
            .map_or(&rules.otherwise, |r| &r.action);
        matches!(action, CompiledAction::Skip(_))
    };
    let named = |index: usize| {
        conditions
            .get(index)
            .map(|c| mentioned(c))
            .unwrap_or_default()
    };
    let pinned = [
        (SCHEDULE_STATE, Value::Enum(unknown)),
        (TRIGGER_DUPLICATE, Value::Bool(false)),
    ];
    // The shadowing pass already knows which rule decides each combination: look only at
    // those with the state unknown and a fresh trigger.
    let numbers = decided.and_then(|d| Some((d, d.space.numbers_where(&pinned)?)));
    if let Some((decided, mut numbers)) = numbers {
        let first = numbers.find_map(|a| {
            let index = decided.by.get(a).copied()? as usize;
            skips(index).then_some((a, index))
        });
        let Some((a, index)) = first else {
            return Vec::new();
        };
        let mut cursor = Cursor::new(&decided.space);
        let witness = decided.space.describe(cursor.at(a), &named(index));
        return warning_at(phase, index, &witness);
    }
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
        skips(index).then(|| (index, space.describe(&facts, &named(index))))
    });
    let Some((index, witness)) = witness else {
        return Vec::new();
    };
    warning_at(phase, index, &witness)
}

/// W205 at the skip of rule `index` (the rule count for `otherwise`).
fn warning_at(phase: &ast::Phase, index: usize, witness: &str) -> Vec<Diagnostic> {
    let written = match phase.rules.get(index) {
        Some(rule) => Some((Some(&rule.name.node), &rule.action)),
        None => phase.otherwise.as_ref().map(|o| (None, o)),
    };
    written
        .map(|(name, action)| vec![warning(name, action, witness)])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::shadowing::shadowed_rules;

    /// W205 read from the shadowing pass says what testing every combination again says.
    #[test]
    fn the_answer_from_the_shadowing_pass_is_the_one_a_full_search_gives() {
        let with = |rules: &str| {
            format!(
                "policy \"p\"\ntimezone \"Europe/London\"\nsources servicenow, manual\n\
                 window w {{ mon..fri 07:00..20:00 }}\non trigger {{\n{rules}\n}}\n\
                 on response {{\n  otherwise done\n}}\n"
            )
        };
        let sources = [
            include_str!("../../../rules/default.rules").to_owned(),
            with("rule d when trigger.duplicate then skip \"d\"\n otherwise skip \"x\""),
            with(
                "rule d when trigger.duplicate then skip \"d\"\n rule a when now in w and schedule.state != draft then skip \"a\"\n otherwise publish",
            ),
            with(
                "rule d when trigger.duplicate or since(last_publish.at) < 5m then publish\n rule s when schedule.state in [unknown, draft] then publish\n otherwise skip \"x\"",
            ),
        ];
        let mut warned = 0;
        for source in &sources {
            let file = crate::language::parser::parse(source).expect("parses");
            let policy = crate::compile(source).expect("checks").policy;
            let decided = shadowed_rules(&policy, PhaseKind::Trigger, &[]).decided;
            assert!(decided.is_some(), "{source}");
            let fast = unknown_state_warnings(&policy, &file, decided.as_ref());
            let full = unknown_state_warnings(&policy, &file, None);
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{source}");
            warned += fast.len();
        }
        assert_eq!(
            warned, 2,
            "two of the policies skip while the state is unknown"
        );
    }
}
