//! `publish-guard fmt`: rewrite rules files in the canonical layout.

use super::{CliError, Outcome, read_text};
use crate::language::diagnostic::render_all;
use crate::language::format::format_source;
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Change nothing; list the files that would change and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
    /// The rules files to format.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Format each file in place (or only report, with `--check`).
pub fn run(args: &FmtArgs) -> Result<Outcome, CliError> {
    let mut failed = false;
    for path in &args.files {
        let name = path.display().to_string();
        let source = read_text(path)?;
        let formatted = match format_source(&source) {
            Ok(formatted) => formatted,
            Err(diagnostics) => {
                // A file that does not parse is left untouched.
                print!("{}", render_all(&diagnostics, &name, &source));
                failed = true;
                continue;
            }
        };
        if formatted == source {
            continue;
        }
        if args.check {
            println!("{name}");
            failed = true;
        } else {
            write_atomically(path, &formatted)?;
        }
    }
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
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
