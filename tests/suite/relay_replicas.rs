//! Two `publish-guard serve` processes on one PostgreSQL database, as replicas behind a load
//! balancer: a storm spread over both with the leader killed mid-storm, the same delivery sent
//! to both at once, and a leader paused past its lease then resumed. Whatever happens, every
//! `202` ends in the audit log, each draft is published once with no 409, no step is written
//! twice, and the database's log verifies, exported or not.

use crate::pg_support::{database, query_texts};
use crate::process_support::{
    BIN, Served, Setup, audit_verifies, drafts, eventually, metric, metrics, signed, unique_steps,
    week_of,
};
use jiff::SignedDuration;
use publish_guard::api::double::{ApiDouble, CallKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVE_RULES: &str = include_str!("../fixtures/relay/serve.rules");
const SCHEDULES: usize = 4;
/// The takeover bound the README states.
const TAKEOVER: Duration = Duration::from_secs(10);

fn body(schedule_id: &str) -> String {
    json!({"week": week_of(schedule_id).to_string(), "schedule_id": schedule_id, "event": "case.updated"})
        .to_string()
}

fn schedule_of(n: usize) -> String {
    format!("s-{}", n % SCHEDULES)
}

/// Files for replica `name` on the database at `url`.
fn replica(double: &ApiDouble, name: &str) -> Setup {
    let sources = format!(
        r#"[[sources]]
name = "servicenow"
secrets_env = ["PG_TEST_WEBHOOK_SECRET"]
week = "/week"
schedule = "/schedule_id"
event = "/event"

[store]
kind = "postgres"
url_env = "PG_TEST_DATABASE_URL"
replica = "{name}"
"#
    );
    Setup::new(double, SERVE_RULES, &sources)
}

async fn readyz(http: &reqwest::Client, served: &Served) -> Option<String> {
    let answer = http.get(served.url("/readyz")).send().await.ok()?;
    answer.text().await.ok()
}

/// Wait until `served` says it leads.
async fn leads(http: &reqwest::Client, served: &Served, name: &str) {
    let leading = format!("replica {name} leads");
    eventually(&format!("{name} to lead"), || async {
        readyz(http, served).await.filter(|t| t.contains(&leading))
    })
    .await;
}

/// `publish-guard audit ARGS` with the database's URL in `PG_TEST_DATABASE_URL`.
fn audit_cli(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("audit")
        .args(args)
        .env("PG_TEST_DATABASE_URL", url)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The log verifies in the database and exported; its entries.
fn audit_of(url: &str, dir: &std::path::Path) -> Vec<Value> {
    let (ok, text) = audit_cli(url, &["verify", "--db-env", "PG_TEST_DATABASE_URL"]);
    assert!(ok && text.contains("chain intact"), "{text}");
    let exported = dir.join("exported.jsonl");
    let out = exported.to_str().unwrap();
    let (ok, text) = audit_cli(
        url,
        &["export", "--db-env", "PG_TEST_DATABASE_URL", "--out", out],
    );
    assert!(ok, "{text}");
    audit_verifies(&exported);
    std::fs::read_to_string(&exported)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Wait until no trigger is unfinished (the queue depth is the database's).
async fn settled(http: &reqwest::Client, served: &Served) {
    eventually("an empty queue", || async {
        let text = metrics(http, served).await;
        (metric(&text, "publish_guard_queue_depth") == Some(0.0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_lose_nothing_when_the_leader_is_killed_mid_storm() {
    const STORM: usize = 2_000;
    const KILL_AFTER: usize = 600;
    let Some(url) = database().await else { return };
    let env = [("PG_TEST_DATABASE_URL", url.clone())];
    let double = drafts(SCHEDULES, SignedDuration::from_secs(2)).await;
    let (setup_a, setup_b) = (replica(&double, "a"), replica(&double, "b"));
    let http = reqwest::Client::new();
    let mut a = setup_a.serve_with(&env);
    leads(&http, &a, "a").await;
    let b = setup_b.serve_with(&env);
    // A follower is ready: it takes webhooks.
    let follows = eventually("b to see a lead", || async {
        readyz(&http, &b)
            .await
            .filter(|t| t.contains("replica b follows a"))
    })
    .await;
    assert!(follows.starts_with("ready:"), "{follows}");
    let follower_metrics = metrics(&http, &b).await;
    assert_eq!(
        metric(&follower_metrics, "publish_guard_leader{replica=\"b\"}"),
        Some(0.0)
    );

    // The same delivery to both at once: one trigger, the same receipt twice.
    let twice = body("s-0");
    let (x, y) = tokio::join!(
        signed(&http, &a.url(""), "servicenow", "both", &twice).send(),
        signed(&http, &b.url(""), "servicenow", "both", &twice).send()
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut statuses = [x.status().as_u16(), y.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 202]);
    let (x, y): (Value, Value) = (x.json().await.unwrap(), y.json().await.unwrap());
    assert_eq!(x["receipt"], y["receipt"]);
    let stored = query_texts(
        &url,
        "SELECT receipt FROM triggers WHERE delivery_id = 'both'",
    )
    .await;
    assert_eq!(stored, [x["receipt"].as_str().unwrap()]);

    // The storm, alternating between the replicas, 32 at a time; the leader is killed after
    // 600 acceptances and whatever it left unanswered is sent again to the other.
    let (results, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let urls = [a.url(""), b.url("")];
    let storm = {
        let http = http.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            futures_util::stream::iter(0..STORM)
                .for_each_concurrent(32, |n| {
                    let (http, url, results) = (http.clone(), urls[n % 2].clone(), results.clone());
                    async move {
                        let id = format!("storm-{n}");
                        let answer = signed(&http, &url, "servicenow", &id, &body(&schedule_of(n)))
                            .send()
                            .await;
                        let status = answer.as_ref().map_or(0, |a| a.status().as_u16());
                        let receipt = match answer {
                            Ok(a) if matches!(status, 200 | 202) => a
                                .json::<Value>()
                                .await
                                .ok()
                                .and_then(|v| v["receipt"].as_str().map(str::to_owned)),
                            _ => None,
                        };
                        let _ = results.send((n, status, receipt));
                    }
                })
                .await;
        })
    };
    let mut receipts: BTreeMap<usize, String> = BTreeMap::new();
    let mut unanswered = Vec::new();
    let mut killed_at = None;
    while let Some((n, status, receipt)) = answered.recv().await {
        assert_ne!(status, 409, "no 409 from intake");
        match receipt {
            Some(receipt) => {
                receipts.insert(n, receipt);
                if receipts.len() == KILL_AFTER && killed_at.is_none() {
                    a.kill9();
                    killed_at = Some(Instant::now());
                }
            }
            None => unanswered.push(n),
        }
    }
    storm.await.unwrap();
    let killed_at = killed_at.unwrap();
    leads(&http, &b, "b").await;
    let takeover = killed_at.elapsed();
    for n in unanswered {
        let answer = signed(
            &http,
            &b.url(""),
            "servicenow",
            &format!("storm-{n}"),
            &body(&schedule_of(n)),
        )
        .send()
        .await
        .unwrap();
        assert!(matches!(answer.status().as_u16(), 200 | 202));
        let answer: Value = answer.json().await.unwrap();
        receipts.insert(n, answer["receipt"].as_str().unwrap().to_owned());
    }
    assert_eq!(receipts.len(), STORM);
    settled(&http, &b).await;
    assert!(
        takeover < TAKEOVER + Duration::from_secs(5),
        "took over after {takeover:?}"
    );

    let entries = audit_of(&url, setup_b.dir.path());
    let steps = unique_steps(&entries);
    for receipt in receipts.values() {
        assert!(
            steps.contains(&format!("{receipt}/received")),
            "{receipt} not audited"
        );
    }
    assert_eq!(
        double.calls(CallKind::Update),
        SCHEDULES,
        "one publish per draft"
    );
    assert_eq!(double.conflicts(), 0, "no 409");
    let terms = query_texts(
        &url,
        "SELECT DISTINCT term::TEXT FROM audit_entries ORDER BY 1",
    )
    .await;
    assert_eq!(terms, ["1", "2"], "a led, then b");
    eprintln!("takeover after kill -9: {takeover:?}");
}

/// A leader paused past its lease (SIGSTOP) and resumed: another leads meanwhile, carries on
/// the publish it left Processing without publishing again, and the resumed one writes no
/// audit entry after the new leader's first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_resumed_writes_nothing_after_the_new_leader() {
    let Some(url) = database().await else { return };
    let env = [("PG_TEST_DATABASE_URL", url.clone())];
    let double = drafts(SCHEDULES, SignedDuration::from_secs(4)).await;
    let (setup_a, setup_b) = (replica(&double, "a"), replica(&double, "b"));
    let http = reqwest::Client::new();
    let a = setup_a.serve_with(&env);
    leads(&http, &a, "a").await;
    let b = setup_b.serve_with(&env);
    // a publishes s-0 and s-1; paused while they are Processing.
    for n in 0..2 {
        let sent = signed(
            &http,
            &a.url(""),
            "servicenow",
            &format!("d{n}"),
            &body(&format!("s-{n}")),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(sent.status().as_u16(), 202);
    }
    eventually("both publishes under way", || async {
        (double.calls(CallKind::Update) == 2).then_some(())
    })
    .await;
    a.signal("STOP");
    let paused = Instant::now();
    leads(&http, &b, "b").await;
    let takeover = paused.elapsed();
    // More work for the new leader, then the old one wakes.
    for n in 2..4 {
        let sent = signed(
            &http,
            &b.url(""),
            "servicenow",
            &format!("d{n}"),
            &body(&format!("s-{n}")),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(sent.status().as_u16(), 202);
    }
    a.signal("CONT");
    eventually("a to follow", || async {
        readyz(&http, &a)
            .await
            .filter(|t| t.contains("replica a follows b"))
    })
    .await;
    settled(&http, &b).await;
    assert!(takeover < TAKEOVER, "took over after {takeover:?}");

    let entries = audit_of(&url, setup_b.dir.path());
    unique_steps(&entries);
    let last_of_a = query_texts(
        &url,
        "SELECT max(seq)::TEXT FROM audit_entries WHERE term = 1",
    )
    .await;
    let first_of_b = query_texts(
        &url,
        "SELECT min(seq)::TEXT FROM audit_entries WHERE term = 2",
    )
    .await;
    let (last_of_a, first_of_b): (u64, u64) = (
        last_of_a[0].parse().unwrap(),
        first_of_b[0].parse().unwrap(),
    );
    assert!(
        last_of_a < first_of_b,
        "a wrote entry {last_of_a} after b's first, {first_of_b}"
    );
    assert_eq!(
        double.calls(CallKind::Update),
        4,
        "each draft published once"
    );
    assert_eq!(double.conflicts(), 0, "no 409");
    eprintln!("takeover after SIGSTOP: {takeover:?}");
}
