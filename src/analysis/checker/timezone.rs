//! E107's help: what to write instead of a name that is not an IANA time zone.
//!
//! Abbreviations are the usual slip, and the worst one to "correct" by spelling: `CST` is
//! one letter from `CET`, six or seven hours away from Chicago. They are ambiguous (`IST`
//! is India, Ireland or Israel) and name half a year (`BST` is summer only), so they get
//! the IANA names people usually mean, never a "did you mean" by spelling.

use crate::language::suggest;

/// Common abbreviations and the IANA names they usually stand for, most likely first.
const ABBREVIATIONS: &[(&str, &[&str])] = &[
    ("ACST", &["Australia/Adelaide", "Australia/Darwin"]),
    ("AEDT", &["Australia/Sydney", "Australia/Melbourne"]),
    ("AEST", &["Australia/Sydney", "Australia/Brisbane"]),
    ("AKST", &["America/Anchorage"]),
    ("AST", &["America/Halifax", "Asia/Riyadh"]),
    ("AWST", &["Australia/Perth"]),
    ("BRT", &["America/Sao_Paulo"]),
    ("BST", &["Europe/London"]),
    ("CAT", &["Africa/Maputo", "Africa/Harare"]),
    ("CDT", &["America/Chicago"]),
    ("CEST", &["Europe/Berlin", "Europe/Paris"]),
    ("CST", &["America/Chicago", "Asia/Shanghai"]),
    ("EAT", &["Africa/Nairobi"]),
    ("EDT", &["America/New_York"]),
    ("EEST", &["Europe/Athens", "Europe/Helsinki"]),
    ("GMT", &["Europe/London", "UTC"]),
    ("HKT", &["Asia/Hong_Kong"]),
    ("IDT", &["Asia/Jerusalem"]),
    ("IST", &["Asia/Kolkata", "Europe/Dublin", "Asia/Jerusalem"]),
    ("JST", &["Asia/Tokyo"]),
    ("KST", &["Asia/Seoul"]),
    ("MDT", &["America/Denver"]),
    ("MSK", &["Europe/Moscow"]),
    ("NZDT", &["Pacific/Auckland"]),
    ("NZST", &["Pacific/Auckland"]),
    ("PDT", &["America/Los_Angeles"]),
    ("PHT", &["Asia/Manila"]),
    ("PKT", &["Asia/Karachi"]),
    ("PST", &["America/Los_Angeles"]),
    ("SAST", &["Africa/Johannesburg"]),
    ("SGT", &["Asia/Singapore"]),
    ("WAT", &["Africa/Lagos"]),
    ("WEST", &["Europe/Lisbon"]),
];

/// The help line for `name`, which the time-zone database does not know.
pub(super) fn help(name: &str, known: &[String]) -> String {
    if let Some(meant) = abbreviation(name) {
        return meant;
    }
    suggest::did_you_mean(name, known.iter().map(String::as_str)).unwrap_or_else(|| {
        "use an IANA name such as `Europe/London`, `America/New_York` or `UTC`".to_string()
    })
}

/// The help for a name written like an abbreviation (two to five capital letters), if it
/// is one.
fn abbreviation(name: &str) -> Option<String> {
    let looks_like = (2..=5).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_uppercase());
    if !looks_like {
        return None;
    }
    let examples = ABBREVIATIONS
        .iter()
        .find(|(abbreviation, _)| *abbreviation == name)
        .map_or(
            "`America/Chicago` or `Europe/London`".to_string(),
            |(_, zones)| one_of(zones),
        );
    Some(format!(
        "`{name}` looks like an abbreviation: they are ambiguous and do not follow daylight \
         saving, so use an IANA name such as {examples}"
    ))
}

/// `` `a` ``, `` `a` or `b` ``, `` `a`, `b` or `c` ``.
fn one_of(zones: &[&str]) -> String {
    let quoted: Vec<String> = zones.iter().map(|z| format!("`{z}`")).collect();
    match quoted.as_slice() {
        [init @ .., last] if !init.is_empty() => format!("{} or {last}", init.join(", ")),
        _ => quoted.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abbreviations_table_names_only_zones_the_database_knows_and_is_sorted() {
        for (abbreviation, zones) in ABBREVIATIONS {
            for zone in *zones {
                assert!(
                    jiff::tz::TimeZone::get(zone).is_ok(),
                    "{abbreviation}: {zone}"
                );
            }
        }
        assert!(ABBREVIATIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn cst_means_chicago_not_cet() {
        let help = help("CST", &["CET".to_string()]);
        assert!(help.contains("`America/Chicago`"), "{help}");
        assert!(!help.contains("CET"), "{help}");
    }

    #[test]
    fn an_unlisted_abbreviation_still_gets_the_advice_and_a_long_name_is_quick() {
        assert!(help("XYZT", &[]).contains("looks like an abbreviation"));
        let long = "A".repeat(400_000);
        assert!(help(&long, &["Europe/London".to_string()]).starts_with("use an IANA name"));
    }
}
