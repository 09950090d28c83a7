//! The formatter: canonical layout snapshots, comments kept, idempotence, round trips.

mod common;

use common::parse_valid;
use publish_guard::format::{format, format_source};

#[test]
fn design_example_formats_canonically() {
    let file = parse_valid(include_str!("fixtures/syntax/design.rules"));
    insta::assert_snapshot!(format(&file));
}

#[test]
fn messy_input_is_laid_out_and_keeps_every_comment() {
    let source = include_str!("fixtures/syntax/messy.rules");
    let file = parse_valid(source);
    let formatted = format(&file);
    for comment in &file.comments {
        assert!(
            formatted.contains(&format!("#{}", comment.text)),
            "lost comment {comment:?}"
        );
    }
    insta::assert_snapshot!(formatted);
}

#[test]
fn format_source_reports_syntax_errors() {
    let diagnostics = format_source("policy").expect_err("incomplete");
    assert_eq!(diagnostics.len(), 1);
}

#[test]
fn an_empty_file_formats_to_nothing() {
    assert_eq!(format_source("  \n\n").as_deref(), Ok(""));
}

/// The shipped rules files are already in the canonical layout (`fmt --check` passes).
#[test]
fn shipped_rules_files_are_canonical() {
    let shipped = [
        (
            "rules/default.rules",
            include_str!("../rules/default.rules"),
        ),
        (
            "rules/examples/naive.rules",
            include_str!("../rules/examples/naive.rules"),
        ),
        (
            "rules/examples/follow-the-sun.rules",
            include_str!("../rules/examples/follow-the-sun.rules"),
        ),
    ];
    for (path, source) in shipped {
        let file = parse_valid(source);
        assert_eq!(format(&file), source, "{path} is not canonically formatted");
    }
}

#[test]
fn the_default_rules_are_the_design_example_with_comments() {
    let design = parse_valid(include_str!("fixtures/syntax/design.rules"));
    let default = parse_valid(include_str!("../rules/default.rules"));
    assert_eq!(design.items, default.items);
}

#[test]
fn long_conditions_break_before_each_joiner() {
    let file = parse_valid(
        "on trigger {\n rule r when trigger.source == manual and schedule.state == draft and attempt < 3 then publish\n rule long when trigger.source in [servicenow, manual, timer, other] then done\n rule s when now in w then recheck }",
    );
    insta::assert_snapshot!(format(&file));
}
