//! Source positions: byte ranges into a rules or facts file, and values that carry one.

use std::fmt;
use std::ops::Deref;

/// A half-open byte range `start..end` in a source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Span {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// The text this span covers in `source` (empty when out of range).
    pub fn text(self, source: &str) -> &str {
        source.get(self.start..self.end).unwrap_or("")
    }
}

/// A 1-based line and column (in characters) of a byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl LineCol {
    /// Line and column of byte `offset` in `source` (clamped to the text).
    ///
    /// This scans the text up to `offset`; to place many offsets in one text, build a
    /// [`LineIndex`] once instead.
    pub fn of(source: &str, offset: usize) -> LineCol {
        LineIndex::new(source).line_col(offset)
    }
}

/// Where each line of a text starts, so that placing an offset costs a binary search
/// rather than a scan of the text (which made many diagnostics quadratic in the file).
#[derive(Clone, Debug)]
pub struct LineIndex<'s> {
    source: &'s str,
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    /// Index the lines of `source` (lines end at `\n`).
    pub fn new(source: &'s str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { source, starts }
    }

    /// The indexed text.
    pub fn source(&self) -> &'s str {
        self.source
    }

    /// Line and column of byte `offset` (clamped to the text, and back to a character
    /// boundary).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = self.boundary(offset);
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .source
            .get(start..offset)
            .map_or(0, |t| t.chars().count())
            + 1;
        LineCol {
            line: line.max(1),
            column,
        }
    }

    /// The text of 1-based `line` without its line break (`\n` or `\r\n`), and the byte
    /// offset it starts at; empty past the end.
    pub fn line(&self, line: usize) -> (&'s str, usize) {
        let Some(&start) = line.checked_sub(1).and_then(|i| self.starts.get(i)) else {
            return ("", self.source.len());
        };
        let end = self
            .starts
            .get(line)
            .map_or(self.source.len(), |next| next - 1);
        let text = self.source.get(start..end).unwrap_or("");
        (text.strip_suffix('\r').unwrap_or(text), start)
    }

    /// `offset` clamped to the text and moved back to a character boundary.
    fn boundary(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value and where it was written. Equality ignores the span, so two ASTs
/// that differ only in layout compare equal.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    /// The value.
    pub node: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wrap `node` with its `span`.
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.node
    }
}
