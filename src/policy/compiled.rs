//! The compiled, validated policy the evaluator runs: names resolved to indices,
//! literals typed, windows and backoff profiles ready to use.

use crate::language::ast::{CmpOp, PhaseKind};
use crate::language::schema::FactId;
use crate::language::span::Span;
use crate::policy::backoff::BackoffProfile;
use crate::policy::facts::Value;
use crate::policy::window::Window;
use jiff::SignedDuration;
use jiff::tz::TimeZone;

/// A checked rules file, ready to evaluate. Build one with [`crate::compile`].
#[derive(Clone, Debug)]
pub struct Policy {
    /// The name after `policy`.
    pub(crate) name: String,
    /// Hex SHA-256 of the source text: the version an audit entry names.
    pub(crate) version: String,
    /// The policy's time zone (windows default to it).
    pub(crate) timezone: TimeZone,
    /// The IANA name of `timezone`, as written.
    pub(crate) timezone_name: String,
    /// The declared trigger sources.
    pub(crate) sources: Vec<String>,
    /// Windows, indexed by [`WindowId`].
    pub(crate) windows: Vec<Window>,
    /// Backoff profiles, indexed by [`BackoffId`].
    pub(crate) backoffs: Vec<BackoffProfile>,
    /// The `on trigger` rules.
    pub(crate) trigger: PhaseRules,
    /// The `on response` rules.
    pub(crate) response: PhaseRules,
}

impl Policy {
    /// The name after `policy`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-256 of the source text: the version an audit entry names.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The policy's time zone (windows default to it).
    pub fn timezone(&self) -> &TimeZone {
        &self.timezone
    }

    /// The IANA name of the policy's time zone, as written (`UTC` when left out).
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    /// The declared trigger sources.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// A window the policy declares. Ids come from the checker only, so every id is valid.
    pub fn window(&self, id: WindowId) -> &Window {
        &self.windows[id.0]
    }

    /// A backoff profile the policy declares. Ids come from the checker only.
    pub fn backoff(&self, id: BackoffId) -> &BackoffProfile {
        &self.backoffs[id.0]
    }

    /// The rules of one phase.
    pub fn phase(&self, kind: PhaseKind) -> &PhaseRules {
        match kind {
            PhaseKind::Trigger => &self.trigger,
            PhaseKind::Response => &self.response,
        }
    }
}

/// A window of the policy ([`Policy::window`]); only the checker makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowId(pub(crate) usize);

/// A backoff profile of the policy ([`Policy::backoff`]); only the checker makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackoffId(pub(crate) usize);

/// One phase's rules and its `otherwise`.
#[derive(Clone, Debug)]
pub struct PhaseRules {
    /// The named rules, tried in order.
    pub rules: Vec<CompiledRule>,
    /// What `otherwise` decides.
    pub otherwise: CompiledAction,
    /// The span of the `otherwise` clause.
    pub otherwise_span: Span,
}

/// A rule with its condition compiled.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    /// The rule's name.
    pub name: String,
    /// The whole rule in the source.
    pub span: Span,
    /// The condition after `when`.
    pub condition: Cond,
    /// The action after `then`.
    pub action: CompiledAction,
}

/// A compiled condition node, with the span of the text it came from (for `explain`).
#[derive(Clone, Debug)]
pub struct Cond {
    /// What the node tests.
    pub kind: CondKind,
    /// The source text of this node.
    pub span: Span,
}

/// The compiled forms of a condition.
#[derive(Clone, Debug)]
pub enum CondKind {
    /// All must hold.
    And(Box<[Cond]>),
    /// One must hold.
    Or(Box<[Cond]>),
    /// Must not hold.
    Not(Box<Cond>),
    /// `left OP right`, both sides of one type; false when either side is absent.
    Compare {
        /// Left side.
        left: Term,
        /// The comparison.
        op: CmpOp,
        /// Right side.
        right: Term,
    },
    /// `term [not] in [values]`; false (or, negated, also false) when the term is absent.
    InSet {
        /// What is tested.
        term: Term,
        /// `not in`
        negated: bool,
        /// The candidates.
        values: Box<[Value]>,
    },
    /// `term [not] in low..high` over integers, inclusive.
    InRange {
        /// What is tested.
        term: Term,
        /// `not in`
        negated: bool,
        /// Lowest included.
        low: i64,
        /// Highest included.
        high: i64,
    },
    /// `term [not] in WINDOW`
    InWindow {
        /// The instant tested.
        term: Term,
        /// `not in`
        negated: bool,
        /// The window.
        window: WindowId,
    },
    /// `exists(fact)`
    Exists(FactId),
    /// A boolean fact or constant used as a condition.
    IsTrue(Term),
}

/// A compiled value expression.
#[derive(Clone, Debug)]
pub enum Term {
    /// A fact's value (absent when the fact is).
    Fact(FactId),
    /// A constant.
    Const(Value),
    /// `since(fact)`: `now - fact`, a duration.
    Since(FactId),
    /// An instant fact moved by a duration (`last_publish.at + 15m`).
    Offset(FactId, SignedDuration),
}

/// What a rule decides, with names resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum CompiledAction {
    /// Publish the schedule.
    Publish,
    /// Do nothing, for the reason given.
    Skip(String),
    /// Wait per the profile, then re-evaluate.
    Backoff(BackoffId),
    /// Wait the server's `Retry-After`, or per the profile when none was given.
    BackoffRetryAfter(BackoffId),
    /// Wait until the window next opens.
    DeferUntilWindow(WindowId),
    /// Wait until the instant the term evaluates to.
    DeferUntilInstant(TermAction),
    /// Read the state again and re-run the trigger phase.
    Recheck,
    /// The cycle is finished.
    Done,
    /// Record a failure with the reason given.
    Fail(String),
}

/// An instant expression inside an action (kept apart from [`Term`] so actions compare by value).
#[derive(Clone, Debug, PartialEq)]
pub struct TermAction {
    /// The instant fact.
    pub fact: FactId,
    /// Added to it.
    pub offset: SignedDuration,
}
