//! The relay as a Genesys org meets it, over real HTTP on both sides against the double: the
//! business unit's own week (a Sunday start in Chicago, a Monday start in London), which of a
//! week's shuffled schedules `latest` and `published` pick, an ambiguous choice failing with
//! the candidates named, and the shipped policy refusing to publish over a colleague's
//! published schedule.

use crate::api_support::{double_at, genesys_config};
use crate::relay_support::{RelayFiles, start_relay};
use jiff::civil::{Date, Weekday, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, CallKind};
use publish_guard::api::week::WeekSettings;
use publish_guard::audit::log::AuditOptions;
use publish_guard::effects::clock::{Clock, ManualClock};
use publish_guard::relay::intake::{Source, SourceAuth};
use publish_guard::relay::mapping::{Field, Mapping};
use publish_guard::relay::server::Relay;
use publish_guard::relay::store::{TriggerNote, TriggerStatus, TriggerStore};
use publish_guard::relay::webhook_auth::BearerVerifier;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The bearer token the relay's `manual` source accepts (a test value).
pub const TOKEN: &str = "relay-test-token";
/// The business unit.
pub const BU: &str = "bu-1";
/// The longest any condition below may take to come true (real time).
const PATIENCE: Duration = Duration::from_secs(30);

/// A relay on loopback in front of the double, both on one manual clock.
pub struct Rig {
    pub relay: Relay,
    pub double: ApiDouble,
    pub files: RelayFiles,
    pub clock: ManualClock,
    pub http: reqwest::Client,
}

/// How the rig's `manual` source maps a payload.
pub struct SourceSetup {
    /// `week`: `current`, or a pointer.
    pub week: &'static str,
    /// `schedule`: `latest`, `published`, an id or a pointer.
    pub schedule: &'static str,
}

impl Rig {
    /// The double holds what `schedules` adds (moving the clock forward from March 2026 as
    /// it goes); then the clock is set to `now` and the relay starts under the
    /// shipped default policy.
    pub async fn start(
        week: WeekSettings,
        source: SourceSetup,
        now: Timestamp,
        schedules: impl FnOnce(&ApiDouble, &ManualClock),
    ) -> Rig {
        let (double, clock) = double_at(at("2026-03-01T00:00:00Z"), |c| {
            c.model.processing_time = SignedDuration::ZERO;
            c.model.requests_per_minute = 10_000;
        })
        .await;
        double.set_week_settings(BU, week);
        schedules(&double, &clock);
        clock.set(now);
        let files = RelayFiles::new(include_str!("../../rules/default.rules"));
        let manual = Source {
            auth: SourceAuth::Bearer(BearerVerifier::new(vec![TOKEN.into()])),
            mapping: Mapping {
                business_unit: Field::Fixed(BU.into()),
                week: Field::from_setting(source.week),
                schedule_id: Field::from_setting(source.schedule),
                event: Field::Pointer("/event".into()),
                delivery_id: Some("/id".into()),
            },
        };
        let relay_clock = Arc::new(clock.clone());
        let settings = files.settings("manual", manual, relay_clock, AuditOptions::default());
        let api_clock = Arc::new(clock.clone());
        let relay = start_relay(settings, genesys_config(&double), api_clock).await;
        Rig {
            relay,
            double,
            files,
            clock,
            http: reqwest::Client::new(),
        }
    }

    /// `POST /webhooks/manual` with the bearer token; the status and the JSON answer.
    pub async fn send(&self, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("http://{}/webhooks/manual", self.relay.addr()))
            .header("content-type", "application/json")
            .bearer_auth(TOKEN)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Send one trigger and wait (bounded) until it is finished; its status and note.
    async fn trigger(&self, id: &str) -> (TriggerStatus, Option<String>) {
        self.finished(&json!({"id": id, "event": "case.updated"}).to_string())
            .await
    }

