//! What an evaluation decides: the verdict, and the rule that made it.

use crate::language::ast::ActionKind;
use crate::language::span::Span;
use crate::policy::backoff::BackoffProfile;
use jiff::{SignedDuration, Timestamp};
use std::fmt;

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
    /// Which kind of action it is.
    pub fn kind(&self) -> ActionKind {
        match self {
            Verdict::Publish => ActionKind::Publish,
            Verdict::Skip { .. } => ActionKind::Skip,
            Verdict::Backoff { .. } | Verdict::BackoffRetryAfter { .. } => ActionKind::Backoff,
            Verdict::Defer { .. } => ActionKind::Defer,
            Verdict::Recheck => ActionKind::Recheck,
            Verdict::Done => ActionKind::Done,
            Verdict::Fail { .. } => ActionKind::Fail,
        }
    }

    /// The action's argument as the runner's events show it: a reason, a profile, an
    /// instant, `retry_after 7s`.
    pub fn argument(&self) -> Option<String> {
        match self {
            Verdict::Skip { reason } | Verdict::Fail { reason } => Some((*reason).to_owned()),
            Verdict::Backoff { profile } => Some(profile.name.clone()),
            Verdict::BackoffRetryAfter {
                retry_after: Some(after),
                ..
            } => Some(format!("retry_after {after:#}")),
            Verdict::BackoffRetryAfter {
                retry_after: None,
                fallback,
            } => Some(fallback.name.clone()),
            Verdict::Defer { until } => Some(until.to_string()),
            Verdict::Publish | Verdict::Recheck | Verdict::Done => None,
        }
    }
}

impl fmt::Display for Verdict<'_> {
    /// The verdict in the words of the rules language: `skip "..."`, `defer until T`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let argument = match self {
            Verdict::BackoffRetryAfter { fallback, .. } => {
                Some(format!("retry_after else {}", fallback.name))
            }
            v => v.argument(),
        };
        f.write_str(&self.kind().with_argument(argument.as_deref()))
    }
}
