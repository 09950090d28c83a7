//! "Did you mean": the closest known name to a misspelt one.

/// The longest word a suggestion is looked for: no name is this long, and edit distance
/// costs the product of the lengths (a 400 KB time-zone name took seconds).
const MAX_WORD: usize = 64;

/// The candidate closest to `word`, when one is close enough to be a likely typo.
///
/// Dotted names also match on their last segment, so `duplicate` finds
/// `trigger.duplicate`. Ties go to the earlier candidate, so the answer is deterministic.
/// A word longer than [`MAX_WORD`] gets no suggestion.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let length = word.chars().count();
    if length > MAX_WORD {
        return None;
    }
    let word = word.to_lowercase();
    let allowed = tolerance(length);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let tail = lower.rsplit_once('.').map(|(_, tail)| tail);
        let distance = std::iter::once(lower.as_str())
            .chain(tail)
            .filter_map(|other| within(&word, length, other, allowed))
            .min();
        if let Some(distance) = distance
            && best.is_none_or(|(d, _)| distance < d)
        {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The edit distance from `word` (of `length` characters) to `other`, when at most
/// `allowed`; the length difference bounds it from below, so most candidates cost nothing.
fn within(word: &str, length: usize, other: &str, allowed: usize) -> Option<usize> {
    if length.abs_diff(other.chars().count()) > allowed {
        return None;
    }
    Some(strsim::damerau_levenshtein(word, other)).filter(|d| *d <= allowed)
}

/// `did you mean `x`?` for the closest candidate, if any.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Edits allowed before a candidate stops looking like a typo: about one in three characters.
fn tolerance(length: usize) -> usize {
    (length / 3).max(1)
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
    fn an_absurdly_long_word_gets_no_suggestion_at_once() {
        // Even the word itself is not offered: the length alone rules it out.
        let long = "a".repeat(400_000);
        assert_eq!(closest(&long, ["Europe/London", long.as_str()]), None);
    }

    #[test]
    fn prefers_the_nearest_candidate() {
        let values = ["publishing", "published"];
        assert_eq!(closest("publishd", values), Some("published"));
    }
}
