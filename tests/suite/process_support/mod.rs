//! What the process-level tests share: the real `publish-guard` binary serving on an
//! ephemeral port in front of the API double (in the test process), its configuration,
//! signals, bounded polling, and readers for its metrics, audit log and store.

#![allow(dead_code)] // each test file uses its own part of this

use jiff::SignedDuration;
use jiff::civil::Date;
use publish_guard::api::ScheduleRef;
use publish_guard::api::double::{ApiDouble, DoubleConfig};
use publish_guard::api::model::ModelConfig;
use publish_guard::relay::webhook_auth::WebhookSecret;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_publish-guard");
/// The longest any awaited condition may take (generous: the machine is shared).
pub const PATIENCE: Duration = Duration::from_secs(120);
/// The webhook secret of the test configurations.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The line `serve` prints once it listens.
const LISTENING: &str = "publish-guard relay listening on http://";

/// A running `publish-guard` process; killed when dropped.
pub struct Served {
    child: Option<Child>,
    /// The thread copying its stderr; done once the process has exited.
    reader: Option<std::thread::JoinHandle<()>>,
    pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// Start `publish-guard ARGS` with `env` and wait (bounded) until it says it listens.
    pub fn start(args: &[&str], env: &[(&str, String)]) -> Served {
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (lines, receive) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let kept = Arc::clone(&stderr);
        // Drains stderr for the process's whole life, so it never blocks on a full pipe.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = kept.lock().unwrap_or_else(PoisonError::into_inner);
                text.push_str(&line);
                text.push('\n');
                let _ = lines.send(line);
            }
        });
        let mut served = Served {
            child: Some(child),
            reader: Some(reader),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let deadline = Instant::now() + PATIENCE;
        served.addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receive.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix(LISTENING) {
                        break addr.trim().parse().unwrap();
                    }
                }
                Err(e) => panic!("no `{LISTENING}` line ({e}):\n{}", served.stderr()),
            }
        };
        served
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Send it a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {name} {}", self.pid);
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.drain();
    }

    /// Wait for the last of stderr once the process has exited.
    fn drain(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
    }

    /// Wait (bounded) for it to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the process was already reaped");
        let (done, exited) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = done.send(());
            (child, status)
        });
        if exited.recv_timeout(PATIENCE).is_err() {
            self.signal("KILL");
            panic!("it did not exit:\n{}", self.stderr());
        }
        let (_, status) = waiter.join().unwrap();
        self.drain();
        status.unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Ask `probe` until it answers `Some`, at most [`PATIENCE`]; polling a real process is
/// the only way to see it reach a state.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `GET /metrics`.
pub async fn metrics(http: &reqwest::Client, served: &Served) -> String {
    let answer = http.get(served.url("/metrics")).send().await.unwrap();
    answer.text().await.unwrap()
}

/// The value of one series (`name{labels}` exactly as rendered), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Wait until the relay's queue is empty: every stored trigger is finished.
pub async fn settled(http: &reqwest::Client, served: &Served) {
    eventually("an empty queue", || async {
        let text = metrics(http, served).await;
        (metric(&text, "publish_guard_queue_depth") == Some(0.0)).then_some(())
    })
    .await;
}

