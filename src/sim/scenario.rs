//! The scenario file: what happens (schedules, triggers, a person's edits), how the API
//! behaves, which rules decide, and what the run should show. Loaded from TOML into a
//! validated [`Scenario`], or into diagnostics that point at the offending line.

use crate::api::OperationStatus;
use crate::api::week::{WeekSettings, parse_weekday};
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;
use crate::language::suggest;
use crate::policy::Policy;
use crate::sim::expect::Expectations;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// A validated scenario, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// A short name for reports (the `name` key, else the file stem).
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    pub description: Option<String>,
    /// The rules file, resolved against the scenario's directory.
    pub rules: PathBuf,
    /// When the virtual clock starts.
    pub start: Timestamp,
    /// When the virtual clock stops, if before everything has settled.
    pub end: Option<Timestamp>,
    /// The seed for every random choice (generated arrivals, jitter, error rates).
    pub seed: u64,
    /// The schedules, in file order; triggers refer to them by index.
    pub schedules: Vec<ScheduleSpec>,
    /// Business units with a week of their own (others start on Monday in London).
    pub business_units: Vec<BusinessUnitSpec>,
    /// How the simulated API behaves.
    pub api: ApiBehaviour,
    /// How the runner is configured.
    pub runner: RunnerOptions,
    /// A person's edits and manual publishes in the UI.
    pub people: Vec<PersonAction>,
    /// Triggers written out one by one.
    pub triggers: Vec<TriggerSpec>,
    /// Triggers produced by a rule (bursts, timers, random arrivals).
    pub generators: Vec<Generator>,
    /// Instants the runner's process restarts (`[[restart]]`), in order: only what the relay
    /// keeps durably carries over.
    pub restarts: Vec<Timestamp>,
    /// What the run should show.
    pub expect: Expectations,
}

/// One schedule as it stands when the clock starts.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleSpec {
    /// The schedule id.
    pub id: String,
    /// The business unit id.
    pub business_unit: String,
    /// The first day of its week.
    pub week: Date,
    /// Whether it starts published.
    pub published: bool,
    /// Its `metadata.version` at the start.
    pub version: i64,
    /// How many weeks it spans from `week` (`weekCount`).
    pub weeks: u32,
    /// When it was created (`metadata.dateCreated`); the start when not given.
    pub created: Option<Timestamp>,
    /// How the first update operation on it ends when not `Complete` (`Error`, `Canceled`).
    pub first_update_ends: Option<OperationStatus>,
}

/// A business unit's own week (what `GET .../businessunits/{id}` answers).
#[derive(Clone, Debug, PartialEq)]
pub struct BusinessUnitSpec {
    /// The business unit id.
    pub id: String,
    /// Its start day and time zone.
    pub week: WeekSettings,
}

/// How the simulated Genesys API behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiBehaviour {
    /// How long an accepted update stays `Processing`.
    pub processing: SignedDuration,
    /// How long each call takes to answer.
    pub latency: SignedDuration,
    /// Requests a minute (per OAuth client) past which the API answers 429.
    pub rate_limit: u32,
    /// Periods in which every call answers with a server error.
    pub outages: Vec<Outage>,
    /// The share of calls (0..=1) that answer a server error outside outages.
    pub error_rate: f64,
    /// The status those random errors answer with.
    pub error_status: u16,
    /// Schedule notifications, when the scenario turns them on (`[api.notifications]`).
    pub notifications: Option<Notifications>,
}

/// The notification channel as a scenario sets it: the model's events and the runner's
/// cache, and the channel's drops.
#[derive(Clone, Debug, PartialEq)]
pub struct Notifications {
    /// How long after a change its event arrives.
    pub delay: SignedDuration,
    /// Events lost, per thousand.
    pub loss_per_mille: u16,
    /// How long a cached state may decide a trigger.
    pub max_age: SignedDuration,
    /// Periods the channel is down: the events meanwhile are lost, the runner sees a gap.
    pub drops: Vec<(Timestamp, Timestamp)>,
}

impl Default for Notifications {
    /// Events 200 ms after the change, none lost, states trusted for 30 minutes, no drops.
    fn default() -> Self {
        Notifications {
            delay: SignedDuration::from_millis(200),
            loss_per_mille: 0,
            max_age: SignedDuration::from_mins(30),
            drops: Vec::new(),
        }
    }
}

impl Default for ApiBehaviour {
    fn default() -> Self {
        ApiBehaviour {
            processing: SignedDuration::from_secs(30),
            latency: SignedDuration::from_millis(200),
            rate_limit: 300,
            outages: Vec::new(),
            error_rate: 0.0,
            error_status: 500,
            notifications: None,
        }
    }
}

/// A period in which the API answers every call with `status`.
#[derive(Clone, Debug, PartialEq)]
pub struct Outage {
    /// First instant of the outage.
    pub from: Timestamp,
    /// First instant after it.
    pub until: Timestamp,
    /// The status answered (e.g. 503).
    pub status: u16,
}

