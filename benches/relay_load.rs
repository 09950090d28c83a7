//! The relay under load over loopback HTTP: the real relay (intake, SQLite store with group
//! commit, worker, audit log) in front of the in-process API double, and a load generator that
//! sends Standard Webhooks-signed requests and reports throughput and latency percentiles.
//!
//! - `rate`: an open loop offering a fixed rate (default 2,000/s). Each latency counts from
//!   the instant its request was due, so a stall of the relay is not hidden by the generator
//!   waiting for it (no coordinated omission).
//! - `closed`: a fixed number of requests in flight (default 32): the most the relay accepts.
//! - `storm`: 10,000 webhooks for one schedule while its publish is Processing: at most one
//!   further publish, no 409, every webhook in the audit log.
//! - `replicas`: the `rate` phase spread over two relays sharing one PostgreSQL database
//!   (`[store] kind = "postgres"`), its server's connection string in the environment
//!   variable `--postgres-env` names (`.ci/postgres.sh start` prints one); a database of its
//!   own is created for the run.
//!
//! After each phase the store's file is read directly: it must hold every accepted webhook.
//! Every request is signed before the clock starts, so the generator's HMACs are not measured.
//!
//! `cargo bench --bench relay_load` (about 25 s); `cargo bench --bench relay_load -- --help`.

use clap::Parser;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, CallKind, DoubleConfig};
use publish_guard::api::genesys::{GenesysClient, GenesysConfig};
use publish_guard::api::model::{ModelConfig, PublishState};
use publish_guard::api::region::Endpoints;
use publish_guard::api::secret::Secret;
use publish_guard::audit::log::{AuditLog, AuditOptions};
use publish_guard::audit::writer::AuditWriter;
use publish_guard::effects::clock::SystemClock;
use publish_guard::relay::intake::{DEFAULT_BODY_LIMIT, Source, SourceAuth};
use publish_guard::relay::leader::Leadership;
use publish_guard::relay::mapping::{Field, Mapping};
use publish_guard::relay::rules::Rules;
use publish_guard::relay::server::{Relay, RelaySettings};
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::TriggerStore;
use publish_guard::relay::webhook_auth::{SignatureVerifier, WebhookSecret};
use publish_guard::runner::RunnerConfig;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SOURCE: &str = "servicenow";
const RULES: &str = include_str!("../tests/fixtures/relay/serve.rules");
/// The write-ahead log stays below this while checkpoints keep up (without them it grows by
/// every page of every commit).
const MAX_LOG_BYTES: u64 = 64 << 20;
/// The longest the storm's triggers may take to be processed once accepted.
const PATIENCE: Duration = Duration::from_secs(120);

