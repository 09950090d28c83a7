//! The Genesys client against the double, over real HTTP on loopback: what is particular
//! to Genesys (the call sequence, OAuth, rate limits, timeouts, optional fields, regions);
//! what every backend keeps is in `api_contract`.

use crate::api_support;

use crate::api_support::{double, genesys, genesys_config, genesys_with, schedule};
use jiff::SignedDuration;
use publish_guard::api::double::{ApiDouble, CallKind, Fault, OptionalField};
use publish_guard::api::model::ModelConfig;
use publish_guard::api::secret::Secret;
use publish_guard::api::week::WeekSettings;
use publish_guard::api::{ApiError, ListedSchedule, OperationStatus, PublishAccepted, ScheduleApi};
use publish_guard::effects::clock::ManualClock;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_full_publish_sequence_publishes_after_processing() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let client = genesys(&double, &clock);

    let read = client.read(&schedule()).await.ok();
    let snapshot = read.and_then(|a| a.body);
    assert_eq!(
        snapshot.as_ref().map(|s| (s.published, s.version)),
        Some((false, 3))
    );
    assert_eq!(
        snapshot.and_then(|s| s.modified_by).as_deref(),
        Some("planner")
    );

    let published = client.publish(&schedule(), 3, "trigger-7").await.ok();
    assert_eq!(published.as_ref().map(|a| a.status), Some(200));
    let accepted = published.and_then(|a| a.body);
    assert_eq!(
        accepted.map(|b| b.status),
        Some(OperationStatus::Processing)
    );

    let keys: Vec<(CallKind, Option<String>)> = double
        .call_log()
        .into_iter()
        .map(|c| (c.kind, c.idempotency_key))
        .collect();
    assert_eq!(
        keys,
        [
            (CallKind::Token, None),
            (CallKind::GetSchedule, None),
            // The week's list tells whether another schedule of the week is published.
            (CallKind::ListWeek, None),
            (CallKind::UploadUrl, Some("trigger-7:uploadurl".into())),
            (CallKind::Upload, Some("trigger-7:upload".into())),
            (CallKind::Update, Some("trigger-7:update".into())),
        ]
    );

    let during = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(during.map(|s| (s.published, s.version)), Some((false, 3)));
    clock.advance(SignedDuration::from_secs(30));
    let after = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(after.map(|s| (s.published, s.version)), Some((true, 4)));
}

/// A double that allows two reads a minute (each a `GET` and the week's list), with the
/// schedule in it.
async fn two_reads_per_minute() -> (ApiDouble, ManualClock) {
    let (double, clock) = double(|c| {
        c.model = ModelConfig {
            requests_per_minute: 4,
            ..ModelConfig::default()
        }
    })
    .await;
    double.add_schedule(&schedule(), false, 3);
    (double, clock)
}

#[tokio::test]
async fn a_throttled_call_answers_429_with_retry_after() {
    let (double, clock) = two_reads_per_minute().await;
    // Another process with the same OAuth client spends the allowance.
    let other = genesys(&double, &clock);
    assert!(other.read(&schedule()).await.is_ok());
    clock.advance(SignedDuration::from_secs(20));
    assert!(other.read(&schedule()).await.is_ok());

    let client = genesys(&double, &clock);
    let answer = client.read(&schedule()).await.ok();
    assert_eq!(answer.as_ref().map(|a| a.status), Some(429));
    assert_eq!(
        answer.as_ref().and_then(|a| a.retry_after),
        Some(SignedDuration::from_secs(40))
    );
    let limit = answer
        .and_then(|a| a.rate_limit)
        .map(|r| (r.count, r.allowed, r.reset_secs));
    assert_eq!(limit, Some((4, 4, 40)));
}

