//! The checker's cost by size: every rule shape of `support/shapes.rs` at 1,000, 10,000
//! and 100,000 rules, parsed, checked and rendered as `check` prints it; the median time
//! of a few runs and the peak memory of one, and the growth from 1,000 to 100,000 against
//! n log n (166x). Criterion's sampling is too slow for the large sizes, hence a plain
//! binary: `cargo bench --bench check_sizes [-- SIZE... SHAPE...]` (a shape by any part of
//! its name). Times are the median and the fastest of the runs: on a shared machine the
//! fastest is the least disturbed.

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

/// The median and the fastest of `runs` timed runs.
fn timed(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times.get(runs / 2).copied().unwrap_or_default();
    (median, times.first().copied().unwrap_or_default())
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let names: Vec<&String> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err() && !a.starts_with('-'))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    let shipped = include_str!("../rules/default.rules");
    let (_, cost) = peak::measure(|| check(shipped));
    let (median, fastest) = timed(201, || {
        black_box(check(black_box(shipped)));
    });
    println!(
        "rules/default.rules: parse + check {} (fastest {}), {} KB peak, {} allocations",
        show(median),
        show(fastest),
        cost.peak_bytes / 1024,
        cost.allocations
    );
    println!("| shape | rules | median | fastest | peak memory | allocations |");
    println!("|---|---:|---:|---:|---:|---:|");
    let chosen = shapes::SHAPES
        .into_iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| s.name().contains(n.as_str())));
    for shape in chosen {
        let mut first: Option<(usize, Duration)> = None;
        for &rules in &sizes {
            let file = shape.file(rules);
            let (_, cost) = peak::measure(|| check(&file));
            let runs = (200_000 / rules).clamp(3, 21);
            let (time, fastest) = timed(runs, || {
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
                "| {} | {rules} | {}{growth} | {} | {:.1} MB | {} |",
                shape.name(),
                show(time),
                show(fastest),
                cost.peak_bytes as f64 / 1e6,
                cost.allocations
            );
        }
    }
}
