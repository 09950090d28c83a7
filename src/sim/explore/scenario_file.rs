//! A world written back as a scenario TOML, so `simulate` and `test` replay it exactly.

use crate::sim::scenario::{GeneratorKind, PersonKind, Scenario, Target};
use jiff::SignedDuration;
use std::fmt::Write;

/// The scenario as a file; `rules` is the path the file names.
pub fn to_toml(scenario: &Scenario, rules: &str, comment: &str) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "name = {:?}", scenario.name);
    let _ = writeln!(out, "rules = {rules:?}");
    let _ = writeln!(out, "start = \"{}\"", scenario.start);
    let _ = writeln!(out, "seed = {}", scenario.seed);
    let api = &scenario.api;
    let _ = writeln!(out, "\n[api]");
    let _ = writeln!(out, "processing = \"{}\"", duration(api.processing));
    let _ = writeln!(out, "latency = \"{}\"", duration(api.latency));
    let _ = writeln!(out, "rate_limit = {}", api.rate_limit);
    if api.error_rate > 0.0 {
        let _ = writeln!(out, "error_rate = {:?}", api.error_rate);
        let _ = writeln!(out, "error_status = {}", api.error_status);
    }
    for o in &api.outages {
        let _ = writeln!(
            out,
            "[[api.outage]]\nfrom = \"{}\"\nuntil = \"{}\"\nstatus = {}",
            o.from, o.until, o.status
        );
    }
    if let Some(n) = &api.notifications {
        let _ = writeln!(
            out,
            "[api.notifications]\ndelay = \"{}\"\nloss = {:?}\nmax_age = \"{}\"",
            duration(n.delay),
            f64::from(n.loss_per_mille) / 1000.0,
            duration(n.max_age)
        );
        for (from, until) in &n.drops {
            let _ = writeln!(
                out,
                "[[api.notifications.drop]]\nfrom = \"{from}\"\nuntil = \"{until}\""
            );
        }
    }
    let _ = writeln!(
        out,
        "\n[runner]\ncoalesce = {}\nrequests_per_minute = {}",
        scenario.runner.coalesce, scenario.runner.requests_per_minute
    );
    for s in &scenario.schedules {
        let _ = writeln!(
            out,
            "\n[[schedule]]\nid = {:?}\nbu = {:?}\nweek = \"{}\"\npublished = {}\nversion = {}",
            s.id, s.business_unit, s.week, s.published, s.version
        );
    }
    let id = |i: usize| scenario.schedules.get(i).map_or("", |s| s.id.as_str());
    for p in &scenario.people {
        let action = match p.kind {
            PersonKind::Edit => "edit",
            PersonKind::Publish => "publish",
        };
        let _ = writeln!(
            out,
            "\n[[person]]\nat = \"{}\"\nschedule = {:?}\naction = \"{action}\"\nwho = {:?}",
            p.at,
            id(p.schedule),
            p.who
        );
    }
    for t in &scenario.triggers {
        let _ = write!(
            out,
            "\n[[trigger]]\nat = \"{}\"\nschedule = {:?}\nsource = {:?}\n",
            t.at,
            id(t.schedule),
            t.source
        );
        if let Some(d) = &t.delivery {
            let _ = writeln!(out, "delivery = {d:?}");
        }
        if let Some(e) = &t.event {
            let _ = writeln!(out, "event = {e:?}");
        }
    }
    for g in &scenario.generators {
        let target = match g.target {
            Target::One(i) => id(i),
            Target::All => "*",
        };
        let head = |out: &mut String, table: &str| {
            let _ = write!(
                out,
                "\n[[{table}]]\nschedule = {target:?}\nsource = {:?}\n",
                g.source
            );
            if let Some(e) = &g.event {
                let _ = writeln!(out, "event = {e:?}");
            }
        };
        match &g.kind {
            GeneratorKind::Burst { at, count, within } => {
                head(&mut out, "burst");
                let _ = writeln!(
                    out,
                    "at = \"{at}\"\ncount = {count}\nwithin = \"{}\"",
                    duration(*within)
                );
            }
            GeneratorKind::Every {
                interval,
                from,
                until,
                between,
                timezone,
            } => {
                head(&mut out, "every");
                let _ = writeln!(
                    out,
                    "interval = \"{}\"\nfrom = \"{from}\"\nuntil = \"{until}\"",
                    duration(*interval)
                );
                if let Some((open, close)) = between {
                    let hm = |t: &jiff::civil::Time| format!("{:02}:{:02}", t.hour(), t.minute());
                    let _ = writeln!(out, "between = [{:?}, {:?}]", hm(open), hm(close));
                }
                if let Some(name) = timezone.iana_name() {
                    let _ = writeln!(out, "timezone = {name:?}");
                }
            }
            GeneratorKind::Random {
                per_minute,
                from,
                until,
            } => {
                head(&mut out, "random");
                let _ = writeln!(
                    out,
                    "per_minute = {per_minute:?}\nfrom = \"{from}\"\nuntil = \"{until}\""
                );
            }
        }
    }
    for at in &scenario.restarts {
        let _ = writeln!(out, "\n[[restart]]\nat = \"{at}\"");
    }
    out
}

/// A duration as scenario files write it: `1500ms`.
fn duration(d: SignedDuration) -> String {
    format!("{}ms", d.as_millis())
}
