//! The five alert rules as one pure function of (alerts already
//! sent, what is known about usage, settings, now).
//!
//! Every alert carries a key naming the one occasion it is about (a window,
//! an idle streak, a window and threshold, a reset, an hour): the caller
//! records keys in the store, and a rule whose key is recorded stays quiet.
//! Times in keys are UTC instants in RFC 3339, so keys do not depend on the
//! display time zone.

use std::collections::HashSet;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::blocks::Block;
use crate::config::{Alerts, TokenLimit};
use crate::period::{self, Maxima};
use crate::report::format::{day_hh_mm, hh_mm};
use crate::store::OfficialCapture;

/// Consecutive failed updates before the source-failing alert (rule 5).
pub const SOURCE_FAILURES: u32 = 5;

/// A rule's name, as stored in `alerts_sent.rule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    WindowEnding,
    Inactivity,
    Limit,
    Reset,
    SourceFailing,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::WindowEnding => "window_ending",
            Rule::Inactivity => "inactivity",
            Rule::Limit => "limit",
            Rule::Reset => "reset",
            Rule::SourceFailing => "source_failing",
        }
    }
}

/// One notification to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub rule: Rule,
    /// The occasion: sending is claimed under this key.
    pub key: String,
    /// Keys this alert makes moot (lower thresholds crossed at the same time):
    /// recorded with it, never sent on their own.
    pub covers: Vec<String>,
    pub title: String,
    pub body: String,
}

/// How the rules are tuned (`[alerts]` in config.toml) and where times are shown.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSettings {
    /// Minutes before a window's end; 0 turns the rule off.
    pub time_alert_minutes: u32,
    /// Minutes without a new entry; 0 turns the rule off.
    pub inactivity_alert_minutes: u32,
    /// Percentages; empty turns the rule off.
    pub limit_thresholds: Vec<u8>,
    pub reset_alert: bool,
    pub source_alert: bool,
    /// Times in messages are shown in this zone.
    pub tz: TimeZone,
}

impl RuleSettings {
    pub fn new(alerts: &Alerts, tz: TimeZone) -> RuleSettings {
        let mut limit_thresholds = alerts.limit_thresholds.clone();
        limit_thresholds.sort_unstable();
        limit_thresholds.dedup();
        RuleSettings {
            time_alert_minutes: alerts.time_alert_minutes,
            inactivity_alert_minutes: alerts.inactivity_alert_minutes,
            limit_thresholds,
            reset_alert: alerts.reset_alert,
            source_alert: alerts.source_alert,
            tz,
        }
    }
}

/// The active five-hour window.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowInput {
    pub start: Timestamp,
    pub end: Timestamp,
    pub tokens: u64,
    /// The token bar's 100 % (`token_limit`), when known.
    pub limit: Option<u64>,
}

impl WindowInput {
    pub fn percent(&self) -> Option<f64> {
        self.limit
            .filter(|l| *l > 0)
            .map(|l| self.tokens as f64 * 100.0 / l as f64)
    }
}

/// Claude Code's own usage figures (captured by the status line).
#[derive(Clone, Debug, PartialEq)]
pub struct OfficialInput {
    pub captured_at: Timestamp,
    pub five_hour: Option<OfficialLimit>,
    pub seven_day: Option<OfficialLimit>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OfficialLimit {
    /// 0–100.
    pub used_percent: f64,
    pub resets_at: Option<Timestamp>,
}

impl From<&OfficialCapture> for OfficialInput {
    fn from(c: &OfficialCapture) -> Self {
        let bar = |pct: Option<f64>, reset: Option<Timestamp>| {
            pct.filter(|p| p.is_finite() && (0.0..=100.0).contains(p))
                .map(|used_percent| OfficialLimit {
                    used_percent,
                    resets_at: reset,
                })
        };
        OfficialInput {
            captured_at: c.captured_at,
            five_hour: bar(c.five_hour_pct, c.five_hour_reset),
            seven_day: bar(c.seven_day_pct, c.seven_day_reset),
        }
    }
}

/// Everything the rules look at, gathered after an update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertInput {
    /// The active window, if any.
    pub window: Option<WindowInput>,
    /// Time of the newest entry in the history.
    pub last_entry: Option<Timestamp>,
    pub official: Option<OfficialInput>,
    /// When the newest "usage limit reached" seen in the transcripts resets.
    pub usage_limit_reset: Option<Timestamp>,
    /// Updates that failed in a row (0 after a good one).
    pub source_failures: u32,
    pub last_error: Option<String>,
}

