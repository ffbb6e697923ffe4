//! Turning one transcript line into a usage entry, accepting and
//! rejecting exactly the lines ccusage 20.0.24 does (measured on fixtures, see
//! tests below and tests/fixtures/).
//!
//! Only the fields csm needs are read; message content and tool results are
//! skipped by the JSON parser without being copied.

use std::borrow::Cow;
use std::sync::Arc;

use jiff::Timestamp;
use memchr::memmem;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use crate::domain::{Origin, Speed, TokenCounts, UsageEntry};

mod fast;
pub use fast::agrees_with_serde;

/// Why a line did not become an entry. Every line read lands in exactly one
/// bucket or becomes an entry, so the counts add up to the lines read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Empty or whitespace only.
    Blank,
    /// No `"usage":{` in the line: user turns, tool results, summaries.
    NoUsage,
    /// Not valid JSON (truncated writes, binary garbage, trailing bytes, too deep).
    InvalidJson,
    /// JSON with a usage marker, but not an object with `message.usage`.
    NotUsageEntry,
    /// A usage entry whose fields have the wrong type or value.
    InvalidFields,
    /// `null` in a field ccusage refuses to see null in (`id`, `model`, `costUSD`…).
    NullField,
    /// `timestamp` missing or not `YYYY-MM-DDTHH:MM:SS[.mmm](Z|±HH:MM)`.
    BadTimestamp,
}

impl SkipReason {
    /// Every reason, in declaration order (the order of the `skipped` counters and of the reports).
    pub const ALL: [SkipReason; 7] = [
        SkipReason::Blank,
        SkipReason::NoUsage,
        SkipReason::InvalidJson,
        SkipReason::NotUsageEntry,
        SkipReason::InvalidFields,
        SkipReason::NullField,
        SkipReason::BadTimestamp,
    ];

    /// The reason as `csm --debug` and `csm doctor` print it.
    pub fn label(self) -> &'static str {
        match self {
            SkipReason::Blank => "blank line",
            SkipReason::NoUsage => "no usage (user turn, tool result, summary)",
            SkipReason::InvalidJson => "invalid JSON (truncated, binary, trailing bytes)",
            SkipReason::NotUsageEntry => "JSON without message.usage",
            SkipReason::InvalidFields => "usage with invalid field types or values",
            SkipReason::NullField => {
                "null in a field ccusage refuses null in (id, cwd, model, speed, costUSD, version, sessionId, requestId, isApiErrorMessage, cache token counts)"
            }
            SkipReason::BadTimestamp => "missing or invalid timestamp",
        }
    }

    /// Stable snake_case name of the reason, used as a key in `csm doctor --json`.
    pub fn key(self) -> &'static str {
        match self {
            SkipReason::Blank => "blank",
            SkipReason::NoUsage => "no_usage",
            SkipReason::InvalidJson => "invalid_json",
            SkipReason::NotUsageEntry => "not_usage_entry",
            SkipReason::InvalidFields => "invalid_fields",
            SkipReason::NullField => "null_field",
            SkipReason::BadTimestamp => "bad_timestamp",
        }
    }
}

/// The marker every usage line contains, byte for byte (ccusage's pre-filter:
/// `"usage": {` with a space does not count).
pub const USAGE_MARKER: &[u8] = b"\"usage\":{";

/// Keys whose `null` value, at any depth, makes ccusage drop the whole line.
const NULL_REJECT_KEYS: [&str; 11] = [
    "id",
    "cwd",
    "model",
    "speed",
    "costUSD",
    "version",
    "sessionId",
    "requestId",
    "isApiErrorMessage",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
];

const LIMIT_MARKER: &[u8] = b"Claude AI usage limit reached";

#[derive(Deserialize, PartialEq, Debug)]
struct RawLine<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    message: Option<RawMessage<'a>>,
    #[serde(default, borrow, rename = "requestId")]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "sessionId")]
    session_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    version: Option<Cow<'a, str>>,
    #[serde(default, rename = "costUSD")]
    cost_usd: Option<f64>,
    #[serde(default, rename = "isSidechain")]
    is_sidechain: Option<bool>,
    #[serde(default, rename = "isApiErrorMessage")]
    is_api_error: Option<bool>,
}

#[derive(Deserialize, PartialEq, Debug)]
struct RawMessage<'a> {
    usage: Option<RawUsage>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize, PartialEq, Debug)]
