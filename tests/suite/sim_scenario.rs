//! The scenario loader: a valid file loads into the model; a bad one gives diagnostics
//! that name the line and say what is wrong.

use publish_guard::language::span::LineCol;
use publish_guard::sim::generate::arrivals;
use publish_guard::sim::scenario::{GeneratorKind, PersonKind, Target, parse};
use std::path::Path;

const VALID: &str = r#"
name = "two schedules"
rules = "../default.rules"
start = "2026-03-02T09:00:00Z"
end = "2026-03-02T12:00:00Z"
seed = 7

[runner]
coalesce = false

[api]
processing = "2m"
latency = "250ms"
rate_limit = 120
error_rate = 0.01
[[api.outage]]
from = "2026-03-02T10:00:00Z"
until = "2026-03-02T10:10:00Z"

[[schedule]]
id = "s1"
bu = "bu-1"
week = "2026-03-02"

[[schedule]]
id = "s2"
bu = "bu-1"
week = "2026-03-09"
published = true
version = 4

[[person]]
at = "2026-03-02T09:30:00Z"
schedule = "s2"
action = "edit"

[[trigger]]
at = "2026-03-02T09:00:05Z"
schedule = "s1"
source = "servicenow"
delivery = "d1"
event = "case.created"

[[burst]]
schedule = "s1"
source = "servicenow"
at = "2026-03-02T09:01:00Z"
count = 4
within = "2s"

[[every]]
schedule = "*"
source = "timer"
interval = "15m"
until = "2026-03-02T10:00:00Z"
between = ["09:20", "09:50"]
timezone = "Europe/London"

[[random]]
schedule = "s2"
source = "servicenow"
per_minute = 2.0
until = "2026-03-02T09:10:00Z"

[expect]
publishes = 2
conflicts = 0

[[expect.decision]]
trigger = "d1"
decision = "publish"
rule = "ready"
"#;

#[test]
fn a_valid_scenario_loads_with_every_part() {
    let s = parse(VALID, "file-stem", Path::new("rules/scenarios")).expect("valid");
    assert_eq!(s.name, "two schedules");
    assert_eq!(s.rules, Path::new("rules/default.rules"));
    assert_eq!(s.seed, 7);
    assert!(!s.runner.coalesce);
    assert_eq!(s.api.rate_limit, 120);
    assert_eq!(s.api.outages.len(), 1);
    assert_eq!(s.api.outages[0].status, 503);
    assert_eq!(s.schedules[1].version, 4);
    assert!(s.schedules[1].published);
    assert_eq!(s.people[0].kind, PersonKind::Edit);
    assert_eq!(s.people[0].schedule, 1);
    assert_eq!(s.generators.len(), 3);
    assert!(matches!(s.generators[1].target, Target::All));
    assert!(matches!(
        s.generators[2].kind,
        GeneratorKind::Random { per_minute, .. } if per_minute == 2.0
    ));
    assert_eq!(s.expect.totals.len(), 2);
    assert_eq!(s.expect.decisions[0].rule.as_deref(), Some("ready"));
}

#[test]
fn generated_arrivals_are_sorted_and_follow_their_rules() {
    let s = parse(VALID, "x", Path::new(".")).expect("valid");
    let a = arrivals(&s);
    assert!(a.list.windows(2).all(|w| w[0].at <= w[1].at));
    // The burst: 4 triggers 500ms apart.
    let burst: Vec<_> = a
        .list
        .iter()
        .filter(|t| a.source(t) == "servicenow" && t.schedule == 0 && t.delivery.is_none())
        .map(|t| t.at.to_string())
        .collect();
    assert_eq!(
        burst,
        [
            "2026-03-02T09:01:00Z",
            "2026-03-02T09:01:00.5Z",
            "2026-03-02T09:01:01Z",
            "2026-03-02T09:01:01.5Z"
        ]
    );
    // The timer: every 15 min from 09:00 UTC (= London in winter), only 09:20..09:50 local,
    // so 09:30 and 09:45, for both schedules.
    let timer = a.sources.iter().position(|s| s == "timer").unwrap() as u16;
    let ticks: Vec<_> = a
        .list
        .iter()
        .filter(|t| t.source == timer)
        .map(|t| (t.at.to_string(), t.schedule))
        .collect();
    assert_eq!(
        ticks,
        [
            ("2026-03-02T09:30:00Z".to_string(), 0),
            ("2026-03-02T09:30:00Z".to_string(), 1),
            ("2026-03-02T09:45:00Z".to_string(), 0),
            ("2026-03-02T09:45:00Z".to_string(), 1),
        ]
    );
    assert_eq!(a.label(&a.list[0]), "d1");
    assert_eq!(a.label(&a.list[1]), "#2");
}

