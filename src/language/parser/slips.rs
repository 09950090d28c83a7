//! Help for the slips people make most often in a rules file, recognised around the token
//! a parse error stops at.

use crate::language::diagnostic::quoted;
use crate::language::span::Span;

/// Spaces that look like a blank but are not one, by name.
const LOOKALIKE_SPACES: &[(char, &str)] = &[
    ('\u{00A0}', "no-break space"),
    ('\u{2002}', "en space"),
    ('\u{2003}', "em space"),
    ('\u{2007}', "figure space"),
    ('\u{2009}', "thin space"),
    ('\u{200A}', "hair space"),
    ('\u{200B}', "zero-width space"),
    ('\u{202F}', "narrow no-break space"),
    ('\u{3000}', "ideographic space"),
];

/// Typographic quotes word processors put in place of `"`.
const SMART_QUOTES: &[char] = &[
    '\u{201C}', '\u{201D}', '\u{201E}', '\u{2018}', '\u{2019}', '\u{00AB}', '\u{00BB}',
];

/// Duration units people write out, and the one the language uses.
const UNIT_SPELLINGS: &[(&str, &str)] = &[
    ("msec", "ms"),
    ("msecs", "ms"),
    ("millis", "ms"),
    ("sec", "s"),
    ("secs", "s"),
    ("second", "s"),
    ("seconds", "s"),
    ("min", "m"),
    ("mins", "m"),
    ("minute", "m"),
    ("minutes", "m"),
    ("hr", "h"),
    ("hrs", "h"),
    ("hour", "h"),
    ("hours", "h"),
    ("day", "d"),
    ("days", "d"),
];

/// How a message shows the token `found`: a look-alike space or an invisible character
/// by name and code point (a blank between backticks tells a reader nothing).
pub(super) fn shown(found: &str) -> String {
    let mut chars = found.chars();
    match (chars.next(), chars.next()) {
        (None, _) => "the end of the file".to_owned(),
        (Some(c), None) if !c.is_ascii() && (c.is_whitespace() || is_invisible(c)) => {
            let name = LOOKALIKE_SPACES
                .iter()
                .find(|(space, _)| *space == c)
                .map_or("an invisible character", |(_, name)| name);
            let article = if name.starts_with("an ") { "" } else { "a " };
            format!("{article}{name} (U+{:04X})", u32::from(c))
        }
        _ => format!("`{}`", quoted(found)),
    }
}

/// Whether `c` shows as nothing at all.
fn is_invisible(c: char) -> bool {
    LOOKALIKE_SPACES.iter().any(|(space, _)| *space == c)
        || matches!(c, '\u{200C}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}')
}

/// The help for a parse error at `span` (whose text is `found`), if it is a known slip.
pub(super) fn help(source: &str, span: Span, found: &str) -> Option<String> {
    let first = found.chars().next()?;
    if SMART_QUOTES.contains(&first) {
        return Some("use straight double quotes `\"`, not typographic ones".to_owned());
    }
    if !first.is_ascii() && (first.is_whitespace() || is_invisible(first)) {
        return Some("replace it with a plain space".to_owned());
    }
    if let Some(help) = unit_help(found) {
        return Some(help);
    }
    if found == "-"
        && let Some(name) = hyphenated(source, span)
    {
        return Some(format!(
            "names are made of letters, digits and `_`: write `{}`",
            name.replace('-', "_")
        ));
    }
    if first.is_alphabetic() && !first.is_ascii() {
        return Some(format!(
            "names are made of ASCII letters, digits and `_`; `{first}` is not one of them"
        ));
    }
    None
}

/// A time of day (`07:00`) a parse error at `span` stops inside (the parser reads `07` as a
/// number and stops at `:00`): its span, and what to write instead.
pub(super) fn time_of_day(source: &str, span: Span) -> Option<(Span, String)> {
    let time = time_at(source, span)?;
    Some((time, time_help(source, time)))
}

/// The span of `HH:MM` when `span` starts at its `:`.
fn time_at(source: &str, span: Span) -> Option<Span> {
    let rest = source.get(span.start..)?;
    let minutes = rest.strip_prefix(':')?;
    if minutes.len() < 2 || !minutes.bytes().take(2).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let before = source.get(..span.start)?;
    let hours = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    (1..=2)
        .contains(&hours)
        .then(|| Span::new(span.start - hours, span.start + 3))
}

/// What to write instead of a time of day, from the word before it.
fn time_help(source: &str, time: Span) -> String {
    let before = source.get(..time.start).unwrap_or("").trim_end();
    let word = before
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    let at = time.text(source);
    match word {
        "until" => format!(
            "`defer until` takes a window or an instant, not a time of day: declare a window \
             that opens then, e.g. `window morning {{ mon..fri {at}..20:00 }}`, and write \
             `defer until morning`, or defer until an instant such as `last_publish.at + 15m`"
        ),
        "in" => format!(
            "windows are declared blocks: declare `window hours {{ mon..fri {at}..17:00 }}` \
             and write `now in hours`"
        ),
        _ => {
            "times of day belong in window declarations (`window hours { mon..fri 09:00..17:00 }`)"
                .to_owned()
        }
    }
}

/// `15min`: the unit written out.
fn unit_help(found: &str) -> Option<String> {
    let digits = found.len() - found.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (amount, unit) = found.split_at(digits);
    if amount.is_empty() {
        return None;
    }
    let (_, short) = UNIT_SPELLINGS
        .iter()
        .find(|(spelling, _)| spelling.eq_ignore_ascii_case(unit))?;
    Some(format!(
        "write `{amount}{short}`: durations take the units `ms`, `s`, `m`, `h` and `d`"
    ))
}

/// The whole hyphenated name around a `-` at `span`, when a name is written on both sides.
fn hyphenated(source: &str, span: Span) -> Option<&str> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let before = source.get(..span.start)?;
    let start = before
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_name(c))
        .last()
        .map_or(span.start, |(i, _)| i);
    let after = source.get(span.start..)?;
    let end = span.start
        + after
            .char_indices()
            .find(|&(_, c)| !is_name(c))
            .map_or(after.len(), |(i, _)| i);
    let name = source.get(start..end)?;
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    (start < span.start && end > span.end && starts_with_letter).then_some(name)
}
