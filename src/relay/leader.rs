//! Who runs the worker. One process on SQLite always does. Replicas on PostgreSQL elect one:
//! the leader holds a session advisory lock on a connection of its own, so the lock goes
//! when the process dies (the server sees the socket close) or stops answering (the session
//! is idle past `idle_session_timeout` while the leader pings every second, and the server
//! ends it). Each win starts a new term (`leader.term + 1`): the store's progress writes, the
//! claims on triggers and the audit log's appends are fenced by it, and every publish checks
//! it just before the call, so a deposed leader's late writes are refused.
//!
//! Takeover bound: a killed leader's lock is free at once and a follower tries every
//! [`CAMPAIGN_EVERY`]; a paused one's session ends after [`IDLE_SESSION_TIMEOUT`]. A follower
//! leads within `IDLE_SESSION_TIMEOUT + CAMPAIGN_EVERY` (7 s) plus its connect time.

use crate::audit::writer::AuditWriter;
use std::sync::Arc;

/// How the process comes to run the worker.
#[derive(Clone)]
pub enum Leadership {
    /// Alone on its store (SQLite): it always leads, with this audit log.
    Sole(Arc<AuditWriter>),
    /// One of several replicas on PostgreSQL.
    #[cfg(feature = "postgres")]
    Elected(Arc<elected::Election>),
}

impl Leadership {
    /// Who leads, for `/readyz` and the metrics.
    pub fn view(&self) -> LeaderView {
        match self {
            Self::Sole(_) => LeaderView {
                replica: None,
                leader: None,
                term: None,
                leading: true,
            },
            #[cfg(feature = "postgres")]
            Self::Elected(election) => election.view(),
        }
    }
}

/// Who leads, as this replica last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderView {
    /// This replica's name (`None` alone on SQLite).
    pub replica: Option<String>,
    /// The leader's name, when known.
    pub leader: Option<String>,
    /// The current term, when known.
    pub term: Option<i64>,
    /// Whether this replica leads.
    pub leading: bool,
}

impl LeaderView {
    /// What `/readyz` adds about leadership (nothing alone on SQLite).
    pub fn describe(&self) -> String {
        let Some(me) = &self.replica else {
            return String::new();
        };
        match (self.leading, &self.leader) {
            (true, _) => format!(", replica {me} leads (term {})", self.term.unwrap_or(0)),
            (false, Some(leader)) if !leader.is_empty() => {
                format!(", replica {me} follows {leader}")
            }
            (false, _) => format!(", replica {me} follows (no leader yet)"),
        }
    }

    /// The leadership gauges in the Prometheus text format (none alone on SQLite).
    pub fn metrics_text(&self) -> String {
        let Some(me) = &self.replica else {
            return String::new();
        };
        let me = me.replace('\\', "\\\\").replace('"', "\\\"");
        format!(
            "# HELP publish_guard_leader Whether this replica leads (1) or follows (0).\n\
             # TYPE publish_guard_leader gauge\npublish_guard_leader{{replica=\"{me}\"}} {}\n\
             # HELP publish_guard_leader_term The leadership term last seen.\n\
             # TYPE publish_guard_leader_term gauge\npublish_guard_leader_term {}\n",
            u8::from(self.leading),
            self.term.unwrap_or(0)
        )
    }
}

/// Leader election on PostgreSQL.
#[cfg(feature = "postgres")]
pub mod elected {
    use super::LeaderView;
    use crate::api::week::WeekSettings;
    use crate::api::{
        Answer, ApiError, ListedSchedule, PublishAccepted, ScheduleApi, ScheduleRef,
        ScheduleSnapshot,
    };
    use crate::audit::pg_log::PgAuditLog;
    use crate::audit::writer::AuditWriter;
    use crate::pg::{PgError, Term, connect, term_is_current};
    use crate::relay::postgres_store::PostgresStore;
    use crate::relay::worker::{WorkerError, WorkerParts, run_worker};
    use jiff::civil::Date;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::sync::watch;
    use tokio_postgres::Client;

