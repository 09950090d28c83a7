//! `publish-guard simulate SCENARIO`: replay a scenario on a virtual clock and print the
//! timeline and totals (or JSON), optionally drawing the timeline as SVG.

use crate::cli::{CliError, Outcome, read_text};
use crate::language::diagnostic::render_all;
use crate::policy::Policy;
use crate::sim::engine::{RunOptions, run};
use crate::sim::scenario::{LoadError, Loaded, load_file};
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
pub fn load_scenario(path: &Path) -> Result<Result<Loaded, String>, CliError> {
    match load_file(path) {
        Ok(loaded) => Ok(Ok(loaded)),
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

/// The rules file a scenario names, compiled; a file that cannot be read is reported with
/// the scenario that names it and the folder its relative path was read from.
pub fn load_scenario_policy(loaded: &Loaded) -> Result<Result<Policy, String>, CliError> {
    let rules = &loaded.scenario.rules;
    load_policy(rules).map_err(|e| match e {
        CliError::Io { source, .. } => CliError::ScenarioRules {
            scenario: loaded.path.clone(),
            rules: rules.clone(),
            folder: folder_of(&loaded.path),
            source,
        },
        other => other,
    })
}

/// The folder a scenario's relative paths start from, as a person would write it.
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The scenario's trigger sources that `policy` (from `rules`) does not declare, rendered
/// against the scenario file (`Err(text)`).
pub fn check_sources(loaded: &Loaded, policy: &Policy, rules: &Path) -> Result<(), String> {
    let diagnostics = loaded.check_sources(policy, rules);
    if diagnostics.is_empty() {
        return Ok(());
    }
    Err(render_all(
        &diagnostics,
        &loaded.path.display().to_string(),
        &loaded.text,
    ))
}

/// Run `simulate`.
pub fn simulate(args: &SimulateArgs) -> Result<Outcome, CliError> {
    let loaded = match load_scenario(&args.scenario)? {
        Ok(s) => s,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return Ok(Outcome::Failed);
        }
    };
    let (policy, rules) = match &args.rules {
        Some(rules) => (load_policy(rules)?, rules.clone()),
        None => (
            load_scenario_policy(&loaded)?,
            loaded.scenario.rules.clone(),
        ),
    };
    let checked = policy.and_then(|p| check_sources(&loaded, &p, &rules).map(|()| p));
    let policy = match checked {
        Ok(p) => p,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return Ok(Outcome::Failed);
        }
    };
    let result = run(&loaded.scenario, &policy, RunOptions::default());
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
