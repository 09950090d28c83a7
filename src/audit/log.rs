//! The audit log writer: append-only JSON Lines, a gap-free hash chain, each batch synced to
//! disk before `append` returns (so a step counts as done only once it is recorded), and a
//! guard that never writes the same step id twice.

use super::canonical::GENESIS;
use super::checkpoint::{Checkpoint, CheckpointPolicy, Checkpointer, checkpoints_path};
use super::entry::{Entry, LineError, check_line};
use super::tail::read_tail;
use super::verify::{Break, verify};
use crate::lock_file::{LockError, LockFile};
use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// ENOSPC, as a full disk reports it.
const NO_SPACE: i32 = 28;

/// How many recent step ids the writer remembers unless told otherwise. A restart replays
/// at most the steps in flight, which are among the most recent, so a bounded window suffices.
pub const DEFAULT_REMEMBERED_STEPS: usize = 65_536;

/// The log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The log or sidecar file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An event could not be serialised.
    #[error("event could not be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The database holding the log failed.
    #[error("audit log database: {0}")]
    Database(String),
    /// This replica no longer leads, so it may not append (its term is over).
    #[error("audit log: this replica is not the leader (term {0} is over)")]
    Deposed(i64),
    /// The last entry of an existing log is damaged, so the chain cannot be continued.
    #[error("{path}: the last entry is damaged ({reason}); run `publish-guard audit verify`")]
    DamagedTail {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        reason: LineError,
    },
    /// The chain does not verify, so appending would bury the break under new entries.
    #[error(
        "{path}: the chain does not verify ({broken}); nothing is appended to a broken chain. \
         To recover, keep the file as evidence and move it aside (`mv {name} {name}.broken`), \
         then start again: a new chain begins. `publish-guard audit verify` on the old file \
         shows the first bad line",
        name = .path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
    )]
    BrokenChain {
        /// The log file.
        path: PathBuf,
        /// Where it first fails.
        broken: Box<Break>,
    },
    /// Another process has the log open.
    #[error(transparent)]
    Locked(#[from] LockError),
}

/// A switch that makes appends fail as a full disk does (part of the batch written, then
/// ENOSPC): the seam for tests and fire drills. Clones share one switch.
#[derive(Clone, Debug, Default)]
pub struct FullDisk(Arc<AtomicBool>);

impl FullDisk {
    /// From now on, appends fail.
    pub fn fill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// From now on, appends reach the disk again.
    pub fn free(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    fn is_full(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How to open a log.
#[derive(Debug)]
pub struct AuditOptions {
    /// How many recent step ids to remember for the duplicate guard.
    pub remembered_steps: usize,
    /// Sign checkpoints with this key on this schedule, into the sidecar file.
    pub checkpoints: Option<(SigningKey, CheckpointPolicy)>,
    /// Fail appends while this switch is thrown (never, when `None`).
    pub full_disk: Option<FullDisk>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            remembered_steps: DEFAULT_REMEMBERED_STEPS,
            checkpoints: None,
            full_disk: None,
        }
    }
}

/// One step to record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a, E> {
    /// The step's unique id (for example a trigger receipt and the step's number).
    pub step: &'a str,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub event: &'a E,
}

/// What `append` did with one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Written as entry `seq`.
    Written {
        /// Its sequence number.
        seq: u64,
        /// Its hash.
        hash: String,
    },
    /// The step was already recorded as entry `seq`; nothing was written.
    AlreadyWritten {
        /// The sequence number of the earlier entry.
        seq: u64,
    },
}

/// The recent step ids and the entries that recorded them, oldest evicted first.
#[derive(Debug, Default)]
struct RecentSteps {
    seqs: HashMap<String, u64>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentSteps {
    fn get(&self, step: &str) -> Option<u64> {
        self.seqs.get(step).copied()
    }

    /// The remembered steps, newest first.
    fn newest_first(&self) -> impl Iterator<Item = &str> {
        self.order.iter().rev().map(String::as_str)
    }

    fn insert(&mut self, step: String, seq: u64) {
        if self.capacity == 0 || self.seqs.contains_key(&step) {
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seqs.remove(&oldest);
        }
        self.seqs.insert(step.clone(), seq);
        self.order.push_back(step);
    }
}

/// An open audit log, positioned after its last entry.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    len: u64,
    last_seq: u64,
    head_hash: String,
    steps: RecentSteps,
    checkpointer: Option<Checkpointer>,
    full_disk: Option<FullDisk>,
    /// A failed append left bytes past `len` that could not be cut off yet.
    torn: bool,
    /// One writer at a time: a second would fork the chain.
    _lock: LockFile,
}