struct RawUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<RawCacheCreation>,
    #[serde(default)]
    speed: Option<RawSpeed>,
}

#[derive(Deserialize, PartialEq, Debug)]
struct RawCacheCreation {
    #[serde(default, deserialize_with = "present")]
    ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    ephemeral_1h_input_tokens: Option<u64>,
}

/// Optional, but `null` is a type error (serde's `Option` would accept it).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum RawSpeed {
    Standard,
    Fast,
}

/// Parses lines into entries, sharing one copy of each model name.
pub struct LineParser {
    usage_finder: memmem::Finder<'static>,
    null_finder: memmem::Finder<'static>,
    limit_finder: memmem::Finder<'static>,
    models: Vec<Arc<str>>,
    /// The quick reader's scratch space.
    scratch: fast::Scratch,
    /// Off only for the reference parser (see `serde_only`).
    quick: bool,
}

impl Default for LineParser {
    fn default() -> Self {
        Self::new()
    }
}

impl LineParser {
    /// A parser with no model names interned yet, using the quick reader.
    pub fn new() -> Self {
        Self {
            usage_finder: memmem::Finder::new(USAGE_MARKER),
            null_finder: memmem::Finder::new(b"null"),
            limit_finder: memmem::Finder::new(LIMIT_MARKER),
            models: Vec::new(),
            scratch: fast::Scratch::default(),
            quick: true,
        }
    }

    /// A parser that reads every line with serde_json alone: the reference
    /// the quick reader is checked and timed against.
    pub fn serde_only() -> Self {
        Self {
            quick: false,
            ..Self::new()
        }
    }

