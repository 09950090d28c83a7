//! The runner over the plain REST backend: the same behaviour on the double's gateway
//! routes (a status read answering a state, a publish call).

mod api_support;
mod runner_support;

use jiff::SignedDuration;
use publish_guard::api::double::CallKind;
use publish_guard::api::rest::{RestClient, RestConfig};
use publish_guard::event::Outcome;
use runner_support::{HookSink, Rig};
use std::sync::Arc;

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
