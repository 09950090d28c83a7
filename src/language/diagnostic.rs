//! Diagnostics: what is wrong with a rules or facts file, where, and how to fix it.

use crate::language::span::{LineCol, LineIndex, Span};

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file does not check.
    Error,
    /// The file checks, but probably not as meant.
    Warning,
}

/// A stable diagnostic code. The number never changes meaning once shipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// P001: the text does not follow the grammar.
    Syntax,
    /// P002: `and` and `or` mixed without parentheses.
    MixedAndOr,
    /// P003: a number, time, duration or string that cannot be read.
    BadLiteral,
    /// P004: nesting deeper than the parser allows.
    TooDeep,
    /// E101: a fact name the schema does not know.
    UnknownFact,
    /// E102: a word that is not a value of the fact's enum.
    UnknownEnumValue,
    /// E103: two sides of a comparison (or an operand and its use) of different types.
    TypeMismatch,
    /// E104: a window that is not declared.
    UndefinedWindow,
    /// E105: a backoff profile that is not declared.
    UndefinedBackoff,
    /// E106: two rules of one phase with the same name.
    DuplicateRule,
    /// E107: not an IANA time-zone name.
    InvalidTimezone,
    /// E108: a trigger source that `sources` does not declare.
    UnknownSource,
    /// E109: a phase without `otherwise`.
    MissingOtherwise,
    /// E110: a declaration made twice (policy, timezone, sources, window, backoff, phase).
    DuplicateDeclaration,
    /// E111: a required declaration (`policy`, `on trigger`, `on response`) is missing.
    MissingDeclaration,
    /// E112: a fact used in a phase where it has no value (`response.*` in `on trigger`).
    FactNotInPhase,
    /// E113: an action that means nothing in this phase (`done` in `on trigger`).
    ActionNotInPhase,
    /// E114: a backoff profile that cannot work (no delay, factor below 1, zero attempts).
    InvalidBackoff,
    /// E115: a window line that cannot work (an empty time range).
    InvalidWindow,
    /// E116: an operand used as a condition that is not a boolean.
    NotACondition,
    /// E117: a facts-file key or value that does not fit the schema.
    BadFact,
    /// E118: an integer range whose low end is above its high end, so nothing is in it.
    EmptyRange,
    /// S301: a scenario-file key or value that does not fit (simulation scenarios).
    BadScenario,
    /// W201: a rule that can never fire because an earlier rule always decides first.
    ShadowedRule,
    /// W202: a backoff profile whose cap is below its initial delay.
    CapBelowInitial,
    /// W203: a window, backoff profile or source declared but never used.
    Unused,
    /// W204: `defer until FACT + d` where FACT may be absent when the rule decides.
    DeferMayFail,
    /// W205: `on trigger` can skip while `schedule.state == unknown` (a failed read).
    UnknownStateSkipped,
    /// W206: the checker's analysis (W201, W204) stopped short of the last rules: too costly.
    AnalysisCutShort,
}

