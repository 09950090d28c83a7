//! The command-line interface: argument parsing and exit codes. Each subcommand lives in
//! its own file and returns an [`Outcome`] or a [`CliError`].

pub(crate) mod audit;
pub(crate) mod check;
pub mod diff;
pub(crate) mod explain;
pub(crate) mod explore;
pub(crate) mod fmt;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod serve_demo;
mod serve_loop;
pub(crate) mod simulate;
pub mod test;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status of a command that ran to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: all good.
    Ok,
    /// Exit 1: the policy, check or test failed (`diff`: the two differ).
    Failed,
    /// Exit 2, after diagnostics: the inputs do not check, so there is nothing to compare
    /// (`diff`), as a usage or I/O error would.
    CannotCompare,
}

/// A command that could not do its job: usage or I/O (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not UTF-8 text.
    #[error("{path}: not a text file (invalid UTF-8 at byte {at})")]
    NotText {
        /// The file.
        path: PathBuf,
        /// Offset of the first bad byte.
        at: usize,
    },
    /// The rules file a scenario names cannot be read.
    #[error(
        "{scenario}: cannot read its rules file {rules}: {source} (a relative `rules` path is read from the scenario's folder, {folder})"
    )]
    ScenarioRules {
        /// The scenario file.
        scenario: PathBuf,
        /// The rules path, resolved against the scenario's folder.
        rules: PathBuf,
        /// The scenario's folder.
        folder: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
}

/// Read a whole file as UTF-8 text, naming the file in any error.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| CliError::NotText {
        path: path.to_owned(),
        at: e.utf8_error().valid_up_to(),
    })
}

/// The path that stands for standard input.
pub const STDIN: &str = "-";

/// Whether `path` is `-`, standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// A file's name as diagnostics show it, and its text; `-` reads standard input, shown as
/// `<stdin>`.
pub fn read_input(path: &Path) -> Result<(String, String), CliError> {
    if !is_stdin(path) {
        return Ok((path.display().to_string(), read_text(path)?));
    }
    let name = "<stdin>";
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map_err(|source| {
        CliError::Io {
            path: PathBuf::from(name),
            source,
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| CliError::NotText {
        path: PathBuf::from(name),
        at: e.utf8_error().valid_up_to(),
    })?;
    Ok((name.to_string(), text))
}

/// Decide, skip or back off on Genesys Cloud schedule publishes.
#[derive(Debug, Parser)]
#[command(name = "publish-guard", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check rules files: report errors and warnings with where and how to fix them.
    Check(check::CheckArgs),
    /// Rewrite rules files in the canonical layout, comments kept.
    Fmt(fmt::FmtArgs),
    /// Show how a policy decides on a set of facts: every rule tried, and why each did not match.
    Explain(explain::ExplainArgs),
    /// Print the facts a condition can use, as a Markdown table.
    Facts,
    /// Verify or show an audit log, or make a checkpoint key pair.
    Audit(audit::AuditArgs),
    /// Replay a scenario on a virtual clock and report every decision and call.
    Simulate(simulate::SimulateArgs),
    /// Run scenarios and hold each against its expectations; list rules none made decide.
    Test(test::TestArgs),
    /// Random worlds through the simulator, invariants checked after each; a violation is
    /// shrunk to a scenario file that replays it.
    Explore(explore::ExploreArgs),
    /// What changes if NEW replaces OLD: over the fact space, and on a scenario's replay.
    Diff(diff::DiffArgs),
    /// One publish cycle for one schedule, live, printing each step (`--dry-run`: no writes).
    ///
    /// Exit 0 when the cycle ends well, 1 when it fails (a refused login included), 2 on a
    /// usage or file error. Runs with one OAuth client share its rate limit through a small
    /// file in $XDG_RUNTIME_DIR/publish-guard (else the temporary directory): runs started
    /// together keep to the org's budget and all hold on a 429 one of them met.
    Run(run::RunArgs),
    /// The relay service: receive webhooks, store them, run the policy, keep the audit log.
    Serve(serve::ServeArgs),
}

/// Parse the arguments, run the command, map the result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<Outcome, CliError> = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Facts => {
            print!("{}", crate::language::schema::markdown_table());
            Ok(Outcome::Ok)
        }
        Command::Audit(args) => audit::run(&args, &mut std::io::stdout().lock()),
        Command::Simulate(args) => simulate::simulate(&args),
        Command::Test(args) => test::test(&args),
        Command::Explore(args) => explore::run(&args),
        Command::Diff(args) => diff::diff(&args),
        Command::Run(args) => run::run(&args),
        Command::Serve(args) => serve::serve(&args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::CannotCompare) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
