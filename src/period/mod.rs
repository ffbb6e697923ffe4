//! Billing periods, sessions and limits: pure functions over 5-hour
//! windows with the clock and the display time zone passed in.
//!
//! A window ("session") belongs to the period it starts in: that rule gives
//! both the session count and the period's cost, so the two always describe
//! the same windows (as the original monitor counted them). The store of
//! history store feeds the same functions with blocks that outlive Claude Code's
//! transcript clean-up, plus the all-time maxima it keeps ([`Maxima`]).

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::blocks::Block;
use crate::config::TokenLimit;

#[cfg(test)]
mod tests;

/// One billing period: `[start, end)`, both at local midnight in the display
/// time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingPeriod {
    /// The period's first day.
    pub start_date: Date,
    /// The first day of the next period.
    pub end_date: Date,
    /// Local midnight starting `start_date`.
    pub start: Timestamp,
    /// Local midnight starting `end_date` (exclusive).
    pub end: Timestamp,
}

/// The day a period starts in `year`/`month`: `start_day`, clamped to the
/// month's length (31 → 28 in February, 30 in April).
pub fn anchor_date(year: i16, month: i8, start_day: u8) -> Result<Date, jiff::Error> {
    let first = Date::new(year, month, 1)?;
    let day = (start_day.clamp(1, 31) as i8).min(first.days_in_month());
    Date::new(year, month, day)
}

/// The most recent date ≤ `today` whose day is min(start_day, days in that month).
pub fn period_start_date(today: Date, start_day: u8) -> Result<Date, jiff::Error> {
    let this_month = anchor_date(today.year(), today.month(), start_day)?;
    if this_month <= today {
        return Ok(this_month);
    }
    let prev = today.first_of_month().yesterday()?;
    anchor_date(prev.year(), prev.month(), start_day)
}

/// The anchor date of the month after `date`'s month.
fn next_anchor(date: Date, start_day: u8) -> Result<Date, jiff::Error> {
    let next = date.last_of_month().tomorrow()?;
    anchor_date(next.year(), next.month(), start_day)
}

/// The instant a local day begins. Midnight that falls in a DST gap (some
/// zones switch at 00:00) resolves to the first instant after the gap.
pub fn local_midnight(date: Date, tz: &TimeZone) -> Result<Timestamp, jiff::Error> {
    tz.to_timestamp(date.to_datetime(Time::midnight()))
}

impl BillingPeriod {
    /// The period `now` falls in.
    pub fn containing(
        now: Timestamp,
        tz: &TimeZone,
        start_day: u8,
    ) -> Result<BillingPeriod, jiff::Error> {
        let today = tz.to_datetime(now).date();
        let start_date = period_start_date(today, start_day)?;
        Self::from_start_date(start_date, tz, start_day)
    }

    fn from_start_date(
        start_date: Date,
        tz: &TimeZone,
        start_day: u8,
    ) -> Result<BillingPeriod, jiff::Error> {
        let end_date = next_anchor(start_date, start_day)?;
        Ok(BillingPeriod {
            start_date,
            end_date,
            start: local_midnight(start_date, tz)?,
            end: local_midnight(end_date, tz)?,
        })
    }

    /// The period just before this one.
    pub fn previous(&self, tz: &TimeZone, start_day: u8) -> Result<BillingPeriod, jiff::Error> {
        let prev = self.start_date.first_of_month().yesterday()?;
        let start_date = anchor_date(prev.year(), prev.month(), start_day)?;
        Self::from_start_date(start_date, tz, start_day)
    }

    /// Whether `t` lies in `[start, end)`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// The period's last day (the day before `end_date`).
    pub fn last_date(&self) -> Date {
        self.end_date.yesterday().unwrap_or(self.end_date)
    }

    /// `2026-12-01 – 2026-12-31`: both days included, as people read a range.
    pub fn range_label(&self) -> String {
        format!("{} – {}", self.start_date, self.last_date())
    }

    /// Calendar days from `now`'s local date to the period end, today
    /// included (never below 1 while `now` is inside the period).
    pub fn days_left(&self, now: Timestamp, tz: &TimeZone) -> i64 {
        let today = tz.to_datetime(now).date();
        let days = today.duration_until(self.end_date).as_hours() / 24;
        days.max(0)
    }
}

