//! What an evaluation decides: the verdict, and the rule that made it.

use crate::language::span::Span;
use crate::policy::backoff::BackoffProfile;
use jiff::{SignedDuration, Timestamp};

/// The outcome of evaluating one phase: borrowed from the [`crate::policy::Policy`], so
/// producing it allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision<'p> {
    /// What to do.
    pub verdict: Verdict<'p>,
    /// The deciding rule's name, or `otherwise`.
    pub rule: &'p str,
    /// The deciding rule's span in the rules file.
    pub span: Span,
}

/// What to do, with everything the runner needs to do it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict<'p> {
    /// Publish the schedule.
    Publish,
    /// Do nothing.
    Skip {
        /// Why, as the rule says.
        reason: &'p str,
    },
    /// Wait per the profile, then re-evaluate.
    Backoff {
        /// The profile to use.
        profile: &'p BackoffProfile,
    },
    /// Wait the server's `Retry-After` (capped by the profile), or per the profile.
    BackoffRetryAfter {
        /// The server's `Retry-After`, when the answer carried one.
        retry_after: Option<SignedDuration>,
        /// The profile used without one, and whose cap applies with one.
        fallback: &'p BackoffProfile,
    },
    /// Re-evaluate at this instant.
    Defer {
        /// When.
        until: Timestamp,
    },
    /// Read the state again and re-run the trigger phase.
    Recheck,
    /// The cycle is finished.
    Done,
    /// Record a failure.
    Fail {
        /// Why.
        reason: &'p str,
    },
}

impl Verdict<'_> {
    /// The action's keyword (`publish`, `skip`, `backoff`, `defer`, `recheck`, `done`, `fail`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Verdict::Publish => "publish",
            Verdict::Skip { .. } => "skip",
            Verdict::Backoff { .. } | Verdict::BackoffRetryAfter { .. } => "backoff",
            Verdict::Defer { .. } => "defer",
            Verdict::Recheck => "recheck",
            Verdict::Done => "done",
            Verdict::Fail { .. } => "fail",
        }
    }
}