impl Code {
    /// Every code, for docs and tests.
    pub const ALL: &'static [Code] = &[
        Code::Syntax,
        Code::MixedAndOr,
        Code::BadLiteral,
        Code::TooDeep,
        Code::UnknownFact,
        Code::UnknownEnumValue,
        Code::TypeMismatch,
        Code::UndefinedWindow,
        Code::UndefinedBackoff,
        Code::DuplicateRule,
        Code::InvalidTimezone,
        Code::UnknownSource,
        Code::MissingOtherwise,
        Code::DuplicateDeclaration,
        Code::MissingDeclaration,
        Code::FactNotInPhase,
        Code::ActionNotInPhase,
        Code::InvalidBackoff,
        Code::InvalidWindow,
        Code::NotACondition,
        Code::BadFact,
        Code::EmptyRange,
        Code::BadScenario,
        Code::ShadowedRule,
        Code::CapBelowInitial,
        Code::Unused,
        Code::DeferMayFail,
        Code::UnknownStateSkipped,
        Code::AnalysisCutShort,
    ];

    /// The code as printed, e.g. `E101`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "P001",
            Code::MixedAndOr => "P002",
            Code::BadLiteral => "P003",
            Code::TooDeep => "P004",
            Code::UnknownFact => "E101",
            Code::UnknownEnumValue => "E102",
            Code::TypeMismatch => "E103",
            Code::UndefinedWindow => "E104",
            Code::UndefinedBackoff => "E105",
            Code::DuplicateRule => "E106",
            Code::InvalidTimezone => "E107",
            Code::UnknownSource => "E108",
            Code::MissingOtherwise => "E109",
            Code::DuplicateDeclaration => "E110",
            Code::MissingDeclaration => "E111",
            Code::FactNotInPhase => "E112",
            Code::ActionNotInPhase => "E113",
            Code::InvalidBackoff => "E114",
            Code::InvalidWindow => "E115",
            Code::NotACondition => "E116",
            Code::BadFact => "E117",
            Code::EmptyRange => "E118",
            Code::BadScenario => "S301",
            Code::ShadowedRule => "W201",
            Code::CapBelowInitial => "W202",
            Code::Unused => "W203",
            Code::DeferMayFail => "W204",
            Code::UnknownStateSkipped => "W205",
            Code::AnalysisCutShort => "W206",
        }
    }

    /// Warnings are the `W` codes; everything else is an error.
    pub fn severity(self) -> Severity {
        match self {
            Code::ShadowedRule
            | Code::CapBelowInitial
            | Code::Unused
            | Code::DeferMayFail
            | Code::UnknownStateSkipped
            | Code::AnalysisCutShort => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// One finding, with where it is and what to do about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// One sentence in plain words.
    pub message: String,
    /// The offending text.
    pub span: Span,
    /// A suggestion, e.g. "did you mean `schedule.state`?".
    pub help: Option<String>,
    /// Further places worth showing (e.g. the earlier rule that shadows this one).
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    /// A diagnostic with no help or notes.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            help: None,
            notes: Vec::new(),
        }
    }

    /// Add a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Add a note pointing at another place.
    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Self {
        self.notes.push((span, note.into()));
        self
    }

    /// Error or warning, from the code.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
}

/// One diagnostic as JSON tools read it (`check --format json`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JsonDiagnostic {
    /// The stable code, e.g. `E101`.
    pub code: &'static str,
    /// `error` or `warning`.
    pub severity: Severity,
    /// The message.
    pub message: String,
    /// The file name as given to the renderer.
    pub file: String,
    /// 1-based line of the start of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of its start.
    pub column: usize,
    /// Where the offending text ends (exclusive).
    pub end: LineCol,
    /// The suggestion, if any.
    pub help: Option<String>,
    /// The further places, each with its message.
    pub notes: Vec<JsonNote>,
}

/// A note of a [`JsonDiagnostic`]: a message and the place it points at.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JsonNote {
    /// What the place has to do with the diagnostic.
    pub message: String,
    /// 1-based line of the start.
    pub line: usize,
    /// 1-based column of the start.
    pub column: usize,
    /// Where it ends (exclusive).
    pub end: LineCol,
}

impl Diagnostic {
    /// The diagnostic as a person reads it: header, location, the source line with the
    /// offending text underlined, help, then each note with its own location. No colours,
    /// so the output is the same on every terminal and in snapshots; control characters
    /// are escaped, so a file cannot drive the terminal it is checked in.
    pub fn render(&self, file: &str, source: &str) -> String {
        self.render_in(file, &LineIndex::new(source))
    }

    /// [`Diagnostic::render`] against a text already indexed (for many diagnostics).
    pub fn render_in(&self, file: &str, index: &LineIndex<'_>) -> String {
        let severity = match self.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let file = escape_controls(file);
        let mut out = format!(
            "{severity}[{}]: {}\n",
            self.code.as_str(),
            escape_controls(&self.message)
        );
        let last_line = std::iter::once(self.span)
            .chain(self.notes.iter().map(|(span, _)| *span))
            .map(|span| index.line_col(span.start).line)
            .max()
            .unwrap_or(1);
        let gutter = last_line.to_string().len();
        snippet(&mut out, &file, index, self.span, gutter);
        if let Some(help) = &self.help {
            let help = escape_controls(help);
            out.push_str(&format!(
                "{:gutter$} |\n{:gutter$} = help: {help}\n",
                "", ""
            ));
        }
        for (span, note) in &self.notes {
            out.push_str(&format!("note: {}\n", escape_controls(note)));
            snippet(&mut out, &file, index, *span, gutter);
        }
        out
    }