/// Windows used in a period against the plan's allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sessions {
    /// Windows that started in the period so far.
    pub used: u32,
    /// Windows the plan includes per period (`sessions_per_period`).
    pub limit: u32,
    /// max(0, limit − used).
    pub left: u32,
    /// used − limit when above the limit ("over by N"), else 0.
    pub over: u32,
}

impl Sessions {
    /// The counts for `used` windows against `limit`, with `left` and `over` derived.
    pub fn new(used: u32, limit: u32) -> Sessions {
        Sessions {
            used,
            limit,
            left: limit.saturating_sub(used),
            over: used.saturating_sub(limit),
        }
    }
}

/// Real (non-gap) windows that start inside the period by `now`, the current
/// one included; a window dated after `now` is not a session used yet.
pub fn blocks_in<'a>(
    blocks: &'a [Block],
    period: &'a BillingPeriod,
    now: Timestamp,
) -> impl Iterator<Item = &'a Block> + 'a {
    blocks
        .iter()
        .filter(move |b| !b.is_gap && period.contains(b.start) && !b.is_future_at(now))
}

/// What the period settings of config.toml (and their flags) say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeriodSettings {
    /// Day of the month periods start on (1–31, clamped to short months).
    pub start_day: u8,
    /// Windows included per period.
    pub sessions_per_period: u32,
    /// The subscription's price per period in USD, when configured.
    pub plan_price_usd: Option<f64>,
}

impl PeriodSettings {
    /// The period settings of `c` (the command layer applies the flags to it first).
    pub fn from_config(c: &crate::config::Config) -> PeriodSettings {
        PeriodSettings {
            start_day: c.start_day,
            sessions_per_period: c.sessions_per_period,
            plan_price_usd: c.plan_price_usd,
        }
    }
}

/// One period's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct PeriodSummary {
    /// The period summed up.
    pub period: BillingPeriod,
    /// Windows used against the allowance.
    pub sessions: Sessions,
    /// Calendar days left, today included (0 for a past period).
    pub days_left: i64,
    /// Sessions left per remaining day (0 for a past period).
    pub avg_sessions_per_day: f64,
    /// API-price value of the period's windows: what they would have cost
    /// without the subscription.
    pub cost_usd: f64,
    /// Tokens of the period's windows, all four kinds.
    pub total_tokens: u64,
    /// value / plan price, when the plan price is configured.
    pub value_ratio: Option<f64>,
}

/// Sums up the period's windows as seen at `now`.
pub fn summarize(
    blocks: &[Block],
    period: &BillingPeriod,
    now: Timestamp,
    tz: &TimeZone,
    settings: &PeriodSettings,
) -> PeriodSummary {
    let mut used = 0u32;
    let mut cost = 0.0;
    let mut tokens = 0u64;
    for b in blocks_in(blocks, period, now) {
        used = used.saturating_add(1);
        cost += b.cost_usd;
        tokens = tokens.saturating_add(b.total_tokens());
    }
    let sessions = Sessions::new(used, settings.sessions_per_period);
    let days_left = if now < period.end {
        period.days_left(now, tz)
    } else {
        0
    };
    let avg = if days_left > 0 {
        sessions.left as f64 / days_left as f64
    } else {
        0.0
    };
    PeriodSummary {
        period: period.clone(),
        sessions,
        days_left,
        avg_sessions_per_day: avg,
        cost_usd: cost,
        total_tokens: tokens,
        value_ratio: settings
            .plan_price_usd
            .filter(|p| *p > 0.0)
            .map(|p| cost / p),
    }
}

/// The current period and the `n` before it, newest first.
///
/// Computed from the blocks given: with transcripts only, periods older than
/// Claude Code's 30-day clean-up come out empty; the store keeps
/// the blocks that make them complete.
pub fn history(
    blocks: &[Block],
    now: Timestamp,
    tz: &TimeZone,
    settings: &PeriodSettings,
    n: usize,
) -> Result<Vec<PeriodSummary>, jiff::Error> {
    let mut period = BillingPeriod::containing(now, tz, settings.start_day)?;
    let mut out = Vec::with_capacity(n + 1);
    out.push(summarize(blocks, &period, now, tz, settings));
    for _ in 0..n {
        period = period.previous(tz, settings.start_day)?;
        out.push(summarize(blocks, &period, now, tz, settings));
    }
    Ok(out)
}