/// The relay's load benchmark.
#[derive(Debug, Parser)]
struct Options {
    /// Phases to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "rate,closed,storm")]
    phases: Vec<Phase>,
    /// Webhooks sent in each of the `rate` and `closed` phases.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// The rate offered in the `rate` phase, per second.
    #[arg(long, default_value_t = 2_000.0)]
    rate: f64,
    /// The most requests in flight in the `rate` phase (a stalled relay makes it wait; the
    /// wait still counts in each request's latency).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Requests in flight in the `closed` and `storm` phases.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Webhooks in the storm.
    #[arg(long, default_value_t = 10_000)]
    storm: usize,
    /// How long the API double's publish stays Processing in the storm, in seconds.
    #[arg(long, default_value_t = 5)]
    processing_secs: i64,
    /// Log as `serve --log-json` does (JSON lines at `info`, one per webhook), into a temp
    /// file; without it no log is written.
    #[arg(long)]
    logs: bool,
    /// The environment variable holding the PostgreSQL server's connection string (for the
    /// `replicas` phase).
    #[arg(long, default_value = "PUBLISH_GUARD_TEST_PG")]
    postgres_env: String,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Phase {
    Rate,
    Closed,
    Storm,
    Replicas,
}

/// One signed request, ready to send.
struct Webhook {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// Sign `count` webhooks about `schedule_id`, ids prefixed by `prefix`. The body is the size
/// of a ServiceNow business rule's payload.
fn sign_all(prefix: &str, count: usize, schedule_id: &str) -> Vec<Webhook> {
    let secret: WebhookSecret = SECRET.parse().unwrap_or_else(|e| panic!("{e}"));
    let timestamp = Timestamp::now().as_second().to_string();
    (0..count)
        .map(|n| {
            let id = format!("{prefix}-{n}");
            let body = serde_json::json!({
                "bu": "bu-1",
                "week": "2026-03-30",
                "schedule_id": schedule_id,
                "event": "case.updated",
                "case": {
                    "number": format!("CS{n:07}"),
                    "sys_id": format!("{:032x}", n),
                    "state": "work_in_progress",
                    "short_description": "Agent requests a shift swap for next week",
                    "assignment_group": "WFM Scheduling",
                    "updated_by": "servicenow.integration",
                    "updated_on": "2026-03-30 09:12:44",
                },
            })
            .to_string();
            let signature = secret.signature_header(&id, &timestamp, body.as_bytes());
            Webhook {
                id,
                timestamp: timestamp.clone(),
                signature,
                body,
            }
        })
        .collect()
}

/// What one request came to.
struct Sample {
    latency: Duration,
    status: u16,
    receipt: Option<String>,
}

async fn send(client: &reqwest::Client, url: &str, webhook: &Webhook) -> (u16, Option<String>) {
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &webhook.id)
        .header("webhook-timestamp", &webhook.timestamp)
        .header("webhook-signature", &webhook.signature)
        .body(webhook.body.clone())
        .send()
        .await;
    let Ok(response) = sent else {
        return (0, None);
    };
    let status = response.status().as_u16();
    let receipt = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["receipt"].as_str().map(str::to_owned));
    (status, receipt)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Offer `webhooks` at `rate` per second, at most `max_in_flight` at once, to each of `urls`
/// in turn.
async fn open_loop(
    urls: Vec<Arc<str>>,
    webhooks: Arc<Vec<Webhook>>,
    rate: f64,
    max_in_flight: usize,
) -> (Vec<Sample>, Duration) {
    let client = client();
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(webhooks.len());
    for index in 0..webhooks.len() {
        let due = start + Duration::from_secs_f64(index as f64 / rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let url = Arc::clone(&urls[index % urls.len()]);
        let (client, webhooks) = (client.clone(), Arc::clone(&webhooks));
        tasks.push(tokio::spawn(async move {
            let (status, receipt) = send(&client, &url, &webhooks[index]).await;
            drop(permit);
            Sample {
                latency: due.elapsed(),
                status,
                receipt,
            }
        }));
    }
    let samples = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    (samples, start.elapsed())
}

/// Send `webhooks` with `concurrency` requests in flight.
async fn closed_loop(
    url: Arc<str>,
    webhooks: Arc<Vec<Webhook>>,
    concurrency: usize,
) -> (Vec<Sample>, Duration) {
    let client = client();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let senders = (0..concurrency).map(|_| {
        let (client, url, webhooks, next) = (
            client.clone(),
            Arc::clone(&url),
            Arc::clone(&webhooks),
            Arc::clone(&next),
        );
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(webhook) = webhooks.get(index) else {
                    return samples;
                };
                let began = Instant::now();
                let (status, receipt) = send(&client, &url, webhook).await;
                samples.push(Sample {
                    latency: began.elapsed(),
                    status,
                    receipt,
                });
            }
        })
    });
    let samples = futures_util::future::join_all(senders)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .flatten()
        .collect();
    (samples, start.elapsed())
}

