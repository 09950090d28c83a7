//! Time-zone windows: is an instant inside, and when does the window next open.

use crate::ast::{TimeOfDay, Weekday};
use jiff::tz::TimeZone;

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
