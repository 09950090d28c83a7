//! The real `publish-guard` binary, as an operator runs it: `serve --config` on an ephemeral
//! port in front of the API double, signed webhooks over loopback. kill -9 mid-storm and a
//! restart lose nothing accepted and write no step twice; SIGHUP with a broken rules file
//! keeps the old policy, with a good one the next cycle decides under the new version;
//! SIGTERM exits 0 with a verifiable audit log; `serve --demo` prints commands that work.

use crate::process_support;

use crate::process_support::{
    Served, Setup, audit_entries, audit_verifies, double, drafts, eventually, metric, metrics,
    schedule, send_signed, settled, signed, unique_steps, week_of,
};
use jiff::SignedDuration;
use publish_guard::api::double::CallKind;
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::{TriggerStatus, TriggerStore};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const SERVE_RULES: &str = include_str!("../fixtures/relay/serve.rules");
const FROZEN_RULES: &str = include_str!("../fixtures/relay/frozen.rules");
const BROKEN_RULES: &str = include_str!("../fixtures/relay/broken.rules");

/// A source reading the schedule from the body, so each webhook names its schedule.
const SOURCES: &str = r#"[[sources]]
name = "servicenow"
secrets_env = ["PG_TEST_WEBHOOK_SECRET"]
week = "/week"
schedule = "/schedule_id"
event = "/event"
"#;

/// The storms spread over this many draft schedules, `s-0`, `s-1`, ...
const SCHEDULES: usize = 4;

fn body(schedule_id: &str) -> String {
    json!({"week": week_of(schedule_id).to_string(), "schedule_id": schedule_id, "event": "case.updated"})
        .to_string()
}

/// Hex SHA-256 of a rules file: the policy version an audit entry names.
fn version_of(rules: &str) -> String {
    publish_guard::audit::canonical::sha256_hex(rules.as_bytes())
}

