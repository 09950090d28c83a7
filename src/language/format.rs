//! The one canonical layout of a rules file, printed from its syntax tree.
//!
//! Two-space indents; a blank line around every block; window times, rule names and the
//! `when`/`then` columns of a phase aligned; a long `and`/`or` condition broken before each
//! joiner. Every comment is kept: one on its own line stays before what follows it, one
//! after code stays at the end of that line (a comment inside a rule moves above the rule).
//! The layout depends only on the tree, so formatting is idempotent and `parse(format(f))`
//! equals `f`.

use crate::language::ast::{
    Action, Backoff, BackoffSetting, Comment, DaySpec, DurationLit, Expr, ExprKind, File, Item,
    OffsetSign, Operand, OperandKind, Phase, Rule, TimeOfDay, Window,
};
use crate::language::diagnostic::Diagnostic;
use crate::language::parser::parse;
use crate::language::span::{Span, Spanned};

/// Conditions wider than this, when joined by `and` or `or`, get one term per line; a
/// last line still wider puts `then` on a line of its own rather than push every `then`
/// of the phase to the right.
const MAX_INLINE_CONDITION: usize = 40;

const INDENT: &str = "  ";

/// Print `file` in the canonical layout.
pub fn format(file: &File) -> String {
    let mut printer = Printer {
        out: String::new(),
        comments: &file.comments,
        next_comment: 0,
    };
    printer.file(file);
    printer.out
}

/// Parse `source` and print it in the canonical layout.
pub fn format_source(source: &str) -> Result<String, Vec<Diagnostic>> {
    parse(source).map(|file| format(&file))
}

/// Writes lines, threading the file's comments in by position.
struct Printer<'a> {
    out: String,
    comments: &'a [Comment],
    next_comment: usize,
}

