//! Reading LiteLLM's `model_prices_and_context_window.json`.
//!
//! The same rules as `scripts/gen-pricing.py` (which produces the embedded
//! table) so that a file fetched by `csm pricing update` prices exactly like
//! an embedded table generated from the same data.

use std::fmt;

use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::TokenKind;

/// Key prefixes ccusage 20.0.24 embeds, restricted to Claude models.
///
/// Fuzzy matching prefers the longest matching key, so the set of keys is
/// part of the matching behaviour: LiteLLM also lists e.g.
/// `bedrock/us-gov-west-1/anthropic.claude-…` at government-cloud prices, and
/// keeping those would let them win over the plain Anthropic price.
const KEY_PREFIXES: [&str; 8] = [
    "claude-",
    "anthropic.",
    "anthropic/",
    "us.anthropic.",
    "eu.anthropic.",
    "global.anthropic.",
    "jp.anthropic.",
    "au.anthropic.",
];

/// LiteLLM field names of the base prices, by token kind.
const BASE_FIELDS: [(&str, TokenKind); 5] = [
    ("input_cost_per_token", TokenKind::Input),
    ("output_cost_per_token", TokenKind::Output),
    ("cache_creation_input_token_cost", TokenKind::CacheWrite5m),
    (
        "cache_creation_input_token_cost_above_1hr",
        TokenKind::CacheWrite1h,
    ),
    ("cache_read_input_token_cost", TokenKind::CacheRead),
];

/// One LiteLLM entry as published: absent prices stay `None` so that the
/// defaults are applied in one place, `ModelPrice::build`. The embedded table
/// uses the default `'static` storage; entries read at run time own theirs
/// ([`ParsedEntry`]).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct RawEntry<K = &'static str, T = &'static [RawTier]> {
    pub(super) key: K,
    pub(super) input: f64,
    pub(super) output: f64,
    pub(super) cache_write_5m: Option<f64>,
    pub(super) cache_write_1h: Option<f64>,
    pub(super) cache_read: Option<f64>,
    pub(super) tiers: T,
    pub(super) fast: Option<f64>,
}

/// [`RawEntry`] read at run time.
pub(super) type ParsedEntry = RawEntry<String, Vec<RawTier>>;

/// A `<field>_above_<N>k_tokens` price: tokens of `kind` beyond `above` (in
/// one entry) cost `price` each.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct RawTier {
    pub(super) kind: TokenKind,
    pub(super) above: u64,
    pub(super) price: f64,
}

pub(super) fn keep_key(key: &str) -> bool {
    key.contains("claude") && KEY_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Parses a whole LiteLLM document, keeping the usable Claude entries.
///
/// Other entries are skipped without building a `Value` for them: the full
/// file has thousands of models and is parsed on every `csm` start once
/// `csm pricing update` has stored it.
pub(super) fn parse_document(json: &str) -> Result<Vec<ParsedEntry>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let entries = (&mut de).deserialize_map(ClaudeEntries)?;
    de.end()?;
    Ok(entries)
}

struct ClaudeEntries;

impl<'de> Visitor<'de> for ClaudeEntries {
    type Value = Vec<ParsedEntry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object mapping model names to prices")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if keep_key(&key) {
                let value: Value = map.next_value()?;
                if let Some(entry) = parse_entry(key, &value) {
                    entries.push(entry);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(entries)
    }
}

/// `None` when the entry cannot price tokens: not an object, no input or
/// output price, or a price that is not a non-negative number. A malformed
/// entry is dropped whole rather than priced from its remaining fields, which
/// could silently under-report.
pub(super) fn parse_entry(key: String, value: &Value) -> Option<ParsedEntry> {
    let fields = value.as_object()?;
    let input = price(fields, "input_cost_per_token").ok()??;
    let output = price(fields, "output_cost_per_token").ok()??;
    let mut tiers = Vec::new();
    for (name, value) in fields {
        let Some((base, above)) = split_tier_field(name) else {
            continue;
        };
        let Some(&(_, kind)) = BASE_FIELDS.iter().find(|(field, _)| *field == base) else {
            continue;
        };
        if let Some(price) = number(value).ok()? {
            tiers.push(RawTier { kind, above, price });
        }
    }
    tiers.sort_by_key(|t| (t.kind, t.above));
    let fast = match fields.get("provider_specific_entry") {
        Some(Value::Object(entry)) => price(entry, "fast").ok()?.filter(|f| *f > 0.0),
        _ => None,
    };
    Some(ParsedEntry {
        key,
        input,
        output,
        cache_write_5m: price(fields, "cache_creation_input_token_cost").ok()?,
        cache_write_1h: price(fields, "cache_creation_input_token_cost_above_1hr").ok()?,
        cache_read: price(fields, "cache_read_input_token_cost").ok()?,
        tiers,
        fast,
    })
}

/// `Ok(None)` for an absent or `null` field, `Err` for a malformed one.
fn price(fields: &Map<String, Value>, name: &str) -> Result<Option<f64>, ()> {
    fields.get(name).map_or(Ok(None), number)
}

fn number(value: &Value) -> Result<Option<f64>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(()),
        },
        _ => Err(()),
    }
}

