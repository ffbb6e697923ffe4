//! What the dashboard shows, as plain data: built by a pure function from
//! blocks (any source) so the screen can be tested without a terminal, and so
//! a daemon snapshot can fill the same structure.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::blocks::{self, Block, FutureEntries, Pace};
use crate::config::TokenLimit;
use crate::domain::UsageEntry;
use crate::period::{self, BillingPeriod, Maxima, PeriodSettings, PeriodSummary, ResolvedLimit};

/// Everything one dashboard frame needs except the clock.
#[derive(Clone, Debug, PartialEq)]
pub struct DashboardData {
    /// The active 5-hour window, if any.
    pub active: Option<ActiveWindow>,
    /// When the most recent window ended (waiting screen), if there was one.
    pub last_window_end: Option<Timestamp>,
    /// The current billing period's figures.
    pub period: PeriodSummary,
    /// All-time largest window (tokens, cost), kept maxima included.
    pub maxima: Maxima,
    /// The token bar's 100 %.
    pub limit: ResolvedLimit,
    /// Claude Code's own rate limits, when the status line captured them;
    /// `None` hides the pane.
    pub official: Option<OfficialLimits>,
    /// Live Claude Code sessions from hooks; `None` hides the pane.
    pub activity: Option<Vec<ActivityRow>>,
    /// The data describes the clock up to this instant: a window ends or goes
    /// idle, or the period rolls over. A source recomputes after it even when
    /// no new usage arrived.
    pub valid_until: Option<Timestamp>,
    /// Without a new entry for this long, the current window counts as idle.
    pub idle_after: SignedDuration,
    /// Entries dated after `now` (a device whose clock runs fast): counted by
    /// no face, reported here.
    pub future: Option<FutureEntries>,
    /// Alerts sent since the current (or last) window started, newest first.
    pub alerts: Vec<AlertRow>,
    /// Where csm looked when it found no Claude Code data, and what to do.
    pub notice: Option<String>,
}

/// One alert as the dashboard lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow {
    /// When the alert was sent.
    pub sent_at: Timestamp,
    /// The notification's title.
    pub title: String,
    /// How loudly it is shown.
    pub severity: Severity,
}

/// How loud an alert is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// A notice (idle, reset, …).
    Info,
    /// A warning (a limit below 95 %, a window ending).
    Warning,
    /// Critical (a limit at 95 % or more, a failing source).
    Critical,
}

impl Severity {
    /// From the rule and key an alert was stored under: a limit at 95 % or
    /// more and a failing source are critical; other limits and a window
    /// ending warn; idle and reset notices inform.
    pub fn of(rule: &str, key: &str) -> Severity {
        match rule {
            "limit" => {
                let pct: u32 = key
                    .rsplit(':')
                    .next()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                if pct >= 95 {
                    Severity::Critical
                } else {
                    Severity::Warning
                }
            }
            "source_failing" => Severity::Critical,
            "window_ending" => Severity::Warning,
            _ => Severity::Info,
        }
    }

