//! From a stored target to the schedule it names: the week from the business unit's own
//! settings (cached per unit), then the schedule the source's `schedule` setting picks.

use super::choice::{ScheduleChoice, choose};
use super::mapping::ScheduleTarget;
use crate::api::week::WeekSettings;
use crate::api::{Answer, ScheduleApi, ScheduleRef};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::cell::RefCell;
use std::collections::HashMap;

/// How long a business unit's week settings are trusted before they are read again.
pub const WEEK_SETTINGS_TTL: SignedDuration = SignedDuration::from_hours(4);

/// Business units' week settings, each with the instant it was read.
#[derive(Debug, Default)]
pub struct WeekCache {
    units: HashMap<String, (WeekSettings, Timestamp)>,
}

impl WeekCache {
    /// The unit's settings, unless they are older than [`WEEK_SETTINGS_TTL`].
    fn fresh(&self, business_unit: &str, now: Timestamp) -> Option<WeekSettings> {
        let (settings, read_at) = self.units.get(business_unit)?;
        (now.duration_since(*read_at) < WEEK_SETTINGS_TTL).then(|| settings.clone())
    }

    fn keep(&mut self, business_unit: &str, settings: WeekSettings, now: Timestamp) {
        self.units.insert(business_unit.to_owned(), (settings, now));
    }

    /// Read the unit's settings again next time (a schedule of it was not found: its week
    /// may have moved).
    pub fn forget(&mut self, business_unit: &str) {
        self.units.remove(business_unit);
    }
}

/// Why a trigger's schedule is not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// The API could not say now; try again later.
    Later(String),
    /// The target cannot name a schedule; the reason says what to change.
    Never(String),
    /// The API refused our login or token (the reason names the client id): try again
    /// later, and the relay is not ready meanwhile.
    Refused(String),
}

/// A call that brought no answer: refused credentials, or something to try again later.
fn unanswered(e: crate::api::ApiError) -> Unresolved {
    match e {
        crate::api::ApiError::Auth(_) => Unresolved::Refused(e.to_string()),
        _ => Unresolved::Later(e.to_string()),
    }
}

/// The schedule a stored target names at `now`. `current` is the week containing now in the
/// business unit's zone (the policy's, when the backend has none); a given week must fall on
/// the unit's start day.
pub async fn resolve<A: ScheduleApi>(
    api: &A,
    policy_zone: &TimeZone,
    now: Timestamp,
    target: &ScheduleTarget,
    weeks: &RefCell<WeekCache>,
) -> Result<ScheduleRef, Unresolved> {
    let bu = target.business_unit.as_str();
    let settings = week_settings(api, bu, now, weeks).await?;
    let week = if target.week == "current" {
        settings.week_containing(now, policy_zone)
    } else {
        let given = target
            .week
            .parse::<Date>()
            .map_err(|e| Unresolved::Never(format!("week {:?}: {e}", target.week)))?;
        settings
            .check(given)
            .map_err(|e| Unresolved::Never(e.to_string()))?
    };
    let selection = match ScheduleChoice::parse(&target.schedule_id) {
        ScheduleChoice::Id(schedule_id) => {
            return Ok(ScheduleRef {
                business_unit: target.business_unit.clone(),
                week,
                schedule_id,
            });
        }
        ScheduleChoice::Select(selection) => selection,
    };
    let answer = api.list_week(bu, week).await.map_err(unanswered)?;
    if answer.status == 404 {
        weeks.borrow_mut().forget(bu);
    }
    let listed = success(answer, "the week's list")?;
    let chosen = choose(selection, &listed, week).map_err(|e| Unresolved::Never(e.to_string()))?;
    Ok(ScheduleRef {
        business_unit: target.business_unit.clone(),
        // A multi-week schedule is addressed by the week it started in.
        week: chosen.starts(week),
        schedule_id: chosen.id.clone(),
    })
}

/// The unit's week settings, from the cache or read anew.
async fn week_settings<A: ScheduleApi>(
    api: &A,
    business_unit: &str,
    now: Timestamp,
    weeks: &RefCell<WeekCache>,
) -> Result<WeekSettings, Unresolved> {
    if let Some(settings) = weeks.borrow().fresh(business_unit, now) {
        return Ok(settings);
    }
    let answer = api.week_settings(business_unit).await.map_err(unanswered)?;
    if answer.status == 404 {
        return Err(Unresolved::Never(format!(
            "business unit {business_unit} was not found (404): check `business_unit` in the configuration"
        )));
    }
    let settings = success(answer, "the business unit's settings")?;
    weeks
        .borrow_mut()
        .keep(business_unit, settings.clone(), now);
    Ok(settings)
}

/// The body of a 2xx answer; anything else is worth trying again later.
fn success<T>(answer: Answer<T>, what: &str) -> Result<T, Unresolved> {
    match answer.body {
        Some(body) if (200..300).contains(&answer.status) => Ok(body),
        _ => Err(Unresolved::Later(format!(
            "{what} answered {}",
            answer.status
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_units_settings_are_kept_for_hours_and_forgotten_on_a_404() {
        let at = |text: &str| text.parse::<Timestamp>().unwrap_or_default();
        let mut cache = WeekCache::default();
        let read_at = at("2026-11-29T12:00:00Z");
        cache.keep("bu-1", WeekSettings::MONDAY_IN_POLICY_ZONE, read_at);
        let later = |hours: i64| read_at + SignedDuration::from_hours(hours);
        assert!(cache.fresh("bu-1", later(3)).is_some());
        assert!(
            cache.fresh("bu-1", later(4)).is_none(),
            "read again after 4 h"
        );
        assert!(cache.fresh("bu-2", read_at).is_none());
        cache.forget("bu-1");
        assert!(cache.fresh("bu-1", read_at).is_none());
    }
}