    /// The advisory lock key leaders hold.
    const LEADER_LOCK: i64 = 0x7075_626c_6973_6802;
    /// How often a follower tries to take the lead, and a leader pings its lock connection.
    pub const CAMPAIGN_EVERY: Duration = Duration::from_secs(1);
    /// How long the server keeps a silent leader's session (and so its lock).
    pub const IDLE_SESSION_TIMEOUT: Duration = Duration::from_secs(6);
    /// How often the leader looks for triggers other replicas accepted.
    const POLL_EVERY: Duration = Duration::from_millis(100);

    /// One replica's part in the election.
    #[derive(Debug)]
    pub struct Election {
        url: String,
        replica: String,
        store: Arc<PostgresStore>,
        view: Mutex<LeaderView>,
    }

    /// Why a term ended.
    enum TermEnd {
        /// The service is stopping.
        Stopped(Result<(), WorkerError>),
        /// The lead was lost (the database, the lock, or a fenced write).
        Lost(String),
    }

    impl Election {
        /// Take part as `replica` (a name shown to operators) over `store`'s database.
        pub fn new(url: &str, replica: &str, store: Arc<PostgresStore>) -> Self {
            Self {
                url: url.to_owned(),
                replica: replica.to_owned(),
                store,
                view: Mutex::new(LeaderView {
                    replica: Some(replica.to_owned()),
                    ..LeaderView::default()
                }),
            }
        }

        /// Who leads, as last seen.
        pub fn view(&self) -> LeaderView {
            self.view
                .lock()
                .map(|v| v.clone())
                .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
        }

        fn set_view(&self, leader: Option<(String, Term)>, leading: bool) {
            if let Ok(mut view) = self.view.lock() {
                view.leading = leading;
                view.leader = leader.as_ref().map(|(name, _)| name.clone());
                view.term = leader.map(|(_, term)| term);
            }
        }

