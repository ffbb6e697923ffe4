//! Turning one transcript line into a usage entry (SPEC 2.2).
//!
//! Only the fields csm needs are read; the rest of a line (message content,
//! tool results) is skipped by the JSON parser without being copied.

use std::borrow::Cow;
use std::sync::Arc;

use jiff::Timestamp;
use memchr::memmem;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};
use serde_json::value::RawValue;

use crate::domain::{Speed, TokenCounts, UsageEntry};

/// Why a line did not become an entry. Every line read lands in exactly one
/// bucket (or becomes an entry), so the counts add up to the lines read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Empty or whitespace only.
    Blank,
    /// No `"usage"` anywhere in the line: user turns, tool results, summaries.
    NoUsage,
    /// Not valid JSON (truncated writes, binary garbage, invalid UTF-8, nesting too deep).
    InvalidJson,
    /// JSON, but not an object, or without `message.usage`.
    NotUsageEntry,
    /// A usage entry whose fields have the wrong type or value (for example `null`).
    InvalidFields,
    /// `timestamp` missing or not an ISO-8601 time.
    BadTimestamp,
}

impl SkipReason {
    pub const ALL: [SkipReason; 6] = [
        SkipReason::Blank,
        SkipReason::NoUsage,
        SkipReason::InvalidJson,
        SkipReason::NotUsageEntry,
        SkipReason::InvalidFields,
        SkipReason::BadTimestamp,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SkipReason::Blank => "blank line",
            SkipReason::NoUsage => "no usage (user turn, tool result, summary)",
            SkipReason::InvalidJson => "invalid JSON (truncated, binary, too deep)",
            SkipReason::NotUsageEntry => "JSON without message.usage",
            SkipReason::InvalidFields => "usage with invalid field values",
            SkipReason::BadTimestamp => "missing or invalid timestamp",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            SkipReason::Blank => "blank",
            SkipReason::NoUsage => "no_usage",
            SkipReason::InvalidJson => "invalid_json",
            SkipReason::NotUsageEntry => "not_usage_entry",
            SkipReason::InvalidFields => "invalid_fields",
            SkipReason::BadTimestamp => "bad_timestamp",
        }
    }
}

/// A field that distinguishes "absent" from "null" from a value, because
/// ccusage rejects `null` in some optional fields where absence is fine.
#[derive(Debug, Default)]
pub(crate) enum Field<T> {
    #[default]
    Missing,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Field::Null,
            Some(v) => Field::Value(v),
        })
    }
}

impl<T> Field<T> {
    /// Absent is fine, `null` is not: `Err` means reject the line.
    fn optional(self) -> Result<Option<T>, ()> {
        match self {
            Field::Missing => Ok(None),
            Field::Null => Err(()),
            Field::Value(v) => Ok(Some(v)),
        }
    }

    /// Absent and `null` both mean "not given".
    fn nullable(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>, 'de: 'a"))]
struct RawLine<'a, C> {
    #[serde(default, borrow)]
    timestamp: Field<Cow<'a, str>>,
    #[serde(default)]
    message: Field<RawMessage<'a, C>>,
    #[serde(default, borrow, rename = "requestId")]
    request_id: Field<Cow<'a, str>>,
    #[serde(default, rename = "costUSD")]
    cost_usd: Field<f64>,
    #[serde(default, rename = "isSidechain")]
    is_sidechain: Field<bool>,
    #[serde(default, rename = "isApiErrorMessage")]
    is_api_error: Field<bool>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>, 'de: 'a"))]
struct RawMessage<'a, C> {
    #[serde(default)]
    usage: Field<RawUsage>,
    #[serde(default, borrow)]
    model: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Field<Cow<'a, str>>,
    #[serde(default)]
    content: Option<C>,
}

/// How much of `message.content` a parse keeps: a borrowed slice when the line
/// is in memory, nothing when it is streamed from a reader.
trait Content {
    fn raw(&self) -> Option<&[u8]>;
}

impl Content for &RawValue {
    fn raw(&self) -> Option<&[u8]> {
        Some(self.get().as_bytes())
    }
}

impl Content for IgnoredAny {
    fn raw(&self) -> Option<&[u8]> {
        None
    }
}

#[derive(Deserialize)]
struct RawUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Field<u64>,
    #[serde(default)]
    cache_read_input_tokens: Field<u64>,
    #[serde(default)]
    cache_creation: Field<RawCacheCreation>,
    #[serde(default)]
    speed: Field<String>,
}

