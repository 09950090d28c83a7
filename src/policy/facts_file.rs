//! Facts files: the TOML a person writes to ask `explain` (or a test) "what would the
//! policy decide if...".
//!
//! Keys are fact names, dotted or as tables; values are typed as the schema says:
//!
//! ```toml
//! now = "2026-03-29T00:30:00Z"     # an instant: RFC 3339 string or TOML datetime, with offset
//! schedule.state = "draft"         # an enum: one of its values
//! schedule.week = "2026-03-23"     # a date: string or TOML date
//! trigger.source = "servicenow"    # a source: one the policy declares
//! response.retry_after = "7s"      # a duration: "7s", "15m", "1h 30m", or whole seconds
//! ```
//!
//! Defaults: `now` is required (there is no clock to fall back on); `trigger.duplicate`
//! defaults to `false`, and `trigger.coalesced`, `attempt` and `rechecks` to `0`, the values
//! of a first, fresh trigger. Every other fact left out is absent, which is how `explain`
//! shows what a missing fact does to each rule.

use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::schema::{FACTS, FactId, FactType};
use crate::language::span::Span;
use crate::language::suggest::did_you_mean;
use crate::policy::Policy;
use crate::policy::facts::{Facts, NOW, Value, fact_id};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use toml::de::{DeTable, DeValue};

/// Facts a fresh trigger has without being told, and their values.
const DEFAULTS: [(FactId, Value); 4] = [
    (fact_id("trigger.duplicate"), Value::Bool(false)),
    (fact_id("trigger.coalesced"), Value::Int(0)),
    (fact_id("attempt"), Value::Int(0)),
    (fact_id("rechecks"), Value::Int(0)),
];

/// Read a facts file against `policy` (whose `sources` a `trigger.source` must name).
/// Every problem is a [`Code::BadFact`] diagnostic pointing at the key or value.
pub fn load_facts(source: &str, policy: &Policy) -> Result<Facts, Vec<Diagnostic>> {
    let table = DeTable::parse(source).map_err(|e| {
        let span = e
            .span()
            .map_or(Span::default(), |r| Span::new(r.start, r.end));
        vec![Diagnostic::new(
            Code::BadFact,
            span,
            format!("not a valid TOML facts file: {}", e.message().trim_end()),
        )]
    })?;
    let mut loader = Loader {
        source,
        policy,
        facts: Facts::new(),
        diagnostics: Vec::new(),
    };
    loader.table(table.get_ref(), "", None);
    for (fact, value) in DEFAULTS {
        if loader.facts.get(fact).is_none() {
            loader.facts.set(fact, Some(value));
        }
    }
    if loader.facts.get(NOW).is_none() && loader.diagnostics.is_empty() {
        loader.diagnostics.push(
            Diagnostic::new(
                Code::BadFact,
                Span::new(0, 0),
                "the facts file does not say when: `now` is missing",
            )
            .with_help("add a line such as `now = \"2026-03-29T00:30:00Z\"`"),
        );
    }
    if loader.diagnostics.is_empty() {
        Ok(loader.facts)
    } else {
        loader.diagnostics.sort_by_key(|d| d.span);
        Err(loader.diagnostics)
    }
}

struct Loader<'a> {
    source: &'a str,
    policy: &'a Policy,
    facts: Facts,
    diagnostics: Vec<Diagnostic>,
}

