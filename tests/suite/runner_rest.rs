//! The runner over the plain REST backend: the same behaviour on the double's gateway
//! routes (a status read answering a state, a publish call).

use crate::api_support;
use crate::runner_support;

use crate::runner_support::{HookSink, Rig};
use jiff::SignedDuration;
use publish_guard::api::double::{CallKind, Fault};
use publish_guard::api::rest::{RestClient, RestConfig};
use publish_guard::language::ast::ActionKind;
use publish_guard::runner::event::{EventKind, Outcome};
use std::sync::Arc;
use std::time::Duration;

fn rest(rig: &Rig) -> RestClient {
    match RestClient::new(
        RestConfig::new(rig.double.base_url()),
        Arc::new(rig.clock.clone()),
    ) {
        Ok(c) => c,
        Err(e) => panic!("the client did not build: {e}"),
    }
}

#[tokio::test]
async fn a_draft_and_one_trigger_make_one_publish_that_ends_published() {
    let rig = Rig::new(false, 1, SignedDuration::from_secs(20)).await;
    let sink = HookSink::plain();
    rig.run(&rest(&rig), 1, &sink).await;
    assert_eq!(sink.outcomes(), [Outcome::Published { version: 2 }]);
    assert_eq!(rig.double.calls(CallKind::GatewayPublish), 1);
    assert!(
        rig.elapsed() >= SignedDuration::from_secs(20),
        "followed on the clock"
    );
}

#[tokio::test]
async fn an_already_published_schedule_gets_no_write() {
    let rig = runner_support::scenario_already_published(rest).await;
    assert_eq!(rig.double.calls(CallKind::GatewayPublish), 0);
}

#[tokio::test]
async fn a_hundred_concurrent_triggers_make_one_publish_and_no_409() {
    let (rig, _) = runner_support::scenario_burst_of_100(rest).await;
    assert_eq!(rig.double.calls(CallKind::GatewayPublish), 1);
}

#[tokio::test]
async fn server_errors_back_off_until_attempts_run_out() {
    let rig = Rig::new(false, 1, SignedDuration::ZERO).await;
    rig.double
        .add_fault(Fault::status(503).on(CallKind::GatewayPublish));
    let sink = HookSink::plain();
    rig.run(&rest(&rig), 1, &sink).await;

    assert_eq!(
        rig.double.calls(CallKind::GatewayPublish),
        6,
        "attempts 6 allows six tries"
    );
    let reason = "attempts exhausted: 6 of backoff `conflict`".to_owned();
    assert_eq!(sink.outcomes(), [Outcome::Failed { reason }]);
}

#[tokio::test]
async fn a_hanging_gateway_is_a_timeout_outcome_not_a_hung_test() {
    let rig = Rig::new(false, 1, SignedDuration::ZERO).await;
    rig.double
        .add_fault(Fault::delay(Duration::from_secs(30)).on(CallKind::GatewayPublish));
    let mut config = RestConfig::new(rig.double.base_url());
    config.timeout = Duration::from_millis(150);
    let client = match RestClient::new(config, Arc::new(rig.clock.clone())) {
        Ok(c) => c,
        Err(e) => panic!("the client did not build: {e}"),
    };
    let sink = HookSink::plain();
    rig.run(&client, 1, &sink).await;

    let reason = "unexpected response".to_owned();
    assert_eq!(sink.outcomes(), [Outcome::Failed { reason }]);
}

#[tokio::test]
async fn an_edit_between_read_and_publish_gets_409_then_a_recheck() {
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
            let edit = rig.double.person_edit(&api_support::schedule());
            assert!(edit.is_ok(), "{edit:?}");
        }
    });
    rig.run(&rest(&rig), 1, &sink).await;

    let log = rig.double.call_log();
    let conflict = log.iter().position(|c| c.status == Some(409));
    let Some(conflict) = conflict else {
        panic!("no 409 in {log:?}")
    };
    assert_eq!(
        log.get(conflict + 1).map(|c| c.kind),
        Some(CallKind::GatewayStatus),
        "after the 409 the runner reads the state before writing again"
    );
    assert_eq!(sink.outcomes(), [Outcome::Published { version: 3 }]);
}

#[tokio::test]
async fn a_429_with_retry_after_7_waits_7_seconds_of_the_clock_then_continues() {
    runner_support::scenario_throttled_retry_after_7(rest).await;
}
