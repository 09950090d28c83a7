//! `publish-guard explore [--rules FILE] [--seeds N | --seed S] [--time-limit DURATION]
//! [--format human|json] [--save FILE]`: random worlds through the simulator, invariants
//! after every run; a violation is shrunk and printed as a scenario file that `simulate` and
//! `test` replay (`--save FILE` writes it).

use crate::cli::simulate::load_policy;
use crate::cli::{CliError, Outcome};
use crate::sim::explore::scenario_file::to_toml;
use crate::sim::explore::{Exploration, Seeds, explore};
use jiff::SignedDuration;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How `explore` prints what it found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text: the count, then any finding with its timeline and scenario file.
    #[default]
    Human,
    /// One JSON document.
    Json,
}

/// Arguments of `explore`.
#[derive(Debug, clap::Args)]
pub struct ExploreArgs {
    /// The rules file to explore.
    #[arg(long, default_value = "rules/default.rules")]
    pub rules: PathBuf,
    /// Try seeds 0..N.
    #[arg(long, default_value_t = 10_000, conflicts_with = "seed")]
    pub seeds: u64,
    /// Try this one seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after this long (e.g. `30s`, `10m`), whatever the seeds.
    #[arg(long)]
    pub time_limit: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Write a finding's shrunk scenario to this file (its `rules` path written from the
    /// file's folder), to replay with `publish-guard simulate FILE` or `test FILE`; nothing
    /// is written when every invariant held.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

/// Run `explore`: exit 1 when a promise was broken.
pub fn run(args: &ExploreArgs) -> Result<Outcome, CliError> {
    let policy = match load_policy(&args.rules)? {
        Ok(p) => p,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return Ok(Outcome::Failed);
        }
    };
    let deadline = match &args.time_limit {
        None => None,
        Some(text) => match text.parse::<SignedDuration>() {
            Ok(d) if !d.is_negative() => {
                let limit = Duration::try_from(d).unwrap_or(Duration::MAX);
                Some(Instant::now() + limit)
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "--time-limit {text:?} is not a duration like \"30s\" or \"10m\""
                )));
            }
        },
    };
    let seeds = args.seed.map_or(Seeds::Count(args.seeds), Seeds::One);
    let started = Instant::now();
    let found = explore(&policy, &args.rules, seeds, deadline);
    let rules = args.rules.display().to_string();
    match args.format {
        Format::Human => print!("{}", human(&found, &rules, started.elapsed())),
        Format::Json => println!("{}", json(&found, &rules)),
    }
    if let Some(path) = &args.save
        && found.finding.is_some()
    {
        save(&found, &args.rules, path)?;
    }
    Ok(if found.finding.is_some() {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// The replay file of a finding, with what it shows in its opening comment; its `rules`
/// is the rules file as the file names it (relative paths from the file's folder).
fn replay_file(found: &Exploration, rules: &str) -> Option<String> {
    replay_file_naming(found, rules, rules)
}

fn replay_file_naming(found: &Exploration, rules: &str, named: &str) -> Option<String> {
    let f = found.finding.as_ref()?;
    let comment = format!(
        "Found by `publish-guard explore --rules {rules} --seed {}`, shrunk.\nBreaks {}: {}",
        f.seed, f.shrunk_violation.invariant, f.shrunk_violation.detail
    );
    Some(to_toml(&f.scenario, named, &comment))
}

/// Writes the finding's replay file to `path`, naming `rules` from the file's folder (as
/// `simulate` reads a scenario's `rules`).
fn save(found: &Exploration, rules: &Path, path: &Path) -> Result<(), CliError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CliError::Io { path, source }
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder = folder.canonicalize().map_err(io(folder))?;
    let target = rules.canonicalize().map_err(io(rules))?;
    let named = relative(&target, &folder);
    let shown = rules.display().to_string();
    let Some(text) = replay_file_naming(found, &shown, &named.display().to_string()) else {
        return Ok(());
    };
    std::fs::write(path, text).map_err(io(path))?;
    eprintln!("saved the shrunk scenario to {}", path.display());
    Ok(())
}

/// `target` as a path from `folder` (both absolute and canonical).
fn relative(target: &Path, folder: &Path) -> PathBuf {
    let common = target
        .components()
        .zip(folder.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = folder.components().count() - common;
    let mut path: PathBuf = std::iter::repeat_n("..", ups).collect();
    path.extend(target.components().skip(common));
    path
}

fn human(found: &Exploration, rules: &str, elapsed: Duration) -> String {
    let mut out = format!(
        "explored {} world{} ({} triggers) under {rules} in {:.1}s\n",
        found.runs,
        if found.runs == 1 { "" } else { "s" },
        found.triggers,
        elapsed.as_secs_f64()
    );
    match (&found.finding, replay_file(found, rules)) {
        (Some(f), Some(file)) => {
            let schedule = |v: &crate::sim::explore::invariants::Violation| {
                f.scenario
                    .schedules
                    .get(v.schedule as usize)
                    .map_or_else(|| format!("#{}", v.schedule), |s| s.id.clone())
            };
            out.push_str(&format!(
                "\nVIOLATION of {} at seed {}: {}\n",
                f.violation.invariant, f.seed, f.violation.detail
            ));
            out.push_str(&format!(
                "shrunk to {} trigger(s), {} stream(s) of timer or random arrivals, {} person \
                 action(s), {} restart(s): {} on {} at {}: {}\n",
                f.scenario.triggers.len(),
                f.scenario.generators.len(),
                f.scenario.people.len(),
                f.scenario.restarts.len(),
                f.shrunk_violation.invariant,
                schedule(&f.shrunk_violation),
                f.shrunk_violation.at,
                f.shrunk_violation.detail
            ));
            out.push_str("\ntimeline around it:\n\n");
            out.push_str(&f.timeline);
            out.push_str("\nscenario (save it and replay with `publish-guard simulate FILE`):\n\n");
            out.push_str(&file);
        }
        _ => out.push_str("every invariant held\n"),
    }
    out
}

fn json(found: &Exploration, rules: &str) -> String {
    let finding = found.finding.as_ref().map(|f| {
        serde_json::json!({
            "seed": f.seed,
            "violation": f.violation,
            "shrunk": f.shrunk_violation,
            "timeline": f.timeline,
            "scenario": replay_file(found, rules),
        })
    });
    serde_json::json!({
        "runs": found.runs,
        "triggers": found.triggers,
        "finding": finding,
    })
    .to_string()
}
