//! The pest parser generated from `grammar/rules.pest`; kept private so `Rule` is not API.

/// Matches rules-file text against the grammar.
#[derive(pest_derive::Parser)]
#[grammar = "grammar/rules.pest"]
pub(super) struct RulesParser;
