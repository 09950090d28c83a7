//! Helpers shared by the integration tests.

use publish_guard::ast;
use publish_guard::parser::parse;

/// Parse a source that must be valid; panics with the diagnostics otherwise.
pub fn parse_valid(source: &str) -> ast::File {
    match parse(source) {
        Ok(file) => file,
        Err(diagnostics) => panic!("{source}\ndoes not parse: {diagnostics:#?}"),
    }
}
