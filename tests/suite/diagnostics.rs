//! Diagnostics as a person sees them: one small bad file per code, rendered and pinned.

use crate::common;

use publish_guard::PhaseKind;
use publish_guard::language::diagnostic::{Code, Diagnostic, render_all};
use std::path::Path;

const FIXTURES: &str = "tests/fixtures/diagnostics";

/// Every diagnostic of a fixture (errors, or the warnings of a file that checks).
fn diagnostics_of(source: &str) -> Vec<Diagnostic> {
    match publish_guard::compile(source) {
        Ok(checked) => checked.warnings,
        Err(e) => e.into_diagnostics(),
    }
}

fn read(name: &str) -> String {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// It checks as written; its one warning is W205 (a failed read ends in `otherwise skip`),
/// which is why the shipped default adds `rule unreadable`.
#[test]
fn the_design_example_checks_with_only_the_unknown_state_warning() {
    let source = read("design.rules");
    common::parse_valid(&source);
    let checked =
        publish_guard::compile(&source).unwrap_or_else(|e| panic!("{}", e.in_file("design.rules")));
    let codes: Vec<&str> = checked.warnings.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        ["W205"],
        "{}",
        render_all(&checked.warnings, "design.rules", &source)
    );
    assert_eq!(checked.policy.name(), "servicenow-autopublish");
    assert_eq!(checked.policy.phase(PhaseKind::Trigger).rules.len(), 6);
    assert_eq!(checked.policy.phase(PhaseKind::Response).rules.len(), 4);
}

/// Codes found in scenario files rather than rules files; `tests/sim_scenario.rs` pins them.
const SCENARIO_CODES: &[Code] = &[Code::BadScenario];

/// Codes found in facts files: their fixture is `CODE.facts`, read against the DESIGN
/// example policy.
const FACTS_FILE_CODES: &[Code] = &[Code::BadFact];

/// The diagnostics of a facts file read against the DESIGN example policy.
fn facts_diagnostics_of(source: &str) -> Vec<Diagnostic> {
    let design = read("design.rules");
    let policy = match publish_guard::compile(&design) {
        Ok(checked) => checked.policy,
        Err(e) => panic!("{}", e.in_file("design.rules")),
    };
    publish_guard::policy::facts_file::load_facts(source, &policy)
        .err()
        .unwrap_or_default()
}

/// Each code's fixture, rendered; the snapshot is the product.
#[test]
fn every_code_has_a_fixture_and_a_snapshot() {
    for code in Code::ALL.iter().filter(|c| !SCENARIO_CODES.contains(c)) {
        let facts_file = FACTS_FILE_CODES.contains(code);
        let extension = if facts_file { "facts" } else { "rules" };
        let name = format!("{}.{extension}", code.as_str());
        let source = read(&name);
        let diagnostics = if facts_file {
            facts_diagnostics_of(&source)
        } else {
            diagnostics_of(&source)
        };
        assert!(
            diagnostics.iter().any(|d| d.code == *code),
            "{name} does not produce {}:\n{}",
            code.as_str(),
            render_all(&diagnostics, &name, &source)
        );
        insta::assert_snapshot!(code.as_str(), render_all(&diagnostics, &name, &source));
    }
}

#[test]
fn json_output_carries_code_position_end_help_and_notes() {
    let source = read("E106.rules");
    let json: Vec<_> = diagnostics_of(&source)
        .iter()
        .map(|d| d.to_json("E106.rules", &source))
        .collect();
    insta::assert_json_snapshot!("E106_json", json);
}

#[test]
fn errors_and_warnings_come_together_sorted_by_position() {
    let source = read("E104.rules").replace("defer until business_hours", "publish");
    let diagnostics = diagnostics_of(&source);
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code.as_str()).collect();
    // The typo leaves the declared window unused: both are reported, the window first.
    assert_eq!(codes, ["W203", "E104"]);
}

/// Every rules file the project ships, as `(path, text)`.
fn shipped_rules() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![Path::new("rules").to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rules") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                found.push((path.display().to_string(), text));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_shipped_rules_file_checks_without_errors_or_warnings() {
    let shipped = shipped_rules();
    assert!(shipped.iter().any(|(p, _)| p.ends_with("default.rules")));
    for (path, source) in shipped {
        let diagnostics = diagnostics_of(&source);
        assert!(
            diagnostics.is_empty(),
            "{}",
            render_all(&diagnostics, &path, &source)
        );
    }
}

/// A file with many mistakes: every one is reported, in order, and none hides another.
#[test]
fn a_file_with_many_mistakes_reports_each_of_them() {
    let source = read("many.rules");
    insta::assert_snapshot!(
        "many",
        render_all(&diagnostics_of(&source), "many.rules", &source)
    );
}
