//! `examples/genesys/`: the Web Services Data Action an Architect flow calls. Its JSON keeps
//! the shape Genesys exports; its request, rendered with the Velocity substitutions it uses
//! (`${input.x}`, `${credentials.x}`, `$esc.jsonString(...)`), reaches a real relay: 202, then
//! 200 for the same input; the response translation gives what the success schema promises.

use crate::relay_genesys::{BU, Rig, SourceSetup, TOKEN};
use jiff::civil::{Weekday, date};
use publish_guard::api::ScheduleRef;
use publish_guard::api::week::WeekSettings;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const ACTION: &str = include_str!("../../examples/genesys/publish-guard-trigger.action.json");

fn action() -> Value {
    serde_json::from_str(ACTION).unwrap()
}

/// Why a template did not render.
#[derive(Debug, PartialEq)]
enum RenderError {
    Unknown(String),
    Unsupported(String),
}

/// The Velocity the action uses: `${input.x}` and `${credentials.x}` (the value as is), and
/// `$esc.jsonString(${input.x})` (the value escaped for a JSON string). Anything else that
/// starts with `$` is refused, so the template cannot grow past what is tested here.
fn render(template: &str, values: &HashMap<String, String>) -> Result<String, RenderError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(inner) = rest.strip_prefix("$esc.jsonString(") {
            let end = inner
                .find(')')
                .ok_or_else(|| RenderError::Unsupported(rest.into()))?;
            let value = render(&inner[..end], values)?;
            let quoted = serde_json::to_string(&value).unwrap();
            out.push_str(&quoted[1..quoted.len() - 1]);
            rest = &inner[end + 1..];
        } else if let Some(inner) = rest.strip_prefix("${") {
            let end = inner
                .find('}')
                .ok_or_else(|| RenderError::Unsupported(rest.into()))?;
            let name = &inner[..end];
            let value = values
                .get(name)
                .ok_or_else(|| RenderError::Unknown(name.into()))?;
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            return Err(RenderError::Unsupported(rest.chars().take(20).collect()));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The names `${...}` refers to in `template`.
fn references(template: &str) -> Vec<String> {
    template
        .split("${")
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn the_velocity_subset_escapes_and_refuses_what_it_does_not_know() {
    let values = HashMap::from([("input.x".to_owned(), "a \"quoted\"\nline".to_owned())]);
    assert_eq!(
        render(r#"{"x": "$esc.jsonString(${input.x})"}"#, &values),
        Ok(r#"{"x": "a \"quoted\"\nline"}"#.to_owned())
    );
    assert_eq!(
        render("${input.y}", &values),
        Err(RenderError::Unknown("input.y".into()))
    );
    assert!(matches!(
        render("#if($input.x)", &values).or_else(|_| render("$input.x", &values)),
        Err(RenderError::Unsupported(_))
    ));
}

#[test]
fn the_action_keeps_the_shape_genesys_exports() {
    let action = action();
    assert_eq!(action["integrationType"], "custom-rest-actions");
    assert_eq!(action["actionType"], "custom");
    assert!(action["name"].is_string() && action["category"].is_string());
    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&action["config"]), ["request", "response"]);
    assert_eq!(
        keys(&action["config"]["request"]),
        [
            "headers",
            "requestTemplate",
            "requestType",
            "requestUrlTemplate"
        ]
    );
    assert_eq!(
        keys(&action["config"]["response"]),
        [
            "successTemplate",
            "translationMap",
            "translationMapDefaults"
        ]
    );
    assert_eq!(keys(&action["contract"]), ["input", "output"]);
    let input = &action["contract"]["input"]["inputSchema"];
    let output = &action["contract"]["output"]["successSchema"];
    assert_eq!(
        (&input["type"], &output["type"]),
        (&json!("object"), &json!("object"))
    );

    let request = &action["config"]["request"];
    assert_eq!(request["requestType"], "POST");
    let url = request["requestUrlTemplate"].as_str().unwrap();
    assert!(
        url.starts_with("https://") && url.ends_with("/webhooks/manual"),
        "{url}"
    );
    // Every input the templates use is in the input contract, and required there.
    let body = request["requestTemplate"].as_str().unwrap();
    let required: Vec<&str> = input["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in references(body) {
        let field = name.strip_prefix("input.").unwrap();
        assert!(input["properties"][field].is_object(), "{field}");
        assert!(required.contains(&field), "{field}");
    }
    // The token comes from the integration's credentials, in the header only.
    assert!(!body.contains("credentials."));
    let auth = request["headers"]["Authorization"].as_str().unwrap();
    assert_eq!(references(auth), ["credentials.token"]);
    // What the translation map names is what the success template uses and the schema has.
    let response = &action["config"]["response"];
    let mut mapped = keys(&response["translationMap"]);
    let mut used = references(response["successTemplate"].as_str().unwrap());
    mapped.sort();
    used.sort();
    assert_eq!(mapped, used);
    assert_eq!(keys(&output["properties"]), mapped);
}

/// What Genesys does with the relay's answer: the translation map's JSONPath (`$.field`)
/// picks values, each goes into the success template as JSON, defaults fill what is absent.
fn translate(action: &Value, answer: &Value) -> Value {
    let response = &action["config"]["response"];
    let defaults = response["translationMapDefaults"].as_object().cloned();
    let mut values = HashMap::new();
    for (name, path) in response["translationMap"].as_object().unwrap() {
        let field = path.as_str().unwrap().strip_prefix("$.").unwrap();
        let value = match answer.get(field) {
            Some(v) => v.to_string(),
            None => defaults
                .as_ref()
                .and_then(|d| d.get(name))
                .and_then(Value::as_str)
                .unwrap_or("null")
                .to_owned(),
        };
        values.insert(name.clone(), value);
    }
    let template = response["successTemplate"].as_str().unwrap();
    serde_json::from_str(&render(template, &values).unwrap()).unwrap()
}

/// The output fits the success schema: every required property, of its type.
fn fits(schema: &Value, output: &Value) -> bool {
    let empty = Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    schema["required"].as_array().unwrap().iter().all(|name| {
        let name = name.as_str().unwrap();
        let value = &output[name];
        match properties[name]["type"].as_str() {
            Some("string") => value.is_string(),
            Some("boolean") => value.is_boolean(),
            _ => false,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_request_is_accepted_then_answered_as_a_duplicate_by_a_real_relay() {
    let this_week = date(2026, 11, 30);
    let rig = Rig::start(
        WeekSettings {
            start_day: Weekday::Monday,
            time_zone: jiff::tz::TimeZone::get("Europe/London").ok(),
        },
        SourceSetup {
            week: "current",
            schedule: "latest",
        },
        "2026-12-01T10:00:00Z".parse().unwrap(),
        |double, _| {
            let schedule = ScheduleRef {
                business_unit: BU.into(),
                week: this_week,
                schedule_id: "s-1".into(),
            };
            double.add_schedule(&schedule, false, 1);
        },
    )
    .await;
    let action = action();
    let request = &action["config"]["request"];
    let values = HashMap::from([
        (
            "input.deliveryId".to_owned(),
            "conv-81 \"step 2\"".to_owned(),
        ),
        ("input.event".to_owned(), "case.updated".to_owned()),
        ("credentials.token".to_owned(), TOKEN.to_owned()),
    ]);
    let body = render(request["requestTemplate"].as_str().unwrap(), &values).unwrap();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        sent,
        json!({"id": "conv-81 \"step 2\"", "event": "case.updated"})
    );
    let template = request["requestUrlTemplate"].as_str().unwrap();
    let path = &template[template.find("/webhooks/").unwrap()..];
    let url = format!("http://{}{path}", rig.relay.addr());

    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut call = rig.http.post(&url).body(body.clone());
        for (name, value) in request["headers"].as_object().unwrap() {
            call = call.header(name, render(value.as_str().unwrap(), &values).unwrap());
        }
        let response = call.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        let output = translate(&action, &answer);
        assert!(
            fits(&action["contract"]["output"]["successSchema"], &output),
            "{output}"
        );
        answers.push((status, output));
    }
    assert_eq!(answers[0].0, 202);
    assert_eq!(answers[1].0, 200);
    assert_eq!(answers[0].1["duplicate"], false);
    assert_eq!(answers[1].1["duplicate"], true);
    assert_eq!(answers[0].1["receipt"], answers[1].1["receipt"]);
    rig.relay.shutdown().await.unwrap();
}
