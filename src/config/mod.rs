//! `publish-guard.toml`: which API to drive and how, where the rules are, and the runner's
//! bounds. Credentials appear only as the names of environment variables holding them.
//!
//! A bad file is an error naming the file, the line and the key: toml's own errors carry
//! the line, unknown keys are rejected, and the checks serde cannot express point at the
//! key they concern.

pub mod relay;

use crate::language::span::LineCol;
use crate::runner::RunnerConfig;
use crate::runner::budget::BudgetConfig;
use jiff::SignedDuration;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Which API backend the runner drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Genesys Cloud's Platform API (the default).
    Genesys,
    /// A site's own REST gateway with a status read and a publish call.
    Rest,
}

/// The whole file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `genesys` or `rest`.
    pub backend: Spanned<Backend>,
    /// The rules file, relative to the configuration file.
    pub rules: PathBuf,
    /// The business unit whose schedules are published.
    pub business_unit: String,
    /// Settings of the Genesys backend.
    pub genesys: Option<Spanned<GenesysSection>>,
    /// Settings of the REST backend.
    pub rest: Option<Spanned<RestSection>>,
    /// Timeouts and the client-side rate limit.
    #[serde(default)]
    pub http: HttpSection,
    /// The runner's bounds.
    #[serde(default)]
    pub runner: RunnerSection,
    /// The relay service (`serve`).
    #[serde(default)]
    pub serve: relay::ServeSection,
    /// The relay's webhook senders.
    #[serde(default)]
    pub sources: Vec<relay::SourceSection>,
    /// The relay's store.
    #[serde(default)]
    pub store: relay::StoreSection,
}

/// `[genesys]`: a region, or explicit base URLs; the OAuth client by env-var names.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesysSection {
    /// A region name (`eu-west-2`, `euw2.pure.cloud`, `london`).
    pub region: Option<String>,
    /// The login base URL, instead of a region (a proxy, or a test double).
    pub login_url: Option<String>,
    /// The API base URL, instead of a region.
    pub api_url: Option<String>,
    /// The environment variable holding the OAuth client id.
    pub client_id_env: String,
    /// The environment variable holding the OAuth client secret.
    pub client_secret_env: String,
    /// Whether the relay hears the schedule topic of each business unit it serves on a
    /// notification channel (and decides from what it heard), or only polls.
    #[serde(default)]
    pub notifications: bool,
    /// With notifications: how long a state the channel kept may decide a trigger without a
    /// read, e.g. `"30m"`.
    #[serde(default = "default_notifications_max_age")]
    pub notifications_max_age: Spanned<SignedDuration>,
}

fn default_notifications_max_age() -> Spanned<SignedDuration> {
    Spanned::new(0..0, crate::api::notify::cache::DEFAULT_MAX_AGE)
}

/// `[rest]`: a gateway's base URL and paths (`{scheduleId}`, `{weekDate}` and
/// `{businessUnitId}` are filled in).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestSection {
    /// The gateway's base URL.
    pub base_url: String,
    /// The status read's path, answering `{"state": ...}`.
    #[serde(default = "default_status_path")]
    pub status_path: String,
    /// The publish call's path.
    #[serde(default = "default_publish_path")]
    pub publish_path: String,
    /// The week's list path (answering a JSON array of schedule ids), if the gateway has one.
    pub list_path: Option<String>,
    /// The environment variable holding a bearer token, if the gateway wants one.
    pub token_env: Option<String>,
}

fn default_status_path() -> String {
    "/schedules/{scheduleId}/status".into()
}

fn default_publish_path() -> String {
    "/schedules/{scheduleId}/publish".into()
}

/// `[http]`: per-call timeout and the client-side rate limit.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// The timeout of every HTTP call, e.g. `"10s"`.
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<SignedDuration>,
    /// Requests a minute this OAuth client may make (Genesys' default is 300).
    #[serde(default = "default_rate")]
    pub requests_per_minute: Spanned<u32>,
    /// The longest `Retry-After` a call waits out, e.g. `"3m"`: beyond it the call fails
    /// ("daily limit?") while every call is still held (Genesys' SDKs stop at 180 s).
    #[serde(default = "default_retry_after_cap")]
    pub retry_after_cap: Spanned<SignedDuration>,
}

