//! Time-zone windows: is an instant inside, and when does the window next open.
//!
//! An instant is inside a window when its local civil time, read in the window's zone,
//! falls in one of the weekly ranges. Reading local time (not adding offsets to UTC) is
//! what makes daylight-saving changes behave as a person expects:
//! - in a spring-forward gap (Europe/London, 2026-03-29 01:00 -> 02:00) a range opening at
//!   01:30 is open from 02:00 BST, the first instant whose local time is past 01:30;
//! - in an autumn fold (2026-10-25 02:00 -> 01:00) a local time that occurs twice is inside
//!   both times.
//!
//! A range whose end is at or before its start runs past midnight and belongs to the day it
//! starts on: `fri 22:00..02:00` covers Friday 22:00 to Saturday 02:00.

use crate::language::ast::{TimeOfDay, Weekday};
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// A compiled window: weekly wall-clock ranges in one time zone.
#[derive(Clone, Debug)]
pub struct Window {
    /// The window's name.
    pub name: String,
    /// The zone its wall-clock times are read in.
    pub timezone: TimeZone,
    /// One entry per (day, range); a range whose end is at or before its start
    /// runs past midnight into the next day.
    pub ranges: Vec<WeeklyRange>,
}

/// A wall-clock range starting on one weekday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeeklyRange {
    /// The day the range opens.
    pub day: Weekday,
    /// Opening time, inclusive.
    pub start: TimeOfDay,
    /// Closing time, exclusive; at or before `start` means the next day.
    pub end: TimeOfDay,
}

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// Days scanned for the next opening: a weekly window opens within a week, and the extra
/// days cover a week whose only opening falls inside a daylight-saving gap.
const SEARCH_DAYS: i16 = 15;

/// An instant read on a window's wall clock: the weekday and the time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 for Monday through 6 for Sunday.
    day: usize,
    /// Nanoseconds since local midnight.
    nanos: i64,
}

impl WeeklyRange {
    /// Whether local weekday `day` (0 = Monday) at `nanos` past local midnight is inside.
    fn contains_local(&self, LocalTime { day, nanos }: LocalTime) -> bool {
        let start = i64::from(self.start.0) * NANOS_PER_MINUTE;
        let end = i64::from(self.end.0) * NANOS_PER_MINUTE;
        let first = self.day.index();
        if end > start {
            day == first && (start..end).contains(&nanos)
        } else {
            (day == first && nanos >= start) || (day == (first + 1) % 7 && nanos < end)
        }
    }
}

impl Window {
    /// Whether the window is open at instant `t`. Allocates nothing.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.contains_local(self.local_time(t))
    }

    /// `t` on this window's wall clock: the costly half of [`Window::contains`], which an
    /// evaluation testing one window many times does once.
    pub fn local_time(&self, t: Timestamp) -> LocalTime {
        let local = self.timezone.to_datetime(t);
        LocalTime {
            day: local.date().weekday().to_monday_zero_offset() as usize,
            nanos: nanos_of_day(local),
        }
    }

    /// Whether the window is open at a time already read on its wall clock.
    pub fn contains_local(&self, local: LocalTime) -> bool {
        self.ranges.iter().any(|r| r.contains_local(local))
    }

    /// The first instant at or after `t` at which the window is open: `t` itself when it is
    /// already open, `None` when the window never opens (no ranges) within the search horizon.
    ///
    /// The window opens either where local time reaches a range's start (both occurrences
    /// of it in an autumn fold) or at a daylight-saving transition (a spring gap skipping a
    /// start, or a fold stepping back into a range); every such instant is a candidate, and
    /// [`Window::contains`] decides, so the two can never disagree.
    pub fn next_open(&self, t: Timestamp) -> Option<Timestamp> {
        if self.contains(t) {
            return Some(t);
        }
        let first_day = self.timezone.to_datetime(t).date();
        let horizon = first_day
            .checked_add(SignedDuration::from_hours(24 * i64::from(SEARCH_DAYS)))
            .ok()?;
        let mut best: Option<Timestamp> = None;
        let mut consider = |c: Timestamp| {
            if c >= t && best.is_none_or(|b| c < b) && self.contains(c) {
                best = Some(c);
            }
        };
        for offset in 0..SEARCH_DAYS {
            let Ok(date) =
                first_day.checked_add(SignedDuration::from_hours(24 * i64::from(offset)))
            else {
                break;
            };
            let day = date.weekday().to_monday_zero_offset() as usize;
            for range in self.ranges.iter().filter(|r| r.day.index() == day) {
                for c in self.resolve(date, range.start).into_iter().flatten() {
                    consider(c);
                }
            }
        }
        let end = self
            .timezone
            .to_ambiguous_timestamp(horizon.at(0, 0, 0, 0))
            .compatible()
            .ok()?;
        for transition in self.timezone.following(t) {
            let at = transition.timestamp();
            if at > end {
                break;
            }
            consider(at);
        }
        best
    }

    /// The instants whose local time is `time` on `date`: one normally, two in a fold,
    /// none in a gap (the transition ending the gap is a candidate of its own).
    fn resolve(&self, date: Date, time: TimeOfDay) -> [Option<Timestamp>; 2] {
        let Some(dt) = local_datetime(date, time) else {
            return [None, None];
        };
        match self.timezone.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => [offset.to_timestamp(dt).ok(), None],
            AmbiguousOffset::Fold { before, after } => {
                [before.to_timestamp(dt).ok(), after.to_timestamp(dt).ok()]
            }
            AmbiguousOffset::Gap { .. } => [None, None],
        }
    }
}

/// Nanoseconds since local midnight.
fn nanos_of_day(local: DateTime) -> i64 {
    let seconds =
        i64::from(local.hour()) * 3600 + i64::from(local.minute()) * 60 + i64::from(local.second());
    seconds * 1_000_000_000 + i64::from(local.subsec_nanosecond())
}

/// `date` at wall-clock `time`; `24:00` is the next day's midnight.
fn local_datetime(date: Date, time: TimeOfDay) -> Option<DateTime> {
    let minutes = i64::from(time.0);
    date.at(0, 0, 0, 0)
        .checked_add(SignedDuration::from_mins(minutes))
        .ok()
}
