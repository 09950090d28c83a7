//! Signed checkpoints: every so often an ed25519 signature over the chain head (sequence
//! number and hash), kept in a sidecar file beside the log, as CloudTrail's digest files are.
//! The head's hash covers every entry before it, so a verifier with the public key can tell
//! when entries up to a checkpoint were altered, removed or cut off the tail. Entries after the
//! last checkpoint are protected by the chain alone; ship the sidecar off the machine to keep
//! the checkpoints out of reach of whoever can rewrite the log.

use super::canonical::canonical_json;
use super::tail::read_tail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The sidecar file holding a log's checkpoints: the log's path plus `.checkpoints`.
pub fn checkpoints_path(log: &Path) -> PathBuf {
    let mut path = log.as_os_str().to_owned();
    path.push(".checkpoints");
    PathBuf::from(path)
}

/// A key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The content is not base64 of 32 bytes, or not a valid ed25519 public key.
    #[error("{path}: not an ed25519 key (expected base64 of 32 bytes)")]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
}

fn read_key_bytes(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let malformed = || KeyError::Malformed {
        path: path.to_owned(),
    };
    let bytes = BASE64.decode(text.trim()).map_err(|_| malformed())?;
    bytes.try_into().map_err(|_| malformed())
}

/// Load a signing key: a file holding the base64 of a 32-byte ed25519 seed.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&read_key_bytes(path)?))
}

/// Load a public key: a file holding the base64 of a 32-byte ed25519 public key.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&read_key_bytes(path)?).map_err(|_| KeyError::Malformed {
        path: path.to_owned(),
    })
}

/// The texts of a key pair's two files (secret seed, public key), base64 with a newline.
pub fn key_files_text(key: &SigningKey) -> (String, String) {
    (
        format!("{}\n", BASE64.encode(key.to_bytes())),
        format!("{}\n", BASE64.encode(key.verifying_key().to_bytes())),
    )
}

/// What a checkpoint vouches for: the chain head at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number of the head entry.
    pub seq: u64,
    /// The head entry's hash.
    pub hash: String,
    /// When the checkpoint was made.
    pub at: Timestamp,
}

/// A checkpoint line: the checkpoint and the signature over its canonical form.
#[derive(Serialize, Deserialize)]
struct SignedCheckpoint {
    #[serde(flatten)]
    checkpoint: Checkpoint,
    signature: String,
}

/// What is wrong with a checkpoint line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The line is not a checkpoint.
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    /// The signature does not verify under the given public key.
    #[error("the signature does not verify with the given public key")]
    BadSignature,
}

impl Checkpoint {
    fn message(&self) -> Result<String, serde_json::Error> {
        canonical_json(self)
    }

    /// The signed checkpoint line (canonical JSON, no newline).
    pub fn sign(&self, key: &SigningKey) -> Result<String, serde_json::Error> {
        let signature = key.sign(self.message()?.as_bytes());
        canonical_json(&SignedCheckpoint {
            checkpoint: self.clone(),
            signature: BASE64.encode(signature.to_bytes()),
        })
    }

    /// Parse a checkpoint line, and check its signature when a key is given.
    pub fn parse(line: &str, key: Option<&VerifyingKey>) -> Result<Self, CheckpointError> {
        let signed: SignedCheckpoint =
            serde_json::from_str(line).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        if let Some(key) = key {
            let bytes = BASE64
                .decode(&signed.signature)
                .map_err(|_| CheckpointError::BadSignature)?;
            let signature =
                Signature::from_slice(&bytes).map_err(|_| CheckpointError::BadSignature)?;
            let message = signed
                .checkpoint
                .message()
                .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
            key.verify_strict(message.as_bytes(), &signature)
                .map_err(|_| CheckpointError::BadSignature)?;
        }
        Ok(signed.checkpoint)
    }
}

/// When to write a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// After this many entries since the last checkpoint.
    pub every_entries: u64,
    /// Or once this much time has passed since the last one (by the entries' clock).
    pub every: Option<SignedDuration>,
}

