//! The relay end to end over real HTTP on both sides: signed webhooks into `serve`'s relay
//! (in-process on loopback) in front of the API double. A storm for one draft schedule
//! publishes once with no 409, every accepted trigger is in the audit log and the chain
//! verifies; a broken rules file is refused with its diagnostics, a good one decides the
//! next cycle. The hardening: a full disk under the audit log (or a store refusing writes)
//! makes the relay answer 503 and report not ready, then it resumes by itself and loses
//! nothing; slow, stalled and surplus connections are closed; a reload's check runs off the
//! runtime, one at a time, within its time bound.

use crate::api_support::genesys_config;
use crate::relay_support::{Hooked, OnRecord, RelayFiles, start_relay};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, CallKind, DoubleConfig};
use publish_guard::api::model::ModelConfig;
use publish_guard::audit::checkpoint::checkpoints_path;
use publish_guard::audit::log::{AuditOptions, FullDisk};
use publish_guard::audit::verify::verify;
use publish_guard::effects::clock::{Clock, ManualClock, SystemClock};
use publish_guard::relay::connections::ConnectionLimits;
use publish_guard::relay::intake::{Source, SourceAuth};
use publish_guard::relay::mapping::{Field, Mapping, ScheduleTarget};
use publish_guard::relay::rules::RELOAD_TIMEOUT;
use publish_guard::relay::server::{Relay, RelaySettings};
use publish_guard::relay::store::{Acceptance, NewTrigger, Progress, StoreError, TriggerStore};
use publish_guard::relay::webhook_auth::{SignatureVerifier, WebhookSecret};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ADMIN: &str = "admin-test-token";
const STORM: usize = 1000;
/// The longest any condition below may take to come true.
const PATIENCE: Duration = Duration::from_secs(60);

const SERVE_RULES: &str = include_str!("../fixtures/relay/serve.rules");
const FROZEN_RULES: &str = include_str!("../fixtures/relay/frozen.rules");
const BROKEN_RULES: &str = include_str!("../fixtures/relay/broken.rules");

fn schedule(id: &str) -> ScheduleRef {
    ScheduleRef {
        business_unit: "bu-1".into(),
        week: Date::constant(2026, 3, 30),
        schedule_id: id.into(),
    }
}

struct Rig {
    relay: Relay,
    double: ApiDouble,
    files: RelayFiles,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
}

/// How to start a rig; the default is a fresh relay on the system clock.
#[derive(Default)]
struct Options {
    /// Accepted, unprocessed triggers for `s-1` already in the store, as a crash right
    /// after accepting them would leave them.
    left: usize,
    /// The relay's clock, when the test moves it.
    clock: Option<ManualClock>,
    /// The audit log's disk, when the test fills it.
    full_disk: Option<FullDisk>,
    /// While true, the store refuses to record progress (as a full disk would).
    refuse_records: Option<Arc<AtomicBool>>,
    /// Connection timeouts and cap.
    connections: ConnectionLimits,
    /// The double's clock, when the test moves it (else the system clock).
    double_clock: Option<ManualClock>,
    /// The double's processing time (else a publish completes at once).
    processing: Option<SignedDuration>,
    /// The rules the relay starts with (else the serve fixture).
    rules: Option<&'static str>,
    /// The client secret the relay logs in with (else the double's).
    client_secret: Option<&'static str>,
    /// The requests a minute the double allows; the client then keeps Genesys' default
    /// (300), above it, and runs on the relay's clock (else both allow 10,000).
    allowed_per_minute: Option<u32>,
}

/// Refuses to record progress while the flag is true (as a full disk would).
struct Refusing(Arc<AtomicBool>);

impl OnRecord for Refusing {
    fn before(&self, _progress: &Progress) -> Option<StoreError> {
        let full = StoreError::Database("database or disk is full (injected)".into());
        self.0.load(Ordering::SeqCst).then_some(full)
    }
}