impl Printer<'_> {
    /// Comments that start before `before`, each on its own line.
    fn leading(&mut self, before: usize, indent: &str) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.span.start >= before {
                break;
            }
            self.out.push_str(indent);
            self.out.push('#');
            self.out.push_str(&comment.text);
            self.out.push('\n');
            self.next_comment += 1;
        }
    }

    /// `text` as one line, ending with the comment that trails it in the source (one that
    /// follows code and starts before `next_token`, the next thing printed).
    fn line(&mut self, indent: &str, text: &str, next_token: usize) {
        self.out.push_str(indent);
        self.out.push_str(text);
        if let Some(comment) = self.comments.get(self.next_comment)
            && !comment.own_line
            && comment.span.start < next_token
        {
            self.out.push_str("  #");
            self.out.push_str(&comment.text);
            self.next_comment += 1;
        }
        self.out.push('\n');
    }

    fn has_comment_between(&self, start: usize, end: usize) -> bool {
        let pending = self.comments.get(self.next_comment..).unwrap_or(&[]);
        pending
            .iter()
            .any(|c| c.span.start >= start && c.span.start < end)
    }

    fn file(&mut self, file: &File) {
        let starts: Vec<usize> = file.items.iter().map(item_start).collect();
        for (index, item) in file.items.iter().enumerate() {
            let next = starts.get(index + 1).copied().unwrap_or(usize::MAX);
            if index > 0 && (is_block(item) || file.items.get(index - 1).is_some_and(is_block)) {
                self.out.push('\n');
            }
            self.item(item, next);
        }
        if self.next_comment < self.comments.len() && file.items.last().is_some_and(is_block) {
            self.out.push('\n');
        }
        self.leading(usize::MAX, "");
    }

    fn item(&mut self, item: &Item, next: usize) {
        match item {
            Item::Policy(name) => {
                self.leading(name.span.end, "");
                self.line("", &format!("policy {}", string(name)), next);
            }
            Item::Timezone(zone) => {
                self.leading(zone.span.end, "");
                self.line("", &format!("timezone {}", string(zone)), next);
            }
            Item::Sources(sources) => {
                let end = sources.last().map_or(0, |s| s.span.end);
                self.leading(end, "");
                let names: Vec<&str> = sources.iter().map(|s| s.node.as_str()).collect();
                self.line("", &format!("sources {}", names.join(", ")), next);
            }
            Item::Window(window) => self.window(window, next),
            Item::Backoff(backoff) => self.backoff(backoff, next),
            Item::Phase(phase) => self.phase(phase, next),
        }
    }

    /// `header {`, then the body, then `}`, for the block spanning `span`.
    fn block(
        &mut self,
        span: Span,
        header: &str,
        first_child: Option<usize>,
        next: usize,
        body: impl FnOnce(&mut Self, usize),
    ) {
        let close = span.end.saturating_sub(1);
        self.leading(span.start, "");
        self.line("", &format!("{header} {{"), first_child.unwrap_or(close));
        body(self, close);
        self.leading(close, INDENT);
        self.line("", "}", next);
    }

    fn window(&mut self, window: &Window, next: usize) {
        let mut header = format!("window {}", window.name.node);
        if let Some(zone) = &window.timezone {
            header.push_str(&format!(" timezone {}", string(zone)));
        }
        let first = window.lines.first().map(|l| l.span.start);
        self.block(window.span, &header, first, next, |printer, close| {
            let days: Vec<String> = window
                .lines
                .iter()
                .map(|line| {
                    let specs: Vec<String> = line.days.iter().map(|d| day_spec(d.node)).collect();
                    specs.join(", ")
                })
                .collect();
            let width = days.iter().map(|d| d.chars().count()).max().unwrap_or(0);
            for (index, (line, days)) in window.lines.iter().zip(&days).enumerate() {
                let next = window.lines.get(index + 1).map_or(close, |l| l.span.start);
                let times = line.times.node;
                let text = format!("{days:<width$} {}..{}", time(times.start), time(times.end));
                printer.leading(line.span.end, INDENT);
                printer.line(INDENT, &text, next);
            }
        });
    }

    fn backoff(&mut self, backoff: &Backoff, next: usize) {
        let header = format!("backoff {}", backoff.name.node);
        let first = backoff.settings.first().map(|s| s.span.start);
        self.block(backoff.span, &header, first, next, |printer, close| {
            let settings = &backoff.settings;
            let mut index = 0;
            while let Some(setting) = settings.get(index) {
                printer.leading(setting.span.end, INDENT);
                let mut text = backoff_setting(&setting.node);
                // `jitter` reads best on the line of the delay it randomises.
                if let Some(jitter) = settings.get(index + 1)
                    && matches!(jitter.node, BackoffSetting::Jitter(_))
                    && matches!(
                        setting.node,
                        BackoffSetting::Exponential { .. } | BackoffSetting::Constant(_)
                    )
                    && !printer.has_comment_between(setting.span.end, jitter.span.end)
                {
                    text.push(' ');
                    text.push_str(&backoff_setting(&jitter.node));
                    index += 1;
                }
                index += 1;
                let next = settings.get(index).map_or(close, |s| s.span.start);
                printer.line(INDENT, &text, next);
            }
        });
    }

    fn phase(&mut self, phase: &Phase, next: usize) {
        let header = format!("on {}", phase.kind.node.keyword());
        let first = phase
            .rules
            .first()
            .map(|r| r.span.start)
            .or(phase.otherwise.as_ref().map(|o| o.span.start));
        self.block(phase.span, &header, first, next, |printer, close| {
            let layout = RuleLayout::of(&phase.rules);
            let otherwise_start = phase.otherwise.as_ref().map(|o| o.span.start);
            for (index, rule) in phase.rules.iter().enumerate() {
                let next = phase
                    .rules
                    .get(index + 1)
                    .map(|r| r.span.start)
                    .or(otherwise_start)
                    .unwrap_or(close);
                printer.leading(rule.span.end, INDENT);
                let lines = layout.lines(rule);
                let Some((last, init)) = lines.split_last() else {
                    continue;
                };
                for text in init {
                    printer.out.push_str(INDENT);
                    printer.out.push_str(text);
                    printer.out.push('\n');
                }
                printer.line(INDENT, last, next);
            }
            if let Some(otherwise) = &phase.otherwise {
                printer.leading(otherwise.span.end, INDENT);
                let text = format!("otherwise {}", action(&otherwise.node));
                printer.line(INDENT, &text, close);
            }
        });
    }
}

