//! `Window::contains` and `Window::next_open`: weekdays, ranges across midnight, per-window
//! zones, and the Europe/London daylight-saving changes of 2026 (03-29 and 10-25).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use publish_guard::language::ast::{TimeOfDay, Weekday};
use publish_guard::policy::window::{WeeklyRange, Window};

fn hm(h: u16, m: u16) -> TimeOfDay {
    TimeOfDay(h * 60 + m)
}

fn window(zone: &str, ranges: &[(Weekday, TimeOfDay, TimeOfDay)]) -> Window {
    Window {
        name: "w".into(),
        timezone: TimeZone::get(zone).unwrap(),
        ranges: ranges
            .iter()
            .map(|&(day, start, end)| WeeklyRange { day, start, end })
            .collect(),
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn business_hours() -> Window {
    let mut ranges: Vec<_> = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
    .into_iter()
    .map(|d| (d, hm(7, 0), hm(20, 0)))
    .collect();
    ranges.push((Weekday::Sat, hm(8, 0), hm(14, 0)));
    window("Europe/London", &ranges)
}

#[test]
fn weekday_ranges_are_start_inclusive_end_exclusive() {
    let w = business_hours();
    // Wednesday 2026-03-25, GMT.
    assert!(!w.contains(at("2026-03-25T06:59:59.999Z")));
    assert!(w.contains(at("2026-03-25T07:00:00Z")));
    assert!(w.contains(at("2026-03-25T19:59:59Z")));
    assert!(!w.contains(at("2026-03-25T20:00:00Z")));
    // Saturday has shorter hours, Sunday none.
    assert!(w.contains(at("2026-03-28T13:00:00Z")));
    assert!(!w.contains(at("2026-03-28T15:00:00Z")));
    assert!(!w.contains(at("2026-03-22T12:00:00Z")));
}

#[test]
fn summer_time_moves_the_window_an_hour_earlier_in_utc() {
    let w = business_hours();
    // Wednesday 2026-07-01, BST (UTC+1): 07:00 local is 06:00Z.
    assert!(w.contains(at("2026-07-01T06:00:00Z")));
    assert!(!w.contains(at("2026-07-01T19:00:00Z")));
}

#[test]
fn next_open_is_the_instant_itself_when_open() {
    let w = business_hours();
    let t = at("2026-03-25T12:34:56Z");
    assert_eq!(w.next_open(t), Some(t));
}

#[test]
fn next_open_skips_to_the_next_opening_day() {
    let w = business_hours();
    // Saturday 15:00 GMT -> Monday 07:00 BST (clocks went forward on Sunday 03-29).
    assert_eq!(
        w.next_open(at("2026-03-28T15:00:00Z")),
        Some(at("2026-03-30T06:00:00Z"))
    );
    // Wednesday before opening -> the same day.
    assert_eq!(
        w.next_open(at("2026-03-25T05:00:00Z")),
        Some(at("2026-03-25T07:00:00Z"))
    );
}

#[test]
fn ranges_across_midnight_belong_to_the_day_they_start() {
    let w = window("Europe/London", &[(Weekday::Fri, hm(22, 0), hm(2, 0))]);
    // Friday 2026-01-09 22:00 .. Saturday 02:00.
    assert!(!w.contains(at("2026-01-09T21:59:59Z")));
    assert!(w.contains(at("2026-01-09T22:00:00Z")));
    assert!(w.contains(at("2026-01-10T01:59:59Z")));
    assert!(!w.contains(at("2026-01-10T02:00:00Z")));
    // Thursday night is not inside: the range starts on Friday only.
    assert!(!w.contains(at("2026-01-09T01:00:00Z")));
    assert_eq!(
        w.next_open(at("2026-01-10T02:00:00Z")),
        Some(at("2026-01-16T22:00:00Z"))
    );
}

#[test]
fn sunday_range_across_midnight_wraps_to_monday() {
    let w = window("UTC", &[(Weekday::Sun, hm(23, 0), hm(1, 0))]);
    // Sunday 2026-01-11 23:00 .. Monday 01:00.
    assert!(w.contains(at("2026-01-12T00:30:00Z")));
    assert!(!w.contains(at("2026-01-13T00:30:00Z")));
}

#[test]
fn end_equal_to_start_is_a_whole_day_across_midnight() {
    let w = window("UTC", &[(Weekday::Mon, hm(0, 0), hm(0, 0))]);
    assert!(w.contains(at("2026-01-12T00:00:00Z")));
    assert!(w.contains(at("2026-01-12T23:59:59Z")));
    assert!(!w.contains(at("2026-01-13T00:00:00Z")));
}

#[test]
fn end_of_day_is_written_24_00() {
    let w = window("UTC", &[(Weekday::Mon, hm(20, 0), hm(24, 0))]);
    assert!(w.contains(at("2026-01-12T23:59:59Z")));
    assert!(!w.contains(at("2026-01-13T00:00:00Z")));
}

#[test]
fn each_window_reads_its_own_zone() {
    let ranges = [(Weekday::Mon, hm(9, 0), hm(17, 0))];
    let new_york = window("America/New_York", &ranges);
    let tokyo = window("Asia/Tokyo", &ranges);
    // Monday 2026-01-12 14:00Z is 09:00 in New York (EST) and 23:00 in Tokyo.
    let t = at("2026-01-12T14:00:00Z");
    assert!(new_york.contains(t));
    assert!(!tokyo.contains(t));
    assert_eq!(tokyo.next_open(t), Some(at("2026-01-19T00:00:00Z")));
}

#[test]
fn spring_gap_opens_at_the_first_instant_after_it() {
    // Sunday 2026-03-29: London skips 01:00..02:00 local (01:00Z).
    let w = window("Europe/London", &[(Weekday::Sun, hm(1, 30), hm(3, 0))]);
    assert!(!w.contains(at("2026-03-29T00:59:59Z")));
    assert!(w.contains(at("2026-03-29T01:00:00Z")));
    assert_eq!(
        w.next_open(at("2026-03-29T00:30:00Z")),
        Some(at("2026-03-29T01:00:00Z"))
    );
}

#[test]
fn spring_gap_shortens_a_range_closing_inside_it() {
    // Saturday 23:00 .. Sunday 01:30 local; 01:30 never happens, so it closes at 02:00 BST.
    let w = window("Europe/London", &[(Weekday::Sat, hm(23, 0), hm(1, 30))]);
    assert!(w.contains(at("2026-03-29T00:59:59Z")));
    assert!(!w.contains(at("2026-03-29T01:00:00Z")));
}

#[test]
fn spring_gap_swallows_a_range_wholly_inside_it() {
    let w = window("Europe/London", &[(Weekday::Sun, hm(1, 10), hm(1, 50))]);
    // Not open that Sunday at all: next Sunday 01:10 BST (00:10Z).
    assert_eq!(
        w.next_open(at("2026-03-29T00:00:00Z")),
        Some(at("2026-04-05T00:10:00Z"))
    );
}

#[test]
fn autumn_fold_is_inside_in_both_occurrences() {
    // Sunday 2026-10-25: 01:00..02:00 local happens twice (00:00Z..01:00Z BST, 01:00Z..02:00Z GMT).
    let w = window("Europe/London", &[(Weekday::Sun, hm(1, 0), hm(1, 30))]);
    assert!(w.contains(at("2026-10-25T00:15:00Z")));
    assert!(!w.contains(at("2026-10-25T00:45:00Z")));
    assert!(w.contains(at("2026-10-25T01:15:00Z")));
    assert!(!w.contains(at("2026-10-25T01:30:00Z")));
    // Between the two occurrences, it opens again at the second one.
    assert_eq!(
        w.next_open(at("2026-10-25T00:45:00Z")),
        Some(at("2026-10-25T01:00:00Z"))
    );
    assert_eq!(
        w.next_open(at("2026-10-24T23:00:00Z")),
        Some(at("2026-10-25T00:00:00Z"))
    );
}

#[test]
fn autumn_fold_reopens_a_range_that_closed_before_the_repeat() {
    // 00:30..01:15 local: open 23:30Z..00:15Z (BST), then again when 01:00 GMT repeats.
    let w = window("Europe/London", &[(Weekday::Sun, hm(0, 30), hm(1, 15))]);
    assert!(!w.contains(at("2026-10-25T00:30:00Z")));
    assert_eq!(
        w.next_open(at("2026-10-25T00:30:00Z")),
        Some(at("2026-10-25T01:00:00Z"))
    );
    assert!(!w.contains(at("2026-10-25T01:15:00Z")));
}

#[test]
fn a_window_without_ranges_never_opens() {
    let w = window("UTC", &[]);
    assert!(!w.contains(at("2026-01-12T00:00:00Z")));
    assert_eq!(w.next_open(at("2026-01-12T00:00:00Z")), None);
}
