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

/// Each bad input, and the first diagnostic it gets, as a reader would see it.
fn render_errors(cases: &[&str]) -> String {
    let mut out = String::new();
    for source in cases {
        let diagnostics = parse(source).expect_err(source);
        out.push_str(&format!("{source}\n"));
        for d in diagnostics {
            let at = publish_guard::span::LineCol::of(source, d.span.start);
            out.push_str(&format!(
                "  {} at {at} `{}`: {}\n",
                d.code.as_str(),
                d.span.text(source),
                d.message
            ));
            if let Some(help) = d.help {
                out.push_str(&format!("    help: {help}\n"));
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn syntax_errors_speak_the_language() {
    insta::assert_snapshot!(render_errors(&[
        "foo",
        "}",
        "policy",
        "policy \"unclosed",
        "policy servicenow",
        "sources a,",
        "window w { monday 07:00..20:00 }",
        "window w { mon 07:00 }",
        "window w { mon 7..20 }",
        "backoff b { exponential 5 }",
        "backoff b { linear 5s }",
        "backoff b { jitter some }",
        "on publish { }",
        "on trigger { rule when a then publish }",
        "on trigger { rule a a then publish }",
        "on trigger { rule a when then publish }",
        "on trigger { rule a when x = 1 then publish }",
        "on trigger { rule a when x && y then publish }",
        "on trigger { rule a when now not business then publish }",
        "on trigger { rule a when (a and b then publish }",
        "on trigger { rule a when x in [a, b then publish }",
        "on trigger { rule a when x then }",
        "on trigger { rule a when x then skip }",
        "on trigger { rule a when x then defer business_hours }",
        "on trigger { rule a when x then publish otherwise publish rule b when c then done }",
        "on trigger { rule a when x then publish",
        "on trigger { rule and when x then publish }",
    ]));
}

#[test]
fn literal_and_structure_errors_are_explained() {
    let huge_factor = format!("backoff b {{ exponential 1s factor 1{} }}", "0".repeat(400));
    insta::assert_snapshot!(render_errors(&[
        "window w { mon 25:61..20:00 }",
        "window w { mon 24:00..20:00 }",
        "window w { mon 07:00..24:30 }",
        "on trigger { rule a when x == 99999999999999999999 then publish }",
        "on trigger { rule a when x < 99999999999999999d then publish }",
        &huge_factor,
        "on trigger { rule a when x == \"bad \\n escape\" then publish }",
        "on trigger { rule a when a and b or c then publish }",
        "on trigger { rule a when a or b and c or d then publish }",
        "on trigger {\n  rule a when trigger.source == manual\n    and now in w\n    or attempt > 3 then publish }",
    ]));
}

fn nested(depth: usize) -> String {
    format!(
        "on trigger {{ rule a when {}x{} then publish }}",
        "(".repeat(depth),
        ")".repeat(depth)
    )
}

#[test]
fn sixty_four_parentheses_parse_and_sixty_five_do_not() {
    parse_valid(&nested(publish_guard::parser::MAX_DEPTH));
    let source = nested(publish_guard::parser::MAX_DEPTH + 1);
    let diagnostics = parse(&source).expect_err("too deep");
    assert_eq!(diagnostics[0].code, Code::TooDeep);
    assert_eq!(diagnostics[0].span.start, source.find('(').unwrap() + 64);
}

#[test]
fn a_long_chain_of_not_is_too_deep_without_recursing() {
    let ok = format!(
        "on trigger {{ rule a when {}x then publish }}",
        "not ".repeat(64)
    );
    parse_valid(&ok);
    let source = format!(
        "on trigger {{ rule a when {}x then publish }}",
        "not ".repeat(100_000)
    );
    assert_eq!(error(&source).0, Code::TooDeep);
}

#[test]
fn parentheses_in_strings_and_comments_do_not_count_as_nesting() {
    let source = format!(
        "# {}\non trigger {{ rule a when x == \"{}\" then publish }}",
        "(".repeat(100),
        "(".repeat(100)
    );
    parse_valid(&source);
}

#[test]
fn large_inputs_get_an_answer() {
    let noise = "@".repeat(1 << 20);
    assert_eq!(error(&noise).0, Code::Syntax);
    let rule = "  rule r when schedule.state == draft and attempt < 3 then publish # why\n";
    let big = format!("on trigger {{\n{}  otherwise done\n}}\n", rule.repeat(500));
    let file = parse(&big).expect("valid");
    assert_eq!(file.comments.len(), 500);
    let chain = format!(
        "on trigger {{ rule r when x{} then publish }}",
        " and x".repeat(2_000)
    );
    parse(&chain).expect("valid");
}

#[test]
fn empty_and_comment_only_files_parse() {
    assert!(parse_valid("").items.is_empty());
    let file = parse_valid("# just a comment\n\n   # another\n");
    assert_eq!(file.comments.len(), 2);
    assert_eq!(file.comments[1].text, " another");
    assert!(file.comments[1].own_line);
}
