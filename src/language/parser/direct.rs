//! The grammar read straight from the bytes, for files that parse cleanly.
//!
//! pest's pair tree was most of the cost of checking a small file (190 µs of 626 µs for
//! `rules/default.rules`). This reader follows `grammar/rules.pest` rule for rule (the
//! same ordered choices, the same blanks and comments between tokens) and builds the same
//! tree with the same spans. It only ever answers for a file with nothing to report:
//! anything else (a syntax error, a bad literal, `and` mixed with `or`, nesting too deep,
//! a byte-order mark) gives `None`, and pest parses the file again for its diagnostics, so
//! those stay pest's. `tests/suite/parse.rs` holds the two readers to identical trees.

use super::{MAX_DEPTH, comment_at, path};
use crate::language::ast::{
    Action, Backoff, BackoffSetting, CmpOp, Comment, DaySpec, DurationLit, Expr, ExprKind,
    FactPath, File, Ident, Item, Jitter, OffsetSign, Operand, OperandKind, Phase, PhaseKind, Rule,
    TimeOfDay, TimeRange, Weekday, Window, WindowLine,
};
use crate::language::parser::literal;
use crate::language::span::{Span, Spanned};

/// The file's tree, or `None` when pest must read it (see the module documentation).
pub(super) fn parse(source: &str) -> Option<File> {
    if source.contains('\u{FEFF}') {
        return None;
    }
    let mut reader = Reader {
        source,
        bytes: source.as_bytes(),
        at: 0,
        comments: Vec::new(),
    };
    let mut items = Vec::new();
    reader.skip();
    while reader.at < reader.bytes.len() {
        items.push(reader.item()?);
        reader.skip();
    }
    Some(File {
        items,
        comments: reader.comments,
    })
}

/// A position in the source, moved forward as the grammar's rules match.
struct Reader<'s> {
    source: &'s str,
    bytes: &'s [u8],
    at: usize,
    /// Comments met by [`Reader::skip`] (those met in an attempt that failed are dropped).
    comments: Vec<Comment>,
}

fn is_ident_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

