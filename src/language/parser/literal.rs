//! Literals as written: the text the grammar matched, read into values or a P003 diagnostic.

use crate::language::ast::{DurationLit, DurationUnit, TimeOfDay};
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;

fn bad(span: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::new(Code::BadLiteral, span, message).with_help(help)
}

/// A literal quoted for a message, cut short when it is long.
fn shown(literal: &str) -> String {
    const LONGEST: usize = 24;
    match literal.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("`{}…`", literal.get(..cut).unwrap_or(literal)),
        None => format!("`{literal}`"),
    }
}

/// `HH:MM` (or `H:MM`) at `span`; `24:00` only where a range ends.
pub(super) fn time(text: &str, span: Span, is_end: bool) -> Result<TimeOfDay, Diagnostic> {
    let (hours, minutes) = text.split_once(':').unwrap_or((text, ""));
    let hours: u16 = hours.parse().unwrap_or(u16::MAX);
    let minutes: u16 = minutes.parse().unwrap_or(u16::MAX);
    if minutes < 60 && (hours < 24 || (is_end && hours == 24 && minutes == 0)) {
        Ok(TimeOfDay(hours * 60 + minutes))
    } else {
        Err(bad(
            span,
            format!("`{text}` is not a time of day"),
            "times run from `00:00` to `23:59`; `24:00` may end a range",
        ))
    }
}

/// A whole number that fits in i64.
pub(super) fn integer(text: &str, span: Span) -> Result<i64, Diagnostic> {
    text.parse().map_err(|_| {
        bad(
            span,
            format!("{} does not fit in a whole number", shown(text)),
            "whole numbers go from -9223372036854775808 to 9223372036854775807",
        )
    })
}

/// A finite decimal number.
pub(super) fn number(text: &str, span: Span) -> Result<f64, Diagnostic> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(bad(
            span,
            format!("{} is too large a number", shown(text)),
            "a backoff factor is a small number such as `2` or `1.5`",
        )),
    }
}

/// `500ms`, `5s`, `15m`, `1h`, `1d`; the whole duration must fit in i64 milliseconds.
pub(super) fn duration(text: &str, span: Span) -> Result<DurationLit, Diagnostic> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (amount, suffix) = text.split_at(digits);
    let unit = match suffix {
        "ms" => DurationUnit::Millis,
        "s" => DurationUnit::Seconds,
        "m" => DurationUnit::Minutes,
        "h" => DurationUnit::Hours,
        _ => DurationUnit::Days,
    };
    amount
        .parse::<i64>()
        .ok()
        .filter(|amount| amount.checked_mul(unit.millis()).is_some())
        .map(|amount| DurationLit { amount, unit })
        .ok_or_else(|| {
            bad(
                span,
                format!("{} is too long a duration", shown(text)),
                "durations are counted in milliseconds and must stay below about 292 million years",
            )
        })
}

/// The text of a quoted string at `span` (quotes included in `quoted`); only `\"` and `\\`
/// are escapes. Unknown escapes are reported and kept as the character escaped.
pub(super) fn string(quoted: &str, span: Span) -> (String, Vec<Diagnostic>) {
    let body = quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(quoted);
    let body_start = span.start + 1;
    let mut text = String::with_capacity(body.len());
    let mut problems = Vec::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some((_, escaped @ ('"' | '\\'))) => text.push(escaped),
            Some((_, other)) => {
                let escape = Span::new(body_start + at, body_start + at + 1 + other.len_utf8());
                problems.push(bad(
                    escape,
                    format!("`\\{other}` is not an escape this language knows"),
                    "inside a string, write `\\\"` for a quote and `\\\\` for a backslash",
                ));
                text.push(other);
            }
            None => text.push(c),
        }
    }
    (text, problems)
}
