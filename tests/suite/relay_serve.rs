//! The relay end to end over real HTTP on both sides: signed webhooks into `serve`'s relay
//! (in-process on loopback) in front of the API double. A storm for one draft schedule
//! publishes once with no 409, every accepted trigger is in the audit log and the chain
//! verifies; a broken rules file is refused with its diagnostics, a good one decides the
//! next cycle.

use crate::api_support::genesys_config;
use jiff::Timestamp;
use jiff::civil::Date;
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, CallKind, DoubleConfig};
use publish_guard::api::genesys::GenesysClient;
use publish_guard::api::model::ModelConfig;
use publish_guard::audit::checkpoint::checkpoints_path;
use publish_guard::audit::log::{AuditLog, AuditOptions};
use publish_guard::audit::verify::verify;
use publish_guard::audit::writer::AuditWriter;
use publish_guard::effects::clock::SystemClock;
use publish_guard::relay::intake::{Source, SourceAuth};
use publish_guard::relay::mapping::{Field, Mapping, ScheduleTarget};
use publish_guard::relay::rules::Rules;
use publish_guard::relay::server::{Relay, RelaySettings};
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::{Acceptance, NewTrigger, TriggerStore};
use publish_guard::relay::webhook_auth::{SignatureVerifier, WebhookSecret};
use publish_guard::runner::RunnerConfig;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    store: Arc<SqliteStore>,
    audit_path: PathBuf,
    rules_path: PathBuf,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn start() -> Rig {
    start_after_crash(0).await
}

/// A relay started on a store that already holds `left` accepted, unprocessed triggers for
/// `s-1`, as a crash right after accepting them would leave it.
async fn start_after_crash(left: usize) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(DoubleConfig {
        // A publish completes at once: no real time is spent waiting on it.
        model: ModelConfig {
            processing_time: jiff::SignedDuration::ZERO,
            requests_per_minute: 10_000,
            ..ModelConfig::default()
        },
        ..DoubleConfig::default()
    })
    .await
    .unwrap();
    double.add_schedule(&schedule("s-1"), false, 1);
    double.add_schedule(&schedule("s-2"), false, 1);
    let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
    for n in 0..left {
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
        let accepted = store.accept(trigger).await.unwrap();
        assert!(matches!(accepted, Acceptance::Accepted(_)), "{accepted:?}");
    }
    let audit_path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&audit_path, AuditOptions::default()).unwrap();
    let rules_path = dir.path().join("policy.rules");
    std::fs::write(&rules_path, SERVE_RULES).unwrap();
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
    let settings = RelaySettings {
        sources: HashMap::from([("servicenow".to_owned(), source)]),
        store: Arc::clone(&store) as Arc<dyn TriggerStore>,
        audit: Arc::new(AuditWriter::start(log).unwrap()),
        rules: Arc::new(Rules::load(&rules_path).unwrap()),
        admin_token: Some(ADMIN.into()),
        runner: RunnerConfig::default(),
        body_limit: 64 * 1024,
        clock: Arc::new(SystemClock),
    };
    let mut config = genesys_config(&double);
    config.timeout = Duration::from_secs(5);
    config.requests_per_minute = 10_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let make_api = move || GenesysClient::new(config, Arc::new(SystemClock)).unwrap();
    let relay = Relay::start(settings, make_api, listener).await.unwrap();
    Rig {
        relay,
        double,
        store,
        audit_path,
        rules_path,
        http: reqwest::Client::new(),
        dir,
    }
}

impl Rig {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.relay.addr())
    }

    /// Send one signed webhook about `schedule_id`; returns the status.
    async fn webhook(&self, id: &str, schedule_id: &str) -> u16 {
        let body = json!({
            "bu": "bu-1", "week": "2026-03-30", "schedule_id": schedule_id, "event": "case.updated",
        })
        .to_string();
        let timestamp = Timestamp::now().as_second().to_string();
        let secret: WebhookSecret = SECRET.parse().unwrap();
        let signature = secret.signature_header(id, &timestamp, body.as_bytes());
        self.http
            .post(self.url("/webhooks/servicenow"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Wait (bounded) until the store holds nothing unfinished.
    async fn settled(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let stats = self.store.stats().await.unwrap();
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

    let entries = entries(&rig.audit_path);
    let received: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e["step"].as_str())
        .filter(|step| step.ends_with("/received"))
        .collect();
    assert_eq!(received.len(), STORM, "each accepted trigger has its entry");
    let steps: HashSet<&str> = entries.iter().filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(steps.len(), entries.len(), "no step written twice");
    assert_eq!(chain_verifies(&rig.audit_path), entries.len() as u64);

    let metrics = rig.http.get(rig.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let accepted =
        format!("publish_guard_webhooks_total{{source=\"servicenow\",status=\"202\"}} {STORM}");
    assert!(metrics.contains(&accepted), "{metrics}");
    assert!(metrics.contains("publish_guard_queue_depth 0"), "{metrics}");
    rig.relay.shutdown().await.unwrap();
    drop(rig.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_rules_file_keeps_the_old_policy_and_a_good_one_decides_the_next_cycle() {
    let rig = start().await;
    let ready = rig.http.get(rig.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    std::fs::write(&rig.rules_path, BROKEN_RULES).unwrap();
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

    std::fs::write(&rig.rules_path, FROZEN_RULES).unwrap();
    let (status, answer) = rig.reload().await;
    assert_eq!(status, 200, "{answer}");
    let frozen = answer["version"].as_str().unwrap().to_owned();
    assert_eq!(rig.webhook("after", "s-2").await, 202);
    rig.settled().await;
    assert_eq!(rig.writes(), 1, "the freeze published nothing");
    let decided: Vec<Value> = entries(&rig.audit_path)
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
    chain_verifies(&rig.audit_path);

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
    let received = entries(&rig.audit_path)
        .iter()
        .filter(|e| e["event"]["kind"] == "trigger_received")
        .count();
    assert_eq!(received, 5);
    chain_verifies(&rig.audit_path);
    rig.relay.shutdown().await.unwrap();
}