impl AuditLog {
    /// Open the log at `path`, creating it if absent, and continue its chain. A torn last line
    /// (a write cut short by a crash, hence a step never reported done) is cut off. Refused
    /// while another process has the log open.
    pub fn open(path: &Path, options: AuditOptions) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_owned(),
            source,
        };
        let lock = LockFile::acquire(path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let tail = read_tail(&mut file, options.remembered_steps.max(1)).map_err(io)?;
        file.set_len(tail.complete_len).map_err(io)?;
        file.sync_all().map_err(io)?;
        if tail.complete_len == 0 {
            sync_parent_dir(path).map_err(io)?;
        }
        let mut steps = RecentSteps {
            capacity: options.remembered_steps,
            ..RecentSteps::default()
        };
        let (mut last_seq, mut head_hash) = (0, GENESIS.to_owned());
        let last_index = tail.lines.len().checked_sub(1);
        for (index, line) in tail.lines.iter().enumerate() {
            match check_line(line) {
                Ok(checked) => {
                    steps.insert(checked.entry.step, checked.entry.seq);
                    last_seq = checked.entry.seq;
                    head_hash = checked.hash;
                }
                // Only the last entry must be intact to continue; `verify` judges the rest.
                Err(reason) if Some(index) == last_index => {
                    return Err(AuditError::DamagedTail {
                        path: path.to_owned(),
                        reason,
                    });
                }
                Err(_) => {}
            }
        }
        let checkpointer = match options.checkpoints {
            Some((key, policy)) => {
                let sidecar = checkpoints_path(path);
                Some(Checkpointer::open(&sidecar, key, policy).map_err(|source| {
                    AuditError::Io {
                        path: sidecar,
                        source,
                    }
                })?)
            }
            None => None,
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            len: tail.complete_len,
            last_seq,
            head_hash,
            steps,
            checkpointer,
            full_disk: options.full_disk,
            torn: false,
            _lock: lock,
        })
    }

    /// Open the log as [`AuditLog::open`] does, then verify its whole chain: the relay
    /// never appends to a chain that does not verify.
    pub fn open_verified(path: &Path, options: AuditOptions) -> Result<Self, AuditError> {
        let log = Self::open(path, options)?;
        match verify(path, &checkpoints_path(path), None) {
            Ok(Ok(_)) => Ok(log),
            Ok(Err(broken)) => Err(AuditError::BrokenChain {
                path: path.to_owned(),
                broken: Box::new(broken),
            }),
            Err(source) => Err(AuditError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The sequence number and hash of the last entry (0 and the genesis hash when empty).
    pub fn head(&self) -> (u64, &str) {
        (self.last_seq, &self.head_hash)
    }

    /// The entry that recorded `step`, if it is among the remembered recent steps.
    pub fn recorded(&self, step: &str) -> Option<u64> {
        self.steps.get(step)
    }

    /// The remembered recent step ids, newest first.
    pub fn recent_steps(&self) -> impl Iterator<Item = &str> {
        self.steps.newest_first()
    }

    /// Record one step; see [`AuditLog::append_batch`].
    pub fn append<E: Serialize>(
        &mut self,
        step: &str,
        at: Timestamp,
        event: &E,
    ) -> Result<Appended, AuditError> {
        let mut done = self.append_batch(&[Record { step, at, event }])?;
        done.pop()
            .ok_or_else(|| AuditError::Serialize(serde::ser::Error::custom("nothing appended")))
    }

    /// Record several steps with one write and one sync. When this returns `Ok`, every new
    /// entry is on disk; steps already recorded are reported and not written again.
    pub fn append_batch<E: Serialize>(
        &mut self,
        records: &[Record<'_, E>],
    ) -> Result<Vec<Appended>, AuditError> {
        let steps = &self.steps;
        let sealed = seal_batch(records, (self.last_seq, &self.head_hash), |step| {
            steps.get(step)
        })?;
        let Some(head_at) = sealed.head_at else {
            return Ok(sealed.outcomes);
        };
        let mut text = String::new();
        for entry in &sealed.entries {
            text.push_str(&entry.line);
            text.push('\n');
        }
        self.write_durably(text.as_bytes())?;
        self.last_seq = sealed.head.0;
        self.head_hash = sealed.head.1;
        for entry in sealed.entries {
            self.steps.insert(entry.step, entry.seq);
        }
        if let Some(checkpointer) = &mut self.checkpointer {
            let head = Checkpoint {
                seq: self.last_seq,
                hash: self.head_hash.clone(),
                at: head_at,
            };
            checkpointer
                .after_append(&head)
                .map_err(|source| AuditError::Io {
                    path: checkpoints_path(&self.path),
                    source,
                })?;
        }
        Ok(sealed.outcomes)
    }

    /// Write and sync; on failure cut the file back so no partial line stays in the chain
    /// (and, should that fail too, before the next write), so a retry appends whole lines.
    fn write_durably(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        if self.torn {
            self.file.set_len(self.len).map_err(io)?;
            self.torn = false;
        }
        let written = match &self.full_disk {
            Some(disk) if disk.is_full() => self
                .file
                .write_all(&bytes[..bytes.len() / 2])
                .and_then(|()| Err(std::io::Error::from_raw_os_error(NO_SPACE))),
            _ => self
                .file
                .write_all(bytes)
                .and_then(|()| self.file.sync_data()),
        };
        match written {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(source) => {
                self.torn = self.file.set_len(self.len).is_err();
                Err(io(source))
            }
        }
    }
}

/// One entry sealed for the chain, not yet written.
#[derive(Debug)]
pub(crate) struct SealedEntry {
    /// Its sequence number.
    pub seq: u64,
    /// Its step id.
    pub step: String,
    /// Its JSON line, without the newline.
    pub line: String,
    /// Its hash (the database log stores it beside the line).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub hash: String,
}

/// A batch sealed after a head: the entries to write, each record's outcome, the new head.
#[derive(Debug)]
pub(crate) struct SealedBatch {
    /// The new entries, in order.
    pub entries: Vec<SealedEntry>,
    /// What happens to each record.
    pub outcomes: Vec<Appended>,
    /// The head after the batch: sequence number and hash.
    pub head: (u64, String),
    /// When the last new entry happened; `None` when nothing is new.
    pub head_at: Option<Timestamp>,
}

/// Chain `records` after `head` (sequence number and hash), skipping steps `recorded` knows
/// and steps repeated within the batch. Every log backend seals this way.
pub(crate) fn seal_batch<E: Serialize>(
    records: &[Record<'_, E>],
    head: (u64, &str),
    recorded: impl Fn(&str) -> Option<u64>,
) -> Result<SealedBatch, serde_json::Error> {
    let (mut seq, mut prev) = (head.0, head.1.to_owned());
    let mut entries: Vec<SealedEntry> = Vec::new();
    let mut outcomes = Vec::with_capacity(records.len());
    let mut head_at = None;
    for record in records {
        let earlier = recorded(record.step).or_else(|| {
            entries
                .iter()
                .find(|entry| entry.step == record.step)
                .map(|entry| entry.seq)
        });
        if let Some(seq) = earlier {
            outcomes.push(Appended::AlreadyWritten { seq });
            continue;
        }
        seq += 1;
        let entry = Entry {
            seq,
            prev,
            at: record.at,
            step: record.step.to_owned(),
            event: record.event,
        };
        let (line, hash) = entry.seal()?;
        outcomes.push(Appended::Written {
            seq,
            hash: hash.clone(),
        });
        entries.push(SealedEntry {
            seq,
            step: entry.step,
            line,
            hash: hash.clone(),
        });
        prev = hash;
        head_at = Some(record.at);
    }
    Ok(SealedBatch {
        entries,
        outcomes,
        head: (seq, prev),
        head_at,
    })
}

/// Make a newly created file's directory entry durable too.
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}
