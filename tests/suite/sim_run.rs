//! The simulator end to end: shipped scenarios pass under `test`, a wrong expectation fails
//! readably, reports are pinned, runs are deterministic, and the SVG is well-formed.

use crate::common;

use publish_guard::cli::test::report;
use publish_guard::sim::engine::{RunOptions, RunResult, run};
use publish_guard::sim::scenario::load;
use std::path::{Path, PathBuf};

fn simulate(scenario: &str, rules: Option<&str>) -> RunResult {
    let scenario = load(Path::new(scenario)).expect("shipped scenario loads");
    let path = rules.map_or(scenario.rules.clone(), PathBuf::from);
    let source = std::fs::read_to_string(&path).expect("rules file");
    let policy = common::compile_valid(&source);
    run(&scenario, &policy, RunOptions::default())
}

#[test]
fn every_shipped_scenario_passes() {
    let (text, ok) = report(&[PathBuf::from("rules/scenarios")]).expect("runs");
    assert!(ok, "{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
    // Ten scenarios are shipped, and each is listed.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        10,
        "{text}"
    );
}

#[test]
fn a_wrong_expectation_fails_with_a_readable_diff() {
    let (text, ok) =
        report(&[PathBuf::from("tests/fixtures/sim/wrong-expectation.toml")]).expect("runs");
    assert!(!ok);
    insta::assert_snapshot!(text);
}

#[test]
fn person_publishes_table() {
    insta::assert_snapshot!(
        simulate("rules/scenarios/person-publishes.toml", None)
            .report
            .table()
    );
}

#[test]
fn person_publishes_json() {
    insta::assert_snapshot!(
        simulate("rules/scenarios/person-publishes.toml", None)
            .report
            .json()
    );
}

#[test]
fn dst_table() {
    insta::assert_snapshot!(simulate("rules/scenarios/dst.toml", None).report.table());
}

/// `[expect]` cannot say "within N s of a trigger": the timeline pins that the edit's
/// publish starts 4.6 s after its webhook (INC0040002 at 10:00:21.5, publish at 10:00:26.055).
#[test]
fn edit_after_completion_table() {
    insta::assert_snapshot!(
        simulate("rules/scenarios/edit-after-completion.toml", None)
            .report
            .table()
    );
}

#[test]
fn dst_json() {
    insta::assert_snapshot!(simulate("rules/scenarios/dst.toml", None).report.json());
}

#[test]
fn the_same_scenario_and_seed_give_identical_bytes() {
    let a = simulate("rules/scenarios/storm.toml", None).report;
    let b = simulate("rules/scenarios/storm.toml", None).report;
    assert_eq!(a.table(), b.table());
    assert_eq!(a.json(), b.json());
    assert_eq!(
        publish_guard::sim::svg::render(&a),
        publish_guard::sim::svg::render(&b)
    );
}

#[test]
fn another_seed_gives_another_run() {
    let mut scenario = load(Path::new("rules/scenarios/storm.toml")).expect("loads");
    let source = std::fs::read_to_string(&scenario.rules).expect("rules");
    let policy = common::compile_valid(&source);
    let a = run(&scenario, &policy, RunOptions::default()).report.json();
    scenario.seed += 1;
    let b = run(&scenario, &policy, RunOptions::default()).report.json();
    assert_ne!(a, b);
}

#[test]
fn on_the_storm_naive_rules_conflict_and_the_default_does_not() {
    let naive = simulate(
        "rules/scenarios/storm.toml",
        Some("rules/examples/naive.rules"),
    );
    let default = simulate("rules/scenarios/storm.toml", None);
    assert_eq!(
        naive.report.summary.triggers,
        default.report.summary.triggers
    );
    assert!(naive.report.summary.conflicts > 0);
    assert_eq!(default.report.summary.conflicts, 0);
}

#[test]
fn the_svg_parses_with_a_lane_per_schedule_and_a_legend() {
    let report = simulate("rules/scenarios/storm.toml", None).report;
    let svg = publish_guard::sim::svg::render(&report);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for lane in &report.schedules {
        assert!(texts.contains(&lane.as_str()), "no lane label {lane}");
    }
    for legend in [
        "trigger",
        "409 conflict",
        "backoff",
        "skip",
        "publish accepted",
    ] {
        assert!(texts.contains(&legend), "no legend entry {legend}");
    }
}

#[test]
fn a_run_without_the_timeline_has_the_same_totals() {
    // The timeline can be dropped for big runs; the totals stay the same.
    let scenario = load(Path::new("rules/scenarios/storm.toml")).expect("loads");
    let source = std::fs::read_to_string(&scenario.rules).expect("rules");
    let policy = common::compile_valid(&source);
    let full = run(&scenario, &policy, RunOptions::default());
    let lean = run(
        &scenario,
        &policy,
        RunOptions {
            keep_timeline: false,
        },
    );
    assert!(lean.report.timeline.is_empty());
    assert!(!full.report.timeline.is_empty());
    assert_eq!(full.report.summary, lean.report.summary);
    assert_eq!(full.outcomes, lean.outcomes);
}

#[test]
fn the_summary_adds_up_on_every_shipped_scenario() {
    // Issue 12: `triggers 281` beside publishes 4 + skips 143 + coalesced 139 = 286. Every
    // trigger either starts a cycle or is coalesced; every cycle that began ended one way.
    for entry in std::fs::read_dir("rules/scenarios").expect("scenarios") {
        let path = entry.expect("entry").path();
        let s = simulate(&path.display().to_string(), None).report.summary;
        let name = path.display();
        assert_eq!(
            s.triggers,
            s.cycles.by_trigger + s.coalesced,
            "{name}: triggers"
        );
        assert_eq!(s.cycles.total(), s.ended.total(), "{name}: cycles");
        assert_eq!(s.ended.skipped, s.skips.values().sum::<u64>(), "{name}");
        assert_eq!(s.ended.failed, s.failures, "{name}");
    }
}

#[test]
fn the_storm_summary_says_what_each_total_counts() {
    let table = simulate("rules/scenarios/storm.toml", None).report.table();
    let summary = &table[table.find("\nsummary\n").expect("a summary")..];
    insta::assert_snapshot!(summary);
}

#[test]
fn triggers_still_deferred_at_end_are_reported() {
    // Issue 12: a run that stops before a deferral comes due said nothing of it.
    let report = simulate("tests/fixtures/sim/deferred-at-end.toml", None).report;
    let left = &report.summary.deferred_at_end;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].triggers, 2);
    insta::assert_snapshot!(report.table());
}

#[test]
fn a_restart_after_our_update_met_a_5xx_reads_a_draft_rather_than_taking_it_for_publishing() {
    let report = simulate("tests/fixtures/sim/restart-after-5xx.toml", None).report;
    let table = report.table();
    let restarted = &table[table.find("the process restarts").expect("a restart")..];
    let first_read = restarted
        .lines()
        .find(|l| l.contains(" read "))
        .expect("a read after the restart");
    assert!(first_read.contains("draft v1"), "{table}");
    assert_eq!(report.summary.publishes, 1);
    insta::assert_snapshot!(table);
}
