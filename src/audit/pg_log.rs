//! The audit log in PostgreSQL, for relay replicas: the same entries as the file log (each
//! row holds the entry's JSON line exactly as the file would, sealed by the same code), one
//! row per entry with the sequence number as primary key and the step id unique. Only the
//! leader appends, each batch in one transaction fenced by its term, so a deposed leader
//! appends nothing once another leads; each batch continues the chain from the database's
//! head, whoever wrote it. `export` writes the rows as the JSON Lines file `verify` reads.

use super::log::{Appended, AuditError, Record, seal_batch};
use crate::audit::canonical::GENESIS;
use crate::pg::{PgError, Term, fence};
use serde_json::Value;
use std::io::Write;
use tokio_postgres::Client;

/// A leader's handle on the audit log in the database.
#[derive(Debug)]
pub struct PgAuditLog {
    client: Client,
    term: Term,
    /// The last sequence number this handle saw.
    last_seq: u64,
}

fn db(error: impl Into<PgError>) -> AuditError {
    AuditError::Database(error.into().to_string())
}

fn seq_of(value: i64) -> Result<u64, AuditError> {
    u64::try_from(value).map_err(|_| AuditError::Database(format!("negative seq {value}")))
}

fn seq_param(seq: u64) -> Result<i64, AuditError> {
    i64::try_from(seq).map_err(|_| AuditError::Database(format!("seq {seq} out of range")))
}

impl PgAuditLog {
    /// Append as the leader of `term` over `client` (a connection of its own).
    pub async fn open(client: Client, term: Term) -> Result<Self, AuditError> {
        let mut log = Self {
            client,
            term,
            last_seq: 0,
        };
        log.last_seq = log.head().await?.0;
        Ok(log)
    }

    /// The sequence number of the last entry this handle saw.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The database's head: sequence number and hash (0 and the genesis hash when empty).
    async fn head(&self) -> Result<(u64, String), AuditError> {
        let row = self
            .client
            .query_opt(
                "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(db)?;
        match row {
            Some(row) => Ok((
                seq_of(row.try_get(0).map_err(db)?)?,
                row.try_get(1).map_err(db)?,
            )),
            None => Ok((0, GENESIS.to_owned())),
        }
    }

    /// Record several steps in one transaction; steps already recorded (by any leader) are
    /// reported and not written again. Refused once the term is over.
    pub async fn append_batch(
        &mut self,
        records: &[Record<'_, Value>],
    ) -> Result<Vec<Appended>, AuditError> {
        let tx = self.client.transaction().await.map_err(db)?;
        let fenced = tx
            .query_opt(
                &format!("WITH {} SELECT 1 FROM fence", fence(1)),
                &[&self.term],
            )
            .await
            .map_err(db)?;
        if fenced.is_none() {
            return Err(AuditError::Deposed(self.term));
        }
        // The head under the fence: no other leader can append until this commits.
        let head = tx
            .query_opt(
                "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(db)?;
        let (seq, hash) = match head {
            Some(row) => (
                seq_of(row.try_get(0).map_err(db)?)?,
                row.try_get::<_, String>(1).map_err(db)?,
            ),
            None => (0, GENESIS.to_owned()),
        };
        let steps: Vec<&str> = records.iter().map(|r| r.step).collect();
        let earlier: std::collections::HashMap<String, u64> = tx
            .query(
                "SELECT step, seq FROM audit_entries WHERE step = ANY($1)",
                &[&steps],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(db)?,
                    seq_of(row.try_get(1).map_err(db)?)?,
                ))
            })
            .collect::<Result<_, AuditError>>()?;
        let sealed = seal_batch(records, (seq, &hash), |step| earlier.get(step).copied())?;
        if !sealed.entries.is_empty() {
            let mut seqs = Vec::with_capacity(sealed.entries.len());
            for entry in &sealed.entries {
                seqs.push(seq_param(entry.seq)?);
            }
            let steps: Vec<&str> = sealed.entries.iter().map(|e| e.step.as_str()).collect();
            let lines: Vec<&str> = sealed.entries.iter().map(|e| e.line.as_str()).collect();
            let hashes: Vec<&str> = sealed.entries.iter().map(|e| e.hash.as_str()).collect();
            tx.execute(
                "INSERT INTO audit_entries (seq, step, line, hash, term) \
                 SELECT *, $5 FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[])",
                &[&seqs, &steps, &lines, &hashes, &self.term],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        self.last_seq = sealed.head.0;
        Ok(sealed.outcomes)
    }
}

/// Write every entry in the database to `out` as JSON Lines, oldest first: the file a file
/// log would be. Returns how many entries were written.
pub async fn export(client: &Client, out: &mut impl Write) -> Result<u64, AuditError> {
    use futures_util::TryStreamExt as _;
    let no_params: [&(dyn tokio_postgres::types::ToSql + Sync); 0] = [];
    let rows = client
        .query_raw("SELECT line FROM audit_entries ORDER BY seq", no_params)
        .await
        .map_err(db)?;
    let io = |source| AuditError::Io {
        path: "<export>".into(),
        source,
    };
    futures_util::pin_mut!(rows);
    let mut written = 0;
    // Streamed: the log may be larger than memory.
    while let Some(row) = rows.try_next().await.map_err(db)? {
        let line: &str = row.try_get(0).map_err(db)?;
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        written += 1;
    }
    out.flush().map_err(io)?;
    Ok(written)
}
