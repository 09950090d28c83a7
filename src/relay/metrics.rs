//! The relay's counters, rendered in the Prometheus text format for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

/// Counter families: name and help text.
const FAMILIES: [(&str, &str); 8] = [
    (
        "publish_guard_webhooks_total",
        "Webhooks answered, by source and HTTP status.",
    ),
    (
        "publish_guard_decisions_total",
        "Policy decisions, by phase, rule and action.",
    ),
    (
        "publish_guard_api_calls_total",
        "Schedule API calls, by kind and HTTP status (none: no answer).",
    ),
    ("publish_guard_reloads_total", "Rules reloads, by result."),
    (
        WRITE_FAILURES,
        "Writes that failed, by target (audit, store); processing waits and retries.",
    ),
    (
        CONNECTIONS_AT_CAP,
        "Connections that waited to be accepted because the most allowed were open.",
    ),
    (
        "publish_guard_auth_failures_total",
        "Cycles ended, or schedules left unresolved, because the API refused our login or token.",
    ),
    (
        "publish_guard_states_known_total",
        "Cycles decided without a read of their own, by how the state was learnt (read, event: kept by the notification channel; follow: the read that ended the cycle before).",
    ),
];

/// The counter of write failures, by target (`audit` or `store`).
pub const WRITE_FAILURES: &str = "publish_guard_write_failures_total";

/// The counter of connections that waited because the most allowed were open.
pub const CONNECTIONS_AT_CAP: &str = "publish_guard_connections_at_cap_total";

/// A counter's identity: its family and its label pairs, in order.
type Series = (&'static str, Vec<(&'static str, String)>);

/// Counters keyed by family and label set.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Series, u64>>,
}

/// Gauges read at render time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    /// Triggers pending or running.
    pub queue_depth: u64,
    /// Seconds since the oldest unfinished trigger was received.
    pub oldest_pending_age_seconds: f64,
}

impl Metrics {
    /// Add one to the counter `family{labels}`.
    pub fn inc(&self, family: &'static str, labels: &[(&'static str, &str)]) {
        let key = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        *counters.entry((family, key)).or_insert(0) += 1;
    }

    /// The counter's value (zero when never counted).
    pub fn get(&self, family: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        let key: Vec<_> = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.get(&(family, key)).copied().unwrap_or(0)
    }

    /// Every counter and the gauges in the Prometheus text exposition format.
    pub fn render(&self, gauges: Gauges) -> String {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for (family, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} counter");
            for ((name, labels), value) in counters.iter() {
                if *name != family {
                    continue;
                }
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                if labels.is_empty() {
                    let _ = writeln!(out, "{family} {value}");
                } else {
                    let _ = writeln!(out, "{family}{{{}}} {value}", labels.join(","));
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP publish_guard_queue_depth Triggers pending or running.\n\
             # TYPE publish_guard_queue_depth gauge\npublish_guard_queue_depth {}",
            gauges.queue_depth
        );
        let _ = writeln!(
            out,
            "# HELP publish_guard_oldest_pending_age_seconds Age of the oldest unfinished trigger.\n\
             # TYPE publish_guard_oldest_pending_age_seconds gauge\n\
             publish_guard_oldest_pending_age_seconds {}",
            gauges.oldest_pending_age_seconds
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_family_and_gauges() {
        let metrics = Metrics::default();
        metrics.inc(FAMILIES[0].0, &[("source", "sn"), ("status", "202")]);
        metrics.inc(FAMILIES[0].0, &[("source", "sn"), ("status", "202")]);
        metrics.inc(FAMILIES[3].0, &[("result", "bad \"file\"")]);
        let gauges = Gauges {
            queue_depth: 3,
            oldest_pending_age_seconds: 1.5,
        };
        insta::assert_snapshot!(metrics.render(gauges));
    }
}
