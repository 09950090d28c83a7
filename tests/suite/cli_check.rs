//! The commands through the real binary: output and exit codes.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Run the binary; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    run_with_input(args, b"")
}

/// Run the binary with `input` on its standard input; (exit code, stdout, stderr).
fn run_with_input(args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_publish-guard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input may close it first: that is no failure.
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().expect("the binary runs");
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
    // Issue 12: `--check` showed no diff. It shows one, headed by the file's name.
    assert!(
        out.starts_with(&format!("--- {path}\n+++ {path} (formatted)\n")),
        "{out}"
    );
    assert!(
        out.contains("\n-rule ") && out.contains("\n+  rule "),
        "{out}"
    );
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
fn explain_says_when_the_decision_was_made_from_the_cached_state() {
    let explain = |format: &str| {
        run(&[
            "explain",
            "--rules",
            "rules/default.rules",
            "--facts",
            "examples/facts/storm-draft.toml",
            "--cached-since",
            "2026-03-03T09:20:00Z",
            "--format",
            format,
        ])
    };
    let (code, out, _) = explain("human");
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!(out);
    let (_, json, _) = explain("json");
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(
        value["state"],
        serde_json::json!({"from": "cached", "since": "2026-03-03T09:20:00Z"})
    );
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

#[test]
fn fmt_check_shows_the_change_as_a_unified_diff() {
    let messy = b"policy \"p\"\ntimezone \"UTC\"\nsources manual\non trigger {\nrule a when trigger.source == manual then publish\n  otherwise skip \"no\"\n}\non response {\n  otherwise done\n}\n";
    let (code, out, _) = run_with_input(&["fmt", "--check", "-"], messy);
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

#[test]
fn check_and_fmt_read_standard_input() {
    // Issue 12: `check -` and `fmt -` did not read standard input.
    let source = std::fs::read("tests/fixtures/diagnostics/E101.rules").expect("fixture");
    let (code, out, _) = run_with_input(&["check", "-"], &source);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error[E101]") && out.contains("<stdin>:"),
        "{out}"
    );
    assert!(out.contains("<stdin>: 2 errors"), "{out}");

    let clean = std::fs::read("rules/default.rules").expect("shipped rules");
    let (code, out, _) = run_with_input(&["check", "-"], &clean);
    assert_eq!((code, out.as_str()), (0, "<stdin>: ok\n"));

    // `fmt -` writes the formatted text to standard output; canonical text comes back as is.
    let (code, out, _) = run_with_input(&["fmt", "-"], &clean);
    assert_eq!(code, 0);
    assert_eq!(out.as_bytes(), clean.as_slice());
    let (code, out, _) = run_with_input(&["fmt", "-"], b"policy \"p\"\ntimezone   \"UTC\"\n");
    assert_eq!(
        (code, out.as_str()),
        (0, "policy \"p\"\ntimezone \"UTC\"\n")
    );
}

#[test]
fn explain_help_describes_its_own_json() {
    // Issue 12: `explain --help` described the JSON as an array of diagnostics.
    let (code, out, _) = run(&["explain", "--help"]);
    assert_eq!(code, 0);
    assert!(!out.contains("array of diagnostics"), "{out}");
    assert!(
        out.contains("One JSON object") && out.contains("the decision"),
        "{out}"
    );
}

#[test]
fn diff_exits_1_when_policies_differ_and_2_when_it_cannot_compare() {
    // Issue 12: both were exit 1.
    let same = ["diff", "rules/default.rules", "rules/default.rules"];
    assert_eq!(run(&same).0, 0);
    let differ = ["diff", "rules/default.rules", "rules/examples/naive.rules"];
    assert_eq!(run(&differ).0, 1);
    let broken = "tests/fixtures/diagnostics/E101.rules";
    let (code, _, err) = run(&["diff", "rules/default.rules", broken]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("error[E101]"), "{err}");
    let (_, help, _) = run(&["diff", "--help"]);
    assert!(
        help.contains("1 they differ") && help.contains("2 they cannot be compared"),
        "{help}"
    );
}

#[test]
fn serve_without_arguments_points_at_the_demo() {
    let (code, _, err) = run(&["serve"]);
    assert_eq!(code, 2);
    assert!(err.contains("--config") && err.contains("--demo"), "{err}");
}

#[test]
fn audit_show_since_takes_a_plain_date() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = write(dir.path(), "audit.jsonl", b"");
    let (code, _, err) = run(&["audit", "show", "--since", "2026-03-29", &log]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["audit", "show", "--since", "yesterday", &log]);
    assert_eq!(code, 2);
    assert!(err.contains("a date like 2026-03-29"), "{err}");
    let (_, help, _) = run(&["audit", "show", "--help"]);
    assert!(help.contains("midnight UTC"), "{help}");
}

/// A scenario of one trigger from `source` under the default rules, in `dir`.
fn one_trigger_scenario(dir: &Path, rules: &str, source: &str) -> String {
    let text = format!(
        "rules = \"{rules}\"\nstart = \"2026-03-04T10:00:00Z\"\n\
         [[schedule]]\nid = \"s1\"\nbu = \"b\"\nweek = \"2026-03-02\"\n\
         [[trigger]]\nat = \"2026-03-04T10:00:00Z\"\nschedule = \"s1\"\nsource = \"{source}\"\n"
    );
    write(dir, "one.toml", text.as_bytes())
}

#[test]
fn a_scenario_source_the_policy_does_not_declare_is_e108_at_its_line() {
    // Issue 12: `source = "jira"` ran silently.
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/default.rules");
    let scenario = one_trigger_scenario(dir.path(), &rules.display().to_string(), "jira");
    let (code, out, err) = run(&["simulate", &scenario]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("error[E108]") && err.contains("`jira`"),
        "{err}"
    );
    assert!(err.contains(&format!("{scenario}:10:10")), "{err}");
    assert!(err.contains("servicenow, manual, timer"), "{err}");
    let (code, out, _) = run(&["test", &scenario]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL") && out.contains("error[E108]"), "{out}");
    // No scenario ran under the policy: no coverage line claims none of its rules decided.
    assert!(!out.contains("coverage"), "{out}");
    // The storm's timer against naive.rules, which now declares it.
    let (code, _, err) = run(&[
        "simulate",
        "rules/scenarios/storm.toml",
        "--rules",
        "rules/examples/naive.rules",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_missing_rules_file_names_the_scenario_and_where_paths_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = one_trigger_scenario(dir.path(), "default.rules", "servicenow");
    let (code, _, err) = run(&["simulate", &scenario]);
    assert_eq!(code, 2);
    let folder = dir.path().display();
    assert!(
        err.contains(&format!(
            "{scenario}: cannot read its rules file {folder}/default.rules"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("read from the scenario's folder, {folder}")),
        "{err}"
    );
}

/// `serve --demo` on an ephemeral port, its stderr piped (no terminal) and `NO_COLOR`
/// unset; the child and what it printed up to the line saying it listens.
fn start_demo(dir: &Path) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_publish-guard"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--demo-dir"])
        .arg(dir)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut printed = String::new();
    if let Some(pipe) = child.stderr.take() {
        let mut lines = std::io::BufReader::new(pipe).lines();
        // Blocks only until the line comes: the process writes it, or exits (EOF).
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with("publish-guard relay listening on http://") {
                break;
            }
        }
        // Keep draining, so the relay's later log lines never meet a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
    }
    (child, printed)
}

/// One HTTP/1.1 request over a plain socket; the whole answer (head and body).
fn http(addr: &str, request: &str) -> String {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(addr).expect("connects");
    stream.write_all(request.as_bytes()).expect("sends");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answers");
    answer
}

/// The text after `marker` on the line holding it, up to any of `end`.
fn after<'t>(text: &'t str, marker: &str, end: &[char]) -> &'t str {
    let line = text
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_default();
    let tail = line.split_once(marker).map_or("", |(_, tail)| tail);
    tail.split(|c: char| end.contains(&c))
        .next()
        .unwrap_or_default()
}

