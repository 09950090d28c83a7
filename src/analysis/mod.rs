//! What can be proven about a rules file before it runs: the checker that turns a syntax tree
//! into a validated [`Policy`](crate::policy::Policy) ([`compile`]), and the analyses it and
//! `diff` rest on: shadowing, the fact space, the difference between two policies. They ask
//! the evaluator's own answers, so this layer sits above [`crate::evaluation`].

mod bits;
pub mod checker;
mod compile;
pub mod diff;
pub(crate) mod fact_space;
pub(crate) mod shadowing;
/// The most steps the checker's analyses take (see `Checked::analysis_steps`).
pub use shadowing::STEP_BUDGET;

pub use compile::{CompileError, compile};
