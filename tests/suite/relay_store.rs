//! The SQLite store on a real file: exactly-once acceptance of deliveries, progress that
//! survives closing and reopening (an unconfirmed note too), finished work never reopened,
//! and group commit.

use crate::relay_support::delivery;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::ScheduleRef;
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::{
    Acceptance, NewTrigger, Progress, StoreError, StoreStats, TriggerNote, TriggerStatus,
    TriggerStore,
};
use publish_guard::runner::EarlierWrite;
use std::sync::Arc;

fn at(seconds: i64) -> Timestamp {
    // Nanoseconds beyond the microsecond are dropped by the store.
    "2026-10-25T00:59:00.123456789Z"
        .parse::<Timestamp>()
        .unwrap()
        + SignedDuration::from_secs(seconds)
}

/// A note of a publish of version 8 of `s-1`.
fn publishing(accepted: bool) -> TriggerNote {
    TriggerNote::Publishing {
        write: EarlierWrite {
            schedule: ScheduleRef {
                business_unit: "bu-1".into(),
                week: "2026-10-19".parse().unwrap(),
                schedule_id: "s-1".into(),
            },
            version: 8,
            since: at(0),
            accepted,
        },
    }
}

fn failed(reason: &str) -> TriggerNote {
    TriggerNote::Failed {
        reason: reason.into(),
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
            .accept(delivery("servicenow", "d1", "{}", at(0)))
            .await
            .unwrap(),
    );
    assert!(first.id.starts_with("rcpt_"));
    assert_eq!(
        first.received_at,
        "2026-10-25T00:59:00.123456Z".parse().unwrap()
    );
    let again = store
        .accept(delivery("servicenow", "d1", "{}", at(5)))
        .await
        .unwrap();
    assert_eq!(again, Acceptance::Repeat(first.clone()));
    let changed = store
        .accept(delivery("servicenow", "d1", "{\"x\":1}", at(6)))
        .await
        .unwrap();
    assert_eq!(changed, Acceptance::Conflict);
    // Delivery ids are per source.
    let other = accepted(
        store
            .accept(delivery("manual", "d1", "{}", at(7)))
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
        let trigger = delivery("servicenow", &format!("d{n}"), "{}", at(n));
        receipts.push(accepted(store.accept(trigger).await.unwrap()));
    }
    let progress = |status, note: Option<TriggerNote>, due: Option<i64>| Progress {
        status,
        note,
        due_at: due.map(at),
    };
    store
        .record(
            &receipts[0].id,
            progress(TriggerStatus::Done, Some(publishing(true)), None),
        )
        .await
        .unwrap();
    store
        .record(
            &receipts[1].id,
            progress(TriggerStatus::Running, Some(publishing(false)), None),
        )
        .await
        .unwrap();
    store
        .record(
            &receipts[2].id,
            progress(
                TriggerStatus::Pending,
                Some(TriggerNote::Deferred),
                Some(60),
            ),
        )
        .await
        .unwrap();
    store
        .record(
            &receipts[3].id,
            progress(
                TriggerStatus::Failed,
                Some(failed("attempts exhausted")),
                None,
            ),
        )
        .await
        .unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    let unfinished = store.unfinished().await.unwrap();
    let seen: Vec<(&str, TriggerStatus, Option<TriggerNote>, Option<Timestamp>)> = unfinished
        .iter()
        .map(|t| (t.receipt.id.as_str(), t.status, t.note.clone(), t.due_at))
        .collect();
    assert_eq!(
        seen,
        [
            (
                receipts[1].id.as_str(),
                TriggerStatus::Running,
                Some(publishing(false)),
                None
            ),
            (
                receipts[2].id.as_str(),
                TriggerStatus::Pending,
                Some(TriggerNote::Deferred),
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
        (done.status, done.note),
        (TriggerStatus::Done, Some(publishing(true)))
    );
    assert_eq!(done.event, "case.created");
    // The delivery is still remembered after reopening.
    assert_eq!(
        store
            .accept(delivery("servicenow", "d0", "{}", at(9)))
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
            .accept(delivery("servicenow", "old", "{}", at(0)))
            .await
            .unwrap(),
    );
    accepted(
        store
            .accept(delivery("servicenow", "new", "{}", at(100)))
            .await
            .unwrap(),
    );
    assert_eq!(store.forget_deliveries_before(at(50)).await.unwrap(), 1);
    let redelivered = accepted(
        store
            .accept(delivery("servicenow", "old", "{}", at(200)))
            .await
            .unwrap(),
    );
    assert_ne!(redelivered.id, old.id);
    assert!(matches!(
        store
            .accept(delivery("servicenow", "new", "{}", at(201)))
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
                    .accept(delivery("servicenow", &format!("d{}", n / 2), "{}", at(n)))
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

/// A store written by the previous schema (user_version 1: the target as JSON in one column,
/// the worker's note as free text) opens migrated: every note read back as what it meant,
/// the targets in their columns, an unfinished trigger with an unreadable target failed, the
/// deliveries still remembered.
#[tokio::test]
async fn a_store_of_the_previous_schema_opens_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    std::fs::copy("tests/fixtures/relay/store-v1.db", &path).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let unfinished = store.unfinished().await.unwrap();
    let seen: Vec<(&str, &str, &str, TriggerStatus, Option<TriggerNote>)> = unfinished
        .iter()
        .map(|t| {
            (
                t.delivery_id.as_str(),
                t.target.week.as_str(),
                t.target.schedule_id.as_str(),
                t.status,
                t.note.clone(),
            )
        })
        .collect();
    let publishing = TriggerNote::Publishing {
        write: EarlierWrite {
            schedule: ScheduleRef {
                business_unit: "bu-1".into(),
                week: "2026-10-19".parse().unwrap(),
                schedule_id: "s-1".into(),
            },
            version: 7,
            since: "2026-10-25T01:00:00Z".parse().unwrap(),
            accepted: true,
        },
    };
    assert_eq!(
        seen,
        [
            ("new", "current", "latest", TriggerStatus::Pending, None),
            (
                "deferred",
                "2026-10-19",
                "s-1",
                TriggerStatus::Pending,
                Some(TriggerNote::Deferred)
            ),
            (
                "publishing",
                "2026-10-19",
                "s-1",
                TriggerStatus::Pending,
                Some(publishing)
            ),
        ]
    );
    assert_eq!(
        unfinished[1].due_at,
        Some(Timestamp::from_second(1_792_893_600).unwrap())
    );
    assert!(unfinished.iter().all(|t| t.target.business_unit == "bu-1"));
    let mut finished = Vec::new();
    for receipt in [
        "rcpt_1d2c571a36e5f19a864d369430acc7ff",
        "rcpt_addaf7c4b6acc9063cd2db2536c81391",
        "rcpt_7bd1b8cd934e4fb9ca9eae24dfc86b62",
    ] {
        let trigger = store.get(receipt).await.unwrap().unwrap();
        finished.push((trigger.delivery_id, trigger.status, trigger.note));
    }
    assert_eq!(
        finished,
        [
            (
                "failed".into(),
                TriggerStatus::Failed,
                Some(failed("attempts exhausted"))
            ),
            ("done".into(), TriggerStatus::Done, None),
            (
                "legacy".into(),
                TriggerStatus::Failed,
                Some(failed(
                    "the stored schedule \"bu-1/2026-10-19/s-1\" is unreadable: \
                     expected value at line 1 column 1"
                ))
            ),
        ]
    );
    // The deliveries came along: a repeat is still a repeat.
    let repeat = NewTrigger {
        delivery_id: "done".into(),
        body_hash: publish_guard::audit::canonical::sha256_hex(b"done"),
        ..delivery("servicenow", "done", "", at(0))
    };
    assert!(matches!(
        store.accept(repeat).await.unwrap(),
        Acceptance::Repeat(_)
    ));
    drop(store);
    // Reopened, it is at the current version and needs no migration.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.unfinished().await.unwrap().len(), 3);
}

/// A file from a newer build is refused, not misread.
#[tokio::test]
async fn a_store_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    drop(SqliteStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 9).unwrap();
    drop(raw);
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("schema version 9 is newer than this build's (2)"),
        "{error}"
    );
}

#[tokio::test]
async fn a_trigger_noted_unconfirmed_stays_pending_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let store = SqliteStore::open(&path).unwrap();
    let receipt = accepted(
        store
            .accept(delivery("servicenow", "d1", "{}", at(0)))
            .await
            .unwrap(),
    );
    let unconfirmed = Progress {
        status: TriggerStatus::Pending,
        note: Some(TriggerNote::Unconfirmed),
        due_at: None,
    };
    store.record(&receipt.id, unconfirmed).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let kept: Vec<_> = (store.unfinished().await.unwrap().into_iter())
        .map(|t| (t.receipt.id, t.status, t.note))
        .collect();
    assert_eq!(
        kept,
        [(
            receipt.id,
            TriggerStatus::Pending,
            Some(TriggerNote::Unconfirmed)
        )]
    );
}
