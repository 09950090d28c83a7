//! The README's results tables: the ServiceNow storm scenario under the naive policy and the
//! default one, with coalescing off and on, and on with the notification channel heard; then
//! the time from each of our operations' completion to the runner's outcome, polling and
//! hearing, on the storm and the notified scenario. Also a small example of embedding the
//! simulator.
//!
//! Run: `cargo run --release --example storm_table`

use jiff::SignedDuration;
use publish_guard::sim::engine::{RunOptions, run};
use publish_guard::sim::scenario::{Notifications, load};
use serde_json::Value;
use std::collections::HashMap;
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
    follow_table()
}

/// How long after our operation completed the runner knew: median and maximum over every
/// publish of ours, default policy, coalescing on.
fn follow_table() -> Result<(), Box<dyn std::error::Error>> {
    let source = std::fs::read_to_string("rules/default.rules")?;
    let policy = publish_guard::compile(&source)
        .map_err(|e| format!("default.rules: {} diagnostic(s)", e.diagnostics().len()))?
        .policy;
    println!("\n| scenario | notifications | our publishes | median | max |");
    println!("|---|---|---:|---:|---:|");
    for path in [
        "rules/scenarios/storm.toml",
        "rules/scenarios/notified.toml",
    ] {
        let mut scenario = load(Path::new(path))?;
        let heard = scenario.api.notifications.clone().unwrap_or_default();
        for notified in [false, true] {
            scenario.api.notifications = notified.then(|| heard.clone());
            let report = run(
                &scenario,
                &policy,
                RunOptions {
                    keep_timeline: true,
                },
            )
            .report;
            let mut lags = completion_to_outcome(&serde_json::to_value(&report.timeline)?);
            lags.sort_unstable();
            let secs = |d: Option<&SignedDuration>| {
                d.map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
            };
            // Nearest rank: the smallest lag with at least half at or below it.
            let median = secs(lags.get(lags.len().div_ceil(2).max(1) - 1));
            let on = if notified { "on" } else { "off (polling)" };
            println!(
                "| `{path}` | {on} | {} | {median} | {} |",
                lags.len(),
                secs(lags.last())
            );
        }
    }
    Ok(())
}

/// For each publish of ours the API accepted: from the instant its operation completed
/// to the cycle's outcome.
/// The timeline is read as its JSON: `mark`, `schedule`, `at` and `decision` of each row.
fn completion_to_outcome(timeline: &Value) -> Vec<SignedDuration> {
    // Per schedule: whether a publish of ours is in flight, and when it completed.
    let mut ours: HashMap<u64, Option<jiff::Timestamp>> = HashMap::new();
    let mut lags = Vec::new();
    for row in timeline.as_array().into_iter().flatten() {
        let (Some(schedule), Some(at)) = (
            row["schedule"].as_u64(),
            row["at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok()),
        ) else {
            continue;
        };
        let outcome = row["decision"]
            .as_str()
            .is_some_and(|d| d.starts_with("= "));
        match row["mark"].as_str() {
            Some("accepted") => {
                ours.insert(schedule, None);
            }
            Some("published") => {
                if let Some(done) = ours.get_mut(&schedule) {
                    done.get_or_insert(at);
                }
            }
            _ if outcome => {
                if let Some(Some(done)) = ours.remove(&schedule) {
                    lags.push(at.duration_since(done));
                }
            }
            _ => {}
        }
    }
    lags
}
