//! Evaluation: the pure function from a policy and facts to a decision, and the explanation
//! of why, built from the evaluator's own answers so the two never disagree.

pub mod evaluator;
pub mod explain;