#[derive(Deserialize)]
struct RawCacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: Field<u64>,
    #[serde(default)]
    ephemeral_1h_input_tokens: Field<u64>,
}

/// Only the object-ness of a line, to tell "JSON but not an entry" from "not JSON".
#[derive(Deserialize)]
struct AnyValue(#[allow(dead_code)] IgnoredAny);

const LIMIT_MARKER: &[u8] = b"Claude AI usage limit reached|";

/// Per-file context copied into each entry.
pub struct LineContext {
    pub session_id: Arc<str>,
    pub project: Arc<str>,
}

/// Parses lines into entries, interning model names so equal names share memory.
pub struct LineParser {
    usage_finder: memmem::Finder<'static>,
    limit_finder: memmem::Finder<'static>,
    models: Vec<Arc<str>>,
}

impl Default for LineParser {
    fn default() -> Self {
        Self::new()
    }
}

impl LineParser {
    pub fn new() -> Self {
        Self {
            usage_finder: memmem::Finder::new(super::reader::USAGE_MARKER),
            limit_finder: memmem::Finder::new(LIMIT_MARKER),
            models: Vec::new(),
        }
    }

    /// Cheap test run before any JSON parsing.
    pub fn may_be_usage(&self, line: &[u8]) -> Result<(), SkipReason> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(SkipReason::Blank);
        }
        if self.usage_finder.find(line).is_none() {
            return Err(SkipReason::NoUsage);
        }
        Ok(())
    }

    pub fn parse_line(&mut self, line: &[u8], ctx: &LineContext) -> Result<UsageEntry, SkipReason> {
        self.may_be_usage(line)?;
        let raw: RawLine<'_, &RawValue> = match serde_json::from_slice(line) {
            Ok(raw) => raw,
            Err(_) => return Err(classify_failure(line)),
        };
        self.build(raw, ctx)
    }

    /// Parses a line too long to hold in memory, straight from a reader: strings
    /// are copied only for the few fields kept, content is skipped unread.
    pub fn parse_reader<R: std::io::Read>(
        &mut self,
        reader: R,
        ctx: &LineContext,
    ) -> Result<UsageEntry, SkipReason> {
        // A reader never lends strings, so the borrowed fields come back owned.
        let mut de = serde_json::Deserializer::from_reader(reader);
        let raw = match RawLine::<'_, IgnoredAny>::deserialize(&mut de).and_then(|raw| {
            de.end()?;
            Ok(raw)
        }) {
            Ok(raw) => raw,
            Err(e) if e.is_data() => return Err(SkipReason::InvalidFields),
            Err(_) => return Err(SkipReason::InvalidJson),
        };
        self.build(raw, ctx)
    }

    fn build<C: Content>(
        &mut self,
        raw: RawLine<'_, C>,
        ctx: &LineContext,
    ) -> Result<UsageEntry, SkipReason> {
        let message = match raw.message {
            Field::Value(m) => m,
            _ => return Err(SkipReason::NotUsageEntry),
        };
        let usage = match message.usage {
            Field::Value(u) => u,
            _ => return Err(SkipReason::NotUsageEntry),
        };
        let timestamp = match raw.timestamp {
            Field::Value(t) => parse_timestamp(&t).ok_or(SkipReason::BadTimestamp)?,
            _ => return Err(SkipReason::BadTimestamp),
        };
        let bad = |_| SkipReason::InvalidFields;
        let cache_creation_flat = usage.cache_creation_input_tokens.optional().map_err(bad)?;
        let cache_read = usage.cache_read_input_tokens.optional().map_err(bad)?;
        let split = usage.cache_creation.nullable();
        let (cache_creation, cache_1h) = match split {
            Some(c) => {
                let five = c.ephemeral_5m_input_tokens.nullable();
                let hour = c.ephemeral_1h_input_tokens.nullable();
                if five.is_some() || hour.is_some() {
                    let (five, hour) = (five.unwrap_or(0), hour.unwrap_or(0));
                    (five + hour, hour)
                } else {
                    (cache_creation_flat.unwrap_or(0), 0)
                }
            }
            None => (cache_creation_flat.unwrap_or(0), 0),
        };
        let speed = match usage.speed.nullable().as_deref() {
            Some("fast") => Speed::Fast,
            _ => Speed::Standard,
        };
        let model = message.model.optional().map_err(bad)?;
        let message_id = message.id.optional().map_err(bad)?;
        let request_id = raw.request_id.optional().map_err(bad)?;
        let cost_usd = raw.cost_usd.optional().map_err(bad)?;
        let is_sidechain = raw.is_sidechain.nullable().unwrap_or(false);
        let is_api_error = raw.is_api_error.nullable().unwrap_or(false);

        let usage_limit_reset = if is_api_error {
            message
                .content
                .as_ref()
                .and_then(Content::raw)
                .and_then(|c| self.limit_reset(c))
        } else {
            None
        };
        let dedup_key = match (&message_id, &request_id) {
            (Some(m), Some(r)) => Some(dedup_key(m, r)),
            _ => None,
        };
        Ok(UsageEntry {
            timestamp,
            tokens: TokenCounts {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cache_creation_input_tokens: cache_creation,
                cache_read_input_tokens: cache_read.unwrap_or(0),
            },
            cache_creation_1h: cache_1h,
            speed,
            cost_usd,
            model: model.map(|m| self.intern(&m)),
            dedup_key,
            session_id: ctx.session_id.clone(),
            project: ctx.project.clone(),
            is_sidechain,
            usage_limit_reset,
        })
    }

    fn limit_reset(&self, content: &[u8]) -> Option<Timestamp> {
        let at = self.limit_finder.find(content)? + LIMIT_MARKER.len();
        let digits: &[u8] = &content[at..];
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        let secs: i64 = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
        Timestamp::from_second(secs).ok()
    }

    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(m) = self.models.iter().find(|m| &***m == name) {
            return m.clone();
        }
        let m: Arc<str> = Arc::from(name);
        self.models.push(m.clone());
        m
    }
}

fn classify_failure(line: &[u8]) -> SkipReason {
    // A line that is valid JSON but failed our shape is a bad entry, not bad JSON.
    match serde_json::from_slice::<AnyValue>(line) {
        Ok(_) => match serde_json::from_slice::<RawProbe>(line) {
            Ok(probe) if probe.has_usage() => SkipReason::InvalidFields,
            _ => SkipReason::NotUsageEntry,
        },
        Err(_) => SkipReason::InvalidJson,
    }
}

#[derive(Deserialize)]
struct RawProbe {
    #[serde(default)]
    message: Option<RawProbeMessage>,
}

#[derive(Deserialize)]
struct RawProbeMessage {
    #[serde(default)]
    usage: Option<IgnoredAny>,
}

impl RawProbe {
    fn has_usage(&self) -> bool {
        self.message.as_ref().is_some_and(|m| m.usage.is_some())
    }
}

/// `2026-11-20T10:15:30.123Z` or with a `±HH:MM` offset.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// Stable 128-bit identity of a streamed response (message id + request id).
pub fn dedup_key(message_id: &str, request_id: &str) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(message_id.as_bytes());
    h.update(&[0]);
    h.update(request_id.as_bytes());
    h.digest128()
}

