//! Rules-file text to the typed, positioned AST.
//!
//! pest matches the text against `grammar/rules.pest`; then one method per grammar rule
//! turns that rule's pairs into AST nodes, checking literals (times, numbers, durations)
//! and the one thing the grammar leaves open on purpose: `and` mixed with `or`.

mod depth;
mod direct;
mod expected;
mod grammar;
mod literal;
mod mixed;
mod pairs;
mod scan;
mod slips;

use pest::Parser as _;
use pest::iterators::Pair;

use crate::language::ast::{
    Action, Backoff, BackoffSetting, CmpOp, Comment, DaySpec, DurationLit, DurationUnit, Expr,
    ExprKind, FactPath, File, Ident, Item, Jitter, OffsetSign, Operand, OperandKind, Phase,
    PhaseKind, Rule as RuleDecl, TimeOfDay, TimeRange, Weekday, Window, WindowLine,
};
use crate::language::diagnostic::Diagnostic;
use crate::language::schema::FactId;
use crate::language::span::{Span, Spanned};
use grammar::{Rule, RulesParser};
use mixed::Joiner;
use pairs::{Built, Children, Stop, malformed, span_of};

pub use depth::MAX_DEPTH;

/// The words the grammar's `reserved` keeps from being names.
pub const RESERVED_WORDS: [&str; 10] = [
    "and",
    "or",
    "not",
    "in",
    "then",
    "when",
    "rule",
    "otherwise",
    "true",
    "false",
];

/// Parse a rules file into its syntax tree, or into the diagnostics that stop it.
pub fn parse(source: &str) -> Result<File, Vec<Diagnostic>> {
    if let Some(too_deep) = depth::check_parentheses(source) {
        return Err(vec![too_deep]);
    }
    // The common case, a file with nothing to report, without pest's pair tree; pest
    // reads anything else, so every diagnostic is its.
    match direct::parse(source) {
        Some(file) => Ok(file),
        None => with_pest(source),
    }
}

/// Parse with pest: the reference reading, and every diagnostic.
fn with_pest(source: &str) -> Result<File, Vec<Diagnostic>> {
    let mut pairs = RulesParser::parse(Rule::file, source)
        .map_err(|error| vec![expected::diagnostic(source, &error)])?;
    let Some(file) = pairs.next() else {
        return Err(vec![malformed(Span::default())]);
    };
    let comments: Vec<Comment> = file
        .clone()
        .into_inner()
        .flatten()
        .filter(|p| p.as_rule() == Rule::COMMENT)
        .map(|p| comment_at(source, span_of(&p)))
        .collect();
    let mut builder = Builder {
        source,
        comment_ends: comments
            .iter()
            .map(|c| (c.span.end, c.span.start))
            .collect(),
        diagnostics: Vec::new(),
    };
    match builder.file(file) {
        Ok(items) if builder.diagnostics.is_empty() => Ok(File { items, comments }),
        Ok(_) => Err(builder.diagnostics),
        Err(Stop(diagnostic)) => {
            builder.diagnostics.push(diagnostic);
            Err(builder.diagnostics)
        }
    }
}

/// Builds the AST from pest pairs; collects literal and mixing errors as it goes.
struct Builder<'s> {
    source: &'s str,
    /// `(end, start)` of every comment, by end, to trim them off spans.
    comment_ends: Vec<(usize, usize)>,
    diagnostics: Vec<Diagnostic>,
}

