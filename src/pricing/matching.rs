//! Model-name matching, reproducing ccusage 20.0.24.
//!
//! ccusage has no list of provider prefixes: after an exact lookup it takes
//! every price key that contains the model name, or is contained in it, at
//! word boundaries, and keeps the longest such key. Prefixed keys
//! (`anthropic/…`, `anthropic.…`, `us.anthropic.…-v1:0`) therefore match the
//! bare model name, and a model name carrying a prefix or a date
//! (`vertex_ai/claude-opus-4-5@20251101`) matches the bare key. Two rules keep
//! this from crossing model versions: the characters around a match must not
//! be alphanumeric, and a key ending in a digit never matches when the text
//! goes on with `-<digits>` or `.<digits>` (`claude-opus-4` is not
//! `claude-opus-4-5`), unless those digits are an 8-digit date
//! (`claude-opus-4-20250514`).
//!
//! Matching is case-sensitive, as in ccusage.

use std::borrow::Cow;

/// Anthropic dates model snapshots as `YYYYMMDD`; any other number after a
/// version is a different model.
const DATE_SUFFIX_DIGITS: usize = 8;

/// ccusage treats `.` and `@` as spellings of `-` (`claude-opus-4.5`,
/// `vertex_ai/claude-opus-4-5@20251101`).
pub(super) fn normalize(value: &str) -> Cow<'_, str> {
    if value.contains(['.', '@']) {
        Cow::Owned(value.replace(['.', '@'], "-"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Whether price key `candidate` may price `model`. `normalized_candidate` and
/// `normalized_model` are [`normalize`]d once by the caller because this runs
/// for every key of the table.
pub(super) fn key_matches(
    candidate: &str,
    normalized_candidate: &str,
    model: &str,
    normalized_model: &str,
) -> bool {
    contains_at_boundary(model, candidate)
        || contains_at_boundary(candidate, model)
        || contains_at_boundary(normalized_model, normalized_candidate)
        || contains_at_boundary(normalized_candidate, normalized_model)
}

/// Picks the key ccusage would pick among the matching ones: the longest,
/// and among equally long keys the alphabetically first, so the result does
/// not depend on table order.
pub(super) fn better_candidate(new: &str, best: &str) -> bool {
    new.len() > best.len() || (new.len() == best.len() && new < best)
}

fn contains_at_boundary(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let bytes = haystack.as_bytes();
    haystack.match_indices(needle).any(|(start, _)| {
        let before_ok = start
            .checked_sub(1)
            .and_then(|i| bytes.get(i))
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        before_ok && suffix_allows_match(needle, &bytes[start + needle.len()..])
    })
}

fn suffix_allows_match(needle: &str, suffix: &[u8]) -> bool {
    match suffix.first() {
        None => true,
        Some(b) if b.is_ascii_alphanumeric() => false,
        Some(_) => !continues_with_version_number(needle, suffix),
    }
}

/// `claude-opus-4` followed by `-5` or `.5` names another model; followed by
/// `-20250514` it names a dated snapshot of the same one.
fn continues_with_version_number(needle: &str, suffix: &[u8]) -> bool {
    if !needle.as_bytes().last().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let Some((b'-' | b'.', rest)) = suffix.split_first() else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let after = rest.get(digits);
    let is_date = digits == DATE_SUFFIX_DIGITS && after.is_none_or(|b| !b.is_ascii_alphanumeric());
    !is_date
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(candidate: &str, model: &str) -> bool {
        key_matches(candidate, &normalize(candidate), model, &normalize(model))
    }

    #[test]
    fn boundaries_are_required_on_both_sides() {
        assert!(matches("claude-opus-4-5", "anthropic/claude-opus-4-5"));
        assert!(matches("claude-opus-4-5", "claude-opus-4-5[1m]"));
        assert!(!matches("claude-opus-4-5", "xclaude-opus-4-5"));
        assert!(!matches("claude-opus-4-5", "claude-opus-4-5x"));
        assert!(!matches("claude-opus-4-5", "claude-opus-4-50"));
    }

    #[test]
    fn version_numbers_are_not_crossed_but_dates_are() {
        assert!(!matches("claude-opus-4", "claude-opus-4-5"));
        assert!(!matches("claude-opus-4", "claude-opus-4-5-20251101"));
        assert!(!matches("claude-opus-4", "claude-opus-4.5"));
        assert!(matches("claude-opus-4", "claude-opus-4-20250514"));
        assert!(matches("claude-opus-4-5", "claude-opus-4-5-20251101"));
        assert!(matches("claude-opus-4-5", "claude-opus-4-5-20251101-v1:0"));
        // 4 or 9 digits are not a date.
        assert!(!matches("claude-opus-4-5", "claude-opus-4-5-2025"));
        assert!(!matches("claude-opus-4-5", "claude-opus-4-5-202511011"));
        // A date glued to more text is not a date either.
        assert!(!matches("claude-opus-4-5", "claude-opus-4-5-20251101x"));
        // Only keys ending in a digit are protected against a following number.
        assert!(matches("claude-x-latest", "claude-x-latest-2"));
        assert!(!matches("claude-x-v1", "claude-x-v1-2"));
    }

    #[test]
    fn dots_and_at_signs_are_dashes() {
        assert!(matches("claude-opus-4-5", "claude-opus-4.5"));
        assert!(matches(
            "claude-opus-4-5-20251101",
            "vertex_ai/claude-opus-4-5@20251101"
        ));
        assert!(!matches("claude-opus-4-7", "claude-opus-4.70"));
    }

    #[test]
    fn containment_works_in_both_directions() {
        assert!(matches(
            "us.anthropic.claude-opus-4-5-20251101-v1:0",
            "claude-opus-4-5-20251101"
        ));
        assert!(matches(
            "us.anthropic.claude-opus-4-5-20251101-v1:0",
            "bedrock/us.anthropic.claude-opus-4-5-20251101-v1:0"
        ));
    }

    #[test]
    fn matching_is_case_sensitive_and_ignores_empty_names() {
        assert!(!matches("claude-opus-4-5", "Claude-Opus-4-5"));
        assert!(!matches("claude-opus-4-5", ""));
    }

    #[test]
    fn longest_then_alphabetical_wins() {
        assert!(better_candidate("us.anthropic.claude-x", "claude-x"));
        assert!(!better_candidate("claude-x", "us.anthropic.claude-x"));
        assert!(better_candidate(
            "eu.anthropic.claude-x",
            "us.anthropic.claude-x"
        ));
        assert!(!better_candidate(
            "us.anthropic.claude-x",
            "eu.anthropic.claude-x"
        ));
    }
}
