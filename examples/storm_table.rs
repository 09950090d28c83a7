//! The README's results table: the ServiceNow storm scenario under the naive policy and the
//! default one, with coalescing off and on, and on with the notification channel heard. Also a small example of embedding the simulator.
//!
//! Run: `cargo run --release --example storm_table`

use publish_guard::sim::engine::{RunOptions, run};
use publish_guard::sim::scenario::{Notifications, load};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut scenario = load(Path::new("rules/scenarios/storm.toml"))?;
    println!(
        "| policy | coalescing | webhooks | publishes | 409s | API calls | API calls per 1,000 webhooks | failures |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for rules in ["rules/examples/naive.rules", "rules/default.rules"] {
        let source = std::fs::read_to_string(rules)?;
        let policy = publish_guard::compile(&source)
            .map_err(|e| format!("{rules}: {} diagnostic(s)", e.diagnostics().len()))?
            .policy;
        // Coalescing off, on, and on with the notification channel heard.
        for (coalesce, notified) in [(false, false), (true, false), (true, true)] {
            scenario.runner.coalesce = coalesce;
            scenario.api.notifications = notified.then(Notifications::default);
            let s = run(
                &scenario,
                &policy,
                RunOptions {
                    keep_timeline: false,
                },
            )
            .report
            .summary;
            let calls: u64 = s.api_calls.values().sum();
            println!(
                "| `{rules}` | {} | {} | {} | {} | {calls} | {:.0} | {} |",
                match (coalesce, notified) {
                    (false, _) => "off",
                    (true, false) => "on",
                    (true, true) => "on, notifications",
                },
                s.triggers,
                s.publishes,
                s.conflicts,
                calls as f64 * 1000.0 / s.triggers.max(1) as f64,
                s.failures
            );
        }
    }
    Ok(())
}
