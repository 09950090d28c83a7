//! The policy: the fact schema and fact values, windows, backoff profiles and decisions, the
//! checker that turns a syntax tree into a validated [`Policy`], and the analyses over it
//! (shadowing, the fact space, the difference between two policies).

pub mod backoff;
pub mod checker;
mod compile;
mod compiled;
pub mod decision;
pub mod diff;
pub(crate) mod fact_space;
pub mod facts;
pub mod facts_file;
pub mod schema;
pub(crate) mod shadowing;
pub mod window;

pub use compile::{CompileError, compile};
pub use compiled::{
    BackoffId, CompiledAction, CompiledRule, Cond, CondKind, PhaseRules, Policy, Term, TermAction,
    WindowId,
};