async fn start() -> Rig {
    start_with(Options::default()).await
}

async fn start_after_crash(left: usize) -> Rig {
    start_with(Options {
        left,
        ..Options::default()
    })
    .await
}

async fn start_with(options: Options) -> Rig {
    let double = ApiDouble::start(DoubleConfig {
        // A publish completes at once: no real time is spent waiting on it.
        model: ModelConfig {
            processing_time: options.processing.unwrap_or(SignedDuration::ZERO),
            requests_per_minute: options.allowed_per_minute.unwrap_or(10_000),
            ..ModelConfig::default()
        },
        clock: match &options.double_clock {
            Some(manual) => Arc::new(manual.clone()),
            None => DoubleConfig::default().clock,
        },
        ..DoubleConfig::default()
    })
    .await
    .unwrap();
    double.add_schedule(&schedule("s-1"), false, 1);
    double.add_schedule(&schedule("s-2"), false, 1);
    let files = RelayFiles::new(options.rules.unwrap_or(SERVE_RULES));
    for n in 0..options.left {
        let trigger = NewTrigger {
            source: "servicenow".into(),
            delivery_id: format!("before-crash-{n}"),
            body_hash: format!("{n:064x}"),
            target: ScheduleTarget {
                business_unit: "bu-1".into(),
                week: "2026-03-30".into(),
                schedule_id: "s-1".into(),
            },
            event: "case.updated".into(),
            received_at: Timestamp::now(),
        };
        let accepted = files.store.accept(trigger).await.unwrap();
        assert!(matches!(accepted, Acceptance::Accepted(_)), "{accepted:?}");
    }
    let pointer = |p: &str| Field::Pointer(p.into());
    let source = Source {
        auth: SourceAuth::Signed(SignatureVerifier::new(vec![
            SECRET.parse::<WebhookSecret>().unwrap(),
        ])),
        mapping: Mapping {
            business_unit: pointer("/bu"),
            week: pointer("/week"),
            schedule_id: pointer("/schedule_id"),
            event: pointer("/event"),
            delivery_id: None,
        },
    };
    let clock: Arc<dyn Clock> = match options.clock {
        Some(manual) => Arc::new(manual),
        None => Arc::new(SystemClock),
    };
    let audit = AuditOptions {
        full_disk: options.full_disk,
        ..AuditOptions::default()
    };
    let settings = files.settings("servicenow", source, Arc::clone(&clock), audit);
    let settings = RelaySettings {
        store: match options.refuse_records {
            Some(refuse) => Arc::new(Hooked {
                inner: Arc::clone(&files.store),
                hook: Refusing(refuse),
            }),
            None => settings.store,
        },
        admin_token: Some(ADMIN.into()),
        connections: options.connections,
        ..settings
    };
    let mut config = genesys_config(&double);
    config.timeout = Duration::from_secs(5);
    config.requests_per_minute = 10_000;
    let mut client_clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if options.allowed_per_minute.is_some() {
        config.requests_per_minute = publish_guard::api::limiter::DEFAULT_REQUESTS_PER_MINUTE;
        client_clock = Arc::clone(&clock);
    }
    if let Some(secret) = options.client_secret {
        config.client_secret = publish_guard::api::secret::Secret::new(secret);
    }
    let relay = start_relay(settings, config, client_clock).await;
    Rig {
        relay,
        double,
        files,
        clock,
        http: reqwest::Client::new(),
    }
}

