//! Acceptance tests of the runner over real HTTP: the live driver, the Genesys client and
//! the API double on loopback, all on one clock that the test moves (no real sleeping).

use crate::runner_support;

use crate::api_support::{genesys_config, schedule};
use crate::runner_support::{HookSink, Rig};
use jiff::SignedDuration;
use publish_guard::api::double::{ApiDouble, CallKind, Fault};
use publish_guard::api::genesys::{GenesysClient, GenesysConfig};
use publish_guard::language::ast::ActionKind;
use publish_guard::runner::event::{CycleCause, EventKind, Outcome};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn genesys(rig: &Rig, config: GenesysConfig) -> GenesysClient {
    match GenesysClient::new(config, Arc::new(rig.clock.clone())) {
        Ok(c) => c,
        Err(e) => panic!("the client did not build: {e}"),
    }
}

/// Run `count` triggers as a burst through a Genesys client configured by `config`.
async fn run_with(rig: &Rig, config: GenesysConfig, count: usize, sink: &HookSink<'_>) {
    rig.run(&genesys(rig, config), count, sink).await;
}

/// A Genesys client pointed at the rig's double.
fn client(rig: &Rig) -> GenesysClient {
    genesys(rig, genesys_config(&rig.double))
}

/// Run `count` triggers as a burst through a Genesys client pointed at the double.
async fn run(rig: &Rig, count: usize, sink: &HookSink<'_>) {
    run_with(rig, genesys_config(&rig.double), count, sink).await;
}

fn writes(double: &ApiDouble) -> usize {
    double.calls(CallKind::UploadUrl) + double.calls(CallKind::Update)
}

