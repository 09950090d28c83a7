//! The rules language: the syntax tree, the parser, the formatter, source spans,
//! diagnostics and "did you mean" suggestions. Nothing here knows what a fact means; the
//! [`crate::policy`] layer gives the tree its meaning.

pub mod ast;
pub mod diagnostic;
pub mod format;
pub mod parser;
pub mod span;
pub(crate) mod suggest;
