//! The PostgreSQL store and audit log on a real server (see `pg_support`): deliveries
//! deduplicated across replicas by the database, each trigger taken once by the leader
//! whatever order replicas commit in, a deposed leader's writes refused, a trigger noted
//! unconfirmed kept pending for the next leader, and the audit log in
//! the database exported to the very file the file log writes.

use crate::pg_support::{database, query_texts};
use jiff::Timestamp;
use publish_guard::audit::log::{Appended, AuditLog, AuditOptions};
use publish_guard::audit::pg_log::{PgAuditLog, export};
use publish_guard::audit::verify::verify;
use publish_guard::audit::writer::AuditWriter;
use publish_guard::pg::connect;
use publish_guard::relay::postgres_store::PostgresStore;
use publish_guard::relay::store::{
    Acceptance, NewTrigger, Progress, StoreError, TriggerNote, TriggerStatus, TriggerStore,
};
use serde_json::{Value, json};

/// A delivery from `servicenow`, as every test here stores them.
fn delivery(id: &str, body: &str) -> NewTrigger {
    let received_at = "2026-10-25T00:59:00.123456Z".parse().unwrap();
    crate::relay_support::delivery("servicenow", id, body, received_at)
}

async fn accepted(store: &PostgresStore, id: &str) -> String {
    match store.accept(delivery(id, "{}")).await.unwrap() {
        Acceptance::Accepted(receipt) => receipt.id,
        other => panic!("{id}: expected a new acceptance, got {other:?}"),
    }
}

/// Make `store` the leader of `term`, as an election would.
async fn lead(url: &str, store: &PostgresStore, term: i64) {
    let client = connect(url).await.unwrap();
    client
        .execute("UPDATE leader SET term = $1", &[&term])
        .await
        .unwrap();
    store.set_term(Some(term));
}