        /// Campaign, lead when elected, follow again when the lead is lost; until stopped.
        pub async fn serve<A: ScheduleApi>(
            &self,
            api: A,
            shared: WorkerParts,
        ) -> Result<(), WorkerError> {
            let mut stop = shared.stop.clone();
            loop {
                if *stop.borrow() {
                    return Ok(());
                }
                match self.campaign().await {
                    Ok(Some((lock, term))) => {
                        tracing::info!(replica = self.replica, term, "leading");
                        match self.run_term(&api, &shared, &lock, term).await {
                            TermEnd::Stopped(result) => {
                                self.step_down();
                                return result;
                            }
                            TermEnd::Lost(why) => {
                                tracing::warn!(replica = self.replica, term, why, "lead lost");
                                self.step_down();
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(replica = self.replica, %error, "cannot campaign");
                        self.set_view(None, false);
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(CAMPAIGN_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            }
        }

        fn step_down(&self) {
            self.store.set_term(None);
            self.set_view(None, false);
        }

        /// One try at the lock: the lock connection and the new term when won.
        async fn campaign(&self) -> Result<Option<(Client, Term)>, PgError> {
            let lock = connect(&self.url).await?;
            let timeout = IDLE_SESSION_TIMEOUT.as_millis();
            lock.batch_execute(&format!("SET idle_session_timeout = {timeout}"))
                .await?;
            let won: bool = lock
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
                .await?
                .try_get(0)?;
            if !won {
                let row = lock
                    .query_one("SELECT holder, term FROM leader", &[])
                    .await?;
                self.set_view(Some((row.try_get(0)?, row.try_get(1)?)), false);
                return Ok(None);
            }
            let term: Term = lock
                .query_one(
                    "UPDATE leader SET term = term + 1, holder = $1 RETURNING term",
                    &[&self.replica],
                )
                .await?
                .try_get(0)?;
            self.store.set_term(Some(term));
            self.set_view(Some((self.replica.clone(), term)), true);
            Ok(Some((lock, term)))
        }

        /// Lead for one term: run the worker until the service stops or the lead is lost.
        async fn run_term<A: ScheduleApi>(
            &self,
            api: &A,
            shared: &WorkerParts,
            lock: &Client,
            term: Term,
        ) -> TermEnd {
            let audit_client = match connect(&self.url).await {
                Ok(client) => client,
                Err(e) => return TermEnd::Lost(e.to_string()),
            };
            let log = match PgAuditLog::open(audit_client, term).await {
                Ok(log) => log,
                Err(e) => return TermEnd::Lost(e.to_string()),
            };
            let audit = Arc::new(AuditWriter::start_database(log));
            let (end_term, term_stop) = watch::channel(false);
            let fenced = FencedApi {
                inner: api,
                lock,
                term,
            };
            let parts = WorkerParts {
                stop: term_stop,
                ..shared.clone()
            };
            let worker = run_worker(fenced, parts, audit);
            let mut stop = shared.stop.clone();
            let watch = async {
                let mut ping = tokio::time::interval(POLL_EVERY);
                let mut since_ping = Duration::ZERO;
                loop {
                    tokio::select! {
                        _ = ping.tick() => {}
                        _ = stop.wait_for(|s| *s) => return None,
                    }
                    // Triggers accepted by other replicas wake no one here.
                    shared.wake.notify_one();
                    since_ping += POLL_EVERY;
                    if since_ping < CAMPAIGN_EVERY {
                        continue;
                    }
                    since_ping = Duration::ZERO;
                    match term_is_current(lock, term).await {
                        Ok(true) => {}
                        Ok(false) => return Some("another replica took the lead".to_owned()),
                        Err(e) => return Some(e.to_string()),
                    }
                }
            };
            tokio::pin!(worker, watch);
            tokio::select! {
                worked = &mut worker => {
                    if *shared.stop.borrow() {
                        TermEnd::Stopped(worked)
                    } else {
                        let why = match worked {
                            Ok(()) => "the worker stopped".to_owned(),
                            Err(e) => e.to_string(),
                        };
                        TermEnd::Lost(why)
                    }
                }
                lost = &mut watch => match lost {
                    // Stopping: the worker records the answers of the calls in flight.
                    None => {
                        let _ = end_term.send(true);
                        TermEnd::Stopped(worker.await)
                    }
                    // Fence first, then let the worker wind down: its writes are refused now.
                    Some(why) => {
                        self.store.set_term(None);
                        let _ = end_term.send(true);
                        let _ = worker.await;
                        TermEnd::Lost(why)
                    }
                }
            }
        }
    }

    /// The API as the leader of `term` calls it: a publish goes out only while the term is
    /// current (checked just before the call), reads pass through.
    struct FencedApi<'a, A> {
        inner: &'a A,
        lock: &'a Client,
        term: Term,
    }

    impl<A: ScheduleApi> ScheduleApi for FencedApi<'_, A> {
        async fn read(&self, schedule: &ScheduleRef) -> Result<Answer<ScheduleSnapshot>, ApiError> {
            self.inner.read(schedule).await
        }

        async fn publish(
            &self,
            schedule: &ScheduleRef,
            version: i64,
            idempotency_key: &str,
        ) -> Result<Answer<PublishAccepted>, ApiError> {
            let refused = |reason: String| ApiError::Transport {
                call: "publish",
                reason,
            };
            match term_is_current(self.lock, self.term).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(refused(format!(
                        "not sent: term {} is over, another replica leads",
                        self.term
                    )));
                }
                Err(e) => return Err(refused(format!("not sent: {e}"))),
            }
            self.inner.publish(schedule, version, idempotency_key).await
        }

        async fn list_week(
            &self,
            business_unit: &str,
            week: Date,
        ) -> Result<Answer<Vec<ListedSchedule>>, ApiError> {
            self.inner.list_week(business_unit, week).await
        }

        async fn week_settings(
            &self,
            business_unit: &str,
        ) -> Result<Answer<WeekSettings>, ApiError> {
            self.inner.week_settings(business_unit).await
        }
    }
}
