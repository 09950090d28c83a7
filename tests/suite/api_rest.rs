//! The plain REST backend against the double's gateway routes, over real HTTP on loopback:
//! what is particular to a gateway (its publishing state, configurable paths, timeouts); what
//! every backend keeps is in `api_contract`.

use crate::api_support::{double, schedule};
use jiff::SignedDuration;
use publish_guard::api::double::{ApiDouble, CallKind, Fault};
use publish_guard::api::rest::{RestClient, RestConfig};
use publish_guard::api::{ApiError, OperationStatus, ScheduleApi};
use publish_guard::effects::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;

fn rest(double: &ApiDouble, clock: &ManualClock) -> RestClient {
    let mut config = RestConfig::new(double.base_url());
    config.timeout = Duration::from_millis(200);
    match RestClient::new(config, Arc::new(clock.clone())) {
        Ok(client) => client,
        Err(e) => panic!("the client did not build: {e}"),
    }
}

#[tokio::test]
async fn the_gateway_reads_draft_publishing_and_published() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let client = rest(&double, &clock);
    let state = |a: Option<publish_guard::api::ScheduleSnapshot>| {
        a.map(|s| (s.published, s.publishing, s.version))
    };

    let draft = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(state(draft), Some((false, false, 3)));

    let published = client.publish(&schedule(), 3, "t-1").await.ok();
    assert_eq!(published.as_ref().map(|a| a.status), Some(202));
    let accepted = published.and_then(|a| a.body).map(|b| b.status);
    assert_eq!(accepted, Some(OperationStatus::Processing));

    let running = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(state(running), Some((false, true, 3)));
    clock.advance(SignedDuration::from_secs(30));
    let done = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(state(done), Some((true, false, 4)));

    let keys: Vec<Option<String>> = double
        .call_log()
        .into_iter()
        .filter(|c| c.kind == CallKind::GatewayPublish)
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(keys, [Some("t-1:publish".to_owned())]);
    assert_eq!(double.calls(CallKind::GatewayStatus), 3);
}

#[tokio::test]
async fn the_gateway_paths_are_configurable() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let mut config = RestConfig::new(double.base_url());
    config.status_path = "/nowhere/{scheduleId}".into();
    config.list_path = None;
    let client = RestClient::new(config, Arc::new(clock.clone()));
    let Ok(client) = client else {
        panic!("the client did not build");
    };
    let answer = client.read(&schedule()).await.ok();
    assert_eq!(answer.map(|a| a.status), Some(404));
    assert_eq!(double.calls(CallKind::GatewayStatus), 0);
    let list = client.list_week("bu-1", schedule().week).await;
    assert!(matches!(
        list,
        Err(ApiError::Protocol {
            call: "list_week",
            ..
        })
    ));
}

#[tokio::test]
async fn a_hanging_gateway_times_out() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    double.add_fault(Fault::delay(Duration::from_secs(30)));
    let result = rest(&double, &clock).publish(&schedule(), 3, "a").await;
    assert!(
        matches!(
            result,
            Err(ApiError::Timeout {
                call: "publish",
                ..
            })
        ),
        "{result:?}"
    );
}
