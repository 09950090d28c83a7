//! One audit entry: its fields, its hash, and the checks that a written line is intact.

use super::canonical::{canonical_json, sha256_hex};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An audit entry before sealing: the hash of a line is the SHA-256 of this, in canonical form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry<E> {
    /// Gap-free sequence number, starting at 1 (so it equals the line number).
    pub seq: u64,
    /// The previous entry's `hash` (the genesis value for the first entry).
    pub prev: String,
    /// When the step was recorded.
    pub at: Timestamp,
    /// The step's unique id: a step id is never written twice.
    pub step: String,
    /// What happened.
    pub event: E,
}

/// A sealed entry, as one line of the log: the entry plus its own hash.
#[derive(Serialize)]
struct Sealed<'a, E> {
    #[serde(flatten)]
    entry: &'a Entry<E>,
    hash: &'a str,
}

impl<E: Serialize> Entry<E> {
    /// The hex SHA-256 of the entry's canonical form (without the `hash` field).
    pub fn hash(&self) -> Result<String, serde_json::Error> {
        Ok(sha256_hex(canonical_json(self)?.as_bytes()))
    }

    /// The log line (canonical JSON, no newline) and the entry's hash.
    pub fn seal(&self) -> Result<(String, String), serde_json::Error> {
        let hash = self.hash()?;
        let line = canonical_json(&Sealed {
            entry: self,
            hash: &hash,
        })?;
        Ok((line, hash))
    }
}

/// What is wrong with one line of the log, on its own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line is not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// A field is absent or of the wrong type.
    #[error("not an audit entry: {0}")]
    NotEntry(String),
    /// The `hash` field is absent or not a string.
    #[error("no `hash` field")]
    NoHash,
    /// The line's bytes are not the canonical form of its content (it was edited by hand).
    #[error("not in canonical form (the line was altered)")]
    NotCanonical,
    /// The recorded hash is not the hash of the content.
    #[error("content does not match its hash (recorded {recorded}, computed {computed})")]
    HashMismatch {
        /// The `hash` field.
        recorded: String,
        /// The hash of the line's content.
        computed: String,
    },
}

/// A line that passed its own checks: the entry and its verified hash.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedLine {
    /// The entry, with the event left as JSON.
    pub entry: Entry<Value>,
    /// The entry's hash (recorded and recomputed alike).
    pub hash: String,
}

/// Parse one line and check it is canonical and matches its own hash. The chain (`prev`,
/// `seq`) is checked by the caller, which knows the neighbours.
pub fn check_line(line: &str) -> Result<CheckedLine, LineError> {
    let value: Value = serde_json::from_str(line).map_err(|e| LineError::NotJson(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(LineError::NotJson("not an object".into()));
    };
    let canonical = canonical_json(&fields).map_err(|e| LineError::NotJson(e.to_string()))?;
    let recorded = match fields.remove("hash") {
        Some(Value::String(hash)) => hash,
        _ => return Err(LineError::NoHash),
    };
    let entry: Entry<Value> = serde_json::from_value(Value::Object(fields))
        .map_err(|e| LineError::NotEntry(e.to_string()))?;
    if canonical != line {
        return Err(LineError::NotCanonical);
    }
    let computed = entry
        .hash()
        .map_err(|e| LineError::NotEntry(e.to_string()))?;
    if computed != recorded {
        return Err(LineError::HashMismatch { recorded, computed });
    }
    Ok(CheckedLine {
        entry,
        hash: computed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::canonical::GENESIS;

    fn entry() -> Entry<Value> {
        Entry {
            seq: 1,
            prev: GENESIS.into(),
            at: "2026-03-29T01:30:00Z".parse().unwrap(),
            step: "r1/1".into(),
            event: serde_json::json!({"kind": "decided", "rule": "ready"}),
        }
    }

    #[test]
    fn a_sealed_line_checks_and_round_trips() {
        let (line, hash) = entry().seal().unwrap();
        assert!(line.starts_with(r#"{"at":"2026-03-29T01:30:00Z","event":{"#));
        let checked = check_line(&line).unwrap();
        assert_eq!(checked.entry, entry());
        assert_eq!(checked.hash, hash);
    }

    #[test]
    fn altered_lines_are_caught() {
        let (line, _) = entry().seal().unwrap();
        let spaced = line.replacen(":", ": ", 1);
        assert_eq!(check_line(&spaced).unwrap_err(), LineError::NotCanonical);
        let edited = line.replace("ready", "reade");
        assert!(matches!(
            check_line(&edited).unwrap_err(),
            LineError::HashMismatch { .. }
        ));
        assert!(matches!(
            check_line("[1]").unwrap_err(),
            LineError::NotJson(_)
        ));
        assert_eq!(check_line(r#"{"seq":1}"#).unwrap_err(), LineError::NoHash);
    }
}