/// `(rule, action)` of every decision, in order.
fn decisions(sink: &HookSink<'_>) -> Vec<(String, String)> {
    sink.kinds()
        .into_iter()
        .filter_map(|k| match k {
            EventKind::Decision { rule, action, .. } => Some((rule, action.keyword().to_owned())),
            _ => None,
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(r, a)| ((*r).to_owned(), (*a).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_draft_and_one_trigger_make_one_publish_that_ends_published() {
    let rig = Rig::new(false, 1, SignedDuration::from_secs(20)).await;
    let sink = HookSink::plain();
    run(&rig, 1, &sink).await;

    assert_eq!(sink.outcomes(), [Outcome::Published { version: 2 }]);
    assert_eq!(rig.double.calls(CallKind::UploadUrl), 1);
    assert_eq!(rig.double.calls(CallKind::Upload), 1);
    assert_eq!(rig.double.calls(CallKind::Update), 1);
    let view = rig.double.schedule(&schedule());
    assert!(
        view.is_some_and(|v| v.snapshot.published),
        "the double shows it published"
    );
    for step in [
        "trigger_received",
        "cycle_started",
        "publish_call",
        "outcome",
    ] {
        assert_eq!(sink.count(step), 1, "{step}");
    }
    // The operation was followed on the clock: at least the processing time passed.
    assert!(rig.elapsed() >= SignedDuration::from_secs(20));
    let keys: BTreeSet<Option<String>> = rig
        .double
        .call_log()
        .into_iter()
        .filter(|c| c.kind == CallKind::Update)
        .map(|c| c.idempotency_key)
        .collect();
    assert!(
        keys.iter().all(Option::is_some),
        "every write has an Idempotency-Key"
    );
}

#[tokio::test]
async fn an_already_published_schedule_gets_no_write() {
    let rig = runner_support::scenario_already_published(client).await;
    assert_eq!(writes(&rig.double), 0);
}

#[tokio::test]
async fn a_hundred_concurrent_triggers_make_one_publish_and_no_409() {
    let (rig, sink) = runner_support::scenario_burst_of_100(client).await;
    assert_eq!(rig.double.calls(CallKind::Update), 1);
    // Every trigger is accounted for: it started a cycle or was coalesced into one, and
    // the outcomes answer all of them.
    let mut accounted = BTreeSet::new();
    let mut answered = 0;
    for kind in sink.kinds() {
        match kind {
            EventKind::CycleStarted {
                cause: CycleCause::Trigger { trigger },
            }
            | EventKind::TriggerCoalesced { trigger, .. } => {
                assert!(
                    accounted.insert(trigger),
                    "trigger {trigger} accounted twice"
                );
            }
            EventKind::Outcome { triggers, .. } => answered += triggers,
            _ => {}
        }
    }
    assert_eq!(accounted.len(), 100);
    assert_eq!(answered, 100);
}

#[tokio::test]
async fn an_edit_between_read_and_write_gets_409_then_a_recheck_not_a_blind_retry() {
    let rig = Rig::new(false, 1, SignedDuration::ZERO).await;
    let edited = std::cell::Cell::new(false);
    let sink = HookSink::new(|event| {
        // A person saves the schedule right after our first decision to publish.
        if matches!(
            &event.kind,
            EventKind::Decision {
                action: ActionKind::Publish,
                ..
            }
        ) && !edited.replace(true)
        {
            let edit = rig.double.person_edit(&schedule());
            assert!(edit.is_ok(), "{edit:?}");
        }
    });
    run(&rig, 1, &sink).await;

    assert_eq!(
        decisions(&sink),
        pairs(&[
            ("ready", "publish"),
            ("conflict", "recheck"),
            ("ready", "publish"),
            ("ok", "done"),
        ])
    );
    // After the 409 the runner read the schedule again before writing again.
    let log = rig.double.call_log();
    let conflict = log.iter().position(|c| c.status == Some(409));
    let Some(conflict) = conflict else {
        panic!("no 409 in {log:?}")
    };
    let next_kinds: Vec<CallKind> = log[conflict + 1..].iter().map(|c| c.kind).collect();
    assert_eq!(
        next_kinds.first(),
        Some(&CallKind::GetSchedule),
        "{next_kinds:?}"
    );
    assert_eq!(sink.outcomes(), [Outcome::Published { version: 3 }]);
}

#[tokio::test]
async fn a_429_with_retry_after_7_waits_7_seconds_of_the_clock_then_continues() {
    runner_support::scenario_throttled_retry_after_7(client).await;
}

#[tokio::test]
async fn server_errors_back_off_exponentially_until_attempts_run_out() {
    let rig = Rig::new(false, 1, SignedDuration::ZERO).await;
    rig.double
        .add_fault(Fault::status(503).on(CallKind::Update));
    let sink = HookSink::plain();
    run(&rig, 1, &sink).await;

    assert_eq!(
        rig.double.calls(CallKind::Update),
        6,
        "attempts 6 allows six tries"
    );
    let waits: Vec<SignedDuration> = sink
        .kinds()
        .into_iter()
        .filter_map(|k| match k {
            EventKind::Wait { delay, .. } => Some(delay.duration),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 5);
    for (n, wait) in waits.iter().enumerate() {
        // `exponential 5s factor 2 max 2m jitter full`: uniform below min(2m, 5s * 2^n).
        let ceiling = SignedDuration::from_secs(5 << n).min(SignedDuration::from_mins(2));
        assert!(*wait < ceiling, "wait {n}: {wait:?} not below {ceiling:?}");
    }
    assert!(
        waits.windows(2).any(|w| w[0] != w[1]),
        "jittered: {waits:?}"
    );
    let total: SignedDuration = waits.iter().copied().sum();
    assert_eq!(rig.elapsed(), total, "waited on the clock, nowhere else");
    let reason = "attempts exhausted: 6 of backoff `conflict`".to_owned();
    assert_eq!(sink.outcomes(), [Outcome::Failed { reason }]);
}

#[tokio::test]
async fn a_hanging_api_is_a_timeout_outcome_not_a_hung_test() {
    let rig = Rig::new(false, 1, SignedDuration::ZERO).await;
    rig.double
        .add_fault(Fault::delay(Duration::from_secs(30)).on(CallKind::Update));
    let mut config = genesys_config(&rig.double);
    config.timeout = Duration::from_millis(150);
    let sink = HookSink::plain();
    run_with(&rig, config, 1, &sink).await;

    let call = sink.kinds().into_iter().find_map(|k| match k {
        EventKind::PublishCall { status, error, .. } => Some((status, error)),
        _ => None,
    });
    let Some((status, Some(error))) = call else {
        panic!("no failed publish call: {call:?}")
    };
    assert_eq!(status, None);
    assert!(error.contains("timed out"), "{error}");
    assert_eq!(
        decisions(&sink).last(),
        Some(&("otherwise".to_owned(), "fail".to_owned())),
        "the policy saw response.status 0"
    );
    let reason = "unexpected response".to_owned();
    assert_eq!(sink.outcomes(), [Outcome::Failed { reason }]);
}
