//! `check` and `fmt` through the real binary: output and exit codes.

use std::path::Path;
use std::process::Command;

/// Run the binary; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_publish-guard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file");
    path.display().to_string()
}

#[test]
fn shipped_rules_check_clean_even_with_deny_warnings() {
    let (code, out, _) = run(&[
        "check",
        "--deny-warnings",
        "rules/default.rules",
        "rules/examples/naive.rules",
        "rules/examples/follow-the-sun.rules",
    ]);
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn errors_exit_1_with_rendered_diagnostics() {
    let (code, out, _) = run(&["check", "tests/fixtures/diagnostics/E101.rules"]);
    assert_eq!(code, 1);
    assert!(out.contains("error[E101]"), "{out}");
    assert!(out.contains("E101.rules: 2 errors"), "{out}");
}

#[test]
fn warnings_pass_unless_denied() {
    let file = "tests/fixtures/diagnostics/W202.rules";
    let (code, out, _) = run(&["check", file]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning[W202]"), "{out}");
    let (code, _, _) = run(&["check", "--deny-warnings", file]);
    assert_eq!(code, 1);
}

#[test]
fn json_format_gives_the_same_diagnostics_as_data() {
    let (code, out, _) = run(&[
        "check",
        "--format",
        "json",
        "tests/fixtures/diagnostics/E101.rules",
    ]);
    assert_eq!(code, 1);
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let first = &value[0];
    assert_eq!(first["code"], "E101");
    assert_eq!(first["severity"], "error");
    for key in ["message", "file", "line", "column", "end", "help"] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
}

#[test]
fn missing_and_binary_files_are_io_errors() {
    let (code, _, err) = run(&["check", "no/such/file.rules"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/file.rules"), "{err}");

    let dir = tempfile::tempdir().expect("temp dir");
    let binary = write(dir.path(), "bin.rules", &[0x66, 0xff, 0xfe, 0x00]);
    let (code, _, err) = run(&["check", &binary]);
    assert_eq!(code, 2);
    assert!(err.contains("not a text file"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, _) = run(&["check"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["check", "--format", "xml", "rules/default.rules"]);
    assert_eq!(code, 2);
}

#[test]
fn fmt_check_lists_files_that_would_change_and_fmt_rewrites_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messy = std::fs::read("tests/fixtures/diagnostics/design.rules").expect("fixture");
    let messy = String::from_utf8(messy)
        .expect("utf-8")
        .replace("  rule", "rule")
        .into_bytes();
    let path = write(dir.path(), "messy.rules", &messy);
    let clean = "rules/default.rules";

    let (code, out, _) = run(&["fmt", "--check", clean]);
    assert_eq!((code, out.as_str()), (0, ""));

    let (code, out, _) = run(&["fmt", "--check", clean, &path]);
    assert_eq!(code, 1);
    assert_eq!(out.trim(), path);
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        messy,
        "--check changed the file"
    );

    let (code, _, _) = run(&["fmt", &path]);
    assert_eq!(code, 0);
    let (code, out, _) = run(&["fmt", "--check", &path]);
    assert_eq!(
        (code, out.as_str()),
        (0, ""),
        "formatting is not idempotent"
    );
}

#[test]
fn fmt_leaves_a_file_that_does_not_parse_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = b"policy \"x\"\non trigger {\n  rule a when then publish\n}\n";
    let path = write(dir.path(), "broken.rules", broken);
    let (code, out, _) = run(&["fmt", &path]);
    assert_eq!(code, 1);
    assert!(out.contains("error[P001]"), "{out}");
    assert_eq!(std::fs::read(&path).expect("still there"), broken);
}

#[test]
fn explain_shows_every_rule_tried_and_the_decision() {
    let (code, out, _) = run(&[
        "explain",
        "--rules",
        "rules/default.rules",
        "--facts",
        "examples/facts/storm-draft.toml",
    ]);
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn explain_json_carries_the_decision_as_data() {
    let (code, out, _) = run(&[
        "explain",
        "--rules",
        "rules/default.rules",
        "--facts",
        "examples/facts/storm-draft.toml",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    insta::assert_json_snapshot!(value);
}

#[test]
fn explain_reports_bad_facts_with_their_line_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let facts = write(
        dir.path(),
        "facts.toml",
        b"now = \"2026-03-03T09:30:00Z\"\nschedule.stat = \"draft\"\n",
    );
    let (code, out, _) = run(&[
        "explain",
        "--rules",
        "rules/default.rules",
        "--facts",
        &facts,
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("error[E117]") && out.contains(":2:1"), "{out}");
    let (code, _, _) = run(&[
        "explain",
        "--rules",
        "rules/default.rules",
        "--facts",
        "no/such.toml",
    ]);
    assert_eq!(code, 2);
}
