//! "Did you mean": the closest known name to a misspelt one.

/// The candidate closest to `word`, when one is close enough to be a likely typo.
///
/// Dotted names also match on their last segment, so `duplicate` finds
/// `trigger.duplicate`. Ties go to the earlier candidate, so the answer is deterministic.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let whole = strsim::damerau_levenshtein(&word, &lower);
        let last = lower
            .rsplit_once('.')
            .map_or(whole, |(_, tail)| strsim::damerau_levenshtein(&word, tail));
        let distance = whole.min(last);
        if distance <= tolerance(&word) && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `did you mean `x`?` for the closest candidate, if any.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Edits allowed before a candidate stops looking like a typo: about one in three characters.
fn tolerance(word: &str) -> usize {
    (word.chars().count() / 3).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_one_letter_typo() {
        let facts = ["schedule.state", "schedule.version", "now"];
        assert_eq!(closest("schedule.stat", facts), Some("schedule.state"));
    }

    #[test]
    fn matches_the_last_segment_of_a_dotted_name() {
        let facts = ["schedule.state", "trigger.duplicate"];
        assert_eq!(closest("duplicate", facts), Some("trigger.duplicate"));
    }

    #[test]
    fn gives_nothing_for_an_unrelated_word() {
        assert_eq!(
            closest("banana", ["draft", "publishing", "published"]),
            None
        );
    }

    #[test]
    fn prefers_the_nearest_candidate() {
        let values = ["publishing", "published"];
        assert_eq!(closest("publishd", values), Some("published"));
    }
}