impl AlertInput {
    /// From the blocks of the history (sorted by start, gaps included) and
    /// the token limit in use. The window is the current one at `now`
    /// ([`Block::is_current_at`]); windows dated ahead of `now` are ignored.
    pub fn from_blocks(blocks: &[Block], limit: Option<u64>, now: Timestamp) -> AlertInput {
        let last_real = crate::blocks::latest_started(blocks, now);
        let window = last_real
            .filter(|b| b.is_current_at(now))
            .map(|b| WindowInput {
                start: b.start,
                end: b.end,
                tokens: b.total_tokens(),
                limit,
            });
        AlertInput {
            window,
            last_entry: last_real.and_then(|b| b.actual_end),
            official: None,
            usage_limit_reset: blocks
                .iter()
                .filter(|b| !b.is_future_at(now))
                .filter_map(|b| b.usage_limit_reset)
                .max(),
            source_failures: 0,
            last_error: None,
        }
    }

    /// Like [`AlertInput::from_blocks`], resolving the limit as the dashboard
    /// does (`token_limit`, with `kept` maxima from outside the blocks).
    pub fn from_history(
        blocks: &[Block],
        kept: Maxima,
        token_limit: TokenLimit,
        now: Timestamp,
    ) -> AlertInput {
        let (_, limit) = period::limits(blocks, kept, token_limit, now);
        Self::from_blocks(blocks, limit.tokens, now)
    }

    pub fn with_official(mut self, official: Option<OfficialInput>) -> Self {
        self.official = official;
        self
    }

    pub fn with_source_failures(mut self, failures: u32, last_error: Option<String>) -> Self {
        self.source_failures = failures;
        self.last_error = last_error;
        self
    }
}

/// What has been sent: the store's `alerts_sent` keys, or a set in tests.
pub trait SentSet {
    fn contains_key(&self, key: &str) -> bool;
}

impl SentSet for HashSet<String> {
    fn contains_key(&self, key: &str) -> bool {
        self.contains(key)
    }
}

/// The alerts due at `now` and not sent yet, in rule order.
pub fn evaluate(
    sent: &dyn SentSet,
    input: &AlertInput,
    s: &RuleSettings,
    now: Timestamp,
) -> Vec<Alert> {
    let mut out = Vec::new();
    window_ending(input, s, now, &mut out);
    inactivity(input, s, now, &mut out);
    limits(sent, input, s, now, &mut out);
    reset(input, s, now, &mut out);
    source_failing(input, s, now, &mut out);
    out.retain(|a| !sent.contains_key(&a.key));
    out
}

/// Rule 1: at most `time_alert_minutes` left in the active window.
fn window_ending(i: &AlertInput, s: &RuleSettings, now: Timestamp, out: &mut Vec<Alert>) {
    let Some(w) = &i.window else { return };
    if s.time_alert_minutes == 0 || now >= w.end {
        return;
    }
    let left = w.end.duration_since(now);
    if left > minutes(s.time_alert_minutes) {
        return;
    }
    let used = w
        .percent()
        .map(|p| format!(" — {} % used", pct(p)))
        .unwrap_or_default();
    out.push(Alert {
        rule: Rule::WindowEnding,
        key: format!("window_ending:{}", key_time(w.start)),
        covers: Vec::new(),
        title: format!(
            "Claude window ends in {} ({}){used}",
            ceil_minutes(left),
            hh_mm(w.end, &s.tz)
        ),
        body: format!(
            "Finish or save what you are doing: the window resets at {}, and your next prompt after that starts a new one.",
            hh_mm(w.end, &s.tz)
        ),
    });
}

