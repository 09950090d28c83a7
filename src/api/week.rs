//! A business unit's week: the day it starts on and the time zone its dates are in.
//!
//! Genesys addresses schedules by `weekDate`, which is always the business unit's start day
//! (`BusinessUnitSettingsResponse.startDayOfWeek` and `.timeZone`, both required once
//! `expand=settings.startDayOfWeek,settings.timeZone` is asked for; platform-client-sdk-python
//! `build/docs/BusinessUnitResponse.md`, `BusinessUnitSettingsResponse.md`).

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// When a business unit's weeks start.
#[derive(Clone, Debug, PartialEq)]
pub struct WeekSettings {
    /// `settings.startDayOfWeek`.
    pub start_day: Weekday,
    /// `settings.timeZone`; `None` when the backend does not say (a REST gateway), and the
    /// policy's zone applies.
    pub time_zone: Option<TimeZone>,
}

/// A week date that is not the business unit's start day.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "week {given} is a {given_day}, but the business unit's weeks start on {start_day}: the week must start on {start_day} {expected}"
)]
pub struct MisalignedWeek {
    /// The date given.
    pub given: Date,
    /// Its day, as a word.
    pub given_day: &'static str,
    /// The start day, as a word.
    pub start_day: &'static str,
    /// The start of the week that contains `given`.
    pub expected: Date,
}

/// A start day Genesys does not name (`Sunday`..`Saturday`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("startDayOfWeek {0:?} is not a day of the week")]
pub struct UnknownWeekday(pub String);

impl WeekSettings {
    /// Weeks starting on Monday in the policy's zone: what a backend that cannot say gets.
    pub const MONDAY_IN_POLICY_ZONE: WeekSettings = WeekSettings {
        start_day: Weekday::Monday,
        time_zone: None,
    };

    /// The first day of the week that contains `now`, in the business unit's zone (or
    /// `fallback` when it has none).
    pub fn week_containing(&self, now: Timestamp, fallback: &TimeZone) -> Date {
        let zone = self.time_zone.as_ref().unwrap_or(fallback);
        self.week_of(zone.to_datetime(now).date())
    }

    /// `week` itself when it is a start day; else why not, naming the week it falls in.
    pub fn check(&self, week: Date) -> Result<Date, MisalignedWeek> {
        let expected = self.week_of(week);
        if expected == week {
            return Ok(week);
        }
        Err(MisalignedWeek {
            given: week,
            given_day: weekday_name(week.weekday()),
            start_day: weekday_name(self.start_day),
            expected,
        })
    }

    /// The start day on or before `day`.
    fn week_of(&self, day: Date) -> Date {
        let back = day.weekday().since(self.start_day);
        // A date at the very start of jiff's range has no earlier start day: keep it.
        day.checked_sub(i64::from(back).days()).unwrap_or(day)
    }
}

/// Genesys' word for a day (`Sunday`).
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// The day Genesys names (`Sunday`, in any case).
pub fn parse_weekday(word: &str) -> Result<Weekday, UnknownWeekday> {
    let days = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    days.into_iter()
        .find(|d| weekday_name(*d).eq_ignore_ascii_case(word.trim()))
        .ok_or_else(|| UnknownWeekday(word.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn sunday_in_chicago() -> WeekSettings {
        WeekSettings {
            start_day: Weekday::Sunday,
            time_zone: TimeZone::get("America/Chicago").ok(),
        }
    }

    #[test]
    fn the_week_starts_on_the_units_day_in_its_zone() {
        let settings = sunday_in_chicago();
        // Sunday 29 November 2026, 05:30 UTC is still Saturday 23:30 in Chicago.
        let late_saturday: Timestamp = "2026-11-29T05:30:00Z".parse().unwrap_or_default();
        assert_eq!(
            settings.week_containing(late_saturday, &TimeZone::UTC),
            date(2026, 11, 22)
        );
        let sunday_morning: Timestamp = "2026-11-29T14:00:00Z".parse().unwrap_or_default();
        assert_eq!(
            settings.week_containing(sunday_morning, &TimeZone::UTC),
            date(2026, 11, 29)
        );
    }

    #[test]
    fn without_a_zone_the_fallback_decides() {
        let monday = WeekSettings::MONDAY_IN_POLICY_ZONE;
        // Monday 30 March 2026, 00:30 in London is still Sunday in UTC... and Monday here.
        let at: Timestamp = "2026-03-29T23:30:00Z".parse().unwrap_or_default();
        let london = TimeZone::get("Europe/London").unwrap_or(TimeZone::UTC);
        assert_eq!(monday.week_containing(at, &london), date(2026, 3, 30));
        assert_eq!(
            monday.week_containing(at, &TimeZone::UTC),
            date(2026, 3, 23)
        );
    }

    #[test]
    fn a_week_date_off_the_start_day_names_the_right_one() {
        let settings = sunday_in_chicago();
        assert_eq!(settings.check(date(2026, 11, 29)), Ok(date(2026, 11, 29)));
        let err = settings
            .check(date(2026, 12, 1))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "week 2026-12-01 is a Tuesday, but the business unit's weeks start on Sunday: the week must start on Sunday 2026-11-29"
            )
        );
    }

    #[test]
    fn days_are_read_in_any_case() {
        assert_eq!(parse_weekday("sunday"), Ok(Weekday::Sunday));
        assert_eq!(parse_weekday("Saturday"), Ok(Weekday::Saturday));
        assert!(parse_weekday("Caturday").is_err());
    }
}
