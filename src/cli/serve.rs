//! `publish-guard serve --config FILE`: the relay service, until SIGTERM or ctrl-c; SIGHUP
//! reloads the rules.

use crate::api::notify::health::HealthConfig;
use crate::audit::log::{AuditLog, AuditOptions};
use crate::audit::writer::AuditWriter;
use crate::cli::run::{genesys_client, rest_client};
use crate::cli::serve_loop::run_until_stopped;
use crate::cli::{CliError, Outcome};
use crate::config::relay::{ServeSection, StoreKind, build_sources};
use crate::config::{Backend, Config, env_value};
use crate::effects::clock::SystemClock;
use crate::relay::hearing::NotifySettings;
use crate::relay::history::check_history;
use crate::relay::leader::Leadership;
use crate::relay::rules::Rules;
use crate::relay::server::{Relay, RelaySettings};
use crate::relay::sqlite_store::SqliteStore;
use crate::relay::store::TriggerStore;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (see examples/relay.toml); without one, `--demo` is needed.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Serve against an in-process model of the Genesys API and print how to send webhooks.
    #[arg(long, conflicts_with = "config")]
    pub demo: bool,
    /// With `--demo`: where to listen.
    #[arg(long, default_value = "127.0.0.1:8080", requires = "demo")]
    pub listen: std::net::SocketAddr,
    /// With `--demo`: where to keep the store, the audit log and the rules.
    #[arg(long, default_value = "publish-guard-demo", requires = "demo")]
    pub demo_dir: PathBuf,
    /// Log lines as JSON objects instead of readable text.
    #[arg(long)]
    pub log_json: bool,
}

/// Serve until told to stop.
pub fn serve(args: &ServeArgs) -> Result<Outcome, CliError> {
    if args.config.is_none() && !args.demo {
        return Err(CliError::Usage(
            "serve needs --config FILE (see examples/relay.toml), or --demo to try the relay \
             against an in-process model of the Genesys API, no org needed"
                .into(),
        ));
    }
    init_logs(args.log_json);
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(&e))?;
    let Some(config_path) = &args.config else {
        return runtime.block_on(crate::cli::serve_demo::demo(args.listen, &args.demo_dir));
    };
    let config = Config::load(config_path).map_err(|e| usage(&e))?;
    let listen = config.serve.listen;
    runtime.block_on(async {
        let settings = settings(&config, config_path).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| usage(&format!("listen on {listen}: {e}")))?;
        match config.backend.get_ref() {
            Backend::Genesys => {
                let client = genesys_client(&config)?;
                run_until_stopped(Relay::start_hearing(settings, move || client, listener)).await
            }
            Backend::Rest => {
                let client = rest_client(&config)?;
                run_until_stopped(Relay::start(settings, move || client, listener)).await
            }
        }
    })
}

/// The relay's settings from the configuration: sources, store, audit log, rules. Refused
/// while another relay has the store or the audit log, when the audit log's chain does not
/// verify, or when the store lost triggers the audit log saw arrive.
pub(crate) async fn settings(
    config: &Config,
    config_path: &std::path::Path,
) -> Result<RelaySettings, CliError> {
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let serve = &config.serve;
    let sources = build_sources(&config.sources, &config.business_unit).map_err(|e| usage(&e))?;
    if sources.is_empty() {
        return Err(CliError::Usage(
            "serve needs at least one [[sources]] table".into(),
        ));
    }
    let (store, leadership) = store(config, config_path).await?;
    let rules = Rules::load(&config.rules_path(config_path)).map_err(|e| usage(&e))?;
    let admin_token = match &serve.admin_token_env {
        Some(var) => Some(env_value("serve.admin_token_env", var).map_err(|e| usage(&e))?),
        None => None,
    };
    Ok(RelaySettings {
        sources,
        store,
        leadership,
        rules: Arc::new(rules),
        admin_token,
        runner: config.runner_config(false),
        body_limit: serve.body_limit,
        connections: serve.connection_limits(),
        clock: Arc::new(SystemClock),
        notifications: config
            .notifications_max_age()
            .map(|max_age| NotifySettings {
                business_units: served_units(config),
                max_age,
                health: HealthConfig::default(),
            }),
    })
}

/// The business units the relay serves, as far as the configuration names them: the file's
/// and each source's fixed one (a unit a source reads from its payload is never cached,
/// since none of its changes are heard).
fn served_units(config: &Config) -> Vec<String> {
    let fixed = config
        .sources
        .iter()
        .filter_map(|s| s.business_unit.as_deref())
        .filter(|bu| !bu.starts_with('/'));
    let mut units: Vec<String> = std::iter::once(config.business_unit.as_str())
        .chain(fixed)
        .map(str::to_owned)
        .collect();
    units.sort();
    units.dedup();
    units
}

/// The store and how this process comes to lead, as `[store]` says.
async fn store(
    config: &Config,
    config_path: &std::path::Path,
) -> Result<(Arc<dyn TriggerStore>, Leadership), CliError> {
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    let serve = &config.serve;
    match config.store.kind {
        StoreKind::Sqlite => {
            let store_path = ServeSection::resolve(&serve.store, config_path);
            let store = SqliteStore::open(&store_path).map_err(|e| usage(&e))?;
            let audit_path = ServeSection::resolve(&serve.audit_log, config_path);
            let log = AuditLog::open_verified(&audit_path, AuditOptions::default())
                .map_err(|e| usage(&e))?;
            check_history(&store, store_path, &log, audit_path)
                .await
                .map_err(|e| usage(&e))?;
            let audit = AuditWriter::start(log).map_err(|e| usage(&e))?;
            Ok((Arc::new(store), Leadership::Sole(Arc::new(audit))))
        }
        #[cfg(feature = "postgres")]
        StoreKind::Postgres => {
            use crate::relay::leader::elected::Election;
            use crate::relay::postgres_store::PostgresStore;
            let Some(var) = &config.store.url_env else {
                return Err(CliError::Usage(
                    "[store] kind = \"postgres\" needs url_env".into(),
                ));
            };
            let url = env_value("store.url_env", var).map_err(|e| usage(&e))?;
            let store = Arc::new(PostgresStore::open(&url).await.map_err(|e| usage(&e))?);
            let replica = config.store.replica.clone().unwrap_or_else(default_replica);
            let election = Election::new(&url, &replica, Arc::clone(&store));
            Ok((store, Leadership::Elected(Arc::new(election))))
        }
        #[cfg(not(feature = "postgres"))]
        StoreKind::Postgres => Err(CliError::Usage(
            "[store] kind = \"postgres\": this build has no PostgreSQL support (feature `postgres`)"
                .into(),
        )),
    }
}

/// A replica's name unless configured: the host name and the process id.
#[cfg(feature = "postgres")]
fn default_replica() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

/// Structured logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: escape codes garble a redirected log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // Another subscriber already set (in tests) is fine.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