fn default_timeout() -> Spanned<SignedDuration> {
    Spanned::new(0..0, SignedDuration::from_secs(10))
}

fn default_rate() -> Spanned<u32> {
    Spanned::new(0..0, 300)
}

fn default_retry_after_cap() -> Spanned<SignedDuration> {
    Spanned::new(0..0, crate::api::limiter::DEFAULT_RETRY_AFTER_CAP)
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            timeout: default_timeout(),
            requests_per_minute: default_rate(),
            retry_after_cap: default_retry_after_cap(),
        }
    }
}

/// `[runner]`: bounds that keep a policy from looping or storming.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerSection {
    /// Rechecks allowed in one publish cycle.
    #[serde(default = "default_max_rechecks")]
    pub max_rechecks: u32,
    /// How long a delivery id is remembered, e.g. `"24h"`.
    #[serde(default = "default_retention")]
    pub delivery_retention: Spanned<SignedDuration>,
    /// How long to follow an accepted publish until it shows published, e.g. `"15m"`.
    #[serde(default = "default_follow_timeout")]
    pub follow_timeout: Spanned<SignedDuration>,
    /// The retry budget shared by all schedules.
    #[serde(default)]
    pub retry_budget: BudgetConfig,
}

fn default_max_rechecks() -> u32 {
    3
}

fn default_retention() -> Spanned<SignedDuration> {
    Spanned::new(0..0, SignedDuration::from_hours(24))
}

fn default_follow_timeout() -> Spanned<SignedDuration> {
    Spanned::new(0..0, RunnerConfig::default().follow_timeout)
}