#[test]
fn random_arrivals_depend_on_the_seed_only() {
    let s = parse(VALID, "x", Path::new(".")).expect("valid");
    assert_eq!(arrivals(&s), arrivals(&s));
    let mut other = s.clone();
    other.seed = 8;
    assert_ne!(arrivals(&s).list, arrivals(&other).list);
}

/// Each bad scenario's diagnostics as `line:col CODE message`.
fn errors(text: &str) -> String {
    match parse(text, "x", Path::new(".")) {
        Ok(_) => "loaded without error".to_string(),
        Err(diagnostics) => diagnostics
            .iter()
            .map(|d| {
                let mut line = format!(
                    "{} {} {}",
                    LineCol::of(text, d.span.start),
                    d.code.as_str(),
                    d.message
                );
                if let Some(help) = &d.help {
                    line.push_str(&format!(" (help: {help})"));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

const HEAD: &str = "rules = \"r.rules\"\nstart = \"2026-03-02T09:00:00Z\"\n";

#[test]
fn bad_scenarios_point_at_the_line() {
    let cases = [
        ("unknown top-level key", format!("{HEAD}sead = 7\n")),
        (
            "unknown key in a table",
            format!("{HEAD}[api]\nprocesing = \"2m\"\n"),
        ),
        (
            "bad instant",
            "rules = \"r\"\nstart = \"monday 9am\"\n".to_string(),
        ),
        (
            "bad duration",
            format!("{HEAD}[api]\nprocessing = \"two minutes\"\n"),
        ),
        (
            "undeclared schedule",
            format!(
                "{HEAD}[[schedule]]\nid = \"s1\"\nbu = \"b\"\nweek = \"2026-03-02\"\n\
                 [[trigger]]\nat = \"2026-03-02T09:00:00Z\"\nschedule = \"s9\"\nsource = \"timer\"\n"
            ),
        ),
        (
            "bad values checked together",
            format!(
                "{HEAD}[api]\nerror_rate = 1.5\nerror_status = 404\n\
                 [[random]]\nschedule = \"*\"\nsource = \"x\"\nper_minute = 0.0\nuntil = \"2026-03-02T08:00:00Z\"\n"
            ),
        ),
        (
            "bad expectation",
            format!("{HEAD}[expect]\npublishes = 1\nconflict = 0\n"),
        ),
        (
            "expectation on an unknown trigger",
            format!("{HEAD}[[expect.decision]]\ntrigger = \"nope\"\ndecision = \"publsh\"\n"),
        ),
        (
            "missing key",
            "start = \"2026-03-02T09:00:00Z\"\n".to_string(),
        ),
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|(name, text)| format!("## {name}\n{}", errors(text)))
        .collect();
    insta::assert_snapshot!(out.join("\n\n"));
}

#[test]
fn every_error_is_reported_in_file_order() {
    // Issue 12: S301 errors came one per run, and not in file order.
    let text = format!(
        "{HEAD}sead = 7\n\
         [[schedule]]\nid = \"s1\"\nbu = \"b\"\nweek = \"2026-03-02\"\n\
         [[trigger]]\nat = \"soon\"\nschedule = \"s1\"\nsource = \"timer\"\n\
         [[trigger]]\nat = \"2026-03-02T09:00:00Z\"\nschedule = \"s1\"\nsource = \"timer\"\ndelivery = 5\n\
         [[burst]]\nschedule = \"s1\"\nsource = \"timer\"\nat = \"2026-03-02T09:00:00Z\"\ncount = 0\nwithin = \"1s\"\n\
         [api]\nrate_limit = 0\n"
    );
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn semantic_errors_come_in_file_order() {
    let text = format!(
        "{HEAD}[[random]]\nschedule = \"*\"\nsource = \"x\"\nper_minute = 0.0\nuntil = \"2026-03-02T10:00:00Z\"\n\
         [api]\nerror_rate = 1.5\n"
    );
    let out = errors(&text);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("6:"), "{out}");
    assert!(lines[1].starts_with("9:"), "{out}");
}

#[test]
fn what_comes_after_end_is_an_error_not_a_silent_loss() {
    // Issue 12: a burst after `end` vanished without a word.
    let text = format!(
        "{HEAD}end = \"2026-03-02T10:00:00Z\"\n\
         [[schedule]]\nid = \"s1\"\nbu = \"b\"\nweek = \"2026-03-02\"\n\
         [[burst]]\nschedule = \"s1\"\nsource = \"timer\"\nat = \"2026-03-02T11:00:00Z\"\ncount = 3\nwithin = \"1s\"\n\
         [[burst]]\nschedule = \"s1\"\nsource = \"timer\"\nat = \"2026-03-02T09:59:59Z\"\ncount = 4\nwithin = \"2s\"\n\
         [[trigger]]\nat = \"2026-03-02T10:00:01Z\"\nschedule = \"s1\"\nsource = \"timer\"\n\
         [[person]]\nat = \"2026-03-02T12:00:00Z\"\nschedule = \"s1\"\naction = \"edit\"\n\
         [[every]]\nschedule = \"s1\"\nsource = \"timer\"\ninterval = \"1m\"\nfrom = \"2026-03-02T10:30:00Z\"\nuntil = \"2026-03-02T11:00:00Z\"\n"
    );
    insta::assert_snapshot!(errors(&text));
}

#[test]
fn a_burst_ending_exactly_at_end_loads() {
    let text = format!(
        "{HEAD}end = \"2026-03-02T10:00:00Z\"\n\
         [[schedule]]\nid = \"s1\"\nbu = \"b\"\nweek = \"2026-03-02\"\n\
         [[burst]]\nschedule = \"s1\"\nsource = \"timer\"\nat = \"2026-03-02T09:59:57Z\"\ncount = 4\nwithin = \"4s\"\n"
    );
    // 09:59:57, :58, :59 and 10:00:00, the last at `end` itself.
    assert_eq!(errors(&text), "loaded without error");
}

#[test]
fn a_scenario_says_a_units_week_and_a_schedules_span_and_creation() {
    let text = format!(
        "{HEAD}[[business_unit]]\nid = \"bu-chicago\"\nweek_starts = \"Sunday\"\ntimezone = \"America/Chicago\"\n\
         [[schedule]]\nid = \"multi\"\nbu = \"bu-chicago\"\nweek = \"2026-02-22\"\nweeks = 2\ncreated = \"2026-02-10T12:00:00Z\"\n\
         [[schedule]]\nid = \"one\"\nbu = \"bu-chicago\"\nweek = \"2026-03-01\"\n"
    );
    let scenario = parse(&text, "x", Path::new(".")).unwrap();
    let unit = &scenario.business_units[0];
    assert_eq!(
        (unit.id.as_str(), unit.week.start_day),
        ("bu-chicago", jiff::civil::Weekday::Sunday)
    );
    let zone = unit.week.time_zone.as_ref().and_then(|z| z.iana_name());
    assert_eq!(zone, Some("America/Chicago"));
    let spans: Vec<(u32, Option<String>)> = scenario
        .schedules
        .iter()
        .map(|s| (s.weeks, s.created.map(|t| t.to_string())))
        .collect();
    assert_eq!(spans, [(2, Some("2026-02-10T12:00:00Z".into())), (1, None)]);
    assert_eq!(
        errors(&format!(
            "{HEAD}[[business_unit]]\nid = \"b\"\nweek_starts = \"Caturday\"\ntimezone = \"Mars/Olympus\"\n\
             [[schedule]]\nid = \"s\"\nbu = \"b\"\nweek = \"2026-03-02\"\nweeks = 0\ncreated = \"2026-03-03T00:00:00Z\"\n"
        )),
        "5:15 S301 `week_starts` must be a day of the week (Sunday..Saturday), got \"Caturday\"\n\
         6:12 S301 `Mars/Olympus` is not an IANA time-zone name\n\
         11:9 S301 `weeks` must be at least 1\n\
         12:11 S301 `created` must not be after `start`"
    );
}
