//! `publish-guard check`: report every diagnostic in some rules files.

use super::{CliError, Outcome, read_input};
use crate::language::diagnostic::{Diagnostic, Severity, json_all, render_all};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The rules files to check (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// How to print the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Output formats for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// As a person reads them: location, source line, underline, help.
    Human,
    /// One JSON array of diagnostics (code, severity, message, file, line, column, end, help).
    Json,
}

/// Check each file; exit 1 when any has errors (or warnings with `--deny-warnings`).
pub fn run(args: &CheckArgs) -> Result<Outcome, CliError> {
    let mut failed = false;
    let mut json = Vec::new();
    for path in &args.files {
        let (name, source) = read_input(path)?;
        let diagnostics = match crate::compile(&source) {
            Ok(checked) => checked.warnings,
            Err(e) => e.into_diagnostics(),
        };
        failed |= fails(&diagnostics, args.deny_warnings);
        match args.format {
            Format::Human => print!("{}", human_report(&name, &source, &diagnostics)),
            Format::Json => json.extend(json_all(&diagnostics, &name, &source)),
        }
    }
    if args.format == Format::Json {
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| CliError::Usage(format!("cannot print JSON: {e}")))?;
        println!("{text}");
    }
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
}

/// Whether these diagnostics fail the check.
fn fails(diagnostics: &[Diagnostic], deny_warnings: bool) -> bool {
    diagnostics
        .iter()
        .any(|d| d.severity() == Severity::Error || deny_warnings)
}

/// The diagnostics of one file followed by a one-line verdict.
fn human_report(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let verdict = match (errors, warnings) {
        (0, 0) => format!("{name}: ok\n"),
        (0, w) => format!("{name}: ok, {}\n", plural(w, "warning")),
        (e, 0) => format!("{name}: {}\n", plural(e, "error")),
        (e, w) => format!("{name}: {}, {}\n", plural(e, "error"), plural(w, "warning")),
    };
    format!("{}{verdict}", render_all(diagnostics, name, source))
}

/// `1 error`, `2 errors`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
