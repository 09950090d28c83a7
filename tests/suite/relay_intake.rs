//! The webhook intake over real HTTP on loopback: the Standard Webhooks vectors, a table of
//! bad requests (each with its status and problem, none stored), and repeated deliveries.

use jiff::{SignedDuration, Timestamp};
use publish_guard::effects::clock::ManualClock;
use publish_guard::relay::intake::{Intake, Source, SourceAuth};
use publish_guard::relay::mapping::{Field, Mapping};
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::TriggerStore;
use publish_guard::relay::webhook_auth::{BearerVerifier, SignatureVerifier, WebhookSecret};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: i64 = 1_614_265_330;
const LIMIT: usize = 1024;

struct Relay {
    addr: SocketAddr,
    clock: ManualClock,
    store: Arc<SqliteStore>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn secret() -> WebhookSecret {
    SECRET.parse().unwrap()
}

/// A relay on loopback whose clock stands at `now` (Unix seconds).
async fn start_at(now: i64) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap());
    let clock = ManualClock::new(Timestamp::from_second(now).unwrap());
    let fixed = |value: &str| Field::Fixed(value.into());
    let pointer = |value: &str| Field::Pointer(value.into());
    let signed = SourceAuth::Signed(SignatureVerifier::new(vec![secret()]));
    let sources = HashMap::from([
        // The vector's body knows nothing of schedules: a fixed target.
        (
            "vector".to_owned(),
            Source {
                auth: signed.clone(),
                mapping: Mapping {
                    business_unit: fixed("bu-1"),
                    week: fixed("current"),
                    schedule_id: fixed("latest"),
                    event: fixed("test"),
                    delivery_id: None,
                },
            },
        ),
        (
            "signed".to_owned(),
            Source {
                auth: signed,
                mapping: Mapping {
                    business_unit: fixed("bu-1"),
                    week: pointer("/week"),
                    schedule_id: pointer("/schedule_id"),
                    event: pointer("/event"),
                    delivery_id: None,
                },
            },
        ),
        (
            "bearer".to_owned(),
            Source {
                auth: SourceAuth::Bearer(BearerVerifier::new(vec!["tok-1".into()])),
                mapping: Mapping {
                    business_unit: fixed("bu-1"),
                    week: fixed("current"),
                    schedule_id: pointer("/schedule_id"),
                    event: pointer("/event"),
                    delivery_id: Some("/sys_id".into()),
                },
            },
        ),
    ]);
    let intake = Intake {
        sources,
        store: store.clone(),
        clock: Arc::new(clock.clone()),
        body_limit: LIMIT,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, Arc::new(intake).router()).into_future());
    Relay {
        addr,
        clock,
        store,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// A request to send: source, headers, body.
struct Send {
    source: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// Signed headers for `body` as of `sent` (Unix seconds), with JSON content type.
fn signed(id: &str, sent: i64, body: &str) -> Vec<(&'static str, String)> {
    let timestamp = sent.to_string();
    vec![
        ("content-type", "application/json".into()),
        ("webhook-id", id.into()),
        (
            "webhook-signature",
            secret().signature_header(id, &timestamp, body.as_bytes()),
        ),
        ("webhook-timestamp", timestamp),
    ]
}

impl Relay {
    async fn send(&self, request: &Send) -> (u16, Option<String>, Value) {
        let mut builder = self
            .http
            .post(format!("http://{}/webhooks/{}", self.addr, request.source))
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let response = builder.send().await.unwrap();
        let status = response.status().as_u16();
        let media = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap();
        (status, media, body)
    }
}

fn good_body() -> String {
    json!({"week": "2026-03-30", "schedule_id": "s-1", "event": "case.created"}).to_string()
}

#[tokio::test]
async fn the_standard_webhooks_vectors_over_http() {
    // The clock only moves forward: start it at the earliest `now` of the file.
    let relay = start_at(1_614_265_029).await;
    let text = std::fs::read_to_string("tests/fixtures/standard-webhooks.json").unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let valid = &file["valid"];
    let field = |case: &Value, name: &str| {
        case.get(name)
            .or(valid.get(name))
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    };
    let request = |case: &Value| Send {
        source: "vector",
        headers: vec![
            ("content-type", "application/json".into()),
            ("webhook-id", field(case, "webhook-id")),
            ("webhook-timestamp", field(case, "webhook-timestamp")),
            ("webhook-signature", field(case, "webhook-signature")),
        ],
        body: field(case, "body"),
    };
    let now = |case: &Value| {
        case.get("now")
            .or(valid.get("now"))
            .unwrap()
            .as_i64()
            .unwrap()
    };
    // Every case in time order (the valid ones after the invalid ones of the same instant).
    let valid_cases = std::iter::once(valid).chain(file["also_valid"].as_array().unwrap());
    let mut cases: Vec<(&Value, bool)> = file["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c, false))
        .collect();
    cases.extend(valid_cases.map(|c| (c, true)));
    cases.sort_by_key(|(case, valid)| (now(case), *valid));
    let mut accepted = Vec::new();
    for (case, valid) in cases {
        relay.clock.set(Timestamp::from_second(now(case)).unwrap());
        let (status, media, body) = relay.send(&request(case)).await;
        if valid {
            accepted.push((status, body));
        } else {
            assert_eq!(status, 401, "{}: {body}", case["why"]);
            assert_eq!(media.as_deref(), Some("application/problem+json"));
        }
    }
    // The same message id and body twice: accepted, then the same receipt again.
    assert_eq!(accepted.len(), 2);
    assert_eq!((accepted[0].0, accepted[1].0), (202, 200));
    assert_eq!(accepted[0].1["receipt"], accepted[1].1["receipt"]);
    assert_eq!(relay.store.unfinished().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_get_their_status_and_problem_and_nothing_is_stored() {
    let relay = start_at(NOW).await;
    let body = good_body();
    let json_type = || vec![("content-type", "application/json".to_owned())];
    let cases: Vec<(&str, Send)> = vec![
        (
            "unknown source",
            Send {
                source: "jira",
                headers: signed("m1", NOW, &body),
                body: body.clone(),
            },
        ),
        (
            "wrong content type",
            Send {
                source: "signed",
                headers: vec![("content-type", "text/plain".into())],
                body: body.clone(),
            },
        ),
        (
            "no content type",
            Send {
                source: "signed",
                headers: vec![],
                body: body.clone(),
            },
        ),
        (
            "oversized body",
            Send {
                source: "signed",
                headers: json_type(),
                body: format!("{{\"pad\":\"{}\"}}", "x".repeat(LIMIT)),
            },
        ),
        (
            "bad signature",
            Send {
                source: "signed",
                headers: signed("m1", NOW, "{\"other\":1}"),
                body: body.clone(),
            },
        ),
        (
            "stale timestamp",
            Send {
                source: "signed",
                headers: signed("m1", NOW - 301, &body),
                body: body.clone(),
            },
        ),
        (
            "future timestamp",
            Send {
                source: "signed",
                headers: signed("m1", NOW + 301, &body),
                body: body.clone(),
            },
        ),
        (
            "missing signature",
            Send {
                source: "signed",
                headers: json_type(),
                body: body.clone(),
            },
        ),
        (
            "malformed JSON",
            Send {
                source: "signed",
                headers: signed("m1", NOW, "{\"week\":"),
                body: "{\"week\":".into(),
            },
        ),
        ("missing mapped field", {
            let body = json!({"week": "2026-03-30", "event": "case.created"}).to_string();
            Send {
                source: "signed",
                headers: signed("m1", NOW, &body),
                body,
            }
        }),
        ("week not a date", {
            let body = json!({"week": "soon", "schedule_id": "s-1", "event": "e"}).to_string();
            Send {
                source: "signed",
                headers: signed("m1", NOW, &body),
                body,
            }
        }),
        (
            "wrong bearer token",
            Send {
                source: "bearer",
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("authorization", "Bearer tok-2".into()),
                ],
                body: json!({"schedule_id": "s-1", "event": "e", "sys_id": "d1"}).to_string(),
            },
        ),
        (
            "bearer delivery id missing",
            Send {
                source: "bearer",
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("authorization", "Bearer tok-1".into()),
                ],
                body: json!({"schedule_id": "s-1", "event": "e"}).to_string(),
            },
        ),
    ];
    let mut report = Vec::new();
    for (what, request) in &cases {
        let (status, media, problem) = relay.send(request).await;
        assert_eq!(media.as_deref(), Some("application/problem+json"), "{what}");
        assert_eq!(problem["status"], status, "{what}");
        report.push(format!(
            "{what}: {status} {}\n  {}",
            problem["type"].as_str().unwrap(),
            problem["detail"].as_str().unwrap()
        ));
    }
    assert!(relay.store.unfinished().await.unwrap().is_empty());
    insta::assert_snapshot!(report.join("\n"));
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_while_reading() {
    let relay = start_at(NOW).await;
    let mut stream = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    let chunk = "x".repeat(LIMIT / 2);
    let mut request = String::from(
        "POST /webhooks/signed HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("urn:publish-guard:problem:too-large"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_delivery_is_stored_once_and_its_id_cannot_carry_another_body() {
    let relay = start_at(NOW).await;
    let body = good_body();
    let first = Send {
        source: "signed",
        headers: signed("msg_42", NOW, &body),
        body: body.clone(),
    };
    let (status, _, receipt) = relay.send(&first).await;
    assert_eq!(status, 202);
    assert_eq!(receipt["duplicate"], false);
    // The sender retries a minute later: same id, same body, fresh signature.
    relay.clock.advance(SignedDuration::from_mins(1));
    let retry = Send {
        source: "signed",
        headers: signed("msg_42", NOW + 60, &body),
        body: body.clone(),
    };
    let (status, _, again) = relay.send(&retry).await;
    assert_eq!(
        (status, &again["receipt"], &again["duplicate"]),
        (200, &receipt["receipt"], &json!(true))
    );
    let other =
        json!({"week": "2026-03-30", "schedule_id": "s-2", "event": "case.created"}).to_string();
    let reuse = Send {
        source: "signed",
        headers: signed("msg_42", NOW + 60, &other),
        body: other,
    };
    let (status, _, problem) = relay.send(&reuse).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (422, Some("urn:publish-guard:problem:delivery-conflict"))
    );
    // Bearer senders identify deliveries by the mapped field.
    let bearer_body = json!({"schedule_id": "s-3", "event": "e", "sys_id": "d1"}).to_string();
    let bearer = Send {
        source: "bearer",
        headers: vec![
            ("content-type", "application/json; charset=utf-8".into()),
            ("authorization", "Bearer tok-1".into()),
        ],
        body: bearer_body,
    };
    assert_eq!(relay.send(&bearer).await.0, 202);
    assert_eq!(relay.send(&bearer).await.0, 200);
    let stored = relay.store.unfinished().await.unwrap();
    let summary: Vec<(&str, &str, (&str, &str, &str))> = stored
        .iter()
        .map(|t| {
            let target = &t.target;
            (
                t.source.as_str(),
                t.delivery_id.as_str(),
                (
                    target.business_unit.as_str(),
                    target.week.as_str(),
                    target.schedule_id.as_str(),
                ),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("signed", "msg_42", ("bu-1", "2026-03-30", "s-1")),
            ("bearer", "d1", ("bu-1", "current", "s-3")),
        ]
    );
    assert_eq!(stored[0].receipt.id, receipt["receipt"].as_str().unwrap());
}

#[tokio::test]
async fn an_empty_or_oversized_delivery_id_is_refused_with_a_400_and_not_stored() {
    let relay = start_at(NOW).await;
    let body = good_body();
    let oversized = "m".repeat(300 * 1024);
    let longest = "m".repeat(256);
    for (id, why) in [("", "is empty"), (oversized.as_str(), "the limit is 256")] {
        let request = Send {
            source: "signed",
            headers: signed(id, NOW, &body),
            body: body.clone(),
        };
        let (status, media, problem) = relay.send(&request).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(media.as_deref(), Some("application/problem+json"));
        assert_eq!(
            problem["type"],
            "urn:publish-guard:problem:invalid-delivery-id"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    // A bearer source's mapped id is held to the same bound.
    let long_sys_id =
        json!({"schedule_id": "s-1", "event": "case.created", "sys_id": "x".repeat(257)});
    let request = Send {
        source: "bearer",
        headers: vec![
            ("content-type", "application/json".into()),
            ("authorization", "Bearer tok-1".into()),
        ],
        body: long_sys_id.to_string(),
    };
    assert_eq!(relay.send(&request).await.0, 400);
    assert!(relay.store.unfinished().await.unwrap().is_empty());

    let request = Send {
        source: "signed",
        headers: signed(&longest, NOW, &body),
        body,
    };
    assert_eq!(
        relay.send(&request).await.0,
        202,
        "256 bytes is within the bound"
    );
}
