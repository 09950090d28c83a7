//! The scenario file: what happens (schedules, triggers, a person's edits), how the API
//! behaves, which rules decide, and what the run should show. Loaded from TOML into a
//! validated [`Scenario`], or into diagnostics that point at the offending line.

use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::span::Span;
use crate::sim::expect::Expectations;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

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

/// Read and validate the scenario at `path`; the rules path is resolved against its folder.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, &stem, dir).map_err(|diagnostics| LoadError::Invalid {
        path: path.to_owned(),
        source_text: text,
        diagnostics,
    })
}

/// Parse and validate scenario text. `default_name` names it when it has no `name`;
/// `dir` is where a relative `rules` path starts.
pub fn parse(text: &str, default_name: &str, dir: &Path) -> Result<Scenario, Vec<Diagnostic>> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| vec![toml_diagnostic(&e, text)])?;
    Validator::default().scenario(raw, default_name, dir)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    rules: String,
    start: Instant,
    end: Option<Spanned<Instant>>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    runner: RawRunner,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    schedule: Vec<Spanned<RawSchedule>>,
    #[serde(default)]
    person: Vec<Spanned<RawPerson>>,
    #[serde(default)]
    trigger: Vec<Spanned<RawTrigger>>,
    #[serde(default)]
    burst: Vec<Spanned<RawBurst>>,
    #[serde(default)]
    every: Vec<Spanned<RawEvery>>,
    #[serde(default)]
    random: Vec<Spanned<RawRandom>>,
    #[serde(default)]
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
}

fn default_version() -> i64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    at: Instant,
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
    at: Instant,
    schedule: Spanned<String>,
    source: String,
    delivery: Option<Spanned<String>>,
    event: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurst {
    schedule: Spanned<String>,
    source: String,
    event: Option<String>,
    at: Instant,
    count: Spanned<u32>,
    within: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvery {
    schedule: Spanned<String>,
    source: String,
    event: Option<String>,
    interval: Spanned<Duration>,
    from: Option<Instant>,
    until: Spanned<Instant>,
    between: Option<Spanned<(Clock, Clock)>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRandom {
    schedule: Spanned<String>,
    source: String,
    event: Option<String>,
    per_minute: Spanned<f64>,
    from: Option<Instant>,
    until: Spanned<Instant>,
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
    ) -> Result<Scenario, Vec<Diagnostic>> {
        let schedules = self.schedules(raw.schedule);
        let api = self.api(raw.api);
        let start = raw.start.0;
        let end = raw.end.map(|end| {
            if end.get_ref().0 <= start {
                self.error(span_of(&end), "`end` must come after `start`");
            }
            end.into_inner().0
        });
        let people = raw
            .person
            .into_iter()
            .map(|p| {
                let p = p.into_inner();
                PersonAction {
                    at: p.at.0,
                    schedule: self.schedule_ref(&p.schedule),
                    kind: p.action,
                    who: p.who,
                }
            })
            .collect();
        let triggers = self.triggers(raw.trigger);
        let mut generators = Vec::new();
        for burst in raw.burst {
            let burst = burst.into_inner();
            if *burst.count.get_ref() == 0 {
                self.error(span_of(&burst.count), "a burst needs at least one trigger");
            }
            let target = self.target(&burst.schedule);
            generators.push(Generator {
                target,
                source: burst.source,
                event: burst.event,
                kind: GeneratorKind::Burst {
                    at: burst.at.0,
                    count: burst.count.into_inner(),
                    within: burst.within.0,
                },
            });
        }
        for every in raw.every {
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
            let from = every.from.map_or(start, |f| f.0);
            self.check_order(from, &every.until);
            generators.push(Generator {
                target: self.target(&every.schedule),
                source: every.source,
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
        for random in raw.random {
            let random = random.into_inner();
            let rate = *random.per_minute.get_ref();
            if !(rate.is_finite() && rate > 0.0) {
                self.error(
                    span_of(&random.per_minute),
                    "`per_minute` must be a number above zero",
                );
            }
            let from = random.from.map_or(start, |f| f.0);
            self.check_order(from, &random.until);
            generators.push(Generator {
                target: self.target(&random.schedule),
                source: random.source,
                event: random.event,
                kind: GeneratorKind::Random {
                    per_minute: rate,
                    from,
                    until: random.until.into_inner().0,
                },
            });
        }
        let deliveries: Vec<&str> = triggers
            .iter()
            .filter_map(|t| t.delivery.as_deref())
            .collect();
        let expect = crate::sim::expect::validate(raw.expect, &deliveries, &mut self.diagnostics);
        if !self.diagnostics.is_empty() {
            return Err(self.diagnostics);
        }
        Ok(Scenario {
            name: raw.name.unwrap_or_else(|| default_name.to_string()),
            description: raw.description,
            rules: normalize(&dir.join(raw.rules)),
            start,
            end,
            seed: raw.seed,
            schedules,
            api,
            runner: RunnerOptions {
                coalesce: raw.runner.coalesce.unwrap_or(true),
                requests_per_minute: raw
                    .runner
                    .requests_per_minute
                    .unwrap_or(crate::api::limiter::DEFAULT_REQUESTS_PER_MINUTE),
            },
            people,
            triggers,
            generators,
            expect,
        })
    }

    fn schedules(&mut self, raw: Vec<Spanned<RawSchedule>>) -> Vec<ScheduleSpec> {
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
            out.push(ScheduleSpec {
                id,
                business_unit: schedule.bu,
                week: schedule.week.0,
                published: schedule.published,
                version: schedule.version,
            });
        }
        out
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
        ApiBehaviour {
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
                TriggerSpec {
                    at: t.at.0,
                    schedule: self.schedule_ref(&t.schedule),
                    source: t.source,
                    delivery: t.delivery.map(Spanned::into_inner),
                    event: t.event,
                }
            })
            .collect()
    }

    fn schedule_ref(&mut self, name: &Spanned<String>) -> usize {
        match self.ids.get(name.get_ref()) {
            Some(&index) => index,
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