/// Runner settings a scenario may vary.
#[derive(Clone, Debug, PartialEq)]
pub struct RunnerOptions {
    /// Fold triggers that arrive during a cycle into one further evaluation.
    pub coalesce: bool,
    /// The client-side rate limit (`[runner] requests_per_minute`, as in
    /// `publish-guard.toml`; Genesys' default 300).
    pub requests_per_minute: u32,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            coalesce: true,
            requests_per_minute: crate::api::limiter::DEFAULT_REQUESTS_PER_MINUTE,
        }
    }
}

/// What a person does in the Genesys UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonKind {
    /// Changes the schedule: a new version, no longer published.
    Edit,
    /// Publishes it by hand.
    Publish,
}

/// A person's action at an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonAction {
    /// When.
    pub at: Timestamp,
    /// Which schedule (index into [`Scenario::schedules`]).
    pub schedule: usize,
    /// What they do.
    pub kind: PersonKind,
    /// Who they are (`metadata.modifiedBy`).
    pub who: String,
}

/// One trigger written out in the scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerSpec {
    /// When it arrives.
    pub at: Timestamp,
    /// Which schedule (index into [`Scenario::schedules`]).
    pub schedule: usize,
    /// The trigger source (`servicenow`, `timer`, ...).
    pub source: String,
    /// The sender's delivery id; generated when absent.
    pub delivery: Option<String>,
    /// The sender's event name.
    pub event: Option<String>,
}

/// Which schedules a generator feeds.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// One schedule (index into [`Scenario::schedules`]).
    One(usize),
    /// Every schedule (`"*"`): each one for bursts and timers, one at random per arrival.
    All,
}

/// A rule that produces triggers.
#[derive(Clone, Debug, PartialEq)]
pub struct Generator {
    /// Which schedules it feeds.
    pub target: Target,
    /// The source of its triggers.
    pub source: String,
    /// The event name of its triggers.
    pub event: Option<String>,
    /// How it spreads them in time.
    pub kind: GeneratorKind,
}

/// How a generator spreads its triggers.
#[derive(Clone, Debug, PartialEq)]
pub enum GeneratorKind {
    /// `count` triggers spread evenly over `within`, starting `at`.
    Burst {
        /// The first trigger.
        at: Timestamp,
        /// How many.
        count: u32,
        /// Over how long.
        within: SignedDuration,
    },
    /// One trigger every `interval` from `from` to `until`, only while the local time is
    /// within `between` (a wall-clock range in `timezone`, which may cross midnight).
    Every {
        /// Time between triggers.
        interval: SignedDuration,
        /// The first candidate instant.
        from: Timestamp,
        /// No trigger at or after this.
        until: Timestamp,
        /// Local opening and closing time; all day when absent.
        between: Option<(Time, Time)>,
        /// The zone `between` is read in.
        timezone: TimeZone,
    },
    /// Random arrivals (a Poisson process) at `per_minute`, from `from` to `until`.
    Random {
        /// Mean arrivals a minute.
        per_minute: f64,
        /// Start of the arrivals.
        from: Timestamp,
        /// No arrival at or after this.
        until: Timestamp,
    },
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but does not describe a valid scenario.
    #[error("{path}: the scenario has {} error(s)", diagnostics.len())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Its text, for rendering the diagnostics.
        source_text: String,
        /// What is wrong, with spans into `source_text`.
        diagnostics: Vec<Diagnostic>,
    },
}

/// A trigger source as a scenario writes it, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceUse {
    /// The source's name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A loaded scenario with what checks against a policy need: its file, its text, and where
/// each trigger source is written.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The scenario.
    pub scenario: Scenario,
    /// The file it was read from.
    pub path: PathBuf,
    /// Its text, for rendering diagnostics.
    pub text: String,
    /// Every trigger source written in it, with where, in file order.
    pub sources: Vec<SourceUse>,
}

impl Loaded {
    /// An E108 diagnostic, pointing into the scenario, for each trigger source `policy`
    /// does not declare: the runner would evaluate those triggers as if it did.
    pub fn check_sources(&self, policy: &Policy, rules: &Path) -> Vec<Diagnostic> {
        self.sources
            .iter()
            .filter(|used| !policy.sources.contains(&used.name))
            .map(|SourceUse { name, span }| {
                let declared = policy.sources.join(", ");
                let help = match suggest::did_you_mean(
                    name,
                    policy.sources.iter().map(String::as_str),
                ) {
                    Some(help) => help,
                    None if declared.is_empty() => format!(
                        "the policy declares no sources; add `sources {name}` to {}",
                        rules.display()
                    ),
                    None => format!(
                        "the policy declares: {declared}; add `{name}` to `sources` in {}, or use one of those",
                        rules.display()
                    ),
                };
                Diagnostic::new(
                    Code::UnknownSource,
                    *span,
                    format!(
                        "`{name}` is not a trigger source of policy `{}` ({})",
                        policy.name,
                        rules.display()
                    ),
                )
                .with_help(help)
            })
            .collect()
    }
}

