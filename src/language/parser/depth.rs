//! A cheap scan for runaway parenthesis nesting, done before pest recurses into it.

use super::scan::code_bytes;
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;

/// Deepest nesting of parentheses and `not`s a condition may have.
pub const MAX_DEPTH: usize = 64;

/// The diagnostic for nesting past [`MAX_DEPTH`] at `span`.
pub(super) fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::TooDeep,
        span,
        format!("this condition nests more than {MAX_DEPTH} levels deep"),
    )
    .with_help("split the condition across several rules")
}

/// The first `(` nested deeper than [`MAX_DEPTH`], outside strings and comments.
pub(super) fn check_parentheses(source: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for (at, byte) in code_bytes(source) {
        match byte {
            b'(' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(too_deep(Span::new(at, at + 1)));
                }
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}