impl Loader<'_> {
    /// Walk a table whose keys continue `prefix`; `parent` is the span of the key before.
    fn table(&mut self, table: &DeTable<'_>, prefix: &str, parent: Option<Span>) {
        for (key, value) in table {
            let name = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            let key_span = self.key_span(parent, to_span(key.span()));
            match (FactId::lookup(&name), value.get_ref()) {
                (Some(fact), value_ref) => {
                    let span = to_span(value.span());
                    match self.value(fact, value_ref, span) {
                        Ok(v) => self.facts.set(fact, Some(v)),
                        Err(d) => self.diagnostics.push(d),
                    }
                }
                (None, DeValue::Table(inner)) if is_prefix(&name) => {
                    self.table(inner, &name, Some(key_span))
                }
                (None, _) => {
                    let mut d =
                        Diagnostic::new(Code::BadFact, key_span, format!("`{name}` is not a fact"));
                    if let Some(help) = did_you_mean(&name, FACTS.iter().map(|f| f.name)) {
                        d = d.with_help(help);
                    }
                    self.diagnostics.push(d);
                }
            }
        }
    }

    /// A dotted key (`schedule.state`) is underlined whole; a key under a `[table]`
    /// header is underlined alone.
    fn key_span(&self, parent: Option<Span>, key: Span) -> Span {
        match parent {
            Some(p) if p.end <= key.start => {
                let between = self.source.get(p.end..key.start).unwrap_or("\n");
                if between.trim() == "." {
                    p.join(key)
                } else {
                    key
                }
            }
            _ => key,
        }
    }

    /// The typed value of `fact` written as `value` at `span`.
    fn value(&self, fact: FactId, value: &DeValue<'_>, span: Span) -> Result<Value, Diagnostic> {
        let def = fact.def();
        let wrong = |expected: &str| {
            Diagnostic::new(
                Code::BadFact,
                span,
                format!(
                    "`{}` is {} {}, not {}",
                    def.name,
                    article(def.ty.name()),
                    def.ty.name(),
                    describe(value)
                ),
            )
            .with_help(format!("write {expected}"))
        };
        match def.ty {
            FactType::Enum(names) => {
                let text = value
                    .as_str()
                    .ok_or_else(|| wrong("one of its values as a string"))?;
                match names.iter().position(|n| *n == text) {
                    Some(i) => Ok(Value::Enum(i as u8)),
                    None => Err(not_one_of(
                        &format!("a value of `{}`", def.name),
                        text,
                        names.iter().copied(),
                        span,
                    )),
                }
            }
            FactType::Source => {
                let text = value
                    .as_str()
                    .ok_or_else(|| wrong("a source name as a string"))?;
                if self.policy.sources.iter().any(|s| s == text) {
                    Ok(Value::Str(text.to_string()))
                } else {
                    let declared = self.policy.sources.iter().map(String::as_str);
                    Err(not_one_of(
                        "a source the policy declares",
                        text,
                        declared,
                        span,
                    ))
                }
            }
            FactType::String => value
                .as_str()
                .map(|s| Value::Str(s.to_string()))
                .ok_or_else(|| wrong("a string, e.g. \"case.created\"")),
            FactType::Int => value
                .as_integer()
                .and_then(|n| i64::from_str_radix(n.as_str(), n.radix()).ok())
                .map(Value::Int)
                .ok_or_else(|| wrong("a whole number, e.g. 3")),
            FactType::Bool => value
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| wrong("true or false")),
            FactType::Instant => text_or_datetime(value)
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map(Value::Instant)
                .ok_or_else(|| {
                    wrong("an instant with its UTC offset, e.g. \"2026-03-29T00:30:00Z\"")
                }),
            FactType::Duration => {
                let parsed = match value {
                    DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix())
                        .ok()
                        .map(SignedDuration::from_secs),
                    DeValue::String(s) => s.parse::<SignedDuration>().ok(),
                    _ => None,
                };
                parsed
                    .map(Value::Duration)
                    .ok_or_else(|| wrong("a duration, e.g. \"7s\" or \"15m\", or whole seconds"))
            }
            FactType::Date => text_or_datetime(value)
                .and_then(|t| t.parse::<Date>().ok())
                .map(Value::Date)
                .ok_or_else(|| wrong("a date, e.g. \"2026-03-23\"")),
        }
    }
}

/// `text` is not among `allowed`: say which are, and the likely one.
fn not_one_of<'c>(
    what: &str,
    text: &str,
    allowed: impl Iterator<Item = &'c str> + Clone,
    span: Span,
) -> Diagnostic {
    let list: Vec<&str> = allowed.clone().collect();
    let d = Diagnostic::new(
        Code::BadFact,
        span,
        format!(
            "`{text}` is not {what}: expected one of {}",
            list.join(", ")
        ),
    );
    match did_you_mean(text, allowed) {
        Some(help) => d.with_help(help),
        None => d,
    }
}

