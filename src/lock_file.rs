//! An exclusive lock beside a file that one process at a time may write (the store, the audit
//! log): `NAME.lock`, locked with `flock` for as long as the holder lives and holding its pid,
//! so a second process is told who has it. The kernel drops the lock when the holder exits,
//! however it exits, so a crash never leaves a stale lock; the pid is only for the message.
//! A lock just let go can linger for an instant in a child the holder was spawning (the
//! child shares the descriptor until it runs its program), so a busy lock is tried again
//! for up to [`PATIENCE`] before it counts as held.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a busy lock is tried again before it counts as held.
pub const PATIENCE: Duration = Duration::from_secs(1);
/// The pause between tries.
const RETRY: Duration = Duration::from_millis(20);

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "{guarded} is in use by {}: stop that relay first (two writers would corrupt it); \
         the lock is {lock}",
        .pid.map_or_else(|| "another process".to_owned(), |pid| format!("PID {pid}"))
    )]
    InUse {
        /// The file the lock guards.
        guarded: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder's pid, as it wrote it.
        pid: Option<u32>,
    },
    /// The lock file could not be opened, locked or written.
    #[error("{lock}: {source}")]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct LockFile {
    _file: File,
}

/// The lock file guarding `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl LockFile {
    /// Take the exclusive lock guarding `path`, waiting at most [`PATIENCE`].
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let lock = lock_path(path);
        let io = |source| LockError::Io {
            lock: lock.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        let deadline = Instant::now() + PATIENCE;
        let mut locked = file.try_lock();
        while matches!(locked, Err(TryLockError::WouldBlock)) && Instant::now() < deadline {
            std::thread::sleep(RETRY);
            locked = file.try_lock();
        }
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // A pid is a few digits; read no more than that of a file anyone could fill.
                let mut text = String::new();
                let _ = (&file).take(32).read_to_string(&mut text);
                return Err(LockError::InUse {
                    guarded: path.to_owned(),
                    lock: lock.clone(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let guarded = dir.path().join("relay.db");
        let first = LockFile::acquire(&guarded).unwrap();
        let second = LockFile::acquire(&guarded).unwrap_err();
        let message = second.to_string();
        assert!(
            message.contains(&format!("in use by PID {}", std::process::id())),
            "{message}"
        );
        drop(first);
        LockFile::acquire(&guarded).unwrap();
    }
}
