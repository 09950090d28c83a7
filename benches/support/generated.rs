//! Generated rules files for the benchmarks: `rules` rules of varied shapes, none of which
//! holds for a weekday-noon draft published two hours before, except the last: evaluating
//! them tries every rule.

use std::fmt::Write;

/// A trigger phase of `rules` rules (the last one `publish`) over one window.
pub fn rules_file(rules: usize) -> String {
    let mut s = String::from(
        "policy \"generated\"\ntimezone \"Europe/London\"\nsources servicenow, manual, timer\n\n\
         window hours {\n  mon..fri 07:00..20:00\n}\n\non trigger {\n",
    );
    for i in 0..rules.saturating_sub(1) {
        let condition = match i % 4 {
            0 => format!(
                "schedule.version == {} and trigger.source == manual",
                1000 + i
            ),
            1 => "schedule.state in [published, unknown]".to_string(),
            2 => format!(
                "since(last_publish.at) < {}m or attempt > {}",
                i + 1,
                100 + i
            ),
            _ => format!("now not in hours and trigger.coalesced >= {}", 100 + i),
        };
        let _ = writeln!(s, "  rule r{i} when {condition} then skip \"r{i}\"");
    }
    s.push_str(
        "  rule last when schedule.state == draft then publish\n  otherwise skip \"none\"\n}\n\n\
         on response {\n  otherwise done\n}\n",
    );
    s
}