impl Builder<'_> {
    /// The pair's span without the blanks and comments pest leaves at its end when an
    /// optional last part is absent.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = span_of(pair);
        let mut end = span.end;
        loop {
            let text = self.source.get(span.start..end).unwrap_or("");
            end = span.start + text.trim_end_matches([' ', '\t', '\n', '\r']).len();
            match self
                .comment_ends
                .binary_search_by_key(&end, |&(end, _)| end)
            {
                Ok(index) if end > span.start => {
                    end = self
                        .comment_ends
                        .get(index)
                        .map_or(span.start, |&(_, start)| start);
                }
                _ => return Span::new(span.start, end),
            }
        }
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    // ------------------------------------------------------------ declarations

    fn file(&mut self, pair: Pair<'_, Rule>) -> Built<Vec<Item>> {
        let mut items = Vec::new();
        let mut children = Children::of(pair);
        while let Some(item) = children.accept(Rule::item) {
            items.push(self.item(item)?);
        }
        Ok(items)
    }

    fn item(&mut self, pair: Pair<'_, Rule>) -> Built<Item> {
        let declaration = Children::of(pair).any()?;
        match declaration.as_rule() {
            Rule::policy_decl => self.policy_decl(declaration),
            Rule::timezone_decl => self.timezone_decl(declaration),
            Rule::sources_decl => self.sources_decl(declaration),
            Rule::window_decl => self.window_decl(declaration).map(Item::Window),
            Rule::backoff_decl => self.backoff_decl(declaration).map(Item::Backoff),
            Rule::phase_decl => self.phase_decl(declaration).map(Item::Phase),
            _ => Err(Stop::malformed(span_of(&declaration))),
        }
    }

    fn policy_decl(&mut self, pair: Pair<'_, Rule>) -> Built<Item> {
        let name = Children::of(pair).expect(Rule::string)?;
        Ok(Item::Policy(self.string(name)))
    }

    fn timezone_decl(&mut self, pair: Pair<'_, Rule>) -> Built<Item> {
        let zone = Children::of(pair).expect(Rule::string)?;
        Ok(Item::Timezone(self.string(zone)))
    }

    fn sources_decl(&mut self, pair: Pair<'_, Rule>) -> Built<Item> {
        let mut children = Children::of(pair);
        let mut sources = Vec::new();
        while let Some(source) = children.accept(Rule::source_name) {
            sources.push(ident(&source));
        }
        Ok(Item::Sources(sources))
    }

    fn window_decl(&mut self, pair: Pair<'_, Rule>) -> Built<Window> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let name = ident(&children.expect(Rule::window_name)?);
        let timezone = match children.accept(Rule::window_zone) {
            Some(zone) => Some(self.window_zone(zone)?),
            None => None,
        };
        let mut lines = Vec::new();
        while let Some(line) = children.accept(Rule::window_line) {
            lines.push(self.window_line(line)?);
        }
        Ok(Window {
            name,
            timezone,
            lines,
            span,
        })
    }

    fn window_zone(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<String>> {
        let zone = Children::of(pair).expect(Rule::string)?;
        Ok(self.string(zone))
    }

    fn window_line(&mut self, pair: Pair<'_, Rule>) -> Built<WindowLine> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let mut days = Vec::new();
        while let Some(day) = children.accept(Rule::day_spec) {
            days.push(self.day_spec(day)?);
        }
        let times = self.time_range(children.expect(Rule::time_range)?)?;
        Ok(WindowLine { days, times, span })
    }

    fn day_spec(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<DaySpec>> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let first = day(&children.expect(Rule::day)?)?;
        let spec = match children.accept(Rule::day) {
            Some(last) => DaySpec::Range(first, day(&last)?),
            None => DaySpec::Day(first),
        };
        Ok(Spanned::new(spec, span))
    }

    fn time_range(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<TimeRange>> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let start = self.time(&children.expect(Rule::time)?, false);
        let end = self.time(&children.expect(Rule::time)?, true);
        Ok(Spanned::new(TimeRange { start, end }, span))
    }

    fn time(&mut self, pair: &Pair<'_, Rule>, is_end: bool) -> TimeOfDay {
        let read = literal::time(pair.as_str(), span_of(pair), is_end);
        self.or_report(read, TimeOfDay(0))
    }

    fn backoff_decl(&mut self, pair: Pair<'_, Rule>) -> Built<Backoff> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let name = ident(&children.expect(Rule::backoff_name)?);
        let mut settings = Vec::new();
        while let Some(setting) = children.next() {
            let at = self.span(&setting);
            let setting = match setting.as_rule() {
                Rule::exponential => self.exponential(setting)?,
                Rule::constant => self.constant(setting)?,
                Rule::jitter => self.jitter(setting)?,
                Rule::attempts => self.attempts(setting)?,
                _ => return Err(Stop::malformed(at)),
            };
            settings.push(Spanned::new(setting, at));
        }
        Ok(Backoff {
            name,
            settings,
            span,
        })
    }

    fn exponential(&mut self, pair: Pair<'_, Rule>) -> Built<BackoffSetting> {
        let mut children = Children::of(pair);
        let initial = self.duration(&children.expect(Rule::duration)?);
        let factor = children.accept(Rule::number).map(|n| self.number(&n));
        let max = children.accept(Rule::duration).map(|d| self.duration(&d));
        Ok(BackoffSetting::Exponential {
            initial,
            factor,
            max,
        })
    }

    fn constant(&mut self, pair: Pair<'_, Rule>) -> Built<BackoffSetting> {
        let delay = Children::of(pair).expect(Rule::duration)?;
        Ok(BackoffSetting::Constant(self.duration(&delay)))
    }

    fn jitter(&mut self, pair: Pair<'_, Rule>) -> Built<BackoffSetting> {
        let kind = Children::of(pair).expect(Rule::jitter_kind)?;
        Ok(BackoffSetting::Jitter(jitter_kind(&kind)?))
    }

    fn attempts(&mut self, pair: Pair<'_, Rule>) -> Built<BackoffSetting> {
        let count = Children::of(pair).expect(Rule::integer)?;
        Ok(BackoffSetting::Attempts(self.integer(&count)))
    }

    fn phase_decl(&mut self, pair: Pair<'_, Rule>) -> Built<Phase> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let kind = phase_kind(&children.expect(Rule::phase_kind)?)?;
        let mut rules = Vec::new();
        while let Some(rule) = children.accept(Rule::rule_decl) {
            rules.push(self.rule_decl(rule)?);
        }
        let otherwise = match children.accept(Rule::otherwise_clause) {
            Some(clause) => Some(self.otherwise_clause(clause)?),
            None => None,
        };
        Ok(Phase {
            kind,
            rules,
            otherwise,
            span,
        })
    }

    fn rule_decl(&mut self, pair: Pair<'_, Rule>) -> Built<RuleDecl> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let name = ident(&children.expect(Rule::rule_name)?);
        let condition = self.condition(children.expect(Rule::condition)?, 0)?;
        let action = self.action(children.expect(Rule::action)?)?;
        Ok(RuleDecl {
            name,
            condition,
            action,
            span,
        })
    }

    fn otherwise_clause(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<Action>> {
        let action = Children::of(pair).expect(Rule::action)?;
        self.action(action)
    }

    // ------------------------------------------------------------ conditions

    /// Terms joined by `and` or by `or`; `depth` counts enclosing parentheses and `not`s.
    fn condition(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let mut terms = vec![self.unary(children.expect(Rule::unary)?, depth)?];
        let mut joiners = Vec::new();
        while let Some(joiner) = children.next() {
            joiners.push(match joiner.as_rule() {
                Rule::kw_and => Joiner::And,
                Rule::kw_or => Joiner::Or,
                _ => return Err(Stop::malformed(span_of(&joiner))),
            });
            terms.push(self.unary(children.expect(Rule::unary)?, depth)?);
        }
        let Some(&first) = joiners.first() else {
            return Ok(terms.remove(0));
        };
        if joiners.iter().any(|&j| j != first) {
            self.report(mixed::mixed_and_or(self.source, span, &terms, &joiners));
        }
        let kind = match first {
            Joiner::And => ExprKind::And(terms),
            Joiner::Or => ExprKind::Or(terms),
        };
        Ok(Spanned::new(kind, span))
    }

    fn unary(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
        let mut children = Children::of(pair);
        let mut nots = Vec::new();
        while let Some(not) = children.accept(Rule::kw_not) {
            nots.push(span_of(&not));
        }
        if let Some(&deepest) = nots.get(MAX_DEPTH.saturating_sub(depth)) {
            return Err(Stop(depth::too_deep(deepest)));
        }
        let mut expr = self.primary(children.any()?, depth + nots.len())?;
        for not in nots.into_iter().rev() {
            let span = not.join(expr.span);
            expr = Spanned::new(ExprKind::Not(Box::new(expr)), span);
        }
        Ok(expr)
    }

    fn primary(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
        match pair.as_rule() {
            Rule::group => self.group(pair, depth + 1),
            Rule::exists_call => {
                let span = self.span(&pair);
                let fact = Children::of(pair).expect(Rule::fact_name)?;
                Ok(Spanned::new(ExprKind::Exists(fact_path(&fact)), span))
            }
            Rule::predicate => self.predicate(pair),
            _ => Err(Stop::malformed(span_of(&pair))),
        }
    }

    fn group(&mut self, pair: Pair<'_, Rule>, depth: usize) -> Built<Expr> {
        let span = self.span(&pair);
        if depth > MAX_DEPTH {
            return Err(Stop(depth::too_deep(span)));
        }
        let inner = self.condition(Children::of(pair).expect(Rule::condition)?, depth)?;
        Ok(Spanned::new(ExprKind::Group(Box::new(inner)), span))
    }

    fn predicate(&mut self, pair: Pair<'_, Rule>) -> Built<Expr> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let operand = self.operand(children.expect(Rule::operand)?)?;
        let kind = match children.next() {
            None => ExprKind::Truthy(operand),
            Some(tail) if tail.as_rule() == Rule::compare_tail => {
                let mut tail = Children::of(tail);
                let op = cmp_op(&tail.expect(Rule::cmp_op)?)?;
                let right = self.operand(tail.expect(Rule::operand)?)?;
                ExprKind::Compare {
                    left: operand,
                    op,
                    right,
                }
            }
            Some(tail) if tail.as_rule() == Rule::in_tail => self.in_tail(operand, tail)?,
            Some(other) => return Err(Stop::malformed(span_of(&other))),
        };
        Ok(Spanned::new(kind, span))
    }

    fn in_tail(&mut self, operand: Operand, pair: Pair<'_, Rule>) -> Built<ExprKind> {
        let mut children = Children::of(pair);
        let negated = children.accept(Rule::kw_not).is_some();
        let target = children.any()?;
        match target.as_rule() {
            Rule::in_list => {
                let mut list = Children::of(target);
                let mut items = Vec::new();
                while let Some(item) = list.accept(Rule::operand) {
                    items.push(self.operand(item)?);
                }
                Ok(ExprKind::InList {
                    operand,
                    negated,
                    items,
                })
            }
            Rule::in_range => {
                let mut bounds = Children::of(target);
                let low = self.integer(&bounds.expect(Rule::integer)?);
                let high = self.integer(&bounds.expect(Rule::integer)?);
                Ok(ExprKind::InRange {
                    operand,
                    negated,
                    low,
                    high,
                })
            }
            Rule::window_name => Ok(ExprKind::InWindow {
                operand,
                negated,
                window: ident(&target),
            }),
            _ => Err(Stop::malformed(span_of(&target))),
        }
    }

    // ------------------------------------------------------------ operands

    fn operand(&mut self, pair: Pair<'_, Rule>) -> Built<Operand> {
        let span = self.span(&pair);
        let mut children = Children::of(pair);
        let base = self.simple_operand(children.any()?)?;
        let Some(offset) = children.accept(Rule::offset) else {
            return Ok(base);
        };
        let mut offset = Children::of(offset);
        let sign = match offset.expect(Rule::offset_sign)?.as_str() {
            "-" => OffsetSign::Minus,
            _ => OffsetSign::Plus,
        };
        let by = self.duration(&offset.expect(Rule::duration)?);
        let kind = OperandKind::Offset {
            base: Box::new(base),
            sign,
            by,
        };
        Ok(Spanned::new(kind, span))
    }

    fn simple_operand(&mut self, pair: Pair<'_, Rule>) -> Built<Operand> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::since_call => {
                let fact = Children::of(pair).expect(Rule::fact_name)?;
                OperandKind::Since(fact_path(&fact))
            }
            Rule::string => OperandKind::Str(self.string(pair).node),
            Rule::duration => OperandKind::Duration(self.duration(&pair).node),
            Rule::integer => OperandKind::Int(self.integer(&pair).node),
            Rule::boolean => OperandKind::Bool(pair.as_str() == "true"),
            Rule::path => path(pair.as_str()),
            _ => return Err(Stop::malformed(span)),
        };
        Ok(Spanned::new(kind, span))
    }

    // ------------------------------------------------------------ actions

    fn action(&mut self, pair: Pair<'_, Rule>) -> Built<Spanned<Action>> {
        let span = self.span(&pair);
        let chosen = Children::of(pair).any()?;
        let rule = chosen.as_rule();
        let mut children = Children::of(chosen);
        let action = match rule {
            Rule::publish => Action::Publish,
            Rule::skip => Action::Skip(self.string(children.expect(Rule::string)?)),
            Rule::backoff => {
                let retry_after = children.accept(Rule::retry_after).is_some();
                let profile = ident(&children.expect(Rule::backoff_name)?);
                if retry_after {
                    Action::BackoffRetryAfter(profile)
                } else {
                    Action::Backoff(profile)
                }
            }
            Rule::defer => {
                let target = self.operand(children.expect(Rule::operand)?)?;
                match target.node {
                    OperandKind::Word(window) => {
                        Action::DeferUntilWindow(Spanned::new(window, target.span))
                    }
                    _ => Action::DeferUntilInstant(target),
                }
            }
            Rule::recheck => Action::Recheck,
            Rule::done => Action::Done,
            Rule::fail => Action::Fail(self.string(children.expect(Rule::string)?)),
            _ => return Err(Stop::malformed(span)),
        };
        Ok(Spanned::new(action, span))
    }

    // ------------------------------------------------------------ literals

    /// The value, or `fallback` once the problem is reported (building goes on, so every
    /// bad literal in a file is reported at once).
    fn or_report<T>(&mut self, read: Result<T, Diagnostic>, fallback: T) -> T {
        read.unwrap_or_else(|problem| {
            self.report(problem);
            fallback
        })
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> Spanned<String> {
        let span = self.span(&pair);
        let (text, problems) = literal::string(span.text(self.source), span);
        self.diagnostics.extend(problems);
        Spanned::new(text, span)
    }

    fn integer(&mut self, pair: &Pair<'_, Rule>) -> Spanned<i64> {
        let span = span_of(pair);
        let value = self.or_report(literal::integer(pair.as_str(), span), 0);
        Spanned::new(value, span)
    }

    fn number(&mut self, pair: &Pair<'_, Rule>) -> Spanned<f64> {
        let span = span_of(pair);
        let value = self.or_report(literal::number(pair.as_str(), span), 1.0);
        Spanned::new(value, span)
    }

    fn duration(&mut self, pair: &Pair<'_, Rule>) -> Spanned<DurationLit> {
        let span = span_of(pair);
        let zero = DurationLit {
            amount: 0,
            unit: DurationUnit::Seconds,
        };
        let value = self.or_report(literal::duration(pair.as_str(), span), zero);
        Spanned::new(value, span)
    }
}

