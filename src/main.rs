//! The `publish-guard` command: a thin layer over the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    publish_guard::cli::main()
}
