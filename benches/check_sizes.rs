//! The checker's cost by size: every rule shape of `support/shapes.rs` at 1,000, 10,000
//! and 100,000 rules, parsed, checked and rendered as `check` prints it; the median time
//! of a few runs and the peak memory of one, and the growth from 1,000 to 100,000 against
//! n log n (166x). Criterion's sampling is too slow for the large sizes, hence a plain
//! binary: `cargo bench --bench check_sizes [-- SIZE...]`.

use publish_guard::language::diagnostic::render_all;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "support/peak.rs"]
mod peak;
#[path = "support/shapes.rs"]
mod shapes;

#[global_allocator]
static GLOBAL: peak::Peak = peak::Peak;

/// Parse, check and render what `check` would print.
fn check(source: &str) -> usize {
    match publish_guard::compile(source) {
        Ok(checked) => render_all(&checked.warnings, "shape.rules", source).len(),
        Err(e) => render_all(e.diagnostics(), "shape.rules", source).len(),
    }
}

/// The median of `runs` timed runs.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times.get(runs / 2).copied().unwrap_or_default()
}

fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    match us {
        us if us < 1_000.0 => format!("{us:.0} µs"),
        us if us < 1_000_000.0 => format!("{:.1} ms", us / 1e3),
        us => format!("{:.2} s", us / 1e6),
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    let shipped = include_str!("../rules/default.rules");
    let (_, cost) = peak::measure(|| check(shipped));
    println!(
        "rules/default.rules: parse + check {} ({} KB peak)",
        show(median(201, || {
            black_box(check(black_box(shipped)));
        })),
        cost.peak_bytes / 1024
    );
    println!("| shape | rules | median | peak memory | allocations |");
    println!("|---|---:|---:|---:|---:|");
    for shape in shapes::SHAPES {
        let mut first: Option<(usize, Duration)> = None;
        for &rules in &sizes {
            let file = shape.file(rules);
            let (_, cost) = peak::measure(|| check(&file));
            let runs = (200_000 / rules).clamp(3, 21);
            let time = median(runs, || {
                black_box(check(black_box(&file)));
            });
            let growth = match first {
                Some((n, t)) => format!(
                    " ({:.0}x for {}x rules)",
                    time.as_secs_f64() / t.as_secs_f64().max(1e-9),
                    rules / n
                ),
                None => String::new(),
            };
            first.get_or_insert((rules, time));
            println!(
                "| {} | {rules} | {}{growth} | {:.1} MB | {} |",
                shape.name(),
                show(time),
                cost.peak_bytes as f64 / 1e6,
                cost.allocations
            );
        }
    }
}