    /// Send `body`, expect a 202, and wait (bounded) until the trigger is finished; its
    /// status and the reason it failed, if it did.
    async fn finished(&self, body: &str) -> (TriggerStatus, Option<String>) {
        let (status, answer) = self.send(body).await;
        assert_eq!(status, 202, "{answer}");
        let receipt = answer["receipt"].as_str().unwrap().to_owned();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let stored = self.files.store.get(&receipt).await.unwrap().unwrap();
            if stored.status.is_finished() {
                return (stored.status, failure(stored.note));
            }
            assert!(tokio::time::Instant::now() < deadline, "{stored:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The (schedule id, week, rule) of each decision the audit log holds.
    fn decisions(&self) -> Vec<(String, String, String)> {
        std::fs::read_to_string(&self.files.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["event"]["kind"] == "decision")
            .map(|e| {
                let event = &e["event"];
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (
                    text(&event["schedule"]["schedule_id"]),
                    text(&event["schedule"]["week"]),
                    text(&event["rule"]),
                )
            })
            .collect()
    }

    fn published(&self, schedule: &ScheduleRef) -> bool {
        self.double
            .schedule(schedule)
            .is_some_and(|v| v.snapshot.published)
    }
}

/// The reason a failed trigger's note gives.
fn failure(note: Option<TriggerNote>) -> Option<String> {
    match note {
        Some(TriggerNote::Failed { reason }) => Some(reason),
        _ => None,
    }
}

fn schedule(id: &str, week: Date) -> ScheduleRef {
    ScheduleRef {
        business_unit: BU.into(),
        week,
        schedule_id: id.into(),
    }
}

fn week(start_day: Weekday, zone: &str) -> WeekSettings {
    WeekSettings {
        start_day,
        time_zone: Some(TimeZone::get(zone).unwrap()),
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

const CURRENT_LATEST: SourceSetup = SourceSetup {
    week: "current",
    schedule: "latest",
};

/// With a draft in the week before `this` and one in `this`, a trigger at `now` publishes
/// the schedule of `expected` (one of the two) and only it.
async fn current_week_publishes(settings: WeekSettings, now: &str, this: Date, expected: Date) {
    let last = this - jiff::Span::new().days(7);
    let rig = Rig::start(settings, CURRENT_LATEST, at(now), |double, _| {
        double.add_schedule(&schedule("last", last), false, 1);
        double.add_schedule(&schedule("this", this), false, 1);
    })
    .await;
    let (status, note) = rig.trigger("d-1").await;
    assert_eq!((status, note), (TriggerStatus::Done, None));
    let published = [("last", last), ("this", this)]
        .map(|(id, week)| (week, rig.published(&schedule(id, week))));
    assert_eq!(
        published,
        [(last, last == expected), (this, this == expected)]
    );
    assert_eq!(rig.double.calls(CallKind::BusinessUnit), 1);
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sunday_start_in_chicago_publishes_the_week_that_began_last_sunday_there() {
    // Sunday 29 November 2026, 05:30 UTC: still Saturday 23:30 in Chicago, so the week is
    // the one that began on Sunday the 22nd (Monday-in-UTC would say the 23rd).
    let sunday = week(Weekday::Sunday, "America/Chicago");
    let this = date(2026, 11, 29);
    current_week_publishes(sunday, "2026-11-29T05:30:00Z", this, date(2026, 11, 22)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monday_start_in_london_publishes_the_week_that_began_this_monday_there() {
    // Sunday 29 March 2026, 23:30 UTC: already Monday 00:30 in London (summer time).
    let monday = week(Weekday::Monday, "Europe/London");
    let this = date(2026, 3, 30);
    current_week_publishes(monday, "2026-03-29T23:30:00Z", this, this).await;
}

/// Sunday 29 November 2026 at noon in Chicago.
const SUNDAY_NOON: &str = "2026-11-29T18:00:00Z";
const THIS: Date = date(2026, 11, 29);
const PREVIOUS: Date = date(2026, 11, 22);

/// One schedule spanning the previous week and this one (`multi`, published or not), and two
/// starting this week: `older` created on the 20th, `newer` on the 25th.
fn three(multi_published: bool) -> impl FnOnce(&ApiDouble, &ManualClock) {
    move |double, clock| {
        clock.set(at("2026-11-15T12:00:00Z"));
        let multi = schedule("multi", PREVIOUS);
        double.add_schedule(&multi, multi_published, 7);
        double.set_week_count(&multi, 2).unwrap();
        clock.set(at("2026-11-20T12:00:00Z"));
        double.add_schedule(&schedule("older", THIS), false, 5);
        clock.set(at("2026-11-25T12:00:00Z"));
        double.add_schedule(&schedule("newer", THIS), false, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_publishes_the_newest_schedule_starting_this_week() {
    let rig = Rig::start(
        week(Weekday::Sunday, "America/Chicago"),
        CURRENT_LATEST,
        at(SUNDAY_NOON),
        three(false),
    )
    .await;
    let (status, note) = rig.trigger("d-1").await;
    assert_eq!(status, TriggerStatus::Done, "{note:?}");
    assert!(rig.published(&schedule("newer", THIS)));
    assert!(!rig.published(&schedule("older", THIS)));
    assert!(!rig.published(&schedule("multi", PREVIOUS)));
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_refuses_to_publish_over_a_colleagues_published_schedule() {
    let rig = Rig::start(
        week(Weekday::Sunday, "America/Chicago"),
        CURRENT_LATEST,
        at(SUNDAY_NOON),
        three(true),
    )
    .await;
    let (status, note) = rig.trigger("d-1").await;
    assert_eq!(status, TriggerStatus::Done, "{note:?}");
    assert_eq!(
        rig.decisions(),
        [("newer".into(), "2026-11-29".into(), "colleague".into())]
    );
    assert_eq!(rig.double.calls(CallKind::Update), 0, "nothing was written");
    assert!(
        rig.published(&schedule("multi", PREVIOUS)),
        "still published"
    );
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_picks_the_published_schedule_covering_the_week_by_its_own_week_date() {
    let rig = Rig::start(
        week(Weekday::Sunday, "America/Chicago"),
        SourceSetup {
            week: "current",
            schedule: "published",
        },
        at(SUNDAY_NOON),
        three(true),
    )
    .await;
    let (status, _) = rig.trigger("d-1").await;
    assert_eq!(status, TriggerStatus::Done);
    assert_eq!(
        rig.decisions(),
        [("multi".into(), "2026-11-22".into(), "published".into())],
        "addressed by the week it started in; already published, so skipped"
    );
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_choice_fails_the_trigger_naming_the_candidates_and_the_setting() {
    let rig = Rig::start(
        week(Weekday::Sunday, "America/Chicago"),
        CURRENT_LATEST,
        at(SUNDAY_NOON),
        |double, clock| {
            clock.set(at("2026-11-25T12:00:00Z"));
            double.add_schedule(&schedule("twin-a", THIS), false, 1);
            double.add_schedule(&schedule("twin-b", THIS), false, 1);
        },
    )
    .await;
    let (status, note) = rig.trigger("d-1").await;
    assert_eq!(status, TriggerStatus::Failed);
    let note = note.unwrap_or_default();
    for part in [
        "`schedule = \"latest\"` for the week of 2026-11-29",
        "twin-a (starts 2026-11-29, 1 week, draft",
        "twin-b (starts 2026-11-29, 1 week, draft",
        "set `schedule` in the source's [[sources]] table to one id",
    ] {
        assert!(note.contains(part), "{part:?} not in {note:?}");
    }
    assert_eq!(rig.double.calls(CallKind::Update), 0);
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_week_off_the_start_day_fails_with_the_week_it_must_be() {
    let rig = Rig::start(
        week(Weekday::Sunday, "America/Chicago"),
        SourceSetup {
            week: "/week",
            schedule: "latest",
        },
        at(SUNDAY_NOON),
        three(false),
    )
    .await;
    let body = json!({"id": "d-1", "event": "e", "week": "2026-12-01"}).to_string();
    let (status, reason) = rig.finished(&body).await;
    assert_eq!(status, TriggerStatus::Failed);
    assert_eq!(
        reason.as_deref(),
        Some(
            "week 2026-12-01 is a Tuesday, but the business unit's weeks start on Sunday: the week must start on Sunday 2026-11-29"
        )
    );
    assert_eq!(rig.clock.now(), at(SUNDAY_NOON));
    rig.relay.shutdown().await.unwrap();
}
