//! The contract every [`ScheduleApi`] backend keeps, written once and run against each over
//! real HTTP on loopback: the Genesys client against the double's Genesys routes, the REST
//! client against its gateway routes (both over the one model).

use crate::api_support::{double, genesys, schedule};
use jiff::SignedDuration;
use publish_guard::api::double::ApiDouble;
use publish_guard::api::rest::{RestClient, RestConfig};
use publish_guard::api::{OperationStatus, ScheduleApi};
use publish_guard::effects::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;

/// A backend under test: how to build its client for the double.
pub trait Backend {
    /// Its client.
    type Api: ScheduleApi;
    /// The client for `double` on `clock`.
    fn client(double: &ApiDouble, clock: &ManualClock) -> Self::Api;
}

/// The Genesys Cloud client.
pub struct Genesys;

impl Backend for Genesys {
    type Api = publish_guard::api::genesys::GenesysClient;
    fn client(double: &ApiDouble, clock: &ManualClock) -> Self::Api {
        genesys(double, clock)
    }
}

/// The REST gateway client.
pub struct Rest;

impl Backend for Rest {
    type Api = RestClient;
    fn client(double: &ApiDouble, clock: &ManualClock) -> Self::Api {
        let mut config = RestConfig::new(double.base_url());
        config.timeout = Duration::from_millis(200);
        match RestClient::new(config, Arc::new(clock.clone())) {
            Ok(client) => client,
            Err(e) => panic!("the client did not build: {e}"),
        }
    }
}

/// A double holding `sched-1` at version 3, and the backend's client for it.
async fn with_schedule<B: Backend>(published: bool) -> (ApiDouble, ManualClock, B::Api) {
    let (double, clock) = double(|_| {}).await;
    double.add_schedule(&schedule(), published, 3);
    let client = B::client(&double, &clock);
    (double, clock, client)
}

/// A draft reads unpublished at its version; a publish is accepted and Processing; once
/// processing is over the read shows it published at the next version.
pub async fn a_publish_processes_then_reads_published<B: Backend>() {
    let (_double, clock, client) = with_schedule::<B>(false).await;
    let read = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(read.map(|s| (s.published, s.version)), Some((false, 3)));
    let published = client.publish(&schedule(), 3, "k-1").await.ok();
    assert!(
        published
            .as_ref()
            .is_some_and(|a| (200..300).contains(&a.status))
    );
    let status = published.and_then(|a| a.body).map(|b| b.status);
    assert_eq!(status, Some(OperationStatus::Processing));
    clock.advance(SignedDuration::from_secs(30));
    let read = client.read(&schedule()).await.ok().and_then(|a| a.body);
    assert_eq!(read.map(|s| (s.published, s.version)), Some((true, 4)));
}

/// A second publish while one processes answers 409 with no body.
pub async fn a_publish_while_processing_answers_409<B: Backend>() {
    let (_double, _clock, client) = with_schedule::<B>(false).await;
    assert!(client.publish(&schedule(), 3, "a").await.is_ok());
    let second = client.publish(&schedule(), 3, "b").await.ok();
    assert_eq!(second.map(|a| (a.status, a.body)), Some((409, None)));
}

/// Publishing a published schedule answers 409.
pub async fn publishing_a_published_schedule_answers_409<B: Backend>() {
    let (_double, _clock, client) = with_schedule::<B>(true).await;
    let answer = client.publish(&schedule(), 3, "a").await.ok();
    assert_eq!(answer.map(|a| a.status), Some(409));
}

/// A stale version answers 409 and changes nothing.
pub async fn a_stale_version_answers_409<B: Backend>() {
    let (double, _clock, client) = with_schedule::<B>(false).await;
    assert!(double.person_edit(&schedule()).is_ok());
    let answer = client.publish(&schedule(), 3, "a").await.ok();
    assert_eq!(answer.map(|a| a.status), Some(409));
    let current = double
        .schedule(&schedule())
        .map(|v| (v.snapshot.published, v.snapshot.version));
    assert_eq!(current, Some((false, 4)));
}

/// A schedule that does not exist answers 404.
pub async fn a_missing_schedule_answers_404<B: Backend>() {
    let (double, clock) = double(|_| {}).await;
    let answer = B::client(&double, &clock).read(&schedule()).await.ok();
    assert_eq!(answer.map(|a| (a.status, a.body)), Some((404, None)));
}

/// The week lists its schedule, starting in that week.
pub async fn the_week_lists_its_schedule<B: Backend>() {
    let (_double, _clock, client) = with_schedule::<B>(false).await;
    let listed = client.list_week("bu-1", schedule().week).await.ok();
    let listed = listed.and_then(|a| a.body).unwrap_or_default();
    let found: Vec<(String, jiff::civil::Date)> = listed
        .iter()
        .map(|s| (s.id.clone(), s.starts(schedule().week)))
        .collect();
    assert_eq!(found, [("sched-1".to_owned(), schedule().week)]);
}

/// Every contract test, for one backend.
macro_rules! contract {
    ($module:ident, $backend:ty) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn a_publish_processes_then_reads_published() {
                super::a_publish_processes_then_reads_published::<$backend>().await;
            }

            #[tokio::test]
            async fn a_publish_while_processing_answers_409() {
                super::a_publish_while_processing_answers_409::<$backend>().await;
            }

            #[tokio::test]
            async fn publishing_a_published_schedule_answers_409() {
                super::publishing_a_published_schedule_answers_409::<$backend>().await;
            }

            #[tokio::test]
            async fn a_stale_version_answers_409() {
                super::a_stale_version_answers_409::<$backend>().await;
            }

            #[tokio::test]
            async fn a_missing_schedule_answers_404() {
                super::a_missing_schedule_answers_404::<$backend>().await;
            }

            #[tokio::test]
            async fn the_week_lists_its_schedule() {
                super::the_week_lists_its_schedule::<$backend>().await;
            }
        }
    };
}

contract!(genesys_backend, Genesys);
contract!(rest_backend, Rest);
