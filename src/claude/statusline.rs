//! `csm statusline`: one line for Claude Code's status bar.
//!
//! Claude Code runs the command on every repaint, so the path is short: read
//! the payload (bounded), open the store without migrating or ingesting, read
//! the windows that end today (a handful of rows), and reuse today's cost and
//! the token scale from a small cache file while those rows are unchanged.
//! The store is kept current by the daemon, the dashboard and other commands;
//! when the transcript in the payload is ahead of the store and no daemon
//! runs, a detached `csm statusline --ingest` brings it up to date for the
//! next repaint.

use std::path::PathBuf;

use jiff::Timestamp;
use serde_json::Value;

pub use crate::engine::statusline::{ActiveBlock, StoreFigures};
use crate::ingest::claude::limits::{self, OfficialLimits, Parsed};

/// What the status line uses from Claude Code's payload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusInput {
    /// The model's display name (else its id), when the payload names one.
    pub model: Option<String>,
    /// Claude Code's session id, when given and not blank.
    pub session_id: Option<String>,
    /// The session's transcript file, when given.
    pub transcript_path: Option<PathBuf>,
    /// Context window used, 0–100.
    pub context_percent: Option<f64>,
    /// The `rate_limits` windows that passed validation, and why others were dropped.
    pub rate_limits: Parsed,
}

fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Reads the statusLine payload. Fields of unexpected types are ignored
/// one by one; only text that is not a JSON object is an error.
///
/// Read through `Value` rather than a derived struct: a derived struct
/// rejects the whole payload for one field of another shape (a numeric
/// `model`, a string `context_window`) or a repeated key.
pub fn parse_input(bytes: &[u8], now: Timestamp) -> Result<StatusInput, serde_json::Error> {
    let raw: Value = serde_json::from_slice(bytes)?;
    let Value::Object(raw) = raw else {
        return Err(serde::de::Error::custom(
            "the status line payload is not a JSON object",
        ));
    };
    let model = match raw.get("model") {
        Some(Value::Object(m)) => string(m.get("display_name")).or_else(|| string(m.get("id"))),
        other => string(other),
    };
    let context_percent = raw
        .get("context_window")
        .filter(|c| c.is_object())
        .and_then(|c| {
            let direct = c.get("used_percentage").and_then(Value::as_f64);
            let computed = || {
                let size = c.get("context_window_size")?.as_f64()?;
                let u = c.get("current_usage")?;
                let used: f64 = [
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                ]
                .iter()
                .filter_map(|k| u.get(k)?.as_f64())
                .sum();
                (size > 0.0).then(|| used / size * 100.0)
            };
            direct
                .or_else(computed)
                .filter(|p| p.is_finite() && (0.0..=100.0).contains(p))
        });
    Ok(StatusInput {
        model,
        session_id: string(raw.get("session_id")),
        transcript_path: string(raw.get("transcript_path")).map(PathBuf::from),
        context_percent,
        rate_limits: limits::parse_rate_limits(raw.get("rate_limits"), now),
    })
}

/// The official figures the line shows, and whether they came from a
/// capture or are csm's own estimate.
#[derive(Clone, Debug, PartialEq)]
pub enum LimitsShown {
    /// Claude Code's own limits: from this payload, or a stored capture that is not stale.
    Official(OfficialLimits),
    /// Tokens of the active window against the token scale (`~`).
    Estimate(f64),
    /// Nothing to show: no usable capture, and no active window or token limit to estimate from.
    None,
}

/// Chooses the limits to show: this payload's capture, else a fresh stored
/// one, else the estimate.
pub fn limits_shown(
    input: &StatusInput,
    stored: Option<OfficialLimits>,
    figures: Option<&StoreFigures>,
    now: Timestamp,
) -> LimitsShown {
    if let Some(c) = input.rate_limits.capture(now) {
        return LimitsShown::Official(c);
    }
    if let Some(s) = stored.filter(|s| !s.is_stale(now)) {
        return LimitsShown::Official(s);
    }
    let estimate = figures.and_then(|f| {
        let b = f.block.as_ref()?;
        let limit = f.token_limit.filter(|l| *l > 0)?;
        Some(b.tokens as f64 / limit as f64 * 100.0)
    });
    estimate.map_or(LimitsShown::None, LimitsShown::Estimate)
}

/// The line: `Opus 4.7 | block $12.30 · 2h14m left | today $48.10 | 5h 42% ·
/// wk 63% | ctx 38%`. Parts without data are left out.
pub fn render(
    input: &StatusInput,
    figures: Option<&StoreFigures>,
    limits: &LimitsShown,
    now: Timestamp,
    color: bool,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = &input.model {
        // A model name is the payload's text: control characters (a newline
        // would make two status lines, an escape would restyle the bar) are
        // dropped.
        let m: String = m.chars().filter(|c| !c.is_control()).take(40).collect();
        if !m.trim().is_empty() {
            parts.push(m);
        }
    }
    if let Some(f) = figures {
        match &f.block {
            Some(b) => {
                let left = b.end.duration_since(now).as_mins().max(0);
                parts.push(format!(
                    "block {} · {} left",
                    money(b.cost_usd),
                    compact_minutes(left)
                ));
            }
            None => parts.push("no active block".into()),
        }
        parts.push(format!("today {}", money(f.today_cost)));
    }
    match limits {
        LimitsShown::Official(o) => {
            let mut l = Vec::new();
            if let Some(b) = &o.five_hour {
                l.push(format!("5h {}", paint(b.used_percent, "", color)));
            }
            if let Some(b) = &o.seven_day {
                l.push(format!("wk {}", paint(b.used_percent, "", color)));
            }
            if !l.is_empty() {
                parts.push(l.join(" · "));
            }
        }
        LimitsShown::Estimate(p) => parts.push(format!("5h {}", paint(*p, "~", color))),
        LimitsShown::None => {}
    }
    if let Some(c) = input.context_percent {
        parts.push(format!("ctx {}", paint(c, "", color)));
    }
    if parts.is_empty() {
        return FALLBACK.to_string();
    }
    parts.join(" | ")
}