/// Read and validate the scenario at `path`; the rules path is resolved against its folder.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    load_file(path).map(|loaded| loaded.scenario)
}

/// Read and validate the scenario at `path`, keeping its text and the sources' places.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    match parse_with_sources(&text, &stem, dir) {
        Ok((scenario, sources)) => Ok(Loaded {
            scenario,
            path: path.to_owned(),
            text,
            sources,
        }),
        Err(diagnostics) => Err(LoadError::Invalid {
            path: path.to_owned(),
            source_text: text,
            diagnostics,
        }),
    }
}

/// Parse and validate scenario text. `default_name` names it when it has no `name`;
/// `dir` is where a relative `rules` path starts.
pub fn parse(text: &str, default_name: &str, dir: &Path) -> Result<Scenario, Vec<Diagnostic>> {
    parse_with_sources(text, default_name, dir).map(|(scenario, _)| scenario)
}

/// [`parse`], also giving every trigger source written and where. Every error is reported
/// (one per table entry at most when a value does not fit), in file order.
fn parse_with_sources(
    text: &str,
    default_name: &str,
    dir: &Path,
) -> Result<(Scenario, Vec<SourceUse>), Vec<Diagnostic>> {
    let root = toml::de::DeTable::parse(text).map_err(|e| vec![toml_diagnostic(&e, text)])?;
    let mut diagnostics = Vec::new();
    let Some(raw) = RawScenario::read(root.into_inner(), text, &mut diagnostics) else {
        diagnostics.sort_by_key(|d| d.span.start);
        return Err(diagnostics);
    };
    let validator = Validator {
        // A table entry that did not read leaves its schedule undeclared: references to
        // it are not errors of their own.
        references_checked: diagnostics.is_empty(),
        diagnostics,
        ..Validator::default()
    };
    validator
        .scenario(raw, default_name, dir)
        .map_err(|mut all| {
            all.sort_by_key(|d| d.span.start);
            all
        })
}

fn toml_diagnostic(error: &toml::de::Error, text: &str) -> Diagnostic {
    let span = error.span().map_or(Span::new(0, text.len().min(1)), |r| {
        Span::new(r.start, r.end)
    });
    let message = error.message().trim_end().replace('\n', " ");
    Diagnostic::new(Code::BadScenario, span, message)
}

fn span_of<T>(value: &Spanned<T>) -> Span {
    let r = value.span();
    Span::new(r.start, r.end)
}

/// An instant written as RFC 3339 (`2026-03-02T09:00:00Z`).
#[derive(Clone, Copy, Debug)]
struct Instant(Timestamp);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Timestamp>().map(Instant).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an instant like \"2026-03-02T09:00:00Z\" (RFC 3339, with an offset)"
            ))
        })
    }
}

/// A duration written like `15m`, `90s`, `1h 30m` or `250ms`.
#[derive(Clone, Copy, Debug)]
struct Duration(SignedDuration);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.parse::<SignedDuration>() {
            Ok(v) if v.is_negative() => Err(serde::de::Error::custom(format!(
                "`{text}` is negative; a duration here must be zero or more"
            ))),
            Ok(v) => Ok(Duration(v)),
            Err(_) => Err(serde::de::Error::custom(format!(
                "`{text}` is not a duration like \"15m\", \"90s\" or \"1h 30m\""
            ))),
        }
    }
}

/// A calendar date (`2026-03-02`).
#[derive(Clone, Copy, Debug)]
struct Day(Date);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Date>().map(Day).map_err(|_| {
            serde::de::Error::custom(format!("`{text}` is not a date like \"2026-03-02\""))
        })
    }
}

/// A wall-clock time (`07:00`).
#[derive(Clone, Copy, Debug)]
struct Clock(Time);

impl<'de> Deserialize<'de> for Clock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Time>().map(Clock).map_err(|_| {
            serde::de::Error::custom(format!("`{text}` is not a time of day like \"07:00\""))
        })
    }
}

/// The scenario as written. Its top-level keys are read one by one, and each entry of an
/// array of tables on its own, so that every bad one is reported, not only the first.
struct RawScenario {
    rules: String,
    start: Instant,
    rest: RawRest,
}

/// The top-level keys of a scenario, as the reference (docs/scenarios.md) lists them.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "description",
    "rules",
    "start",
    "end",
    "seed",
    "runner",
    "api",
    "schedule",
    "business_unit",
    "person",
    "trigger",
    "burst",
    "every",
    "random",
    "restart",
    "expect",
];

