//! `diff`: a policy against itself, against a reordered copy, and two policies on a replay.

use publish_guard::cli::diff::{DiffArgs, report};
use std::path::PathBuf;

fn diff(old: &str, new: &str, scenario: Option<&str>) -> (String, bool) {
    let args = DiffArgs {
        old: PathBuf::from(old),
        new: PathBuf::from(new),
        scenario: scenario.map(PathBuf::from),
    };
    report(&args)
        .expect("files read")
        .expect("rules and scenario check")
}

#[test]
fn a_policy_is_equivalent_to_itself() {
    let (text, same) = diff("rules/default.rules", "rules/default.rules", None);
    assert!(same);
    insta::assert_snapshot!(text);
}

#[test]
fn a_reordering_that_shadows_rules_shows_where_decisions_change() {
    let (text, same) = diff(
        "rules/default.rules",
        "tests/fixtures/diff/reordered.rules",
        None,
    );
    assert!(!same);
    // The witness: a draft outside business hours, which used to wait for the window.
    assert!(text.contains("(rule after_hours)"), "{text}");
    assert!(text.contains("publish  (rule ready)"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn two_policies_over_a_scenario_show_the_differing_rows_and_totals() {
    let (text, same) = diff(
        "rules/default.rules",
        "rules/examples/naive.rules",
        Some("tests/fixtures/diff/small.toml"),
    );
    assert!(!same);
    assert!(text.contains("conflicts"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_policy_replayed_against_itself_is_the_same() {
    let (text, same) = diff(
        "rules/default.rules",
        "rules/default.rules",
        Some("tests/fixtures/diff/small.toml"),
    );
    assert!(same, "{text}");
    assert!(text.contains("the same timeline and totals under both"));
}
