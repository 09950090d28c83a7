//! `publish-guard diff OLD NEW [--scenario FILE]`: what changes if NEW replaces OLD, over
//! the fact space and, with a scenario, on its replay.

use crate::analysis::diff::compare;
use crate::cli::simulate::{check_sources, load_scenario};
use crate::cli::{CliError, Outcome, read_text};
use crate::policy::Policy;
use crate::sim::engine::{RunOptions, run};
use crate::sim::report::{Report, Total};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 the two behave alike; 1 they differ; \
2 they cannot be compared (OLD, NEW or the scenario does not check, or a file cannot be read).")]
pub struct DiffArgs {
    /// The rules file in force.
    pub old: PathBuf,
    /// The rules file that would replace it.
    pub new: PathBuf,
    /// Also replay this scenario under both and show what differs.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
}

/// A rules file's text and its policy, or its diagnostics rendered (`Err(text)`).
fn load(path: &Path) -> Result<Result<(String, Policy), String>, CliError> {
    let source = read_text(path)?;
    Ok(match crate::compile(&source) {
        Ok(checked) => Ok((source, checked.policy)),
        Err(e) => Err(e.in_file(path.display().to_string()).to_string()),
    })
}

/// What `diff` prints and whether the two policies behave alike, or why they cannot be
/// compared (`Err(diagnostics)`: OLD, NEW or the scenario does not check).
pub fn report(args: &DiffArgs) -> Result<Result<(String, bool), String>, CliError> {
    let (old_source, old) = match load(&args.old)? {
        Ok(loaded) => loaded,
        Err(diagnostics) => return Ok(Err(diagnostics)),
    };
    let (new_source, new) = match load(&args.new)? {
        Ok(loaded) => loaded,
        Err(diagnostics) => return Ok(Err(diagnostics)),
    };
    let (old_name, new_name) = (
        args.old.display().to_string(),
        args.new.display().to_string(),
    );
    let space = compare(&old, &old_source, &new, &new_source)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut out = space.render(&old_name, &new_name);
    let mut same = space.is_equivalent();
    if let Some(path) = &args.scenario {
        let loaded = match load_scenario(path)? {
            Ok(s) => s,
            Err(diagnostics) => return Ok(Err(diagnostics)),
        };
        for (policy, rules) in [(&old, &args.old), (&new, &args.new)] {
            if let Err(diagnostics) = check_sources(&loaded, policy, rules) {
                return Ok(Err(diagnostics));
            }
        }
        let scenario = &loaded.scenario;
        let a = run(scenario, &old, RunOptions::default()).report;
        let b = run(scenario, &new, RunOptions::default()).report;
        let (text, alike) = replay_diff(&a, &b, &old_name, &new_name);
        let _ = write!(out, "\nscenario {}: {text}", path.display());
        same &= alike;
    }
    Ok(Ok((out, same)))
}

/// The timeline rows and totals that differ between two replays of one scenario.
fn replay_diff(a: &Report, b: &Report, old_name: &str, new_name: &str) -> (String, bool) {
    let (ta, tb) = (timeline_text(a), timeline_text(b));
    let totals = [
        Total::Triggers,
        Total::Publishes,
        Total::Skips,
        Total::Coalesced,
        Total::Backoffs,
        Total::Deferrals,
        Total::Conflicts,
        Total::Throttled,
        Total::ServerErrors,
        Total::ApiCalls,
        Total::Failures,
    ];
    let changed: Vec<_> = totals
        .iter()
        .map(|t| (t.name(), a.summary.total(*t), b.summary.total(*t)))
        .filter(|(_, x, y)| x != y)
        .collect();
    if ta == tb && changed.is_empty() {
        return (
            "the same timeline and totals under both\n".to_string(),
            true,
        );
    }
    let mut out = String::from("the replays differ\n\ntotals\n");
    let width = changed.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    for (name, x, y) in &changed {
        let _ = writeln!(out, "  {name:width$}  {x} -> {y}");
    }
    let diff = similar::TextDiff::from_lines(&ta, &tb);
    let _ = write!(
        out,
        "\ntimeline\n{}",
        diff.unified_diff()
            .context_radius(1)
            .header(old_name, new_name)
    );
    (out, false)
}

/// One line per timeline row, as the table shows them.
fn timeline_text(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.timeline {
        let schedule = report
            .schedules
            .get(r.schedule as usize)
            .map_or("?", String::as_str);
        let cells = [&r.trigger, &r.decision, &r.rule, &r.call, &r.answer];
        let text: Vec<&str> = cells
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !c.is_empty())
            .collect();
        let _ = writeln!(
            out,
            "{} {schedule} | {}",
            crate::sim::report::clock(r.at),
            text.join(" | ")
        );
    }
    out
}

/// Run `diff`: exit 0 when the two behave alike, 1 when they differ, 2 when they cannot be
/// compared.
pub fn diff(args: &DiffArgs) -> Result<Outcome, CliError> {
    match report(args)? {
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            Ok(Outcome::CannotCompare)
        }
        Ok((text, same)) => {
            print!("{text}");
            Ok(if same { Outcome::Ok } else { Outcome::Failed })
        }
    }
}
