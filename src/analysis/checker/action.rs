//! Checking actions: the ones each phase allows, and the names they refer to.

use super::Checker;
use crate::language::ast::{Action, OperandKind, PhaseKind};
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::schema::FactType;
use crate::language::span::{Span, Spanned};
use crate::policy::{BackoffId, CompiledAction, Term, TermAction};
use jiff::SignedDuration;

impl Checker<'_> {
    /// Check and compile an action; `None` once an error is reported.
    pub(super) fn action(
        &mut self,
        action: &Spanned<Action>,
        phase: PhaseKind,
    ) -> Option<CompiledAction> {
        if let Some((why, instead)) = misplaced(&action.node, phase) {
            self.report(
                Diagnostic::new(
                    Code::ActionNotInPhase,
                    action.span,
                    format!(
                        "`{}` does not belong in `on {}`: {why}",
                        keyword(&action.node),
                        phase.keyword()
                    ),
                )
                .with_help(instead),
            );
            return None;
        }
        match &action.node {
            Action::Publish => Some(CompiledAction::Publish),
            Action::Skip(reason) => Some(CompiledAction::Skip(reason.node.clone())),
            Action::Backoff(name) => self.backoff_ref(name).map(CompiledAction::Backoff),
            Action::BackoffRetryAfter(name) => self
                .backoff_ref(name)
                .map(CompiledAction::BackoffRetryAfter),
            Action::DeferUntilWindow(name) => {
                self.window_ref(name).map(CompiledAction::DeferUntilWindow)
            }
            Action::DeferUntilInstant(operand) => match &operand.node {
                OperandKind::Word(word) => self
                    .window_ref(&Spanned::new(word.clone(), operand.span))
                    .map(CompiledAction::DeferUntilWindow),
                _ => self.defer_instant(operand, phase),
            },
            Action::Recheck => Some(CompiledAction::Recheck),
            Action::Done => Some(CompiledAction::Done),
            Action::Fail(reason) => Some(CompiledAction::Fail(reason.node.clone())),
        }
    }

    /// `defer until INSTANT`: an instant fact, optionally moved by a duration.
    fn defer_instant(
        &mut self,
        operand: &crate::language::ast::Operand,
        phase: PhaseKind,
    ) -> Option<CompiledAction> {
        let (fact, offset) = match &operand.node {
            OperandKind::Fact(path) => (
                self.fact(&path.0, operand.span, phase)?,
                SignedDuration::ZERO,
            ),
            OperandKind::Offset { .. } => {
                let term = self.expect(operand, FactType::Instant, "`defer until`", phase)?;
                match term {
                    Term::Offset(fact, offset) => (fact, offset),
                    _ => return None,
                }
            }
            _ => {
                self.defer_needs_instant(operand.span);
                return None;
            }
        };
        if fact.def().ty != FactType::Instant {
            self.defer_needs_instant(operand.span);
            return None;
        }
        Some(CompiledAction::DeferUntilInstant(TermAction {
            fact,
            offset,
        }))
    }

    /// E103 for `defer until` something that is not an instant.
    fn defer_needs_instant(&mut self, span: Span) {
        self.report(
            Diagnostic::new(
                Code::TypeMismatch,
                span,
                format!(
                    "`defer until` needs a window or an instant, but `{}` is neither",
                    self.text(span)
                ),
            )
            .with_help("write a window name (`defer until business_hours`) or an instant (`defer until last_publish.at + 15m`)"),
        );
    }

    /// A declared backoff profile by name; E105 otherwise. Marks it used.
    fn backoff_ref(&mut self, name: &Spanned<String>) -> Option<BackoffId> {
        if let Some(id) = self.backoff_ids.get(&name.node).copied() {
            self.used_backoffs.insert(id.0);
            return Some(id);
        }
        let known: Vec<String> = self.backoff_ids.keys().cloned().collect();
        let example = format!(
            "backoff {} {{ exponential 5s factor 2 max 2m  attempts 5 }}",
            name.node
        );
        self.undefined(
            Code::UndefinedBackoff,
            "backoff profile",
            name,
            &known,
            &example,
        );
        None
    }
}

/// The action's keywords as written (`backoff retry_after` names its form).
fn keyword(action: &Action) -> &'static str {
    match action {
        Action::BackoffRetryAfter(_) => "backoff retry_after",
        action => action.kind().keyword(),
    }
}

/// Why an action does not belong in a phase, and what to write instead.
fn misplaced(action: &Action, phase: PhaseKind) -> Option<(&'static str, &'static str)> {
    match (action, phase) {
        (Action::Publish, PhaseKind::Response) => Some((
            "the write already happened, and publishing again blindly is what causes 409s",
            "use `recheck` to read the state and decide again, or `backoff PROFILE` to retry later",
        )),
        (Action::Skip(_), PhaseKind::Response) => Some((
            "the API has already answered, so there is nothing left to skip",
            "use `done` when the cycle is finished, or `fail \"reason\"` to record a failure",
        )),
        (Action::Done, PhaseKind::Trigger) => Some((
            "`done` ends a cycle after a write, and no write has been made yet",
            "use `skip \"reason\"` to do nothing",
        )),
        (Action::Recheck, PhaseKind::Trigger) => Some((
            "the trigger phase has just read the state, so a recheck would loop",
            "use `backoff PROFILE` to read the state again later",
        )),
        (Action::BackoffRetryAfter(_), PhaseKind::Trigger) => Some((
            "only an API answer carries a Retry-After",
            "use `backoff PROFILE`",
        )),
        _ => None,
    }
}