/// The decisions of the trigger phase about one schedule.
fn trigger_decisions<'e>(entries: &'e [Value], schedule_id: &str) -> Vec<&'e Value> {
    entries
        .iter()
        .map(|e| &e["event"])
        .filter(|e| {
            e["kind"] == "decision"
                && e["phase"] == "trigger"
                && e["schedule"]["schedule_id"] == schedule_id
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_storm_carries_on_every_accepted_trigger_after_a_restart() {
    kill_mid_storm_then_restart(SignedDuration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_while_publishes_are_processing_does_not_publish_them_again() {
    // A publish stays Processing for 3 s: the kill lands during it, the restart too.
    kill_mid_storm_then_restart(SignedDuration::from_secs(3)).await;
}

/// A storm of 400 signed webhooks over 4 draft schedules; kill -9 after the 150th
/// acceptance, restart on the same files, let the sender retry what went unanswered; then
/// every trigger is done, the log verifies with no step twice, and each draft was published
/// exactly once with no 409.
async fn kill_mid_storm_then_restart(processing: SignedDuration) {
    const STORM: usize = 400;
    const KILL_AFTER: usize = 150;
    let double = drafts(SCHEDULES, processing).await;
    let setup = Setup::new(&double, SERVE_RULES, SOURCES);
    let http = reqwest::Client::new();
    let mut served = setup.serve();

    // The storm, 16 at a time; the relay is killed once 150 have been accepted.
    let (results, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let storm = {
        let (http, url) = (http.clone(), served.url(""));
        tokio::spawn(async move {
            use futures_util::StreamExt;
            futures_util::stream::iter(0..STORM)
                .for_each_concurrent(16, |n| {
                    let (http, url, results) = (http.clone(), url.clone(), results.clone());
                    async move {
                        let id = format!("storm-{n}");
                        let answer = signed(&http, &url, "servicenow", &id, &body(&schedule_of(n)))
                            .send()
                            .await;
                        let receipt = match answer {
                            Ok(a) if a.status().as_u16() == 202 => receipt_of(a.json().await),
                            _ => None,
                        };
                        let _ = results.send((n, receipt));
                    }
                })
                .await;
        })
    };
    let mut receipts: BTreeMap<usize, String> = BTreeMap::new();
    let mut unanswered = Vec::new();
    while let Some((n, receipt)) = answered.recv().await {
        match receipt {
            Some(receipt) => {
                receipts.insert(n, receipt);
                if receipts.len() == KILL_AFTER {
                    served.kill9();
                }
            }
            None => unanswered.push(n),
        }
    }
    storm.await.unwrap();
    assert!(receipts.len() >= KILL_AFTER, "{} accepted", receipts.len());
    assert!(!unanswered.is_empty(), "the kill did not land mid-storm");

    // Restart on the same store and audit log. A sender retries what went unanswered: each
    // is new (202) or was stored before the kill and answers its first receipt (200).
    let mut served = setup.serve();
    for &n in &unanswered {
        let id = format!("storm-{n}");
        let (status, answer) =
            send_signed(&http, &served, "servicenow", &id, &body(&schedule_of(n)))
                .await
                .unwrap();
        assert!(status == 202 || status == 200, "{status} {answer}");
        receipts.insert(n, answer["receipt"].as_str().unwrap().to_owned());
    }
    // What was acknowledged before the kill is remembered after it.
    let (&n, first) = receipts.iter().next().unwrap();
    let (status, again) = send_signed(
        &http,
        &served,
        "servicenow",
        &format!("storm-{n}"),
        &body(&schedule_of(n)),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, again["receipt"].as_str()),
        (200, Some(first.as_str()))
    );

    settled(&http, &served).await;
    served.signal("TERM");
    assert!(served.wait_exit().success(), "{}", served.stderr());

    let store = SqliteStore::open(&setup.store).unwrap();
    assert_eq!(receipts.len(), STORM);
    for receipt in receipts.values() {
        let stored = store.get(receipt).await.unwrap();
        let status = stored.map(|t| t.status);
        assert_eq!(status, Some(TriggerStatus::Done), "{receipt}");
    }
    audit_verifies(&setup.audit);
    let entries = audit_entries(&setup.audit);
    let steps = unique_steps(&entries);
    for receipt in receipts.values() {
        assert!(
            steps.contains(&format!("{receipt}/received")),
            "{receipt} not audited"
        );
    }
    // Each draft was published exactly once, crash or not, and nothing met a 409.
    assert_eq!(double.calls(CallKind::Update), SCHEDULES);
    assert_eq!(double.conflicts(), 0);
    for s in 0..SCHEDULES {
        let id = format!("s-{s}");
        let view = double.schedule(&schedule(week_of(&id), &id)).unwrap();
        assert!(view.snapshot.published, "s-{s}");
    }
}

/// The schedule the `n`-th webhook of a storm is about.
fn schedule_of(n: usize) -> String {
    format!("s-{}", n % SCHEDULES)
}

fn receipt_of(json: Result<Value, reqwest::Error>) -> Option<String> {
    Some(json.ok()?["receipt"].as_str()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_file_keeps_the_policy_and_with_a_good_one_the_next_cycle_uses_it() {
    let double = double(SignedDuration::ZERO).await;
    for id in ["s-1", "s-2"] {
        double.add_schedule(&schedule(week_of(id), id), false, 1);
    }
    let setup = Setup::new(&double, SERVE_RULES, SOURCES);
    let http = reqwest::Client::new();
    let mut served = setup.serve();
    let (serve_version, frozen_version) = (version_of(SERVE_RULES), version_of(FROZEN_RULES));
    let readyz = |served: &Served| {
        let (http, url) = (http.clone(), served.url("/readyz"));
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(readyz(&served).await.contains(&serve_version));

    std::fs::write(&setup.rules, BROKEN_RULES).unwrap();
    served.signal("HUP");
    let rejected = r#"publish_guard_reloads_total{result="rejected"}"#;
    eventually("the broken file rejected", || async {
        (metric(&metrics(&http, &served).await, rejected) == Some(1.0)).then_some(())
    })
    .await;
    assert!(readyz(&served).await.contains(&serve_version));
    // The log says so too (its line is written just after the count).
    let log = eventually("the rejection logged", || async {
        let log = served.stderr();
        log.contains("the running policy stays").then_some(log)
    })
    .await;
    assert!(log.contains("unknown fact `schedule.colour`"), "{log}");
    // The old policy still decides: the draft is published.
    let (status, _) = send_signed(&http, &served, "servicenow", "before", &body("s-1"))
        .await
        .unwrap();
    assert_eq!(status, 202);
    settled(&http, &served).await;

    std::fs::write(&setup.rules, FROZEN_RULES).unwrap();
    served.signal("HUP");
    let ok = r#"publish_guard_reloads_total{result="ok"}"#;
    eventually("the good file loaded", || async {
        (metric(&metrics(&http, &served).await, ok) == Some(1.0)).then_some(())
    })
    .await;
    assert!(readyz(&served).await.contains(&frozen_version));
    let (status, _) = send_signed(&http, &served, "servicenow", "after", &body("s-2"))
        .await
        .unwrap();
    assert_eq!(status, 202);
    settled(&http, &served).await;
    served.signal("TERM");
    assert!(served.wait_exit().success(), "{}", served.stderr());

    audit_verifies(&setup.audit);
    let entries = audit_entries(&setup.audit);
    let before = trigger_decisions(&entries, "s-1");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["policy_version"], serve_version.as_str());
    assert_eq!(before[0]["action"], "publish");
    let after = trigger_decisions(&entries, "s-2");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["policy_version"], frozen_version.as_str());
    assert_eq!(after[0]["detail"], "change freeze");
    assert_eq!(
        double.calls(CallKind::Update),
        1,
        "the freeze published nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_with_a_verifiable_log_and_nothing_accepted_lost() {
    stop_with_sigterm_then_restart(SignedDuration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_stopped_while_publishes_are_processing_carries_them_on_after_a_restart() {
    stop_with_sigterm_then_restart(SignedDuration::from_secs(3)).await;
}

/// 60 accepted webhooks over 4 drafts, SIGTERM once a publish is answered: exit 0, a
/// verifiable log, every trigger done or still pending; the next start finishes them all.
async fn stop_with_sigterm_then_restart(processing: SignedDuration) {
    const SENT: usize = 60;
    let double = drafts(SCHEDULES, processing).await;
    let setup = Setup::new(&double, SERVE_RULES, SOURCES);
    let http = reqwest::Client::new();
    let mut served = setup.serve();
    let answers = futures_util::future::join_all((0..SENT).map(|n| {
        let (http, served) = (&http, &served);
        async move {
            let id = format!("term-{n}");
            send_signed(http, served, "servicenow", &id, &body(&schedule_of(n))).await
        }
    }))
    .await;
    let receipts: Vec<String> = answers
        .into_iter()
        .map(|a| {
            let (status, answer) = a.unwrap();
            assert_eq!(status, 202, "{answer}");
            answer["receipt"].as_str().unwrap().to_owned()
        })
        .collect();
    // Stop as soon as a publish was answered, with the rest likely in flight.
    let publish = r#"publish_guard_api_calls_total{kind="publish",status="200"}"#;
    eventually("a publish answered", || async {
        metric(&metrics(&http, &served).await, publish).map(|_| ())
    })
    .await;
    served.signal("TERM");
    let status = served.wait_exit();
    assert!(status.success(), "{status:?}\n{}", served.stderr());
    assert!(served.stderr().contains("relay stopped"));
    audit_verifies(&setup.audit);
    unique_steps(&audit_entries(&setup.audit));

    let store = SqliteStore::open(&setup.store).unwrap();
    for receipt in &receipts {
        let stored = store.get(receipt).await.unwrap().map(|t| t.status);
        assert!(
            matches!(stored, Some(TriggerStatus::Done | TriggerStatus::Pending)),
            "{receipt}: {stored:?} after a graceful stop"
        );
    }
    drop(store);

    // Whatever was left pending is finished by the next start.
    let mut served = setup.serve();
    settled(&http, &served).await;
    served.signal("TERM");
    assert!(served.wait_exit().success());
    audit_verifies(&setup.audit);
    unique_steps(&audit_entries(&setup.audit));
    let store = SqliteStore::open(&setup.store).unwrap();
    for receipt in &receipts {
        let stored = store.get(receipt).await.unwrap().map(|t| t.status);
        assert_eq!(stored, Some(TriggerStatus::Done), "{receipt}");
    }
}

/// Shell words of one command line: `'...'` literal, `"..."` with `$name` from `vars`.
fn shell_words(line: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let expand = |text: &str| {
        vars.iter().fold(text.to_owned(), |t, (name, value)| {
            t.replace(&format!("${name}"), value)
        })
    };
    let mut words = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let (word, after) = match rest.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                let end = rest[1..].find(quote).unwrap() + 1;
                let inner = &rest[1..end];
                let word = if quote == '"' {
                    expand(inner)
                } else {
                    inner.to_owned()
                };
                (word, &rest[end + 1..])
            }
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (expand(&rest[..end]), &rest[end..])
            }
        };
        words.push(word);
        rest = after.trim_start();
    }
    words
}

/// The text after `marker` on the first line holding it, up to whitespace or `end`.
fn after<'t>(text: &'t str, marker: &str, end: &[char]) -> &'t str {
    let line = text.lines().find(|l| l.contains(marker)).unwrap();
    let start = line.find(marker).unwrap() + marker.len();
    let tail = &line[start..];
    let stop = tail
        .find(|c: char| c.is_whitespace() || end.contains(&c))
        .unwrap_or(tail.len());
    &tail[..stop]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_prints_commands_that_work_and_shows_the_decision() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use hmac::{KeyInit, Mac};
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let args = ["serve", "--demo", "--listen", "127.0.0.1:0", "--demo-dir"];
    let mut args: Vec<&str> = args.to_vec();
    args.push(demo_dir.to_str().unwrap());
    let mut served = Served::start(&args, &[]);
    let printed = served.stderr();

    // The printed recipe: a body, an HMAC keyed with the hex key over "$id.$ts.$body",
    // then curl with the headers.
    let body = after(&printed, "body='", &['\'']).to_owned();
    let key = hex::decode(after(&printed, "hexkey:", &[])).unwrap();
    assert!(printed.contains(r#"printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC"#));
    let (id, ts) = (
        "msg-4242".to_owned(),
        jiff::Timestamp::now().as_second().to_string(),
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let sig = BASE64.encode(mac.finalize().into_bytes());
    let start = printed.find("curl -sS http").unwrap();
    let command = printed[start..]
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let command = command.replace('\\', " ");
    let vars = [
        ("body", body.as_str()),
        ("sig", &sig),
        ("id", &id),
        ("ts", &ts),
    ];
    let words = shell_words(&command, &vars);
    let url = words.iter().find(|w| w.starts_with("http://")).unwrap();
    let http = reqwest::Client::new();
    let mut request = http.post(url);
    let mut pairs = words.windows(2);
    while let Some([flag, value]) = pairs.next() {
        match flag.as_str() {
            "-H" => {
                let (name, value) = value.split_once(':').unwrap();
                request = request.header(name.trim(), value.trim());
            }
            "-d" => request = request.body(value.clone()),
            _ => {}
        }
    }
    let answer = request.send().await.unwrap();
    assert_eq!(
        answer.status().as_u16(),
        202,
        "{}",
        answer.text().await.unwrap()
    );

    // The printed `whsec_` secret signs for the same source (the ServiceNow script's form).
    let secret = after(&printed, "secret whsec_", &[')', ';']);
    let source_url = url.clone();
    let secret: publish_guard::relay::webhook_auth::WebhookSecret =
        format!("whsec_{secret}").parse().unwrap();
    let ts = jiff::Timestamp::now().as_second().to_string();
    let answer = http
        .post(source_url)
        .header("content-type", "application/json")
        .header("webhook-id", "msg-4243")
        .header("webhook-timestamp", &ts)
        .header(
            "webhook-signature",
            secret.signature_header("msg-4243", &ts, body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);

    // Then the decision shows in the printed metrics URL and audit log.
    let metrics_url = format!(
        "http://{}/metrics",
        after(&printed, "curl -sS http://", &['/'])
    );
    let publish = r#"publish_guard_decisions_total{phase="trigger",rule="ready",action="publish"}"#;
    eventually("the demo's publish decision", || async {
        let text = http
            .get(&metrics_url)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (metric(&text, publish) == Some(1.0)).then_some(())
    })
    .await;
    let audit = after(&printed, "publish-guard audit verify ", &[]);
    audit_verifies(std::path::Path::new(audit));
    let show = std::process::Command::new(process_support::BIN)
        .args(["audit", "show", audit])
        .output()
        .unwrap();
    let show = String::from_utf8(show.stdout).unwrap();
    assert!(
        show.contains("decision") && show.contains("rule=ready"),
        "{show}"
    );

    // And the printed reload command reloads.
    let start = printed.find("curl -sS -X POST http").unwrap();
    let command = printed[start..].lines().next().unwrap();
    let words = shell_words(command, &[]);
    let url = words.iter().find(|w| w.ends_with("/admin/reload")).unwrap();
    let authorization = words
        .iter()
        .find(|w| w.starts_with("authorization:"))
        .unwrap();
    let (name, value) = authorization.split_once(':').unwrap();
    let answer = http
        .post(url)
        .header(name, value.trim())
        .send()
        .await
        .unwrap();
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["reloaded"], true, "{answer}");
    served.signal("TERM");
    assert!(served.wait_exit().success(), "{}", served.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_store_and_audit_log_is_refused_naming_the_first() {
    let double = drafts(SCHEDULES, SignedDuration::ZERO).await;
    let setup = Setup::new(&double, SERVE_RULES, SOURCES);
    let mut first = setup.serve();
    let (code, stderr) = setup.serve_refused();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by PID {}", first.pid())),
        "{stderr}"
    );
    // The first carries on undisturbed.
    let http = reqwest::Client::new();
    let (status, _) = send_signed(&http, &first, "servicenow", "after-refusal", &body("s-0"))
        .await
        .unwrap();
    assert_eq!(status, 202);
    settled(&http, &first).await;
    first.signal("TERM");
    assert!(first.wait_exit().success(), "{}", first.stderr());
    audit_verifies(&setup.audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refuses_a_store_that_lost_its_history_and_an_audit_chain_that_is_broken() {
    let double = drafts(SCHEDULES, SignedDuration::ZERO).await;
    let setup = Setup::new(&double, SERVE_RULES, SOURCES);
    let http = reqwest::Client::new();
    let mut served = setup.serve();
    let (status, _) = send_signed(&http, &served, "servicenow", "d-1", &body("s-0"))
        .await
        .unwrap();
    assert_eq!(status, 202);
    settled(&http, &served).await;
    served.signal("TERM");
    assert!(served.wait_exit().success(), "{}", served.stderr());

    // The store deleted, then emptied: either way the audit log knows a trigger it lacks.
    let kept = setup.dir.path().join("relay.db.kept");
    std::fs::rename(&setup.store, &kept).unwrap();
    for lost in ["deleted", "emptied"] {
        if lost == "emptied" {
            std::fs::write(&setup.store, b"").unwrap();
        }
        let (code, stderr) = setup.serve_refused();
        assert_eq!(code, Some(2), "{lost}: {stderr}");
        assert!(
            stderr.contains("does not hold trigger rcpt_"),
            "{lost}: {stderr}"
        );
        assert!(
            stderr.contains("Restore the store from a backup"),
            "{stderr}"
        );
        for sidecar in ["relay.db", "relay.db-wal", "relay.db-shm"] {
            let _ = std::fs::remove_file(setup.dir.path().join(sidecar));
        }
    }
    std::fs::rename(&kept, &setup.store).unwrap();

    // A chain with an entry cut out of its middle is not appended to.
    let text = std::fs::read_to_string(&setup.audit).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(1);
    std::fs::write(&setup.audit, format!("{}\n", lines.join("\n"))).unwrap();
    let (code, stderr) = setup.serve_refused();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("the chain does not verify"), "{stderr}");
    assert!(
        stderr.contains("mv audit.jsonl audit.jsonl.broken"),
        "{stderr}"
    );
    let after: Vec<String> = std::fs::read_to_string(&setup.audit)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(after.len(), lines.len(), "nothing appended");
}
