//! The parser: the DESIGN example, every construct, and error diagnostics.

use crate::common;

use crate::common::parse_valid;
use publish_guard::language::ast::{
    Action, DaySpec, ExprKind, FactPath, Item, OffsetSign, OperandKind, Phase, PhaseKind, Weekday,
};
use publish_guard::language::diagnostic::Code;
use publish_guard::language::parser::parse;

fn phase(file: &publish_guard::language::ast::File, kind: PhaseKind) -> &Phase {
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
    let source = include_str!("../fixtures/syntax/design.rules");
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
    let source = include_str!("../fixtures/syntax/design.rules");
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
            let at = publish_guard::language::span::LineCol::of(source, d.span.start);
            out.push_str(&format!(
                "  {} at {at} `{}`: {}\n",
                d.code.as_str(),
                d.span.text(source),
                d.message
            ));
            if let Some(help) = d.help {
                out.push_str(&format!("    help: {help}\n"));
            }
            for (span, note) in d.notes {
                let at = publish_guard::language::span::LineCol::of(source, span.start);
                out.push_str(&format!("    note at {at}: {note}\n"));
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
        "window w {\n  mon 07:00..20:00\n\non trigger { rule a when (x then publish }",
        "\u{feff}policy # \"unclosed (\n",
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
    parse_valid(&nested(publish_guard::language::parser::MAX_DEPTH));
    let source = nested(publish_guard::language::parser::MAX_DEPTH + 1);
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

mod constructs {
    use super::common::parse_valid;
    use publish_guard::language::ast::{
        Action, BackoffSetting, CmpOp, DaySpec, DurationLit, DurationUnit, Expr, ExprKind,
        FactPath, Item, Jitter, OffsetSign, Operand, OperandKind, TimeOfDay, Weekday,
    };
    use publish_guard::language::span::{Span, Spanned};

    fn at<T>(node: T) -> Spanned<T> {
        Spanned::new(node, Span::default())
    }

    fn fact(name: &str) -> Operand {
        at(OperandKind::Fact(FactPath(name.into())))
    }

    fn word(name: &str) -> Operand {
        at(OperandKind::Word(name.into()))
    }

    fn dur(amount: i64, unit: DurationUnit) -> DurationLit {
        DurationLit { amount, unit }
    }

    /// The condition of the only rule of a one-rule trigger phase.
    fn condition(text: &str) -> Expr {
        let file = parse_valid(&format!("on trigger {{ rule r when {text} then publish }}"));
        match file.items.into_iter().next() {
            Some(Item::Phase(mut phase)) => phase.rules.remove(0).condition,
            other => panic!("{other:?}"),
        }
    }

    fn action(text: &str) -> Action {
        let file = parse_valid(&format!("on response {{ otherwise {text} }}"));
        match file.items.into_iter().next() {
            Some(Item::Phase(phase)) => phase.otherwise.expect("otherwise").node,
            other => panic!("{other:?}"),
        }
    }

    fn truthy(operand: Operand) -> ExprKind {
        ExprKind::Truthy(operand)
    }

    #[test]
    fn operands_of_every_kind() {
        let compare = |text: &str, right: OperandKind| {
            assert_eq!(
                condition(&format!("attempt == {text}")).node,
                ExprKind::Compare {
                    left: fact("attempt"),
                    op: at(CmpOp::Eq),
                    right: at(right),
                },
                "{text}"
            );
        };
        compare(
            "schedule.state",
            OperandKind::Fact(FactPath("schedule.state".into())),
        );
        compare("now", OperandKind::Fact(FactPath("now".into())));
        compare("published", OperandKind::Word("published".into()));
        compare(r#""a \"b\" \\ c""#, OperandKind::Str(r#"a "b" \ c"#.into()));
        compare("-42", OperandKind::Int(-42));
        compare("true", OperandKind::Bool(true));
        compare(
            "500ms",
            OperandKind::Duration(dur(500, DurationUnit::Millis)),
        );
        compare("5s", OperandKind::Duration(dur(5, DurationUnit::Seconds)));
        compare("15m", OperandKind::Duration(dur(15, DurationUnit::Minutes)));
        compare("1h", OperandKind::Duration(dur(1, DurationUnit::Hours)));
        compare("1d", OperandKind::Duration(dur(1, DurationUnit::Days)));
        compare(
            "since(last_publish.at)",
            OperandKind::Since(at(FactPath("last_publish.at".into()))),
        );
        compare(
            "now - 15m",
            OperandKind::Offset {
                base: Box::new(fact("now")),
                sign: OffsetSign::Minus,
                by: at(dur(15, DurationUnit::Minutes)),
            },
        );
    }

    #[test]
    fn comparison_operators() {
        for (symbol, op) in [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<", CmpOp::Lt),
            ("<=", CmpOp::Le),
            (">", CmpOp::Gt),
            (">=", CmpOp::Ge),
        ] {
            let parsed = condition(&format!("attempt {symbol} 3"));
            assert!(
                matches!(&parsed.node, ExprKind::Compare { op: o, .. } if o.node == op),
                "{symbol}"
            );
        }
    }

    #[test]
    fn membership_exists_and_truthiness() {
        assert_eq!(
            condition("schedule.state not in [draft, unknown]").node,
            ExprKind::InList {
                operand: fact("schedule.state"),
                negated: true,
                items: vec![word("draft"), word("unknown")],
            }
        );
        assert_eq!(
            condition("response.status in -1..299").node,
            ExprKind::InRange {
                operand: fact("response.status"),
                negated: false,
                low: at(-1),
                high: at(299),
            }
        );
        assert_eq!(
            condition("now in business_hours").node,
            ExprKind::InWindow {
                operand: fact("now"),
                negated: false,
                window: at("business_hours".into()),
            }
        );
        assert_eq!(
            condition("exists(last_publish.version)").node,
            ExprKind::Exists(at(FactPath("last_publish.version".into())))
        );
        assert_eq!(
            condition("trigger.duplicate").node,
            truthy(fact("trigger.duplicate"))
        );
        assert_eq!(
            condition("false").node,
            truthy(at(OperandKind::Bool(false)))
        );
    }

    #[test]
    fn and_or_not_and_parentheses() {
        let a = || at(truthy(fact("a.a")));
        let b = || at(truthy(fact("b.b")));
        let c = || at(truthy(fact("c.c")));
        assert_eq!(
            condition("a.a and b.b and c.c").node,
            ExprKind::And(vec![a(), b(), c()])
        );
        assert_eq!(condition("a.a or b.b").node, ExprKind::Or(vec![a(), b()]));
        assert_eq!(
            condition("not a.a and (b.b or not not c.c)").node,
            ExprKind::And(vec![
                at(ExprKind::Not(Box::new(a()))),
                at(ExprKind::Group(Box::new(at(ExprKind::Or(vec![
                    b(),
                    at(ExprKind::Not(Box::new(at(ExprKind::Not(Box::new(c())))))),
                ]))))),
            ])
        );
    }

    #[test]
    fn every_action() {
        let reason = |text: &str| at(String::from(text));
        assert_eq!(action("publish"), Action::Publish);
        assert_eq!(action("skip \"why\""), Action::Skip(reason("why")));
        assert_eq!(action("backoff busy"), Action::Backoff(at("busy".into())));
        assert_eq!(
            action("backoff retry_after else busy"),
            Action::BackoffRetryAfter(at("busy".into()))
        );
        assert_eq!(
            action("defer until business_hours"),
            Action::DeferUntilWindow(at("business_hours".into()))
        );
        assert_eq!(
            action("defer until now"),
            Action::DeferUntilInstant(fact("now"))
        );
        assert_eq!(action("recheck"), Action::Recheck);
        assert_eq!(action("done"), Action::Done);
        assert_eq!(action("fail \"no\""), Action::Fail(reason("no")));
    }

    #[test]
    fn windows_and_backoffs() {
        let file = parse_valid(
            "window night timezone \"Asia/Tokyo\" {\n  fri..mon, wed 22:00..6:00\n  sun 00:00..24:00\n}\n\
             backoff flat {\n  constant 30s\n  jitter decorrelated\n  attempts 0\n}\n",
        );
        let Some(Item::Window(window)) = file.items.first() else {
            panic!("{file:?}")
        };
        assert_eq!(
            window.timezone.as_ref().map(|z| z.node.as_str()),
            Some("Asia/Tokyo")
        );
        let days: Vec<DaySpec> = window.lines[0].days.iter().map(|d| d.node).collect();
        assert_eq!(
            days,
            [
                DaySpec::Range(Weekday::Fri, Weekday::Mon),
                DaySpec::Day(Weekday::Wed)
            ]
        );
        assert_eq!(window.lines[0].times.node.start, TimeOfDay(22 * 60));
        assert_eq!(window.lines[0].times.node.end, TimeOfDay(6 * 60));
        assert_eq!(window.lines[1].times.node.end, TimeOfDay(24 * 60));
        let Some(Item::Backoff(backoff)) = file.items.get(1) else {
            panic!("{file:?}")
        };
        let settings: Vec<BackoffSetting> =
            backoff.settings.iter().map(|s| s.node.clone()).collect();
        assert_eq!(
            settings,
            [
                BackoffSetting::Constant(at(dur(30, DurationUnit::Seconds))),
                BackoffSetting::Jitter(at(Jitter::Decorrelated)),
                BackoffSetting::Attempts(at(0)),
            ]
        );
    }

    #[test]
    fn a_phase_without_otherwise_parses() {
        let file = parse_valid("on response { rule ok when response.status == 200 then done }");
        let Some(Item::Phase(phase)) = file.items.first() else {
            panic!("{file:?}")
        };
        assert!(phase.otherwise.is_none());
        assert_eq!(phase.rules.len(), 1);
    }

    #[test]
    fn comments_are_collected_with_their_place() {
        let source = "# top\npolicy \"p\" # trailing\n# own\n";
        let file = parse_valid(source);
        let seen: Vec<(&str, bool, &str)> = file
            .comments
            .iter()
            .map(|c| (c.text.as_str(), c.own_line, c.span.text(source)))
            .collect();
        assert_eq!(
            seen,
            [
                (" top", true, "# top"),
                (" trailing", false, "# trailing"),
                (" own", true, "# own"),
            ]
        );
    }
}