/// The column widths shared by the rules of one phase.
struct RuleLayout {
    name_width: usize,
    then_column: usize,
}

impl RuleLayout {
    fn of(rules: &[Rule]) -> RuleLayout {
        let name_width = rules
            .iter()
            .map(|r| r.name.node.chars().count())
            .max()
            .unwrap_or(0);
        let widest_tail = rules
            .iter()
            .map(|r| last_line_width(&condition_lines(&r.condition)))
            .filter(|&width| width <= MAX_INLINE_CONDITION)
            .max()
            .unwrap_or(0);
        RuleLayout {
            name_width,
            then_column: widest_tail + 2,
        }
    }

    /// The rule's lines, without the phase's indent; `then` starts `then_column` characters
    /// after the condition's column on the last line, or under `when` on a line of its own.
    fn lines(&self, rule: &Rule) -> Vec<String> {
        let head = format!("rule {:<w$} when ", rule.name.node, w = self.name_width);
        let condition_column = head.chars().count();
        let mut lines = Vec::new();
        let parts = condition_lines(&rule.condition);
        for (index, part) in parts.iter().enumerate() {
            let line = match (index, part) {
                (0, part) => format!("{head}{}", part.text),
                (_, part) => {
                    let joiner = part.joiner.unwrap_or("");
                    let pad = condition_column.saturating_sub(joiner.len() + 1);
                    format!("{:pad$}{joiner} {}", "", part.text)
                }
            };
            lines.push(line);
        }
        let then = format!("then {}", action(&rule.action.node));
        let tail = last_line_width(&parts);
        match lines.last_mut() {
            Some(last) if tail <= MAX_INLINE_CONDITION => {
                let gap = self.then_column.saturating_sub(tail);
                last.push_str(&format!("{:gap$}{then}", ""));
            }
            _ => {
                let pad = condition_column.saturating_sub("when ".len());
                lines.push(format!("{:pad$}{then}", ""));
            }
        }
        lines
    }
}

/// One printed line of a condition: the joiner that starts it (after the first) and the term.
struct ConditionLine {
    joiner: Option<&'static str>,
    text: String,
}

/// A condition on one line, or one term per line when it is a long `and`/`or`.
fn condition_lines(condition: &Expr) -> Vec<ConditionLine> {
    let inline = expr(condition);
    let (terms, joiner) = match &condition.node {
        ExprKind::And(terms) => (terms, "and"),
        ExprKind::Or(terms) => (terms, "or"),
        _ => (&Vec::new(), ""),
    };
    if terms.is_empty() || inline.chars().count() <= MAX_INLINE_CONDITION {
        return vec![ConditionLine {
            joiner: None,
            text: inline,
        }];
    }
    terms
        .iter()
        .enumerate()
        .map(|(index, term)| ConditionLine {
            joiner: (index > 0).then_some(joiner),
            text: expr(term),
        })
        .collect()
}

/// Width of the last line's term, measured from the condition's column.
fn last_line_width(lines: &[ConditionLine]) -> usize {
    lines.last().map_or(0, |l| l.text.chars().count())
}

fn is_block(item: &Item) -> bool {
    matches!(item, Item::Window(_) | Item::Backoff(_) | Item::Phase(_))
}

/// Where an item starts, as near as its spans tell.
fn item_start(item: &Item) -> usize {
    match item {
        Item::Policy(name) | Item::Timezone(name) => name.span.start,
        Item::Sources(sources) => sources.first().map_or(0, |s| s.span.start),
        Item::Window(window) => window.span.start,
        Item::Backoff(backoff) => backoff.span.start,
        Item::Phase(phase) => phase.span.start,
    }
}

