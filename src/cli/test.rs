//! `publish-guard test [PATH...]`: run every scenario under the paths, hold each against its
//! expectations, and list the rules no scenario made decide.

use crate::cli::simulate::{check_sources, load_scenario, load_scenario_policy};
use crate::cli::{CliError, Outcome};
use crate::language::ast::PhaseKind;
use crate::policy::Policy;
use crate::sim::engine::{RunOptions, run};
use crate::sim::expect::{check, render};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Scenario files, or folders searched for `*.toml` (default: `rules/scenarios`).
    pub paths: Vec<PathBuf>,
}

/// Every `*.toml` under `path` (or `path` itself), sorted.
fn scenario_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), CliError> {
    if !path.is_dir() {
        out.push(path.to_owned());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        if child.is_dir() {
            scenario_files(&child, out)?;
        } else if child.extension().is_some_and(|e| e == "toml") {
            out.push(child);
        }
    }
    Ok(())
}

/// A policy's rules, with the scenarios that used it and the rules they made decide.
struct Coverage {
    policy: Policy,
    decided: BTreeSet<(PhaseKind, String)>,
    /// Scenarios that ran under it: coverage means nothing for a policy none ran.
    runs: usize,
}

/// What `test` prints and whether everything passed.
pub fn report(paths: &[PathBuf]) -> Result<(String, bool), CliError> {
    let mut files = Vec::new();
    let defaults = [PathBuf::from("rules/scenarios")];
    for path in if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    } {
        scenario_files(path, &mut files)?;
    }
    let mut out = String::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut coverage: BTreeMap<PathBuf, Coverage> = BTreeMap::new();
    for file in &files {
        let name = file.display();
        let loaded = match load_scenario(file)? {
            Ok(s) => s,
            Err(diagnostics) => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "FAIL  {name}: the scenario does not load\n{diagnostics}"
                );
                continue;
            }
        };
        let scenario = &loaded.scenario;
        if !coverage.contains_key(&scenario.rules) {
            match load_scenario_policy(&loaded)? {
                Ok(policy) => {
                    coverage.insert(
                        scenario.rules.clone(),
                        Coverage {
                            policy,
                            decided: BTreeSet::new(),
                            runs: 0,
                        },
                    );
                }
                Err(diagnostics) => {
                    failed += 1;
                    let _ = writeln!(out, "FAIL  {name}: its rules do not check\n{diagnostics}");
                    continue;
                }
            }
        }
        let Some(cov) = coverage.get_mut(&scenario.rules) else {
            continue;
        };
        if let Err(diagnostics) = check_sources(&loaded, &cov.policy, &scenario.rules) {
            failed += 1;
            let _ = writeln!(
                out,
                "FAIL  {name}: its triggers' sources are not the policy's\n{diagnostics}"
            );
            continue;
        }
        let result = run(
            scenario,
            &cov.policy,
            RunOptions {
                keep_timeline: false,
            },
        );
        cov.decided.extend(result.decided);
        cov.runs += 1;
        let mismatches = check(&scenario.expect, &result.report.summary, &result.outcomes);
        if mismatches.is_empty() {
            passed += 1;
            let note = if scenario.expect.is_empty() {
                " (expects nothing)"
            } else {
                ""
            };
            let _ = writeln!(out, "ok    {name}{note}");
        } else {
            failed += 1;
            let _ = writeln!(
                out,
                "FAIL  {name}: expected (-) against actual (+)\n{}",
                render(&mismatches)
            );
        }
    }
    out.push_str(&uncovered(&coverage));
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    Ok((out, failed == 0))
}

/// The rules of each policy that no scenario made decide.
fn uncovered(coverage: &BTreeMap<PathBuf, Coverage>) -> String {
    let mut out = String::new();
    for (path, cov) in coverage.iter().filter(|(_, cov)| cov.runs > 0) {
        let mut missing = Vec::new();
        for phase in [PhaseKind::Trigger, PhaseKind::Response] {
            let rules = cov.policy.phase(phase);
            let names = rules
                .rules
                .iter()
                .map(|r| r.name.as_str())
                .chain(std::iter::once("otherwise"));
            for rule in names {
                let key = (phase, rule.to_string());
                if !cov.decided.contains(&key) {
                    missing.push(format!("on {} {rule}", phase.keyword()));
                }
            }
        }
        if missing.is_empty() {
            let _ = writeln!(out, "coverage {}: every rule decided", path.display());
        } else {
            let _ = writeln!(
                out,
                "coverage {}: no scenario made these decide: {}",
                path.display(),
                missing.join(", ")
            );
        }
    }
    out
}

/// Run `test`.
pub fn test(args: &TestArgs) -> Result<Outcome, CliError> {
    let (text, ok) = report(&args.paths)?;
    print!("{text}");
    Ok(if ok { Outcome::Ok } else { Outcome::Failed })
}