#[tokio::test]
async fn the_limiter_waits_for_the_servers_reset_instead_of_drawing_a_429() {
    let (double, clock) = two_reads_per_minute().await;
    let client = genesys(&double, &clock);
    assert!(client.read(&schedule()).await.is_ok());
    assert!(client.read(&schedule()).await.is_ok());
    let third = tokio::spawn({
        let client = client.clone();
        async move { client.read(&schedule()).await.ok().map(|a| a.status) }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(double.calls(CallKind::GetSchedule), 2);
    clock.advance(SignedDuration::from_secs(60));
    assert_eq!(third.await.ok().flatten(), Some(200));
    assert_eq!(double.calls(CallKind::GetSchedule), 3);
}

#[tokio::test]
async fn one_token_serves_many_calls() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let client = genesys(&double, &clock);
    for _ in 0..5 {
        assert!(client.read(&schedule()).await.is_ok());
    }
    assert_eq!(double.calls(CallKind::Token), 1);
    assert_eq!(double.calls(CallKind::GetSchedule), 5);
}

#[tokio::test]
async fn the_token_is_renewed_shortly_before_it_expires() {
    let (double, clock) = double(|c| c.token_lifetime = SignedDuration::from_hours(1)).await;
    double.add_schedule(&schedule(), false, 3);
    let client = genesys(&double, &clock);
    assert!(client.read(&schedule()).await.is_ok());
    clock.advance(SignedDuration::from_mins(54));
    assert!(client.read(&schedule()).await.is_ok());
    assert_eq!(double.calls(CallKind::Token), 1);
    clock.advance(SignedDuration::from_mins(1));
    let answer = client.read(&schedule()).await.ok();
    assert_eq!(answer.map(|a| a.status), Some(200));
    assert_eq!(double.calls(CallKind::Token), 2);
    let statuses: Vec<Option<u16>> = double.call_log().iter().map(|c| c.status).collect();
    assert!(!statuses.contains(&Some(401)));
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_and_the_call_retried() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let client = genesys(&double, &clock);
    assert!(client.read(&schedule()).await.is_ok());
    double.expire_tokens();
    let answer = client.read(&schedule()).await.ok();
    assert_eq!(answer.map(|a| a.status), Some(200));
    let log: Vec<(CallKind, Option<u16>)> = double
        .call_log()
        .into_iter()
        .map(|c| (c.kind, c.status))
        .collect();
    assert_eq!(
        log,
        [
            (CallKind::Token, Some(200)),
            (CallKind::GetSchedule, Some(200)),
            (CallKind::ListWeek, Some(200)),
            (CallKind::GetSchedule, Some(401)),
            (CallKind::Token, Some(200)),
            (CallKind::GetSchedule, Some(200)),
            (CallKind::ListWeek, Some(200)),
        ]
    );
}

#[tokio::test]
async fn a_token_refused_twice_is_an_auth_error() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    double.add_fault(Fault::status(401).on(CallKind::GetSchedule));
    let client = genesys(&double, &clock);
    let result = client.read(&schedule()).await;
    assert!(matches!(result, Err(ApiError::Auth(_))), "{result:?}");
    assert_eq!(double.calls(CallKind::GetSchedule), 2);
    assert_eq!(double.calls(CallKind::Token), 2);
}

#[tokio::test]
async fn a_bad_secret_is_a_clear_error_that_never_shows_the_secret() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let mut config = genesys_config(&double);
    config.client_secret = Secret::new("s3cr3t-value-never-shown");
    let client = genesys_with(config, &clock);
    let result = client.read(&schedule()).await;
    let Err(error) = result else {
        panic!("a bad secret was accepted");
    };
    let shown = format!("{error} {error:?} {client:?}");
    assert!(matches!(error, ApiError::Auth(_)), "{shown}");
    assert!(
        shown.contains("publish-guard") && shown.contains("401"),
        "{shown}"
    );
    assert!(!shown.contains("s3cr3t-value-never-shown"), "{shown}");
    assert_eq!(double.calls(CallKind::GetSchedule), 0);
}

