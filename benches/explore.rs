//! Explorer throughput: random worlds (a few dozen triggers each) generated, run through
//! the simulator and checked against every invariant, under `rules/default.rules`; the
//! worlds that broke a promise are counted, not shrunk.
//!
//! Run: `cargo bench --bench explore` (add `-- N` for N worlds; default 20,000). Prints
//! worlds a minute (wall and CPU).

use publish_guard::sim::engine::run_traced;
use publish_guard::sim::explore::{generate, invariants};
use std::path::Path;
use std::time::Instant;

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_secs;

fn main() {
    let worlds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let source = include_str!("../rules/default.rules");
    let Ok(checked) = publish_guard::compile(source) else {
        panic!("rules/default.rules does not check")
    };
    let policy = &checked.policy;
    let rules = Path::new("rules/default.rules");
    let cpu = cpu_secs();
    let started = Instant::now();
    // What `explore` does for each world, without stopping at a broken promise (a finding
    // is shrunk, which is not what this measures).
    let (mut triggers, mut broken) = (0u64, 0u64);
    for seed in 0..worlds {
        let world = generate::world(seed, policy.sources(), rules);
        let (result, trace) = run_traced(&world, policy);
        triggers += result.report.summary.triggers;
        broken += u64::from(invariants::check(&world, policy, &trace).is_some());
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs()
        .zip(cpu)
        .map_or(0.0, |(after, before)| after - before);
    println!(
        "{worlds} worlds ({triggers} triggers, {:.1} a world; {broken} broke a promise) in {wall:.2} s wall, {cpu:.2} s CPU: {:.0} worlds a minute (wall), {:.0} (CPU)",
        triggers as f64 / worlds as f64,
        worlds as f64 * 60.0 / wall,
        worlds as f64 * 60.0 / cpu.max(0.01),
    );
}