#[test]
fn serve_demo_speaks_plainly_to_a_redirected_log() {
    // Issue 12: colour codes in a redirected log, `publish-guard` assumed on PATH, "ten at
    // once" promised without the command, and a refused reload's diagnostics JSON-escaped.
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    let (mut child, printed) = start_demo(&demo);
    let _ = child.kill();
    let _ = child.wait();
    assert!(printed.contains("relay listening on http://"), "{printed}");
    assert!(!printed.contains('\u{1b}'), "ANSI escapes in:\n{printed}");
    let program = env!("CARGO_BIN_EXE_publish-guard");
    assert!(
        printed.contains(&format!("  {program} audit show ")),
        "{printed}"
    );
    assert!(
        printed.contains("for i in 1 2 3 4 5 6 7 8 9 10; do send & done; wait"),
        "{printed}"
    );
    assert!(printed.contains("  send() {"), "{printed}");
}

#[test]
fn a_refused_reload_answers_readable_diagnostics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = dir.path().join("demo");
    let (mut child, printed) = start_demo(&demo);
    std::fs::write(demo.join("default.rules"), "policy \"x\"\n").expect("rules");
    let addr = after(&printed, "relay listening on http://", &[' ', '/']);
    let token = after(&printed, "authorization: Bearer ", &['\'']);
    assert!(printed.contains("-H 'accept: text/plain'"), "{printed}");
    let answer = http(
        addr,
        &format!(
            "POST /admin/reload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{answer}"
    );
    // The rendered diagnostic, its lines as lines (not `\n` inside a JSON string).
    assert!(answer.contains("\nerror[E111]: "), "{answer}");
    assert!(answer.contains("\n1 | policy \"x\"\n"), "{answer}");
}
