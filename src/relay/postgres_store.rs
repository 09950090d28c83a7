//! The store several replicas share, on PostgreSQL. Every replica accepts webhooks: a delivery
//! is deduplicated by the `deliveries` primary key in the statement that stores it (`INSERT ...
//! ON CONFLICT DO NOTHING`, never a read then a write), so the same delivery sent to two
//! replicas at once is stored once and both answer with its receipt. Each accept commits
//! before its `202`; PostgreSQL groups the commits of concurrent connections into one WAL
//! flush.
//!
//! Only the leader records progress and takes triggers, and each of those writes is fenced by
//! its term (see [`crate::pg::fence`]): a deposed leader's late write is refused with
//! [`StoreError::Deposed`]. The leader takes triggers by claiming them with its term, so a
//! trigger that commits late (its `seq` below one already taken) is still taken.

use super::mapping::ScheduleTarget;
use super::store::{
    Acceptance, NewTrigger, Progress, Receipt, StoreError, StoreFuture, StoreStats, StoredTrigger,
    TriggerNote, TriggerStatus, TriggerStore, new_receipt_id,
};
use crate::pg::{PgError, Term, connect, fence, prepare_schema};
use jiff::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use tokio::sync::Mutex;
use tokio_postgres::{Client, Row};

/// Connections per replica: concurrent webhooks commit on several at once.
const CONNECTIONS: usize = 8;

const TRIGGER_COLUMNS: &str = "seq, receipt, received_at, source, delivery_id, body_hash, \
                               business_unit, week, schedule_id, event, status, note, due_at";

fn db(error: tokio_postgres::Error) -> StoreError {
    StoreError::Database(PgError::from(error).to_string())
}

/// The PostgreSQL store of one replica.
#[derive(Debug)]
pub struct PostgresStore {
    url: String,
    connections: Vec<Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
    /// The term this replica leads in; 0 while it follows.
    term: AtomicI64,
}

impl PostgresStore {
    /// Connect to `url`, creating the schema if the database has none.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut first = connect(url).await.map_err(pg)?;
        prepare_schema(&mut first).await.map_err(pg)?;
        let mut connections = vec![Mutex::new(Some(Arc::new(first)))];
        connections.extend((1..CONNECTIONS).map(|_| Mutex::new(None)));
        Ok(Self {
            url: url.to_owned(),
            connections,
            next: AtomicUsize::new(0),
            term: AtomicI64::new(0),
        })
    }

    /// Lead in `term` from now on (`None`: follow). Leader writes carry it.
    pub fn set_term(&self, term: Option<Term>) {
        self.term.store(term.unwrap_or(0), Ordering::Release);
    }

    /// The term leader writes carry (0 when following).
    fn term(&self) -> Term {
        self.term.load(Ordering::Acquire)
    }

    /// A connection, round robin; a closed one is replaced.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let mut slot = self.connections[index].lock().await;
        match &*slot {
            Some(client) if !client.is_closed() => Ok(Arc::clone(client)),
            _ => {
                let client = Arc::new(connect(&self.url).await.map_err(pg)?);
                *slot = Some(Arc::clone(&client));
                Ok(client)
            }
        }
    }

    /// Claim for this term the unfinished triggers `condition` selects, and return them oldest
    /// first.
    async fn claim(&self, condition: &str) -> Result<Vec<StoredTrigger>, StoreError> {
        let term = self.term();
        let client = self.client().await?;
        let sql = format!(
            "WITH {fence} UPDATE triggers SET claimed_term = $1 FROM fence \
             WHERE status IN ('pending', 'running') AND {condition} RETURNING {TRIGGER_COLUMNS}",
            fence = fence(1)
        );
        let rows = client.query(&sql, &[&term]).await.map_err(db)?;
        if rows.is_empty()
            && !crate::pg::term_is_current(&*client, term)
                .await
                .map_err(pg)?
        {
            return Err(StoreError::Deposed(term));
        }
        let mut triggers = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<_, i64>(0).map_err(db)?,
                    trigger_from_row(row)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        triggers.sort_by_key(|(seq, _)| *seq);
        Ok(triggers.into_iter().map(|(_, t)| t).collect())
    }
}

fn pg(error: PgError) -> StoreError {
    StoreError::Database(error.to_string())
}

use super::store::instant_of_micros as instant;

/// A `triggers` row read with [`TRIGGER_COLUMNS`].
fn trigger_from_row(row: &Row) -> Result<StoredTrigger, StoreError> {
    let text = |i: usize| row.try_get::<_, String>(i).map_err(db);
    let status = text(10)?;
    let note: Option<String> = row.try_get(11).map_err(db)?;
    let due_at: Option<i64> = row.try_get(12).map_err(db)?;
    Ok(StoredTrigger {
        receipt: Receipt {
            id: text(1)?,
            received_at: instant(row.try_get(2).map_err(db)?)?,
        },
        source: text(3)?,
        delivery_id: text(4)?,
        body_hash: text(5)?,
        target: ScheduleTarget {
            business_unit: text(6)?,
            week: text(7)?,
            schedule_id: text(8)?,
        },
        event: text(9)?,
        status: TriggerStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?,
        note: TriggerNote::decode(note)?,
        due_at: due_at.map(instant).transpose()?,
    })
}