#[tokio::test]
async fn a_hanging_api_times_out() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    double.add_fault(Fault::delay(Duration::from_secs(30)).on(CallKind::GetSchedule));
    let client = genesys(&double, &clock);
    let started = Instant::now();
    let result = client.read(&schedule()).await;
    assert!(
        matches!(result, Err(ApiError::Timeout { call: "read", after }) if after == Duration::from_millis(200)),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn every_step_of_a_publish_has_a_timeout() {
    for (kind, step) in [
        (CallKind::Token, "token"),
        (CallKind::UploadUrl, "uploadurl"),
        (CallKind::Upload, "upload"),
        (CallKind::Update, "update"),
    ] {
        let (double, clock) = double(|_| {}).await;
        double.add_schedule(&schedule(), false, 3);
        double.add_fault(Fault::delay(Duration::from_secs(30)).on(kind));
        let result = genesys(&double, &clock).publish(&schedule(), 3, "k").await;
        assert!(
            matches!(result, Err(ApiError::Timeout { call, .. }) if call == step),
            "{step}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_server_error_is_an_answer_and_a_dropped_connection_an_error() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let client = genesys(&double, &clock);
    double.add_fault(Fault::status(503).on(CallKind::Update).times(1));
    let answer = client.publish(&schedule(), 3, "a").await.ok();
    assert_eq!(answer.map(|a| (a.status, a.body)), Some((503, None)));

    double.add_fault(Fault::drop_connection().on(CallKind::GetSchedule).times(1));
    let dropped = client.read(&schedule()).await;
    assert!(
        matches!(dropped, Err(ApiError::Transport { call: "read", .. })),
        "{dropped:?}"
    );
    let after = client.read(&schedule()).await.ok();
    assert_eq!(after.map(|a| a.status), Some(200));
}

#[tokio::test]
async fn a_failed_upload_never_shows_its_signed_url() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    double.add_fault(Fault::drop_connection().on(CallKind::Upload));
    let result = genesys(&double, &clock).publish(&schedule(), 3, "a").await;
    let shown = format!("{result:?}");
    assert!(
        matches!(result, Err(ApiError::Transport { call: "upload", .. })),
        "{shown}"
    );
    assert!(
        !shown.contains("/uploads/") && !shown.contains("127.0.0.1"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_throttled_upload_url_ends_the_publish_with_its_answer() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    double.add_fault(Fault::status(502).on(CallKind::UploadUrl));
    let answer = genesys(&double, &clock)
        .publish(&schedule(), 3, "a")
        .await
        .ok();
    assert_eq!(answer.map(|a| a.status), Some(502));
    assert_eq!(double.calls(CallKind::Upload), 0);
    assert_eq!(double.calls(CallKind::Update), 0);
}

#[tokio::test]
async fn the_week_lists_its_schedules_with_their_weeks_state_and_times() {
    let (double, clock) = double(|_| {}).await;
    let mut earlier = schedule();
    earlier.schedule_id = "multi".into();
    earlier.week = schedule().week - jiff::Span::new().days(7);
    double.add_schedule(&earlier, true, 2);
    assert_eq!(double.set_week_count(&earlier, 2), Ok(()));
    clock.advance(SignedDuration::from_mins(1));
    double.add_schedule(&schedule(), false, 3);
    let listed = genesys(&double, &clock)
        .list_week("bu-1", schedule().week)
        .await
        .ok();
    let mut listed = listed.and_then(|a| a.body).unwrap_or_default();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let created = |minutes: i64| Some(api_support::start() + SignedDuration::from_mins(minutes));
    assert_eq!(
        listed,
        [
            ListedSchedule {
                id: "multi".into(),
                week: Some(earlier.week),
                week_count: Some(2),
                published: Some(true),
                version: Some(2),
                created_at: created(0),
                modified_at: created(0),
            },
            ListedSchedule {
                id: "sched-1".into(),
                week: Some(schedule().week),
                week_count: Some(1),
                published: Some(false),
                version: Some(3),
                created_at: created(1),
                modified_at: created(1),
            },
        ]
    );
}

#[test]
fn the_client_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let config = publish_guard::api::genesys::GenesysConfig::new(
        publish_guard::api::region::Endpoints::explicit("http://127.0.0.1:1", "http://127.0.0.1:1"),
        "id",
        Secret::new("secret"),
    );
    let clock = publish_guard::effects::clock::ManualClock::new(api_support::start());
    let client = genesys_with(config, &clock);
    let sched = schedule();
    send(&client.read(&sched));
    send(&client.publish(&sched, 1, "k"));
    send(&client.list_week("bu", sched.week));
}

#[test]
fn the_region_table_is_pinned() {
    use publish_guard::api::region::{Endpoints, REGIONS};
    let rows: Vec<String> = REGIONS
        .iter()
        .map(|(aws, domain, city)| {
            let by_each = [aws, domain, city].map(|name| Endpoints::for_region(name).ok());
            assert!(by_each.iter().all(|e| *e == by_each[0]), "{aws}");
            let api = by_each[0].as_ref().map(|e| e.api.as_str()).unwrap_or("?");
            let login = by_each[0].as_ref().map(|e| e.login.as_str()).unwrap_or("?");
            format!("{aws:<15} {city:<13} {login:<36} {api}")
        })
        .collect();
    insta::assert_snapshot!(rows.join("\n"));
}

/// Publishes `sched-1` (a draft at version 3) against a double leaving `field` out.
async fn publish_without(field: OptionalField) -> Option<(u16, Option<PublishAccepted>)> {
    let (double, clock) = double(|c| c.model.processing_time = SignedDuration::ZERO).await;
    double.add_schedule(&schedule(), false, 3);
    double.leave_out(field);
    let answer = genesys(&double, &clock).publish(&schedule(), 3, "k").await;
    answer.ok().map(|a| (a.status, a.body))
}

#[tokio::test]
async fn an_update_answered_complete_without_an_operation_id_is_accepted() {
    let answer = publish_without(OptionalField::OperationId).await;
    let accepted = PublishAccepted {
        status: OperationStatus::Complete,
        operation_id: None,
    };
    assert_eq!(answer, Some((200, Some(accepted))));
}

#[tokio::test]
async fn an_update_without_its_result_is_accepted() {
    let answer = publish_without(OptionalField::Result).await;
    let body = answer.and_then(|(_, body)| body);
    assert_eq!(
        body.map(|b| (b.status, b.operation_id.is_some())),
        Some((OperationStatus::Complete, true))
    );
}

#[tokio::test]
async fn a_schedule_without_published_reads_as_unpublished() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), true, 3);
    double.leave_out(OptionalField::Published);
    let read = genesys(&double, &clock).read(&schedule()).await.ok();
    let snapshot = read.and_then(|a| a.body);
    assert_eq!(snapshot.map(|s| (s.published, s.version)), Some((false, 3)));
}

