//! The ServiceNow business rule (examples/servicenow/publish-guard-webhook.js) against the
//! relay, without ServiceNow or Node: its recorded request (tests/fixtures/
//! servicenow-request.json, made by `node examples/servicenow/run-locally.js
//! https://relay.example.com/webhooks/servicenow whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
//! --print --at 1798000000`) carries the fields the script builds, its signature is the
//! generateMac HMAC the relay verifies, and the real binary with the default ServiceNow
//! mapping maps its body to the week's newest schedule.

use crate::process_support::{
    SECRET, Setup, audit_entries, audit_verifies, double, schedule, send_signed, settled,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use jiff::{SignedDuration, Timestamp, ToSpan};
use publish_guard::api::double::CallKind;
use publish_guard::relay::webhook_auth::{
    AuthError, SignatureVerifier, SignedHeaders, WebhookSecret,
};
use serde_json::Value;
use std::collections::BTreeSet;

const SCRIPT: &str = include_str!("../../examples/servicenow/publish-guard-webhook.js");
const REQUEST: &str = include_str!("../fixtures/servicenow-request.json");
const SERVE_RULES: &str = include_str!("../fixtures/relay/serve.rules");

struct Recorded {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

fn recorded() -> Recorded {
    let request: Value = serde_json::from_str(REQUEST).unwrap();
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    Recorded {
        id: text(&request["headers"]["webhook-id"]),
        timestamp: text(&request["headers"]["webhook-timestamp"]),
        signature: text(&request["headers"]["webhook-signature"]),
        body: text(&request["body"]),
    }
}

/// The field names of the object the script passes to `JSON.stringify`.
fn script_body_fields() -> BTreeSet<String> {
    let start = SCRIPT.find("JSON.stringify({").unwrap();
    let end = start + SCRIPT[start..].find("});").unwrap();
    SCRIPT[start..end]
        .lines()
        .skip(1)
        .filter_map(|line| Some(line.split_once(':')?.0.trim().to_owned()))
        .collect()
}

/// What GlideCertificateEncryption.generateMac(key, "HmacSHA256", data) answers, as
/// ServiceNow documents it: HMAC under the base64-decoded key, in base64.
fn generate_mac(key_base64: &str, data: &str) -> String {
    let key = BASE64.decode(key_base64).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(data.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[test]
fn the_recorded_request_carries_the_fields_the_script_builds() {
    let fields = script_body_fields();
    assert_eq!(
        fields,
        ["event", "table", "sys_id", "number"]
            .map(String::from)
            .into()
    );
    let body: Value = serde_json::from_str(&recorded().body).unwrap();
    let recorded: BTreeSet<String> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(recorded, fields, "regenerate the fixture from the script");
    assert_eq!(body["event"], "case.updated");
    let request: Value = serde_json::from_str(REQUEST).unwrap();
    assert_eq!(request["method"], "POST");
    assert_eq!(request["headers"]["Content-Type"], "application/json");
}

#[test]
fn the_scripts_signature_is_the_one_the_relay_verifies() {
    let r = recorded();
    let key = SECRET.strip_prefix("whsec_").unwrap();
    let mac = generate_mac(key, &format!("{}.{}.{}", r.id, r.timestamp, r.body));
    assert_eq!(r.signature, format!("v1,{mac}"));

    let verifier = SignatureVerifier::new(vec![SECRET.parse::<WebhookSecret>().unwrap()]);
    let sent_at = Timestamp::from_second(r.timestamp.parse().unwrap()).unwrap();
    let headers = |signature| SignedHeaders {
        id: Some(&r.id),
        timestamp: Some(&r.timestamp),
        signature: Some(signature),
    };
    let verified = verifier.verify(headers(&r.signature), r.body.as_bytes(), sent_at);
    assert_eq!(verified.map(|v| v.id), Ok(r.id.clone()));

    // The mistake the script's comment warns of: base64-encoding the whole `whsec_` text.
    let wrong_key = BASE64.encode(SECRET);
    let wrong = format!(
        "v1,{}",
        generate_mac(&wrong_key, &format!("{}.{}.{}", r.id, r.timestamp, r.body))
    );
    let refused = verifier.verify(headers(&wrong), r.body.as_bytes(), sent_at);
    assert_eq!(refused, Err(AuthError::NoMatchingSignature));
    // Sent more than five minutes ago, it is refused as a possible replay.
    let late = sent_at.checked_add(6.minutes()).unwrap();
    let stale = verifier.verify(headers(&r.signature), r.body.as_bytes(), late);
    assert!(matches!(stale, Err(AuthError::Stale { .. })), "{stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_servicenow_mapping_sends_the_scripts_body_to_the_weeks_newest_schedule() {
    let double = double(SignedDuration::ZERO).await;
    // The week containing now in the policy's time zone (and the next, should the test run
    // across midnight on a Sunday), each with an older and a newer schedule.
    let today = Timestamp::now().in_tz("Europe/London").unwrap().date();
    let monday = today
        .checked_sub(i64::from(today.weekday().to_monday_zero_offset()).days())
        .unwrap();
    let weeks = [monday, monday.checked_add(7.days()).unwrap()];
    for week in weeks {
        double.add_schedule(&schedule(week, "older"), false, 1);
        double.add_schedule(&schedule(week, "newer"), false, 1);
    }
    // The source as examples/relay.toml's, with every mapping default.
    let sources =
        "[[sources]]\nname = \"servicenow\"\nsecrets_env = [\"PG_TEST_WEBHOOK_SECRET\"]\n";
    let setup = Setup::new(&double, SERVE_RULES, sources);
    let http = reqwest::Client::new();
    let mut served = setup.serve();
    let r = recorded();
    let (status, first) = send_signed(&http, &served, "servicenow", &r.id, &r.body)
        .await
        .unwrap();
    assert_eq!(status, 202, "{first}");
    // The same change sent again (a rerun of the rule) is a repeat, not a new trigger.
    let (status, again) = send_signed(&http, &served, "servicenow", &r.id, &r.body)
        .await
        .unwrap();
    assert_eq!((status, &again["receipt"]), (200, &first["receipt"]));
    settled(&http, &served).await;
    served.signal("TERM");
    assert!(served.wait_exit().success(), "{}", served.stderr());

    audit_verifies(&setup.audit);
    let entries = audit_entries(&setup.audit);
    let received: Vec<&Value> = entries
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["kind"] == "trigger_received")
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    let trigger = received[0];
    assert_eq!(trigger["source"], "servicenow");
    assert_eq!(trigger["event"], "case.updated");
    assert_eq!(trigger["delivery_id"], r.id.as_str());
    assert_eq!(trigger["schedule"]["business_unit"], "bu-1");
    assert_eq!(trigger["schedule"]["schedule_id"], "newer");
    let week = trigger["schedule"]["week"].as_str().unwrap();
    assert!(weeks.iter().any(|w| w.to_string() == week), "{week}");
    assert_eq!(double.calls(CallKind::Update), 1);
}
