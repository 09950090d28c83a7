//! Walking pest pairs: the meaningful children of a pair, and how building stops.

use pest::iterators::{Pair, Pairs};

use super::grammar::Rule;
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;

/// Building stops here with this diagnostic: nesting too deep, or pairs without the shape
/// the grammar promises (a bug, reported, never a panic).
pub(super) struct Stop(pub(super) Diagnostic);

impl Stop {
    pub(super) fn malformed(span: Span) -> Stop {
        Stop(malformed(span))
    }
}

/// What a builder method returns.
pub(super) type Built<T> = Result<T, Stop>;

/// The diagnostic for pairs that break the grammar's promises.
pub(super) fn malformed(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::Syntax,
        span,
        "the parser could not read this (an internal error; please report it)",
    )
}

/// The pair's byte range, as pest matched it.
pub(super) fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    Span::new(span.start(), span.end())
}

/// Tokens whose presence the grammar already guarantees, so the builder skips them.
fn is_punctuation(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::COMMENT
            | Rule::lbrace
            | Rule::rbrace
            | Rule::lparen
            | Rule::rparen
            | Rule::lbracket
            | Rule::rbracket
            | Rule::comma
            | Rule::dotdot
            | Rule::kw_policy
            | Rule::kw_timezone
            | Rule::kw_sources
            | Rule::kw_window
            | Rule::kw_backoff
            | Rule::kw_on
            | Rule::kw_rule
            | Rule::kw_when
            | Rule::kw_then
            | Rule::kw_otherwise
            | Rule::kw_in
            | Rule::kw_exists
            | Rule::kw_since
            | Rule::kw_exponential
            | Rule::kw_factor
            | Rule::kw_max
            | Rule::kw_constant
            | Rule::kw_jitter
            | Rule::kw_attempts
            | Rule::kw_publish
            | Rule::kw_skip
            | Rule::kw_else
            | Rule::kw_defer
            | Rule::kw_until
            | Rule::kw_recheck
            | Rule::kw_done
            | Rule::kw_fail
    )
}

/// The meaningful children of one pair, comments and fixed tokens skipped.
pub(super) struct Children<'i> {
    pairs: Pairs<'i, Rule>,
    parent: Span,
}

impl<'i> Children<'i> {
    pub(super) fn of(pair: Pair<'i, Rule>) -> Self {
        Children {
            parent: span_of(&pair),
            pairs: pair.into_inner(),
        }
    }

    fn skip_punctuation(&mut self) {
        while self
            .pairs
            .peek()
            .is_some_and(|p| is_punctuation(p.as_rule()))
        {
            self.pairs.next();
        }
    }

    /// The next child, whatever it is.
    pub(super) fn next(&mut self) -> Option<Pair<'i, Rule>> {
        self.skip_punctuation();
        self.pairs.next()
    }

    /// The next child, which the grammar says is there.
    pub(super) fn any(&mut self) -> Built<Pair<'i, Rule>> {
        self.next().ok_or_else(|| Stop::malformed(self.parent))
    }

    /// The next child, which the grammar says is a `rule`.
    pub(super) fn expect(&mut self, rule: Rule) -> Built<Pair<'i, Rule>> {
        self.accept(rule)
            .ok_or_else(|| Stop::malformed(self.parent))
    }

    /// The next child if it is a `rule`.
    pub(super) fn accept(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        self.skip_punctuation();
        if self.pairs.peek()?.as_rule() == rule {
            self.pairs.next()
        } else {
            None
        }
    }
}