/// A signed webhook to `{base}/webhooks/{source}`, signed now, as a sender does.
pub fn signed(
    http: &reqwest::Client,
    base: &str,
    source: &str,
    id: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let secret: WebhookSecret = SECRET.parse().unwrap();
    let timestamp = jiff::Timestamp::now().as_second().to_string();
    let signature = secret.signature_header(id, &timestamp, body.as_bytes());
    http.post(format!("{base}/webhooks/{source}"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signature)
        .body(body.to_owned())
}

/// Send a signed webhook; its status and JSON answer, `Err` when the connection failed.
pub async fn send_signed(
    http: &reqwest::Client,
    served: &Served,
    source: &str,
    id: &str,
    body: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let answer = signed(http, &served.url(""), source, id, body)
        .send()
        .await?;
    let status = answer.status().as_u16();
    Ok((status, answer.json().await?))
}

/// Every audit entry (read after the writer stopped).
pub fn audit_entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The entries' steps, each of which must be there once: a restart or a retry never writes
/// a step twice.
pub fn unique_steps(entries: &[Value]) -> HashSet<String> {
    let steps: Vec<String> = entries
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<String> = steps.iter().cloned().collect();
    assert_eq!(unique.len(), steps.len(), "a step was written twice");
    unique
}

/// `publish-guard audit verify FILE` must pass.
pub fn audit_verifies(path: &Path) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A schedule of business unit `bu-1`.
pub fn schedule(week: Date, id: &str) -> ScheduleRef {
    ScheduleRef {
        business_unit: "bu-1".into(),
        week,
        schedule_id: id.into(),
    }
}

/// The API double, its publishes completing after `processing`, never throttling.
pub async fn double(processing: SignedDuration) -> ApiDouble {
    ApiDouble::start(DoubleConfig {
        model: ModelConfig {
            processing_time: processing,
            requests_per_minute: 100_000,
            ..ModelConfig::default()
        },
        ..DoubleConfig::default()
    })
    .await
    .unwrap()
}

/// The API double holding drafts `s-0` to `s-{n-1}` at version 1, whose publishes stay
/// Processing for `processing`.
pub async fn drafts(n: usize, processing: SignedDuration) -> ApiDouble {
    let double = double(processing).await;
    for s in 0..n {
        let id = format!("s-{s}");
        double.add_schedule(&schedule(week_of(&id), &id), false, 1);
    }
    double
}

/// A relay's files in a temporary directory, driving `double`.
pub struct Setup {
    /// The directory.
    pub dir: tempfile::TempDir,
    /// The configuration file.
    pub config: PathBuf,
    /// The rules file it names.
    pub rules: PathBuf,
    /// The SQLite store.
    pub store: PathBuf,
    /// The audit log.
    pub audit: PathBuf,
    env: Vec<(&'static str, String)>,
}

/// The admin token of the test configurations.
pub const ADMIN: &str = "admin-test-token";

impl Setup {
    /// Files for a relay under `rules` with the `[[sources]]` tables `sources`.
    pub fn new(double: &ApiDouble, rules: &str, sources: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let base = double.base_url();
        let config = dir.path().join("relay.toml");
        let text = format!(
            r#"backend = "genesys"
rules = "policy.rules"
business_unit = "bu-1"

[genesys]
login_url = "{base}"
api_url = "{base}"
client_id_env = "PG_TEST_CLIENT_ID"
client_secret_env = "PG_TEST_CLIENT_SECRET"

[http]
timeout = "5s"
requests_per_minute = 100000

[serve]
listen = "127.0.0.1:0"
store = "relay.db"
audit_log = "audit.jsonl"
admin_token_env = "PG_TEST_ADMIN_TOKEN"

{sources}"#
        );
        std::fs::write(&config, text).unwrap();
        let rules_path = dir.path().join("policy.rules");
        std::fs::write(&rules_path, rules).unwrap();
        let env = vec![
            ("PG_TEST_CLIENT_ID", double.client_id().to_owned()),
            ("PG_TEST_CLIENT_SECRET", double.client_secret().to_owned()),
            ("PG_TEST_ADMIN_TOKEN", ADMIN.to_owned()),
            ("PG_TEST_WEBHOOK_SECRET", SECRET.to_owned()),
        ];
        Setup {
            store: dir.path().join("relay.db"),
            audit: dir.path().join("audit.jsonl"),
            config,
            rules: rules_path,
            dir,
            env,
        }
    }

    /// `publish-guard serve --config FILE`.
    pub fn serve(&self) -> Served {
        self.serve_with(&[])
    }

    /// `publish-guard serve --config FILE` with more environment variables.
    pub fn serve_with(&self, more: &[(&str, String)]) -> Served {
        let config = self.config.to_str().unwrap();
        let env: Vec<(&str, String)> = self.env.iter().chain(more).cloned().collect();
        Served::start(&["serve", "--config", config], &env)
    }

    /// `publish-guard serve --config FILE` that is expected to refuse to start: its exit
    /// code and stderr. Fails at once if it starts listening after all.
    pub fn serve_refused(&self) -> (Option<i32>, String) {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = child.stderr.take().unwrap();
        let (lines, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut stderr = String::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receive.recv_timeout(left) {
                Ok(line) if line.starts_with(LISTENING) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("it started after all:\n{stderr}{line}");
                }
                Ok(line) => {
                    stderr.push_str(&line);
                    stderr.push('\n');
                }
                // Its stderr closed: it exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("it neither exited nor listened:\n{stderr}");
                }
            }
        }
        (child.wait().unwrap().code(), stderr)
    }
}

/// The first week the process tests' schedules are in.
pub const WEEK: Date = Date::constant(2026, 3, 30);

/// Schedule `s-N`'s own week, N weeks after [`WEEK`]: publishing one schedule un-publishes
/// another of its week, so the storms give each schedule a week of its own.
pub fn week_of(schedule_id: &str) -> Date {
    let n: i64 = schedule_id.trim_start_matches("s-").parse().unwrap_or(0);
    WEEK.checked_add(jiff::Span::new().weeks(n)).unwrap_or(WEEK)
}
