//! `compile`: rules-file text to a validated [`Policy`](crate::policy::Policy), or a
//! [`CompileError`] that renders its diagnostics as `publish-guard check` does.

use crate::analysis::checker::{self, Checked};
use crate::language::diagnostic::{Diagnostic, render_all};
use crate::language::parser;

/// Parse and check a rules file: the validated policy and its warnings, or every
/// diagnostic (errors and warnings) sorted by position.
pub fn compile(source: &str) -> Result<Checked, CompileError> {
    let checked = parser::parse(source).and_then(|file| checker::check(&file, source));
    checked.map_err(|diagnostics| CompileError {
        diagnostics,
        source: source.to_owned(),
        file: "<rules>".to_owned(),
    })
}

/// A rules file that does not check: its diagnostics (at least one error), with the text
/// they point into so that `Display` can show each with its line, as `check` does.
#[derive(Clone, Debug)]
pub struct CompileError {
    diagnostics: Vec<Diagnostic>,
    source: String,
    file: String,
}

impl CompileError {
    /// The same error, naming `file` (a path) in its rendering instead of `<rules>`.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = file.into();
        self
    }

    /// Every diagnostic, errors and warnings, sorted by position.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The diagnostics, giving up the rest.
    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&render_all(&self.diagnostics, &self.file, &self.source))
    }
}

impl std::error::Error for CompileError {}

#[cfg(test)]
mod tests {
    #[test]
    fn a_compile_error_is_an_error_that_renders_as_check_does() {
        let source = "policy \"p\"\nsources servicenow\non trigger {\n  rule a when schedule.stat == draft then publish\n  otherwise skip \"x\"\n}\non response {\n  otherwise done\n}\n";
        let error = crate::compile(source).unwrap_err().in_file("p.rules");
        let rendered =
            crate::language::diagnostic::render_all(error.diagnostics(), "p.rules", source);
        assert_eq!(error.to_string(), rendered);
        assert!(rendered.contains("p.rules:4:"), "{rendered}");
        let boxed: Box<dyn std::error::Error> = Box::new(error);
        assert!(boxed.to_string().contains("schedule.stat"));
    }
}
