//! Why the relay is not ready to do its job, beyond its store: the API refused our
//! credentials. `/readyz` reports it until a read succeeds again.

use std::sync::{Mutex, PoisonError};

/// The latest reason the relay cannot reach the API as itself, if any.
#[derive(Debug, Default)]
pub struct Readiness(Mutex<Option<String>>);

impl Readiness {
    /// The API refused our credentials, for `reason` (it names the client id, never the
    /// secret).
    pub fn refused(&self, reason: &str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_owned());
    }

    /// A call went through as ourselves: the credentials work.
    pub fn authorized(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Why the relay is not ready, if it is not.
    pub fn problem(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
