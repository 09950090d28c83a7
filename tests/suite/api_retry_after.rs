//! A `Retry-After` beyond the configured cap over HTTP: the call that met it fails saying
//! so ("retry after 4h: daily limit?"), and the hold still applies to the next call; under
//! a cap above it, the 429 is an answer like any other.

use crate::api_support::{double, genesys_config, genesys_with, schedule};
use futures_util::FutureExt;
use jiff::SignedDuration;
use publish_guard::api::double::{ApiDouble, CallKind, Fault};
use publish_guard::api::{ApiError, ScheduleApi};
use publish_guard::effects::clock::{Clock, ManualClock};

const FOUR_HOURS: u32 = 4 * 3600;

/// A double on a manual clock whose first schedule read is answered 429 with a
/// `Retry-After` of four hours.
async fn double_on_a_daily_limit() -> (ApiDouble, ManualClock) {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 1);
    double.add_fault(
        Fault::throttled(FOUR_HOURS)
            .on(CallKind::GetSchedule)
            .times(1),
    );
    (double, clock)
}

#[tokio::test]
async fn a_retry_after_above_the_configured_cap_fails_the_call_and_still_holds_the_next() {
    let (double, clock) = double_on_a_daily_limit().await;
    let mut config = genesys_config(&double);
    config.retry_after_cap = SignedDuration::from_mins(10);
    let client = genesys_with(config, &clock);

    let first = client.read(&schedule()).await;
    let Err(error @ ApiError::RetryAfterTooLong { .. }) = first else {
        panic!("not refused as too long: {first:?}")
    };
    assert!(
        error.to_string().ends_with("retry after 4h: daily limit?"),
        "{error}"
    );
    // The next call waits for the hold on the clock: it has not gone out.
    let target = schedule();
    let mut next = Box::pin(client.read(&target));
    assert!((&mut next).now_or_never().is_none());
    assert_eq!(double.calls(CallKind::GetSchedule), 1);
    clock.set(clock.now() + SignedDuration::from_hours(4));
    let answered = next.await.map(|a| a.status);
    assert_eq!(answered.ok(), Some(200));
    assert_eq!(double.calls(CallKind::GetSchedule), 2);
}

#[tokio::test]
async fn under_a_cap_above_it_the_429_is_an_answer() {
    let (double, clock) = double_on_a_daily_limit().await;
    let mut config = genesys_config(&double);
    config.retry_after_cap = SignedDuration::from_hours(5);
    let client = genesys_with(config, &clock);
    let first = client.read(&schedule()).await;
    let answer = first.map(|a| (a.status, a.retry_after));
    assert_eq!(
        answer.ok(),
        Some((429, Some(SignedDuration::from_hours(4))))
    );
}
