//! What the fuzz targets (fuzz/fuzz_targets/) check on every input, shared
//! with the regression tests that replay their findings from
//! tests/fixtures/fuzz-regressions/ in CI. Each check panics on a violation,
//! which is what a fuzzer reports as a crash.
//!
//! Besides "never panics", each target compares two ways of computing the
//! same thing, so a fuzzer finds wrong answers and not only crashes.

#![allow(dead_code)]

use std::io::Read;
use std::sync::Arc;

use claude_session_monitor::commands::config::set_key;
use claude_session_monitor::config::Config;
use claude_session_monitor::domain::Origin;
use claude_session_monitor::ingest::discover::origin_of;
use claude_session_monitor::ingest::parse::{LineParser, parse_timestamp};
use claude_session_monitor::ingest::reader::{Line, read_lines};

fn origin() -> Arc<Origin> {
    Arc::new(origin_of(&["-home-fuzz", "fuzz-session.jsonl"]))
}

/// One transcript line through the public parse API:
///
/// - `parse_line` never panics, and agrees with its own pre-filter;
/// - an accepted line is a JSON object (once decoded as ccusage decodes it)
///   with `message.usage` and a timestamp jiff reads as the same instant;
/// - the streaming parser used for lines too long to hold (`parse_reader`,
///   with its streamed null check) accepts exactly the lines `parse_line`
///   accepts and builds the same entry (the usage-limit reset is only read
///   from held lines);
/// - a second parse with the same (interning) parser gives the same result.
pub fn transcript_line(data: &[u8]) {
    let origin = origin();
    let mut parser = LineParser::new();
    let first = parser.parse_line(data, &origin);
    if let Err(reason) = parser.prefilter(data) {
        assert_eq!(first, Err(reason), "the pre-filter decides first");
        return;
    }
    let again = parser.parse_line(data, &origin);
    assert_eq!(first, again, "same line, same parser, other result");

    let streamed = parser.parse_reader(data, || Some(data), &origin);
    match (&first, streamed) {
        (Ok(held), Ok(mut streamed)) => {
            streamed.usage_limit_reset = held.usage_limit_reset;
            assert_eq!(held, &streamed, "held and streamed parses differ");
        }
        (Err(_), Err(_)) => {}
        (held, streamed) => {
            panic!("held parse {held:?} but streamed parse {streamed:?}")
        }
    }

    if let Ok(entry) = &first {
        // Invalid UTF-8 inside a string csm skips is tolerated, as ccusage
        // (which decodes the file with replacement characters) tolerates it;
        // serde_json skips ignored values without a depth limit, so the
        // probe ignores everything it does not check.
        #[derive(serde::Deserialize)]
        struct Probe {
            timestamp: String,
            message: ProbeMessage,
        }
        #[derive(serde::Deserialize)]
        struct ProbeMessage {
            usage: ProbeUsage,
        }
        #[derive(serde::Deserialize)]
        struct ProbeUsage {
            input_tokens: u64,
        }
        let text = String::from_utf8_lossy(data);
        let probe: Probe = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("accepted, but not a usage line to serde_json: {e}"));
        let by_jiff: jiff::Timestamp = probe
            .timestamp
            .parse()
            .expect("jiff reads the accepted timestamp");
        assert_eq!(entry.timestamp, by_jiff, "timestamp {:?}", probe.timestamp);
        assert_eq!(entry.tokens.input_tokens, probe.message.usage.input_tokens);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        timestamp(text);
    }
}

/// A timestamp csm accepts means the same instant to jiff's RFC 3339 parser.
pub fn timestamp(text: &str) {
    if let Some(t) = parse_timestamp(text) {
        let by_jiff: jiff::Timestamp = text
            .parse()
            .unwrap_or_else(|e| panic!("csm accepts {text:?}, jiff does not: {e}"));
        assert_eq!(t, by_jiff, "{text:?}");
    }
}

/// A reader that hands out at most a few bytes per call (sizes taken from
/// the data), as a pipe or a file being written does.
struct Trickle<'a> {
    data: &'a [u8],
    at: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = &self.data[self.at..];
        let step = 1 + usize::from(left.first().copied().unwrap_or(0) % 13);
        let n = step.min(left.len()).min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.at += n;
        Ok(n)
    }
}

/// The line reader over a trickling source: the complete lines it hands out,
/// each with its offset, rebuild the input up to the returned end offset,
/// which is just past the last newline; the rest is the unterminated tail.
pub fn line_reader(data: &[u8]) {
    let mut rebuilt = Vec::new();
    let mut tail = None;
    let mut buf = Vec::new();
    let start = 7u64;
    let end = read_lines(
        &mut Trickle { data, at: 0 },
        start,
        &mut buf,
        |line| match line {
            Line::Held { bytes, offset } => {
                assert_eq!(offset, start + rebuilt.len() as u64, "held line offset");
                rebuilt.extend_from_slice(bytes);
                rebuilt.push(b'\n');
            }
            Line::Oversized { .. } => panic!("no line here is over the limit"),
            Line::Unterminated { bytes, offset } => {
                assert!(tail.is_none(), "two unterminated tails");
                tail = Some((bytes.to_vec(), offset));
            }
        },
    )
    .expect("reading memory cannot fail");
    let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    assert_eq!(end, start + complete as u64, "end offset");
    assert_eq!(rebuilt, &data[..complete], "lines rebuild the input");
    match tail {
        Some((bytes, offset)) => {
            assert_eq!(bytes, &data[complete..]);
            assert_eq!(offset, end);
        }
        None => assert_eq!(complete, data.len(), "tail not reported"),
    }
}

/// `config.toml` text: parsing never panics; an accepted config written back
/// as TOML parses to the same config; an error says something.
pub fn config_text(text: &str) {
    match Config::parse(text) {
        Ok(config) => {
            let written = toml::to_string(&config).expect("a config serialises");
            let back = Config::parse(&written)
                .unwrap_or_else(|e| panic!("written config does not parse: {e}\n{written}"));
            assert_eq!(config, back, "round trip through\n{written}");
        }
        Err(message) => assert!(!message.trim().is_empty(), "empty error"),
    }
}

/// `csm config set KEY VALUE` on a file: never panics; whatever it writes is
/// a valid config; a file it refuses is left for the caller unchanged.
pub fn config_set(text: &str, key: &str, value: &str) {
    if let Ok(new) = set_key(text, key, value) {
        Config::parse(&new).unwrap_or_else(|e| panic!("set wrote an invalid config: {e}\n{new}"));
    }
}

/// The config target's input: the first line is the key, the second the
/// value, the rest the file.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    config_text(text);
    let mut parts = text.splitn(3, '\n');
    let (key, value, file) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    config_set(file, key, value);
}
