//! The formatter: canonical layout snapshots, comments kept, idempotence, round trips.

use crate::common::parse_valid;
use publish_guard::language::ast::Item;
use publish_guard::language::format::{format, format_source};

#[test]
fn design_example_formats_canonically() {
    let file = parse_valid(include_str!("../fixtures/syntax/design.rules"));
    insta::assert_snapshot!(format(&file));
}

#[test]
fn messy_input_is_laid_out_and_keeps_every_comment() {
    let source = include_str!("../fixtures/syntax/messy.rules");
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

/// Every rules file the project ships.
const SHIPPED: [(&str, &str); 3] = [
    (
        "rules/default.rules",
        include_str!("../../rules/default.rules"),
    ),
    (
        "rules/examples/naive.rules",
        include_str!("../../rules/examples/naive.rules"),
    ),
    (
        "rules/examples/follow-the-sun.rules",
        include_str!("../../rules/examples/follow-the-sun.rules"),
    ),
];

/// The shipped rules files are already in the canonical layout (`fmt --check` passes).
#[test]
fn shipped_rules_files_are_canonical() {
    for (path, source) in SHIPPED {
        let file = parse_valid(source);
        assert_eq!(format(&file), source, "{path} is not canonically formatted");
    }
}

/// The shipped rules files check without a warning; the DESIGN example as written checks
/// with W205 alone (a failed read ends in its `otherwise skip`).
#[test]
fn shipped_rules_files_check_cleanly() {
    let design = ("DESIGN.md", include_str!("../fixtures/syntax/design.rules"));
    for (path, source) in SHIPPED.into_iter().chain([design]) {
        match publish_guard::compile(source) {
            Ok(checked) => {
                let codes: Vec<&str> = checked.warnings.iter().map(|d| d.code.as_str()).collect();
                let allowed: &[&str] = if path == "DESIGN.md" { &["W205"] } else { &[] };
                assert_eq!(codes, allowed, "{path}: {:?}", checked.warnings);
            }
            Err(diagnostics) => panic!("{path} does not check: {diagnostics:?}"),
        }
    }
}

/// The rules the shipped default adds to the design's example (DESIGN.md: what production
/// taught us), and the backoff profiles only they use.
const ADDED_BY_DEFAULT: &[&str] = &["unreadable", "colleague"];
const PROFILES_ADDED_BY_DEFAULT: &[&str] = &["unreadable"];

#[test]
fn the_default_rules_are_the_design_example_with_comments_and_the_added_rules() {
    let design = parse_valid(include_str!("../fixtures/syntax/design.rules"));
    let mut default = parse_valid(include_str!("../../rules/default.rules"));
    let mut added = Vec::new();
    default.items.retain(|item| {
        !matches!(item, Item::Backoff(b) if PROFILES_ADDED_BY_DEFAULT.contains(&b.name.node.as_str()))
    });
    for item in &mut default.items {
        if let Item::Phase(phase) = item {
            phase.rules.retain(|rule| {
                let extra = ADDED_BY_DEFAULT.contains(&rule.name.node.as_str());
                if extra {
                    added.push(rule.name.node.clone());
                }
                !extra
            });
        }
    }
    assert_eq!(added, ADDED_BY_DEFAULT);
    assert_eq!(design.items, default.items);
}

#[test]
fn long_conditions_break_before_each_joiner() {
    let file = parse_valid(
        "on trigger {\n rule r when trigger.source == manual and schedule.state == draft and attempt < 3 then publish\n rule long when trigger.source in [servicenow, manual, timer, other] then done\n rule s when now in w then recheck }",
    );
    insta::assert_snapshot!(format(&file));
}

/// Random valid sources, built token by token, laid out with random blanks and comments.
mod generated {
    use proptest::prelude::*;
    use publish_guard::language::parser::RESERVED_WORDS;

    const FACTS: &[&str] = &[
        "schedule.state",
        "trigger.duplicate",
        "now",
        "attempt",
        "last_publish.at",
        "response.status",
        "made.up",
    ];
    const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    type Tokens = Vec<String>;

    fn one(token: &str) -> Tokens {
        vec![token.to_owned()]
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,6}".prop_filter("reserved", |n| !RESERVED_WORDS.contains(&n.as_str()))
    }

    fn fact() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(FACTS).prop_map(str::to_owned),
            (name(), name()).prop_map(|(a, b)| format!("{a}.{b}")),
        ]
    }

    fn string() -> impl Strategy<Value = String> {
        "[^\n\r]{0,8}"
            .prop_map(|text| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")))
    }

    fn duration() -> impl Strategy<Value = String> {
        (
            0i64..1_000_000,
            proptest::sample::select(&["ms", "s", "m", "h", "d"][..]),
        )
            .prop_map(|(amount, unit)| format!("{amount}{unit}"))
    }

    fn operand() -> impl Strategy<Value = Tokens> {
        prop_oneof![
            fact().prop_map(|f| vec![f]),
            name().prop_map(|n| vec![n]),
            string().prop_map(|s| vec![s]),
            any::<i64>().prop_map(|n| vec![n.to_string()]),
            duration().prop_map(|d| vec![d]),
            any::<bool>().prop_map(|b| vec![b.to_string()]),
            fact().prop_map(|f| vec!["since".into(), "(".into(), f, ")".into()]),
            (fact(), any::<bool>(), duration())
                .prop_map(|(f, plus, d)| { vec![f, if plus { "+" } else { "-" }.into(), d] }),
        ]
    }

    fn negation(negated: bool) -> Tokens {
        match negated {
            true => vec!["not".into(), "in".into()],
            false => one("in"),
        }
    }

    fn predicate() -> impl Strategy<Value = Tokens> {
        let cmp = proptest::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]);
        prop_oneof![
            (operand(), cmp, operand()).prop_map(|(l, op, r)| [l, one(op), r].concat()),
            (
                operand(),
                any::<bool>(),
                proptest::collection::vec(operand(), 0..4)
            )
                .prop_map(|(o, negated, items)| {
                    let mut list = one("[");
                    for (index, item) in items.into_iter().enumerate() {
                        if index > 0 {
                            list.push(",".into());
                        }
                        list.extend(item);
                    }
                    list.push("]".into());
                    [o, negation(negated), list].concat()
                }),
            (operand(), any::<bool>(), any::<i64>(), any::<i64>()).prop_map(
                |(o, negated, low, high)| {
                    let range = vec![low.to_string(), "..".into(), high.to_string()];
                    [o, negation(negated), range].concat()
                }
            ),
            (operand(), any::<bool>(), name()).prop_map(|(o, negated, w)| [
                o,
                negation(negated),
                vec![w]
            ]
            .concat()),
            fact().prop_map(|f| vec!["exists".into(), "(".into(), f, ")".into()]),
            operand(),
        ]
    }

    /// A condition's shape, rendered with the parentheses the grammar requires.
    #[derive(Clone, Debug)]
    enum Condition {
        Leaf(Tokens),
        And(Vec<Condition>),
        Or(Vec<Condition>),
        Not(Box<Condition>),
        Group(Box<Condition>),
    }

    impl Condition {
        fn tokens(&self, as_term: bool) -> Tokens {
            let chain = |terms: &[Condition], joiner: &str| {
                let mut out = Vec::new();
                for (index, term) in terms.iter().enumerate() {
                    if index > 0 {
                        out.push(joiner.to_owned());
                    }
                    out.extend(term.tokens(true));
                }
                if as_term {
                    out.insert(0, "(".into());
                    out.push(")".into());
                }
                out
            };
            match self {
                Condition::Leaf(tokens) => tokens.clone(),
                Condition::And(terms) => chain(terms, "and"),
                Condition::Or(terms) => chain(terms, "or"),
                Condition::Not(inner) => [one("not"), inner.tokens(true)].concat(),
                Condition::Group(inner) => [one("("), inner.tokens(false), one(")")].concat(),
            }
        }
    }

    fn condition() -> impl Strategy<Value = Tokens> {
        predicate()
            .prop_map(Condition::Leaf)
            .prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 2..4).prop_map(Condition::And),
                    proptest::collection::vec(inner.clone(), 2..4).prop_map(Condition::Or),
                    inner.clone().prop_map(|c| Condition::Not(Box::new(c))),
                    inner.prop_map(|c| Condition::Group(Box::new(c))),
                ]
            })
            .prop_map(|c| c.tokens(false))
    }

    fn action() -> impl Strategy<Value = Tokens> {
        prop_oneof![
            Just(one("publish")),
            string().prop_map(|s| vec!["skip".into(), s]),
            name().prop_map(|n| vec!["backoff".into(), n]),
            name().prop_map(|n| vec!["backoff".into(), "retry_after".into(), "else".into(), n]),
            name().prop_map(|n| vec!["defer".into(), "until".into(), n]),
            (fact(), duration()).prop_map(|(f, d)| vec![
                "defer".into(),
                "until".into(),
                f,
                "+".into(),
                d
            ]),
            Just(one("recheck")),
            Just(one("done")),
            string().prop_map(|s| vec!["fail".into(), s]),
        ]
    }

    fn phase() -> impl Strategy<Value = Tokens> {
        let rule = (name(), condition(), action()).prop_map(|(n, c, a)| {
            [vec!["rule".into(), n, "when".into()], c, one("then"), a].concat()
        });
        (
            any::<bool>(),
            proptest::collection::vec(rule, 0..4),
            proptest::option::of(action()),
        )
            .prop_map(|(trigger, rules, otherwise)| {
                let kind = if trigger { "trigger" } else { "response" };
                let mut out = vec!["on".into(), kind.into(), "{".into()];
                out.extend(rules.concat());
                if let Some(action) = otherwise {
                    out.push("otherwise".into());
                    out.extend(action);
                }
                out.push("}".into());
                out
            })
    }

    fn time(is_end: bool) -> impl Strategy<Value = String> {
        let last = if is_end { 24 } else { 23 };
        (0u16..=last, 0u16..60, any::<bool>()).prop_map(move |(h, m, padded)| {
            let m = if h == 24 { 0 } else { m };
            match padded {
                true => format!("{h:02}:{m:02}"),
                false => format!("{h}:{m:02}"),
            }
        })
    }

    fn window() -> impl Strategy<Value = Tokens> {
        let day = proptest::sample::select(DAYS).prop_map(str::to_owned);
        let spec = (day.clone(), proptest::option::of(day)).prop_map(|(first, last)| match last {
            Some(last) => vec![first, "..".into(), last],
            None => vec![first],
        });
        let line = (
            proptest::collection::vec(spec, 1..3),
            time(false),
            time(true),
        )
            .prop_map(|(specs, start, end)| {
                let mut out = Vec::new();
                for (index, spec) in specs.into_iter().enumerate() {
                    if index > 0 {
                        out.push(",".into());
                    }
                    out.extend(spec);
                }
                out.extend([start, "..".into(), end]);
                out
            });
        (
            name(),
            proptest::option::of(string()),
            proptest::collection::vec(line, 0..3),
        )
            .prop_map(|(n, zone, lines)| {
                let mut out = vec!["window".into(), n];
                if let Some(zone) = zone {
                    out.extend(["timezone".into(), zone]);
                }
                out.push("{".into());
                out.extend(lines.concat());
                out.push("}".into());
                out
            })
    }

    fn backoff() -> impl Strategy<Value = Tokens> {
        let factor = (0u32..100, proptest::option::of(0u32..1000)).prop_map(|(w, f)| match f {
            Some(f) => format!("{w}.{f}"),
            None => w.to_string(),
        });
        let setting = prop_oneof![
            (
                duration(),
                proptest::option::of(factor),
                proptest::option::of(duration())
            )
                .prop_map(|(initial, factor, max)| {
                    let mut out = vec!["exponential".into(), initial];
                    if let Some(factor) = factor {
                        out.extend(["factor".into(), factor]);
                    }
                    if let Some(max) = max {
                        out.extend(["max".into(), max]);
                    }
                    out
                }),
            duration().prop_map(|d| vec!["constant".into(), d]),
            proptest::sample::select(&["none", "full", "equal", "decorrelated"][..])
                .prop_map(|j| vec!["jitter".into(), j.into()]),
            any::<i64>().prop_map(|n| vec!["attempts".into(), n.to_string()]),
        ];
        (name(), proptest::collection::vec(setting, 0..4)).prop_map(|(n, settings)| {
            [
                vec!["backoff".into(), n, "{".into()],
                settings.concat(),
                one("}"),
            ]
            .concat()
        })
    }

    fn item() -> impl Strategy<Value = Tokens> {
        prop_oneof![
            string().prop_map(|s| vec!["policy".into(), s]),
            string().prop_map(|s| vec!["timezone".into(), s]),
            proptest::collection::vec(name(), 1..4).prop_map(|names| {
                let mut out = one("sources");
                for (index, n) in names.into_iter().enumerate() {
                    if index > 0 {
                        out.push(",".into());
                    }
                    out.push(n);
                }
                out
            }),
            window(),
            backoff(),
            phase(),
        ]
    }

    /// Blank space between tokens: spaces, line ends, and now and then a comment.
    fn separator() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => Just(" ".to_owned()),
            2 => Just("\n".to_owned()),
            1 => Just("\r\n\t ".to_owned()),
            1 => "[^\n\r]{0,10}".prop_map(|text| format!(" #{text}\n")),
            1 => "[^\n\r]{0,10}".prop_map(|text| format!("\n  #{text}\n")),
        ]
    }

    /// A whole valid rules file.
    pub fn source() -> impl Strategy<Value = String> {
        proptest::collection::vec(item(), 0..5)
            .prop_map(|items| items.concat())
            .prop_flat_map(|tokens| {
                let count = tokens.len() + 1;
                (Just(tokens), proptest::collection::vec(separator(), count))
            })
            .prop_map(|(tokens, separators)| {
                let mut out = String::new();
                for (separator, token) in separators.iter().zip(&tokens) {
                    out.push_str(separator);
                    out.push_str(token);
                }
                out.push_str(separators.last().map_or("", String::as_str));
                out
            })
    }

    /// Tokens of the language, and a few that are not, in any order.
    pub fn token_soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            proptest::sample::select(
                &[
                    "policy",
                    "timezone",
                    "sources",
                    "window",
                    "backoff",
                    "on",
                    "trigger",
                    "response",
                    "rule",
                    "when",
                    "then",
                    "otherwise",
                    "and",
                    "or",
                    "not",
                    "in",
                    "exists",
                    "since",
                    "(",
                    ")",
                    "[",
                    "]",
                    "{",
                    "}",
                    ",",
                    "..",
                    "==",
                    "<",
                    "+",
                    "-",
                    "mon",
                    "fri",
                    "07:00",
                    "24:00",
                    "25:99",
                    "5s",
                    "15m",
                    "publish",
                    "skip",
                    "defer",
                    "until",
                    "retry_after",
                    "else",
                    "exponential",
                    "factor",
                    "max",
                    "jitter",
                    "full",
                    "attempts",
                    "\"",
                    "#",
                    "\\",
                    "=",
                    "&&",
                    "done",
                ][..]
            )
            .prop_map(str::to_owned),
            name(),
            fact(),
            string(),
            any::<i64>().prop_map(|n| n.to_string()),
        ];
        proptest::collection::vec((token, separator()), 0..60).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(token, separator)| token + &separator)
                .collect()
        })
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// Any valid source parses; formatting keeps its tree and is idempotent.
    #[test]
    fn generated_sources_round_trip(source in generated::source()) {
        parse_valid(&source);
    }

    /// Arbitrary text gets a tree or diagnostics inside the text, never a panic.
    #[test]
    fn arbitrary_text_never_panics(source in "\\PC{0,200}") {
        check_never_panics(&source);
    }

    /// Near-misses made of the language's own tokens get the same treatment.
    #[test]
    fn token_soups_never_panic(source in generated::token_soup()) {
        check_never_panics(&source);
    }
}

fn check_never_panics(source: &str) {
    match publish_guard::language::parser::parse(source) {
        Ok(_) => {
            parse_valid(source);
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            for diagnostic in diagnostics {
                assert!(diagnostic.span.start <= diagnostic.span.end);
                assert!(diagnostic.span.end <= source.len(), "{diagnostic:?}");
                assert!(!diagnostic.message.contains("_decl"), "{diagnostic:?}");
            }
        }
    }
}
