//! Parse errors in the language's own terms: every grammar rule has a human name here.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::grammar::Rule;
use super::scan::last_unclosed;
use super::slips;
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;

/// A pest error as a P001 diagnostic pointing at the offending token.
pub(super) fn diagnostic(source: &str, error: &Error<Rule>) -> Diagnostic {
    let at = match error.location {
        InputLocation::Pos(at) => at,
        InputLocation::Span((start, _)) => start,
    };
    let span = token_at(source, at);
    let found = span.text(source);
    let expected = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => wanted(positives),
        ErrorVariant::CustomError { message } => {
            let message = format!("the file cannot be read: {message}");
            return Diagnostic::new(Code::Syntax, span, message);
        }
    };
    if found.starts_with('"') && (found.len() == 1 || !found.ends_with('"')) {
        return Diagnostic::new(Code::Syntax, span, "this string is not closed")
            .with_help("add `\"` before the end of the line");
    }
    if let Some((time, help)) = slips::time_of_day(source, span) {
        let message = format!("a time of day (`{}`) cannot stand here", time.text(source));
        return Diagnostic::new(Code::Syntax, time, message).with_help(help);
    }
    let shown = slips::shown(found);
    let message = match expected.as_slice() {
        [] => format!("unexpected {shown}"),
        names => format!("expected {}, found {shown}", one_of(names)),
    };
    let mut diagnostic = Diagnostic::new(Code::Syntax, span, message);
    if let Some(help) = help(found, &expected).or_else(|| slips::help(source, span, found)) {
        diagnostic = diagnostic.with_help(help);
    }
    if found.is_empty()
        && let Some((at, bracket)) = last_unclosed(source)
    {
        let note = format!("this `{}` is never closed", char::from(bracket));
        diagnostic = diagnostic.with_note(Span::new(at, at + 1), note);
    }
    diagnostic
}

/// The names of what would have fitted, most telling first, without repeats.
fn wanted(positives: &[Rule]) -> Vec<&'static str> {
    let mut rules: Vec<Rule> = positives.to_vec();
    if rules.iter().any(|&r| !is_minor(r)) {
        rules.retain(|&r| !is_minor(r));
    }
    // Stable: pest's order (the grammar's) within each rank.
    rules.sort_by_key(|&r| !closes_something(r));
    let mut names: Vec<&'static str> = Vec::new();
    for name in rules.into_iter().filter_map(name) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Tokens that end the construct being written: the likeliest thing a reader forgot.
fn closes_something(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_then | Rule::rbrace | Rule::rparen | Rule::rbracket | Rule::kw_when
    )
}

/// Continuations that are always possible after a value, and only noise in a message.
fn is_minor(rule: Rule) -> bool {
    matches!(rule, Rule::offset | Rule::offset_sign)
}

/// A hint for the slips people make most.
fn help(found: &str, expected: &[&str]) -> Option<String> {
    let comparing = expected.iter().any(|e| e.starts_with("a comparison"));
    match found {
        "=" if comparing => Some("compare with `==`"),
        "&" | "&&" => Some("write `and`"),
        "|" | "||" => Some("write `or`"),
        "!" => Some("write `not`, or `!=` to compare"),
        "rule" if expected == ["`}`"] => {
            Some("a rule after `otherwise` would never run: put `otherwise` last")
        }
        "and" | "or" | "not" | "in" | "then" | "when" | "rule" | "otherwise" | "true" | "false"
            if expected.iter().any(|e| e.ends_with(" name")) =>
        {
            Some("this word is reserved by the language: choose another name")
        }
        _ => None,
    }
    .map(str::to_owned)
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The span of the token starting at `at`: a word or number (dots inside, not `..`),
/// a string up to its closing quote or the line end, or one character.
fn token_at(source: &str, at: usize) -> Span {
    let Some(rest) = source.get(at..) else {
        return Span::new(source.len(), source.len());
    };
    let word = |c: char| c.is_alphanumeric() || matches!(c, '_' | ':');
    let len = match rest.chars().next() {
        None => 0,
        Some('"') => rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| matches!(c, '"' | '\n' | '\r'))
            .map_or(rest.len(), |(i, c)| if c == '"' { i + 1 } else { i }),
        Some(c) if word(c) => {
            let mut chars = rest.char_indices().peekable();
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                let dot_in_word = c == '.' && chars.peek().is_some_and(|&(_, n)| word(n));
                if !word(c) && !dot_in_word {
                    end = i;
                    break;
                }
            }
            end
        }
        Some(c) => c.len_utf8(),
    };
    Span::new(at, at + len)
}

