//! `csm statusline` (SPEC 8): one line for Claude Code's status bar.
//!
//! Claude Code runs the command on every repaint, so the path is short: read
//! the payload (bounded), open the store without migrating or ingesting, read
//! the windows that end today (a handful of rows), and reuse today's cost and
//! the token scale from a small cache file while those rows are unchanged.
//! The store is kept current by the daemon, the dashboard and other commands;
//! when the transcript in the payload is ahead of the store and no daemon
//! runs, a detached `csm statusline --ingest` brings it up to date for the
//! next repaint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::limits::{self, OfficialLimits, Parsed};
use crate::config::TokenLimit;
use crate::pricing::CostMode;
use crate::store::{BlockRow, Store};

/// What the status line uses from Claude Code's payload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusInput {
    pub model: Option<String>,
    pub session_id: Option<String>,
    pub transcript_path: Option<PathBuf>,
    /// Context window used, 0–100.
    pub context_percent: Option<f64>,
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

/// What the store says, as far as the line needs it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreFigures {
    /// The window active at `now`: cost, end, tokens.
    pub block: Option<ActiveBlock>,
    pub today_cost: f64,
    /// The token scale for the estimated 5-hour percentage.
    pub token_limit: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveBlock {
    pub cost_usd: f64,
    pub end: Timestamp,
    pub tokens: u64,
}

