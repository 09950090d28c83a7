//! The running policy and its reload: the new file is checked first; a file that does not
//! check leaves the running policy in place and the answer carries its diagnostics. The swap
//! is one pointer store, so a cycle that started keeps the policy it started with. A rules
//! file is at most [`MAX_RULES_BYTES`] long, and a reload's check is given
//! [`RELOAD_TIMEOUT`] (the server runs it off the async runtime).

use crate::policy::Policy;
use jiff::SignedDuration;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// The longest rules file read: 1 MiB, some 20,000 rules; the check's memory grows with it.
pub const MAX_RULES_BYTES: u64 = 1024 * 1024;
/// How long a reload waits for the check before giving up on it.
pub const RELOAD_TIMEOUT: SignedDuration = SignedDuration::from_secs(30);

/// Why a rules file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not check: its rendered diagnostics.
    #[error("{0}")]
    Check(String),
    /// The file is longer than [`MAX_RULES_BYTES`].
    #[error(
        "{path}: longer than the limit of {} bytes for a rules file",
        MAX_RULES_BYTES
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Another reload is still checking its file.
    #[error("a reload is already in progress")]
    Busy,
    /// The check took longer than [`RELOAD_TIMEOUT`].
    #[error(
        "the check took longer than {:#}; the running policy stays in force",
        RELOAD_TIMEOUT
    )]
    TimedOut,
    /// The check panicked (a bug); the running policy stays in force.
    #[error("the check of the rules file failed unexpectedly; the running policy stays in force")]
    Panicked,
}

/// The policy in force and the file it is reloaded from.
#[derive(Debug)]
pub struct Rules {
    path: PathBuf,
    current: RwLock<Arc<Policy>>,
}

/// Read and check a rules file (blocking: the check takes as long as the file needs).
pub fn load_policy(path: &Path) -> Result<Policy, RulesError> {
    let io = |source| RulesError::Io {
        path: path.to_owned(),
        source,
    };
    let mut source = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_RULES_BYTES + 1).read_to_string(&mut source))
        .map_err(io)?;
    if source.len() as u64 > MAX_RULES_BYTES {
        return Err(RulesError::TooLarge {
            path: path.to_owned(),
        });
    }
    crate::compile(&source)
        .map(|checked| checked.policy)
        .map_err(|e| RulesError::Check(e.in_file(path.display().to_string()).to_string()))
}

impl Rules {
    /// Load the rules file; it must check.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        Ok(Rules {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(load_policy(path)?)),
        })
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&guard)
    }

    /// Check the file again and, when it checks, put it in force; returns its version.
    /// Blocking, like [`Rules::check_file`].
    pub fn reload(&self) -> Result<String, RulesError> {
        Ok(self.install(self.check_file()?))
    }

    /// Read and check the file (blocking), without putting it in force.
    pub fn check_file(&self) -> Result<Policy, RulesError> {
        load_policy(&self.path)
    }

    /// Put a checked policy in force; returns its version.
    pub fn install(&self, policy: Policy) -> String {
        let policy = Arc::new(policy);
        let version = policy.version.clone();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = policy;
        version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_file_over_the_limit_is_refused_before_it_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.rules");
        let line = "# a comment line of a rules file far too long to be checked at reload\n";
        let lines = usize::try_from(MAX_RULES_BYTES).unwrap() / line.len() + 1;
        std::fs::write(&path, line.repeat(lines)).unwrap();
        let refused = load_policy(&path).unwrap_err();
        assert!(matches!(refused, RulesError::TooLarge { .. }), "{refused}");
        assert!(refused.to_string().contains("1048576 bytes"), "{refused}");
    }
}