/// The comment at `span` (`#` to the end of its line).
fn comment_at(source: &str, span: Span) -> Comment {
    let line_start = source.get(..span.start).map_or(0, |before| {
        before.rfind(['\n', '\r']).map_or(0, |at| at + 1)
    });
    let own_line = source
        .get(line_start..span.start)
        .is_some_and(|before| before.trim().is_empty());
    let text = span.text(source);
    let text = text.strip_prefix('#').unwrap_or(text);
    Comment {
        text: text.trim_end().to_owned(),
        span,
        own_line,
    }
}

fn ident(pair: &Pair<'_, Rule>) -> Ident {
    Spanned::new(pair.as_str().to_owned(), span_of(pair))
}

fn fact_path(pair: &Pair<'_, Rule>) -> Spanned<FactPath> {
    Spanned::new(FactPath(pair.as_str().to_owned()), span_of(pair))
}

/// A dotted name is a fact; a bare one is a fact only if the schema knows it.
fn path(text: &str) -> OperandKind {
    if text.contains('.') || FactId::lookup(text).is_some() {
        OperandKind::Fact(FactPath(text.to_owned()))
    } else {
        OperandKind::Word(text.to_owned())
    }
}

fn day(pair: &Pair<'_, Rule>) -> Built<Weekday> {
    Weekday::ALL
        .into_iter()
        .find(|d| d.keyword() == pair.as_str())
        .ok_or_else(|| Stop::malformed(span_of(pair)))
}

