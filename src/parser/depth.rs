//! A cheap scan for runaway parenthesis nesting, done before pest recurses into it.

use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;

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
    #[derive(PartialEq)]
    enum In {
        Code,
        Text,
        Escape,
        Comment,
    }
    let mut state = In::Code;
    let mut depth = 0usize;
    for (at, byte) in source.bytes().enumerate() {
        state = match (state, byte) {
            (In::Code, b'"') => In::Text,
            (In::Code, b'#') => In::Comment,
            (In::Code, b'(') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(too_deep(Span::new(at, at + 1)));
                }
                In::Code
            }
            (In::Code, b')') => {
                depth = depth.saturating_sub(1);
                In::Code
            }
            (In::Text | In::Escape | In::Comment, b'\n' | b'\r') => In::Code,
            (In::Text, b'\\') => In::Escape,
            (In::Text, b'"') => In::Code,
            (In::Escape, _) => In::Text,
            (state, _) => state,
        };
    }
    None
}
