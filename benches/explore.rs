//! Explorer throughput: random worlds (a few dozen triggers each) generated, run through
//! the simulator and checked against every invariant, under `rules/default.rules`.
//!
//! Run: `cargo bench --bench explore` (add `-- N` for N worlds; default 20,000). Prints
//! worlds a minute (wall and CPU).

use publish_guard::sim::explore::{Seeds, explore};
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
    let cpu = cpu_secs();
    let started = Instant::now();
    let found = explore(
        &checked.policy,
        Path::new("rules/default.rules"),
        Seeds::Count(worlds),
        None,
    );
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_secs()
        .zip(cpu)
        .map_or(0.0, |(after, before)| after - before);
    assert!(found.finding.is_none(), "a world broke a promise");
    println!(
        "{} worlds ({} triggers, {:.1} a world) in {wall:.2} s wall, {cpu:.2} s CPU: {:.0} worlds a minute (wall), {:.0} (CPU)",
        found.runs,
        found.triggers,
        found.triggers as f64 / found.runs as f64,
        found.runs as f64 * 60.0 / wall,
        found.runs as f64 * 60.0 / cpu.max(0.01),
    );
}