    /// The diagnostic as a JSON record, positions resolved against `source`.
    pub fn to_json(&self, file: &str, source: &str) -> JsonDiagnostic {
        self.to_json_in(file, &LineIndex::new(source))
    }

    /// [`Diagnostic::to_json`] against a text already indexed (for many diagnostics).
    pub fn to_json_in(&self, file: &str, index: &LineIndex<'_>) -> JsonDiagnostic {
        let start = index.line_col(self.span.start);
        JsonDiagnostic {
            code: self.code.as_str(),
            severity: self.severity(),
            message: self.message.clone(),
            file: file.to_string(),
            line: start.line,
            column: start.column,
            end: index.line_col(self.span.end),
            help: self.help.clone(),
            notes: self
                .notes
                .iter()
                .map(|(span, message)| {
                    let start = index.line_col(span.start);
                    JsonNote {
                        message: message.clone(),
                        line: start.line,
                        column: start.column,
                        end: index.line_col(span.end),
                    }
                })
                .collect(),
        }
    }
}

/// Every diagnostic rendered for a person, separated by blank lines.
pub fn render_all(diagnostics: &[Diagnostic], file: &str, source: &str) -> String {
    let index = LineIndex::new(source);
    diagnostics
        .iter()
        .map(|d| d.render_in(file, &index))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every diagnostic as a JSON record, the text indexed once.
pub fn json_all(diagnostics: &[Diagnostic], file: &str, source: &str) -> Vec<JsonDiagnostic> {
    let index = LineIndex::new(source);
    diagnostics
        .iter()
        .map(|d| d.to_json_in(file, &index))
        .collect()
}

/// Text a message quotes from a file (a name, a token): control characters escaped, and
/// the middle of anything longer than [`MAX_QUOTED`] characters left out, so one absurd
/// name cannot fill a screen.
pub fn quoted(text: &str) -> String {
    let count = text.chars().count();
    let text = if count > MAX_QUOTED {
        let head: String = text.chars().take(MAX_QUOTED / 2).collect();
        let tail: String = text.chars().skip(count - MAX_QUOTED / 4).collect();
        format!("{head}{ELLIPSIS}{tail}")
    } else {
        text.to_string()
    };
    escape_controls(&text)
}

/// The most characters of file text a message quotes whole.
const MAX_QUOTED: usize = 60;

/// Source lines longer than this (in characters as shown) are cut around the span.
const MAX_LINE: usize = 240;

/// Characters kept before the span when a long line is cut.
const BEFORE_SPAN: usize = 80;

/// What stands for the text left out of a long line or name.
const ELLIPSIS: &str = "...";

/// `text` with each character that could drive a terminal or hide what the text says
/// (controls, bidirectional overrides, zero-width characters) written as `\u{..}`.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(is_hidden) {
        return text.to_string();
    }
    text.chars().map(shown_char).collect()
}

/// Whether `c` is shown escaped: a control (but tab) or an invisible formatting character.
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// One character as an excerpt shows it: a tab as a blank, hidden ones escaped.
fn shown_char(c: char) -> String {
    match c {
        '\t' => " ".to_string(),
        c if is_hidden(c) => c.escape_unicode().to_string(),
        c => c.to_string(),
    }
}

/// How many columns `c` takes as [`shown_char`] shows it.
fn shown_width(c: char) -> usize {
    if is_hidden(c) {
        c.escape_unicode().count()
    } else {
        1
    }
}

