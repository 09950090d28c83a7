//! `publish-guard simulate SCENARIO`: replay a scenario on a virtual clock and print the
//! timeline and totals (or JSON), optionally drawing the timeline as SVG.

use crate::cli::{CliError, Outcome, read_text};
use crate::language::diagnostic::render_all;
use crate::policy::Policy;
use crate::sim::engine::{RunOptions, run};
use crate::sim::scenario::{LoadError, Scenario, load};
use std::path::{Path, PathBuf};

/// How `simulate` prints its report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text: the timeline, then the summary.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Use this rules file instead of the one the scenario names.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Also draw the timeline into this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// A scenario file, or its diagnostics rendered for the terminal (`Err(text)`).
pub fn load_scenario(path: &Path) -> Result<Result<Scenario, String>, CliError> {
    match load(path) {
        Ok(scenario) => Ok(Ok(scenario)),
        Err(LoadError::Io { path, source }) => Err(CliError::Io { path, source }),
        Err(LoadError::Invalid {
            path,
            source_text,
            diagnostics,
        }) => Ok(Err(render_all(
            &diagnostics,
            &path.display().to_string(),
            &source_text,
        ))),
    }
}

/// A rules file compiled, or its diagnostics rendered for the terminal (`Err(text)`).
pub fn load_policy(path: &Path) -> Result<Result<Policy, String>, CliError> {
    let source = read_text(path)?;
    Ok(crate::compile(&source)
        .map(|checked| checked.policy)
        .map_err(|e| e.in_file(path.display().to_string()).to_string()))
}

/// Run `simulate`.
pub fn simulate(args: &SimulateArgs) -> Result<Outcome, CliError> {
    let scenario = match load_scenario(&args.scenario)? {
        Ok(s) => s,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return Ok(Outcome::Failed);
        }
    };
    let rules = args.rules.clone().unwrap_or_else(|| scenario.rules.clone());
    let policy = match load_policy(&rules)? {
        Ok(p) => p,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return Ok(Outcome::Failed);
        }
    };
    let result = run(&scenario, &policy, RunOptions::default());
    if let Some(svg) = &args.svg {
        std::fs::write(svg, crate::sim::svg::render(&result.report)).map_err(|source| {
            CliError::Io {
                path: svg.clone(),
                source,
            }
        })?;
    }
    match args.format {
        Format::Table => print!("{}", result.report.table()),
        Format::Json => print!("{}", result.report.json()),
    }
    Ok(Outcome::Ok)
}
