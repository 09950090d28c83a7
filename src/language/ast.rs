//! The typed syntax tree of a rules file, as written, with spans.
//!
//! The parser builds it, the checker turns it into a [`crate::policy::Policy`], and the
//! formatter prints it back. Equality ignores spans (see [`Spanned`]), so a file and its
//! formatted form have equal trees.

use crate::language::span::{Span, Spanned};

/// An identifier as written: a rule, window, backoff, source or enum value name.
pub type Ident = Spanned<String>;

/// A whole rules file.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// The top-level items in source order.
    pub items: Vec<Item>,
    /// Every `#` comment in the file, in source order, for the formatter.
    pub comments: Vec<Comment>,
}

/// A `# ...` comment; `text` excludes the `#` and the line end.
#[derive(Clone, Debug)]
pub struct Comment {
    /// The comment text after `#`, without the line end or trailing blanks.
    pub text: String,
    /// Where the comment stands, `#` included.
    pub span: Span,
    /// Nothing but blanks precede it on its line (otherwise it trails some code).
    pub own_line: bool,
}

/// Equality compares the text only: layout (span, own line or trailing) is not content.
impl PartialEq for Comment {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// One top-level declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `policy "name"`
    Policy(Spanned<String>),
    /// `timezone "Area/City"`
    Timezone(Spanned<String>),
    /// `sources a, b, c`
    Sources(Vec<Ident>),
    /// `window NAME [timezone "Area/City"] { ... }`
    Window(Window),
    /// `backoff NAME { ... }`
    Backoff(Backoff),
    /// `on trigger { ... }` or `on response { ... }`
    Phase(Phase),
}

/// A named set of weekly wall-clock ranges.
#[derive(Clone, Debug)]
pub struct Window {
    /// The window's name.
    pub name: Ident,
    /// A time zone for this window only; the policy's when absent.
    pub timezone: Option<Spanned<String>>,
    /// One line each: days and a time range.
    pub lines: Vec<WindowLine>,
    /// The whole declaration.
    pub span: Span,
}

/// Equality ignores the span, like [`Spanned`].
impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.timezone == other.timezone && self.lines == other.lines
    }
}

/// `mon..fri, sun 07:00..20:00`: some days and one time range on each of them.
#[derive(Clone, Debug)]
pub struct WindowLine {
    /// The days the range starts on (comma separated; each a day or a range of days).
    pub days: Vec<Spanned<DaySpec>>,
    /// The wall-clock range; `end <= start` means it crosses midnight into the next day.
    pub times: Spanned<TimeRange>,
    /// The whole line.
    pub span: Span,
}

/// Equality ignores the span, like [`Spanned`].
impl PartialEq for WindowLine {
    fn eq(&self, other: &Self) -> bool {
        self.days == other.days && self.times == other.times
    }
}

/// A single weekday or an inclusive range of weekdays (which may wrap: `fri..mon`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaySpec {
    /// One day.
    Day(Weekday),
    /// `first..last`, inclusive, wrapping past Sunday when `last` comes before `first`.
    Range(Weekday, Weekday),
}

/// Days of the week, Monday first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// `mon`
    Mon,
    /// `tue`
    Tue,
    /// `wed`
    Wed,
    /// `thu`
    Thu,
    /// `fri`
    Fri,
    /// `sat`
    Sat,
    /// `sun`
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// The keyword used in rules files.
    pub fn keyword(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    /// 0 for Monday through 6 for Sunday.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A wall-clock time of day, minutes since midnight (0..=1440; `24:00` is 1440).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(pub u16);

/// `start..end` wall-clock times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// Opening time (inclusive).
    pub start: TimeOfDay,
    /// Closing time (exclusive); at or before `start` means the next day.
    pub end: TimeOfDay,
}

/// A retry profile.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// The profile's name.
    pub name: Ident,
    /// The settings, each with its span, in source order.
    pub settings: Vec<Spanned<BackoffSetting>>,
    /// The whole declaration.
    pub span: Span,
}

/// Equality ignores the span, like [`Spanned`].
impl PartialEq for Backoff {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.settings == other.settings
    }
}