fn expr(e: &Expr) -> String {
    let joined = |terms: &[Expr], joiner: &str| {
        let parts: Vec<String> = terms.iter().map(expr).collect();
        parts.join(joiner)
    };
    let not = |negated: bool| if negated { " not in " } else { " in " };
    match &e.node {
        ExprKind::Or(terms) => joined(terms, " or "),
        ExprKind::And(terms) => joined(terms, " and "),
        ExprKind::Not(inner) => format!("not {}", expr(inner)),
        ExprKind::Group(inner) => format!("({})", expr(inner)),
        ExprKind::Compare { left, op, right } => {
            format!("{} {} {}", operand(left), op.node.symbol(), operand(right))
        }
        ExprKind::InList {
            operand: tested,
            negated,
            items,
        } => {
            let items: Vec<String> = items.iter().map(operand).collect();
            format!("{}{}[{}]", operand(tested), not(*negated), items.join(", "))
        }
        ExprKind::InRange {
            operand: tested,
            negated,
            low,
            high,
        } => format!(
            "{}{}{}..{}",
            operand(tested),
            not(*negated),
            low.node,
            high.node
        ),
        ExprKind::InWindow {
            operand: tested,
            negated,
            window,
        } => format!("{}{}{}", operand(tested), not(*negated), window.node),
        ExprKind::Exists(fact) => format!("exists({})", fact.node.0),
        ExprKind::Truthy(value) => operand(value),
    }
}

fn operand(o: &Operand) -> String {
    match &o.node {
        OperandKind::Fact(fact) => fact.0.clone(),
        OperandKind::Word(word) => word.clone(),
        OperandKind::Str(text) => quoted(text),
        OperandKind::Int(n) => n.to_string(),
        OperandKind::Bool(b) => b.to_string(),
        OperandKind::Duration(d) => duration(*d),
        OperandKind::Since(fact) => format!("since({})", fact.node.0),
        OperandKind::Offset { base, sign, by } => {
            let sign = match sign {
                OffsetSign::Plus => '+',
                OffsetSign::Minus => '-',
            };
            format!("{} {sign} {}", operand(base), duration(by.node))
        }
    }
}

fn action(a: &Action) -> String {
    match a {
        Action::Publish => "publish".to_owned(),
        Action::Skip(reason) => format!("skip {}", string(reason)),
        Action::Backoff(profile) => format!("backoff {}", profile.node),
        Action::BackoffRetryAfter(profile) => format!("backoff retry_after else {}", profile.node),
        Action::DeferUntilWindow(window) => format!("defer until {}", window.node),
        Action::DeferUntilInstant(instant) => format!("defer until {}", operand(instant)),
        Action::Recheck => "recheck".to_owned(),
        Action::Done => "done".to_owned(),
        Action::Fail(reason) => format!("fail {}", string(reason)),
    }
}

fn backoff_setting(setting: &BackoffSetting) -> String {
    match setting {
        BackoffSetting::Exponential {
            initial,
            factor,
            max,
        } => {
            let mut text = format!("exponential {}", duration(initial.node));
            if let Some(factor) = factor {
                text.push_str(&format!(" factor {}", factor.node));
            }
            if let Some(max) = max {
                text.push_str(&format!(" max {}", duration(max.node)));
            }
            text
        }
        BackoffSetting::Constant(delay) => format!("constant {}", duration(delay.node)),
        BackoffSetting::Jitter(kind) => format!("jitter {}", kind.node.keyword()),
        BackoffSetting::Attempts(count) => format!("attempts {}", count.node),
    }
}

fn day_spec(spec: DaySpec) -> String {
    match spec {
        DaySpec::Day(day) => day.keyword().to_owned(),
        DaySpec::Range(first, last) => format!("{}..{}", first.keyword(), last.keyword()),
    }
}

fn time(t: TimeOfDay) -> String {
    format!("{:02}:{:02}", t.0 / 60, t.0 % 60)
}

fn duration(d: DurationLit) -> String {
    format!("{}{}", d.amount, d.unit.suffix())
}

fn string(s: &Spanned<String>) -> String {
    quoted(&s.node)
}

/// `text` in double quotes, with `"` and `\` escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
