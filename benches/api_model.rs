//! The Genesys model must stay cheap: the simulator calls it millions of times.

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::ScheduleRef;
use publish_guard::api::limiter::RateLimiter;
use publish_guard::api::model::{Model, ModelConfig};
use publish_guard::api::upload::gzip_publish_body;
use std::hint::black_box;

fn schedule() -> ScheduleRef {
    ScheduleRef {
        business_unit: "bu-1".into(),
        week: date(2026, 3, 2),
        schedule_id: "sched-1".into(),
    }
}

fn model() -> Model {
    let mut model = Model::new(ModelConfig {
        processing_time: SignedDuration::from_secs(30),
        requests_per_minute: u32::MAX,
        ..ModelConfig::default()
    });
    model.insert(schedule(), false, 1, Timestamp::UNIX_EPOCH, "planner");
    model
}

fn bench(c: &mut Criterion) {
    let sched = schedule();
    let body = gzip_publish_body(1).unwrap_or_default();

    let mut reads = model();
    let mut now = Timestamp::UNIX_EPOCH;
    c.bench_function("model get", |b| {
        b.iter(|| {
            now += SignedDuration::from_millis(1);
            black_box(reads.get("client", now, &sched))
        })
    });

    c.bench_function(
        "model publish cycle (uploadurl, upload, update, edit)",
        |b| {
            let mut m = model();
            let mut now = Timestamp::UNIX_EPOCH;
            let mut version = 1;
            b.iter(|| {
                let body = gzip_publish_body(version).unwrap_or_default();
                let ticket = m.upload_url("client", now, &sched, body.len() as u64);
                if let Ok(t) = ticket.outcome {
                    let _ = m.upload(&t.upload_key, &body);
                    black_box(m.update("client", now, &sched, &t.upload_key));
                }
                now += SignedDuration::from_secs(60);
                version = m
                    .person_edit(&sched, now, "planner")
                    .map_or(version, |s| s.version);
            })
        },
    );
    black_box(body);

    c.bench_function("limiter reserve", |b| {
        let mut limiter = RateLimiter::per_minute(300);
        let mut now = Timestamp::UNIX_EPOCH;
        b.iter(|| {
            now += SignedDuration::from_millis(200);
            black_box(limiter.reserve(now))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
