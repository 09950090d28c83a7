//! Verifying a log: every line intact and canonical, sequence numbers gap-free, each `prev`
//! the hash of the line before, no step twice, and the checkpoints (signed, when a public key
//! is given) matching the chain, with none beyond its end (a cut-off tail).

use super::canonical::GENESIS;
use super::checkpoint::{Checkpoint, CheckpointError};
use super::entry::{LineError, check_line};
use ed25519_dalek::VerifyingKey;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Why the log does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The line is damaged on its own.
    #[error("{0}")]
    Line(LineError),
    /// The last line has no newline: a write was cut short.
    #[error("incomplete line (no newline at the end of the file)")]
    Incomplete,
    /// The line is not UTF-8.
    #[error("not UTF-8 text")]
    NotText,
    /// A sequence number is not the one after the previous line's.
    #[error(
        "sequence gap: expected seq {expected}, found {found} (entries are missing or reordered)"
    )]
    SeqGap {
        /// The number that should be here.
        expected: u64,
        /// The number that is.
        found: u64,
    },
    /// `prev` is not the hash of the line before.
    #[error("chain broken: `prev` is {found}, but the previous entry's hash is {expected}")]
    PrevMismatch {
        /// The previous entry's hash.
        expected: String,
        /// The `prev` recorded here.
        found: String,
    },
    /// A step id appears a second time.
    #[error("step {step:?} was already recorded by seq {first}")]
    DuplicateStep {
        /// The step id.
        step: String,
        /// The entry that recorded it first.
        first: u64,
    },
    /// A checkpoint line is malformed or its signature does not verify.
    #[error("{0}")]
    Checkpoint(CheckpointError),
    /// A checkpoint names a hash other than the log's entry at that sequence number.
    #[error("checkpoint for seq {seq} names hash {signed}, but the log's entry has {actual}")]
    CheckpointMismatch {
        /// The checkpoint's sequence number.
        seq: u64,
        /// The hash the checkpoint vouches for.
        signed: String,
        /// The log entry's hash.
        actual: String,
    },
    /// A checkpoint vouches for an entry the log no longer has: the tail was cut off.
    #[error("truncated: a checkpoint vouches for seq {seq}, but the log ends at seq {last}")]
    Truncated {
        /// The checkpoint's sequence number.
        seq: u64,
        /// The log's last sequence number.
        last: u64,
    },
    /// A public key was given but there is no checkpoint file to check it against.
    #[error("no checkpoint file, so the tail cannot be checked with the key")]
    NoCheckpoints,
}

/// The first place the log fails verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {fault}", file.display(), line.map(|n| format!(":{n}")).unwrap_or_default())]
pub struct Break {
    /// The file at fault (the log or its checkpoint file).
    pub file: PathBuf,
    /// The 1-based line, when the fault is in one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub fault: Fault,
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// How many entries the chain holds.
    pub entries: u64,
    /// The last entry's hash (the genesis hash for an empty log).
    pub head: String,
    /// How many checkpoints matched the chain.
    pub checkpoints: usize,
    /// Whether their signatures were checked with a public key.
    pub signed: bool,
}

/// A checkpoint and the line it came from.
struct Pending {
    line: usize,
    checkpoint: Checkpoint,
}

/// Verify the log at `log`, with the checkpoints at `checkpoints` if that file exists (their
/// signatures checked when `key` is given). I/O errors are `Err`; a verdict is `Ok`.
pub fn verify(
    log: &Path,
    checkpoints: &Path,
    key: Option<&VerifyingKey>,
) -> std::io::Result<Result<Verified, Break>> {
    let at = |file: &Path, line: Option<usize>, fault: Fault| Break {
        file: file.to_owned(),
        line,
        fault,
    };
    let mut pending = match read_checkpoints(checkpoints, key)? {
        Ok(Some(pending)) => pending,
        Ok(None) if key.is_some() => return Ok(Err(at(checkpoints, None, Fault::NoCheckpoints))),
        Ok(None) => BTreeMap::new(),
        Err(broken) => return Ok(Err(broken)),
    };
    let total_checkpoints = pending.len();
    let mut reader = BufReader::new(File::open(log)?);
    let mut bytes = Vec::new();
    let (mut last_seq, mut head) = (0_u64, GENESIS.to_owned());
    let mut steps: HashMap<String, u64> = HashMap::new();
    let mut number = 0;
    loop {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        number += 1;
        let here = Some(number);
        if bytes.pop() != Some(b'\n') {
            return Ok(Err(at(log, here, Fault::Incomplete)));
        }
        let Ok(line) = std::str::from_utf8(&bytes) else {
            return Ok(Err(at(log, here, Fault::NotText)));
        };
        let checked = match check_line(line) {
            Ok(checked) => checked,
            Err(fault) => return Ok(Err(at(log, here, Fault::Line(fault)))),
        };
        let entry = checked.entry;
        if entry.seq != last_seq + 1 {
            let fault = Fault::SeqGap {
                expected: last_seq + 1,
                found: entry.seq,
            };
            return Ok(Err(at(log, here, fault)));
        }
        if entry.prev != head {
            let fault = Fault::PrevMismatch {
                expected: head,
                found: entry.prev,
            };
            return Ok(Err(at(log, here, fault)));
        }
        if let Some(&first) = steps.get(&entry.step) {
            let fault = Fault::DuplicateStep {
                step: entry.step,
                first,
            };
            return Ok(Err(at(log, here, fault)));
        }
        if let Some(due) = pending.remove(&entry.seq)
            && due.checkpoint.hash != checked.hash
        {
            let fault = Fault::CheckpointMismatch {
                seq: entry.seq,
                signed: due.checkpoint.hash,
                actual: checked.hash,
            };
            return Ok(Err(at(checkpoints, Some(due.line), fault)));
        }
        steps.insert(entry.step, entry.seq);
        last_seq = entry.seq;
        head = checked.hash;
    }
    if let Some(beyond) = pending.into_values().next() {
        let fault = Fault::Truncated {
            seq: beyond.checkpoint.seq,
            last: last_seq,
        };
        return Ok(Err(at(checkpoints, Some(beyond.line), fault)));
    }
    Ok(Ok(Verified {
        entries: last_seq,
        head,
        checkpoints: total_checkpoints,
        signed: key.is_some(),
    }))
}

/// The checkpoints by sequence number, `None` when there is no checkpoint file.
fn read_checkpoints(
    path: &Path,
    key: Option<&VerifyingKey>,
) -> std::io::Result<Result<Option<BTreeMap<u64, Pending>>, Break>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    let mut pending = BTreeMap::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let line_text = String::from_utf8_lossy(line);
        match Checkpoint::parse(&line_text, key) {
            Ok(checkpoint) => {
                pending.insert(
                    checkpoint.seq,
                    Pending {
                        line: index + 1,
                        checkpoint,
                    },
                );
            }
            Err(fault) => {
                return Ok(Err(Break {
                    file: path.to_owned(),
                    line: Some(index + 1),
                    fault: Fault::Checkpoint(fault),
                }));
            }
        }
    }
    Ok(Ok(Some(pending)))
}
