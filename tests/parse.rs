//! The parser: the DESIGN example, every construct, and error diagnostics.

mod common;

use common::parse_valid;
use publish_guard::ast::{
    Action, DaySpec, ExprKind, FactPath, Item, OffsetSign, OperandKind, Phase, PhaseKind, Weekday,
};
use publish_guard::diagnostic::Code;
use publish_guard::parser::parse;

fn phase(file: &publish_guard::ast::File, kind: PhaseKind) -> &Phase {
    file.items
        .iter()
        .find_map(|item| match item {
            Item::Phase(p) if p.kind.node == kind => Some(p),
            _ => None,
        })
        .expect("phase present")
}

#[test]
fn design_example_parses_as_written() {
    let source = include_str!("fixtures/syntax/design.rules");
    let file = parse_valid(source);
    assert_eq!(file.items.len(), 7);
    assert_eq!(file.comments.len(), 1);
    assert!(matches!(&file.items[0], Item::Policy(name) if name.node == "servicenow-autopublish"));
    assert!(matches!(&file.items[1], Item::Timezone(zone) if zone.node == "Europe/London"));
    let Item::Window(window) = &file.items[3] else {
        panic!("window expected")
    };
    assert_eq!(
        window.lines[0].days[0].node,
        DaySpec::Range(Weekday::Mon, Weekday::Fri)
    );
    assert_eq!(window.lines[1].times.node.end.0, 14 * 60);
    let trigger = phase(&file, PhaseKind::Trigger);
    let names: Vec<&str> = trigger.rules.iter().map(|r| r.name.node.as_str()).collect();
    assert_eq!(
        names,
        [
            "duplicate",
            "published",
            "in_progress",
            "after_hours",
            "debounce",
            "ready"
        ]
    );
    let after_hours = &trigger.rules[3];
    let ExprKind::And(terms) = &after_hours.condition.node else {
        panic!("and expected: {:?}", after_hours.condition)
    };
    assert!(
        matches!(&terms[1].node, ExprKind::InWindow { negated: true, window, .. } if window.node == "business_hours")
    );
    assert!(
        matches!(&after_hours.action.node, Action::DeferUntilWindow(w) if w.node == "business_hours")
    );
    let Action::DeferUntilInstant(instant) = &trigger.rules[4].action.node else {
        panic!("defer until an instant expected")
    };
    assert!(
        matches!(&instant.node, OperandKind::Offset { sign: OffsetSign::Plus, base, .. }
        if base.node == OperandKind::Fact(FactPath("last_publish.at".into())))
    );
    let response = phase(&file, PhaseKind::Response);
    assert!(
        matches!(&response.rules[2].action.node, Action::BackoffRetryAfter(p) if p.node == "conflict")
    );
    assert!(response.otherwise.is_some());
}

#[test]
fn spans_point_at_the_text_they_cover() {
    let source = include_str!("fixtures/syntax/design.rules");
    let file = parse_valid(source);
    let trigger = phase(&file, PhaseKind::Trigger);
    let rule = &trigger.rules[3];
    assert_eq!(rule.name.span.text(source), "after_hours");
    assert_eq!(
        rule.condition.span.text(source),
        "trigger.source == servicenow\n                    and now not in business_hours"
    );
    assert_eq!(rule.action.span.text(source), "defer until business_hours");
    assert!(rule.span.text(source).starts_with("rule after_hours"));
    assert!(rule.span.text(source).ends_with("business_hours"));
}

fn error(source: &str) -> (Code, String, String) {
    let diagnostics = parse(source).expect_err("must not parse");
    let first = &diagnostics[0];
    (
        first.code,
        first.span.text(source).to_owned(),
        first.message.clone(),
    )
}

#[test]
fn a_missing_then_is_named_in_the_language_terms() {
    let (code, at, message) = error("on trigger {\n  rule a when a == b skip \"y\"\n}");
    assert_eq!(code, Code::Syntax);
    assert_eq!(at, "skip");
    assert_eq!(message, "expected `then`, `and` or `or`, found `skip`");
}

#[test]
fn mixed_and_or_shows_both_readings() {
    let diagnostics =
        parse("on trigger { rule a when a and b or c then publish }").expect_err("mixed");
    assert_eq!(diagnostics[0].code, Code::MixedAndOr);
    assert_eq!(
        diagnostics[0].help.as_deref(),
        Some("say which is meant: write `(a and b) or c` or `a and (b or c)`")
    );
}

#[test]
fn bad_literals_are_reported() {
    assert_eq!(error("window w { mon 25:61..20:00 }").0, Code::BadLiteral);
    assert_eq!(
        error("on trigger { rule a when x == 99999999999999999999 then publish }").0,
        Code::BadLiteral
    );
    assert_eq!(
        error("on trigger { rule a when x < 99999999999999999d then publish }").0,
        Code::BadLiteral
    );
}

#[test]
fn a_hundred_thousand_parentheses_are_too_deep() {
    let source = format!(
        "on trigger {{ rule a when {}x{} then publish }}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert_eq!(error(&source).0, Code::TooDeep);
}
