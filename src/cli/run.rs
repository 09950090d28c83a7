//! `publish-guard run`: one publish cycle for one schedule, live, printing each step as it
//! happens. `--dry-run` reads the state and shows the decision without writing.

use crate::api::genesys::{GenesysClient, GenesysConfig};
use crate::api::limiter::{RateLimiter, SharedLimiter};
use crate::api::region::Endpoints;
use crate::api::rest::{RestClient, RestConfig};
use crate::api::secret::Secret;
use crate::api::{ScheduleApi, ScheduleRef};
use crate::cli::{CliError, Outcome, read_text};
use crate::config::{Backend, Config, GenesysSection, env_value};
use crate::effects::clock::SystemClock;
use crate::effects::random::SeededRandom;
use crate::language::diagnostic::render_all;
use crate::policy::Policy;
use crate::runner::driver::Driver;
use crate::runner::event::{Event, EventKind, EventSink, PrintSink};
use crate::runner::{RunnerConfig, Trigger};
use jiff::Timestamp;
use jiff::civil::Date;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file (see examples/publish-guard.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// The schedule's id.
    #[arg(long)]
    pub schedule: String,
    /// The first day of the schedule's week, YYYY-MM-DD.
    #[arg(long)]
    pub week: Date,
    /// The trigger's source: one of the policy's `sources`.
    #[arg(long, default_value = "manual")]
    pub source: String,
    /// Read the state and show the decision; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Prints each event as it happens and remembers whether a cycle failed.
#[derive(Debug, Default)]
struct RunSink {
    print: PrintSink,
    failed: AtomicBool,
}

impl EventSink for RunSink {
    fn record(&self, event: Event) {
        if let EventKind::Outcome { outcome, .. } = &event.kind
            && outcome.is_failure()
        {
            self.failed.store(true, Ordering::Relaxed);
        }
        self.print.record(event);
    }
}

/// Run one cycle: exit 0 when it ends well, 1 when the policy (or its check) fails.
pub fn run(args: &RunArgs) -> Result<Outcome, CliError> {
    let config = Config::load(&args.config).map_err(|e| CliError::Usage(e.to_string()))?;
    let rules_path = config.rules_path(&args.config);
    let source = read_text(&rules_path)?;
    let file = rules_path.display().to_string();
    let policy = match crate::compile(&source) {
        Ok(checked) => {
            if !checked.warnings.is_empty() {
                eprint!("{}", render_all(&checked.warnings, &file, &source));
            }
            checked.policy
        }
        Err(e) => {
            eprint!("{}", e.in_file(file));
            return Ok(Outcome::Failed);
        }
    };
    if !policy.sources.contains(&args.source) {
        return Err(CliError::Usage(format!(
            "--source {}: the policy declares the sources {}",
            args.source,
            policy.sources.join(", ")
        )));
    }
    let schedule = ScheduleRef {
        business_unit: config.business_unit.clone(),
        week: args.week,
        schedule_id: args.schedule.clone(),
    };
    let trigger = Trigger {
        delivery_id: None,
        source: args.source.clone(),
        event: Some("run".into()),
        received_at: Timestamp::now(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: args.config.clone(),
            source,
        })?;
    let sink = RunSink::default();
    let runner = config.runner_config(args.dry_run);
    let held = runtime.block_on(async {
        match config.backend.get_ref() {
            Backend::Genesys => {
                let client = genesys_client(&config)?;
                if let Some(held) = client.limiter().held_beyond_cap(Timestamp::now()) {
                    return Ok(Some(held));
                }
                check_week(&client, &schedule).await?;
                drive(&client, &policy, runner, &sink, schedule, trigger).await;
                Ok(None)
            }
            Backend::Rest => {
                let client = rest_client(&config)?;
                if let Some(held) = client.limiter().held_beyond_cap(Timestamp::now()) {
                    return Ok(Some(held));
                }
                check_week(&client, &schedule).await?;
                drive(&client, &policy, runner, &sink, schedule, trigger).await;
                Ok(None)
            }
        }
    })?;
    if let Some(held) = held {
        eprintln!(
            "error: the API asked this client to wait {held:#} more (a 429's Retry-After, \
             beyond http.retry_after_cap: a daily limit?); nothing was called"
        );
        return Ok(Outcome::Failed);
    }
    Ok(if sink.failed.load(Ordering::Relaxed) {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// The Genesys client the configuration describes, its credentials read from the
/// environment variables it names.
pub(crate) fn genesys_client(config: &Config) -> Result<GenesysClient, CliError> {
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let Some(section) = config.genesys.as_ref().map(|g| g.get_ref()) else {
        return Err(CliError::Usage("no [genesys] table".into()));
    };
    let endpoints = endpoints(section).map_err(|e| usage(&e))?;
    let id = env_value("genesys.client_id_env", &section.client_id_env).map_err(|e| usage(&e))?;
    let secret = env_value("genesys.client_secret_env", &section.client_secret_env)
        .map_err(|e| usage(&e))?;
    let key = format!("{}\n{id}", endpoints.api);
    let mut genesys = GenesysConfig::new(endpoints, id, Secret::new(secret));
    genesys.timeout = timeout(config)?;
    genesys.requests_per_minute = *config.http.requests_per_minute.get_ref();
    genesys.retry_after_cap = *config.http.retry_after_cap.get_ref();
    let client = GenesysClient::new(genesys, Arc::new(SystemClock)).map_err(|e| usage(&e))?;
    Ok(match shared_limiter(config, &key) {
        Some(limiter) => client.with_limiter(limiter),
        None => client,
    })
}

/// The REST gateway client the configuration describes.
pub(crate) fn rest_client(config: &Config) -> Result<RestClient, CliError> {
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let Some(section) = config.rest.as_ref().map(|r| r.get_ref()) else {
        return Err(CliError::Usage("no [rest] table".into()));
    };
    let mut rest = RestConfig::new(section.base_url.clone());
    rest.status_path = section.status_path.clone();
    rest.publish_path = section.publish_path.clone();
    rest.list_path = section.list_path.clone();
    if let Some(var) = &section.token_env {
        let token = env_value("rest.token_env", var).map_err(|e| usage(&e))?;
        rest.bearer_token = Some(Secret::new(token));
    }
    rest.timeout = timeout(config)?;
    rest.requests_per_minute = *config.http.requests_per_minute.get_ref();
    rest.retry_after_cap = *config.http.retry_after_cap.get_ref();
    let key = section.base_url.clone();
    let client = RestClient::new(rest, Arc::new(SystemClock)).map_err(|e| usage(&e))?;
    Ok(match shared_limiter(config, &key) {
        Some(limiter) => client.with_limiter(limiter),
        None => client,
    })
}

/// The limiter every `run` of one OAuth client (or gateway, `key`) shares through a file,
/// so that runs started together (a script publishing twelve schedules at once) keep to
/// one budget and all hold on a 429 one of them met. Unusable, this run paces alone and
/// says so.
fn shared_limiter(config: &Config, key: &str) -> Option<SharedLimiter> {
    let limiter = RateLimiter::per_minute(*config.http.requests_per_minute.get_ref())
        .with_retry_after_cap(*config.http.retry_after_cap.get_ref());
    let path = limiter_path(key);
    match SharedLimiter::in_file(limiter, &path) {
        Ok(shared) => Some(shared.impatient()),
        Err(e) => {
            eprintln!("warning: {e}: this run paces its calls alone");
            None
        }
    }
}

/// `$XDG_RUNTIME_DIR/publish-guard/limit-HASH.json` (else in the temporary directory),
/// named by a hash of `key`: never the client id itself.
fn limiter_path(key: &str) -> PathBuf {
    let digest = Sha256::digest(key.as_bytes());
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join("publish-guard")
        .join(format!("limit-{}.json", hex::encode(&digest[..8])))
}

/// `[http] timeout` as the clients take it.
fn timeout(config: &Config) -> Result<std::time::Duration, CliError> {
    std::time::Duration::try_from(*config.http.timeout.get_ref())
        .map_err(|e| CliError::Usage(format!("http.timeout: {e}")))
}

fn endpoints(section: &GenesysSection) -> Result<Endpoints, String> {
    match (&section.region, &section.login_url, &section.api_url) {
        (Some(region), _, _) => Endpoints::for_region(region).map_err(|e| e.to_string()),
        (None, Some(login), Some(api)) => Ok(Endpoints::explicit(login, api)),
        _ => Err("[genesys] needs `region`, or `login_url` and `api_url`".into()),
    }
}

/// `--week` must be the business unit's start day. When the settings cannot be read, the
/// schedule read that follows reports why.
async fn check_week<A: ScheduleApi>(api: &A, schedule: &ScheduleRef) -> Result<(), CliError> {
    let Ok(answer) = api.week_settings(&schedule.business_unit).await else {
        return Ok(());
    };
    match answer.body {
        Some(settings) => settings
            .check(schedule.week)
            .map(|_| ())
            .map_err(|e| CliError::Usage(format!("--week {}: {e}", schedule.week))),
        None => Ok(()),
    }
}

async fn drive<A: ScheduleApi>(
    api: &A,
    policy: &Policy,
    config: RunnerConfig,
    sink: &RunSink,
    schedule: ScheduleRef,
    trigger: Trigger,
) {
    let random = SeededRandom::from_entropy();
    let mut driver = Driver::new(api, &SystemClock, sink, random, config);
    driver.run_triggers(policy, vec![(schedule, trigger)]).await;
}