impl Default for RunnerSection {
    fn default() -> Self {
        RunnerSection {
            max_rechecks: default_max_rechecks(),
            delivery_retention: default_retention(),
            follow_timeout: default_follow_timeout(),
            retry_budget: BudgetConfig::default(),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema. The offending line is not
    /// quoted: it might hold a secret pasted where it does not belong.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// toml's message, which names the key.
        message: String,
    },
    /// A key's value does not make sense.
    #[error("{path}:{line}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line the key is on.
        line: usize,
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A `[[sources]]` table cannot be used.
    #[error("[[sources]] {name:?}: {message}")]
    Source {
        /// The source's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An environment variable the file names is not set.
    #[error("environment variable {var} (named by `{key}`) is not set")]
    MissingEnv {
        /// The dotted key that names it.
        key: &'static str,
        /// The variable's name.
        var: String,
    },
}

impl Config {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parse and check configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let at = LineCol::of(text, e.span().map_or(0, |s| s.start));
            ConfigError::Parse {
                path: path.to_owned(),
                line: at.line,
                column: at.column,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        let invalid =
            |span: std::ops::Range<usize>, key: &'static str, message: &str| ConfigError::Invalid {
                path: path.to_owned(),
                line: LineCol::of(text, span.start).line,
                key,
                message: message.to_owned(),
            };
        match (config.backend.get_ref(), &config.genesys, &config.rest) {
            (Backend::Genesys, None, _) => {
                let msg = "backend \"genesys\" needs a [genesys] table";
                return Err(invalid(config.backend.span(), "backend", msg));
            }
            (Backend::Genesys, Some(g), _) => {
                let s = g.get_ref();
                let where_ = (&s.region, &s.login_url, &s.api_url);
                let one_way = matches!(where_, (Some(_), None, None) | (None, Some(_), Some(_)));
                if !one_way {
                    let msg = "give either `region`, or both `login_url` and `api_url`";
                    return Err(invalid(g.span(), "genesys", msg));
                }
                let max_age = &s.notifications_max_age;
                if *max_age.get_ref() <= SignedDuration::ZERO {
                    let key = "genesys.notifications_max_age";
                    return Err(invalid(max_age.span(), key, "must be positive"));
                }
            }
            (Backend::Rest, _, None) => {
                let msg = "backend \"rest\" needs a [rest] table";
                return Err(invalid(config.backend.span(), "backend", msg));
            }
            (Backend::Rest, _, Some(_)) => {}
        }
        let timeout = &config.http.timeout;
        if *timeout.get_ref() <= SignedDuration::ZERO {
            return Err(invalid(timeout.span(), "http.timeout", "must be positive"));
        }
        let rate = &config.http.requests_per_minute;
        if *rate.get_ref() == 0 {
            let msg = "must be at least 1";
            return Err(invalid(rate.span(), "http.requests_per_minute", msg));
        }
        let cap = &config.http.retry_after_cap;
        if *cap.get_ref() <= SignedDuration::ZERO {
            let msg = "must be positive";
            return Err(invalid(cap.span(), "http.retry_after_cap", msg));
        }
        let retention = &config.runner.delivery_retention;
        if *retention.get_ref() < SignedDuration::ZERO {
            let msg = "must not be negative";
            return Err(invalid(retention.span(), "runner.delivery_retention", msg));
        }
        let follow = &config.runner.follow_timeout;
        if *follow.get_ref() <= SignedDuration::ZERO {
            return Err(invalid(
                follow.span(),
                "runner.follow_timeout",
                "must be positive",
            ));
        }
        Ok(config)
    }

    /// The runner's settings.
    pub fn runner_config(&self, dry_run: bool) -> RunnerConfig {
        RunnerConfig {
            max_rechecks: self.runner.max_rechecks,
            delivery_retention: *self.runner.delivery_retention.get_ref(),
            follow_timeout: *self.runner.follow_timeout.get_ref(),
            budget: self.runner.retry_budget,
            dry_run,
        }
    }

    /// With `[genesys] notifications = true` (and the Genesys backend): how long a state
    /// the channel kept may decide a trigger; `None` when the runner only polls.
    pub fn notifications_max_age(&self) -> Option<SignedDuration> {
        let genesys = self.genesys.as_ref()?.get_ref();
        let on = *self.backend.get_ref() == Backend::Genesys && genesys.notifications;
        on.then(|| *genesys.notifications_max_age.get_ref())
    }

    /// The rules file, resolved against the directory of the configuration file.
    pub fn rules_path(&self, config_path: &Path) -> PathBuf {
        match config_path.parent() {
            Some(dir) if self.rules.is_relative() => dir.join(&self.rules),
            _ => self.rules.clone(),
        }
    }
}

/// The value of the environment variable `var`, which the key `key` names.
pub fn env_value(key: &'static str, var: &str) -> Result<String, ConfigError> {
    std::env::var(var).map_err(|_| ConfigError::MissingEnv {
        key,
        var: var.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("publish-guard.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_shipped_example_loads() {
        let text = include_str!("../../examples/publish-guard.toml");
        let config = parse(text);
        assert!(config.is_ok(), "{config:?}");
        if let Ok(c) = config {
            assert_eq!(*c.backend.get_ref(), Backend::Genesys);
            assert_eq!(c.runner_config(false).max_rechecks, 3);
            let follow = c.runner_config(false).follow_timeout;
            assert_eq!(follow, SignedDuration::from_mins(15));
            assert_eq!(*c.http.timeout.get_ref(), SignedDuration::from_secs(10));
            let cap = *c.http.retry_after_cap.get_ref();
            assert_eq!(cap, crate::api::limiter::DEFAULT_RETRY_AFTER_CAP);
        }
    }

    #[test]
    fn the_retry_after_cap_defaults_to_180_s_and_must_be_positive() {
        let head = "backend = \"genesys\"\nrules = \"p.rules\"\nbusiness_unit = \"bu\"\n\
                    [genesys]\nregion = \"london\"\nclient_id_env = \"ID\"\nclient_secret_env = \"SECRET\"\n";
        let cap = |text: &str| parse(text).map(|c| *c.http.retry_after_cap.get_ref());
        assert_eq!(cap(head), Ok(SignedDuration::from_secs(180)));
        let longer = format!("{head}[http]\nretry_after_cap = \"10m\"\n");
        assert_eq!(cap(&longer), Ok(SignedDuration::from_mins(10)));
        let zero = format!("{head}[http]\nretry_after_cap = \"0s\"\n");
        assert_eq!(
            cap(&zero),
            Err("publish-guard.toml:9: `http.retry_after_cap`: must be positive".to_owned())
        );
    }

    #[test]
    fn the_shipped_relay_example_loads_with_its_sources() {
        let config = parse(include_str!("../../examples/relay.toml"));
        assert!(config.is_ok(), "{config:?}");
        if let Ok(c) = config {
            assert_eq!(c.serve.listen.port(), 8080);
            let names: Vec<&str> = c.sources.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["servicenow", "manual"]);
            assert_eq!(c.sources[0].schedule, "latest");
            assert_eq!(c.sources[1].delivery_id.as_deref(), Some("/id"));
            let max_age = c.notifications_max_age();
            assert_eq!(max_age, Some(SignedDuration::from_mins(30)));
        }
    }

    #[test]
    fn bad_configs_name_the_line_and_the_key() {
        let head = "backend = \"genesys\"\nrules = \"p.rules\"\nbusiness_unit = \"bu\"\n";
        let genesys = "[genesys]\nregion = \"london\"\nclient_id_env = \"ID\"\nclient_secret_env = \"SECRET\"\n";
        let cases = [
            format!("{head}{genesys}[http]\ntimeout = \"0s\"\n"),
            format!("{head}{genesys}[http]\nrequests_per_minute = 0\n"),
            format!("{head}{genesys}[runner]\nmax_rechecks = 3\nretries = 9\n"),
            format!("{head}{genesys}[http]\ntimeout = \"soon\"\n"),
            format!("{head}[genesys]\nclient_id_env = \"ID\"\nclient_secret_env = \"S\"\n"),
            head.to_owned(),
            "backend = \"soap\"\n".to_owned(),
            format!("{head}{genesys}client_secret = \"hunter2\"\n"),
            format!("{head}{genesys}[runner]\nfollow_timeout = \"0s\"\n"),
            format!("{head}{genesys}notifications = true\nnotifications_max_age = \"0s\"\n"),
        ];
        let errors: Vec<String> = cases
            .iter()
            .map(|c| parse(c).err().unwrap_or_else(|| "no error".into()))
            .collect();
        insta::assert_snapshot!(errors.join("\n---\n"));
    }

    #[test]
    fn notifications_are_off_unless_asked_for() {
        let head = "backend = \"genesys\"\nrules = \"p.rules\"\nbusiness_unit = \"bu\"\n\
                    [genesys]\nregion = \"london\"\nclient_id_env = \"ID\"\nclient_secret_env = \"S\"\n";
        let max_age = |extra: &str| {
            parse(&format!("{head}{extra}"))
                .map(|c| c.notifications_max_age())
                .map_err(|e| e.to_string())
        };
        assert_eq!(max_age(""), Ok(None));
        assert_eq!(max_age("notifications = false\n"), Ok(None));
        let on = max_age("notifications = true\nnotifications_max_age = \"5m\"\n");
        assert_eq!(on, Ok(Some(SignedDuration::from_mins(5))));
    }

    #[test]
    fn durations_read_in_friendly_form_and_rules_resolve_next_to_the_file() {
        let text = "backend = \"rest\"\nrules = \"p.rules\"\nbusiness_unit = \"bu\"\n\
                    [rest]\nbase_url = \"http://127.0.0.1:9\"\n\
                    [runner]\ndelivery_retention = \"2h 30m\"\nfollow_timeout = \"1h 30m\"\n";
        let config = parse(text);
        assert!(config.is_ok(), "{config:?}");
        if let Ok(c) = config {
            let retention = c.runner_config(true).delivery_retention;
            assert_eq!(retention, SignedDuration::from_mins(150));
            let follow = c.runner_config(true).follow_timeout;
            assert_eq!(follow, SignedDuration::from_mins(90));
            let rules = c.rules_path(Path::new("/etc/pg/publish-guard.toml"));
            assert_eq!(rules, PathBuf::from("/etc/pg/p.rules"));
        }
    }
}
