//! What the in-process relay tests share: a delivery to store, a relay's files in a
//! temporary folder (store, audit log, rules), its settings, and the relay started on
//! loopback before the double.

use jiff::Timestamp;
use publish_guard::api::genesys::{GenesysClient, GenesysConfig};
use publish_guard::audit::log::{AuditLog, AuditOptions};
use publish_guard::audit::writer::AuditWriter;
use publish_guard::effects::clock::Clock;
use publish_guard::relay::connections::ConnectionLimits;
use publish_guard::relay::intake::Source;
use publish_guard::relay::leader::Leadership;
use publish_guard::relay::mapping::ScheduleTarget;
use publish_guard::relay::rules::Rules;
use publish_guard::relay::server::{Relay, RelaySettings};
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::{
    Acceptance, NewTrigger, Progress, StoreError, StoreFuture, StoreStats, StoredTrigger,
    TriggerStore,
};
use publish_guard::runner::RunnerConfig;
use std::collections::HashMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

/// A `case.created` delivery from `source` with delivery id `id` and `body`, about `s-1` of
/// `bu-1`'s week of 19 October 2026, received at `received_at`.
pub fn delivery(source: &str, id: &str, body: &str, received_at: Timestamp) -> NewTrigger {
    NewTrigger {
        source: source.into(),
        delivery_id: id.into(),
        body_hash: publish_guard::audit::canonical::sha256_hex(body.as_bytes()),
        target: ScheduleTarget {
            business_unit: "bu-1".into(),
            week: "2026-10-19".into(),
            schedule_id: "s-1".into(),
        },
        event: "case.created".into(),
        received_at,
    }
}

/// A relay's files, in a folder removed with it.
pub struct RelayFiles {
    /// The SQLite store, `relay.db`.
    pub store: Arc<SqliteStore>,
    /// The audit log, `audit.jsonl`.
    pub audit_path: PathBuf,
    /// The rules file, `policy.rules`.
    pub rules_path: PathBuf,
    /// The folder.
    pub dir: tempfile::TempDir,
}

impl RelayFiles {
    /// A fresh folder: an empty store, no audit log yet, and `rules` as the policy.
    pub fn new(rules: &str) -> RelayFiles {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let rules_path = dir.path().join("policy.rules");
        std::fs::write(&rules_path, rules).unwrap();
        RelayFiles {
            store,
            audit_path: dir.path().join("audit.jsonl"),
            rules_path,
            dir,
        }
    }

    /// Settings of a sole relay taking webhooks from `source` as `name`, on `clock`, its
    /// audit log opened with `audit`; no admin token, no notifications, default limits.
    pub fn settings(
        &self,
        name: &str,
        source: Source,
        clock: Arc<dyn Clock>,
        audit: AuditOptions,
    ) -> RelaySettings {
        let log = AuditLog::open(&self.audit_path, audit).unwrap();
        RelaySettings {
            sources: HashMap::from([(name.to_owned(), source)]),
            store: Arc::clone(&self.store) as Arc<dyn TriggerStore>,
            leadership: Leadership::Sole(Arc::new(AuditWriter::start(log).unwrap())),
            rules: Arc::new(Rules::load(&self.rules_path).unwrap()),
            admin_token: None,
            runner: RunnerConfig::default(),
            body_limit: 64 * 1024,
            connections: ConnectionLimits::default(),
            clock,
            notifications: None,
        }
    }
}

/// Start `settings`' relay on a free loopback port, calling the API through a Genesys
/// client with `config` on `clock`; it hears the notification channel when the settings
/// ask for it.
pub async fn start_relay(
    settings: RelaySettings,
    config: GenesysConfig,
    clock: Arc<dyn Clock>,
) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let make_api = move || GenesysClient::new(config, clock).unwrap();
    let started = if settings.notifications.is_some() {
        Relay::start_hearing(settings, make_api, listener).await
    } else {
        Relay::start(settings, make_api, listener).await
    };
    started.unwrap()
}

/// What a test does about a store's `record`s; each default does nothing.
pub trait OnRecord: Send + Sync {
    /// Before recording: an error to answer instead (nothing is recorded).
    fn before(&self, _progress: &Progress) -> Option<StoreError> {
        None
    }

    /// Once recorded: an error to answer all the same (as a process that died right after).
    fn after(&self, _receipt: &str, _progress: &Progress) -> Option<StoreError> {
        None
    }
}

/// The SQLite store with its `record`s watched by `hook` (reached through `Deref`); every
/// other call goes straight to the store.
pub struct Hooked<H> {
    /// The store.
    pub inner: Arc<SqliteStore>,
    /// What the test does about each record.
    pub hook: H,
}

impl<H> Deref for Hooked<H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.hook
    }
}

impl<H: OnRecord> TriggerStore for Hooked<H> {
    fn accept(&self, trigger: NewTrigger) -> StoreFuture<'_, Acceptance> {
        self.inner.accept(trigger)
    }

    fn record(&self, receipt: &str, progress: Progress) -> StoreFuture<'_, ()> {
        let receipt = receipt.to_owned();
        Box::pin(async move {
            if let Some(error) = self.hook.before(&progress) {
                return Err(error);
            }
            self.inner.record(&receipt, progress.clone()).await?;
            self.hook.after(&receipt, &progress).map_or(Ok(()), Err)
        })
    }

    fn get(&self, receipt: &str) -> StoreFuture<'_, Option<StoredTrigger>> {
        self.inner.get(receipt)
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<StoredTrigger>> {
        self.inner.unfinished()
    }

    fn unfinished_after(&self, after: &str) -> StoreFuture<'_, Vec<StoredTrigger>> {
        self.inner.unfinished_after(after)
    }

    fn forget_deliveries_before(&self, cutoff: Timestamp) -> StoreFuture<'_, u64> {
        self.inner.forget_deliveries_before(cutoff)
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        self.inner.stats()
    }
}
