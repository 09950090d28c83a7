//! The policy: fact values, windows, backoff profiles and decisions, and the compiled,
//! validated [`Policy`] the evaluator runs (built by [`crate::compile`] only).

pub mod backoff;
mod compiled;
pub mod decision;
pub mod facts;
pub mod facts_file;
pub mod window;

pub use compiled::{
    BackoffId, CompiledAction, CompiledRule, Cond, CondKind, PhaseRules, Policy, Term, TermAction,
    WindowId,
};
