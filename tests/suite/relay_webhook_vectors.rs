//! The Standard Webhooks test vector and its rejection cases, from the fixture file: every
//! valid case verifies, every invalid case is rejected for the reason it describes.

use jiff::Timestamp;
use publish_guard::relay::webhook_auth::{
    AuthError, SignatureVerifier, SignedHeaders, WebhookSecret,
};
use serde_json::Value;

/// One request from the fixture: the valid case with a case's overrides applied.
struct Case {
    why: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    now: i64,
}

fn field(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn load() -> (Value, Vec<Case>, Vec<Case>) {
    let text = std::fs::read_to_string("tests/fixtures/standard-webhooks.json").unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let valid = file["valid"].clone();
    let case = |over: &Value| Case {
        why: field(over, "why").unwrap_or_else(|| "the published vector".into()),
        id: field(over, "webhook-id")
            .or(field(&valid, "webhook-id"))
            .unwrap(),
        timestamp: field(over, "webhook-timestamp")
            .or(field(&valid, "webhook-timestamp"))
            .unwrap(),
        signature: field(over, "webhook-signature")
            .or(field(&valid, "webhook-signature"))
            .unwrap(),
        body: field(over, "body").or(field(&valid, "body")).unwrap(),
        now: over
            .get("now")
            .or(valid.get("now"))
            .and_then(Value::as_i64)
            .unwrap(),
    };
    let mut accepted = vec![case(&valid)];
    accepted.extend(file["also_valid"].as_array().unwrap().iter().map(case));
    let rejected = file["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(case)
        .collect();
    (file, accepted, rejected)
}

fn verify(verifier: &SignatureVerifier, case: &Case) -> Result<(), AuthError> {
    let headers = SignedHeaders {
        id: Some(&case.id),
        timestamp: Some(&case.timestamp),
        signature: Some(&case.signature),
    };
    verifier
        .verify(
            headers,
            case.body.as_bytes(),
            Timestamp::from_second(case.now).unwrap(),
        )
        .map(|_| ())
}

fn verifier(file: &Value) -> SignatureVerifier {
    let secret: WebhookSecret = file["secret"].as_str().unwrap().parse().unwrap();
    SignatureVerifier::new(vec![secret])
}

#[test]
fn every_valid_case_is_accepted() {
    let (file, accepted, _) = load();
    assert_eq!(accepted.len(), 2);
    for case in &accepted {
        assert_eq!(verify(&verifier(&file), case), Ok(()), "{}", case.why);
    }
}

#[test]
fn every_invalid_case_is_rejected_for_its_reason() {
    let (file, _, rejected) = load();
    let verifier = verifier(&file);
    let reasons: Vec<String> = rejected
        .iter()
        .map(|case| match verify(&verifier, case) {
            Ok(()) => panic!("accepted: {}", case.why),
            Err(e) => format!("{} -> {e}", case.why),
        })
        .collect();
    assert_eq!(reasons.len(), 8);
    insta::assert_snapshot!(reasons.join("\n"));
}

#[test]
fn a_rotated_secret_set_accepts_old_and_new_signers() {
    let (file, accepted, _) = load();
    let old: WebhookSecret = file["secret"].as_str().unwrap().parse().unwrap();
    let new: WebhookSecret = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="
        .parse()
        .unwrap();
    let rotated = SignatureVerifier::new(vec![new.clone(), old]);
    let only_new = SignatureVerifier::new(vec![new.clone()]);
    let case = &accepted[0];
    assert_eq!(verify(&rotated, case), Ok(()));
    assert_eq!(verify(&only_new, case), Err(AuthError::NoMatchingSignature));
    // A message signed by the new secret alone passes the rotated set too.
    let signature = new.signature_header(&case.id, &case.timestamp, case.body.as_bytes());
    let resigned = Case {
        signature,
        why: "re-signed".into(),
        id: case.id.clone(),
        timestamp: case.timestamp.clone(),
        body: case.body.clone(),
        now: case.now,
    };
    assert_eq!(verify(&rotated, &resigned), Ok(()));
}