/// Whether some fact's name starts with `name.` (so a table under it may hold facts).
fn is_prefix(name: &str) -> bool {
    FACTS.iter().any(|f| {
        f.name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// A string, or a TOML date/datetime written bare, as text.
fn text_or_datetime(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}

/// What a TOML value is, for "not ..." messages.
fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(n) => format!("the number {}", n.as_str()),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("`{b}`"),
        DeValue::Datetime(d) => format!("the date/time {d}"),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn to_span(range: std::ops::Range<usize>) -> Span {
    Span::new(range.start, range.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CompiledAction, PhaseRules};
    use jiff::tz::TimeZone;

    /// The loader reads only the policy's sources.
    fn policy() -> Policy {
        let phase = || PhaseRules {
            rules: Vec::new(),
            otherwise: CompiledAction::Done,
            otherwise_span: Span::default(),
        };
        Policy {
            name: "facts".into(),
            version: String::new(),
            timezone: TimeZone::UTC,
            timezone_name: "UTC".into(),
            sources: vec!["servicenow".into(), "manual".into()],
            windows: Vec::new(),
            backoffs: Vec::new(),
            trigger: phase(),
            response: phase(),
        }
    }

    fn get(facts: &Facts, name: &str) -> Option<Value> {
        facts.get(FactId::lookup(name).unwrap()).cloned()
    }

    /// Each diagnostic as one line: code, the text it underlines, message, help.
    fn render(source: &str, diagnostics: &[Diagnostic]) -> String {
        diagnostics
            .iter()
            .map(|d| {
                format!(
                    "{} `{}`: {}{}\n",
                    d.code.as_str(),
                    d.span.text(source),
                    d.message,
                    d.help
                        .as_deref()
                        .map_or(String::new(), |h| format!(" ({h})"))
                )
            })
            .collect()
    }

    #[test]
    fn reads_every_type_dotted_or_in_tables() {
        let source = r#"
now = 2026-03-29T00:30:00Z
schedule.state = "publishing"
schedule.week = 2026-03-23
schedule.id = "abc"
trigger.source = "manual"
last_publish.at = "2026-03-28T23:00:00+01:00"
attempt = 2

[response]
status = 0x1AD
retry_after = "1m 30s"
"#;
        let facts = load_facts(source, &policy()).unwrap();
        let instant = |s: &str| Some(Value::Instant(s.parse().unwrap()));
        assert_eq!(get(&facts, "now"), instant("2026-03-29T00:30:00Z"));
        assert_eq!(get(&facts, "schedule.state"), Some(Value::Enum(1)));
        assert_eq!(
            get(&facts, "schedule.week"),
            Some(Value::Date(jiff::civil::date(2026, 3, 23)))
        );
        assert_eq!(get(&facts, "schedule.id"), Some(Value::Str("abc".into())));
        assert_eq!(
            get(&facts, "trigger.source"),
            Some(Value::Str("manual".into()))
        );
        assert_eq!(
            get(&facts, "last_publish.at"),
            instant("2026-03-28T22:00:00Z")
        );
        assert_eq!(get(&facts, "attempt"), Some(Value::Int(2)));
        assert_eq!(get(&facts, "response.status"), Some(Value::Int(429)));
        assert_eq!(
            get(&facts, "response.retry_after"),
            Some(Value::Duration(SignedDuration::from_secs(90)))
        );
    }

    #[test]
    fn durations_may_be_whole_seconds() {
        let facts = load_facts(
            "now = \"2026-01-01T00:00:00Z\"\nresponse.retry_after = 7",
            &policy(),
        )
        .unwrap();
        assert_eq!(
            get(&facts, "response.retry_after"),
            Some(Value::Duration(SignedDuration::from_secs(7)))
        );
    }

    #[test]
    fn counters_and_flags_default_and_the_rest_stays_absent() {
        let facts = load_facts("now = \"2026-01-01T00:00:00Z\"", &policy()).unwrap();
        assert_eq!(get(&facts, "trigger.duplicate"), Some(Value::Bool(false)));
        assert_eq!(get(&facts, "trigger.coalesced"), Some(Value::Int(0)));
        assert_eq!(get(&facts, "attempt"), Some(Value::Int(0)));
        assert_eq!(get(&facts, "rechecks"), Some(Value::Int(0)));
        assert_eq!(get(&facts, "schedule.state"), None);
        assert_eq!(get(&facts, "last_publish.at"), None);
    }

    #[test]
    fn now_is_required() {
        let errors = load_facts("schedule.state = \"draft\"\n", &policy()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("`now` is missing"));
    }

    #[test]
    fn each_bad_key_or_value_is_a_diagnostic_at_its_place() {
        let source = r#"now = "2026-03-29T00:30"
schedule.stat = "draft"
schedule.state = "Draft"
trigger.source = "servicenw"
schedule.version = "3"
response.retry_after = "soon"
schedule.week = 2026-03-23T10:00:00Z
bogus = 1

[operation]
statu = "complete"
"#;
        let errors = load_facts(source, &policy()).unwrap_err();
        assert!(errors.iter().all(|d| d.code == Code::BadFact));
        insta::assert_snapshot!(render(source, &errors));
    }

    #[test]
    fn invalid_toml_is_a_diagnostic_too() {
        let source = "now = \n";
        let errors = load_facts(source, &policy()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, Code::BadFact);
        assert!(errors[0].message.starts_with("not a valid TOML facts file"));
    }
}