/// Reads values out of the parsed document, recording why one does not fit.
struct Reader<'a> {
    text: &'a str,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Reader<'_> {
    /// One value, or `None` with its error recorded.
    fn one<T: serde::de::DeserializeOwned>(&mut self, value: Spanned<DeValue<'_>>) -> Option<T> {
        let span = value.span();
        T::deserialize(ValueDeserializer::from(value))
            .map_err(|e| {
                // A scalar's own error carries no place: it is the value's.
                let mut diagnostic = toml_diagnostic(&e, self.text);
                if e.span().is_none() {
                    diagnostic.span = Span::new(span.start, span.end);
                }
                self.diagnostics.push(diagnostic);
            })
            .ok()
    }

    /// A required key's value: `None` absent (reported here), `Some(None)` unreadable
    /// (reported when read).
    fn required<T>(&mut self, name: &str, value: Option<Option<T>>) -> Option<T> {
        if value.is_none() {
            self.diagnostics.push(Diagnostic::new(
                Code::BadScenario,
                Span::new(0, self.text.len().min(1)),
                format!("missing field `{name}`"),
            ));
        }
        value.flatten()
    }

    /// An array of tables, each entry read on its own; the bad ones are left out.
    fn each<T: serde::de::DeserializeOwned>(
        &mut self,
        value: Spanned<DeValue<'_>>,
    ) -> Vec<Spanned<T>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(entries) => entries
                .into_iter()
                .filter_map(|entry| self.one(entry))
                .collect(),
            // Not an array: the whole value's error says what was expected.
            other => self.one(Spanned::new(span, other)).unwrap_or_default(),
        }
    }
}