/// The official figures the line shows, and whether they came from a
/// capture or are csm's own estimate.
#[derive(Clone, Debug, PartialEq)]
pub enum LimitsShown {
    Official(OfficialLimits),
    /// Tokens of the active window against the token scale (`~`).
    Estimate(f64),
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

/// `42%` coloured by threshold (green < 50, yellow < 80, red from 80).
fn paint(pct: f64, prefix: &str, color: bool) -> String {
    let text = format!("{prefix}{:.0}%", pct.max(0.0));
    if !color {
        return text;
    }
    let code = if pct < 50.0 {
        32
    } else if pct < 80.0 {
        33
    } else {
        31
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

// ---------------------------------------------------------------------------
// Reading the store, with a cache.

/// File name of the cache in the base directory.
pub const CACHE_FILE: &str = "statusline-cache.json";

/// What the cache remembers: the window rows it was computed from (when they
/// are unchanged, today's cost and the token scale are too) and the figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cache {
    pub key: CacheKey,
    pub figures: StoreFigures,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CacheKey {
    pub day_start: Timestamp,
    pub mode: String,
    pub token_limit: String,
    /// `(start, last entry, entries, tokens, cost)` of each window ending today.
    pub rows: Vec<(i64, Option<i64>, u64, u64, f64)>,
}

/// Settings the figures depend on.
pub struct FigureSettings<'a> {
    pub mode: CostMode,
    pub tz: &'a TimeZone,
    pub token_limit: TokenLimit,
    /// A floor for the token scale (the original monitor's `max_tokens`).
    pub kept_max_tokens: u64,
}

/// The figures at `now`, from `cache` when the windows it was computed from
/// are unchanged; the second value is the new cache when it had to be
/// recomputed.
pub fn figures(
    store: &Store,
    cache: Option<&Cache>,
    s: &FigureSettings<'_>,
    now: Timestamp,
) -> Result<(StoreFigures, Option<Cache>), crate::store::StoreError> {
    let day_start =
        crate::period::local_midnight(s.tz.to_datetime(now).date(), s.tz).unwrap_or(now);
    let rows = store.blocks_ending_after(day_start, s.mode)?;
    let key = CacheKey {
        day_start,
        mode: format!("{:?}", s.mode),
        token_limit: format!("{:?}", s.token_limit),
        rows: rows
            .iter()
            .map(|r| {
                (
                    r.start.as_millisecond(),
                    r.last_entry.map(|t| t.as_millisecond()),
                    r.entries,
                    r.tokens,
                    r.cost_usd,
                )
            })
            .collect(),
    };
    let block = active_block(&rows, now);
    if let Some(c) = cache.filter(|c| c.key == key) {
        let mut f = c.figures.clone();
        f.block = block;
        return Ok((f, None));
    }
    let today_cost = store.cost_between(day_start, now, s.mode)?;
    let token_limit = match s.token_limit {
        TokenLimit::Fixed(n) => Some(n),
        TokenLimit::Max => {
            // Completed windows only: those before the current one.
            let before = rows
                .iter()
                .rev()
                .find(|r| crate::blocks::span_contains(r.start, r.end, now))
                .map_or(now, |r| r.start);
            Some(
                store
                    .max_block_tokens_before(before)?
                    .max(s.kept_max_tokens),
            )
            .filter(|m| *m > 0)
        }
        TokenLimit::P90 => {
            let blocks = store.blocks(s.mode, now)?;
            let kept = crate::period::Maxima {
                tokens: s.kept_max_tokens,
                cost_usd: 0.0,
            };
            crate::period::limits(&blocks, kept, TokenLimit::P90, now)
                .1
                .tokens
        }
    };
    let figures = StoreFigures {
        block,
        today_cost,
        token_limit,
    };
    let cache = Cache {
        key,
        figures: figures.clone(),
    };
    Ok((figures, Some(cache)))
}

/// The window whose span contains `now` (`Block::is_current_at`'s rule);
/// a window dated ahead of `now` is never it.
fn active_block(rows: &[BlockRow], now: Timestamp) -> Option<ActiveBlock> {
    let b = rows
        .iter()
        .rev()
        .find(|b| crate::blocks::span_contains(b.start, b.end, now))?;
    Some(ActiveBlock {
        cost_usd: b.cost_usd,
        end: b.end,
        tokens: b.tokens,
    })
}

pub fn read_cache(base_dir: &Path) -> Option<Cache> {
    let bytes = std::fs::read(base_dir.join(CACHE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Replaces the cache by rename. No fsync: a cache lost in a crash is
/// recomputed, and one that does not parse is ignored.
pub fn write_cache(base_dir: &Path, c: &Cache) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(c).map_err(std::io::Error::other)?;
    let tmp = base_dir.join(format!(".{CACHE_FILE}.tmp-{}", std::process::id()));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    std::io::Write::write_all(&mut o.open(&tmp)?, &bytes)?;
    std::fs::rename(&tmp, base_dir.join(CACHE_FILE)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Whether the store has not read all of `transcript` yet.
pub fn transcript_ahead(store: &Store, transcript: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(transcript) else {
        return false;
    };
    match store.transcript_read_to(transcript) {
        Ok(Some(read)) => meta.len() > read,
        Ok(None) => meta.len() > 0,
        Err(_) => false,
    }
}

/// How long a background refresh counts as running: no new one is started
/// while the marker is younger.
pub const REFRESH_MARKER: &str = "statusline-refresh.lock";
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Claims the right to start a background refresh: false when one was
/// started less than [`REFRESH_EVERY`] ago.
pub fn claim_refresh(base_dir: &Path) -> bool {
    let marker = base_dir.join(REFRESH_MARKER);
    let recent = std::fs::metadata(&marker)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e < REFRESH_EVERY));
    if recent {
        return false;
    }
    if crate::fsutil::touch_private(&marker).is_err() {
        return false;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&marker)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::limits::OfficialBar;
    use jiff::SignedDuration;

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

    #[test]
    fn active_block_is_judged_at_now() {
        let row = |start: &str, last: &str| BlockRow {
            start: start.parse().unwrap(),
            end: start
                .parse::<Timestamp>()
                .unwrap()
                .checked_add(SignedDuration::from_hours(5))
                .unwrap(),
            last_entry: Some(last.parse().unwrap()),
            entries: 3,
            tokens: 10,
            cost_usd: 1.0,
        };
        let rows = vec![row("2026-11-20T14:00:00Z", "2026-11-20T15:35:00Z")];
        assert!(active_block(&rows, now()).is_some());
        assert!(active_block(&rows, "2026-11-20T19:00:00Z".parse().unwrap()).is_none());
        assert!(active_block(&[], now()).is_none());
    }
}