/// The relay, the double behind it and where their files are.
struct Rig {
    relay: Relay,
    double: ApiDouble,
    store: Arc<SqliteStore>,
    audit: Arc<AuditWriter>,
    db_path: PathBuf,
    audit_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn schedule(id: &str) -> ScheduleRef {
    ScheduleRef {
        business_unit: "bu-1".into(),
        week: Date::constant(2026, 3, 30),
        schedule_id: id.into(),
    }
}

/// Start the relay on an ephemeral loopback port, with a temp store and audit log, in front
/// of a double holding the draft schedule `s-1`.
async fn start_rig(processing: SignedDuration) -> Rig {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let double = ApiDouble::start(DoubleConfig {
        model: ModelConfig {
            processing_time: processing,
            requests_per_minute: 100_000,
            ..ModelConfig::default()
        },
        ..DoubleConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("the double did not start: {e}"));
    double.add_schedule(&schedule("s-1"), false, 1);
    let db_path = dir.path().join("relay.db");
    let store = Arc::new(SqliteStore::open(&db_path).unwrap_or_else(|e| panic!("{e}")));
    let audit_path = dir.path().join("audit.jsonl");
    let log =
        AuditLog::open(&audit_path, AuditOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let audit = Arc::new(AuditWriter::start(log).unwrap_or_else(|e| panic!("{e}")));
    let rules_path = dir.path().join("policy.rules");
    std::fs::write(&rules_path, RULES).unwrap_or_else(|e| panic!("{e}"));
    let relay = start_relay(
        &double,
        &rules_path,
        Arc::clone(&store) as Arc<dyn TriggerStore>,
        Leadership::Sole(Arc::clone(&audit)),
    )
    .await;
    Rig {
        relay,
        double,
        store,
        audit,
        db_path,
        audit_path,
        _dir: dir,
    }
}

/// A relay on an ephemeral loopback port in front of `double`, on `store`.
async fn start_relay(
    double: &ApiDouble,
    rules_path: &Path,
    store: Arc<dyn TriggerStore>,
    leadership: Leadership,
) -> Relay {
    let pointer = |p: &str| Field::Pointer(p.into());
    let secret: WebhookSecret = SECRET.parse().unwrap_or_else(|e| panic!("{e}"));
    let source = Source {
        auth: SourceAuth::Signed(SignatureVerifier::new(vec![secret])),
        mapping: Mapping {
            business_unit: pointer("/bu"),
            week: pointer("/week"),
            schedule_id: pointer("/schedule_id"),
            event: pointer("/event"),
            delivery_id: None,
        },
    };
    let settings = RelaySettings {
        sources: HashMap::from([(SOURCE.to_owned(), source)]),
        store,
        leadership,
        rules: Arc::new(Rules::load(rules_path).unwrap_or_else(|e| panic!("{e}"))),
        admin_token: None,
        runner: RunnerConfig::default(),
        body_limit: DEFAULT_BODY_LIMIT,
        connections: Default::default(),
        clock: Arc::new(SystemClock),
        notifications: None,
    };
    let mut config = GenesysConfig::new(
        Endpoints::explicit(double.base_url(), double.base_url()),
        double.client_id(),
        Secret::new(double.client_secret()),
    );
    config.requests_per_minute = 100_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let make_api =
        move || GenesysClient::new(config, Arc::new(SystemClock)).unwrap_or_else(|e| panic!("{e}"));
    Relay::start(settings, make_api, listener)
        .await
        .unwrap_or_else(|e| panic!("the relay did not start: {e}"))
}

fn webhook_url(relay: &Relay) -> Arc<str> {
    format!("http://{}/webhooks/{SOURCE}", relay.addr()).into()
}

impl Rig {
    fn url(&self) -> Arc<str> {
        webhook_url(&self.relay)
    }

    /// Wait (bounded) until the store holds nothing unfinished.
    async fn settled(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.store.stats().await.unwrap_or_else(|e| panic!("{e}"));
            if stats.pending + stats.running == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "still unfinished: {stats:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every receipt in the store's file, read directly (not through the store under test).
fn stored_receipts(db_path: &Path) -> HashSet<String> {
    let connection = rusqlite::Connection::open(db_path).unwrap_or_else(|e| panic!("{e}"));
    let mut query = connection
        .prepare("SELECT receipt FROM triggers")
        .unwrap_or_else(|e| panic!("{e}"));
    query
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The delivery ids of every `trigger_received` entry in the audit log.
fn audited_deliveries(audit_path: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(audit_path).unwrap_or_else(|e| panic!("{e}"));
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["event"]["kind"] == "trigger_received")
        .filter_map(|entry| entry["event"]["delivery_id"].as_str().map(str::to_owned))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Print one phase's line; check that every accepted webhook is in the store.
fn report(
    name: &str,
    samples: &[Sample],
    elapsed: Duration,
    stored: &HashSet<String>,
    commits: u64,
) {
    let accepted: Vec<&Sample> = samples.iter().filter(|s| s.status == 202).collect();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for s in samples.iter().filter(|s| s.status != 202) {
        *statuses.entry(s.status).or_default() += 1;
    }
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    let in_store = accepted
        .iter()
        .filter(|s| s.receipt.as_ref().is_some_and(|r| stored.contains(r)))
        .count();
    println!(
        "{name}: {sent} sent, {ok} accepted (202){others} in {secs:.2} s = {rate:.0}/s; \
         latency p50 {p50}, p90 {p90}, p99 {p99}, max {max}; {in_store}/{ok} in the store, \
         {commits} commits",
        sent = samples.len(),
        ok = accepted.len(),
        others = if statuses.is_empty() {
            String::new()
        } else {
            format!(", others {statuses:?}")
        },
        secs = elapsed.as_secs_f64(),
        rate = accepted.len() as f64 / elapsed.as_secs_f64(),
        p50 = ms(percentile(&latencies, 0.50)),
        p90 = ms(percentile(&latencies, 0.90)),
        p99 = ms(percentile(&latencies, 0.99)),
        max = ms(latencies.last().copied().unwrap_or_default()),
    );
    assert_eq!(accepted.len(), samples.len(), "every webhook accepted");
    assert_eq!(in_store, accepted.len(), "every accepted webhook stored");
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Run the `rate` or `closed` phase on a fresh relay.
fn load_phase(relay_rt: &Runtime, load_rt: &Runtime, options: &Options, phase: Phase) {
    let rig = relay_rt.block_on(start_rig(SignedDuration::ZERO));
    let name = format!("{phase:?}").to_lowercase();
    let webhooks = Arc::new(sign_all(&name, options.requests, "s-1"));
    let (samples, elapsed) = match phase {
        Phase::Rate => load_rt.block_on(open_loop(
            vec![rig.url()],
            webhooks,
            options.rate,
            options.max_in_flight,
        )),
        _ => load_rt.block_on(closed_loop(rig.url(), webhooks, options.concurrency)),
    };
    let commits = rig.store.commits();
    let backlog = relay_rt
        .block_on(rig.store.stats())
        .unwrap_or_else(|e| panic!("{e}"));
    let log = log_bytes(&rig.db_path);
    let label = match phase {
        Phase::Rate => format!("rate {:.0}/s offered", options.rate),
        _ => format!("closed, {} in flight", options.concurrency),
    };
    let Rig {
        relay,
        db_path,
        _dir,
        ..
    } = rig;
    relay_rt
        .block_on(relay.shutdown())
        .unwrap_or_else(|e| panic!("{e}"));
    report(
        &label,
        &samples,
        elapsed,
        &stored_receipts(&db_path),
        commits,
    );
    println!(
        "  the worker had {} triggers still to process when the load ended; the store's log \
         (WAL) was {:.1} MB",
        backlog.pending + backlog.running,
        log as f64 / 1e6
    );
    assert!(log < MAX_LOG_BYTES, "the log is checkpointed as it grows");
}

/// The size of the store's write-ahead log.
fn log_bytes(db_path: &Path) -> u64 {
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Run the storm: one webhook starts a publish; while it is Processing, the storm arrives.
fn storm_phase(relay_rt: &Runtime, load_rt: &Runtime, options: &Options) {
    let processing = SignedDuration::from_secs(options.processing_secs);
    let rig = relay_rt.block_on(start_rig(processing));
    let first = sign_all("first", 1, "s-1");
    let storm = Arc::new(sign_all("storm", options.storm, "s-1"));
    let url = rig.url();
    load_rt.block_on(async {
        let client = client();
        let (status, _) = send(&client, &url, &first[0]).await;
        assert_eq!(status, 202, "the first webhook");
        let deadline = Instant::now() + PATIENCE;
        while rig.double.schedule(&schedule("s-1")).map(|v| v.state)
            != Some(PublishState::Publishing)
        {
            assert!(Instant::now() < deadline, "the publish never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let began = Instant::now();
    let (samples, intake) =
        load_rt.block_on(closed_loop(url, Arc::clone(&storm), options.concurrency));
    let still_processing =
        rig.double.schedule(&schedule("s-1")).map(|v| v.state) == Some(PublishState::Publishing);
    load_rt.block_on(rig.settled());
    let settled = began.elapsed();
    let publishes = rig.double.calls(CallKind::Update);
    let conflicts = rig.double.conflicts();
    let commits = rig.store.commits();
    let syncs = rig.audit.syncs();
    let Rig {
        relay,
        double,
        db_path,
        audit_path,
        _dir,
        ..
    } = rig;
    relay_rt
        .block_on(relay.shutdown())
        .unwrap_or_else(|e| panic!("{e}"));
    relay_rt.block_on(double.shutdown());
    let label = format!("storm of {} for one schedule", options.storm);
    report(
        &label,
        &samples,
        intake,
        &stored_receipts(&db_path),
        commits,
    );
    let audited = audited_deliveries(&audit_path);
    let in_audit = storm.iter().filter(|w| audited.contains(&w.id)).count();
    println!(
        "storm: all processed {secs:.2} s after it began (publish still Processing when the last \
         was accepted: {still_processing}); publishes {publishes} (one before the storm), \
         409s {conflicts}, {in_audit}/{total} in the audit log ({syncs} audit syncs)",
        secs = settled.as_secs_f64(),
        total = storm.len(),
    );
    assert!(publishes <= 2, "at most one further publish");
    assert_eq!(conflicts, 0, "no 409");
    assert_eq!(in_audit, storm.len(), "every webhook in the audit log");
}

/// The `rate` phase offered across two replicas sharing a fresh PostgreSQL database.
fn replicas_phase(relay_rt: &Runtime, load_rt: &Runtime, options: &Options) {
    use publish_guard::relay::leader::elected::Election;
    use publish_guard::relay::postgres_store::PostgresStore;
    let server = std::env::var(&options.postgres_env).unwrap_or_else(|_| {
        panic!(
            "the replicas phase needs a PostgreSQL server's connection string in {} \
             (eval \"$(.ci/postgres.sh start)\")",
            options.postgres_env
        )
    });
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rules_path = dir.path().join("policy.rules");
    std::fs::write(&rules_path, RULES).unwrap_or_else(|e| panic!("{e}"));
    let (double, replicas, url) = relay_rt.block_on(async {
        let name = format!("bench_{:016x}", rand::random::<u64>());
        let admin = publish_guard::pg::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = server.replace("dbname=postgres", &format!("dbname={name}"));
        let double = ApiDouble::start(DoubleConfig {
            model: ModelConfig {
                processing_time: SignedDuration::ZERO,
                requests_per_minute: 100_000,
                ..ModelConfig::default()
            },
            ..DoubleConfig::default()
        })
        .await
        .unwrap_or_else(|e| panic!("the double did not start: {e}"));
        double.add_schedule(&schedule("s-1"), false, 1);
        let mut replicas = Vec::new();
        for name in ["a", "b"] {
            let store = Arc::new(
                PostgresStore::open(&url)
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
            let election = Election::new(&url, name, Arc::clone(&store));
            let leadership = Leadership::Elected(Arc::new(election));
            replicas.push(start_relay(&double, &rules_path, store, leadership).await);
        }
        (double, replicas, url)
    });
    let webhooks = Arc::new(sign_all("replicas", options.requests, "s-1"));
    let urls = replicas.iter().map(webhook_url).collect();
    let (samples, elapsed) = load_rt.block_on(open_loop(
        urls,
        webhooks,
        options.rate,
        options.max_in_flight,
    ));
    let stored: HashSet<String> = relay_rt.block_on(async {
        let client = publish_guard::pg::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let rows = client
            .query("SELECT receipt FROM triggers", &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        rows.iter().map(|row| row.get::<_, String>(0)).collect()
    });
    for relay in replicas {
        relay_rt
            .block_on(relay.shutdown())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    relay_rt.block_on(double.shutdown());
    let label = format!(
        "replicas: rate {:.0}/s offered across two relays on PostgreSQL",
        options.rate
    );
    report(&label, &samples, elapsed, &stored, 0);
}

fn main() {
    let options = Options::parse();
    // Kept until the end: the log file lives in it.
    let log_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    if options.logs {
        let file = std::fs::File::create(log_dir.path().join("relay.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::sync::Mutex::new(file))
            .json()
            .init();
    }
    let relay_rt = runtime("relay");
    let load_rt = runtime("load");
    for phase in &options.phases {
        match phase {
            Phase::Rate | Phase::Closed => load_phase(&relay_rt, &load_rt, &options, *phase),
            Phase::Storm => storm_phase(&relay_rt, &load_rt, &options),
            Phase::Replicas => replicas_phase(&relay_rt, &load_rt, &options),
        }
    }
}
