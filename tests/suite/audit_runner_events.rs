//! The runner's own events through the audit log: they chain and verify like any
//! `Serialize` value, and `audit show` prints them readably.

use jiff::{SignedDuration, Timestamp};
use publish_guard::api::ScheduleRef;
use publish_guard::audit::log::{AuditLog, AuditOptions};
use publish_guard::audit::show::{ShowFilter, show};
use publish_guard::language::ast::{ActionKind, PhaseKind};
use publish_guard::runner::ScheduleState;
use publish_guard::runner::event::{CycleCause, Event, EventKind, Outcome, ReadPurpose};

fn event(minute: i64, cycle: Option<u64>, kind: EventKind) -> Event {
    Event {
        at: "2026-03-29T00:59:00Z".parse::<Timestamp>().unwrap()
            + SignedDuration::from_mins(minute),
        schedule: ScheduleRef {
            business_unit: "bu-1".into(),
            week: "2026-03-23".parse().unwrap(),
            schedule_id: "s-1".into(),
        }
        .into(),
        policy_version: "9f2c".repeat(16).into(),
        cycle,
        kind,
    }
}

#[test]
fn runner_events_chain_verify_and_show_readably() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let events = [
        event(
            0,
            None,
            EventKind::TriggerReceived {
                trigger: 1,
                delivery_id: Some("msg_1".into()),
                source: "servicenow".into(),
                event: Some("case.created".into()),
                duplicate: false,
            },
        ),
        event(
            0,
            Some(1),
            EventKind::CycleStarted {
                cause: CycleCause::Trigger { trigger: 1 },
            },
        ),
        event(
            1,
            Some(1),
            EventKind::StateRead {
                purpose: ReadPurpose::Evaluate,
                status: Some(200),
                error: None,
                state: ScheduleState::Published,
                published: Some(true),
                version: Some(7),
            },
        ),
        event(
            1,
            Some(1),
            EventKind::Decision {
                phase: PhaseKind::Trigger,
                rule: "published".into(),
                action: ActionKind::Skip,
                detail: Some("already published".into()),
            },
        ),
        event(
            1,
            Some(1),
            EventKind::Outcome {
                outcome: Outcome::Skipped {
                    reason: "already published".into(),
                },
                triggers: 1,
            },
        ),
    ];
    let mut log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    for (n, event) in events.iter().enumerate() {
        log.append(&format!("rcpt_1/{n}"), event.at, event).unwrap();
    }
    let checkpoints = publish_guard::audit::checkpoint::checkpoints_path(&path);
    let verified = publish_guard::audit::verify::verify(&path, &checkpoints, None)
        .unwrap()
        .unwrap();
    assert_eq!(verified.entries, 5);
    let mut out = Vec::new();
    let filter = ShowFilter {
        schedule: Some("s-1".into()),
        since: None,
    };
    show(
        std::io::BufReader::new(std::fs::File::open(&path).unwrap()),
        &filter,
        &mut out,
    )
    .unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}
