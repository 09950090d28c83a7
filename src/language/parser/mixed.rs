//! `and` mixed with `or` without parentheses (P002), explained with both readings.

use crate::language::ast::Expr;
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;

/// `and` or `or` between two terms of a condition.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Joiner {
    And,
    Or,
}

impl Joiner {
    fn word(self) -> &'static str {
        match self {
            Joiner::And => "and",
            Joiner::Or => "or",
        }
    }
}

/// P002, with both readings spelled out in the author's own words.
pub(super) fn mixed_and_or(
    source: &str,
    span: Span,
    terms: &[Expr],
    joiners: &[Joiner],
) -> Diagnostic {
    let texts: Vec<String> = terms
        .iter()
        .map(|t| {
            t.span
                .text(source)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Diagnostic::new(
        Code::MixedAndOr,
        span,
        "`and` and `or` are mixed without parentheses",
    )
    .with_help(format!(
        "say which is meant: write `{}` or `{}`",
        reading(&texts, joiners, Joiner::And),
        reading(&texts, joiners, Joiner::Or),
    ))
}

/// One reading of a mixed condition: runs joined by `tight` are parenthesised.
fn reading(texts: &[String], joiners: &[Joiner], tight: Joiner) -> String {
    let mut out = String::new();
    let mut run: Vec<&str> = Vec::new();
    let flush = |out: &mut String, run: &mut Vec<&str>| {
        let joined = run.join(&format!(" {} ", tight.word()));
        if run.len() > 1 {
            out.push('(');
            out.push_str(&joined);
            out.push(')');
        } else {
            out.push_str(&joined);
        }
        run.clear();
    };
    for (index, text) in texts.iter().enumerate() {
        run.push(text);
        match joiners.get(index) {
            Some(&joiner) if joiner == tight => {}
            Some(&joiner) => {
                flush(&mut out, &mut run);
                out.push_str(&format!(" {} ", joiner.word()));
            }
            None => flush(&mut out, &mut run),
        }
    }
    out
}
