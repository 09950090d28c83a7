//! `publish-guard serve --demo`: the relay in front of an in-process model of the Genesys API
//! (the same model the simulator and the test double use, served on loopback), with one draft
//! schedule for the current week, so a newcomer sees decisions, metrics and the audit log
//! without a Genesys org. It prints the commands that send it a signed webhook.

use crate::api::ScheduleRef;
use crate::api::double::{ApiDouble, DoubleConfig};
use crate::api::genesys::{GenesysClient, GenesysConfig};
use crate::api::model::ModelConfig;
use crate::api::region::Endpoints;
use crate::api::secret::Secret;
use crate::audit::log::{AuditLog, AuditOptions};
use crate::audit::writer::AuditWriter;
use crate::cli::serve_loop::run_until_stopped;
use crate::cli::{CliError, Outcome};
use crate::effects::clock::SystemClock;
use crate::relay::intake::{DEFAULT_BODY_LIMIT, Source, SourceAuth};
use crate::relay::leader::Leadership;
use crate::relay::mapping::{Field, Mapping};
use crate::relay::rules::Rules;
use crate::relay::server::{Relay, RelaySettings};
use crate::relay::sqlite_store::SqliteStore;
use crate::relay::webhook_auth::{SignatureVerifier, WebhookSecret};
use crate::runner::RunnerConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The demo's business unit.
const BUSINESS_UNIT: &str = "demo-bu";
/// The demo's webhook source (a policy source outside the after-hours rule).
const SOURCE: &str = "manual";
/// How long a demo publish stays `Processing`, so a burst meets one in flight.
const PROCESSING_SECS: i64 = 10;

/// Serve the demo on `listen`, keeping its files in `dir`.
pub async fn demo(listen: SocketAddr, dir: &std::path::Path) -> Result<Outcome, CliError> {
    let usage = |e: &dyn std::fmt::Display| CliError::Usage(e.to_string());
    std::fs::create_dir_all(dir).map_err(|e| usage(&e))?;
    let rules_path = dir.join("default.rules");
    if !rules_path.exists() {
        std::fs::write(&rules_path, include_str!("../../rules/default.rules"))
            .map_err(|e| usage(&e))?;
    }
    let rules = Rules::load(&rules_path).map_err(|e| usage(&e))?;
    let timezone = rules.current().timezone.clone();
    let today = timezone.to_datetime(jiff::Timestamp::now()).date();
    let back = jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset()));
    let week = today.checked_sub(back).map_err(|e| usage(&e))?;

    let double = ApiDouble::start(DoubleConfig {
        model: ModelConfig {
            processing_time: jiff::SignedDuration::from_secs(PROCESSING_SECS),
            ..ModelConfig::default()
        },
        ..DoubleConfig::default()
    })
    .await
    .map_err(|e| usage(&e))?;
    let schedule = ScheduleRef {
        business_unit: BUSINESS_UNIT.into(),
        week,
        schedule_id: "demo-schedule".into(),
    };
    double.add_schedule(&schedule, false, 1);
    let client_config = GenesysConfig::new(
        Endpoints::explicit(double.base_url(), double.base_url()),
        double.client_id(),
        Secret::new(double.client_secret()),
    );

    let key: [u8; 24] = rand::random();
    let secret_text = format!("whsec_{}", BASE64.encode(key));
    let secret: WebhookSecret = secret_text.parse().map_err(|e| usage(&e))?;
    let admin_token = hex::encode(rand::random::<[u8; 16]>());
    let source = Source {
        auth: SourceAuth::Signed(SignatureVerifier::new(vec![secret])),
        mapping: Mapping {
            business_unit: Field::Fixed(BUSINESS_UNIT.into()),
            week: Field::Fixed("current".into()),
            schedule_id: Field::Fixed("latest".into()),
            event: Field::Pointer("/event".into()),
            delivery_id: None,
        },
    };
    let store = SqliteStore::open(&dir.join("demo.db")).map_err(|e| usage(&e))?;
    let audit_path = dir.join("audit.jsonl");
    let log = AuditLog::open(&audit_path, AuditOptions::default()).map_err(|e| usage(&e))?;
    let settings = RelaySettings {
        sources: HashMap::from([(SOURCE.to_owned(), source)]),
        store: Arc::new(store),
        leadership: Leadership::Sole(Arc::new(AuditWriter::start(log).map_err(|e| usage(&e))?)),
        rules: Arc::new(rules),
        admin_token: Some(admin_token.clone()),
        runner: RunnerConfig::default(),
        body_limit: DEFAULT_BODY_LIMIT,
        connections: Default::default(),
        clock: Arc::new(SystemClock),
        notifications: None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| usage(&format!("listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| usage(&e))?;
    eprint!(
        "{}",
        instructions(
            addr,
            &secret_text,
            &hex::encode(key),
            &admin_token,
            dir,
            &schedule
        )
    );
    let client = GenesysClient::new(client_config, Arc::new(SystemClock)).map_err(|e| usage(&e))?;
    let outcome = run_until_stopped(Relay::start(settings, move || client, listener)).await;
    double.shutdown().await;
    outcome
}

/// This program as the instructions name it: the running binary's path, so the commands
/// work whether or not it is on `PATH`.
fn this_program() -> String {
    std::env::current_exe()
        .map(|path| shell_quoted(&path.display().to_string()))
        .unwrap_or_else(|_| "publish-guard".to_owned())
}

/// `text` as one shell word: bare when it holds only safe characters, else single-quoted.
fn shell_quoted(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What to type in another terminal.
fn instructions(
    addr: SocketAddr,
    secret: &str,
    key_hex: &str,
    admin: &str,
    dir: &std::path::Path,
    schedule: &ScheduleRef,
) -> String {
    let rules = dir.join("default.rules");
    let audit = dir.join("audit.jsonl");
    format!(
        r#"publish-guard demo: a relay in front of an in-process model of the Genesys API
  one draft schedule: {bu} / week {week} / {id} (a publish stays Processing for {PROCESSING_SECS}s)
  files: {dir}

Send signed webhooks (Standard Webhooks, HMAC-SHA256, secret {secret});
in another terminal (bash or zsh), define `send`, then send one, or ten at once:

  send() {{
    id=msg-$(od -An -N8 -tx8 /dev/urandom | tr -d ' '); ts=$(date +%s); body='{{"event":"case.updated"}}'
    sig=$(printf '%s' "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt hexkey:{key_hex} -binary | base64)
    curl -sS http://{addr}/webhooks/{SOURCE} -H 'content-type: application/json' \
      -H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" -d "$body" -w '\n'
  }}
  send
  for i in 1 2 3 4 5 6 7 8 9 10; do send & done; wait

Ten at once: the relay evaluates one at a time and coalesces the rest into one further
evaluation; the metrics and the audit log show it.

Or run the ServiceNow business rule against it (README, "Wiring ServiceNow to the relay"):

  node examples/servicenow/run-locally.js http://{addr}/webhooks/{SOURCE} {secret}

Then look:

  curl -sS http://{addr}/metrics
  {program} audit show {audit}
  {program} audit verify {audit}

Edit {rules} and reload it
(a file that does not check is refused, its diagnostics answered as text):

  curl -sS -X POST http://{addr}/admin/reload -H 'accept: text/plain' -H 'authorization: Bearer {admin}'

"#,
        bu = schedule.business_unit,
        week = schedule.week,
        id = schedule.schedule_id,
        dir = dir.display(),
        rules = rules.display(),
        audit = audit.display(),
        program = this_program(),
    )
}