/// One setting inside a `backoff` block.
#[derive(Clone, Debug, PartialEq)]
pub enum BackoffSetting {
    /// `exponential INITIAL factor F max CAP` (factor and max optional).
    Exponential {
        /// First delay.
        initial: Spanned<DurationLit>,
        /// Growth per attempt (default 2).
        factor: Option<Spanned<f64>>,
        /// Cap on any one delay.
        max: Option<Spanned<DurationLit>>,
    },
    /// `constant DELAY`: the same delay every attempt.
    Constant(Spanned<DurationLit>),
    /// `jitter none|full|equal|decorrelated` (may also trail the `exponential` line).
    Jitter(Spanned<Jitter>),
    /// `attempts N`
    Attempts(Spanned<i64>),
}

/// How a backoff delay is randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// Exactly the computed delay.
    None,
    /// Uniform in `0..=delay`.
    Full,
    /// `delay/2` plus uniform in `0..=delay/2`.
    Equal,
    /// Uniform in `initial..=previous*3`, capped.
    Decorrelated,
}

impl Jitter {
    /// The keyword used in rules files.
    pub fn keyword(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

/// A duration literal such as `15m`, kept as written so the formatter can print it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DurationLit {
    /// The number before the unit.
    pub amount: i64,
    /// The unit after the number.
    pub unit: DurationUnit,
}

/// Units a duration literal may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    /// `ms`
    Millis,
    /// `s`
    Seconds,
    /// `m`
    Minutes,
    /// `h`
    Hours,
    /// `d` (24 hours)
    Days,
}

impl DurationUnit {
    /// The suffix used in rules files.
    pub fn suffix(self) -> &'static str {
        match self {
            DurationUnit::Millis => "ms",
            DurationUnit::Seconds => "s",
            DurationUnit::Minutes => "m",
            DurationUnit::Hours => "h",
            DurationUnit::Days => "d",
        }
    }

    /// Milliseconds in one unit.
    pub fn millis(self) -> i64 {
        match self {
            DurationUnit::Millis => 1,
            DurationUnit::Seconds => 1_000,
            DurationUnit::Minutes => 60_000,
            DurationUnit::Hours => 3_600_000,
            DurationUnit::Days => 86_400_000,
        }
    }
}

/// Which evaluation a phase block answers.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    /// `on trigger`: a trigger arrived (or a recheck or deferral came due).
    Trigger,
    /// `on response`: the API answered a write.
    Response,
}

impl std::fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keyword())
    }
}

impl PhaseKind {
    /// The keyword after `on`.
    pub fn keyword(self) -> &'static str {
        match self {
            PhaseKind::Trigger => "trigger",
            PhaseKind::Response => "response",
        }
    }
}

/// `on trigger { rule ... otherwise ... }`
#[derive(Clone, Debug)]
pub struct Phase {
    /// Which phase.
    pub kind: Spanned<PhaseKind>,
    /// The named rules, in order.
    pub rules: Vec<Rule>,
    /// The closing `otherwise ACTION`; the checker rejects a phase without one.
    pub otherwise: Option<Spanned<Action>>,
    /// The whole block.
    pub span: Span,
}

/// Equality ignores the span, like [`Spanned`].
impl PartialEq for Phase {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.rules == other.rules && self.otherwise == other.otherwise
    }
}

/// `rule NAME when CONDITION then ACTION`
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule's name.
    pub name: Ident,
    /// The condition after `when`.
    pub condition: Expr,
    /// The action after `then`.
    pub action: Spanned<Action>,
    /// The whole rule.
    pub span: Span,
}

/// Equality ignores the span, like [`Spanned`].
impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.condition == other.condition && self.action == other.action
    }
}

/// A condition, with its span.
pub type Expr = Spanned<ExprKind>;

