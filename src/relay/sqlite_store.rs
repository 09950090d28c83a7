//! The embedded store: one SQLite file in WAL mode, written by one thread that commits many
//! operations per transaction (group commit). Each caller is answered only after the commit
//! that holds its operation, so a `202 Accepted` is never sent for a webhook that is not on
//! disk, while one fsync is shared by every webhook that arrived during the previous one.
//!
//! `synchronous=FULL`: in WAL mode this syncs the log at every commit, so an acknowledged
//! webhook survives power loss and OS crashes, not only a killed process (`NORMAL` may lose
//! the last commits then). Group commit makes that one fsync per batch, not per webhook.
//!
//! Reads go to a second, read-only connection on their own thread: WAL lets it read the last
//! commit while the writer writes, so a worker reading a large backlog never holds up the
//! commit a `202` is waiting for.

use super::mapping::ScheduleTarget;
use super::store::{
    Acceptance, NewTrigger, Progress, Receipt, StoreError, StoreFuture, StoreStats, StoredTrigger,
    TriggerNote, TriggerStatus, TriggerStore, new_receipt_id,
};
use crate::group_commit::GroupCommit;
use crate::lock_file::LockFile;
use crate::runner::EarlierWrite;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// The most operations committed in one transaction.
const MAX_BATCH: usize = 1024;
/// How many operations may wait for the writer before callers wait to enqueue.
const QUEUE: usize = 16 * 1024;

/// The schema's version, kept in SQLite's `user_version`. 1: the schedule target as JSON in
/// `schedule`, the worker's note as free text in `progress`; 2: the target in three columns,
/// the note as a tagged [`TriggerNote`].
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE triggers (
    seq           INTEGER PRIMARY KEY,
    receipt       TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    body_hash     TEXT NOT NULL,
    business_unit TEXT NOT NULL,
    week          TEXT NOT NULL,
    schedule_id   TEXT NOT NULL,
    event         TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    note          TEXT,
    due_at        INTEGER
);
CREATE INDEX triggers_unfinished
    ON triggers (seq) WHERE status IN ('pending', 'running');