/// What a grammar rule is called in an error message (`None`: never worth mentioning).
/// No `_` arm: a new grammar rule does not compile until it has a name.
fn name(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::WHITESPACE | Rule::COMMENT => return None,
        Rule::EOI => "the end of the file",
        Rule::file | Rule::item => {
            "a declaration (`policy`, `timezone`, `sources`, `window`, `backoff` or `on`)"
        }
        Rule::policy_decl => "`policy \"name\"`",
        Rule::timezone_decl => "`timezone \"Area/City\"`",
        Rule::sources_decl => "`sources a, b`",
        Rule::window_decl => "a window",
        Rule::window_zone => "`timezone \"Area/City\"`",
        Rule::window_line => "a window line (`mon..fri 07:00..20:00`)",
        Rule::day_spec => "a day or a range of days (`mon..fri`)",
        Rule::time_range => "a time range (`07:00..20:00`)",
        Rule::backoff_decl => "a backoff profile",
        Rule::backoff_setting => "a backoff setting",
        Rule::exponential => "`exponential`",
        Rule::constant => "`constant`",
        Rule::jitter => "`jitter`",
        Rule::attempts => "`attempts`",
        Rule::phase_decl => "`on trigger` or `on response`",
        Rule::rule_decl | Rule::kw_rule => "a rule",
        Rule::otherwise_clause | Rule::kw_otherwise => "`otherwise`",
        Rule::condition | Rule::unary | Rule::primary => "a condition",
        Rule::bool_op => "`and` or `or`",
        Rule::group => "`(`",
        Rule::exists_call => "`exists(...)`",
        Rule::predicate => "a condition",
        Rule::compare_tail => "a comparison",
        Rule::in_tail => "`in`",
        Rule::in_list => "a list (`[a, b]`)",
        Rule::in_range => "a range (`200..299`)",
        Rule::operand | Rule::simple_operand => "a value",
        Rule::offset => "`+` or `-` a duration",
        Rule::since_call => "`since(...)`",
        Rule::action => {
            "an action (`publish`, `skip`, `backoff`, `defer`, `recheck`, `done` or `fail`)"
        }
        Rule::publish | Rule::kw_publish => "`publish`",
        Rule::skip | Rule::kw_skip => "`skip`",
        Rule::backoff => "`backoff`",
        Rule::retry_after => "`retry_after`",
        Rule::defer | Rule::kw_defer => "`defer`",
        Rule::recheck | Rule::kw_recheck => "`recheck`",
        Rule::done | Rule::kw_done => "`done`",
        Rule::fail | Rule::kw_fail => "`fail`",
        Rule::ident_char => "a letter, digit or `_`",
        Rule::ident => "a name",
        Rule::reserved => "a reserved word",
        Rule::rule_name => "a rule name",
        Rule::window_name => "a window name",
        Rule::backoff_name => "a backoff profile name",
        Rule::source_name => "a source name",
        Rule::fact_name => "a fact name (`last_publish.at`)",
        Rule::path => "a value",
        Rule::string => "a string in double quotes",
        Rule::string_body => "the text of a string",
        Rule::integer => "a whole number",
        Rule::number => "a number",
        Rule::duration => "a duration (`500ms`, `5s`, `15m`, `1h`, `1d`)",
        Rule::boolean => "`true` or `false`",
        Rule::time => "a time (`HH:MM`)",
        Rule::day => "a day (`mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`)",
        Rule::jitter_kind => "`none`, `full`, `equal` or `decorrelated`",
        Rule::phase_kind => "`trigger` or `response`",
        Rule::cmp_op => "a comparison (`==`, `!=`, `<`, `<=`, `>` or `>=`)",
        Rule::offset_sign => "`+` or `-`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::dotdot => "`..`",
        Rule::kw_policy => "`policy`",
        Rule::kw_timezone => "`timezone`",
        Rule::kw_sources => "`sources`",
        Rule::kw_window => "`window`",
        Rule::kw_backoff => "`backoff`",
        Rule::kw_on => "`on`",
        Rule::kw_when => "`when`",
        Rule::kw_then => "`then`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::kw_in => "`in`",
        Rule::kw_exists => "`exists`",
        Rule::kw_since => "`since`",
        Rule::kw_exponential => "`exponential`",
        Rule::kw_factor => "`factor`",
        Rule::kw_max => "`max`",
        Rule::kw_constant => "`constant`",
        Rule::kw_jitter => "`jitter`",
        Rule::kw_attempts => "`attempts`",
        Rule::kw_else => "`else`",
        Rule::kw_until => "`until`",
    })
}
