//! `publish-guard fmt`: rewrite rules files in the canonical layout.

use super::{CliError, Outcome, is_stdin, read_input};
use crate::language::diagnostic::render_all;
use crate::language::format::format_source;
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Change nothing; show how each file would change (a unified diff) and exit 1 if any would.
    #[arg(long)]
    pub check: bool,
    /// The rules files to format (`-` reads standard input and writes the result to standard
    /// output).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Format each file in place (or only report, with `--check`).
pub fn run(args: &FmtArgs) -> Result<Outcome, CliError> {
    let mut failed = false;
    for path in &args.files {
        let (name, source) = read_input(path)?;
        let formatted = match format_source(&source) {
            Ok(formatted) => formatted,
            Err(diagnostics) => {
                // A file that does not parse is left untouched.
                print!("{}", render_all(&diagnostics, &name, &source));
                failed = true;
                continue;
            }
        };
        if args.check {
            if formatted != source {
                print!("{}", unified_diff(&name, &source, &formatted));
                failed = true;
            }
        } else if is_stdin(path) {
            print!("{formatted}");
        } else if formatted != source {
            write_atomically(path, &formatted)?;
        }
    }
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
}

/// What formatting changes in a file, as a unified diff (`--- name`, `+++ name (formatted)`).
fn unified_diff(name: &str, source: &str, formatted: &str) -> String {
    let diff = similar::TextDiff::from_lines(source, formatted);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(name, &format!("{name} (formatted)"))
        .to_string();
    // A last line without a newline would run into the next file's header.
    if text.ends_with('\n') {
        text
    } else {
        format!("{text}\n")
    }
}

/// Replace `path` by `text` through a sibling temporary file, so a crash midway leaves
/// either the old file or the new one, never half of each.
fn write_atomically(path: &Path, text: &str) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.to_owned(),
        source,
    };
    let mut temp = path.as_os_str().to_owned();
    temp.push(".fmt-tmp");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, text).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}
