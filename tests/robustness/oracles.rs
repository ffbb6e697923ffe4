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

use claude_session_monitor::claude::statusline::{
    ActiveBlock, LimitsShown, StoreFigures, limits_shown, parse_input, render,
};
use claude_session_monitor::commands::config::set_key;
use claude_session_monitor::config::Config;
use claude_session_monitor::domain::Origin;
use claude_session_monitor::ingest::claude::activity::{live_sessions_from, parse_hook};
use claude_session_monitor::ingest::discover::origin_of;
use claude_session_monitor::ingest::parse::{LineParser, parse_timestamp};
use claude_session_monitor::ingest::reader::{Line, read_lines};

/// A line as an owned value, kept past the reader's callback.
#[derive(Debug, PartialEq)]
enum Owned {
    Held {
        offset: u64,
        bytes: Vec<u8>,
    },
    Oversized {
        offset: u64,
        len: u64,
        has_usage: bool,
    },
    Unterminated {
        offset: u64,
        bytes: Vec<u8>,
    },
}

fn owned(line: Line<'_>) -> Owned {
    match line {
        Line::Held { bytes, offset } => Owned::Held {
            offset,
            bytes: bytes.to_vec(),
        },
        Line::Oversized {
            offset,
            len,
            has_usage,
        } => Owned::Oversized {
            offset,
            len,
            has_usage,
        },
        Line::Unterminated { bytes, offset } => Owned::Unterminated {
            offset,
            bytes: bytes.to_vec(),
        },
    }
}

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
    assert!(
        claude_session_monitor::ingest::parse::agrees_with_serde(data),
        "the quick reader and serde_json read this line differently"
    );
    assert_eq!(
        first,
        LineParser::serde_only().parse_line(data, &origin),
        "the quick reader changed the verdict"
    );
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
    let start = 7u64;
    let mut read = Vec::new();
    let end = read_lines(
        &mut Trickle { data, at: 0 },
        start,
        &mut Vec::new(),
        |line| read.push(owned(line)),
    )
    .expect("reading memory cannot fail");

    let mut rebuilt = Vec::new();
    let mut tail = None;
    for line in read {
        match line {
            Owned::Held { offset, bytes } => {
                assert_eq!(offset, start + rebuilt.len() as u64, "held line offset");
                rebuilt.extend_from_slice(&bytes);
                rebuilt.push(b'\n');
            }
            Owned::Oversized { .. } => panic!("no line here is over the limit"),
            Owned::Unterminated { offset, bytes } => {
                assert!(tail.is_none(), "two unterminated tails");
                tail = Some((bytes, offset));
            }
        }
    }
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

/// The clock the Claude Code parsers are run at.
fn claude_now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_000_000).expect("a valid instant")
}

/// The status line's stdin payload (`csm statusline`):
///
/// - `parse_input` accepts exactly the JSON objects (fields of other shapes
///   are dropped one by one, never the payload);
/// - what it keeps is plausible: percentages in 0–100, reset times between
///   2020 and a month ahead, names not blank, and the official figures equal
///   `parse_rate_limits` on the payload's `rate_limits`;
/// - the rendered line, with and without store figures and colour, is one
///   line without control characters other than the colour escapes.
pub fn statusline(data: &[u8]) {
    use serde_json::Value;
    let now = claude_now();
    let parsed = parse_input(data, now);
    let value: Option<Value> = serde_json::from_slice(data).ok();
    let input = match (parsed, &value) {
        (Ok(input), Some(Value::Object(_))) => input,
        (Err(_), Some(Value::Object(_))) => panic!("a JSON object was refused"),
        (Err(_), _) => return,
        (Ok(_), v) => panic!("accepted a payload that is not an object: {v:?}"),
    };
    let object = value.as_ref().expect("matched above");
    let pct_ok = |p: f64| p.is_finite() && (0.0..=100.0).contains(&p);
    if let Some(c) = input.context_percent {
        assert!(pct_ok(c), "context {c}");
    }
    for n in [&input.model, &input.session_id].into_iter().flatten() {
        assert!(!n.trim().is_empty(), "blank name kept");
    }
    let earliest = jiff::Timestamp::from_second(1_577_836_800).expect("valid");
    let latest = now
        .checked_add(jiff::SignedDuration::from_hours(24 * 31))
        .expect("valid");
    let rl = &input.rate_limits;
    for bar in [&rl.five_hour, &rl.seven_day].into_iter().flatten() {
        assert!(pct_ok(bar.used_percent), "used {}", bar.used_percent);
        if let Some(r) = bar.resets_at {
            assert!(r >= earliest && r <= latest, "reset {r}");
        }
    }
    assert_eq!(
        rl,
        &claude_session_monitor::ingest::claude::limits::parse_rate_limits(
            object.get("rate_limits"),
            now
        ),
        "rate_limits read differently inside the payload"
    );

    let figures = StoreFigures {
        block: Some(ActiveBlock {
            cost_usd: 12.3,
            end: now
                .checked_add(jiff::SignedDuration::from_mins(134))
                .expect("valid"),
            tokens: 420_000,
        }),
        today_cost: 48.1,
        token_limit: Some(1_000_000),
    };
    for figures in [None, Some(&figures)] {
        let shown = limits_shown(&input, None, figures, now);
        if let LimitsShown::Official(o) = &shown {
            assert_eq!(
                Some(o),
                rl.capture(now).as_ref(),
                "official from the payload"
            );
        }
        for color in [false, true] {
            let line = render(&input, figures, &shown, now, color);
            assert!(!line.is_empty(), "empty status line");
            let plain = strip_colour(&line);
            assert!(
                !plain.chars().any(char::is_control),
                "control character in the status line {line:?}"
            );
        }
    }
}