/// Printed when nothing else can be: Claude Code shows it as it is.
pub const FALLBACK: &str = "csm: no usage data";

/// `42%` coloured by [`Level`]: green, yellow, red.
fn paint(pct: f64, prefix: &str, color: bool) -> String {
    use crate::report::format::Level;
    let text = format!("{prefix}{:.0}%", pct.max(0.0));
    if !color {
        return text;
    }
    let code = match Level::of(pct) {
        Level::Ok => 32,
        Level::Warning => 33,
        Level::Critical => 31,
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn money(x: f64) -> String {
    format!("${:.2}", if x.is_finite() { x.max(0.0) } else { 0.0 })
}

/// `2h14m`, `45m`.
fn compact_minutes(m: i64) -> String {
    if m >= 60 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::ingest::claude::limits::OfficialBar;

    fn now() -> Timestamp {
        "2026-11-20T16:40:00Z".parse().unwrap()
    }

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/claude")
                .join(name),
        )
        .unwrap()
    }

    fn figures() -> StoreFigures {
        StoreFigures {
            block: Some(ActiveBlock {
                cost_usd: 12.3,
                end: "2026-11-20T18:54:00Z".parse().unwrap(),
                tokens: 1_000_000,
            }),
            today_cost: 48.1,
            token_limit: Some(2_000_000),
        }
    }

    #[test]
    fn payload_with_rate_limits() {
        let i = parse_input(&sample("statusline-with-rate-limits.json"), now()).unwrap();
        assert_eq!(i.model.as_deref(), Some("Opus 4.7"));
        assert_eq!(i.context_percent, Some(42.1));
        assert_eq!(
            i.transcript_path.as_deref(),
            Some(Path::new(
                "/home/dev/.claude/projects/-home-dev-code-api/6f1c2b0e-3a4d-4e5f-8a9b-0c1d2e3f4a5b.jsonl"
            ))
        );
        let l = limits_shown(&i, None, Some(&figures()), now());
        let line = render(&i, Some(&figures()), &l, now(), false);
        assert_eq!(
            line,
            "Opus 4.7 | block $12.30 · 2h14m left | today $48.10 | 5h 24% · wk 41% | ctx 42%"
        );
    }

    #[test]
    fn payload_without_rate_limits_shows_the_estimate() {
        let i = parse_input(&sample("statusline-api-key.json"), now()).unwrap();
        assert_eq!(i.rate_limits, Parsed::default());
        // No used_percentage: computed from the usage (none here) and the size.
        assert_eq!(i.context_percent, None);
        let l = limits_shown(&i, None, Some(&figures()), now());
        assert_eq!(l, LimitsShown::Estimate(50.0));
        assert_eq!(
            render(&i, Some(&figures()), &l, now(), false),
            "Sonnet 4.6 | block $12.30 · 2h14m left | today $48.10 | 5h ~50%"
        );
        // A fresh stored capture wins over the estimate; a stale one does not.
        let stored = OfficialLimits {
            five_hour: Some(OfficialBar {
                used_percent: 42.0,
                resets_at: None,
            }),
            seven_day: None,
            captured_at: "2026-11-20T16:35:00Z".parse().unwrap(),
        };
        assert_eq!(
            limits_shown(&i, Some(stored.clone()), Some(&figures()), now()),
            LimitsShown::Official(stored.clone())
        );
        let later = "2026-11-20T16:46:00Z".parse().unwrap();
        assert_eq!(
            limits_shown(&i, Some(stored), Some(&figures()), later),
            LimitsShown::Estimate(50.0)
        );
    }

    #[test]
    fn colours_follow_thresholds_and_can_be_off() {
        assert_eq!(paint(49.4, "", true), "\x1b[32m49%\x1b[0m");
        assert_eq!(paint(50.0, "", true), "\x1b[33m50%\x1b[0m");
        assert_eq!(paint(80.0, "~", true), "\x1b[31m~80%\x1b[0m");
        assert_eq!(paint(80.0, "", false), "80%");
    }

    #[test]
    fn odd_payloads() {
        assert!(parse_input(b"", now()).is_err());
        assert!(parse_input(b"not json", now()).is_err());
        let i = parse_input(
            br#"{"model":"m","context_window":{"used_percentage":"x"}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(i.model.as_deref(), Some("m"));
        assert_eq!(i.context_percent, None);
        let i = parse_input(
            br#"{"context_window":{"context_window_size":200000,"current_usage":{"input_tokens":1000,"cache_read_input_tokens":49000}}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(i.context_percent, Some(25.0));
        let i = parse_input(br#"{"model":{"display_name":7,"id":"claude-x"}}"#, now()).unwrap();
        assert_eq!(i.model.as_deref(), Some("claude-x"));
        // Nothing at all to show.
        let empty = StatusInput::default();
        assert_eq!(
            render(&empty, None, &LimitsShown::None, now(), false),
            FALLBACK
        );
        // A window that ended: said so; money never negative.
        let f = StoreFigures {
            block: None,
            today_cost: -1.0,
            token_limit: None,
        };
        assert_eq!(
            render(&empty, Some(&f), &LimitsShown::None, now(), false),
            "no active block | today $0.00"
        );
    }
}
