//! The runner's own CPU cost per decision cycle, HTTP excluded: the sans-IO machine and the
//! evaluator taking one trigger on a draft schedule through read, publish, answer and the
//! follow read to `published` (two phase evaluations, eleven events).

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::{Answer, OperationStatus, PublishAccepted, ScheduleRef, ScheduleSnapshot};
use publish_guard::effects::random::SeededRandom;
use publish_guard::runner::{Command, Input, Runner, RunnerConfig, Trigger};
use std::hint::black_box;

fn snapshot(published: bool, version: i64) -> Input {
    Input::StateRead(Ok(Answer {
        status: 200,
        retry_after: None,
        rate_limit: None,
        body: Some(ScheduleSnapshot {
            published,
            version,
            modified_at: None,
            modified_by: None,
            publishing: false,
            other_published: None,
        }),
        waited: SignedDuration::ZERO,
    }))
}

fn one_cycle(c: &mut Criterion) {
    let source = include_str!("../tests/fixtures/runner/reference.rules");
    let Ok(checked) = publish_guard::compile(source) else {
        panic!("the reference policy does not check")
    };
    let policy = checked.policy;
    let schedule = ScheduleRef {
        business_unit: "bu-1".into(),
        week: date(2026, 3, 2),
        schedule_id: "sched-1".into(),
    };
    // Monday 09:00 in London: inside business hours.
    let now = Timestamp::from_second(1_772_442_000).unwrap_or(Timestamp::UNIX_EPOCH);
    let accepted = Input::PublishAnswered(Ok(Answer {
        status: 200,
        retry_after: None,
        rate_limit: None,
        body: Some(PublishAccepted {
            status: OperationStatus::Processing,
            operation_id: Some("op-1".into()),
        }),
        waited: SignedDuration::ZERO,
    }));
    let mut random = SeededRandom::new(1);
    let mut out = Vec::with_capacity(32);
    c.bench_function("decision cycle: trigger to published", |b| {
        b.iter(|| {
            out.clear();
            let mut runner = Runner::new(RunnerConfig::default());
            let trigger = Trigger {
                delivery_id: Some("d-1".into()),
                source: "servicenow".into(),
                event: Some("case.updated".into()),
                received_at: now,
            };
            runner.trigger(
                now,
                &policy,
                &mut random,
                schedule.clone(),
                trigger,
                &mut out,
            );
            let mut feed = |runner: &mut Runner, input: Input, out: &mut Vec<Command>| {
                runner.input(now, &policy, &mut random, &schedule, input, out);
            };
            feed(&mut runner, snapshot(false, 1), &mut out);
            feed(&mut runner, accepted.clone(), &mut out);
            let timer = out.iter().find_map(|c| match c {
                Command::WaitUntil { timer, .. } => Some(*timer),
                _ => None,
            });
            if let Some(timer) = timer {
                feed(&mut runner, Input::TimerFired(timer), &mut out);
            }
            feed(&mut runner, snapshot(true, 2), &mut out);
            black_box(out.len())
        })
    });
}

criterion_group!(benches, one_cycle);
criterion_main!(benches);