    /// The cheap test run on every line before any JSON parsing.
    pub fn prefilter(&self, line: &[u8]) -> Result<(), SkipReason> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(SkipReason::Blank);
        }
        if !self.has_usage_marker(line) {
            return Err(SkipReason::NoUsage);
        }
        Ok(())
    }

    /// Whether the usage marker is in `line`. In a response's line the
    /// usage object comes after the content, so the last KiB is searched
    /// first: a search from the start would read nearly the whole line.
    /// (memchr's reverse search is not vectorised, and was slower.)
    fn has_usage_marker(&self, line: &[u8]) -> bool {
        const TAIL: usize = 1024;
        if line.len() <= 2 * TAIL {
            return self.usage_finder.find(line).is_some();
        }
        let cut = line.len() - TAIL;
        // The head overlaps the tail by less than a marker, so a marker
        // across the cut is found in the head.
        self.usage_finder.find(&line[cut..]).is_some()
            || self
                .usage_finder
                .find(&line[..cut + USAGE_MARKER.len() - 1])
                .is_some()
    }

    /// Parses one transcript line into a usage entry, or says why the line is skipped.
    pub fn parse_line(
        &mut self,
        line: &[u8],
        origin: &Arc<Origin>,
    ) -> Result<UsageEntry, SkipReason> {
        self.prefilter(line)?;
        self.parse_candidate(line, origin)
    }

    /// [`parse_line`](Self::parse_line) for a line that already passed
    /// [`prefilter`](Self::prefilter).
    pub fn parse_candidate(
        &mut self,
        line: &[u8],
        origin: &Arc<Origin>,
    ) -> Result<UsageEntry, SkipReason> {
        let quick = if self.quick {
            fast::read_line(line, &mut self.scratch)
        } else {
            None
        };
        let (raw, rejected_null) = match quick {
            Some(q) => (q.raw, q.rejected_null),
            None => match serde_json::from_slice(line) {
                Ok(raw) => (
                    raw,
                    self.may_hold_rejected_null(line) && has_rejected_null(line),
                ),
                Err(e) => return Err(classify_error(&e, line)),
            },
        };
        if rejected_null {
            return Err(SkipReason::NullField);
        }
        let reset_source = Some(line);
        self.build(raw, origin, reset_source)
    }

    /// Parses a line too long to hold in memory, straight from a reader
    /// (`reopen` gives a fresh reader over the same bytes for the null check).
    pub fn parse_reader<R: std::io::Read>(
        &mut self,
        reader: R,
        mut reopen: impl FnMut() -> Option<R>,
        origin: &Arc<Origin>,
    ) -> Result<UsageEntry, SkipReason> {
        // A reader never lends strings, so the borrowed fields come back owned.
        let mut de = serde_json::Deserializer::from_reader(reader);
        let raw = match RawLine::deserialize(&mut de).and_then(|raw| de.end().map(|()| raw)) {
            Ok(raw) => raw,
            Err(e) if e.is_data() => return Err(SkipReason::InvalidFields),
            Err(_) => return Err(SkipReason::InvalidJson),
        };
        let Some(again) = reopen() else {
            return Err(SkipReason::InvalidJson);
        };
        if stream_has_rejected_null(again) {
            return Err(SkipReason::NullField);
        }
        self.build(raw, origin, None)
    }

    fn build(
        &mut self,
        raw: RawLine<'_>,
        origin: &Arc<Origin>,
        line: Option<&[u8]>,
    ) -> Result<UsageEntry, SkipReason> {
        let message = raw.message.ok_or(SkipReason::NotUsageEntry)?;
        let usage = message.usage.ok_or(SkipReason::NotUsageEntry)?;
        let timestamp = raw
            .timestamp
            .as_deref()
            .and_then(parse_timestamp)
            .ok_or(SkipReason::BadTimestamp)?;
        if raw.version.as_deref().is_some_and(|v| !is_version(v)) {
            return Err(SkipReason::InvalidFields);
        }
        let empty = |s: &Option<Cow<'_, str>>| s.as_deref() == Some("");
        if empty(&raw.session_id)
            || empty(&raw.request_id)
            || empty(&message.id)
            || empty(&message.model)
        {
            return Err(SkipReason::InvalidFields);
        }
        // A cache_creation object replaces the flat count, even when empty.
        let (cache_creation, cache_1h) = match usage.cache_creation {
            Some(c) => {
                let five = c.ephemeral_5m_input_tokens.unwrap_or(0);
                let hour = c.ephemeral_1h_input_tokens.unwrap_or(0);
                (five.saturating_add(hour), hour)
            }
            None => (usage.cache_creation_input_tokens.unwrap_or(0), 0),
        };
        let usage_limit_reset = match (raw.is_api_error, line) {
            (Some(true), Some(line)) => self.limit_reset(line),
            _ => None,
        };
        Ok(UsageEntry {
            timestamp,
            tokens: TokenCounts {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cache_creation_input_tokens: cache_creation,
                cache_read_input_tokens: usage.cache_read_input_tokens.unwrap_or(0),
            },
            cache_creation_1h: cache_1h,
            speed: usage.speed.map(|s| match s {
                RawSpeed::Standard => Speed::Standard,
                RawSpeed::Fast => Speed::Fast,
            }),
            cost_usd: raw.cost_usd,
            model: message.model.map(|m| self.intern(&m)),
            message_id: message.id.as_deref().map(hash_id),
            request_id: raw.request_id.as_deref().map(hash_id),
            session_key: hash_id(raw.session_id.as_deref().unwrap_or(&origin.session_id)),
            origin: origin.clone(),
            offset: 0,
            is_sidechain: raw.is_sidechain.unwrap_or(false),
            usage_limit_reset,
        })
    }

    /// Conservative: true unless no `null` in the line can follow one of the
    /// rejecting keys. Only then is the exact (slower) check run.
    fn may_hold_rejected_null(&self, line: &[u8]) -> bool {
        self.null_finder.find_iter(line).any(|at| {
            let before = trim_end_ws(&line[..at]);
            let Some(before) = before.strip_suffix(b":") else {
                return false;
            };
            let before = trim_end_ws(before);
            let Some(before) = before.strip_suffix(b"\"") else {
                return false;
            };
            // Escaped keys (`"i\u0064"`) are rare; let the exact check decide.
            let key_start = before.iter().rposition(|b| *b == b'"').map_or(0, |p| p + 1);
            let key = &before[key_start..];
            key.contains(&b'\\') || NULL_REJECT_KEYS.iter().any(|k| k.as_bytes() == key)
        })
    }

    /// ccusage looks anywhere in an API error line for the marker, then the
    /// first `|`, then unix seconds.
    fn limit_reset(&self, line: &[u8]) -> Option<Timestamp> {
        let at = self.limit_finder.find(line)? + LIMIT_MARKER.len();
        let pipe = at + memchr::memchr(b'|', &line[at..])?;
        let digits = &line[pipe + 1..];
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        let secs: i64 = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
        if secs <= 0 {
            return None;
        }
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

fn trim_end_ws(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &s[..end]
}

fn classify_error(e: &serde_json::Error, line: &[u8]) -> SkipReason {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => SkipReason::InvalidJson,
        Category::Data => {
            // Our shape failed; tell bad fields from a line that is no entry at all.
            #[derive(Deserialize)]
            struct Probe {
                message: Option<ProbeMessage>,
            }
            #[derive(Deserialize)]
            struct ProbeMessage {
                usage: Option<IgnoredAny>,
            }
            match serde_json::from_slice::<Probe>(line) {
                Ok(Probe {
                    message: Some(ProbeMessage { usage: Some(_) }),
                }) => {
                    if e.to_string().contains("null") {
                        SkipReason::NullField
                    } else {
                        SkipReason::InvalidFields
                    }
                }
                Ok(_) => SkipReason::NotUsageEntry,
                Err(_) => SkipReason::InvalidFields,
            }
        }
    }
}

