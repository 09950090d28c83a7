//! The PostgreSQL database several relay replicas share: connecting, the schema (created once,
//! by whichever replica comes first), and the leadership term every leader write is fenced by.
//! The relay's store and the audit log's database backend both build on it.

use tokio_postgres::{Client, GenericClient, NoTls};

/// The schema's version, kept in `publish_guard_schema`.
pub const SCHEMA_VERSION: i32 = 1;

/// Serialises schema creation between replicas starting at once (an advisory lock key).
const SCHEMA_LOCK: i64 = 0x7075_626c_6973_6801;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS publish_guard_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS triggers (
    seq           BIGSERIAL PRIMARY KEY,
    receipt       TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    body_hash     TEXT NOT NULL,
    business_unit TEXT NOT NULL,
    week          TEXT NOT NULL,
    schedule_id   TEXT NOT NULL,
    event         TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    note          TEXT,
    due_at        BIGINT,
    claimed_term  BIGINT
);
CREATE INDEX IF NOT EXISTS triggers_unfinished
    ON triggers (seq) WHERE status IN ('pending', 'running');
CREATE INDEX IF NOT EXISTS triggers_unclaimed
    ON triggers (seq) WHERE status IN ('pending', 'running') AND claimed_term IS NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    source      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    body_hash   TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (source, delivery_id)
);
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries (received_at);
CREATE TABLE IF NOT EXISTS leader (
    one    BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    term   BIGINT NOT NULL,
    holder TEXT NOT NULL
);
INSERT INTO leader (term, holder) VALUES (0, '') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS audit_entries (
    seq  BIGINT PRIMARY KEY,
    step TEXT NOT NULL UNIQUE,
    line TEXT NOT NULL,
    hash TEXT NOT NULL,
    term BIGINT NOT NULL
);
";

/// The database cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PgError {
    /// The server reported an error, or the connection failed.
    #[error("postgres: {0}")]
    Database(String),
    /// The database holds a newer schema than this build knows.
    #[error("postgres: schema version {0} is newer than this build's ({SCHEMA_VERSION})")]
    NewerSchema(i32),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(error: tokio_postgres::Error) -> Self {
        // The server's own message says more than the client's summary.
        let text = match error.as_db_error() {
            Some(db) => format!("{}: {}", db.severity(), db.message()),
            None => error.to_string(),
        };
        Self::Database(text)
    }
}

/// Connect to `url` (a libpq connection string or URI; a `host` that is a directory is a unix
/// socket). Without TLS: the database is expected on loopback or a unix socket. The
/// connection is driven by a task on the current runtime until the client is dropped.
pub async fn connect(url: &str) -> Result<Client, PgError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    // A peer that vanished without closing (its host died) is noticed within seconds.
    config
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(5))
        .connect_timeout(std::time::Duration::from_secs(5));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "postgres connection closed");
        }
    });
    Ok(client)
}

/// Create the schema if it is absent; refuse a newer one.
pub async fn prepare_schema(client: &mut Client) -> Result<(), PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(SCHEMA).await?;
    let version: Option<i32> = tx
        .query_opt("SELECT max(version) FROM publish_guard_schema", &[])
        .await?
        .and_then(|row| row.get(0));
    match version {
        None => {
            tx.execute(
                "INSERT INTO publish_guard_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(newer) => return Err(PgError::NewerSchema(newer)),
    }
    tx.commit().await?;
    Ok(())
}

/// A leadership term: the fencing token every leader write carries.
pub type Term = i64;

/// The condition, for a statement's `WITH` clause, that `$term` (the parameter numbered
/// `param`) is still the current term. `FOR SHARE` makes a takeover (which updates the row)
/// wait for the writes that passed the check, and a write that waited on a takeover read the
/// new term: a deposed leader's write is refused, never interleaved.
pub fn fence(param: usize) -> String {
    format!("fence AS (SELECT term FROM leader WHERE term = ${param} FOR SHARE)")
}

/// Whether `term` is still the current term (for a write outside the database, such as an
/// API call, just before it).
pub async fn term_is_current(client: &impl GenericClient, term: Term) -> Result<bool, PgError> {
    let row = client
        .query_opt("SELECT 1 FROM leader WHERE term = $1", &[&term])
        .await?;
    Ok(row.is_some())
}
