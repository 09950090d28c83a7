//! The relay's part of `publish-guard.toml`: `[serve]` (where to listen, where the store and
//! the audit log live, the admin token) and one `[[sources]]` table per webhook sender (how it
//! authenticates, how its JSON maps to a trigger), and `[store]` (SQLite or PostgreSQL). Secrets appear only as env-var names.

use super::{ConfigError, env_value};
use crate::relay::connections::ConnectionLimits;
use crate::relay::intake::{DEFAULT_BODY_LIMIT, Source, SourceAuth};
use crate::relay::mapping::{Field, Mapping};
use crate::relay::webhook_auth::{BearerVerifier, SignatureVerifier, WebhookSecret};
use jiff::SignedDuration;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[serve]`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// The address to listen on, e.g. `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The SQLite store, relative to the configuration file.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// The audit log (JSON Lines), relative to the configuration file.
    #[serde(default = "default_audit_log")]
    pub audit_log: PathBuf,
    /// The environment variable holding the bearer token of `POST /admin/reload`; without
    /// it the admin routes are off.
    pub admin_token_env: Option<String>,
    /// The largest webhook body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// How long a request's headers may take to arrive, e.g. `"10s"` (on a kept-alive
    /// connection, counted from the end of the previous answer).
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "positive_duration"
    )]
    pub header_read_timeout: Duration,
    /// A connection on which nothing moves for this long is closed, e.g. `"60s"`.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "positive_duration"
    )]
    pub idle_timeout: Duration,
    /// The most connections open at once; more wait to be accepted until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: NonZeroUsize,
}

fn default_header_read_timeout() -> Duration {
    ConnectionLimits::default().header_read_timeout
}

fn default_idle_timeout() -> Duration {
    ConnectionLimits::default().idle_timeout
}

fn default_max_connections() -> NonZeroUsize {
    NonZeroUsize::new(ConnectionLimits::default().max_connections).unwrap_or(NonZeroUsize::MIN)
}

/// A duration written as jiff reads one (`"10s"`, `"1m"`), more than zero.
fn positive_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let given: SignedDuration = serde::Deserialize::deserialize(d)?;
    Duration::try_from(given)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| serde::de::Error::custom(format!("{given:#} is not a positive duration")))
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_store() -> PathBuf {
    "publish-guard.db".into()
}

fn default_audit_log() -> PathBuf {
    "audit.jsonl".into()
}

fn default_body_limit() -> usize {
    DEFAULT_BODY_LIMIT
}

impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            listen: default_listen(),
            store: default_store(),
            audit_log: default_audit_log(),
            admin_token_env: None,
            body_limit: default_body_limit(),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

impl ServeSection {
    /// The connection timeouts and cap.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections.get(),
        }
    }

    /// `path` resolved against the directory of the configuration file.
    pub fn resolve(path: &Path, config_path: &Path) -> PathBuf {
        match config_path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }
}

/// `[store]`: where accepted webhooks and the audit log are kept.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite` (one process; the file `[serve] store`, the log `[serve] audit_log`) or
    /// `postgres` (several replicas sharing one database, the audit log in it too).
    #[serde(default)]
    pub kind: StoreKind,
    /// With `postgres`: the environment variable holding the connection string.
    pub url_env: Option<String>,
    /// With `postgres`: this replica's name, as `/readyz` and the metrics show it (default:
    /// the host name and the process id).
    pub replica: Option<String>,
}

/// Which store the relay uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One SQLite file, for one process.
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by replicas.
    Postgres,
}

/// One `[[sources]]` table. Each mapped field is a JSON pointer when it starts with `/`, else
/// a fixed value; the defaults fit a ServiceNow business rule that knows nothing of schedules.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// The name in `POST /webhooks/{name}`; also the trigger's source in the policy.
    pub name: String,
    /// Standard Webhooks secrets (`whsec_...`), by env-var names; several allow rotation.
    #[serde(default)]
    pub secrets_env: Vec<String>,
    /// How far a `webhook-timestamp` may be from now, e.g. `"5m"`.
    pub tolerance: Option<SignedDuration>,
    /// A bearer token, by env-var name, for senders that cannot sign.
    pub token_env: Option<String>,
    /// The business unit (default: the file's `business_unit`).
    pub business_unit: Option<String>,
    /// The week: a pointer to a date (the business unit's start day), or `current` (the
    /// week containing now, by the business unit's start day and time zone).
    #[serde(default = "default_week")]
    pub week: String,
    /// The schedule id: a pointer, a fixed id, `latest` (the newest schedule starting that
    /// week) or `published` (the week's published one).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// The event name.
    #[serde(default = "default_event")]
    pub event: String,
    /// A pointer to the delivery id, for senders that do not sign.
    pub delivery_id: Option<String>,
}

fn default_week() -> String {
    "current".into()
}

fn default_schedule() -> String {
    "latest".into()
}

fn default_event() -> String {
    "/event".into()
}

impl SourceSection {
    /// The intake's view of this source, its secrets read from the environment.
    pub fn build(&self, default_business_unit: &str) -> Result<Source, ConfigError> {
        let invalid = |message: String| ConfigError::Source {
            name: self.name.clone(),
            message,
        };
        let auth = match (&self.token_env, self.secrets_env.is_empty()) {
            (None, false) => {
                let mut secrets = Vec::new();
                for var in &self.secrets_env {
                    let text = env_value("sources.secrets_env", var)?;
                    let secret = text
                        .parse::<WebhookSecret>()
                        .map_err(|e| invalid(format!("{var}: {e}")))?;
                    secrets.push(secret);
                }
                let verifier = SignatureVerifier::new(secrets);
                SourceAuth::Signed(match self.tolerance {
                    Some(t) => verifier.with_tolerance(t),
                    None => verifier,
                })
            }
            (Some(var), true) => {
                let token = env_value("sources.token_env", var)?;
                SourceAuth::Bearer(BearerVerifier::new(vec![token]))
            }
            _ => {
                let msg = "give either `secrets_env` or `token_env`".to_owned();
                return Err(invalid(msg));
            }
        };
        let business_unit = self
            .business_unit
            .as_deref()
            .unwrap_or(default_business_unit);
        Ok(Source {
            auth,
            mapping: Mapping {
                business_unit: Field::from_setting(business_unit),
                week: Field::from_setting(&self.week),
                schedule_id: Field::from_setting(&self.schedule),
                event: Field::from_setting(&self.event),
                delivery_id: self.delivery_id.clone(),
            },
        })
    }
}

/// Every configured source by name.
pub fn build_sources(
    sections: &[SourceSection],
    default_business_unit: &str,
) -> Result<HashMap<String, Source>, ConfigError> {
    sections
        .iter()
        .map(|s| Ok((s.name.clone(), s.build(default_business_unit)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_keys_read_in_friendly_form_and_refuse_nothing_or_less() {
        let serve: ServeSection =
            toml::from_str("header_read_timeout = \"2s\"\nmax_connections = 8").unwrap();
        let limits = serve.connection_limits();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(
            limits.idle_timeout,
            ConnectionLimits::default().idle_timeout
        );
        assert_eq!(limits.max_connections, 8);
        for bad in [
            "idle_timeout = \"0s\"",
            "header_read_timeout = \"-5s\"",
            "max_connections = 0",
        ] {
            let refused = toml::from_str::<ServeSection>(bad).unwrap_err();
            assert!(
                refused.to_string().contains("positive") || refused.to_string().contains("zero"),
                "{bad}: {refused}"
            );
        }
    }
}
