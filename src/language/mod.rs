//! The rules language: the syntax tree, the parser, the formatter, source spans,
//! diagnostics, "did you mean" suggestions, and the fact schema: the vocabulary the grammar
//! reads (a bare `now` is a fact) and the one table the checker, `explain` and the docs share.

pub mod ast;
pub mod diagnostic;
pub mod format;
pub mod parser;
pub mod schema;
pub mod span;
pub(crate) mod suggest;
