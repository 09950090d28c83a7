//! Backoff profiles and the one place a retry delay is computed.

use crate::ast::Jitter;
use jiff::SignedDuration;

/// A named retry profile from a `backoff` block.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffProfile {
    /// The profile's name.
    pub name: String,
    /// The first delay.
    pub initial: SignedDuration,
    /// Growth per attempt (1 for `constant`).
    pub factor: f64,
    /// No single delay exceeds this.
    pub max: SignedDuration,
    /// How the delay is randomised.
    pub jitter: Jitter,
    /// Attempts allowed before the decision becomes a recorded failure.
    pub attempts: u32,
}