impl<'s> Reader<'s> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn byte_at(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    /// `WHITESPACE` and `COMMENT`, as pest skips them between the tokens of a rule.
    fn skip(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.at += 1,
                Some(b'#') => {
                    let start = self.at;
                    while self.peek().is_some_and(|b| b != b'\n' && b != b'\r') {
                        self.at += 1;
                    }
                    let comment = comment_at(self.source, Span::new(start, self.at));
                    self.comments.push(comment);
                }
                _ => return,
            }
        }
    }

    /// Skip blanks, then match `token` (which matches at the position or not at all).
    fn next<T>(&mut self, token: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        self.skip();
        token(self)
    }

    /// Try `rule`; on failure, back to where it started.
    fn attempt<T>(&mut self, rule: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let (at, comments) = (self.at, self.comments.len());
        let found = rule(self);
        if found.is_none() {
            self.at = at;
            self.comments.truncate(comments);
        }
        found
    }

    /// The span from here to `end`, moving there.
    fn take(&mut self, end: usize) -> Span {
        let span = Span::new(self.at, end);
        self.at = end;
        span
    }

    fn text(&self, span: Span) -> &'s str {
        span.text(self.source)
    }

    fn word_end(&self, from: usize) -> usize {
        let mut end = from;
        while self.byte_at(end).is_some_and(is_ident_char) {
            end += 1;
        }
        end
    }

    /// A literal followed by no identifier character (the grammar's `kw_*`, `day`, ...).
    fn keyword(&mut self, word: &str) -> Option<Span> {
        let end = self.at + word.len();
        let matches = self.bytes.get(self.at..end) == Some(word.as_bytes())
            && !self.byte_at(end).is_some_and(is_ident_char);
        matches.then(|| self.take(end))
    }

    /// A fixed token (punctuation).
    fn symbol(&mut self, symbol: &str) -> Option<Span> {
        let end = self.at + symbol.len();
        (self.bytes.get(self.at..end) == Some(symbol.as_bytes())).then(|| self.take(end))
    }

    /// `ident`: a name that is not a reserved word.
    fn ident(&mut self) -> Option<Ident> {
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        let end = self.word_end(self.at + 1);
        let word = self.source.get(self.at..end)?;
        if super::RESERVED_WORDS.contains(&word) {
            return None;
        }
        let span = self.take(end);
        Some(Spanned::new(word.to_owned(), span))
    }

    /// `fact_name` and `path`: an ident and `.name` parts.
    fn dotted(&mut self) -> Option<Spanned<&'s str>> {
        let start = self.at;
        let first = self.ident()?;
        let mut end = first.span.end;
        while self.byte_at(end) == Some(b'.') && self.byte_at(end + 1).is_some_and(is_ident_start) {
            end = self.word_end(end + 2);
        }
        self.at = end;
        let span = Span::new(start, end);
        Some(Spanned::new(self.text(span), span))
    }

    fn fact(&mut self) -> Option<Spanned<FactPath>> {
        let name = self.dotted()?;
        Some(Spanned::new(FactPath(name.node.to_owned()), name.span))
    }

    fn digits_end(&self, from: usize) -> usize {
        let mut end = from;
        while self.byte_at(end).is_some_and(|b| b.is_ascii_digit()) {
            end += 1;
        }
        end
    }

    /// A token ending at `end`, unless an identifier character follows it.
    fn ends_word(&mut self, end: usize) -> Option<Span> {
        (!self.byte_at(end).is_some_and(is_ident_char)).then(|| self.take(end))
    }

    fn string(&mut self) -> Option<Spanned<String>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let mut end = self.at + 1;
        loop {
            match self.byte_at(end)? {
                b'"' => break,
                b'\n' | b'\r' => return None,
                b'\\' => {
                    if matches!(self.byte_at(end + 1)?, b'\n' | b'\r') {
                        return None;
                    }
                    end += 2;
                }
                _ => end += 1,
            }
        }
        let span = Span::new(self.at, end + 1);
        let (text, problems) = literal::string(self.text(span), span);
        if !problems.is_empty() {
            return None;
        }
        self.at = span.end;
        Some(Spanned::new(text, span))
    }

    fn integer(&mut self) -> Option<Spanned<i64>> {
        let sign = usize::from(self.peek() == Some(b'-'));
        let end = self.digits_end(self.at + sign);
        if end == self.at + sign {
            return None;
        }
        let text = self.source.get(self.at..end)?;
        let value = literal::integer(text, Span::new(self.at, end)).ok()?;
        Some(Spanned::new(value, self.ends_word(end)?))
    }

    fn number(&mut self) -> Option<Spanned<f64>> {
        let mut end = self.digits_end(self.at);
        if end == self.at {
            return None;
        }
        if self.byte_at(end) == Some(b'.')
            && self.byte_at(end + 1).is_some_and(|b| b.is_ascii_digit())
        {
            end = self.digits_end(end + 1);
        }
        let text = self.source.get(self.at..end)?;
        let value = literal::number(text, Span::new(self.at, end)).ok()?;
        Some(Spanned::new(value, self.ends_word(end)?))
    }

    fn duration(&mut self) -> Option<Spanned<DurationLit>> {
        let digits = self.digits_end(self.at);
        if digits == self.at {
            return None;
        }
        let unit = match self.bytes.get(digits..)? {
            [b'm', b's', ..] => 2,
            [b's' | b'm' | b'h' | b'd', ..] => 1,
            _ => return None,
        };
        let end = digits + unit;
        let text = self.source.get(self.at..end)?;
        let value = literal::duration(text, Span::new(self.at, end)).ok()?;
        Some(Spanned::new(value, self.ends_word(end)?))
    }

    fn time(&mut self, is_end: bool) -> Option<TimeOfDay> {
        let first = self.digits_end(self.at).min(self.at + 2);
        if first == self.at || self.byte_at(first) != Some(b':') {
            return None;
        }
        let minutes = self.digits_end(first + 1).min(first + 3);
        if minutes != first + 3 {
            return None;
        }
        let text = self.source.get(self.at..minutes)?;
        let value = literal::time(text, Span::new(self.at, minutes), is_end).ok()?;
        self.ends_word(minutes)?;
        Some(value)
    }

    /// One of `choices` by keyword, with its span.
    fn one_of<T: Copy>(
        &mut self,
        choices: &[T],
        word: impl Fn(T) -> &'static str,
    ) -> Option<Spanned<T>> {
        choices.iter().find_map(|&choice| {
            self.keyword(word(choice))
                .map(|span| Spanned::new(choice, span))
        })
    }

    // ------------------------------------------------------------ declarations

    fn item(&mut self) -> Option<Item> {
        let start = self.at;
        if self.keyword("policy").is_some() {
            return Some(Item::Policy(self.next(Self::string)?));
        }
        if self.keyword("timezone").is_some() {
            return Some(Item::Timezone(self.next(Self::string)?));
        }
        if self.keyword("sources").is_some() {
            let mut sources = vec![self.next(Self::ident)?];
            while let Some(source) = self.attempt(|r| {
                r.next(|r| r.symbol(","))?;
                r.next(Self::ident)
            }) {
                sources.push(source);
            }
            return Some(Item::Sources(sources));
        }
        if self.keyword("window").is_some() {
            return self.window(start).map(Item::Window);
        }
        if self.keyword("backoff").is_some() {
            return self.backoff(start).map(Item::Backoff);
        }
        if self.keyword("on").is_some() {
            return self.phase(start).map(Item::Phase);
        }
        None
    }

    fn window(&mut self, start: usize) -> Option<Window> {
        let name = self.next(Self::ident)?;
        let timezone = self.attempt(|r| {
            r.next(|r| r.keyword("timezone"))?;
            r.next(Self::string)
        });
        self.next(|r| r.symbol("{"))?;
        let mut lines = Vec::new();
        while let Some(line) = self.attempt(|r| r.next(Self::window_line)) {
            lines.push(line);
        }
        let close = self.next(|r| r.symbol("}"))?;
        Some(Window {
            name,
            timezone,
            lines,
            span: Span::new(start, close.end),
        })
    }

    fn window_line(&mut self) -> Option<WindowLine> {
        let mut days = vec![self.day_spec()?];
        while let Some(day) = self.attempt(|r| {
            r.next(|r| r.symbol(","))?;
            r.next(Self::day_spec)
        }) {
            days.push(day);
        }
        let times = self.next(Self::time_range)?;
        let span = days.first()?.span.join(times.span);
        Some(WindowLine { days, times, span })
    }

    fn day(&mut self) -> Option<Spanned<Weekday>> {
        self.one_of(&Weekday::ALL, Weekday::keyword)
    }

    fn day_spec(&mut self) -> Option<Spanned<DaySpec>> {
        let first = self.day()?;
        let last = self.attempt(|r| {
            r.next(|r| r.symbol(".."))?;
            r.next(Self::day)
        });
        Some(match last {
            Some(last) => Spanned::new(
                DaySpec::Range(first.node, last.node),
                first.span.join(last.span),
            ),
            None => Spanned::new(DaySpec::Day(first.node), first.span),
        })
    }

    fn time_range(&mut self) -> Option<Spanned<TimeRange>> {
        let start_at = self.at;
        let start = self.time(false)?;
        self.next(|r| r.symbol(".."))?;
        let end = self.next(|r| r.time(true))?;
        Some(Spanned::new(
            TimeRange { start, end },
            Span::new(start_at, self.at),
        ))
    }

    fn backoff(&mut self, start: usize) -> Option<Backoff> {
        let name = self.next(Self::ident)?;
        self.next(|r| r.symbol("{"))?;
        let mut settings = Vec::new();
        while let Some(setting) = self.attempt(|r| r.next(Self::setting)) {
            settings.push(setting);
        }
        let close = self.next(|r| r.symbol("}"))?;
        Some(Backoff {
            name,
            settings,
            span: Span::new(start, close.end),
        })
    }

    fn setting(&mut self) -> Option<Spanned<BackoffSetting>> {
        let start = self.at;
        let setting = if self.keyword("exponential").is_some() {
            let initial = self.next(Self::duration)?;
            let factor = self.attempt(|r| {
                r.next(|r| r.keyword("factor"))?;
                r.next(Self::number)
            });
            let max = self.attempt(|r| {
                r.next(|r| r.keyword("max"))?;
                r.next(Self::duration)
            });
            BackoffSetting::Exponential {
                initial,
                factor,
                max,
            }
        } else if self.keyword("constant").is_some() {
            BackoffSetting::Constant(self.next(Self::duration)?)
        } else if self.keyword("jitter").is_some() {
            let kinds = [
                Jitter::None,
                Jitter::Full,
                Jitter::Equal,
                Jitter::Decorrelated,
            ];
            BackoffSetting::Jitter(self.next(|r| r.one_of(&kinds, Jitter::keyword))?)
        } else if self.keyword("attempts").is_some() {
            BackoffSetting::Attempts(self.next(Self::integer)?)
        } else {
            return None;
        };
        Some(Spanned::new(setting, Span::new(start, self.at)))
    }

    fn phase(&mut self, start: usize) -> Option<Phase> {
        let kinds = [PhaseKind::Trigger, PhaseKind::Response];
        let kind = self.next(|r| r.one_of(&kinds, PhaseKind::keyword))?;
        self.next(|r| r.symbol("{"))?;
        let mut rules = Vec::new();
        while let Some(rule) = self.attempt(|r| r.next(Self::rule)) {
            rules.push(rule);
        }
        let otherwise = self.attempt(|r| {
            r.next(|r| r.keyword("otherwise"))?;
            r.next(Self::action)
        });
        let close = self.next(|r| r.symbol("}"))?;
        Some(Phase {
            kind,
            rules,
            otherwise,
            span: Span::new(start, close.end),
        })
    }

    fn rule(&mut self) -> Option<Rule> {
        let start = self.keyword("rule")?.start;
        let name = self.next(Self::ident)?;
        self.next(|r| r.keyword("when"))?;
        let condition = self.next(|r| r.condition(0))?;
        self.next(|r| r.keyword("then"))?;
        let action = self.next(Self::action)?;
        let span = Span::new(start, action.span.end);
        Some(Rule {
            name,
            condition,
            action,
            span,
        })
    }

    // ------------------------------------------------------------ conditions

    /// Terms joined all by `and` or all by `or`; `depth` counts enclosing parentheses and
    /// `not`s.
    fn condition(&mut self, depth: usize) -> Option<Expr> {
        let mut terms = vec![self.unary(depth)?];
        let mut joiner = None;
        while let Some((and, term)) = self.attempt(|r| {
            let and = match r.next(|r| r.keyword("and")) {
                Some(_) => true,
                None => r.keyword("or").map(|_| false)?,
            };
            Some((and, r.next(|r| r.unary(depth))?))
        }) {
            if joiner.is_some_and(|j| j != and) {
                return None;
            }
            joiner = Some(and);
            terms.push(term);
        }
        let Some(and) = joiner else {
            return terms.pop();
        };
        let span = terms.first()?.span.join(terms.last()?.span);
        let kind = if and {
            ExprKind::And(terms)
        } else {
            ExprKind::Or(terms)
        };
        Some(Spanned::new(kind, span))
    }

    fn unary(&mut self, depth: usize) -> Option<Expr> {
        let mut nots = Vec::new();
        while let Some(not) = self.keyword("not") {
            nots.push(not);
            if depth + nots.len() > MAX_DEPTH {
                return None;
            }
            self.skip();
        }
        let mut expr = self.primary(depth + nots.len())?;
        for not in nots.into_iter().rev() {
            let span = not.join(expr.span);
            expr = Spanned::new(ExprKind::Not(Box::new(expr)), span);
        }
        Some(expr)
    }

    fn primary(&mut self, depth: usize) -> Option<Expr> {
        if let Some(open) = self.symbol("(") {
            if depth + 1 > MAX_DEPTH {
                return None;
            }
            let inner = self.next(|r| r.condition(depth + 1))?;
            let close = self.next(|r| r.symbol(")"))?;
            return Some(Spanned::new(
                ExprKind::Group(Box::new(inner)),
                open.join(close),
            ));
        }
        let exists = self.attempt(|r| {
            let start = r.keyword("exists")?;
            r.next(|r| r.symbol("("))?;
            let fact = r.next(Self::fact)?;
            let close = r.next(|r| r.symbol(")"))?;
            Some(Spanned::new(ExprKind::Exists(fact), start.join(close)))
        });
        match exists {
            Some(exists) => Some(exists),
            None => self.predicate(),
        }
    }

    fn predicate(&mut self) -> Option<Expr> {
        let operand = self.operand()?;
        let start = operand.span.start;
        let tail = self.attempt(|r| {
            r.skip();
            match r.cmp_op() {
                Some(op) => {
                    let right = r.next(Self::operand)?;
                    Some(Tail::Compare(op, right))
                }
                None => r.in_tail().map(Tail::In),
            }
        });
        let kind = match tail {
            None => ExprKind::Truthy(operand),
            Some(Tail::Compare(op, right)) => ExprKind::Compare {
                left: operand,
                op,
                right,
            },
            Some(Tail::In(target)) => target.with(operand),
        };
        Some(Spanned::new(kind, Span::new(start, self.at)))
    }

    fn cmp_op(&mut self) -> Option<Spanned<CmpOp>> {
        let ops = [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ];
        ops.iter()
            .find_map(|&(symbol, op)| self.symbol(symbol).map(|span| Spanned::new(op, span)))
    }

    fn in_tail(&mut self) -> Option<InTarget> {
        let negated = self.attempt(|r| r.keyword("not")).is_some();
        if negated {
            self.skip();
        }
        self.keyword("in")?;
        self.skip();
        if self.symbol("[").is_some() {
            let mut items = Vec::new();
            if let Some(first) = self.attempt(|r| r.next(Self::operand)) {
                items.push(first);
                while let Some(item) = self.attempt(|r| {
                    r.next(|r| r.symbol(","))?;
                    r.next(Self::operand)
                }) {
                    items.push(item);
                }
                self.attempt(|r| r.next(|r| r.symbol(",")));
            }
            self.next(|r| r.symbol("]"))?;
            return Some(InTarget::List { negated, items });
        }
        if let Some(range) = self.attempt(|r| {
            let low = r.integer()?;
            r.next(|r| r.symbol(".."))?;
            Some((low, r.next(Self::integer)?))
        }) {
            let (low, high) = range;
            return Some(InTarget::Range { negated, low, high });
        }
        let window = self.ident()?;
        Some(InTarget::Window { negated, window })
    }

    // ------------------------------------------------------------ operands

    fn operand(&mut self) -> Option<Operand> {
        let base = self.simple_operand()?;
        let offset = self.attempt(|r| {
            let sign = match r.next(|r| r.symbol("+")) {
                Some(_) => OffsetSign::Plus,
                None => r.symbol("-").map(|_| OffsetSign::Minus)?,
            };
            Some((sign, r.next(Self::duration)?))
        });
        let Some((sign, by)) = offset else {
            return Some(base);
        };
        let span = base.span.join(by.span);
        let kind = OperandKind::Offset {
            base: Box::new(base),
            sign,
            by,
        };
        Some(Spanned::new(kind, span))
    }

    fn simple_operand(&mut self) -> Option<Operand> {
        let start = self.at;
        let since = self.attempt(|r| {
            r.keyword("since")?;
            r.next(|r| r.symbol("("))?;
            let fact = r.next(Self::fact)?;
            r.next(|r| r.symbol(")"))?;
            Some(OperandKind::Since(fact))
        });
        let kind = match since {
            Some(since) => since,
            None => match self.peek()? {
                b'"' => OperandKind::Str(self.string()?.node),
                b'0'..=b'9' | b'-' => match self.attempt(Self::duration) {
                    Some(d) => OperandKind::Duration(d.node),
                    None => OperandKind::Int(self.integer()?.node),
                },
                _ => match self.one_of(&[true, false], |b| if b { "true" } else { "false" }) {
                    Some(b) => OperandKind::Bool(b.node),
                    None => path(self.dotted()?.node),
                },
            },
        };
        Some(Spanned::new(kind, Span::new(start, self.at)))
    }

    // ------------------------------------------------------------ actions

    fn action(&mut self) -> Option<Spanned<Action>> {
        let start = self.at;
        let action = if self.keyword("publish").is_some() {
            Action::Publish
        } else if self.keyword("skip").is_some() {
            Action::Skip(self.next(Self::string)?)
        } else if self.keyword("backoff").is_some() {
            let retry_after = self.attempt(|r| {
                r.next(|r| r.keyword("retry_after"))?;
                r.next(|r| r.keyword("else"))
            });
            let profile = self.next(Self::ident)?;
            match retry_after {
                Some(_) => Action::BackoffRetryAfter(profile),
                None => Action::Backoff(profile),
            }
        } else if self.keyword("defer").is_some() {
            self.next(|r| r.keyword("until"))?;
            let target = self.next(Self::operand)?;
            match target.node {
                OperandKind::Word(window) => {
                    Action::DeferUntilWindow(Spanned::new(window, target.span))
                }
                _ => Action::DeferUntilInstant(target),
            }
        } else if self.keyword("recheck").is_some() {
            Action::Recheck
        } else if self.keyword("done").is_some() {
            Action::Done
        } else if self.keyword("fail").is_some() {
            Action::Fail(self.next(Self::string)?)
        } else {
            return None;
        };
        Some(Spanned::new(action, Span::new(start, self.at)))
    }
}

/// What follows an operand in a predicate.
enum Tail {
    Compare(Spanned<CmpOp>, Operand),
    In(InTarget),
}

/// What `in` tests against.
enum InTarget {
    List {
        negated: bool,
        items: Vec<Operand>,
    },
    Range {
        negated: bool,
        low: Spanned<i64>,
        high: Spanned<i64>,
    },
    Window {
        negated: bool,
        window: Ident,
    },
}

impl InTarget {
    fn with(self, operand: Operand) -> ExprKind {
        match self {
            InTarget::List { negated, items } => ExprKind::InList {
                operand,
                negated,
                items,
            },
            InTarget::Range { negated, low, high } => ExprKind::InRange {
                operand,
                negated,
                low,
                high,
            },
            InTarget::Window { negated, window } => ExprKind::InWindow {
                operand,
                negated,
                window,
            },
        }
    }
}
