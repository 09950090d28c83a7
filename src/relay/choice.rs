//! Which of a week's schedules a trigger is about, when a source does not name one.
//!
//! Genesys lists a week's schedules in no order, and the list includes multi-week schedules
//! that started in earlier weeks (`BuScheduleListing`, `BuScheduleListItem.weekCount`). So
//! the choice is a rule a person can reason about, and a choice that is not clear is a
//! reasoned failure naming the candidates, never a guess.

use crate::api::ListedSchedule;
use jiff::civil::Date;
use std::fmt::Write;

/// What a source's `schedule` setting asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleChoice {
    /// This schedule id.
    Id(String),
    /// One picked from the week's list.
    Select(Selection),
}

/// How a schedule is picked from a week's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// `latest`: the newest schedule starting in the week, by creation then modification
    /// time.
    Latest,
    /// `published`: the one published schedule covering the week.
    Published,
}

impl ScheduleChoice {
    /// The stored word: `latest`, `published`, or an id.
    pub fn parse(text: &str) -> Self {
        match text {
            "latest" => ScheduleChoice::Select(Selection::Latest),
            "published" => ScheduleChoice::Select(Selection::Published),
            id => ScheduleChoice::Id(id.to_owned()),
        }
    }
}

impl Selection {
    /// The setting as a person writes it.
    fn setting(self) -> &'static str {
        match self {
            Selection::Latest => "schedule = \"latest\"",
            Selection::Published => "schedule = \"published\"",
        }
    }
}

/// Why no schedule was chosen; the message lists what was listed and what setting picks one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoChoice(String);

/// The schedule `choice` picks from what was listed for `week`.
pub fn choose(
    choice: Selection,
    listed: &[ListedSchedule],
    week: Date,
) -> Result<&ListedSchedule, NoChoice> {
    match choice {
        Selection::Latest => latest(listed, week),
        Selection::Published => {
            let published: Vec<&ListedSchedule> = listed
                .iter()
                .filter(|s| s.published == Some(true) && s.covers(week, week))
                .collect();
            match published.as_slice() {
                [one] => Ok(one),
                [] => Err(no_choice(
                    choice,
                    week,
                    "no published schedule covers it",
                    listed,
                    &["`schedule = \"latest\"` picks the newest schedule starting that week"],
                )),
                _ => Err(no_choice(
                    choice,
                    week,
                    "more than one published schedule covers it",
                    listed,
                    &[NAME_ONE],
                )),
            }
        }
    }
}

/// How a person settles an ambiguous choice.
const NAME_ONE: &str = "set `schedule` in the source's [[sources]] table to one id, or map it from the payload (`schedule = \"/pointer/to/id\"`)";

fn latest(listed: &[ListedSchedule], week: Date) -> Result<&ListedSchedule, NoChoice> {
    let choice = Selection::Latest;
    let starting: Vec<&ListedSchedule> = listed.iter().filter(|s| s.starts(week) == week).collect();
    // Creation time counts only when every candidate has one ("if available", says the SDK).
    let by_creation = starting.iter().all(|s| s.created_at.is_some());
    let key = |s: &ListedSchedule| (by_creation.then_some(s.created_at), s.modified_at);
    let newest = starting.iter().map(|s| key(s)).max();
    let Some(newest) = newest else {
        return Err(no_choice(
            choice,
            week,
            "no schedule starts in it",
            listed,
            &["`schedule = \"published\"` picks the published schedule covering the week"],
        ));
    };
    let tied: Vec<&ListedSchedule> = starting
        .iter()
        .copied()
        .filter(|s| key(s) == newest)
        .collect();
    let known = newest.0.flatten().is_some() || newest.1.is_some();
    match tied.as_slice() {
        [one] if known || starting.len() == 1 => Ok(one),
        _ => Err(no_choice(
            choice,
            week,
            "no one schedule starting in it is the newest",
            listed,
            &[NAME_ONE],
        )),
    }
}

fn no_choice(
    choice: Selection,
    week: Date,
    why: &str,
    listed: &[ListedSchedule],
    fixes: &[&str],
) -> NoChoice {
    let mut text = format!("`{}` for the week of {week}: {why}", choice.setting());
    if listed.is_empty() {
        text.push_str("; the week lists no schedule");
    } else {
        text.push_str("; listed: ");
        for (n, s) in listed.iter().enumerate() {
            if n > 0 {
                text.push_str(", ");
            }
            describe(&mut text, s, week);
        }
    }
    for fix in fixes {
        let _ = write!(text, "; {fix}");
    }
    NoChoice(text)
}