    /// Lower-case name, as the snapshot stores it: `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The severity named by [`Severity::as_str`]; anything else is `Info`.
    pub fn from_name(s: &str) -> Severity {
        match s {
            "critical" => Severity::Critical,
            "warning" => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

/// The window the dashboard shows as current, with what the feed knows beyond its block.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveWindow {
    /// The window itself.
    pub block: Block,
    /// Usage of the last 30 minutes as a rate ([`blocks::pace`]).
    pub pace: Option<Pace>,
    /// Models used in the window, largest share of its tokens first.
    pub models: Vec<ModelShare>,
}

impl ActiveWindow {
    /// How long the window has been without a new entry at `now`, when that
    /// is at least `idle_after`.
    pub fn idle_for(&self, now: Timestamp, idle_after: SignedDuration) -> Option<SignedDuration> {
        let last = self.block.actual_end?;
        let idle = now.duration_since(last);
        (idle >= idle_after).then_some(idle)
    }

    /// The pace that projections use: none while idle.
    pub fn live_pace(&self, now: Timestamp, idle_after: SignedDuration) -> Option<Pace> {
        self.pace
            .filter(|_| self.idle_for(now, idle_after).is_none())
    }

    /// Minutes from `now` to the window's end (0 once it has come).
    fn minutes_left(&self, now: Timestamp) -> f64 {
        (self.block.end.duration_since(now).as_secs_f64() / 60.0).max(0.0)
    }

    /// Cost at the window's end if the pace holds.
    pub fn projected_cost(&self, now: Timestamp, idle_after: SignedDuration) -> Option<f64> {
        let p = self.live_pace(now, idle_after)?;
        Some(self.block.cost_usd + p.cost_per_hour / 60.0 * self.minutes_left(now))
    }

    /// Tokens at the window's end if the pace holds.
    pub fn projected_tokens(&self, now: Timestamp, idle_after: SignedDuration) -> Option<u64> {
        let p = self.live_pace(now, idle_after)?;
        let tokens =
            self.block.total_tokens() as f64 + p.tokens_per_minute * self.minutes_left(now);
        Some(tokens.round() as u64)
    }

    /// When the token limit is reached at the current pace, if before the reset.
    pub fn limit_reached_at(
        &self,
        limit: Option<u64>,
        now: Timestamp,
        idle_after: SignedDuration,
    ) -> Option<Timestamp> {
        let p = self.live_pace(now, idle_after)?;
        blocks::limit_reached_at(
            self.block.total_tokens(),
            limit?,
            p.tokens_per_minute,
            now,
            self.block.end,
        )
    }
}

/// What a feed knows about the current window beyond its block: model
/// shares, pace and entries dated in the future.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CurrentDetail {
    /// Models used in the current window, largest share first.
    pub models: Vec<ModelShare>,
    /// The current window's pace.
    pub pace: Option<Pace>,
    /// Entries dated after `now`, if any.
    pub future: Option<FutureEntries>,
}

/// The entries a feed must keep for [`current_detail`]: those from the first
/// entry of the newest window that has started by `now` (or of the first
/// window, when every window lies ahead).
pub fn tail_from(blocks: &[Block], now: Timestamp) -> Option<Timestamp> {
    blocks::latest_started(blocks, now)
        .or_else(|| blocks.iter().find(|b| !b.is_gap))
        .map(|b| b.first_entry.unwrap_or(b.start))
}

/// Model shares and pace of the current window, and the entries dated after
/// `now`, from the entries since [`tail_from`] (sorted by time, with costs).
pub fn current_detail<'a>(
    blocks: &[Block],
    tail: impl IntoIterator<Item = (&'a UsageEntry, f64)> + Clone,
    now: Timestamp,
) -> CurrentDetail {
    let future = FutureEntries::count(tail.clone().into_iter().map(|(e, _)| e.timestamp), now);
    let Some(cur) = blocks::current(blocks, now) else {
        return CurrentDetail {
            future,
            ..CurrentDetail::default()
        };
    };
    let first = cur.first_entry.unwrap_or(cur.start);
    let own: Vec<(&UsageEntry, f64)> = tail
        .into_iter()
        .filter(|(e, _)| e.timestamp >= first && e.timestamp <= cur.end)
        .collect();
    CurrentDetail {
        models: model_shares(own.iter().copied()),
        pace: blocks::pace(
            own.iter().map(|(e, c)| (e.timestamp, e.tokens, *c)),
            first,
            now,
        ),
        future,
    }
}

/// One model's part of a window.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelShare {
    /// The model's report name (`-fast` for fast mode).
    pub model: String,
    /// Its tokens (all four kinds).
    pub tokens: u64,
    /// Its cost in USD.
    pub cost_usd: f64,
    /// Share of the window's tokens, 0–1.
    pub share: f64,
}

pub use crate::ingest::claude::activity::{ActivityState, LiveSession as ActivityRow};
pub use crate::ingest::claude::limits::{
    OfficialBar, OfficialLimits, STALE_AFTER as OFFICIAL_STALE_AFTER,
};

/// Settings the dashboard data depends on (config.toml and flags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DashboardSettings {
    /// Billing-period settings.
    pub period: PeriodSettings,
    /// What the token bar's 100 % is.
    pub token_limit: TokenLimit,
    /// `[alerts] inactivity_alert_minutes` (10 when that alert is off).
    pub idle_after: SignedDuration,
}

/// Idle after this long when the inactivity alert is off.
pub const DEFAULT_IDLE_AFTER: SignedDuration = SignedDuration::from_mins(10);