impl Rig {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.relay.addr())
    }

    /// Send one signed webhook about `schedule_id`; returns the status.
    async fn webhook(&self, id: &str, schedule_id: &str) -> u16 {
        self.webhook_answer(id, schedule_id).await.status().as_u16()
    }

    /// Send one signed webhook about `schedule_id`, signed as of the relay's clock.
    async fn webhook_answer(&self, id: &str, schedule_id: &str) -> reqwest::Response {
        self.webhook_in(id, "bu-1", schedule_id).await
    }

    /// Send one signed webhook about `schedule_id` of business unit `bu`.
    async fn webhook_in(&self, id: &str, bu: &str, schedule_id: &str) -> reqwest::Response {
        let body = json!({
            "bu": bu, "week": "2026-03-30", "schedule_id": schedule_id, "event": "case.updated",
        })
        .to_string();
        let url = self.url("/webhooks/servicenow");
        let at = self.clock.now().as_second();
        crate::common::signed_webhook(&self.http, &url, SECRET, id, at, body)
            .send()
            .await
            .unwrap()
    }

    /// `/readyz`: its status and text.
    async fn readiness(&self) -> (u16, String) {
        let answer = self.http.get(self.url("/readyz")).send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap())
    }

    /// Wait (bounded) until `/readyz` answers `status`; returns its text.
    async fn until_ready_is(&self, status: u16) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (now, text) = self.readiness().await;
            if now == status {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz still says {now}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait (bounded) until the store holds nothing unfinished.
    async fn settled(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let stats = self.files.store.stats().await.unwrap();
            if stats.pending + stats.running == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still unfinished: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn reload(&self) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/admin/reload"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    fn writes(&self) -> usize {
        self.double.calls(CallKind::Update)
    }
}