fn jitter_kind(pair: &Pair<'_, Rule>) -> Built<Spanned<Jitter>> {
    let kind = [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ]
    .into_iter()
    .find(|j| j.keyword() == pair.as_str())
    .ok_or_else(|| Stop::malformed(span_of(pair)))?;
    Ok(Spanned::new(kind, span_of(pair)))
}

fn phase_kind(pair: &Pair<'_, Rule>) -> Built<Spanned<PhaseKind>> {
    let kind = [PhaseKind::Trigger, PhaseKind::Response]
        .into_iter()
        .find(|k| k.keyword() == pair.as_str())
        .ok_or_else(|| Stop::malformed(span_of(pair)))?;
    Ok(Spanned::new(kind, span_of(pair)))
}

fn cmp_op(pair: &Pair<'_, Rule>) -> Built<Spanned<CmpOp>> {
    let op = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ]
    .into_iter()
    .find(|op| op.symbol() == pair.as_str())
    .ok_or_else(|| Stop::malformed(span_of(pair)))?;
    Ok(Spanned::new(op, span_of(pair)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_reserved_words_are_the_grammars() {
        let grammar = include_str!("../../grammar/rules.pest");
        let line = grammar
            .lines()
            .find(|l| l.starts_with("reserved "))
            .expect("a `reserved` rule");
        let quoted: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert_eq!(quoted, RESERVED_WORDS);
    }

    /// Every rules file in the repository: the shipped ones, examples, fixtures.
    fn corpus() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        let mut folders = vec![root.join("rules"), root.join("tests/fixtures")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "rules") {
                    found.extend(std::fs::read_to_string(&path));
                }
            }
        }
        found.sort();
        found.push(EVERY_FORM.to_owned());
        found
    }

    /// Every form the grammar has, some in unusual but valid spellings.
    const EVERY_FORM: &str = "# lead\npolicy \"every \\\"form\\\\\" # after\ntimezone \"Europe/London\"\r\n\
        sources a,b , c\nwindow w timezone \"UTC\" { mon..fri,sun 7:00..24:00 sat 23:59..0:00 }\n\
        window e{}\nbackoff b { exponential 5s factor 1.5 max 2m jitter decorrelated attempts 3 }\n\
        backoff c { constant 500ms jitter none exponential 1d max 3h }\n\
        on trigger {\n  rule r1 when a == 1 and b != -2 and c < 3 and d <= 4 and e > 5 and f >= 6 then publish\n\
        rule r2 when x in [] or y not in [1, \"s\", 5m,] or z in 1..-3 or now not in w then skip \"s\"\n\
        rule r3 when not not (exists(a.b) and since(c.d) < 15m) then defer until w\n\
        rule r4 when ((t)) or true or false or truex or since or exists or a.and.b then defer until l.at + 15m\n\
        rule r5 when x - 5ms == y + 1h # trailing\n  then backoff retry_after\n\
        rule r6 when x in w then backoff retry_after else b\n  otherwise fail \"f\" }\n\
        on response { rule r when response.status in 200..299 then done rule s when 1 then recheck\n\
        otherwise backoff c }  # end";

    /// The direct reader answers exactly when pest parses without a diagnostic, and with
    /// the same tree, spans and comments included.
    fn readers_agree(source: &str) -> Result<(), TestCaseError> {
        if depth::check_parentheses(source).is_some() {
            return Ok(());
        }
        let direct = direct::parse(source).map(|f| format!("{f:#?}"));
        let pest = with_pest(source).ok().map(|f| format!("{f:#?}"));
        if source.contains('\u{FEFF}') {
            prop_assert!(direct.is_none());
        } else {
            prop_assert_eq!(direct, pest, "{:?}", source);
        }
        Ok(())
    }

    #[test]
    fn the_direct_reader_reads_every_rules_file_of_the_repository_as_pest_does() {
        let corpus = corpus();
        assert!(corpus.len() > 20, "{}", corpus.len());
        let mut read = 0;
        for source in &corpus {
            if let Err(failure) = readers_agree(source) {
                panic!("{failure}");
            }
            read += usize::from(direct::parse(source).is_some());
        }
        assert!(read > 10, "most fixtures parse: {read}");
    }

    /// Fragments an edit inserts: tokens, near-tokens, blanks, comment and string marks.
    const FRAGMENTS: &[&str] = &[
        " ",
        "\n",
        "\r",
        "\r\n",
        "\t",
        "#",
        "# c\n",
        "\"",
        "\\",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ".",
        "..",
        "-",
        "+",
        "==",
        "<",
        ">=",
        "!=",
        "and",
        "or",
        "not",
        "in",
        "not in",
        "exists",
        "since",
        "true",
        "false",
        "rule",
        "when",
        "then",
        "otherwise",
        "x",
        "x.y",
        "a.and",
        "_",
        "0",
        "5",
        "07:00",
        "7:0",
        "24:00",
        "5m",
        "5ms",
        "5min",
        "1.5",
        "2.",
        "-3",
        "retry_after",
        "else",
        "backoff",
        "defer until",
        "publish",
        "skip \"s\"",
        "mon",
        "mon..fri",
        "factor",
        "max",
        "jitter none",
        "attempts 3",
        "timezone",
        "\u{a0}",
        "é",
        "\u{FEFF}",
        "99999999999999999999",
        "now",
        "schedule.state",
    ];

    fn mutated() -> impl Strategy<Value = String> {
        let corpus = corpus();
        let count = corpus.len();
        let edit = (
            any::<prop::sample::Index>(),
            0usize..6,
            proptest::sample::select(FRAGMENTS),
        );
        (0..count, proptest::collection::vec(edit, 1..4)).prop_map(move |(file, edits)| {
            let mut source = corpus.get(file).cloned().unwrap_or_default();
            for (at, delete, insert) in edits {
                let mut start = at.index(source.len() + 1);
                while !source.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (start + delete).min(source.len());
                while !source.is_char_boundary(end) {
                    end += 1;
                }
                source.replace_range(start..end, insert);
            }
            source
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Files of the repository with a few edits: the readers agree on each.
        #[test]
        fn the_direct_reader_and_pest_agree_on_edited_files(source in mutated()) {
            readers_agree(&source)?;
        }
    }
}