impl DashboardSettings {
    /// The dashboard settings of `c`.
    pub fn from_config(c: &crate::config::Config) -> DashboardSettings {
        let idle = c.alerts.inactivity_alert_minutes;
        DashboardSettings {
            period: PeriodSettings::from_config(c),
            token_limit: c.token_limit,
            idle_after: if idle == 0 {
                DEFAULT_IDLE_AFTER
            } else {
                SignedDuration::from_mins(i64::from(idle))
            },
        }
    }
}

/// How often figures that move with the clock alone (the pace, idle time)
/// are recomputed while a window is current.
pub const PACE_REFRESH: SignedDuration = SignedDuration::from_mins(1);

/// What a source hands to [`build`].
pub struct Inputs<'a> {
    /// Every block of the history, sorted by start (gaps included), with
    /// `is_active` computed at `now`.
    pub blocks: &'a [Block],
    /// Model shares, pace and future entries of the current window ([`current_detail`]).
    pub detail: CurrentDetail,
    /// Maxima kept from before (store, original monitor's `max_tokens`).
    pub kept: Maxima,
    /// Window length, for when a window stops being active.
    pub window_length: SignedDuration,
    /// The instant the data is computed for.
    pub now: Timestamp,
    /// Display time zone (periods start at its midnight).
    pub tz: &'a TimeZone,
    /// Settings from config.toml and flags.
    pub settings: DashboardSettings,
}

/// Computes the dashboard data at `now`.
pub fn build(i: Inputs<'_>) -> Result<DashboardData, jiff::Error> {
    let period_bounds = BillingPeriod::containing(i.now, i.tz, i.settings.period.start_day)?;
    let summary = period::summarize(i.blocks, &period_bounds, i.now, i.tz, &i.settings.period);
    let (maxima, limit) = period::limits(i.blocks, i.kept, i.settings.token_limit, i.now);
    let active = blocks::current(i.blocks, i.now).map(|b| ActiveWindow {
        block: b.clone(),
        pace: i.detail.pace,
        models: i.detail.models,
    });
    let last_window_end = blocks::latest_started(i.blocks, i.now)
        .filter(|_| active.is_none())
        .map(|b| window_end(b, i.window_length));
    // Recompute when the window ends, every minute while it runs (the pace
    // slides), when a window dated ahead starts, or when the period rolls.
    let mut valid_until = period_bounds.end;
    if let Some(a) = &active {
        let pace_tick = i.now.checked_add(PACE_REFRESH).unwrap_or(i.now);
        valid_until = valid_until
            .min(window_end(&a.block, i.window_length))
            .min(pace_tick);
    }
    if let Some(next) = i.blocks.iter().find(|b| b.is_future_at(i.now)) {
        valid_until = valid_until.min(next.start);
    }
    let valid_until = Some(valid_until);
    Ok(DashboardData {
        active,
        last_window_end,
        period: summary,
        maxima,
        limit,
        official: None,
        activity: None,
        valid_until,
        idle_after: i.settings.idle_after,
        future: i.detail.future,
        alerts: Vec::new(),
        notice: None,
    })
}

/// When a window stopped (or will stop) being active.
pub fn window_end(b: &Block, length: SignedDuration) -> Timestamp {
    let idle_end = b
        .actual_end
        .and_then(|t| t.checked_add(length).ok())
        .unwrap_or(b.end);
    idle_end.min(b.end)
}

/// Tokens and cost per model for the entries of one window, largest first.
pub fn model_shares<'a>(
    entries: impl IntoIterator<Item = (&'a UsageEntry, f64)>,
) -> Vec<ModelShare> {
    let mut rows: Vec<ModelShare> = Vec::new();
    let mut total = 0u64;
    for (e, cost) in entries {
        let Some(model) = e.display_model() else {
            continue;
        };
        let tokens = e.tokens.total();
        total = total.saturating_add(tokens);
        match rows.iter_mut().find(|r| r.model == *model) {
            Some(r) => {
                r.tokens = r.tokens.saturating_add(tokens);
                r.cost_usd += cost;
            }
            None => rows.push(ModelShare {
                model: model.into_owned(),
                tokens,
                cost_usd: cost,
                share: 0.0,
            }),
        }
    }
    for r in &mut rows {
        r.share = if total > 0 {
            r.tokens as f64 / total as f64
        } else {
            0.0
        };
    }
    rows.sort_by(|a, b| b.tokens.cmp(&a.tokens).then_with(|| a.model.cmp(&b.model)));
    rows
}
