//! publish-guard: a policy engine that decides whether to publish, skip or back off
//! when something asks to publish a Genesys Cloud WFM schedule.

pub mod api;
pub mod ast;
pub mod audit;
pub mod backoff;
pub mod checker;
pub mod cli;
pub mod config;
pub mod decision;
pub mod diagnostic;
pub mod evaluator;
pub mod event;
pub mod explain;
pub mod fact_space;
pub mod facts;
pub mod facts_file;
pub mod format;
pub mod group_commit;
pub mod parser;
pub mod policy;
pub mod policy_diff;
pub mod relay;
pub mod runner;
pub mod schema;
pub mod shadowing;
pub mod sim;
pub mod span;
pub mod suggest;
pub mod window;

/// Parse and check a rules file: the validated policy and its warnings, or every
/// diagnostic (errors and warnings) sorted by position.
pub fn compile(source: &str) -> Result<checker::Checked, Vec<diagnostic::Diagnostic>> {
    let file = parser::parse(source)?;
    checker::check(&file, source)
}
