//! `monitor_data.json`: the snapshot the daemon writes for the
//! dashboard, `csm status`, status bars and the phone widget.
//!
//! The file is a superset of the original monitor's (its widget and client
//! keep working): `current_sessions`, `total_sessions_this_month`,
//! `total_cost_this_month`, `max_tokens_per_session`, `last_update`,
//! `billing_period_*`, `daemon_version`; csm adds the active window in detail,
//! the period, limits, activity and alerts. [`build`] is a pure function of
//! the dashboard data (itself pure over blocks), so other features add fields
//! here and to `docs/monitor_data.schema.json` without touching the daemon.
//!
//! Versioning: `schema_version` grows when a field changes meaning or goes
//! away; new optional fields do not bump it, and readers ignore fields they do
//! not know.

mod time;

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::blocks::{Block, FutureEntries, Pace, PaceBasis};
use crate::domain::TokenCounts;
use crate::engine::overview::{
    ActiveWindow, ActivityRow, ActivityState, AlertRow, DEFAULT_IDLE_AFTER, DashboardData,
    ModelShare, OfficialBar, OfficialLimits, Severity, window_end,
};
use crate::period::{BillingPeriod, LimitSource, Maxima, PeriodSummary, ResolvedLimit, Sessions};

/// The snapshot's file name inside the base directory.
pub const FILE_NAME: &str = "monitor_data.json";

/// Bumped only for incompatible changes (see the module docs): the widget
/// refuses any other version, so it stays 1 while every field the original
/// monitor and the widget read keeps its name. `active_block.token_counts`
/// is snake case like every other field since csm 0.1 of 2026-12 (it was
/// ccusage's camel case, read by no client); both spellings are read.
pub const SCHEMA_VERSION: u32 = 1;

/// The oldest version this csm still reads.
const OLDEST_READ: u64 = 1;

/// csm's version, as written in `daemon_version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The whole file. Field order is the order written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema_version: u32,
    /// Who computed it: `daemon` or `in-process` (`csm status` without a daemon).
    pub source: String,

    // --- The original monitor's keys (its iOS widget reads these). ---
    /// Windows of the current billing period (and the active one), oldest first.
    pub current_sessions: Vec<SessionRow>,
    /// Windows ("sessions") started in the billing period, the active one included.
    pub total_sessions_this_month: u32,
    /// API-price value of the period's windows.
    pub total_cost_this_month: f64,
    /// The largest window ever seen (tokens), kept maxima included.
    pub max_tokens_per_session: u64,
    /// When this snapshot was computed.
    #[serde(with = "time::ts")]
    pub last_update: Timestamp,
    #[serde(with = "time::ts")]
    pub billing_period_start: Timestamp,
    #[serde(with = "time::ts")]
    pub billing_period_end: Timestamp,
    /// csm's version (the original wrote its daemon's version here).
    pub daemon_version: Option<String>,

    // --- csm's own. ---
    /// The display time zone the period dates are in.
    pub timezone: Option<String>,
    pub period: PeriodInfo,
    pub sessions_left: u32,
    pub sessions_limit: u32,
    pub max_block_cost_usd: f64,
    pub token_limit: TokenLimitInfo,
    pub active_block: Option<ActiveBlock>,
    /// When the most recent window ended, when none is active.
    #[serde(with = "time::opt_ts")]
    pub last_window_end: Option<Timestamp>,
    /// The figures hold until this instant without new usage (a window ends
    /// or goes idle, or the period rolls over).
    #[serde(with = "time::opt_ts")]
    pub valid_until: Option<Timestamp>,
    /// Claude Code's own rate limits from the status line (null: none captured).
    pub official_limits: Option<OfficialLimitsInfo>,
    /// Live Claude Code sessions from hooks (null: hooks not installed).
    pub activity: Option<Vec<ActivityInfo>>,
    /// Recent notifications sent, newest first.
    pub alerts: Vec<AlertInfo>,
    /// The daemon's own state (null when computed in-process).
    pub daemon: Option<DaemonInfo>,
    /// Minutes without a new entry after which the current window is idle.
    #[serde(default = "default_idle_after_minutes")]
    pub idle_after_minutes: i64,
    /// Entries dated after `last_update` (a device whose clock runs fast):
    /// counted in no figure here.
    #[serde(default)]
    pub future_entries: Option<FutureEntriesInfo>,
    /// Where csm looked when no Claude Code data folder exists, and what to do.
    #[serde(default)]
    pub notice: Option<String>,
    /// The account these figures are of, when csm covers several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountInfo>,
    /// With several accounts: one whole snapshot per account, each naming
    /// its account; the top-level figures are the first one's, so the
    /// original monitor's widget keeps showing the default account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<Snapshot>,
}