impl RawScenario {
    /// Read the top-level table; `None` when a required key is missing or unreadable.
    fn read(
        table: DeTable<'_>,
        text: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<RawScenario> {
        let mut reader = Reader { text, diagnostics };
        // Required keys: `None` absent, `Some(None)` present but unreadable.
        let (mut rules, mut start) = (None, None);
        let mut raw = RawRest::default();
        for (key, value) in table {
            let r = &mut reader;
            match key.get_ref().as_ref() {
                "name" => raw.name = r.one(value),
                "description" => raw.description = r.one(value),
                "rules" => rules = Some(r.one(value)),
                "start" => start = Some(r.one(value)),
                "end" => raw.end = r.one(value),
                "seed" => raw.seed = r.one(value).unwrap_or_default(),
                "runner" => raw.runner = r.one(value).unwrap_or_default(),
                "api" => raw.api = r.one(value).unwrap_or_default(),
                "schedule" => raw.schedule = r.each(value),
                "business_unit" => raw.business_unit = r.one(value).unwrap_or_default(),
                "person" => raw.person = r.each(value),
                "trigger" => raw.trigger = r.each(value),
                "burst" => raw.burst = r.each(value),
                "every" => raw.every = r.each(value),
                "random" => raw.random = r.each(value),
                "restart" => raw.restart = r.each(value),
                "expect" => raw.expect = r.one(value).unwrap_or_default(),
                other => {
                    let keys: Vec<String> =
                        TOP_LEVEL_KEYS.iter().map(|k| format!("`{k}`")).collect();
                    let message = format!(
                        "unknown field `{other}`, expected one of {}",
                        keys.join(", ")
                    );
                    let r = key.span();
                    reader.diagnostics.push(Diagnostic::new(
                        Code::BadScenario,
                        Span::new(r.start, r.end),
                        message,
                    ));
                }
            }
        }
        let rules = reader.required("rules", rules);
        let start = reader.required("start", start);
        Some(RawScenario {
            rules: rules?,
            start: start?,
            rest: raw,
        })
    }
}

/// The optional top-level keys.
#[derive(Default)]
struct RawRest {
    name: Option<String>,
    description: Option<String>,
    end: Option<Spanned<Instant>>,
    seed: u64,
    runner: RawRunner,
    api: RawApi,
    schedule: Vec<Spanned<RawSchedule>>,
    business_unit: Vec<RawBusinessUnit>,
    person: Vec<Spanned<RawPerson>>,
    trigger: Vec<Spanned<RawTrigger>>,
    burst: Vec<Spanned<RawBurst>>,
    every: Vec<Spanned<RawEvery>>,
    random: Vec<Spanned<RawRandom>>,
    restart: Vec<Spanned<RawRestart>>,
    expect: crate::sim::expect::RawExpect,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunner {
    coalesce: Option<bool>,
    requests_per_minute: Option<u32>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    processing: Option<Duration>,
    latency: Option<Duration>,
    rate_limit: Option<Spanned<u32>>,
    #[serde(default)]
    outage: Vec<Spanned<RawOutage>>,
    error_rate: Option<Spanned<f64>>,
    error_status: Option<Spanned<u16>>,
    notifications: Option<RawNotifications>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    #[serde(default = "default_notifications_on")]
    enabled: bool,
    delay: Option<Duration>,
    loss: Option<Spanned<f64>>,
    max_age: Option<Duration>,
    #[serde(default)]
    drop: Vec<Spanned<RawDrop>>,
}

fn default_notifications_on() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrop {
    from: Instant,
    until: Instant,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutage {
    from: Instant,
    until: Instant,
    #[serde(default = "default_outage_status")]
    status: Spanned<u16>,
}

fn default_outage_status() -> Spanned<u16> {
    Spanned::new(0..0, 503)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    id: Spanned<String>,
    bu: String,
    week: Day,
    #[serde(default)]
    published: bool,
    #[serde(default = "default_version")]
    version: i64,
    weeks: Option<Spanned<u32>>,
    created: Option<Spanned<Instant>>,
    first_update_ends: Option<FailedEnd>,
}

/// How an update operation may end other than `Complete`, as a scenario writes it.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FailedEnd {
    Error,
    Canceled,
}

impl From<FailedEnd> for OperationStatus {
    fn from(end: FailedEnd) -> Self {
        match end {
            FailedEnd::Error => OperationStatus::Error,
            FailedEnd::Canceled => OperationStatus::Canceled,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBusinessUnit {
    id: String,
    week_starts: Spanned<String>,
    timezone: Spanned<String>,
}

fn default_version() -> i64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    at: Spanned<Instant>,
    schedule: Spanned<String>,
    action: PersonKind,
    #[serde(default = "default_person")]
    who: String,
}

fn default_person() -> String {
    "planner".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    at: Spanned<Instant>,
    schedule: Spanned<String>,
    source: Spanned<String>,
    delivery: Option<Spanned<String>>,
    event: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurst {
    schedule: Spanned<String>,
    source: Spanned<String>,
    event: Option<String>,
    at: Spanned<Instant>,
    count: Spanned<u32>,
    within: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvery {
    schedule: Spanned<String>,
    source: Spanned<String>,
    event: Option<String>,
    interval: Spanned<Duration>,
    from: Option<Spanned<Instant>>,
    until: Spanned<Instant>,
    between: Option<Spanned<(Clock, Clock)>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRandom {
    schedule: Spanned<String>,
    source: Spanned<String>,
    event: Option<String>,
    per_minute: Spanned<f64>,
    from: Option<Spanned<Instant>>,
    until: Spanned<Instant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    at: Spanned<Instant>,
}

/// `a/b/../c` as `a/c`, without touching the file system, so reports show tidy paths.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Collects the checks that need more than one value (references, ranges, orderings).
#[derive(Default)]
struct Validator {
    diagnostics: Vec<Diagnostic>,
    ids: BTreeMap<String, usize>,
    /// Whether an undeclared schedule is an error (not when a `[[schedule]]` did not read).
    references_checked: bool,
    /// Every trigger source written, with where.
    sources: Vec<SourceUse>,
    /// The scenario's `end`, which nothing may come after.
    end: Option<Timestamp>,
}

impl Validator {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(Code::BadScenario, span, message));
    }

    fn scenario(
        mut self,
        raw: RawScenario,
        default_name: &str,
        dir: &Path,
    ) -> Result<(Scenario, Vec<SourceUse>), Vec<Diagnostic>> {
        let RawScenario { rules, start, rest } = raw;
        let start = start.0;
        let schedules = self.schedules(rest.schedule, start);
        let business_units = self.business_units(rest.business_unit);
        let api = self.api(rest.api);
        let end = rest.end.map(|end| {
            if end.get_ref().0 <= start {
                self.error(span_of(&end), "`end` must come after `start`");
            }
            end.into_inner().0
        });
        self.end = end;
        let people = rest
            .person
            .into_iter()
            .map(|p| {
                let p = p.into_inner();
                self.before_end(&p.at, "this action would never happen");
                PersonAction {
                    at: p.at.into_inner().0,
                    schedule: self.schedule_ref(&p.schedule),
                    kind: p.action,
                    who: p.who,
                }
            })
            .collect();
        let triggers = self.triggers(rest.trigger);
        let mut generators = Vec::new();
        for burst in rest.burst {
            let burst = burst.into_inner();
            let count = *burst.count.get_ref();
            if count == 0 {
                self.error(span_of(&burst.count), "a burst needs at least one trigger");
            }
            self.burst_before_end(&burst);
            let target = self.target(&burst.schedule);
            generators.push(Generator {
                target,
                source: self.source(burst.source),
                event: burst.event,
                kind: GeneratorKind::Burst {
                    at: burst.at.into_inner().0,
                    count,
                    within: burst.within.0,
                },
            });
        }
        for every in rest.every {
            let every = every.into_inner();
            let interval = every.interval.get_ref().0;
            if interval <= SignedDuration::ZERO {
                self.error(
                    span_of(&every.interval),
                    "`interval` must be more than zero",
                );
            }
            let timezone = match &every.timezone {
                None => TimeZone::UTC,
                Some(name) => TimeZone::get(name.get_ref()).unwrap_or_else(|_| {
                    self.error(
                        span_of(name),
                        format!("`{}` is not an IANA time-zone name", name.get_ref()),
                    );
                    TimeZone::UTC
                }),
            };
            let from = self.from(every.from.as_ref(), start, &every.until);
            generators.push(Generator {
                target: self.target(&every.schedule),
                source: self.source(every.source),
                event: every.event,
                kind: GeneratorKind::Every {
                    interval,
                    from,
                    until: every.until.into_inner().0,
                    between: every.between.map(|b| {
                        let (open, close) = b.into_inner();
                        (open.0, close.0)
                    }),
                    timezone,
                },
            });
        }
        for random in rest.random {
            let random = random.into_inner();
            let rate = *random.per_minute.get_ref();
            if !(rate.is_finite() && rate > 0.0) {
                self.error(
                    span_of(&random.per_minute),
                    "`per_minute` must be a number above zero",
                );
            }
            let from = self.from(random.from.as_ref(), start, &random.until);
            generators.push(Generator {
                target: self.target(&random.schedule),
                source: self.source(random.source),
                event: random.event,
                kind: GeneratorKind::Random {
                    per_minute: rate,
                    from,
                    until: random.until.into_inner().0,
                },
            });
        }
        let mut restarts = Vec::new();
        for restart in rest.restart {
            let restart = restart.into_inner();
            self.before_end(&restart.at, "this restart would never happen");
            if restart.at.get_ref().0 < start {
                self.error(
                    span_of(&restart.at),
                    "a restart must not come before `start`",
                );
            }
            restarts.push(restart.at.into_inner().0);
        }
        restarts.sort();
        let deliveries: Vec<&str> = triggers
            .iter()
            .filter_map(|t| t.delivery.as_deref())
            .collect();
        let expect = crate::sim::expect::validate(rest.expect, &deliveries, &mut self.diagnostics);
        if !self.diagnostics.is_empty() {
            return Err(self.diagnostics);
        }
        let scenario = Scenario {
            name: rest.name.unwrap_or_else(|| default_name.to_string()),
            description: rest.description,
            rules: normalize(&dir.join(rules)),
            start,
            end,
            seed: rest.seed,
            schedules,
            business_units,
            api,
            runner: RunnerOptions {
                coalesce: rest.runner.coalesce.unwrap_or(true),
                requests_per_minute: rest
                    .runner
                    .requests_per_minute
                    .unwrap_or(crate::api::limiter::DEFAULT_REQUESTS_PER_MINUTE),
            },
            people,
            triggers,
            generators,
            restarts,
            expect,
        };
        Ok((scenario, self.sources))
    }

    /// A trigger source, noted with where it is written.
    fn source(&mut self, source: Spanned<String>) -> String {
        let span = span_of(&source);
        let name = source.into_inner();
        self.sources.push(SourceUse {
            name: name.clone(),
            span,
        });
        name
    }

    /// An error when `at` is after `end`: the run stops first, so it would never happen.
    fn before_end(&mut self, at: &Spanned<Instant>, what: &str) {
        if let Some(end) = self.end
            && at.get_ref().0 > end
        {
            self.error(
                span_of(at),
                format!("{} is after `end` ({end}): {what}", at.get_ref().0),
            );
        }
    }

    /// An error when some of a burst's triggers come after `end`.
    fn burst_before_end(&mut self, burst: &RawBurst) {
        let Some(end) = self.end else { return };
        let (at, count) = (burst.at.get_ref().0, *burst.count.get_ref());
        if at > end {
            self.before_end(&burst.at, "this burst would never arrive");
            return;
        }
        // The burst's triggers are `within / count` apart, the first at `at`.
        let step = burst.within.0.as_nanos() / i128::from(count.max(1));
        let after = (0..count)
            .rev()
            .take_while(|&i| {
                let offset = SignedDuration::from_nanos_i128(step * i128::from(i));
                at.saturating_add(offset).is_ok_and(|t| t > end)
            })
            .count();
        if after > 0 {
            self.error(
                span_of(&burst.count),
                format!(
                    "{after} of this burst's {count} triggers come after `end` ({end}) and would never arrive"
                ),
            );
        }
    }

    /// A generator's first instant (`start` when not given), checked against `until` and `end`.
    fn from(
        &mut self,
        from: Option<&Spanned<Instant>>,
        start: Timestamp,
        until: &Spanned<Instant>,
    ) -> Timestamp {
        if let Some(from) = from {
            self.before_end(from, "this generator would never produce a trigger");
        }
        let from = from.map_or(start, |f| f.get_ref().0);
        self.check_order(from, until);
        from
    }

    fn schedules(&mut self, raw: Vec<Spanned<RawSchedule>>, start: Timestamp) -> Vec<ScheduleSpec> {
        let mut out = Vec::with_capacity(raw.len());
        for schedule in raw {
            let schedule = schedule.into_inner();
            let id = schedule.id.get_ref().clone();
            if id == "*" || id.is_empty() {
                self.error(
                    span_of(&schedule.id),
                    "a schedule id must be a non-empty name other than `*`",
                );
            }
            if self.ids.insert(id.clone(), out.len()).is_some() {
                self.error(
                    span_of(&schedule.id),
                    format!("schedule `{id}` is declared twice"),
                );
            }
            let weeks = schedule.weeks.map_or(1, |w| {
                if *w.get_ref() == 0 {
                    self.error(span_of(&w), "`weeks` must be at least 1");
                }
                *w.get_ref()
            });
            let created = schedule.created.map(|c| {
                let at = c.get_ref().0;
                if at > start {
                    self.error(span_of(&c), "`created` must not be after `start`");
                }
                at
            });
            out.push(ScheduleSpec {
                id,
                business_unit: schedule.bu,
                week: schedule.week.0,
                published: schedule.published,
                version: schedule.version,
                weeks,
                created,
                first_update_ends: schedule.first_update_ends.map(OperationStatus::from),
            });
        }
        out
    }

    fn business_units(&mut self, raw: Vec<RawBusinessUnit>) -> Vec<BusinessUnitSpec> {
        raw.into_iter()
            .map(|unit| {
                let start_day = parse_weekday(unit.week_starts.get_ref()).unwrap_or_else(|_| {
                    let message = format!(
                        "`week_starts` must be a day of the week (Sunday..Saturday), got {:?}",
                        unit.week_starts.get_ref()
                    );
                    self.error(span_of(&unit.week_starts), message);
                    Weekday::Monday
                });
                let time_zone = TimeZone::get(unit.timezone.get_ref()).unwrap_or_else(|_| {
                    self.error(
                        span_of(&unit.timezone),
                        format!(
                            "`{}` is not an IANA time-zone name",
                            unit.timezone.get_ref()
                        ),
                    );
                    TimeZone::UTC
                });
                BusinessUnitSpec {
                    id: unit.id,
                    week: WeekSettings {
                        start_day,
                        time_zone: Some(time_zone),
                    },
                }
            })
            .collect()
    }

    fn notifications(&mut self, raw: RawNotifications) -> Notifications {
        let defaults = Notifications::default();
        let loss = raw.loss.map_or(0.0, |l| {
            if !(0.0..=1.0).contains(l.get_ref()) {
                self.error(span_of(&l), "`loss` must be between 0 and 1");
            }
            l.into_inner()
        });
        let drops = raw
            .drop
            .into_iter()
            .map(|d| {
                let span = span_of(&d);
                let d = d.into_inner();
                if d.until.0 <= d.from.0 {
                    self.error(span, "a drop's `until` must come after its `from`");
                }
                (d.from.0, d.until.0)
            })
            .collect();
        Notifications {
            delay: raw.delay.map_or(defaults.delay, |d| d.0),
            loss_per_mille: (loss.clamp(0.0, 1.0) * 1000.0).round() as u16,
            max_age: raw.max_age.map_or(defaults.max_age, |d| d.0),
            drops,
        }
    }

    fn api(&mut self, raw: RawApi) -> ApiBehaviour {
        let defaults = ApiBehaviour::default();
        let rate_limit = raw.rate_limit.map_or(defaults.rate_limit, |r| {
            if *r.get_ref() == 0 {
                self.error(
                    span_of(&r),
                    "`rate_limit` must be at least 1 request a minute",
                );
            }
            r.into_inner()
        });
        let error_rate = raw.error_rate.map_or(0.0, |r| {
            if !(0.0..=1.0).contains(r.get_ref()) {
                self.error(span_of(&r), "`error_rate` must be between 0 and 1");
            }
            r.into_inner()
        });
        let error_status = raw.error_status.map_or(defaults.error_status, |s| {
            self.check_server_status(&s);
            s.into_inner()
        });
        let outages = raw
            .outage
            .into_iter()
            .map(|o| {
                let span = span_of(&o);
                let o = o.into_inner();
                if o.until.0 <= o.from.0 {
                    self.error(span, "an outage's `until` must come after its `from`");
                }
                if o.status.span() != (0..0) {
                    self.check_server_status(&o.status);
                }
                Outage {
                    from: o.from.0,
                    until: o.until.0,
                    status: o.status.into_inner(),
                }
            })
            .collect();
        let notifications = raw
            .notifications
            .filter(|n| n.enabled)
            .map(|n| self.notifications(n));
        ApiBehaviour {
            notifications,
            processing: raw.processing.map_or(defaults.processing, |d| d.0),
            latency: raw.latency.map_or(defaults.latency, |d| d.0),
            rate_limit,
            outages,
            error_rate,
            error_status,
        }
    }

    fn check_server_status(&mut self, status: &Spanned<u16>) {
        if !(500..=599).contains(status.get_ref()) {
            self.error(
                span_of(status),
                format!("{} is not a server error (500..599)", status.get_ref()),
            );
        }
    }

    fn check_order(&mut self, from: Timestamp, until: &Spanned<Instant>) {
        if until.get_ref().0 <= from {
            self.error(span_of(until), "`until` must come after `from`");
        }
    }

    fn triggers(&mut self, raw: Vec<Spanned<RawTrigger>>) -> Vec<TriggerSpec> {
        raw.into_iter()
            .map(|t| {
                let t = t.into_inner();
                self.before_end(&t.at, "this trigger would never arrive");
                TriggerSpec {
                    at: t.at.into_inner().0,
                    schedule: self.schedule_ref(&t.schedule),
                    source: self.source(t.source),
                    delivery: t.delivery.map(Spanned::into_inner),
                    event: t.event,
                }
            })
            .collect()
    }

    fn schedule_ref(&mut self, name: &Spanned<String>) -> usize {
        match self.ids.get(name.get_ref()) {
            Some(&index) => index,
            None if !self.references_checked => 0,
            None => {
                let known: Vec<&str> = self.ids.keys().map(String::as_str).collect();
                let diagnostic = Diagnostic::new(
                    Code::BadScenario,
                    span_of(name),
                    format!("no schedule `{}` is declared", name.get_ref()),
                )
                .with_help(format!(
                    "declare it with [[schedule]], or use one of: {}",
                    known.join(", ")
                ));
                self.diagnostics.push(diagnostic);
                0
            }
        }
    }

    fn target(&mut self, name: &Spanned<String>) -> Target {
        if name.get_ref() == "*" {
            Target::All
        } else {
            Target::One(self.schedule_ref(name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::expect::{RawDecision, RawExpect};
    use serde::de::{self, DeserializeOwned, Visitor};
    use std::collections::BTreeSet;

    /// The field names a derived `Deserialize` asks for, caught from `deserialize_struct`.
    #[derive(Debug)]
    struct Fields(Vec<&'static str>);

    impl std::fmt::Display for Fields {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "fields {:?}", self.0)
        }
    }

    impl std::error::Error for Fields {}

    impl de::Error for Fields {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Fields(Vec::new())
        }
    }

    /// A deserializer that answers only with the names of the struct's fields.
    struct FieldNames;

    impl<'de> de::Deserializer<'de> for FieldNames {
        type Error = Fields;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
            Err(Fields(Vec::new()))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Fields> {
            Err(Fields(fields.to_vec()))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    fn fields_of<T: DeserializeOwned>() -> BTreeSet<&'static str> {
        match T::deserialize(FieldNames) {
            Err(Fields(fields)) => fields.into_iter().collect(),
            Ok(_) => BTreeSet::new(),
        }
    }

    /// The keys each `## ...` section of the reference lists in its table's first column.
    fn documented() -> BTreeMap<String, BTreeSet<String>> {
        let mut sections = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in include_str!("../../docs/scenarios.md").lines() {
            if let Some(heading) = line.strip_prefix("## ") {
                let name = heading.trim_matches('`').to_string();
                let is_table = name == "Top level" || name.starts_with('[');
                current = is_table.then_some(name);
                continue;
            }
            let (Some(section), Some(row)) = (&current, line.strip_prefix("| `")) else {
                continue;
            };
            if let Some((key, _)) = row.split_once("` |") {
                sections
                    .entry(section.clone())
                    .or_insert_with(BTreeSet::new)
                    .insert(key.to_string());
            }
        }
        sections
    }

    #[test]
    fn scenario_reference_lists_every_key() {
        let read: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::from([
            ("Top level", TOP_LEVEL_KEYS.iter().copied().collect()),
            ("[runner]", fields_of::<RawRunner>()),
            ("[api]", fields_of::<RawApi>()),
            ("[[api.outage]]", fields_of::<RawOutage>()),
            ("[api.notifications]", fields_of::<RawNotifications>()),
            ("[[api.notifications.drop]]", fields_of::<RawDrop>()),
            ("[[schedule]]", fields_of::<RawSchedule>()),
            ("[[business_unit]]", fields_of::<RawBusinessUnit>()),
            ("[[person]]", fields_of::<RawPerson>()),
            ("[[trigger]]", fields_of::<RawTrigger>()),
            ("[[burst]]", fields_of::<RawBurst>()),
            ("[[every]]", fields_of::<RawEvery>()),
            ("[[random]]", fields_of::<RawRandom>()),
            ("[[restart]]", fields_of::<RawRestart>()),
            ("[expect]", fields_of::<RawExpect>()),
            ("[[expect.decision]]", fields_of::<RawDecision>()),
        ]);
        let docs = documented();
        let doc_sections: BTreeSet<&str> = docs.keys().map(String::as_str).collect();
        let read_sections: BTreeSet<&str> = read.keys().copied().collect();
        assert_eq!(doc_sections, read_sections, "docs/scenarios.md's sections");
        for (section, keys) in &read {
            assert!(!keys.is_empty(), "{section}: no fields found");
            let written: BTreeSet<&str> = docs[*section].iter().map(String::as_str).collect();
            assert_eq!(&written, keys, "docs/scenarios.md, {section}");
        }
    }
}