/// Rule 2: no new entry for `inactivity_alert_minutes` while a window is
/// active. The streak is named by the last entry: a new entry starts a new one.
fn inactivity(i: &AlertInput, s: &RuleSettings, now: Timestamp, out: &mut Vec<Alert>) {
    let (Some(w), Some(last)) = (&i.window, i.last_entry) else {
        return;
    };
    if s.inactivity_alert_minutes == 0 || now >= w.end {
        return;
    }
    let idle = now.duration_since(last);
    if idle < minutes(s.inactivity_alert_minutes) {
        return;
    }
    let used = w
        .percent()
        .map(|p| format!(", {} % used", pct(p)))
        .unwrap_or_default();
    out.push(Alert {
        rule: Rule::Inactivity,
        key: format!("inactivity:{}", key_time(last)),
        covers: Vec::new(),
        title: format!(
            "Claude idle for {} — {} left in this window",
            floor_minutes(idle),
            duration(w.end.duration_since(now))
        ),
        body: format!(
            "Nothing since {}{used}. Pick the work back up before {} or let the window run out.",
            hh_mm(last, &s.tz),
            hh_mm(w.end, &s.tz)
        ),
    });
}

/// Rule 3: usage crosses a threshold — official figures when Claude Code
/// reported them for the current 5-hour window, else the estimate against
/// `token_limit`; and the official weekly figure. When several thresholds are
/// crossed at once, only the highest is sent; the others are recorded with it.
fn limits(
    sent: &dyn SentSet,
    i: &AlertInput,
    s: &RuleSettings,
    now: Timestamp,
    out: &mut Vec<Alert>,
) {
    if s.limit_thresholds.is_empty() {
        return;
    }
    let official = i.official.as_ref();
    let five_hour = official
        .and_then(|o| o.five_hour.map(|b| (o.captured_at, b)))
        .filter(|(captured, b)| official_current(*captured, b, now));
    if let Some((_, bar)) = five_hour {
        let id = match bar.resets_at {
            Some(r) => key_time(round_10_min(r)),
            None => i
                .window
                .as_ref()
                .map_or("none".into(), |w| key_time(w.start)),
        };
        let reset = bar
            .resets_at
            .map(|r| format!(" — resets {}", hh_mm(r, &s.tz)))
            .unwrap_or_default();
        threshold_alert(
            sent,
            s,
            bar.used_percent,
            &format!("limit:5h:{id}"),
            out,
            |t| {
                (
                    format!(
                        "Claude 5-hour limit {} % used{reset}",
                        pct(bar.used_percent)
                    ),
                    format!(
                        "Claude Code reports {} % of the 5-hour limit used (alert at {t} %). Pace yourself or switch to a lighter model to last until the reset.",
                        pct(bar.used_percent)
                    ),
                )
            },
        );
    } else if let Some(w) = &i.window
        && let (Some(p), Some(limit)) = (w.percent(), w.limit)
    {
        let key = format!("limit:window:{}", key_time(w.start));
        threshold_alert(sent, s, p, &key, out, |t| {
            (
                format!(
                    "Claude window at {} % of your limit — resets {}",
                    pct(p),
                    hh_mm(w.end, &s.tz)
                ),
                format!(
                    "{} of {} tokens used in this window (alert at {t} %). Slow down or switch to a lighter model to last until {}.",
                    crate::report::format::thousands(w.tokens),
                    crate::report::format::thousands(limit),
                    hh_mm(w.end, &s.tz)
                ),
            )
        });
    }
    let weekly = official
        .and_then(|o| o.seven_day.map(|b| (o.captured_at, b)))
        .filter(|(captured, b)| official_current(*captured, b, now));
    if let Some((_, bar)) = weekly {
        let id = bar
            .resets_at
            .map_or("none".into(), |r| key_time(round_10_min(r)));
        let reset = bar
            .resets_at
            .map(|r| format!(" — resets {}", day_hh_mm(r, &s.tz)))
            .unwrap_or_default();
        threshold_alert(
            sent,
            s,
            bar.used_percent,
            &format!("limit:7d:{id}"),
            out,
            |t| {
                (
                    format!(
                        "Claude weekly limit {} % used{reset}",
                        pct(bar.used_percent)
                    ),
                    format!(
                        "Claude Code reports {} % of the weekly limit used (alert at {t} %). Keep the rest for what matters this week.",
                        pct(bar.used_percent)
                    ),
                )
            },
        );
    }
}

/// An official figure describes the present while its window has not reset
/// (or, without a reset time, while the capture is fresh).
fn official_current(captured: Timestamp, bar: &OfficialLimit, now: Timestamp) -> bool {
    match bar.resets_at {
        Some(r) => now < r,
        None => now.duration_since(captured) <= crate::engine::overview::OFFICIAL_STALE_AFTER,
    }
}

