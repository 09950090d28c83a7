//! The SQLite store on a real file: exactly-once acceptance of deliveries, progress that
//! survives closing and reopening, finished work never reopened, and group commit.

use jiff::{SignedDuration, Timestamp};
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::{
    Acceptance, NewTrigger, Progress, StoreError, StoreStats, TriggerStatus, TriggerStore,
};
use std::sync::Arc;

fn at(seconds: i64) -> Timestamp {
    // Nanoseconds beyond the microsecond are dropped by the store.
    "2026-10-25T00:59:00.123456789Z"
        .parse::<Timestamp>()
        .unwrap()
        + SignedDuration::from_secs(seconds)
}

fn delivery(source: &str, id: &str, body: &str, seconds: i64) -> NewTrigger {
    NewTrigger {
        source: source.into(),
        delivery_id: id.into(),
        body_hash: publish_guard::audit::canonical::sha256_hex(body.as_bytes()),
        schedule: "bu-1/2026-10-19/s-1".into(),
        event: "case.created".into(),
        received_at: at(seconds),
    }
}

fn accepted(acceptance: Acceptance) -> publish_guard::relay::store::Receipt {
    match acceptance {
        Acceptance::Accepted(receipt) => receipt,
        other => panic!("expected a new acceptance, got {other:?}"),
    }
}

#[tokio::test]
async fn a_delivery_is_accepted_once_and_a_changed_body_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
    let first = accepted(
        store
            .accept(delivery("servicenow", "d1", "{}", 0))
            .await
            .unwrap(),
    );
    assert!(first.id.starts_with("rcpt_"));
    assert_eq!(
        first.received_at,
        "2026-10-25T00:59:00.123456Z".parse().unwrap()
    );
    let again = store
        .accept(delivery("servicenow", "d1", "{}", 5))
        .await
        .unwrap();
    assert_eq!(again, Acceptance::Repeat(first.clone()));
    let changed = store
        .accept(delivery("servicenow", "d1", "{\"x\":1}", 6))
        .await
        .unwrap();
    assert_eq!(changed, Acceptance::Conflict);
    // Delivery ids are per source.
    let other = accepted(
        store
            .accept(delivery("manual", "d1", "{}", 7))
            .await
            .unwrap(),
    );
    assert_ne!(other.id, first.id);
    let unfinished = store.unfinished().await.unwrap();
    let receipts: Vec<&str> = unfinished.iter().map(|t| t.receipt.id.as_str()).collect();
    assert_eq!(receipts, [first.id.as_str(), other.id.as_str()]);
}

#[tokio::test]
async fn progress_survives_reopening_and_finished_work_stays_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut receipts = Vec::new();
    for n in 0..4 {
        let trigger = delivery("servicenow", &format!("d{n}"), "{}", n);
        receipts.push(accepted(store.accept(trigger).await.unwrap()));
    }
    let progress = |status, note: Option<&str>, due: Option<i64>| Progress {
        status,
        progress: note.map(str::to_owned),
        due_at: due.map(at),
    };
    store
        .record(
            &receipts[0].id,
            progress(TriggerStatus::Done, Some("published v8"), None),
        )
        .await
        .unwrap();
    store
        .record(
            &receipts[1].id,
            progress(TriggerStatus::Running, Some("op-17"), None),
        )
        .await
        .unwrap();
    store
        .record(
            &receipts[2].id,
            progress(TriggerStatus::Pending, Some("backoff 2"), Some(60)),
        )
        .await
        .unwrap();
    store
        .record(
            &receipts[3].id,
            progress(TriggerStatus::Failed, Some("attempts exhausted"), None),
        )
        .await
        .unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    let unfinished = store.unfinished().await.unwrap();
    let seen: Vec<(&str, TriggerStatus, Option<&str>, Option<Timestamp>)> = unfinished
        .iter()
        .map(|t| {
            (
                t.receipt.id.as_str(),
                t.status,
                t.progress.as_deref(),
                t.due_at,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                receipts[1].id.as_str(),
                TriggerStatus::Running,
                Some("op-17"),
                None
            ),
            (
                receipts[2].id.as_str(),
                TriggerStatus::Pending,
                Some("backoff 2"),
                Some("2026-10-25T01:00:00.123456Z".parse().unwrap())
            ),
        ]
    );
    for finished in [&receipts[0], &receipts[3]] {
        assert_eq!(
            store
                .record(&finished.id, progress(TriggerStatus::Pending, None, None))
                .await,
            Err(StoreError::Finished(finished.id.clone()))
        );
    }
    assert_eq!(
        store
            .record("rcpt_none", progress(TriggerStatus::Done, None, None))
            .await,
        Err(StoreError::UnknownReceipt("rcpt_none".into()))
    );
    let done = store.get(&receipts[0].id).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.progress.as_deref()),
        (TriggerStatus::Done, Some("published v8"))
    );
    assert_eq!(done.event, "case.created");
    // The delivery is still remembered after reopening.
    assert_eq!(
        store
            .accept(delivery("servicenow", "d0", "{}", 9))
            .await
            .unwrap(),
        Acceptance::Repeat(receipts[0].clone())
    );
    assert_eq!(
        store.stats().await.unwrap(),
        StoreStats {
            pending: 1,
            running: 1,
            oldest_unfinished: Some(receipts[1].received_at)
        }
    );
}

#[tokio::test]
async fn forgotten_deliveries_are_new_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
    let old = accepted(
        store
            .accept(delivery("servicenow", "old", "{}", 0))
            .await
            .unwrap(),
    );
    accepted(
        store
            .accept(delivery("servicenow", "new", "{}", 100))
            .await
            .unwrap(),
    );
    assert_eq!(store.forget_deliveries_before(at(50)).await.unwrap(), 1);
    let redelivered = accepted(
        store
            .accept(delivery("servicenow", "old", "{}", 200))
            .await
            .unwrap(),
    );
    assert_ne!(redelivered.id, old.id);
    assert!(matches!(
        store
            .accept(delivery("servicenow", "new", "{}", 201))
            .await
            .unwrap(),
        Acceptance::Repeat(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_are_each_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
    let tasks: Vec<_> = (0..400)
        .map(|n| {
            let store = Arc::clone(&store);
            // Every delivery twice: one of each pair is accepted, the other is its repeat.
            tokio::spawn(async move {
                store
                    .accept(delivery("servicenow", &format!("d{}", n / 2), "{}", n))
                    .await
            })
        })
        .collect();
    let mut new = 0;
    let mut repeats = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Acceptance::Accepted(_) => new += 1,
            Acceptance::Repeat(_) => repeats += 1,
            Acceptance::Conflict => panic!("no conflicting bodies were sent"),
        }
    }
    assert_eq!((new, repeats), (200, 200));
    assert_eq!(store.unfinished().await.unwrap().len(), 200);
    // Group commit: operations that queue up during a commit share the next one.
    assert!(
        store.commits() < 200,
        "{} commits for 401 operations",
        store.commits()
    );
}
