//! Helpers shared by the integration tests.

use publish_guard::ast;
use publish_guard::format::format;
use publish_guard::parser::parse;

/// Parse a source that must be valid, and check the formatter on it: the formatted text
/// parses back to an equal tree (spans aside) and formatting it again changes nothing.
/// Panics with the diagnostics or the differing texts otherwise.
pub fn parse_valid(source: &str) -> ast::File {
    let file = match parse(source) {
        Ok(file) => file,
        Err(diagnostics) => panic!("{source}\ndoes not parse: {diagnostics:#?}"),
    };
    let formatted = format(&file);
    let reparsed = match parse(&formatted) {
        Ok(reparsed) => reparsed,
        Err(diagnostics) => panic!("formatted text\n{formatted}\ndoes not parse: {diagnostics:#?}"),
    };
    assert_eq!(reparsed, file, "formatting changed the tree:\n{formatted}");
    let again = format(&reparsed);
    assert_eq!(again, formatted, "formatting is not idempotent");
    file
}
