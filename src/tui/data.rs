//! What the dashboard shows, as plain data: built by a pure function from
//! blocks (any source) so the screen can be tested without a terminal, and so
//! a daemon snapshot (issue 5) can fill the same structure.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::blocks::{Block, BurnRate};
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
    pub period: PeriodSummary,
    /// All-time largest window (tokens, cost), kept maxima included.
    pub maxima: Maxima,
    /// The token bar's 100 %.
    pub limit: ResolvedLimit,
    /// Claude Code's own rate limits, when the status line captured them
    /// (issue 7); `None` hides the pane.
    pub official: Option<OfficialLimits>,
    /// Live Claude Code sessions from hooks (issue 7); `None` hides the pane.
    pub activity: Option<Vec<ActivityRow>>,
    /// The data describes the clock up to this instant: a window ends or goes
    /// idle, or the period rolls over. A source recomputes after it even when
    /// no new usage arrived.
    pub valid_until: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ActiveWindow {
    pub block: Block,
    pub burn: Option<BurnRate>,
    /// Models used in the window, largest share first.
    pub models: Vec<ModelShare>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelShare {
    pub model: String,
    pub tokens: u64,
    pub cost_usd: f64,
    /// Share of the window's tokens, 0–1.
    pub share: f64,
}

pub use crate::claude::activity::{ActivityState, LiveSession as ActivityRow};
pub use crate::claude::limits::{OfficialBar, OfficialLimits, STALE_AFTER as OFFICIAL_STALE_AFTER};

/// Settings the dashboard data depends on (config.toml and flags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DashboardSettings {
    pub period: PeriodSettings,
    pub token_limit: TokenLimit,
}

impl DashboardSettings {
    pub fn from_config(c: &crate::config::Config) -> DashboardSettings {
        DashboardSettings {
            period: PeriodSettings::from_config(c),
            token_limit: c.token_limit,
        }
    }
}

/// What a source hands to [`build`].
pub struct Inputs<'a> {
    /// Every block of the history, sorted by start (gaps included), with
    /// `is_active` computed at `now`.
    pub blocks: &'a [Block],
    /// Model shares of the active window ([`model_shares`]).
    pub active_models: Vec<ModelShare>,
    /// Maxima kept from before (store, original monitor's `max_tokens`).
    pub kept: Maxima,
    pub window_length: SignedDuration,
    pub now: Timestamp,
    pub tz: &'a TimeZone,
    pub settings: DashboardSettings,
}

/// Computes the dashboard data at `now`.
pub fn build(i: Inputs<'_>) -> Result<DashboardData, jiff::Error> {
    let period_bounds = BillingPeriod::containing(i.now, i.tz, i.settings.period.start_day)?;
    let summary = period::summarize(i.blocks, &period_bounds, i.now, i.tz, &i.settings.period);
    let maxima = period::completed_maxima(i.blocks).merge(i.kept);
    let limit = period::resolve_token_limit(i.settings.token_limit, i.blocks, i.now, maxima.tokens);
    let active = i
        .blocks
        .iter()
        .rev()
        .find(|b| b.is_active)
        .map(|b| ActiveWindow {
            block: b.clone(),
            burn: b.burn_rate(),
            models: i.active_models,
        });
    let last_real = i.blocks.iter().rev().find(|b| !b.is_gap);
    let last_window_end = last_real
        .filter(|b| !b.is_active)
        .map(|b| window_end(b, i.window_length));
    // The window stops being active at its end or when it has been idle for a
    // full window length, whichever comes first (blocks::finish's rule).
    let active_until = active
        .as_ref()
        .map(|a| window_end(&a.block, i.window_length));
    let valid_until = Some(match active_until {
        Some(t) => t.min(period_bounds.end),
        None => period_bounds.end,
    });
    Ok(DashboardData {
        active,
        last_window_end,
        period: summary,
        maxima,
        limit,
        official: None,
        activity: None,
        valid_until,
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
