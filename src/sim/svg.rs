//! The timeline as a picture: one lane per schedule, time left to right, a mark per step,
//! and a legend. Plain SVG text, deterministic, no fonts or scripts required.

use crate::sim::report::{Mark, Report, clock, human};
use jiff::{SignedDuration, Timestamp};
use std::fmt::Write as _;

const WIDTH: f64 = 1200.0;
const LABEL: f64 = 150.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const LANE: f64 = 72.0;
const LEGEND: f64 = 96.0;

/// Which row of a lane a mark sits on: arrivals on top, decisions in the middle, the
/// API's answers at the bottom, so marks of one instant do not cover each other.
fn row_of(mark: Mark) -> f64 {
    match mark {
        Mark::Trigger | Mark::Coalesced | Mark::Person => 14.0,
        Mark::Publish
        | Mark::Skip
        | Mark::Backoff
        | Mark::Defer
        | Mark::Decision
        | Mark::Failure => 34.0,
        Mark::Read
        | Mark::Accepted
        | Mark::Conflict
        | Mark::Throttled
        | Mark::ServerError
        | Mark::Published => 54.0,
    }
}

/// How each mark is drawn, and what the legend calls it. Marks missing here (reads,
/// other decisions) are not drawn: they would only add noise.
const STYLES: &[(Mark, &str, &str)] = &[
    (Mark::Trigger, "trigger", "#555"),
    (Mark::Coalesced, "coalesced trigger", "#bbb"),
    (Mark::Person, "person in the UI", "#1f6fd1"),
    (Mark::Publish, "publish decided", "#1a9641"),
    (Mark::Skip, "skip", "#888"),
    (Mark::Backoff, "backoff", "#f08c00"),
    (Mark::Defer, "defer", "#7b3fbf"),
    (Mark::Failure, "failure", "#000"),
    (Mark::Accepted, "publish accepted", "#1a9641"),
    (Mark::Published, "published", "#1a9641"),
    (Mark::Conflict, "409 conflict", "#d7191c"),
    (Mark::Throttled, "429 throttled", "#e7298a"),
    (Mark::ServerError, "5xx / no answer", "#8c2d04"),
];

fn style(mark: Mark) -> Option<(&'static str, &'static str)> {
    STYLES
        .iter()
        .find(|(m, _, _)| *m == mark)
        .map(|(_, name, color)| (*name, *color))
}

/// One mark's shape centred on `(x, y)`.
fn shape(out: &mut String, mark: Mark, x: f64, y: f64, color: &str) {
    let _ = match mark {
        Mark::Trigger | Mark::Coalesced => {
            writeln!(
                out,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-width="1.5"/>"#,
                y - 6.0,
                y + 6.0
            )
        }
        Mark::Person => writeln!(
            out,
            r#"<path d="M{x:.1} {:.1} l6 6 l-6 6 l-6 -6 z" fill="{color}"/>"#,
            y - 6.0
        ),
        Mark::Publish | Mark::Accepted => writeln!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{color}"/>"#
        ),
        Mark::Published => writeln!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="white" stroke="{color}" stroke-width="2"/>"#
        ),
        Mark::Skip => writeln!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="none" stroke="{color}" stroke-width="1.5"/>"#
        ),
        Mark::Backoff => writeln!(
            out,
            r#"<path d="M{:.1} {:.1} h10 l-5 -9 z" fill="{color}"/>"#,
            x - 5.0,
            y + 4.0
        ),
        Mark::Throttled => writeln!(
            out,
            r#"<path d="M{:.1} {:.1} h10 l-5 9 z" fill="{color}"/>"#,
            x - 5.0,
            y - 5.0
        ),
        Mark::Defer => writeln!(
            out,
            r#"<path d="M{:.1} {:.1} l8 5 l-8 5 z" fill="{color}"/>"#,
            x - 4.0,
            y - 5.0
        ),
        Mark::Conflict => writeln!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="{color}"/>"#,
            x - 4.5,
            y - 4.5
        ),
        Mark::ServerError | Mark::Failure => writeln!(
            out,
            r#"<path d="M{:.1} {:.1} l9 9 m0 -9 l-9 9" stroke="{color}" stroke-width="2.5"/>"#,
            x - 4.5,
            y - 4.5
        ),
        Mark::Read | Mark::Decision => Ok(()),
    };
}

/// A tick interval giving roughly ten ticks over `span`.
fn tick_step(span: SignedDuration) -> SignedDuration {
    const STEPS: &[i64] = &[
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    ];
    let secs = span.as_secs().max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| secs / s <= 12)
        .unwrap_or(86400 * (secs / 86400 / 12).max(1));
    SignedDuration::from_secs(step)
}

