//! `audit show`: the log as readable lines, optionally only one schedule's entries or those
//! since an instant. Showing is not verifying: it reads what is there without judging it.
//! Whatever came from outside (a webhook's fields, a hand-edited line) is shown with its
//! control characters escaped, so a log can never drive the reader's terminal.

use super::entry::Entry;
use jiff::Timestamp;
use serde_json::Value;
use std::io::{BufRead, Write};

/// Which entries to show.
#[derive(Clone, Debug, Default)]
pub struct ShowFilter {
    /// Only entries whose event names this schedule (a field `schedule_id`, `schedule`, or
    /// `schedule.id` anywhere in the event).
    pub schedule: Option<String>,
    /// Only entries recorded at or after this instant.
    pub since: Option<Timestamp>,
}

/// Write the readable form of every matching entry of `log` to `out`.
pub fn show(log: impl BufRead, filter: &ShowFilter, out: &mut impl Write) -> std::io::Result<()> {
    for (index, line) in log.lines().enumerate() {
        let line = line?;
        match serde_json::from_str::<Entry<Value>>(&line) {
            Ok(entry) => {
                let (kind, mut fields) = describe(&entry.event);
                tidy(&mut fields, entry.at);
                if filter.since.is_some_and(|since| entry.at < since)
                    || filter
                        .schedule
                        .as_deref()
                        .is_some_and(|id| !names_schedule(&fields, id))
                {
                    continue;
                }
                let mut text = format!(
                    "#{:<5} {}  {}  {}",
                    entry.seq,
                    entry.at,
                    escape_controls(&entry.step),
                    escape_controls(&kind)
                );
                // An absent optional says nothing a reader needs.
                for (key, value) in fields.iter().filter(|(_, value)| !value.is_null()) {
                    text.push_str(&format!(" {}={}", escape_controls(key), render(value)));
                }
                writeln!(out, "{}", text.trim_end())?;
            }
            Err(e) => writeln!(out, "line {}: unreadable entry ({e})", index + 1)?,
        }
    }
    Ok(())
}

/// The event's kind (its tag) and its remaining fields flattened to dotted paths.
fn describe(event: &Value) -> (String, Vec<(String, Value)>) {
    let mut fields = Vec::new();
    match event {
        // An externally tagged enum: `{"Published": {...}}`.
        Value::Object(map) if map.len() == 1 => {
            if let Some((tag, inner)) = map.iter().next() {
                flatten("", inner, &mut fields);
                return (tag.clone(), fields);
            }
        }
        // An internally tagged one: `{"kind": "published", ...}`.
        Value::Object(map) => {
            let tag = ["kind", "type"]
                .iter()
                .find_map(|key| map.get(*key).and_then(Value::as_str).map(|s| (*key, s)));
            if let Some((key, tag)) = tag {
                for (name, value) in map.iter().filter(|(name, _)| *name != key) {
                    flatten(name, value, &mut fields);
                }
                return (tag.to_owned(), fields);
            }
        }
        _ => {}
    }
    flatten("", event, &mut fields);
    (String::new(), fields)
}

fn flatten(path: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (name, inner) in map {
                let nested = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                flatten(&nested, inner, out);
            }
        }
        _ if path.is_empty() => out.push(("event".to_owned(), value.clone())),
        _ => out.push((path.to_owned(), value.clone())),
    }
}

/// The parts of a runner schedule reference, joined as `business_unit/week/schedule_id`.
const SCHEDULE_PARTS: [&str; 3] = [
    "schedule.business_unit",
    "schedule.week",
    "schedule.schedule_id",
];

/// Make the fields easier to read: a schedule reference as one `schedule=bu/week/id` field
/// first, no repeat of the entry's own time, and 64-digit hashes cut to their first 12.
fn tidy(fields: &mut Vec<(String, Value)>, at: Timestamp) {
    let part = |fields: &[(String, Value)], name: &str| {
        fields
            .iter()
            .find(|(path, _)| path == name)
            .and_then(|(_, value)| value.as_str().map(str::to_owned))
    };
    let parts: Option<Vec<String>> = SCHEDULE_PARTS
        .iter()
        .map(|name| part(fields, name))
        .collect();
    if let Some(parts) = parts {
        fields.retain(|(path, _)| !SCHEDULE_PARTS.contains(&path.as_str()));
        fields.insert(0, ("schedule".to_owned(), Value::String(parts.join("/"))));
    }
    let at = at.to_string();
    fields.retain(|(path, value)| !(path == "at" && value.as_str() == Some(at.as_str())));
    for (_, value) in fields.iter_mut() {
        if let Value::String(text) = value
            && text.len() == 64
            && text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            text.truncate(12);
            text.push('…');
        }
    }
}

fn names_schedule(fields: &[(String, Value)], id: &str) -> bool {
    fields.iter().any(|(path, value)| {
        let last = path.rsplit('.').next().unwrap_or(path);
        let Some(text) = value.as_str() else {
            return false;
        };
        match last {
            "schedule_id" => text == id,
            // A bare id, or a joined `business_unit/week/schedule_id`.
            "schedule" => text == id || text.rsplit('/').next() == Some(id),
            _ => path.ends_with("schedule.id") && text == id,
        }
    })
}

/// A value as shown: a plain word as it is, any other string quoted and escaped.
fn render(value: &Value) -> String {
    match value {
        Value::String(s)
            if !s.is_empty()
                && !s.contains(char::is_whitespace)
                && !s.contains('"')
                && !s.chars().any(is_terminal_control) =>
        {
            s.clone()
        }
        // `Debug` escapes control characters, but not the bidirectional overrides.
        Value::String(s) => escape_controls(&format!("{s:?}")),
        other => escape_controls(&other.to_string()),
    }
}

/// Whether a terminal (or a reader) could be misled by `c`: C0 and C1 controls, and the
/// bidirectional embeddings, overrides and isolates that reorder what is shown.
fn is_terminal_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every such character written as `\u{...}`.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_terminal_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}