/// `s2 (starts 2026-11-29, 1 week, draft, version 3, created …, modified …)`.
fn describe(text: &mut String, s: &ListedSchedule, week: Date) {
    let weeks = s.week_count.unwrap_or(1);
    let state = match s.published {
        Some(true) => "published",
        Some(false) => "draft",
        None => "publish state not given",
    };
    let _ = write!(
        text,
        "{} (starts {}, {weeks} week{}, {state}",
        s.id,
        s.starts(week),
        if weeks == 1 { "" } else { "s" }
    );
    if let Some(v) = s.version {
        let _ = write!(text, ", version {v}");
    }
    if let Some(at) = s.created_at {
        let _ = write!(text, ", created {at}");
    }
    if let Some(at) = s.modified_at {
        let _ = write!(text, ", modified {at}");
    }
    text.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const WEEK: Date = date(2026, 11, 29);

    fn listed(id: &str, week: Date, weeks: u32, published: bool, created: &str) -> ListedSchedule {
        ListedSchedule {
            week: Some(week),
            week_count: Some(weeks),
            published: Some(published),
            version: Some(1),
            created_at: created.parse().ok(),
            modified_at: created.parse().ok(),
            ..ListedSchedule::id_only(id)
        }
    }

    /// A multi-week schedule from the week before (published), two starting this week.
    fn three() -> Vec<ListedSchedule> {
        vec![
            listed("new", WEEK, 1, false, "2026-11-25T10:00:00Z"),
            listed("multi", date(2026, 11, 22), 2, true, "2026-11-10T10:00:00Z"),
            listed("old", WEEK, 1, false, "2026-11-20T10:00:00Z"),
        ]
    }

    #[test]
    fn latest_is_the_newest_starting_this_week_and_published_the_one_covering_it() {
        let all = three();
        let latest = choose(Selection::Latest, &all, WEEK).map(|s| s.id.as_str());
        assert_eq!(latest, Ok("new"));
        let published = choose(Selection::Published, &all, WEEK);
        assert_eq!(published.map(|s| s.starts(WEEK)), Ok(date(2026, 11, 22)));
    }

    #[test]
    fn creation_breaks_a_tie_before_modification() {
        let mut all = three();
        // `old` was edited last, but `new` was created last.
        all[2].modified_at = "2026-11-28T10:00:00Z".parse().ok();
        let latest = choose(Selection::Latest, &all, WEEK).map(|s| s.id.as_str());
        assert_eq!(latest, Ok("new"));
        for s in &mut all {
            s.created_at = None;
        }
        let latest = choose(Selection::Latest, &all, WEEK).map(|s| s.id.as_str());
        assert_eq!(
            latest,
            Ok("old"),
            "without creation times, modification decides"
        );
    }

    #[test]
    fn an_ambiguous_choice_names_the_candidates_and_the_setting() {
        let mut all = three();
        all[2].created_at = all[0].created_at;
        all[2].modified_at = all[0].modified_at;
        let err = choose(Selection::Latest, &all, WEEK).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "`schedule = \"latest\"` for the week of 2026-11-29: no one schedule starting in it is the newest; listed: new (starts 2026-11-29, 1 week, draft, version 1, created 2026-11-25T10:00:00Z, modified 2026-11-25T10:00:00Z), multi (starts 2026-11-22, 2 weeks, published, version 1, created 2026-11-10T10:00:00Z, modified 2026-11-10T10:00:00Z), old (starts 2026-11-29, 1 week, draft, version 1, created 2026-11-25T10:00:00Z, modified 2026-11-25T10:00:00Z); set `schedule` in the source's [[sources]] table to one id, or map it from the payload (`schedule = \"/pointer/to/id\"`)"
            )
        );
    }

    #[test]
    fn an_empty_choice_says_what_else_picks_one() {
        let all = vec![listed(
            "multi",
            date(2026, 11, 22),
            2,
            false,
            "2026-11-10T10:00:00Z",
        )];
        let latest = choose(Selection::Latest, &all, WEEK)
            .err()
            .map(|e| e.to_string());
        assert!(
            latest.is_some_and(|m| m.contains("no schedule starts in it")
                && m.contains("multi (starts 2026-11-22, 2 weeks")
                && m.contains("`schedule = \"published\"`"))
        );
        let published = choose(Selection::Published, &all, WEEK)
            .err()
            .map(|e| e.to_string());
        assert!(published.is_some_and(|m| m.contains("no published schedule covers it")));
        let nothing = choose(Selection::Latest, &[], WEEK)
            .err()
            .map(|e| e.to_string());
        assert!(nothing.is_some_and(|m| m.contains("the week lists no schedule")));
    }

    #[test]
    fn a_lone_schedule_without_times_is_still_the_latest() {
        let all = vec![ListedSchedule {
            week: Some(WEEK),
            ..ListedSchedule::id_only("only")
        }];
        let latest = choose(Selection::Latest, &all, WEEK).map(|s| s.id.as_str());
        assert_eq!(latest, Ok("only"));
    }
}