/// Every audit entry's JSON.
fn entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn chain_verifies(path: &Path) -> u64 {
    match verify(path, &checkpoints_path(path), None).unwrap() {
        Ok(verified) => verified.entries,
        Err(broken) => panic!("the audit chain is broken: {broken:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_signed_webhooks_publishes_once_and_every_trigger_is_audited() {
    let rig = start().await;
    let statuses: Vec<u16> = futures_util::future::join_all((0..STORM).map(|n| {
        let rig = &rig;
        async move { rig.webhook(&format!("msg-{n}"), "s-1").await }
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    rig.settled().await;

    assert_eq!(rig.writes(), 1, "exactly one publish");
    assert_eq!(rig.double.conflicts(), 0, "no 409");
    let view = rig.double.schedule(&schedule("s-1")).unwrap();
    assert!(view.snapshot.published);

    let entries = entries(&rig.files.audit_path);
    let received: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e["step"].as_str())
        .filter(|step| step.ends_with("/received"))
        .collect();
    assert_eq!(received.len(), STORM, "each accepted trigger has its entry");
    let steps: HashSet<&str> = entries.iter().filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(steps.len(), entries.len(), "no step written twice");
    assert_eq!(chain_verifies(&rig.files.audit_path), entries.len() as u64);

    let metrics = rig.http.get(rig.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let accepted =
        format!("publish_guard_webhooks_total{{source=\"servicenow\",status=\"202\"}} {STORM}");
    assert!(metrics.contains(&accepted), "{metrics}");
    assert!(metrics.contains("publish_guard_queue_depth 0"), "{metrics}");
    rig.relay.shutdown().await.unwrap();
    drop(rig.files.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_rules_file_keeps_the_old_policy_and_a_good_one_decides_the_next_cycle() {
    let rig = start().await;
    let ready = rig.http.get(rig.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    std::fs::write(&rig.files.rules_path, BROKEN_RULES).unwrap();
    let (status, problem) = rig.reload().await;
    assert_eq!(status, 422);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("unknown fact `schedule.colour`"),
        "{detail}"
    );
    assert!(detail.contains("has no `otherwise`"), "{detail}");
    // The old policy still decides: a draft is published.
    assert_eq!(rig.webhook("before", "s-1").await, 202);
    rig.settled().await;
    assert_eq!(rig.writes(), 1);

    std::fs::write(&rig.files.rules_path, FROZEN_RULES).unwrap();
    let (status, answer) = rig.reload().await;
    assert_eq!(status, 200, "{answer}");
    let frozen = answer["version"].as_str().unwrap().to_owned();
    assert_eq!(rig.webhook("after", "s-2").await, 202);
    rig.settled().await;
    assert_eq!(rig.writes(), 1, "the freeze published nothing");
    let decided: Vec<Value> = entries(&rig.files.audit_path)
        .into_iter()
        .filter(|e| {
            e["event"]["kind"] == "decision" && e["event"]["schedule"]["schedule_id"] == "s-2"
        })
        .collect();
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["event"]["policy_version"], frozen.as_str());
    assert_eq!(decided[0]["event"]["detail"], "change freeze");
    assert_eq!(
        rig.relay
            .metrics()
            .get("publish_guard_reloads_total", &[("result", "rejected")]),
        1
    );
    chain_verifies(&rig.files.audit_path);

    let unauthorized = rig
        .http
        .post(rig.url("/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_accepted_before_a_restart_are_carried_on() {
    let rig = start_after_crash(5).await;
    rig.settled().await;
    assert_eq!(
        rig.writes(),
        1,
        "the stored triggers published the draft once"
    );
    let received = entries(&rig.files.audit_path)
        .iter()
        .filter(|e| e["event"]["kind"] == "trigger_received")
        .count();
    assert_eq!(received, 5);
    chain_verifies(&rig.files.audit_path);
    rig.relay.shutdown().await.unwrap();
}

/// A counter's value in `/metrics` (0 when absent).
async fn counter(rig: &Rig, series: &str) -> u64 {
    let text = rig.http.get(rig.url("/metrics")).send().await.unwrap();
    let text = text.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The audit steps recording arrivals.
fn arrivals(path: &Path) -> HashSet<String> {
    entries(path)
        .iter()
        .filter_map(|e| e["step"].as_str())
        .filter(|step| step.ends_with("/received"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_disk_answers_503_and_not_ready_then_resumes_by_itself_losing_nothing() {
    let clock = ManualClock::new(Timestamp::now());
    let disk = FullDisk::default();
    let rig = start_with(Options {
        clock: Some(clock.clone()),
        full_disk: Some(disk.clone()),
        ..Options::default()
    })
    .await;
    assert_eq!(rig.readiness().await.0, 200);

    disk.fill();
    // Accepted into the store, which still has room; its arrival cannot be audited.
    let first = rig.webhook_answer("before-full", "s-1").await;
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.unwrap();
    let why = rig.until_ready_is(503).await;
    assert!(why.contains("the audit log cannot be written"), "{why}");
    assert!(why.contains("No space left on device"), "{why}");
    let failures = "publish_guard_write_failures_total{target=\"audit\"}";
    assert!(counter(&rig, failures).await >= 1);

    let refused = rig.webhook_answer("while-full", "s-1").await;
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(refused.headers()["retry-after"], "30");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "urn:publish-guard:problem:not-durable");

    // Space returns; the retry waits for its instant on the relay's clock.
    disk.free();
    assert_eq!(rig.readiness().await.0, 503, "not before the retry");
    clock.advance(SignedDuration::from_mins(2));
    rig.until_ready_is(200).await;
    // The sender retries what was refused.
    assert_eq!(rig.webhook("while-full", "s-1").await, 202);
    rig.settled().await;

    let received = arrivals(&rig.files.audit_path);
    let receipt = first["receipt"].as_str().unwrap();
    assert!(
        received.contains(&format!("{receipt}/received")),
        "{received:?}"
    );
    assert_eq!(
        received.len(),
        2,
        "both webhooks audited once: {received:?}"
    );
    assert_eq!(rig.writes(), 1, "the draft published once");
    assert!(
        rig.double
            .schedule(&schedule("s-1"))
            .unwrap()
            .snapshot
            .published
    );
    // No torn line from the failed writes: the whole chain verifies.
    assert_eq!(
        chain_verifies(&rig.files.audit_path),
        entries(&rig.files.audit_path).len() as u64
    );
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_writes_makes_the_relay_not_ready_until_a_retry_succeeds() {
    let clock = ManualClock::new(Timestamp::now());
    let refuse = Arc::new(AtomicBool::new(true));
    let rig = start_with(Options {
        clock: Some(clock.clone()),
        refuse_records: Some(Arc::clone(&refuse)),
        ..Options::default()
    })
    .await;
    assert_eq!(rig.webhook("a-1", "s-1").await, 202);
    let why = rig.until_ready_is(503).await;
    assert!(why.contains("the store cannot be written"), "{why}");
    assert!(why.contains("disk is full"), "{why}");
    let failures = "publish_guard_write_failures_total{target=\"store\"}";
    assert!(counter(&rig, failures).await >= 1);

    refuse.store(false, Ordering::SeqCst);
    clock.advance(SignedDuration::from_mins(2));
    rig.settled().await;
    rig.until_ready_is(200).await;
    assert_eq!(rig.writes(), 1, "published once");
    assert_eq!(arrivals(&rig.files.audit_path).len(), 1);
    chain_verifies(&rig.files.audit_path);
    rig.relay.shutdown().await.unwrap();
}

/// A rig whose connections time out and are capped as given.
async fn start_limited(header_read: u64, idle: u64, max: usize) -> Rig {
    start_with(Options {
        connections: ConnectionLimits {
            header_read_timeout: Duration::from_millis(header_read),
            idle_timeout: Duration::from_millis(idle),
            max_connections: max,
        },
        ..Options::default()
    })
    .await
}

/// Read until the relay closes the connection (bounded); what it sent, and how long it took.
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let began = Instant::now();
    let mut seen = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0_u8; 1024];
        // A reset is a close too.
        while let Ok(n @ 1..) = stream.read(&mut buffer).await {
            seen.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "the relay kept the connection open");
    (String::from_utf8_lossy(&seen).into_owned(), began.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off_at_the_header_read_timeout() {
    let rig = start_limited(300, 60_000, 16).await;
    let mut slow = TcpStream::connect(rig.relay.addr()).await.unwrap();
    slow.write_all(b"POST /webhooks/servicenow HTTP/1.1\r\nhost: relay\r\nx-slow: 1")
        .await
        .unwrap();
    let (_, took) = until_closed(&mut slow).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    // One that sends nothing at all is cut off the same way.
    let mut silent = TcpStream::connect(rig.relay.addr()).await.unwrap();
    until_closed(&mut silent).await;
    let health = rig.http.get(rig.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_body_stalls_is_closed_at_the_idle_timeout() {
    let rig = start_limited(60_000, 300, 16).await;
    let mut stalled = TcpStream::connect(rig.relay.addr()).await.unwrap();
    stalled
        .write_all(
            b"POST /webhooks/servicenow HTTP/1.1\r\nhost: relay\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"bu\":",
        )
        .await
        .unwrap();
    let (_, took) = until_closed(&mut stalled).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert_eq!(
        rig.files.store.stats().await.unwrap().pending,
        0,
        "nothing stored"
    );
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_the_idle_ones_are_closed() {
    const MAX: usize = 8;
    let rig = start_limited(1_000, 60_000, MAX).await;
    let mut idle = Vec::new();
    for _ in 0..MAX {
        idle.push(TcpStream::connect(rig.relay.addr()).await.unwrap());
    }
    // One more is not served while the cap is taken; once the header-read timeout has
    // closed the idle ones, it is.
    let health = tokio::spawn({
        let (http, url) = (rig.http.clone(), rig.url("/healthz"));
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    });
    for stream in &mut idle {
        until_closed(stream).await;
    }
    let health = tokio::time::timeout(PATIENCE, health)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health, 200);
    assert!(counter(&rig, "publish_guard_connections_at_cap_total").await >= 1);
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_reload_checks_off_the_runtime_one_at_a_time_within_its_time_bound() {
    let clock = ManualClock::new(Timestamp::now());
    let rig = start_with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    // A rules file that takes as long to read as the test likes: a FIFO nobody writes yet.
    std::fs::remove_file(&rig.files.rules_path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&rig.files.rules_path)
        .status()
        .unwrap();
    assert!(made.success());
    let slow = tokio::spawn({
        let (http, url) = (rig.http.clone(), rig.url("/admin/reload"));
        async move {
            let answer = http.post(url).bearer_auth(ADMIN).send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        }
    });
    // While it checks, the runtime's one worker thread still serves.
    let health = tokio::time::timeout(PATIENCE, rig.http.get(rig.url("/healthz")).send()).await;
    assert_eq!(health.unwrap().unwrap().status().as_u16(), 200);
    let (status, busy) = rig.reload().await;
    assert_eq!(status, 409, "{busy}");
    assert_eq!(busy["type"], "urn:publish-guard:problem:reload-in-progress");

    clock.advance(RELOAD_TIMEOUT);
    let (status, gave_up) = slow.await.unwrap();
    assert_eq!(status, 422, "{gave_up}");
    let detail = gave_up["detail"].as_str().unwrap();
    assert!(detail.contains("took longer than 30s"), "{detail}");

    // The check given up on ends once its file does; then the next reload may start.
    std::fs::write(&rig.files.rules_path, FROZEN_RULES).unwrap();
    std::fs::remove_file(&rig.files.rules_path).unwrap();
    std::fs::write(&rig.files.rules_path, FROZEN_RULES).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let (status, answer) = loop {
        let (status, answer) = rig.reload().await;
        if status != 409 || Instant::now() > deadline {
            break (status, answer);
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(status, 200, "{answer}");
    let frozen = publish_guard::audit::canonical::sha256_hex(FROZEN_RULES.as_bytes());
    assert_eq!(answer["version"].as_str(), Some(frozen.as_str()));
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_makes_the_relay_not_ready_naming_the_client_id_and_counts_it() {
    let wrong = "wr0ng-relay-s3cret";
    let rig = start_with(Options {
        client_secret: Some(wrong),
        ..Options::default()
    })
    .await;
    assert_eq!(rig.until_ready_is(200).await.lines().count(), 1);
    assert_eq!(rig.webhook("refused-1", "s-1").await, 202);
    let text = rig.until_ready_is(503).await;
    assert!(text.contains(rig.double.client_id()), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(
        counter(&rig, "publish_guard_auth_failures_total").await >= 1,
        "the refused login is counted"
    );
    assert_eq!(rig.writes(), 0);
    rig.relay.shutdown().await.unwrap();
}

/// A policy whose follow reads a minute apart (its first backoff profile paces following),
/// so a follow read coming sooner can only be the coalesced webhook's doing.
const SLOW_FOLLOW_RULES: &str = r#"policy "slow-follow"
timezone "Europe/London"
sources servicenow

backoff slow {
  exponential 60s factor 2 max 2m jitter none
  attempts 6
}

on trigger {
  rule published   when schedule.state == published     then skip "already published"
  rule in_progress when schedule.state == publishing    then backoff slow
  rule ready       when schedule.state == draft         then publish
  rule unreadable  when schedule.state == unknown       then backoff slow
  otherwise skip "no rule matched"
}

on response {
  rule ok        when response.status in 200..299  then done
  rule conflict  when response.status == 409       then recheck
  otherwise fail "unexpected response"
}
"#;

/// Wait (bounded) until the double has seen `count` schedule updates.
async fn until_writes(rig: &Rig, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while rig.writes() < count {
        assert!(Instant::now() < deadline, "{} writes", rig.writes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait (bounded) until the audit log holds `count` events of `kind`.
async fn until_events(rig: &Rig, kind: &str, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = entries(&rig.files.audit_path)
            .iter()
            .filter(|e| e["event"]["kind"] == kind)
            .count();
        if seen >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{seen} `{kind}` events");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_right_after_our_publish_completes_is_published_within_seconds_of_its_webhook() {
    // The relay's clock and the double's, both moved by the test: nothing races.
    let start = Timestamp::now();
    let (relay_clock, api_clock) = (ManualClock::new(start), ManualClock::new(start));
    let rig = start_with(Options {
        clock: Some(relay_clock.clone()),
        double_clock: Some(api_clock.clone()),
        processing: Some(SignedDuration::from_secs(20)),
        rules: Some(SLOW_FOLLOW_RULES),
        ..Options::default()
    })
    .await;
    assert_eq!(rig.webhook("before-edit", "s-1").await, 202);
    until_writes(&rig, 1).await;
    until_events(&rig, "wait", 1).await;
    // Our publish completes; a planner edits before our next follow read (a minute off).
    api_clock.set(start + SignedDuration::from_secs(21));
    assert!(rig.double.person_edit(&schedule("s-1")).is_ok());
    assert_eq!(rig.webhook("the-edit", "s-1").await, 202);
    // Eight seconds after the publish answered, the follow reads again and the edit goes.
    until_events(&rig, "wait", 2).await;
    relay_clock.set(start + SignedDuration::from_secs(8));
    until_writes(&rig, 2).await;
    assert_eq!(relay_clock.now(), start + SignedDuration::from_secs(8));
    // The edit's publish completes and its follow ends published.
    api_clock.set(start + SignedDuration::from_secs(45));
    relay_clock.set(start + SignedDuration::from_secs(80));
    rig.settled().await;
    let outcomes: Vec<String> = entries(&rig.files.audit_path)
        .iter()
        .filter(|e| e["event"]["kind"] == "outcome")
        .map(|e| {
            e["event"]["outcome"]["result"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(outcomes, ["landed_then_changed", "published"]);
    assert_eq!(rig.writes(), 2);
    assert_eq!(rig.double.conflicts(), 0);
    rig.relay.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_schedules_at_once_against_30_requests_a_minute_all_publish_with_at_most_one_429() {
    // One clock for the relay, its client's limiter and the double, moved by the test a
    // second at a time while anything is unfinished: a minute's window costs no minute.
    let start = Timestamp::now();
    let clock = ManualClock::new(start);
    let rig = start_with(Options {
        clock: Some(clock.clone()),
        double_clock: Some(clock.clone()),
        allowed_per_minute: Some(30),
        ..Options::default()
    })
    .await;
    // Each in its own business unit: publishing one un-publishes the others of its week.
    let ids: Vec<ScheduleRef> = (1..=12)
        .map(|n| ScheduleRef {
            business_unit: format!("bu-t{n:02}"),
            ..schedule(&format!("t-{n:02}"))
        })
        .collect();
    for id in &ids {
        rig.double.add_schedule(id, false, 1);
    }
    for id in &ids {
        let delivery = format!("burst-{}", id.schedule_id);
        let answer = rig
            .webhook_in(&delivery, &id.business_unit, &id.schedule_id)
            .await;
        assert_eq!(answer.status().as_u16(), 202);
    }
    let published = |id: &ScheduleRef| {
        rig.double
            .schedule(id)
            .is_some_and(|v| v.snapshot.published)
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = rig.files.store.stats().await.unwrap();
        if ids.iter().all(published) && stats.pending + stats.running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still unfinished: {stats:?}");
        clock.set(clock.now() + SignedDuration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let throttled = rig
        .double
        .call_log()
        .iter()
        .filter(|c| c.status == Some(429))
        .count();
    assert!(throttled <= 1, "{throttled} answers were 429");
    assert_eq!(rig.writes(), 12);
    assert_eq!(rig.double.conflicts(), 0);
    let failures = entries(&rig.files.audit_path)
        .iter()
        .filter(|e| e["event"]["kind"] == "outcome" && e["event"]["outcome"]["result"] == "failed")
        .count();
    assert_eq!(failures, 0);
    rig.relay.shutdown().await.unwrap();
}