CREATE TABLE deliveries (
    source      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    body_hash   TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source, delivery_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_received ON deliveries (received_at);
PRAGMA user_version = 2;
";

/// Version 1 to 2: the target's columns and the note's are filled in row by row (see
/// [`migrate_row`]), then the old columns go.
const MIGRATE_1_TO_2: &str = "
ALTER TABLE triggers ADD COLUMN business_unit TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN week TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN schedule_id TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN note TEXT;
";

const TRIGGER_COLUMNS: &str = "receipt, received_at, source, delivery_id, body_hash, \
                               business_unit, week, schedule_id, event, status, note, due_at";

/// What a job reports once the commit that holds it has succeeded or failed.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One operation for the writer: run inside the open transaction, or told why it cannot be.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) -> Completion + Send>;
/// One query for the reader, which answers its caller itself.
type Read = Box<dyn FnOnce(&Connection) + Send>;

/// The SQLite store. Dropping it lets the writer and the reader finish what is queued, then
/// stops them.
#[derive(Debug)]
pub struct SqliteStore {
    writer: GroupCommit<Job>,
    reader: GroupCommit<Read>,
    commits: Arc<AtomicU64>,
    /// One relay at a time: a second writer would interleave its triggers with ours.
    _lock: LockFile,
}

fn db(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

impl SqliteStore {
    /// Open (or create) the store at `path` and start its writer thread; refused while
    /// another process has it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let lock = LockFile::acquire(path).map_err(|e| StoreError::InUse(e.to_string()))?;
        let connection = connect(path)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "{}: WAL mode unavailable (journal_mode is {mode})",
                path.display()
            )));
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        prepare_schema(&connection, path)?;
        // Opened once the schema exists; it can only read.
        let reading = connect(path)?;
        reading
            .pragma_update(None, "query_only", true)
            .map_err(db)?;
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        let writer = GroupCommit::start("store-writer", QUEUE, MAX_BATCH, move |batch| {
            commit_batch(&connection, batch, &counter);
        })
        .map_err(|e| StoreError::Database(format!("cannot start the writer: {e}")))?;
        let reader =
            GroupCommit::start("store-reader", QUEUE, MAX_BATCH, move |batch: Vec<Read>| {
                for read in batch {
                    read(&reading);
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the reader: {e}")))?;
        Ok(Self {
            writer,
            reader,
            commits,
            _lock: lock,
        })
    }

    /// How many transactions the writer has committed (fewer than operations under load).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queue `work` for the next transaction; resolve once that transaction has committed.
    fn submit<T, F>(&self, work: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let result = connection.and_then(|c| in_savepoint(c, work));
            Box::new(move |committed| {
                // The caller may have gone away; the work is committed all the same.
                let _ = reply.send(committed.and(result));
            })
        });
        Box::pin(async move {
            self.writer
                .submit(job)
                .await
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    /// Run `query` on the reader's connection: it sees every commit made before it starts.
    fn read<T, F>(&self, query: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let read: Read = Box::new(move |connection| {
            // The caller may have gone away; nothing was changed.
            let _ = reply.send(query(connection));
        });
        Box::pin(async move {
            self.reader
                .submit(read)
                .await
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }
}

/// Create the schema in a new file, migrate an older one, refuse a newer one.
fn prepare_schema(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(db)?;
    match version {
        0 => connection
            .execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
            .map_err(db),
        1 => migrate_1_to_2(connection),
        SCHEMA_VERSION => Ok(()),
        newer => Err(StoreError::Database(format!(
            "{}: schema version {newer} is newer than this build's ({SCHEMA_VERSION})",
            path.display()
        ))),
    }
}

/// Migrate a version 1 file in one transaction: a crash leaves it at version 1.
fn migrate_1_to_2(connection: &Connection) -> Result<(), StoreError> {
    connection.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
    let migrated = (|| {
        connection.execute_batch(MIGRATE_1_TO_2).map_err(db)?;
        let rows: Vec<(i64, String, String, Option<String>)> = {
            let mut query = connection
                .prepare("SELECT seq, status, schedule, progress FROM triggers")
                .map_err(db)?;
            query
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .and_then(Iterator::collect)
                .map_err(db)?
        };
        let mut update = connection
            .prepare(
                "UPDATE triggers SET business_unit = ?2, week = ?3, schedule_id = ?4, \
                 status = ?5, note = ?6 WHERE seq = ?1",
            )
            .map_err(db)?;
        for (seq, status, schedule, progress) in rows {
            let (target, status, note) = migrate_row(&status, &schedule, progress)?;
            update
                .execute(params![
                    seq,
                    target.business_unit,
                    target.week,
                    target.schedule_id,
                    status.as_str(),
                    TriggerNote::encode(note.as_ref())?
                ])
                .map_err(db)?;
        }
        connection
            .execute_batch(
                "ALTER TABLE triggers DROP COLUMN schedule; \
                 ALTER TABLE triggers DROP COLUMN progress; \
                 PRAGMA user_version = 2;",
            )
            .map_err(db)
    })();
    match migrated {
        Ok(()) => connection.execute_batch("COMMIT").map_err(db),
        Err(error) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

/// A version 1 row's target, status and note. Version 1 notes were `deferred`, a publishing
/// note as JSON, or a failure's reason. An unfinished trigger whose target cannot be read
/// fails here, as the worker would have failed it.
fn migrate_row(
    status: &str,
    schedule: &str,
    progress: Option<String>,
) -> Result<(ScheduleTarget, TriggerStatus, Option<TriggerNote>), StoreError> {
    /// Version 1's publishing note.
    #[derive(serde::Deserialize)]
    struct PublishingV1 {
        publishing: EarlierWrite,
    }
    let status = TriggerStatus::parse(status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?;
    let note = progress.map(|text| match text.as_str() {
        "deferred" => TriggerNote::Deferred,
        _ => match serde_json::from_str::<PublishingV1>(&text) {
            Ok(PublishingV1 { publishing }) => TriggerNote::Publishing { write: publishing },
            Err(_) => TriggerNote::Failed { reason: text },
        },
    });
    Ok(match serde_json::from_str::<ScheduleTarget>(schedule) {
        Ok(target) => (target, status, note),
        Err(e) => {
            let unreadable = ScheduleTarget {
                business_unit: String::new(),
                week: String::new(),
                schedule_id: String::new(),
            };
            if status.is_finished() {
                (unreadable, status, note)
            } else {
                let reason = format!("the stored schedule {schedule:?} is unreadable: {e}");
                let failed = TriggerNote::Failed { reason };
                (unreadable, TriggerStatus::Failed, Some(failed))
            }
        }
    })
}

/// A connection to `path` that waits out another's lock instead of failing at once.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(db)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(db)?;
    Ok(connection)
}

/// Run one job inside a savepoint, so a failed job leaves nothing behind in the batch.
fn in_savepoint<T>(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let run = |sql: &str| {
        connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map_err(db)
    };
    run("SAVEPOINT job")?;
    let result = work(connection);
    if result.is_err() {
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job")?;
    result
}

/// Run a batch in one transaction, commit, then answer every caller in it.
fn commit_batch(connection: &Connection, batch: Vec<Job>, commits: &AtomicU64) {
    let began = connection.execute_batch("BEGIN IMMEDIATE").map_err(db);
    let completions: Vec<Completion> = batch
        .into_iter()
        .map(|job| job(began.clone().map(|()| connection)))
        .collect();
    let committed = began.and_then(|()| connection.execute_batch("COMMIT").map_err(db));
    if committed.is_err() {
        // Leave no half-open transaction for the next batch.
        let _ = connection.execute_batch("ROLLBACK");
    } else {
        commits.fetch_add(1, Ordering::Relaxed);
    }
    for completion in completions {
        completion(committed.clone());
    }
}

fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

use super::store::instant_of_micros as instant;

fn accept(connection: &Connection, trigger: NewTrigger) -> Result<Acceptance, StoreError> {
    let seen: Option<(String, String, i64)> = connection
        .prepare_cached(
            "SELECT body_hash, receipt, received_at FROM deliveries \
             WHERE source = ?1 AND delivery_id = ?2",
        )
        .and_then(|mut query| {
            query
                .query_row(params![trigger.source, trigger.delivery_id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
        })
        .map_err(db)?;
    if let Some((body_hash, id, received_at)) = seen {
        return Ok(if body_hash == trigger.body_hash {
            Acceptance::Repeat(Receipt {
                id,
                received_at: instant(received_at)?,
            })
        } else {
            Acceptance::Conflict
        });
    }
    let id = new_receipt_id();
    let received_at = micros(trigger.received_at);
    connection
        .prepare_cached(
            "INSERT INTO triggers (receipt, source, delivery_id, body_hash, business_unit, \
             week, schedule_id, event, received_at, status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending')",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                id,
                trigger.source,
                trigger.delivery_id,
                trigger.body_hash,
                trigger.target.business_unit,
                trigger.target.week,
                trigger.target.schedule_id,
                trigger.event,
                received_at
            ])
        })
        .map_err(db)?;
    connection
        .prepare_cached(
            "INSERT INTO deliveries (source, delivery_id, body_hash, receipt, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                trigger.source,
                trigger.delivery_id,
                trigger.body_hash,
                id,
                received_at
            ])
        })
        .map_err(db)?;
    Ok(Acceptance::Accepted(Receipt {
        id,
        received_at: instant(received_at)?,
    }))
}

fn record(connection: &Connection, receipt: &str, progress: Progress) -> Result<(), StoreError> {
    let status: Option<String> = connection
        .query_row(
            "SELECT status FROM triggers WHERE receipt = ?1",
            [receipt],
            |row| row.get(0),
        )
        .optional()
        .map_err(db)?;
    let status = status.ok_or_else(|| StoreError::UnknownReceipt(receipt.to_owned()))?;
    if TriggerStatus::parse(&status).is_none_or(TriggerStatus::is_finished) {
        return Err(StoreError::Finished(receipt.to_owned()));
    }
    let note = TriggerNote::encode(progress.note.as_ref())?;
    connection
        .prepare_cached(
            "UPDATE triggers SET status = ?2, note = ?3, due_at = ?4 WHERE receipt = ?1",
        )
        .and_then(|mut update| {
            update.execute(params![
                receipt,
                progress.status.as_str(),
                note,
                progress.due_at.map(micros)
            ])
        })
        .map_err(db)?;
    Ok(())
}

/// A `triggers` row read with [`TRIGGER_COLUMNS`].
fn trigger_from_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredTrigger, StoreError>> {
    let received_at: i64 = row.get(1)?;
    let status: String = row.get(9)?;
    let note: Option<String> = row.get(10)?;
    let due_at: Option<i64> = row.get(11)?;
    let (id, source, delivery_id, body_hash, event) = (
        row.get(0)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(8)?,
    );
    let target = ScheduleTarget {
        business_unit: row.get(5)?,
        week: row.get(6)?,
        schedule_id: row.get(7)?,
    };
    Ok((|| {
        Ok(StoredTrigger {
            receipt: Receipt {
                id,
                received_at: instant(received_at)?,
            },
            source,
            delivery_id,
            body_hash,
            target,
            event,
            status: TriggerStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?,
            note: TriggerNote::decode(note)?,
            due_at: due_at.map(instant).transpose()?,
        })
    })())
}

fn select_triggers(
    connection: &Connection,
    condition: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredTrigger>, StoreError> {
    let sql = format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE {condition} ORDER BY seq");
    let mut query = connection.prepare_cached(&sql).map_err(db)?;
    let rows = query.query_map(args, trigger_from_row).map_err(db)?;
    let mut triggers = Vec::new();
    for row in rows {
        triggers.push(row.map_err(db)??);
    }
    Ok(triggers)
}

fn stats(connection: &Connection) -> Result<StoreStats, StoreError> {
    connection
        .query_row(
            "SELECT count(*) FILTER (WHERE status = 'pending'), \
                    count(*) FILTER (WHERE status = 'running'), \
                    min(received_at) \
             FROM triggers WHERE status IN ('pending', 'running')",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                ))
            },
        )
        .map_err(db)
        .and_then(|(pending, running, oldest)| {
            Ok(StoreStats {
                pending: u64::try_from(pending).unwrap_or(0),
                running: u64::try_from(running).unwrap_or(0),
                oldest_unfinished: oldest.map(instant).transpose()?,
            })
        })
}

impl TriggerStore for SqliteStore {
    fn accept(&self, trigger: NewTrigger) -> StoreFuture<'_, Acceptance> {
        self.submit(move |connection| accept(connection, trigger))
    }

    fn record(&self, receipt: &str, progress: Progress) -> StoreFuture<'_, ()> {
        let receipt = receipt.to_owned();
        self.submit(move |connection| record(connection, &receipt, progress))
    }

    fn get(&self, receipt: &str) -> StoreFuture<'_, Option<StoredTrigger>> {
        let receipt = receipt.to_owned();
        self.read(move |connection| {
            Ok(select_triggers(connection, "receipt = ?1", [receipt])?
                .into_iter()
                .next())
        })
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<StoredTrigger>> {
        self.read(|connection| select_triggers(connection, "status IN ('pending', 'running')", []))
    }

    fn unfinished_after(&self, after: &str) -> StoreFuture<'_, Vec<StoredTrigger>> {
        let after = after.to_owned();
        self.read(move |connection| {
            let seq: Option<i64> = connection
                .prepare_cached("SELECT seq FROM triggers WHERE receipt = ?1")
                .and_then(|mut query| query.query_row([&after], |row| row.get(0)).optional())
                .map_err(db)?;
            let seq = seq.ok_or(StoreError::UnknownReceipt(after))?;
            select_triggers(
                connection,
                "status IN ('pending', 'running') AND seq > ?1",
                [seq],
            )
        })
    }

    fn forget_deliveries_before(&self, cutoff: Timestamp) -> StoreFuture<'_, u64> {
        self.submit(move |connection| {
            let forgotten = connection
                .execute(
                    "DELETE FROM deliveries WHERE received_at < ?1",
                    [micros(cutoff)],
                )
                .map_err(db)?;
            Ok(u64::try_from(forgotten).unwrap_or(u64::MAX))
        })
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        self.read(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(delivery_id: &str) -> NewTrigger {
        NewTrigger {
            source: "servicenow".into(),
            delivery_id: delivery_id.into(),
            body_hash: "0".repeat(64),
            target: ScheduleTarget {
                business_unit: "bu-1".into(),
                week: "2026-10-19".into(),
                schedule_id: "s-1".into(),
            },
            event: "case.created".into(),
            received_at: Timestamp::UNIX_EPOCH,
        }
    }

    /// Reads do not queue behind writes: with another connection holding the write lock (so
    /// the writer could not begin a transaction), every read still answers at once, from the
    /// last commit.
    #[tokio::test]
    async fn reads_answer_while_the_database_is_locked_for_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let store = SqliteStore::open(&path).unwrap();
        let Acceptance::Accepted(first) = store.accept(trigger("d1")).await.unwrap() else {
            panic!("d1 is new");
        };
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        other
            .execute(
                "INSERT INTO triggers (receipt, source, delivery_id, body_hash, business_unit, \
                 week, schedule_id, event, received_at, status) SELECT 'uncommitted', source, \
                 'd2', body_hash, business_unit, week, schedule_id, event, received_at, status \
                 FROM triggers",
                [],
            )
            .unwrap();

        let stats = store.stats().await.unwrap();
        assert_eq!(stats.pending, 1, "the uncommitted row is not seen");
        let unfinished = store.unfinished().await.unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].receipt, first);
        assert_eq!(store.get(&first.id).await.unwrap().unwrap().receipt, first);
        assert_eq!(store.get("uncommitted").await.unwrap(), None);
        assert_eq!(store.unfinished_after(&first.id).await.unwrap(), vec![]);
        other.execute_batch("ROLLBACK").unwrap();
    }
}
