//! `publish-guard explain`: show how a policy decides on a set of facts.

use super::{CliError, Outcome, read_text};
use crate::evaluation::explain::{StateBasis, explain};
use crate::language::ast::PhaseKind;
use crate::language::diagnostic::render_all;
use crate::policy::facts_file::load_facts;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Arguments of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rules file.
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,
    /// A TOML file of facts with dotted keys, e.g. `schedule.state = "draft"`.
    #[arg(long, value_name = "FILE")]
    pub facts: PathBuf,
    /// Which phase to evaluate.
    #[arg(long, value_enum, default_value_t = Phase::Trigger)]
    pub phase: Phase,
    /// How to print the explanation.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The schedule's state was the one the notification channel kept since this instant
    /// (RFC 3339), not a read: the explanation says the decision was made without one.
    #[arg(long, value_name = "INSTANT")]
    pub cached_since: Option<jiff::Timestamp>,
}

/// How `explain` prints the explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// As a person reads it: each rule tried with its source line, why it did or did not
    /// match, and the decision.
    Human,
    /// One JSON object: the policy, the phase, each rule tried (where, whether it matched,
    /// each condition's value) and the decision (rule, where, verdict). Diagnostics, when the
    /// rules or facts do not check, are printed as text.
    Json,
}

/// The phase, as a command-line value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// `on trigger`
    Trigger,
    /// `on response`
    Response,
}

impl From<Phase> for PhaseKind {
    fn from(phase: Phase) -> PhaseKind {
        match phase {
            Phase::Trigger => PhaseKind::Trigger,
            Phase::Response => PhaseKind::Response,
        }
    }
}

/// Explain the decision; exit 1 when the rules or the facts do not check.
pub fn run(args: &ExplainArgs) -> Result<Outcome, CliError> {
    let rules_name = args.rules.display().to_string();
    let rules = read_text(&args.rules)?;
    let policy = match crate::compile(&rules) {
        Ok(checked) => checked.policy,
        Err(e) => {
            print!("{}", e.in_file(rules_name));
            return Ok(Outcome::Failed);
        }
    };
    let facts_source = read_text(&args.facts)?;
    let facts = match load_facts(&facts_source, &policy) {
        Ok(facts) => facts,
        Err(diagnostics) => {
            print!(
                "{}",
                render_all(
                    &diagnostics,
                    &args.facts.display().to_string(),
                    &facts_source
                )
            );
            return Ok(Outcome::Failed);
        }
    };
    let basis = match args.cached_since {
        Some(since) => StateBasis::Cached { since },
        None => StateBasis::Given,
    };
    let explanation = explain(&policy, args.phase.into(), &facts).on(basis);
    match args.format {
        Format::Human => print!("{}", explanation.render_human(&rules)),
        Format::Json => {
            let text = serde_json::to_string_pretty(&explanation.render_json(&rules))
                .map_err(|e| CliError::Usage(format!("cannot print JSON: {e}")))?;
            println!("{text}");
        }
    }
    Ok(Outcome::Ok)
}