/// Which account a snapshot is of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The account's name (`csm accounts`).
    pub name: String,
    /// Its Claude config dir.
    pub config_dir: String,
}

fn default_idle_after_minutes() -> i64 {
    DEFAULT_IDLE_AFTER.as_mins()
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FutureEntriesInfo {
    pub entries: u64,
    #[serde(with = "time::ts")]
    pub newest_at: Timestamp,
}

/// One window in the original monitor's shape, plus csm's extras.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    /// The window's start as ccusage writes block ids.
    pub session_id: String,
    #[serde(with = "time::ts")]
    pub start_time: Timestamp,
    /// The window's scheduled end (start + 5 h), as `ccusage blocks` `endTime`.
    #[serde(with = "time::ts")]
    pub end_time: Timestamp,
    /// All four token kinds, as ccusage's `totalTokens`.
    pub total_tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_tokens: u64,
    pub cache_read_tokens: u64,
    pub cost_usd: f64,
    pub is_active: bool,
    pub entries: u64,
    pub models: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeriodInfo {
    /// First day (local date in `timezone`).
    pub start_date: jiff::civil::Date,
    /// First day of the next period.
    pub end_date: jiff::civil::Date,
    #[serde(with = "time::ts")]
    pub start: Timestamp,
    #[serde(with = "time::ts")]
    pub end: Timestamp,
    pub start_day: u8,
    pub sessions_used: u32,
    pub sessions_limit: u32,
    pub sessions_left: u32,
    /// Sessions above the limit (0 when within it).
    pub sessions_over: u32,
    /// Calendar days left, today included.
    pub days_left: i64,
    pub avg_sessions_per_day: f64,
    pub cost_usd: f64,
    pub total_tokens: u64,
    pub plan_price_usd: Option<f64>,
    /// Value at API prices / plan price.
    pub value_ratio: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenLimitInfo {
    /// The token bar's 100 % (null before any window completed).
    pub tokens: Option<u64>,
    /// `max`, `p90` or `limit` (a number from config).
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveBlock {
    pub id: String,
    #[serde(with = "time::ts")]
    pub start_time: Timestamp,
    /// Scheduled end (start + 5 h): the reset.
    #[serde(with = "time::ts")]
    pub end_time: Timestamp,
    /// When the window stops being active without new usage (its end, or
    /// 5 h after the last entry when that comes first).
    #[serde(with = "time::ts")]
    pub active_until: Timestamp,
    #[serde(with = "time::opt_ts")]
    pub first_entry_at: Option<Timestamp>,
    #[serde(with = "time::opt_ts")]
    pub last_entry_at: Option<Timestamp>,
    pub entries: u64,
    pub token_counts: TokenCountsInfo,
    pub total_tokens: u64,
    pub cost_usd: f64,
    pub models: Vec<String>,
    pub model_shares: Vec<ModelShareInfo>,
    /// From "usage limit reached" lines: when Claude Code said the limit resets.
    #[serde(with = "time::opt_ts")]
    pub usage_limit_reset_at: Option<Timestamp>,
    /// Tokens against `token_limit.tokens`, in percent (null without a limit).
    pub percent_of_limit: Option<f64>,
    /// Minutes to `end_time` at `last_update`.
    pub minutes_left: i64,
    pub burn_rate: Option<BurnRateInfo>,
    pub projection: Option<ProjectionInfo>,
    /// When the token limit is reached at the current burn rate, if before the reset.
    #[serde(with = "time::opt_ts")]
    pub limit_reached_at: Option<Timestamp>,
}

/// The four token kinds, named as in `current_sessions` rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenCountsInfo {
    #[serde(alias = "inputTokens")]
    pub input_tokens: u64,
    #[serde(alias = "outputTokens")]
    pub output_tokens: u64,
    #[serde(alias = "cacheCreationInputTokens")]
    pub cache_creation_tokens: u64,
    #[serde(alias = "cacheReadInputTokens")]
    pub cache_read_tokens: u64,
}

impl From<TokenCounts> for TokenCountsInfo {
    fn from(t: TokenCounts) -> Self {
        TokenCountsInfo {
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cache_creation_tokens: t.cache_creation_input_tokens,
            cache_read_tokens: t.cache_read_input_tokens,
        }
    }
}

impl From<TokenCountsInfo> for TokenCounts {
    fn from(t: TokenCountsInfo) -> Self {
        TokenCounts {
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cache_creation_input_tokens: t.cache_creation_tokens,
            cache_read_input_tokens: t.cache_read_tokens,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelShareInfo {
    pub model: String,
    pub tokens: u64,
    pub cost_usd: f64,
    /// 0–1.
    pub share: f64,
}

/// The pace of the last 30 minutes (or of the window, while it is younger).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnRateInfo {
    /// All four token kinds, cache reads included.
    pub tokens_per_minute: f64,
    /// Input and output tokens only.
    pub tokens_per_minute_for_indicator: f64,
    pub cost_per_hour: f64,
    /// `last_30_min`, or `window` while the window is younger than that.
    #[serde(default = "default_basis")]
    pub basis: String,
}

fn default_basis() -> String {
    "last_30_min".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionInfo {
    pub total_tokens: u64,
    pub total_cost_usd: f64,
    pub remaining_minutes: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfficialLimitsInfo {
    pub five_hour: Option<OfficialBarInfo>,
    pub seven_day: Option<OfficialBarInfo>,
    #[serde(with = "time::ts")]
    pub captured_at: Timestamp,
    /// No capture for 10 minutes at `last_update`.
    pub stale: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfficialBarInfo {
    pub used_percent: f64,
    #[serde(with = "time::opt_ts")]
    pub resets_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityInfo {
    #[serde(default)]
    pub session_id: String,
    pub project: String,
    #[serde(default)]
    pub cwd: Option<String>,
    /// `active`, `waiting_for_you` or `idle`.
    pub state: String,
    #[serde(with = "time::ts")]
    pub since: Timestamp,
    /// The hook event last received (`Stop`, `PreToolUse`…) and when.
    #[serde(default)]
    pub last_event: String,
    #[serde(default, with = "time::opt_ts")]
    pub last_event_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertInfo {
    pub key: String,
    pub rule: String,
    #[serde(with = "time::ts")]
    pub sent_at: Timestamp,
    pub title: String,
    pub body: String,
    /// `info`, `warning` or `critical`.
    #[serde(default)]
    pub severity: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    #[serde(with = "time::ts")]
    pub started_at: Timestamp,
    /// When usage last changed (new lines ingested).
    #[serde(with = "time::opt_ts")]
    pub last_change: Option<Timestamp>,
    /// Failed updates in a row (0 after a success).
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    #[serde(with = "time::opt_ts")]
    pub last_error_at: Option<Timestamp>,
}

/// What [`build`] needs besides the dashboard data.
pub struct Inputs<'a> {
    /// Every block (sorted, gaps included, activity judged at `now`).
    pub blocks: &'a [Block],
    pub data: &'a DashboardData,
    pub now: Timestamp,
    pub timezone: Option<&'a str>,
    pub start_day: u8,
    pub plan_price_usd: Option<f64>,
    /// `daemon` or `in-process`.
    pub source: &'a str,
}

/// The snapshot at `now`: a pure function of its inputs.
pub fn build(i: &Inputs<'_>) -> Snapshot {
    let d = i.data;
    let p = &d.period;
    let in_period = |b: &&Block| {
        !b.is_gap
            && !b.is_future_at(i.now)
            && (p.period.contains(b.start) || b.is_current_at(i.now))
    };
    let current_sessions = i
        .blocks
        .iter()
        .filter(in_period)
        .map(|b| session_row(b, i.now))
        .collect();
    Snapshot {
        schema_version: SCHEMA_VERSION,
        source: i.source.to_string(),
        current_sessions,
        total_sessions_this_month: p.sessions.used,
        total_cost_this_month: p.cost_usd,
        max_tokens_per_session: d.maxima.tokens,
        last_update: i.now,
        billing_period_start: p.period.start,
        billing_period_end: p.period.end,
        daemon_version: Some(VERSION.to_string()),
        timezone: i.timezone.map(str::to_string),
        period: PeriodInfo {
            start_date: p.period.start_date,
            end_date: p.period.end_date,
            start: p.period.start,
            end: p.period.end,
            start_day: i.start_day,
            sessions_used: p.sessions.used,
            sessions_limit: p.sessions.limit,
            sessions_left: p.sessions.left,
            sessions_over: p.sessions.over,
            days_left: p.days_left,
            avg_sessions_per_day: p.avg_sessions_per_day,
            cost_usd: p.cost_usd,
            total_tokens: p.total_tokens,
            plan_price_usd: i.plan_price_usd,
            value_ratio: p.value_ratio,
        },
        sessions_left: p.sessions.left,
        sessions_limit: p.sessions.limit,
        max_block_cost_usd: d.maxima.cost_usd,
        token_limit: TokenLimitInfo {
            tokens: d.limit.tokens,
            source: d.limit.source.label().to_string(),
        },
        active_block: d
            .active
            .as_ref()
            .map(|a| active_block(a, d.limit.tokens, i.now, d.idle_after)),
        last_window_end: d.last_window_end,
        valid_until: d.valid_until,
        official_limits: d.official.as_ref().map(|o| OfficialLimitsInfo {
            five_hour: o.five_hour.as_ref().map(bar_info),
            seven_day: o.seven_day.as_ref().map(bar_info),
            captured_at: o.captured_at,
            stale: o.is_stale(i.now),
        }),
        activity: d.activity.as_ref().map(|rows| {
            rows.iter()
                .map(|r| ActivityInfo {
                    session_id: r.session_id.clone(),
                    project: r.project.clone(),
                    cwd: r.cwd.clone(),
                    state: state_name(r.state).to_string(),
                    since: r.since,
                    last_event: r.last_event.clone(),
                    last_event_at: Some(r.last_event_at),
                })
                .collect()
        }),
        alerts: d
            .alerts
            .iter()
            .map(|a| AlertInfo {
                key: String::new(),
                rule: String::new(),
                sent_at: a.sent_at,
                title: a.title.clone(),
                body: String::new(),
                severity: Some(a.severity.as_str().to_string()),
            })
            .collect(),
        daemon: None,
        idle_after_minutes: d.idle_after.as_mins(),
        future_entries: d.future.map(|f| FutureEntriesInfo {
            entries: f.entries as u64,
            newest_at: f.newest,
        }),
        notice: d.notice.clone(),
        account: None,
        accounts: Vec::new(),
    }
}

fn session_row(b: &Block, now: Timestamp) -> SessionRow {
    SessionRow {
        session_id: crate::report::json::block_id(b),
        start_time: b.start,
        end_time: b.end,
        total_tokens: b.total_tokens(),
        input_tokens: b.tokens.input_tokens,
        output_tokens: b.tokens.output_tokens,
        cache_creation_tokens: b.tokens.cache_creation_input_tokens,
        cache_read_tokens: b.tokens.cache_read_input_tokens,
        cost_usd: b.cost_usd,
        is_active: b.is_current_at(now),
        entries: b.entries as u64,
        models: b.models.clone(),
    }
}

/// Window length the snapshot's windows use.
fn length() -> jiff::SignedDuration {
    crate::blocks::window_length(crate::store::STORED_WINDOW_HOURS)
}

fn active_block(
    a: &ActiveWindow,
    limit: Option<u64>,
    now: Timestamp,
    idle_after: jiff::SignedDuration,
) -> ActiveBlock {
    let b = &a.block;
    let tokens = b.total_tokens();
    let projection = match (
        a.projected_tokens(now, idle_after),
        a.projected_cost(now, idle_after),
    ) {
        (Some(total_tokens), Some(cost)) => Some(ProjectionInfo {
            total_tokens,
            total_cost_usd: (cost * 100.0).round() / 100.0,
            remaining_minutes: b.end.duration_since(now).as_mins().max(0),
        }),
        _ => None,
    };
    ActiveBlock {
        id: crate::report::json::block_id(b),
        start_time: b.start,
        end_time: b.end,
        active_until: window_end(b, length()),
        first_entry_at: b.first_entry,
        last_entry_at: b.actual_end,
        entries: b.entries as u64,
        token_counts: b.tokens.into(),
        total_tokens: tokens,
        cost_usd: b.cost_usd,
        models: b.models.clone(),
        model_shares: a
            .models
            .iter()
            .map(|m| ModelShareInfo {
                model: m.model.clone(),
                tokens: m.tokens,
                cost_usd: m.cost_usd,
                share: m.share,
            })
            .collect(),
        usage_limit_reset_at: b.usage_limit_reset,
        percent_of_limit: limit
            .filter(|l| *l > 0)
            .map(|l| tokens as f64 * 100.0 / l as f64),
        minutes_left: b.end.duration_since(now).as_secs().max(0) / 60,
        burn_rate: a.pace.map(|r| BurnRateInfo {
            tokens_per_minute: r.tokens_per_minute,
            tokens_per_minute_for_indicator: r.input_output_per_minute,
            cost_per_hour: r.cost_per_hour,
            basis: match r.basis {
                PaceBasis::Recent => "last_30_min",
                PaceBasis::Window => "window",
            }
            .into(),
        }),
        projection,
        limit_reached_at: a.limit_reached_at(limit, now, idle_after),
    }
}

fn bar_info(b: &OfficialBar) -> OfficialBarInfo {
    OfficialBarInfo {
        used_percent: b.used_percent,
        resets_at: b.resets_at,
    }
}

fn state_name(s: ActivityState) -> &'static str {
    match s {
        ActivityState::Active => "active",
        ActivityState::WaitingForYou => "waiting_for_you",
        ActivityState::Idle => "idle",
    }
}

fn state_from_name(s: &str) -> ActivityState {
    match s {
        "active" => ActivityState::Active,
        "waiting_for_you" => ActivityState::WaitingForYou,
        _ => ActivityState::Idle,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a csm snapshot: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path} has schema version {found}; this csm reads versions {OLDEST_READ} to {SCHEMA_VERSION} (upgrade csm or restart the daemon)"
    )]
    Version { path: String, found: u64 },
}

/// Parses a snapshot; a file of another schema version is refused by name.
pub fn parse(text: &str, path: &Path) -> Result<Snapshot, SnapshotError> {
    let name = || path.display().to_string();
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| SnapshotError::Parse {
            path: name(),
            source,
        })?;
    let found = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if !(OLDEST_READ..=u64::from(SCHEMA_VERSION)).contains(&found) {
        return Err(SnapshotError::Version {
            path: name(),
            found,
        });
    }
    serde_json::from_value(value).map_err(|source| SnapshotError::Parse {
        path: name(),
        source,
    })
}

/// Reads and parses the snapshot at `path`.
pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
    let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, path)
}

/// The file as written: pretty JSON with a final newline.
pub fn to_json(s: &Snapshot) -> String {
    let mut text = serde_json::to_string_pretty(s).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

impl Snapshot {
    /// The dashboard's data as this snapshot describes it: what the
    /// dashboard shows when a daemon computes for it.
    pub fn to_dashboard(&self) -> DashboardData {
        let p = &self.period;
        let period = PeriodSummary {
            period: BillingPeriod {
                start_date: p.start_date,
                end_date: p.end_date,
                start: p.start,
                end: p.end,
            },
            sessions: Sessions {
                used: p.sessions_used,
                limit: p.sessions_limit,
                left: p.sessions_left,
                over: p.sessions_over,
            },
            days_left: p.days_left,
            avg_sessions_per_day: p.avg_sessions_per_day,
            cost_usd: p.cost_usd,
            total_tokens: p.total_tokens,
            value_ratio: p.value_ratio,
        };
        let source = match self.token_limit.source.as_str() {
            "p90" => LimitSource::P90,
            "limit" => LimitSource::Fixed,
            _ => LimitSource::Max,
        };
        DashboardData {
            active: self.active_block.as_ref().map(|a| ActiveWindow {
                block: Block {
                    start: a.start_time,
                    end: a.end_time,
                    first_entry: a.first_entry_at,
                    actual_end: a.last_entry_at,
                    is_gap: false,
                    entries: a.entries as usize,
                    tokens: a.token_counts.into(),
                    cost_usd: a.cost_usd,
                    models: a.models.clone(),
                    usage_limit_reset: a.usage_limit_reset_at,
                },
                pace: a.burn_rate.as_ref().map(|r| Pace {
                    tokens_per_minute: r.tokens_per_minute,
                    input_output_per_minute: r.tokens_per_minute_for_indicator,
                    cost_per_hour: r.cost_per_hour,
                    basis: if r.basis == "window" {
                        PaceBasis::Window
                    } else {
                        PaceBasis::Recent
                    },
                }),
                models: a
                    .model_shares
                    .iter()
                    .map(|m| ModelShare {
                        model: m.model.clone(),
                        tokens: m.tokens,
                        cost_usd: m.cost_usd,
                        share: m.share,
                    })
                    .collect(),
            }),
            last_window_end: self.last_window_end,
            period,
            maxima: Maxima {
                tokens: self.max_tokens_per_session,
                cost_usd: self.max_block_cost_usd,
            },
            limit: ResolvedLimit {
                tokens: self.token_limit.tokens,
                source,
            },
            official: self.official_limits.as_ref().map(|o| OfficialLimits {
                five_hour: o.five_hour.as_ref().map(|b| OfficialBar {
                    used_percent: b.used_percent,
                    resets_at: b.resets_at,
                }),
                seven_day: o.seven_day.as_ref().map(|b| OfficialBar {
                    used_percent: b.used_percent,
                    resets_at: b.resets_at,
                }),
                captured_at: o.captured_at,
            }),
            activity: self.activity.as_ref().map(|rows| {
                rows.iter()
                    .map(|r| ActivityRow {
                        session_id: r.session_id.clone(),
                        project: r.project.clone(),
                        cwd: r.cwd.clone(),
                        state: state_from_name(&r.state),
                        since: r.since,
                        last_event: r.last_event.clone(),
                        last_event_at: r.last_event_at.unwrap_or(r.since),
                    })
                    .collect()
            }),
            valid_until: self.valid_until,
            idle_after: jiff::SignedDuration::from_mins(self.idle_after_minutes.max(1)),
            future: self.future_entries.map(|f| FutureEntries {
                entries: f.entries as usize,
                newest: f.newest_at,
            }),
            alerts: self.window_alerts(),
            notice: self.notice.clone(),
        }
    }

    /// The alerts of the current window (or of the last one), newest first.
    fn window_alerts(&self) -> Vec<AlertRow> {
        let since = match (&self.active_block, self.last_window_end) {
            (Some(a), _) => Some(a.start_time),
            (None, Some(end)) => end.checked_sub(length()).ok(),
            (None, None) => None,
        };
        let Some(since) = since else {
            return Vec::new();
        };
        self.alerts
            .iter()
            .filter(|a| a.sent_at >= since)
            .map(|a| AlertRow {
                sent_at: a.sent_at,
                title: a.title.clone(),
                severity: match &a.severity {
                    Some(s) => Severity::from_name(s),
                    None => Severity::of(&a.rule, &a.key),
                },
            })
            .collect()
    }

    /// True when only `last_update` (and the daemon's bookkeeping) differ:
    /// the figures are the same.
    pub fn same_figures(&self, other: &Snapshot) -> bool {
        let mut a = self.clone();
        a.last_update = other.last_update;
        a.daemon = other.daemon.clone();
        // The next recompute (a minute on while a window runs) moves with the
        // clock alone.
        a.valid_until = other.valid_until;
        a.accounts = other.accounts.clone();
        if a.accounts.len() != self.accounts.len()
            || self
                .accounts
                .iter()
                .zip(&other.accounts)
                .any(|(x, y)| !x.same_figures(y))
        {
            return false;
        }
        // Minutes left, the pace of the last 30 minutes and what is projected
        // from it move with the clock alone.
        if let (Some(x), Some(y)) = (a.active_block.as_mut(), other.active_block.as_ref()) {
            x.minutes_left = y.minutes_left;
            x.burn_rate = y.burn_rate.clone();
            x.projection = y.projection;
            x.limit_reached_at = y.limit_reached_at;
        }
        if let (Some(x), Some(y)) = (a.official_limits.as_mut(), other.official_limits.as_ref()) {
            x.stale = y.stale;
        }
        a == *other
    }
}

/// `s` as the snapshot of the account `name` (config dir `config_dir`).
pub fn named(mut s: Snapshot, name: &str, config_dir: &std::path::Path) -> Snapshot {
    s.account = Some(AccountInfo {
        name: name.to_string(),
        config_dir: config_dir.display().to_string(),
    });
    s
}

/// One snapshot of several accounts: the first one's figures at the top
/// level (what the original widget reads), every one's in `accounts`.
pub fn combine(entries: Vec<Snapshot>) -> Option<Snapshot> {
    let first = entries.first()?.clone();
    Some(Snapshot {
        accounts: entries,
        ..first
    })
}

/// Blocks, dashboard data and snapshot at `now` from a loaded usage feed:
/// what the daemon publishes and `csm status` computes without one.
pub fn from_feed(
    feed: &dyn crate::engine::feed::UsageFeed,
    ctx: &crate::engine::Settings,
    now: Timestamp,
    source: &str,
) -> Result<(Vec<Block>, DashboardData, Snapshot), jiff::Error> {
    let (blocks, d) = crate::engine::feed::figures(feed, ctx, now)?;
    let snap = build(&Inputs {
        blocks: &blocks,
        data: &d,
        now,
        timezone: ctx.tz().iana_name(),
        start_day: ctx.config.start_day,
        plan_price_usd: ctx.config.plan_price_usd,
        source,
    });
    Ok((blocks, d, snap))
}

/// A time as the snapshot writes it.
pub fn time_string(t: Timestamp) -> String {
    time::format(t)
}