/// Escape text for SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report's timeline as an SVG document.
pub fn render(report: &Report) -> String {
    let lanes = report.schedules.len().max(1) as f64;
    let height = TOP + lanes * LANE + LEGEND;
    let start = report.start;
    let end = report.end.max(start + SignedDuration::from_secs(1));
    let span = end.duration_since(start);
    let plot = WIDTH - LABEL - RIGHT;
    let x_of = |at: Timestamp| {
        LABEL + plot * at.duration_since(start).as_secs_f64() / span.as_secs_f64().max(1e-9)
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LABEL}" y="22" font-size="15" font-weight="bold">{} - policy {} - coalescing {}</text>"#,
        esc(&report.scenario),
        esc(&report.policy),
        if report.coalesce { "on" } else { "off" }
    );
    let s = &report.summary;
    let _ = writeln!(
        out,
        r##"<text x="{LABEL}" y="40" fill="#444">{} triggers, {} publishes, {} x 409, {} x 429, {} x 5xx, {} failures, {} API calls</text>"##,
        s.triggers,
        s.publishes,
        s.conflicts,
        s.throttled,
        s.server_errors,
        s.failures,
        s.api_calls.values().sum::<u64>()
    );
    // Time axis: grid lines and labels.
    let step = tick_step(span);
    let step_secs = step.as_secs().max(1);
    let first = start.as_second().div_euclid(step_secs) * step_secs;
    let mut t = first;
    while t <= end.as_second() {
        if let Ok(at) = Timestamp::from_second(t)
            && at >= start
        {
            let x = x_of(at);
            let label = if step_secs < 60 {
                at.strftime("%H:%M:%S").to_string()
            } else {
                at.strftime("%H:%M").to_string()
            };
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/>"##,
                TOP - 8.0,
                TOP + lanes * LANE
            );
            let _ = writeln!(
                out,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#666">{label}</text>"##,
                TOP - 12.0
            );
        }
        t += step_secs;
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#666">UTC, {} to {}</text>"##,
        WIDTH - RIGHT,
        TOP - 30.0,
        esc(&clock(start)),
        esc(&clock(end))
    );
    // Lanes.
    for (i, name) in report.schedules.iter().enumerate() {
        let y = TOP + i as f64 * LANE;
        let fill = if i % 2 == 0 { "#f7f7f7" } else { "#ffffff" };
        let _ = writeln!(
            out,
            r#"<rect x="{LABEL}" y="{y:.1}" width="{plot:.1}" height="{LANE}" fill="{fill}" fill-opacity="0.6"/>"#
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="bold">{}</text>"#,
            LABEL - 52.0,
            y + LANE / 2.0 + 4.0,
            esc(name)
        );
        for (row, label) in [(14.0, "in"), (34.0, "decide"), (54.0, "api")] {
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="9" fill="#999">{label}</text>"##,
                LABEL - 6.0,
                y + row + 3.0
            );
        }
    }
    // Processing spans: from an accepted publish to the schedule showing published.
    let mut open: Vec<Option<Timestamp>> = vec![None; report.schedules.len()];
    for r in &report.timeline {
        let lane = r.schedule as usize;
        let y = TOP + lane as f64 * LANE + row_of(Mark::Published);
        match r.mark {
            Mark::Accepted => {
                if let Some(slot) = open.get_mut(lane) {
                    *slot = Some(r.at);
                }
            }
            Mark::Published => {
                if let Some(from) = open.get_mut(lane).and_then(Option::take) {
                    let _ = writeln!(
                        out,
                        r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#a6dba0" stroke-width="6"/>"##,
                        x_of(from),
                        x_of(r.at)
                    );
                }
            }
            _ => {}
        }
    }
    for r in &report.timeline {
        if let Some((_, color)) = style(r.mark) {
            let y = TOP + r.schedule as f64 * LANE + row_of(r.mark);
            shape(&mut out, r.mark, x_of(r.at), y, color);
        }
    }
    // Legend.
    let legend_top = TOP + lanes * LANE + 24.0;
    for (i, (mark, name, color)) in STYLES.iter().enumerate() {
        let col = (i % 5) as f64;
        let line = (i / 5) as f64;
        let x = LABEL + col * 205.0;
        let y = legend_top + line * 22.0;
        shape(&mut out, *mark, x, y, color);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{name}</text>"#,
            x + 12.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" fill="#666">time spent waiting: {}, summed over {} waits of cycles that overlap</text>"##,
        LABEL,
        legend_top + 3.0 * 22.0,
        human(report.summary.waiting),
        report.summary.waits
    );
    out.push_str("</svg>\n");
    out
}