/// `line` without the SGR colour escapes `render` adds.
fn strip_colour(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('m') {
            Some(j) if after[..j].chars().all(|c| c.is_ascii_digit()) => rest = &after[j + 1..],
            _ => {
                out.push_str(&rest[i..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One hook event on stdin (`csm hook`):
///
/// - an accepted event is a JSON object whose `session_id` and
///   `hook_event_name` are the event's, timed `now`, with its `cwd`; the
///   detail is short and not empty, the project one path component;
/// - an object with non-empty string `session_id` and `hook_event_name` and
///   a string (or no) `cwd` is accepted (written back without repeated keys);
/// - the event alone makes one live session, unless it ends the session.
pub fn hook(data: &[u8]) {
    use serde_json::Value;
    let now = claude_now();
    let parsed = parse_hook(data, now);
    // Invalid UTF-8 inside a field csm skips is tolerated (as in transcript
    // lines); the fields it reads are strings serde_json checked.
    let value: Option<Value> = serde_json::from_str(&String::from_utf8_lossy(data)).ok();
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let well_formed = value.as_ref().is_some_and(|v| {
        v.is_object()
            && text(v, "session_id").is_some_and(|s| !s.is_empty())
            && text(v, "hook_event_name").is_some_and(|s| !s.is_empty())
            && v.get("cwd").is_none_or(|c| c.is_string() || c.is_null())
            && v.get("session_id").is_some_and(Value::is_string)
    });
    let event = match parsed {
        Ok(event) => event,
        Err(e) => {
            assert!(!e.to_string().trim().is_empty(), "empty error");
            if well_formed {
                let again = serde_json::to_vec(value.as_ref().expect("well formed")).expect("json");
                if let Err(e) = parse_hook(&again, now) {
                    panic!("a well-formed event was refused: {e}");
                }
            }
            return;
        }
    };
    let v = value.expect("an accepted event is JSON");
    assert!(v.is_object(), "accepted a non-object");
    assert_eq!(
        text(&v, "session_id").as_deref(),
        Some(event.session_id.as_str())
    );
    assert_eq!(
        text(&v, "hook_event_name").as_deref(),
        Some(event.event.as_str())
    );
    assert_eq!(event.cwd, text(&v, "cwd"), "cwd");
    assert_eq!(event.ts, now);
    if let Some(d) = &event.detail {
        assert!(!d.is_empty() && d.chars().count() <= 200, "detail {d:?}");
    }
    if let Some(p) = &event.project {
        assert!(!p.is_empty() && !p.contains(['/', '\\']), "project {p:?}");
    }
    let live = live_sessions_from(std::slice::from_ref(&event), now);
    let expected = usize::from(event.event != "SessionEnd");
    assert_eq!(live.len(), expected, "live sessions from {event:?}");
}

/// A `.claude.json` (the account's identity, `csm accounts`):
///
/// - `account::parse` never panics, and fails exactly when the bytes are
///   not a JSON object whose `oauthAccount` (when present and not null) is
///   an object with string-or-null e-mail, organisation and type;
/// - what it keeps is the trimmed text serde_json reads there, blank ones
///   dropped, and a display name whenever it keeps an e-mail or organisation.
pub fn claude_json(data: &[u8]) {
    use claude_session_monitor::ingest::claude::account;
    use serde_json::Value;
    let parsed = account::parse(data);
    // serde_json's own reading; where it fails on a field csm skips (a
    // number past f64, say) csm may still read the file: nothing to compare.
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let account = value.as_object().map(|o| o.get("oauthAccount"));
    let field_ok = |a: &serde_json::Map<String, Value>, k: &str| {
        a.get(k).is_none_or(|v| v.is_string() || v.is_null())
    };
    let expected_ok = match account {
        None => false,
        Some(None) | Some(Some(Value::Null)) => true,
        Some(Some(Value::Object(a))) => ["emailAddress", "organizationName", "organizationType"]
            .iter()
            .all(|k| field_ok(a, k)),
        Some(Some(_)) => false,
    };
    assert_eq!(
        parsed.is_ok(),
        expected_ok,
        "accepted or refused wrongly: {parsed:?}"
    );
    let Ok(Some(id)) = parsed else { return };
    let Some(Some(Value::Object(a))) = account else {
        panic!("an identity from no oauthAccount object");
    };
    let text = |k: &str| {
        a.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    assert_eq!(id.email, text("emailAddress"));
    assert_eq!(id.organization, text("organizationName"));
    assert_eq!(id.plan.is_some(), text("organizationType").is_some());
    if id.email.is_some() || id.organization.is_some() {
        assert!(id.display_name().is_some_and(|n| !n.trim().is_empty()));
    }
}
