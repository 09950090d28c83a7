//! What the API tests share: a double on a manual clock, and clients pointed at it.

#![allow(dead_code)] // each test file uses its own part of this

use jiff::Timestamp;
use jiff::civil::date;
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, DoubleConfig};
use publish_guard::api::genesys::{GenesysClient, GenesysConfig};
use publish_guard::api::region::Endpoints;
use publish_guard::api::secret::Secret;
use publish_guard::effects::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;

/// A double on a manual clock standing at a Monday morning.
pub async fn double(config: impl FnOnce(&mut DoubleConfig)) -> (ApiDouble, ManualClock) {
    double_at(start(), config).await
}

/// A double on a manual clock standing at `now`.
pub async fn double_at(
    now: Timestamp,
    config: impl FnOnce(&mut DoubleConfig),
) -> (ApiDouble, ManualClock) {
    let clock = ManualClock::new(now);
    let mut cfg = DoubleConfig {
        clock: Arc::new(clock.clone()),
        ..DoubleConfig::default()
    };
    config(&mut cfg);
    let double = ApiDouble::start(cfg).await;
    let Ok(double) = double else {
        panic!("the double did not start: {:?}", double.err());
    };
    (double, clock)
}

/// When the tests start.
pub fn start() -> Timestamp {
    Timestamp::from_second(1_772_442_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The schedule the tests publish.
pub fn schedule() -> ScheduleRef {
    ScheduleRef {
        business_unit: "bu-1".into(),
        week: date(2026, 3, 2),
        schedule_id: "sched-1".into(),
    }
}

/// The client configuration for `double`, with a short timeout.
pub fn genesys_config(double: &ApiDouble) -> GenesysConfig {
    let mut config = GenesysConfig::new(
        Endpoints::explicit(double.base_url(), double.base_url()),
        double.client_id(),
        Secret::new(double.client_secret()),
    );
    config.timeout = Duration::from_millis(200);
    config
}

/// A Genesys client for `double` on `clock`.
pub fn genesys(double: &ApiDouble, clock: &ManualClock) -> GenesysClient {
    genesys_with(genesys_config(double), clock)
}

/// A Genesys client from `config` on `clock`.
pub fn genesys_with(config: GenesysConfig, clock: &ManualClock) -> GenesysClient {
    match GenesysClient::new(config, Arc::new(clock.clone())) {
        Ok(client) => client,
        Err(e) => panic!("the client did not build: {e}"),
    }
}
