//! publish-guard: a policy engine that decides whether to publish, skip or back off
//! when something asks to publish a Genesys Cloud WFM schedule.

pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod effects;
pub mod evaluation;
pub mod group_commit;
pub mod language;
pub mod policy;
pub mod relay;
pub mod runner;
pub mod sim;

/// Parse and check a rules file: the validated policy and its warnings, or every
/// diagnostic (errors and warnings) sorted by position.
pub fn compile(
    source: &str,
) -> Result<policy::checker::Checked, Vec<language::diagnostic::Diagnostic>> {
    let file = language::parser::parse(source)?;
    policy::checker::check(&file, source)
}
