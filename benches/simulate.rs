//! Simulator throughput: 10^4, 10^5 and 10^6 triggers over 1,000 schedules under the
//! default policy, one timed run each, with the CPU time it took (wall time suffers when
//! other work shares the cores; CPU time much less) and the process's peak memory after
//! each.
//!
//! Run: `cargo bench --bench simulate` (add `-- 10000` to run only the sizes given).

use jiff::{SignedDuration, Timestamp};
use publish_guard::sim::engine::{RunOptions, run};
use publish_guard::sim::expect::Expectations;
use publish_guard::sim::scenario::{
    ApiBehaviour, Generator, GeneratorKind, RunnerOptions, Scenario, ScheduleSpec, Target,
};
use std::path::PathBuf;
use std::time::Instant;

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_secs;

const SCHEDULES: usize = 1_000;

/// `triggers` random case webhooks spread over one day across every schedule, with a planner
/// edit now and then being what makes publishes happen.
fn scenario(triggers: u64) -> Scenario {
    let start: Timestamp = "2026-03-02T00:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let day = SignedDuration::from_hours(24);
    let until = start.checked_add(day).unwrap_or(start);
    Scenario {
        name: format!("bench-{triggers}"),
        description: None,
        rules: PathBuf::from("rules/default.rules"),
        start,
        end: None,
        seed: 1,
        business_units: Vec::new(),
        schedules: (0..SCHEDULES)
            .map(|i| ScheduleSpec {
                id: format!("s{i:04}"),
                business_unit: format!("bu-{}", i % 10),
                // One schedule per business unit and week, as Genesys has it.
                week: jiff::civil::date(2026, 3, 2)
                    .checked_add(jiff::Span::new().weeks(i64::try_from(i / 10).unwrap_or(0)))
                    .unwrap_or(jiff::civil::date(2026, 3, 2)),
                published: i % 2 == 0,
                version: 1,
                weeks: 1,
                created: None,
                first_update_ends: None,
            })
            .collect(),
        api: ApiBehaviour {
            // The bench measures the simulator, not the throttling: no 429s.
            rate_limit: u32::MAX,
            ..ApiBehaviour::default()
        },
        runner: RunnerOptions::default(),
        people: Vec::new(),
        triggers: Vec::new(),
        restarts: Vec::new(),
        generators: vec![Generator {
            target: Target::All,
            source: "servicenow".into(),
            event: Some("case.created".into()),
            kind: GeneratorKind::Random {
                per_minute: triggers as f64 / day.as_secs_f64() * 60.0,
                from: start,
                until,
            },
        }],
        expect: Expectations::default(),
    }
}

/// The process's peak resident memory so far, in MiB (Linux), when it can be read.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let source = std::fs::read_to_string("rules/default.rules").unwrap_or_default();
    let Ok(checked) = publish_guard::compile(&source) else {
        eprintln!("rules/default.rules does not check");
        return;
    };
    println!(
        "| triggers | schedules | wall time | CPU time | µs per trigger (wall) | API calls | peak memory |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let scenario = scenario(n);
        let cpu_before = cpu_secs();
        let started = Instant::now();
        let result = run(
            &scenario,
            &checked.policy,
            RunOptions {
                keep_timeline: false,
            },
        );
        let elapsed = started.elapsed();
        let cpu = cpu_secs()
            .zip(cpu_before)
            .map_or(f64::NAN, |(after, before)| after - before);
        let s = &result.report.summary;
        let calls: u64 = s.api_calls.values().sum();
        println!(
            "| {} | {SCHEDULES} | {:.2} s | {cpu:.2} s | {:.2} | {calls} | {:.0} MiB |",
            s.triggers,
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / s.triggers.max(1) as f64,
            peak_mib().unwrap_or(f64::NAN)
        );
    }
}