fn threshold_alert(
    sent: &dyn SentSet,
    s: &RuleSettings,
    percent: f64,
    prefix: &str,
    out: &mut Vec<Alert>,
    text: impl Fn(u8) -> (String, String),
) {
    let crossed: Vec<u8> = s
        .limit_thresholds
        .iter()
        .copied()
        .filter(|t| percent >= f64::from(*t))
        .collect();
    let Some(&top) = crossed.last() else { return };
    let key = |t: u8| format!("{prefix}:{t}");
    let covers = crossed[..crossed.len() - 1]
        .iter()
        .map(|t| key(*t))
        .filter(|k| !sent.contains_key(k))
        .collect();
    let (title, body) = text(top);
    out.push(Alert {
        rule: Rule::Limit,
        key: key(top),
        covers,
        title,
        body,
    });
}

/// How long after a reset "you can continue" is still news.
const RESET_NEWS_FOR: SignedDuration = SignedDuration::from_hours(5);

/// Rule 4: a limit that was hit has reset, and nothing was used since.
fn reset(i: &AlertInput, s: &RuleSettings, now: Timestamp, out: &mut Vec<Alert>) {
    if !s.reset_alert {
        return;
    }
    let hit = |b: &Option<OfficialLimit>| {
        b.filter(|b| b.used_percent >= 100.0)
            .and_then(|b| b.resets_at)
    };
    let mut resets: Vec<Timestamp> = i.usage_limit_reset.into_iter().collect();
    if let Some(o) = &i.official {
        resets.extend(hit(&o.five_hour));
        resets.extend(hit(&o.seven_day));
    }
    // The latest reset that has come: an earlier one is old news.
    let Some(r) = resets.into_iter().filter(|r| *r <= now).max() else {
        return;
    };
    let used_since = i.last_entry.is_some_and(|l| l > r);
    if used_since || now.duration_since(r) >= RESET_NEWS_FOR {
        return;
    }
    out.push(Alert {
        rule: Rule::Reset,
        key: format!("reset:{}", key_time(round_10_min(r))),
        covers: Vec::new(),
        title: "Claude usage limit has reset — you can continue".into(),
        body: format!(
            "The limit you hit reset at {}. Your next prompt starts a fresh window.",
            hh_mm(r, &s.tz)
        ),
    });
}

/// Rule 5: updates keep failing. Keyed by the hour, so at most once an hour.
fn source_failing(i: &AlertInput, s: &RuleSettings, now: Timestamp, out: &mut Vec<Alert>) {
    if !s.source_alert || i.source_failures < SOURCE_FAILURES {
        return;
    }
    let hour = Timestamp::from_second(now.as_second().div_euclid(3600) * 3600).unwrap_or(now);
    let why = i
        .last_error
        .as_deref()
        .map(|e| format!(": {}", truncate(e, 200)))
        .unwrap_or_default();
    out.push(Alert {
        rule: Rule::SourceFailing,
        key: format!("source_failing:{}", key_time(hour)),
        covers: Vec::new(),
        title: "csm cannot read Claude Code usage".into(),
        body: format!(
            "The last {} updates failed{why}. Run `csm doctor` to see why.",
            i.source_failures
        ),
    });
}

fn minutes(m: u32) -> SignedDuration {
    SignedDuration::from_mins(i64::from(m))
}

/// Whole percent, rounded down: "80 %" only once 80 is really reached.
fn pct(p: f64) -> u64 {
    p.max(0.0).floor() as u64
}

fn key_time(t: Timestamp) -> String {
    format!("{t:.0}")
}

fn round_10_min(t: Timestamp) -> Timestamp {
    let step = 600;
    let s = (t.as_second() + step / 2).div_euclid(step) * step;
    Timestamp::from_second(s).unwrap_or(t)
}

/// "28 min" for what is left: 27 min 10 s left is still "28 min".
fn ceil_minutes(d: SignedDuration) -> String {
    let m = (d.as_secs() + 59).div_euclid(60);
    format!("{m} min")
}

fn floor_minutes(d: SignedDuration) -> String {
    duration(SignedDuration::from_mins(d.as_secs().div_euclid(60)))
}

/// "2h 14m", "45 min".
fn duration(d: SignedDuration) -> String {
    let m = d.as_secs().max(0).div_euclid(60);
    if m >= 60 {
        format!("{}h {:02}m", m / 60, m % 60)
    } else {
        format!("{m} min")
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests;