async fn accept(store: &PostgresStore, trigger: NewTrigger) -> Result<Acceptance, StoreError> {
    let client = store.client().await?;
    let received_at = trigger.received_at.as_microsecond();
    let target = &trigger.target;
    // A delivery forgotten between the insert and the read is new again: try once more.
    for _ in 0..2 {
        let id = new_receipt_id();
        let stored = client
            .query_opt(
                "WITH delivery AS ( \
                     INSERT INTO deliveries (source, delivery_id, body_hash, receipt, received_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, delivery_id) DO NOTHING \
                     RETURNING receipt) \
                 INSERT INTO triggers (receipt, source, delivery_id, body_hash, business_unit, \
                     week, schedule_id, event, received_at, status) \
                 SELECT receipt, $1, $2, $3, $6, $7, $8, $9, $5, 'pending' FROM delivery \
                 RETURNING receipt",
                &[
                    &trigger.source,
                    &trigger.delivery_id,
                    &trigger.body_hash,
                    &id,
                    &received_at,
                    &target.business_unit,
                    &target.week,
                    &target.schedule_id,
                    &trigger.event,
                ],
            )
            .await
            .map_err(db)?;
        if stored.is_some() {
            return Ok(Acceptance::Accepted(Receipt {
                id,
                received_at: instant(received_at)?,
            }));
        }
        let seen = client
            .query_opt(
                "SELECT body_hash, receipt, received_at FROM deliveries \
                 WHERE source = $1 AND delivery_id = $2",
                &[&trigger.source, &trigger.delivery_id],
            )
            .await
            .map_err(db)?;
        if let Some(row) = seen {
            let body_hash: String = row.try_get(0).map_err(db)?;
            return Ok(if body_hash == trigger.body_hash {
                Acceptance::Repeat(Receipt {
                    id: row.try_get(1).map_err(db)?,
                    received_at: instant(row.try_get(2).map_err(db)?)?,
                })
            } else {
                Acceptance::Conflict
            });
        }
    }
    Err(StoreError::Database(
        "the delivery was forgotten while it was being accepted".into(),
    ))
}

async fn record(
    store: &PostgresStore,
    receipt: &str,
    progress: Progress,
) -> Result<(), StoreError> {
    let term = store.term();
    let client = store.client().await?;
    let note = TriggerNote::encode(progress.note.as_ref())?;
    let due_at = progress.due_at.map(Timestamp::as_microsecond);
    let sql = format!(
        "WITH {fence} UPDATE triggers SET status = $3, note = $4, due_at = $5 FROM fence \
         WHERE receipt = $2 AND status IN ('pending', 'running') RETURNING 1",
        fence = fence(1)
    );
    let updated = client
        .query_opt(
            &sql,
            &[&term, &receipt, &progress.status.as_str(), &note, &due_at],
        )
        .await
        .map_err(db)?;
    if updated.is_some() {
        return Ok(());
    }
    // Refused: say why.
    if !crate::pg::term_is_current(&*client, term)
        .await
        .map_err(pg)?
    {
        return Err(StoreError::Deposed(term));
    }
    let status = client
        .query_opt(
            "SELECT status FROM triggers WHERE receipt = $1",
            &[&receipt],
        )
        .await
        .map_err(db)?;
    Err(match status {
        None => StoreError::UnknownReceipt(receipt.to_owned()),
        Some(_) => StoreError::Finished(receipt.to_owned()),
    })
}

async fn get(store: &PostgresStore, receipt: &str) -> Result<Option<StoredTrigger>, StoreError> {
    let client = store.client().await?;
    let sql = format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE receipt = $1");
    let row = client.query_opt(&sql, &[&receipt]).await.map_err(db)?;
    row.as_ref().map(trigger_from_row).transpose()
}

async fn stats(store: &PostgresStore) -> Result<StoreStats, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'pending'), \
                    count(*) FILTER (WHERE status = 'running'), \
                    min(received_at) \
             FROM triggers WHERE status IN ('pending', 'running')",
            &[],
        )
        .await
        .map_err(db)?;
    let count = |i: usize| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(i).map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let oldest: Option<i64> = row.try_get(2).map_err(db)?;
    Ok(StoreStats {
        pending: count(0)?,
        running: count(1)?,
        oldest_unfinished: oldest.map(instant).transpose()?,
    })
}

impl TriggerStore for PostgresStore {
    fn accept(&self, trigger: NewTrigger) -> StoreFuture<'_, Acceptance> {
        Box::pin(accept(self, trigger))
    }

    fn record(&self, receipt: &str, progress: Progress) -> StoreFuture<'_, ()> {
        let receipt = receipt.to_owned();
        Box::pin(async move { record(self, &receipt, progress).await })
    }

    fn get(&self, receipt: &str) -> StoreFuture<'_, Option<StoredTrigger>> {
        let receipt = receipt.to_owned();
        Box::pin(async move { get(self, &receipt).await })
    }

    /// Every unfinished trigger, claimed for this leader's term.
    fn unfinished(&self) -> StoreFuture<'_, Vec<StoredTrigger>> {
        Box::pin(self.claim("true"))
    }

    /// The unfinished triggers this term has not taken yet (`after` is implied by the claims:
    /// every trigger taken before is claimed).
    fn unfinished_after(&self, _after: &str) -> StoreFuture<'_, Vec<StoredTrigger>> {
        Box::pin(self.claim("claimed_term IS NULL"))
    }

    fn forget_deliveries_before(&self, cutoff: Timestamp) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.client().await?;
            let forgotten = client
                .execute(
                    "DELETE FROM deliveries WHERE received_at < $1",
                    &[&cutoff.as_microsecond()],
                )
                .await
                .map_err(db)?;
            Ok(forgotten)
        })
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        Box::pin(stats(self))
    }
}