#[tokio::test]
async fn a_list_without_entities_is_an_empty_week() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    double.leave_out(OptionalField::Entities);
    let client = genesys(&double, &clock);
    let listed = client.list_week("bu-1", schedule().week).await.ok();
    assert_eq!(
        listed.map(|a| (a.status, a.body)),
        Some((200, Some(Vec::new())))
    );
    let read = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(read.and_then(|s| s.other_published), Some(false));
}

#[tokio::test]
async fn the_week_settings_are_read_with_their_expand() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let sunday = WeekSettings {
        start_day: jiff::civil::Weekday::Sunday,
        time_zone: jiff::tz::TimeZone::get("America/Chicago").ok(),
    };
    double.set_week_settings("bu-1", sunday.clone());
    let client = genesys(&double, &clock);
    let settings = client.week_settings("bu-1").await.ok();
    assert_eq!(
        settings.map(|a| (a.status, a.body)),
        Some((200, Some(sunday)))
    );
    let unknown = client.week_settings("bu-9").await.ok();
    assert_eq!(unknown.map(|a| (a.status, a.body)), Some((404, None)));
}

#[tokio::test]
async fn another_published_schedule_of_the_week_shows_in_the_read() {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), false, 3);
    let client = genesys(&double, &clock);
    let other = |s: Option<publish_guard::api::ScheduleSnapshot>| s.and_then(|s| s.other_published);
    let alone = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(other(alone), Some(false));
    let mut colleague = schedule();
    colleague.schedule_id = "colleague".into();
    double.add_schedule(&colleague, true, 1);
    let beside = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(other(beside), Some(true));
}