/// Scans a whole JSON document (already known to be valid) for a member whose
/// key is one of [`NULL_REJECT_KEYS`] and whose value is `null`, at any depth.
/// Iterative, so nesting depth costs nothing but time.
fn has_rejected_null(line: &[u8]) -> bool {
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let Some(end) = string_end(line, start) else {
            return false;
        };
        i = end + 1;
        let mut j = i;
        while j < line.len() && line[j].is_ascii_whitespace() {
            j += 1;
        }
        // Only a string followed by ':' is a key.
        if line.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        while j < line.len() && line[j].is_ascii_whitespace() {
            j += 1;
        }
        if line[j..].starts_with(b"null") && is_rejecting_key(&line[start..end]) {
            return true;
        }
    }
    false
}

/// Index of the closing quote of a string whose content starts at `from`.
fn string_end(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn is_rejecting_key(raw: &[u8]) -> bool {
    if !raw.contains(&b'\\') {
        return NULL_REJECT_KEYS.iter().any(|k| k.as_bytes() == raw);
    }
    // An escaped key (`"i\u0064"`): decode it the way a JSON parser would.
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|k| NULL_REJECT_KEYS.contains(&k.as_str()))
}

/// `YYYY-MM-DDTHH:MM:SS`, optional `.mmm` (exactly three digits), then `Z` or
/// `±HH:MM`: the only shapes ccusage accepts.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0')),
        )
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut millis = 0;
    if sep(i, b'.') {
        millis = num(i + 1..i + 4)?;
        i += 4;
    }
    let offset_secs = match b.get(i)? {
        b'Z' if b.len() == i + 1 => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && sep(i + 3, b':') => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = jiff::civil::Date::new(year as i16, month as i8, day as i8).ok()?;
    let dt = date.at(hour as i8, minute as i8, second as i8, millis * 1_000_000);
    let offset = jiff::tz::Offset::from_seconds(offset_secs).ok()?;
    offset.to_timestamp(dt).ok()
}

/// [`has_rejected_null`] over a reader, holding one window at a time: keys
/// are short, so a window that overlaps the previous one by more than the
/// longest key plus `":null` cannot miss a match.
fn stream_has_rejected_null<R: std::io::Read>(mut r: R) -> bool {
    const WINDOW: usize = 1 << 20;
    const OVERLAP: usize = 64;
    let mut buf = vec![0u8; WINDOW + OVERLAP];
    let mut kept = 0;
    loop {
        let n = match r.read(&mut buf[kept..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let filled = kept + n;
        if NULL_REJECT_KEYS.iter().any(|k| {
            let needle = format!("\"{k}\"");
            memmem::find(&buf[..filled], needle.as_bytes()).is_some()
        }) && has_rejected_null(&buf[..filled])
        {
            return true;
        }
        let keep = filled.min(OVERLAP);
        buf.copy_within(filled - keep..filled, 0);
        kept = keep;
    }
}

/// `^\d+\.\d+\.\d`: what ccusage requires of a present `version`.
fn is_version(v: &str) -> bool {
    // By bytes: a split on '.' was a visible share of a usage line's cost.
    let b = v.as_bytes();
    let digits = |from: usize| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let major = digits(0);
    if major == 0 || b.get(major) != Some(&b'.') {
        return false;
    }
    let minor = digits(major + 1);
    minor > 0
        && b.get(major + 1 + minor) == Some(&b'.')
        && b.get(major + minor + 2).is_some_and(u8::is_ascii_digit)
}

/// 64-bit identity of an id string; collisions are negligible at transcript scale.
pub fn hash_id(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

#[cfg(test)]
mod tests;
