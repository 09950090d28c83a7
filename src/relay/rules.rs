//! The running policy and its reload: the new file is checked first; a file that does not
//! check leaves the running policy in place and the answer carries its diagnostics. The swap
//! is one pointer store, so a cycle that started keeps the policy it started with.

use crate::policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

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
}

/// The policy in force and the file it is reloaded from.
#[derive(Debug)]
pub struct Rules {
    path: PathBuf,
    current: RwLock<Arc<Policy>>,
}

/// Read and check a rules file.
pub fn load_policy(path: &Path) -> Result<Policy, RulesError> {
    let source = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
        path: path.to_owned(),
        source,
    })?;
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
    pub fn reload(&self) -> Result<String, RulesError> {
        let policy = Arc::new(load_policy(&self.path)?);
        let version = policy.version.clone();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = policy;
        Ok(version)
    }
}