/// ` --> file:line:col`, the source line, and carets under the span (its first line only).
/// A line longer than [`MAX_LINE`] is shown around the span with the rest elided, so any
/// line length renders and the carets stay under the text they mark.
fn snippet(out: &mut String, file: &str, index: &LineIndex<'_>, span: Span, gutter: usize) {
    let start = index.line_col(span.start);
    let end = index.line_col(span.end);
    let (text, line_start) = index.line(start.line);
    let from_byte = span.start.saturating_sub(line_start).min(text.len());
    let to_byte = if end.line == start.line {
        span.end
            .saturating_sub(line_start)
            .clamp(from_byte, text.len())
    } else {
        text.len()
    };
    // Columns (as shown) where the span starts and ends, and the line's whole width.
    let mut from = 0;
    let mut to = 0;
    let mut width = 0;
    for (at, c) in text.char_indices() {
        if at < from_byte {
            from += shown_width(c);
        }
        if at < to_byte {
            to += shown_width(c);
        }
        width += shown_width(c);
    }
    let (first, last) = if width <= MAX_LINE {
        (0, width)
    } else {
        let first = from.saturating_sub(BEFORE_SPAN).min(width - MAX_LINE);
        (first, first + MAX_LINE)
    };
    let mut shown = String::new();
    let mut column = 0;
    let (mut shown_first, mut shown_last) = (None, first);
    for c in text.chars() {
        let w = shown_width(c);
        if column >= first && column < last {
            shown_first.get_or_insert(column);
            shown.push_str(&shown_char(c));
            shown_last = column + w;
        }
        column += w;
    }
    let shown_first = shown_first.unwrap_or(first);
    let before = if shown_first > 0 { ELLIPSIS } else { "" };
    let after = if shown_last < width { ELLIPSIS } else { "" };
    let pad = before.len() + from.saturating_sub(shown_first);
    let carets = to.min(shown_last.max(from + 1)).saturating_sub(from).max(1);
    out.push_str(&format!("{:gutter$}--> {file}:{start}\n", ""));
    out.push_str(&format!("{:gutter$} |\n", ""));
    out.push_str(&format!(
        "{:>gutter$} | {before}{shown}{after}\n",
        start.line
    ));
    out.push_str(&format!("{:gutter$} | ", ""));
    out.push_str(&" ".repeat(pad));
    out.push_str(&"^".repeat(carets));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "on trigger {\n  rule after_hours when trigger.source == servicenow\n                    and now not in business_hours then publish\n}\n";

    #[test]
    fn a_span_over_several_lines_is_underlined_to_the_end_of_its_first_line() {
        let start = SOURCE.find("trigger.source").unwrap_or(0);
        let end = SOURCE.find(" then").unwrap_or(0);
        let d = Diagnostic::new(Code::TypeMismatch, Span::new(start, end), "a message");
        insta::assert_snapshot!(d.render("x.rules", SOURCE), @r"
        error[E103]: a message
         --> x.rules:2:25
          |
        2 |   rule after_hours when trigger.source == servicenow
          |                         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
        ");
    }

    #[test]
    fn an_empty_span_gets_one_caret_and_notes_share_the_gutter() {
        let d = Diagnostic::new(Code::MissingOtherwise, Span::new(3, 3), "empty")
            .with_help("some help")
            .with_note(Span::new(SOURCE.len() - 2, SOURCE.len() - 1), "the end");
        insta::assert_snapshot!(d.render("x.rules", SOURCE), @r"
        error[E109]: empty
         --> x.rules:1:4
          |
        1 | on trigger {
          |    ^
          |
          = help: some help
        note: the end
         --> x.rules:4:1
          |
        4 | }
          | ^
        ");
    }

    #[test]
    fn json_positions_are_one_based_and_the_end_is_exclusive() {
        let start = SOURCE.find("servicenow").unwrap_or(0);
        let d = Diagnostic::new(Code::UnknownSource, Span::new(start, start + 10), "m");
        let json = d.to_json("x.rules", SOURCE);
        assert_eq!((json.line, json.column), (2, 43));
        assert_eq!(
            json.end,
            LineCol {
                line: 2,
                column: 53
            }
        );
        assert_eq!(json.severity, Severity::Error);
    }
}
