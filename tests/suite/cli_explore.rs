//! `publish-guard explore` from the command line: a clean run exits 0, a finding exits 1
//! and its saved scenario replays in `simulate` and `test`, bad arguments exit 2.

use crate::common::publish_guard;

/// `explore` under the naive policy, which makes 409s of its own within a few seeds.
const NAIVE: [&str; 5] = [
    "explore",
    "--rules",
    "rules/examples/naive.rules",
    "--seeds",
    "50",
];

#[test]
fn the_shipped_default_holds_every_invariant_and_exits_0() {
    let (code, out, err) = publish_guard(&["explore", "--seeds", "200"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("explored 200 worlds ("), "{out}");
    assert!(out.ends_with("every invariant held\n"), "{out}");
}

#[test]
fn a_finding_under_the_naive_policy_is_saved_and_replays_with_its_409() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("found.toml");
    let file_arg = file.display().to_string();
    let (code, out, err) = publish_guard(&[&NAIVE[..], &["--save", &file_arg]].concat());
    assert_eq!(code, 1, "{out}{err}");
    // What a user reads: the finding, the timeline around it, the file (the time aside).
    let (first, rest) = out.split_once('\n').expect("a first line");
    let first = first.split(" in ").next().expect("a count");
    insta::assert_snapshot!(
        "explore_naive_finding",
        format!("{first} in (time)\n{rest}")
    );
    assert!(
        out.contains("VIOLATION of no_conflict_of_our_making"),
        "{out}"
    );
    assert!(err.contains("saved the shrunk scenario to"), "{err}");
    let saved = std::fs::read_to_string(&file).expect("the scenario was saved");
    // Printed and saved alike but for `rules`, which the file names from its own folder.
    let rules_line = saved
        .lines()
        .find(|l| l.starts_with("rules = "))
        .expect("a rules line");
    assert!(
        rules_line.ends_with("rules/examples/naive.rules\"") && rules_line.contains(".."),
        "{rules_line}"
    );
    let printed = saved.replace(rules_line, "rules = \"rules/examples/naive.rules\"");
    assert!(out.ends_with(&printed), "{out}");
    let (code, replay, err) = publish_guard(&["simulate", &file_arg]);
    assert_eq!(code, 0, "{replay}{err}");
    let conflicts = replay
        .lines()
        .find(|l| l.trim_start().starts_with("409 conflicts"))
        .expect("a 409 row");
    assert!(
        !conflicts.contains(" 0 "),
        "the replay shows the 409: {conflicts}"
    );
    let (code, tested, err) = publish_guard(&["test", &file_arg]);
    assert_eq!(code, 0, "no [expect] to fail: {tested}{err}");
}

#[test]
fn nothing_is_saved_when_every_invariant_held() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("found.toml");
    let file_arg = file.display().to_string();
    let (code, out, _) = publish_guard(&["explore", "--seeds", "20", "--save", &file_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(!file.exists());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let (code, _, err) = publish_guard(&["explore", "--time-limit", "soon"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--time-limit \"soon\" is not a duration like \"30s\" or \"10m\""),
        "{err}"
    );
    let (code, _, err) = publish_guard(&["explore", "--seed", "1", "--seeds", "5"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = publish_guard(&["explore", "--rules", "no/such.rules"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such.rules"), "{err}");
}

#[test]
fn json_is_one_document_with_the_finding() {
    let (code, out, err) = publish_guard(&[&NAIVE[..], &["--format", "json"]].concat());
    assert_eq!(code, 1, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(
        doc["finding"]["shrunk"]["invariant"], "no_conflict_of_our_making",
        "{doc}"
    );
    assert!(
        doc["finding"]["scenario"]
            .as_str()
            .is_some_and(|s| s.contains("[api]"))
    );
}