/// All-time largest window: its tokens and (separately) the largest cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Maxima {
    /// Token total (all four kinds) of the largest window.
    pub tokens: u64,
    /// Cost in USD of the costliest window (not necessarily the same window).
    pub cost_usd: f64,
}

impl Maxima {
    /// The larger of each figure: blocks seen now and what was kept before
    /// (the store's maxima, or the original monitor's `max_tokens`).
    pub fn merge(self, other: Maxima) -> Maxima {
        Maxima {
            tokens: self.tokens.max(other.tokens),
            cost_usd: self.cost_usd.max(other.cost_usd),
        }
    }
}

/// Maxima over completed real windows. The active window is left out so that
/// it can be measured against (and go over) the largest one before it, as
/// `ccusage blocks --token-limit max` does.
pub fn completed_maxima(blocks: &[Block], now: Timestamp) -> Maxima {
    blocks
        .iter()
        .filter(|b| b.is_completed_at(now))
        .fold(Maxima::default(), |m, b| {
            m.merge(Maxima {
                tokens: b.total_tokens(),
                cost_usd: b.cost_usd,
            })
        })
}

/// The all-time maxima (completed windows and what was kept) and the token
/// bar's 100 % they give: the one composition every face uses.
pub fn limits(
    blocks: &[Block],
    kept: Maxima,
    token_limit: TokenLimit,
    now: Timestamp,
) -> (Maxima, ResolvedLimit) {
    let maxima = completed_maxima(blocks, now).merge(kept);
    let limit = resolve_token_limit(token_limit, blocks, now, maxima.tokens);
    (maxima, limit)
}

/// Where the token bar's 100 % comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// The largest window ever seen.
    Max,
    /// 90th percentile of recent completed windows.
    P90,
    /// A number from config.
    Fixed,
}

impl LimitSource {
    /// What the 100 % is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            LimitSource::Max => "largest past window",
            LimitSource::P90 => "p90 of the last 8 days",
            LimitSource::Fixed => "token_limit setting",
        }
    }

    /// Short name as the snapshot's `token_limit.source` gives it: `max`, `p90` or `limit`.
    pub fn label(self) -> &'static str {
        match self {
            LimitSource::Max => "max",
            LimitSource::P90 => "p90",
            LimitSource::Fixed => "limit",
        }
    }
}

/// The token bar's 100 %, or none before any window has completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedLimit {
    /// The token count; `None` before any window has completed (a fixed limit always has one).
    pub tokens: Option<u64>,
    /// Where the figure comes from.
    pub source: LimitSource,
}

/// How far back `p90` looks.
pub const P90_LOOKBACK: SignedDuration = SignedDuration::from_hours(8 * 24);

/// Resolves `token_limit`. `all_time_max` is the merged maximum (store and
/// blocks); `p90` falls back to it when no window completed in the last
/// 8 days, so the bar always has a scale once any window has completed.
pub fn resolve_token_limit(
    setting: TokenLimit,
    blocks: &[Block],
    now: Timestamp,
    all_time_max: u64,
) -> ResolvedLimit {
    let max = Some(all_time_max).filter(|m| *m > 0);
    match setting {
        TokenLimit::Fixed(n) => ResolvedLimit {
            tokens: Some(n),
            source: LimitSource::Fixed,
        },
        TokenLimit::Max => ResolvedLimit {
            tokens: max,
            source: LimitSource::Max,
        },
        TokenLimit::P90 => match p90_tokens(blocks, now) {
            Some(p) => ResolvedLimit {
                tokens: Some(p),
                source: LimitSource::P90,
            },
            None => ResolvedLimit {
                tokens: max,
                source: LimitSource::Max,
            },
        },
    }
}

/// The 90th percentile (nearest rank) of the totals of completed real windows
/// that started in the last 8 days; none without at least one such window.
pub fn p90_tokens(blocks: &[Block], now: Timestamp) -> Option<u64> {
    let since = now.saturating_sub(P90_LOOKBACK).unwrap_or(now);
    let mut totals: Vec<u64> = blocks
        .iter()
        .filter(|b| b.is_completed_at(now) && b.start >= since && b.start <= now)
        .map(Block::total_tokens)
        .collect();
    if totals.is_empty() {
        return None;
    }
    totals.sort_unstable();
    // Nearest rank: the smallest value with at least 90 % of totals ≤ it.
    let rank = (totals.len() * 9).div_ceil(10).max(1);
    totals.get(rank - 1).copied()
}