fn receipts(triggers: &[publish_guard::relay::store::StoredTrigger]) -> Vec<&str> {
    triggers.iter().map(|t| t.delivery_id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_delivery_sent_to_two_replicas_at_once_is_stored_once() {
    let Some(url) = database().await else { return };
    let a = PostgresStore::open(&url).await.unwrap();
    let b = PostgresStore::open(&url).await.unwrap();
    for n in 0..50 {
        let trigger = delivery(&format!("d{n}"), "{}");
        let (x, y) = tokio::join!(a.accept(trigger.clone()), b.accept(trigger));
        match (x.unwrap(), y.unwrap()) {
            (Acceptance::Accepted(first), Acceptance::Repeat(again))
            | (Acceptance::Repeat(again), Acceptance::Accepted(first)) => {
                assert_eq!(first, again, "the repeat answers with the first receipt");
            }
            other => panic!("d{n}: {other:?}"),
        }
    }
    let stored = query_texts(&url, "SELECT count(*)::TEXT FROM triggers").await;
    assert_eq!(stored, ["50"]);
    assert_eq!(
        b.accept(delivery("d7", "{\"x\":1}")).await.unwrap(),
        Acceptance::Conflict
    );
    // Forgotten past the retention, a delivery id is new again.
    let later: Timestamp = "2026-10-26T00:00:00Z".parse().unwrap();
    assert_eq!(a.forget_deliveries_before(later).await.unwrap(), 50);
    assert!(matches!(
        b.accept(delivery("d7", "{\"x\":1}")).await.unwrap(),
        Acceptance::Accepted(_)
    ));
}

/// A trigger whose transaction commits after a later one's is still taken: the leader takes
/// what it has not claimed, not what follows a sequence number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_takes_each_trigger_once_whatever_order_replicas_commit_in() {
    let Some(url) = database().await else { return };
    let store = PostgresStore::open(&url).await.unwrap();
    lead(&url, &store, 1).await;
    accepted(&store, "d1").await;
    accepted(&store, "d2").await;
    let first = store.unfinished().await.unwrap();
    assert_eq!(receipts(&first), ["d1", "d2"]);
    assert_eq!(
        receipts(&store.unfinished_after("any").await.unwrap()),
        [""; 0]
    );
    // A replica's transaction takes its sequence number, then commits late.
    let mut slow = connect(&url).await.unwrap();
    let tx = slow.transaction().await.unwrap();
    tx.batch_execute(
        "INSERT INTO triggers (receipt, source, delivery_id, body_hash, business_unit, week, \
         schedule_id, event, received_at, status) VALUES ('rcpt_slow', 'servicenow', 'slow', \
         'x', 'bu-1', '2026-10-19', 's-1', 'case.created', 0, 'pending')",
    )
    .await
    .unwrap();
    accepted(&store, "d3").await;
    assert_eq!(
        receipts(&store.unfinished_after("d2").await.unwrap()),
        ["d3"]
    );
    tx.commit().await.unwrap();
    assert_eq!(
        receipts(&store.unfinished_after("d3").await.unwrap()),
        ["slow"]
    );
    assert!(store.unfinished_after("slow").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_writes_are_refused() {
    let Some(url) = database().await else { return };
    let old = PostgresStore::open(&url).await.unwrap();
    let new = PostgresStore::open(&url).await.unwrap();
    let receipt = accepted(&old, "d1").await;
    lead(&url, &old, 1).await;
    assert_eq!(old.unfinished().await.unwrap().len(), 1);
    let deferred = Progress {
        status: TriggerStatus::Pending,
        note: Some(TriggerNote::Deferred),
        due_at: None,
    };
    old.record(&receipt, deferred.clone()).await.unwrap();
    let mut old_log = PgAuditLog::open(connect(&url).await.unwrap(), 1)
        .await
        .unwrap();
    let event = json!({"kind": "trigger_received"});
    let record = |step| publish_guard::audit::log::Record {
        step,
        at: Timestamp::UNIX_EPOCH,
        event: &event,
    };
    old_log.append_batch(&[record("a")]).await.unwrap();

    // Another replica takes over.
    lead(&url, &new, 2).await;
    let done = Progress {
        status: TriggerStatus::Done,
        note: None,
        due_at: None,
    };
    assert_eq!(
        old.record(&receipt, done.clone()).await,
        Err(StoreError::Deposed(1))
    );
    assert_eq!(old.unfinished().await, Err(StoreError::Deposed(1)));
    assert_eq!(
        old.unfinished_after(&receipt).await,
        Err(StoreError::Deposed(1))
    );
    let refused = old_log.append_batch(&[record("b")]).await.unwrap_err();
    assert!(refused.to_string().contains("term 1 is over"), "{refused}");
    let note = query_texts(&url, "SELECT note FROM triggers").await;
    assert_eq!(
        note,
        [r#"{"kind":"deferred"}"#],
        "the refused write left nothing"
    );
    assert_eq!(
        query_texts(&url, "SELECT step FROM audit_entries").await,
        ["a"]
    );
    // The new leader's writes go through.
    new.record(&receipt, done).await.unwrap();
    assert_eq!(
        new.record(&receipt, deferred).await,
        Err(StoreError::Finished(receipt))
    );
}

/// Two leaders in turn append one chain; the export is byte for byte the file the file log
/// writes for the same steps, and it verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_noted_unconfirmed_stays_pending_for_the_next_leader() {
    let Some(url) = database().await else { return };
    let old = PostgresStore::open(&url).await.unwrap();
    let receipt = accepted(&old, "d1").await;
    lead(&url, &old, 1).await;
    let unconfirmed = Progress {
        status: TriggerStatus::Pending,
        note: Some(TriggerNote::Unconfirmed),
        due_at: None,
    };
    old.record(&receipt, unconfirmed).await.unwrap();
    let new = PostgresStore::open(&url).await.unwrap();
    lead(&url, &new, 2).await;
    let kept: Vec<_> = (new.unfinished().await.unwrap().into_iter())
        .map(|t| (t.receipt.id, t.status, t.note))
        .collect();
    assert_eq!(
        kept,
        [(
            receipt,
            TriggerStatus::Pending,
            Some(TriggerNote::Unconfirmed)
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_in_the_database_exports_the_file_log_byte_for_byte() {
    let Some(url) = database().await else { return };
    let store = PostgresStore::open(&url).await.unwrap();
    let steps: Vec<(String, Value)> = (1..=6)
        .map(|n| {
            (
                format!("run-1/{n}"),
                json!({"kind": "decision", "n": n, "rule": "ok"}),
            )
        })
        .collect();
    let at = |n: usize| Timestamp::from_second(1_800_000_000 + n as i64).unwrap();
    for (term, range) in [(1, 0..3), (2, 3..6)] {
        lead(&url, &store, term).await;
        let log = PgAuditLog::open(connect(&url).await.unwrap(), term)
            .await
            .unwrap();
        let writer = AuditWriter::start_database(log);
        for n in range {
            let (step, event) = &steps[n];
            let written = writer.record(step, at(n), event).await.unwrap();
            assert_eq!(
                written,
                Appended::Written {
                    seq: n as u64 + 1,
                    hash: match &written {
                        Appended::Written { hash, .. } => hash.clone(),
                        Appended::AlreadyWritten { .. } => String::new(),
                    }
                }
            );
        }
        // A step recorded by the previous leader is not recorded again.
        let (step, event) = &steps[0];
        assert_eq!(
            writer.record(step, at(0), event).await.unwrap(),
            Appended::AlreadyWritten { seq: 1 }
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("exported.jsonl");
    let mut file = std::fs::File::create(&exported).unwrap();
    let client = connect(&url).await.unwrap();
    assert_eq!(export(&client, &mut file).await.unwrap(), 6);
    let file_log = dir.path().join("file.jsonl");
    let mut log = AuditLog::open(&file_log, AuditOptions::default()).unwrap();
    for (n, (step, event)) in steps.iter().enumerate() {
        log.append(step, at(n), event).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&exported).unwrap(),
        std::fs::read_to_string(&file_log).unwrap()
    );
    let verified = verify(&exported, &dir.path().join("none"), None)
        .unwrap()
        .unwrap();
    assert_eq!(verified.entries, 6);
}
