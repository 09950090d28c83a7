//! `explain` on real rules and facts files, pinned as the person reading it sees it.

use crate::common;

use publish_guard::evaluation::explain::explain;
use publish_guard::language::ast::PhaseKind;
use publish_guard::policy::facts_file::load_facts;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/explain");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

/// The human rendering of `rules` deciding `phase` for the facts in `facts`.
fn explained(rules: &str, facts: &str, phase: PhaseKind) -> String {
    let source = read(rules);
    let policy = common::compile_valid(&source);
    let facts = load_facts(&read(facts), &policy).unwrap();
    explain(&policy, phase, &facts).render_human(&source)
}

#[test]
fn the_first_rule_decides() {
    let text = explained(
        "reference.rules",
        "first_rule.facts.toml",
        PhaseKind::Trigger,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn otherwise_decides_when_no_rule_matches() {
    let text = explained(
        "reference.rules",
        "otherwise.facts.toml",
        PhaseKind::Trigger,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn an_absent_fact_makes_its_rule_fail() {
    let text = explained(
        "reference.rules",
        "absent_fact.facts.toml",
        PhaseKind::Trigger,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn retry_after_is_shown_on_a_throttled_response() {
    let text = explained(
        "reference.rules",
        "response_throttled.facts.toml",
        PhaseKind::Response,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn a_window_across_midnight_belongs_to_its_first_day() {
    let text = explained(
        "dst.rules",
        "across_midnight.facts.toml",
        PhaseKind::Trigger,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn spring_gap_skips_the_small_hours_and_defers_past_the_change() {
    let text = explained("dst.rules", "spring_gap.facts.toml", PhaseKind::Trigger);
    insta::assert_snapshot!(text);
}

#[test]
fn spring_gap_opens_a_window_whose_start_was_skipped() {
    let text = explained("dst.rules", "spring_window.facts.toml", PhaseKind::Trigger);
    insta::assert_snapshot!(text);
}

#[test]
fn spring_defer_until_a_window_opens_in_summer_time() {
    let text = explained(
        "dst.rules",
        "spring_defer_window.facts.toml",
        PhaseKind::Trigger,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn autumn_fold_second_occurrence_is_inside() {
    let text = explained("dst.rules", "autumn_fold.facts.toml", PhaseKind::Trigger);
    insta::assert_snapshot!(text);
}

#[test]
fn autumn_defer_until_an_instant_after_the_change() {
    let text = explained("dst.rules", "autumn_defer.facts.toml", PhaseKind::Trigger);
    insta::assert_snapshot!(text);
}

#[test]
fn autumn_defer_until_a_window_opens_in_winter_time() {
    let text = explained(
        "dst.rules",
        "autumn_defer_window.facts.toml",
        PhaseKind::Trigger,
    );
    insta::assert_snapshot!(text);
}

#[test]
fn json_carries_spans_values_and_the_verdict() {
    let source = read("reference.rules");
    let policy = common::compile_valid(&source);
    let facts = load_facts(&read("absent_fact.facts.toml"), &policy).unwrap();
    let json = explain(&policy, PhaseKind::Trigger, &facts).render_json(&source);
    insta::assert_snapshot!(serde_json::to_string_pretty(&json).unwrap());
}

#[test]
fn explanation_agrees_with_the_evaluator() {
    let source = read("dst.rules");
    let policy = common::compile_valid(&source);
    for name in [
        "across_midnight.facts.toml",
        "spring_gap.facts.toml",
        "spring_window.facts.toml",
        "spring_defer_window.facts.toml",
        "autumn_fold.facts.toml",
        "autumn_defer.facts.toml",
        "autumn_defer_window.facts.toml",
    ] {
        let facts = load_facts(&read(name), &policy).unwrap();
        let decision =
            publish_guard::evaluation::evaluator::evaluate(&policy, PhaseKind::Trigger, &facts);
        let explanation = explain(&policy, PhaseKind::Trigger, &facts);
        assert_eq!(explanation.decision.rule, decision.rule, "{name}");
        assert_eq!(explanation.decision.span, decision.span, "{name}");
        let last = explanation.rules.last().unwrap();
        assert_eq!(last.matched, decision.rule != "otherwise", "{name}");
    }
}