/// `input_cost_per_token_above_200k_tokens` → (`input_cost_per_token`,
/// 200 000). Variants such as `…_above_200k_tokens_batches` or
/// `…_above_1hr` alone are not tiers.
fn split_tier_field(name: &str) -> Option<(&str, u64)> {
    let rest = name.strip_suffix("k_tokens")?;
    let (base, thousands) = rest.rsplit_once("_above_")?;
    if thousands.is_empty() || !thousands.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousands: u64 = thousands.parse().ok()?;
    let above = thousands.checked_mul(1000)?;
    (above > 0).then_some((base, above))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_key_set_ccusage_embeds() {
        for key in [
            "claude-opus-4-5",
            "anthropic/claude-opus-4-5",
            "anthropic.claude-opus-4-5-20251101-v1:0",
            "us.anthropic.claude-opus-4-5-20251101-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "au.anthropic.claude-haiku-4-5-20251001-v1:0",
        ] {
            assert!(keep_key(key), "{key}");
        }
        for key in [
            "gpt-5",
            "vertex_ai/claude-opus-4-5@20251101",
            "bedrock/us-gov-west-1/anthropic.claude-3-haiku-20240307-v1:0",
            "apac.anthropic.claude-sonnet-4-20250514-v1:0",
            "openrouter/anthropic/claude-opus-4",
            "anthropic.titan-text",
        ] {
            assert!(!keep_key(key), "{key}");
        }
    }

    #[test]
    fn splits_tier_fields() {
        assert_eq!(
            split_tier_field("input_cost_per_token_above_200k_tokens"),
            Some(("input_cost_per_token", 200_000))
        );
        assert_eq!(
            split_tier_field("cache_creation_input_token_cost_above_1hr_above_100k_tokens"),
            Some(("cache_creation_input_token_cost_above_1hr", 100_000))
        );
        assert_eq!(
            split_tier_field("cache_creation_input_token_cost_above_1hr"),
            None
        );
        assert_eq!(
            split_tier_field("input_cost_per_token_above_200k_tokens_batches"),
            None
        );
        assert_eq!(
            split_tier_field("input_cost_per_token_above_k_tokens"),
            None
        );
        assert_eq!(
            split_tier_field("input_cost_per_token_above_0k_tokens"),
            None
        );
    }

    #[test]
    fn parses_all_price_fields() {
        let value = json!({
            "input_cost_per_token": 3e-6,
            "output_cost_per_token": 1.5e-5,
            "cache_creation_input_token_cost": 3.75e-6,
            "cache_creation_input_token_cost_above_1hr": 6e-6,
            "cache_read_input_token_cost": 3e-7,
            "input_cost_per_token_above_200k_tokens": 6e-6,
            "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-5,
            "output_cost_per_token_above_100k_tokens": 2e-5,
            "input_cost_per_token_above_200k_tokens_batches": 1e-6,
            "input_cost_per_token_batches": 1e-6,
            "provider_specific_entry": {"us": 1.1, "fast": 2},
            "max_input_tokens": 1_000_000,
            "litellm_provider": "anthropic"
        });
        let entry = parse_entry("claude-x".into(), &value).expect("usable entry");
        assert_eq!(entry.input, 3e-6);
        assert_eq!(entry.output, 1.5e-5);
        assert_eq!(entry.cache_write_5m, Some(3.75e-6));
        assert_eq!(entry.cache_write_1h, Some(6e-6));
        assert_eq!(entry.cache_read, Some(3e-7));
        assert_eq!(entry.fast, Some(2.0));
        assert_eq!(
            entry.tiers,
            vec![
                RawTier {
                    kind: TokenKind::Input,
                    above: 200_000,
                    price: 6e-6
                },
                RawTier {
                    kind: TokenKind::Output,
                    above: 100_000,
                    price: 2e-5
                },
                RawTier {
                    kind: TokenKind::CacheWrite1h,
                    above: 200_000,
                    price: 1.2e-5
                },
            ]
        );
    }

    #[test]
    fn missing_or_malformed_prices_drop_the_entry() {
        let no_output = json!({"input_cost_per_token": 1e-6});
        assert_eq!(parse_entry("claude-x".into(), &no_output), None);
        let null_input = json!({"input_cost_per_token": null, "output_cost_per_token": 1e-6});
        assert_eq!(parse_entry("claude-x".into(), &null_input), None);
        let text = json!({"input_cost_per_token": "1e-6", "output_cost_per_token": 1e-6});
        assert_eq!(parse_entry("claude-x".into(), &text), None);
        let negative = json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6,
            "cache_read_input_token_cost": -1.0});
        assert_eq!(parse_entry("claude-x".into(), &negative), None);
        assert_eq!(parse_entry("claude-x".into(), &json!("sample")), None);
    }

    #[test]
    fn null_optional_prices_are_absent() {
        let value = json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
            "cache_read_input_token_cost": null, "provider_specific_entry": {"fast": null}});
        let entry = parse_entry("claude-x".into(), &value).expect("usable entry");
        assert_eq!(entry.cache_read, None);
        assert_eq!(entry.fast, None);
    }

    #[test]
    fn document_keeps_only_usable_claude_entries() {
        let json = r#"{
            "sample_spec": {"max_input_tokens": "max input tokens"},
            "gpt-5": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5},
            "claude-a": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5},
            "claude-b": {"input_cost_per_token": 1e-6},
            "vertex_ai/claude-a": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5}
        }"#;
        let entries = parse_document(json).expect("valid document");
        let keys: Vec<_> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["claude-a"]);
    }

    #[test]
    fn document_must_be_one_json_object() {
        assert!(parse_document("[1, 2]").is_err());
        assert!(parse_document("<html>").is_err());
        assert!(parse_document("{} {}").is_err());
        assert!(parse_document(r#"{"claude-a": {"input_cost_per_token": 1e-6,"#).is_err());
    }
}
