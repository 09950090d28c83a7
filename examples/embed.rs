//! Embedding publish-guard: load a policy, decide for a few sets of facts, print why.
//!
//! Run with `cargo run --example embed [RULES]` (default: `rules/default.rules`). It needs
//! none of the service stack: `cargo run --example embed --no-default-features` builds
//! only the language, the policy and the evaluator.

use publish_guard::{Facts, PhaseKind, compile, evaluate, explain};
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "rules/default.rules".into());
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let source = std::fs::read_to_string(path)?;
    // A file that does not check renders its diagnostics as `publish-guard check` does.
    let policy = compile(&source).map_err(|e| e.in_file(path))?.policy;

    let now: jiff::Timestamp = "2026-03-03T09:30:00Z".parse()?;
    let cases = [
        (
            "a ServiceNow webhook for an edited schedule",
            "draft",
            false,
        ),
        ("the same delivery again", "draft", true),
        ("a webhook while a publish is running", "publishing", false),
    ];
    for (what, state, duplicate) in cases {
        let mut facts = Facts::new();
        facts
            .set_by_name("now", now)?
            .set_by_name("trigger.source", "servicenow")?
            .set_by_name("trigger.duplicate", duplicate)?
            .set_by_name("schedule.state", state)?;
        let decision = evaluate(&policy, PhaseKind::Trigger, &facts);
        println!("== {what}: {} (rule {})", decision.verdict, decision.rule);
        print!(
            "{}",
            explain(&policy, PhaseKind::Trigger, &facts).render_human(&source)
        );
        println!();
    }
    Ok(())
}