/// The forms a condition takes.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `a or b or c` (two or more; never mixed with `and` without parentheses).
    Or(Vec<Expr>),
    /// `a and b and c` (two or more).
    And(Vec<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `( a )`, kept so the formatter prints the parentheses the author wrote.
    Group(Box<Expr>),
    /// `left OP right`
    Compare {
        /// Left side.
        left: Operand,
        /// The comparison.
        op: Spanned<CmpOp>,
        /// Right side.
        right: Operand,
    },
    /// `operand [not] in [a, b, c]`
    InList {
        /// What is tested.
        operand: Operand,
        /// `not in`
        negated: bool,
        /// The candidates.
        items: Vec<Operand>,
    },
    /// `operand [not] in LOW..HIGH` (inclusive integer range)
    InRange {
        /// What is tested.
        operand: Operand,
        /// `not in`
        negated: bool,
        /// Lowest value included.
        low: Spanned<i64>,
        /// Highest value included.
        high: Spanned<i64>,
    },
    /// `operand [not] in WINDOW`
    InWindow {
        /// The instant tested (usually `now`).
        operand: Operand,
        /// `not in`
        negated: bool,
        /// The window's name.
        window: Ident,
    },
    /// `exists(fact)`: the fact has a value.
    Exists(Spanned<FactPath>),
    /// A bare operand used as a condition: a boolean fact such as `trigger.duplicate`, or `true`.
    Truthy(Operand),
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A dotted fact name as written, e.g. `schedule.state`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FactPath(pub String);

/// A value in a condition, with its span.
pub type Operand = Spanned<OperandKind>;

/// The forms a value takes.
#[derive(Clone, Debug, PartialEq)]
pub enum OperandKind {
    /// A fact, e.g. `schedule.state` or `now`; a bare word that is not a fact is a [`OperandKind::Word`].
    Fact(FactPath),
    /// A bare word that is not a known fact name: an enum value (`published`) or a source (`servicenow`).
    Word(String),
    /// `"text"`
    Str(String),
    /// `42`, `-1`
    Int(i64),
    /// `true` / `false`
    Bool(bool),
    /// `15m`
    Duration(DurationLit),
    /// `since(fact)`: `now` minus the instant fact.
    Since(Spanned<FactPath>),
    /// `operand + 15m` or `operand - 15m` (instants only).
    Offset {
        /// The instant.
        base: Box<Operand>,
        /// `+` or `-`.
        sign: OffsetSign,
        /// The duration added or taken away.
        by: Spanned<DurationLit>,
    },
}

/// `+` or `-` in an instant offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffsetSign {
    /// `+`
    Plus,
    /// `-`
    Minus,
}

/// What a rule (or `otherwise`) decides.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `publish`
    Publish,
    /// `skip "reason"`
    Skip(Spanned<String>),
    /// `backoff PROFILE`
    Backoff(Ident),
    /// `backoff retry_after else PROFILE`
    BackoffRetryAfter(Ident),
    /// `defer until WINDOW`
    DeferUntilWindow(Ident),
    /// `defer until INSTANT-EXPRESSION`
    DeferUntilInstant(Operand),
    /// `recheck`
    Recheck,
    /// `done`
    Done,
    /// `fail "reason"`
    Fail(Spanned<String>),
}

impl Action {
    /// Which kind of action this is.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Publish => ActionKind::Publish,
            Action::Skip(_) => ActionKind::Skip,
            Action::Backoff(_) | Action::BackoffRetryAfter(_) => ActionKind::Backoff,
            Action::DeferUntilWindow(_) | Action::DeferUntilInstant(_) => ActionKind::Defer,
            Action::Recheck => ActionKind::Recheck,
            Action::Done => ActionKind::Done,
            Action::Fail(_) => ActionKind::Fail,
        }
    }
}

/// The kinds of action, by their leading keyword (serialised as that keyword).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// `publish`
    Publish,
    /// `skip`
    Skip,
    /// `backoff` (with a profile or `retry_after`)
    Backoff,
    /// `defer`
    Defer,
    /// `recheck`
    Recheck,
    /// `done`
    Done,
    /// `fail`
    Fail,
}

impl ActionKind {
    /// The keyword an action of this kind starts with.
    pub fn keyword(self) -> &'static str {
        match self {
            ActionKind::Publish => "publish",
            ActionKind::Skip => "skip",
            ActionKind::Backoff => "backoff",
            ActionKind::Defer => "defer",
            ActionKind::Recheck => "recheck",
            ActionKind::Done => "done",
            ActionKind::Fail => "fail",
        }
    }

    /// The action as the rules language writes it, with its argument: `skip "reason"`,
    /// `backoff conflict`, `defer until T`. The one place a verdict is worded.
    pub fn with_argument(self, argument: Option<&str>) -> String {
        match (self, argument) {
            (ActionKind::Skip | ActionKind::Fail, Some(a)) => format!("{} {a:?}", self.keyword()),
            (ActionKind::Defer, Some(a)) => format!("defer until {a}"),
            (_, Some(a)) => format!("{} {a}", self.keyword()),
            (_, None) => self.keyword().to_owned(),
        }
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keyword())
    }
}