/// Writes signed checkpoints to a log's sidecar file when the policy says one is due.
pub struct Checkpointer {
    key: SigningKey,
    policy: CheckpointPolicy,
    file: File,
    last_seq: u64,
    last_at: Option<Timestamp>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("policy", &self.policy)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Open (or create) the sidecar at `path`, continuing after its last checkpoint. A torn
    /// last line is cut off; an unreadable last line starts the schedule afresh.
    pub fn open(path: &Path, key: SigningKey, policy: CheckpointPolicy) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let tail = read_tail(&mut file, 1)?;
        file.set_len(tail.complete_len)?;
        let last = tail
            .lines
            .last()
            .and_then(|line| Checkpoint::parse(line, None).ok());
        Ok(Self {
            key,
            policy,
            file,
            last_seq: last.as_ref().map_or(0, |c| c.seq),
            last_at: last.map(|c| c.at),
        })
    }

    /// Called after entries up to `head` are durable: write and sync a checkpoint if one is due.
    pub fn after_append(&mut self, head: &Checkpoint) -> std::io::Result<bool> {
        let last_at = *self.last_at.get_or_insert(head.at);
        let by_count = head.seq >= self.last_seq.saturating_add(self.policy.every_entries);
        let by_time = self.policy.every.is_some_and(|every| {
            head.seq > self.last_seq && head.at.duration_since(last_at) >= every
        });
        if !(by_count || by_time) {
            return Ok(false);
        }
        let line = head.sign(&self.key).map_err(std::io::Error::other)?;
        self.file.write_all(format!("{line}\n").as_bytes())?;
        self.file.sync_data()?;
        self.last_seq = head.seq;
        self.last_at = Some(head.at);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            seq: 100,
            hash: "ab".repeat(32),
            at: "2026-10-25T01:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_only_unaltered_and_with_its_key() {
        let line = checkpoint().sign(&key()).unwrap();
        let public = key().verifying_key();
        assert_eq!(
            Checkpoint::parse(&line, Some(&public)).unwrap(),
            checkpoint()
        );
        let moved = line.replace("\"seq\":100", "\"seq\":99");
        assert_eq!(
            Checkpoint::parse(&moved, Some(&public)).unwrap_err(),
            CheckpointError::BadSignature
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(
            Checkpoint::parse(&line, Some(&other)).unwrap_err(),
            CheckpointError::BadSignature
        );
        // Without a key only the form is checked.
        assert_eq!(Checkpoint::parse(&moved, None).unwrap().seq, 99);
    }

    #[test]
    fn key_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = key_files_text(&key());
        std::fs::write(dir.path().join("k"), secret).unwrap();
        std::fs::write(dir.path().join("k.pub"), public).unwrap();
        let loaded = load_signing_key(&dir.path().join("k")).unwrap();
        assert_eq!(loaded.to_bytes(), key().to_bytes());
        let public = load_verifying_key(&dir.path().join("k.pub")).unwrap();
        assert_eq!(public, key().verifying_key());
        std::fs::write(dir.path().join("bad"), "not a key").unwrap();
        assert!(matches!(
            load_verifying_key(&dir.path().join("bad")),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn checkpoints_fall_due_by_count_and_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.checkpoints");
        let policy = CheckpointPolicy {
            every_entries: 3,
            every: Some(SignedDuration::from_hours(1)),
        };
        let mut writer = Checkpointer::open(&path, key(), policy).unwrap();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let head = |seq: u64, minutes: i64| Checkpoint {
            seq,
            hash: format!("{seq:064}"),
            at: t0 + SignedDuration::from_mins(minutes),
        };
        let due: Vec<bool> = [(1, 0), (2, 1), (3, 2), (4, 3), (5, 70), (6, 71)]
            .iter()
            .map(|&(seq, min)| writer.after_append(&head(seq, min)).unwrap())
            .collect();
        assert_eq!(due, [false, false, true, false, true, false]);
        drop(writer);
        // Reopening continues the count from the last checkpoint (seq 5).
        let mut reopened = Checkpointer::open(&path, key(), policy).unwrap();
        assert!(!reopened.after_append(&head(7, 72)).unwrap());
        assert!(reopened.after_append(&head(8, 73)).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| {
                Checkpoint::parse(l, Some(&key().verifying_key()))
                    .unwrap()
                    .seq
            })
            .collect();
        assert_eq!(seqs, [3, 5, 8]);
    }
}
