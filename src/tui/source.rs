//! Where the dashboard's data comes from.
//!
//! [`DataSource`] is what the screen talks to: the in-process source below
//! today, the daemon's `monitor_data.json` snapshot with issue 5. The
//! in-process source is split at one seam, [`UsageFeed`]: "bring the usage
//! up to date, then give me the blocks". [`TranscriptFeed`] re-reads every
//! transcript when any file changed; issue 3's store replaces it with an
//! incremental ingest and queries, and nothing else here has to change.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use jiff::{SignedDuration, Timestamp};

use super::changes::ChangeDetector;
use super::data::{self, DashboardData, DashboardSettings, Inputs, ModelShare};
use crate::app::Context;
use crate::blocks::{self, Block, Timed};
use crate::commands::usage;
use crate::domain::UsageEntry;
use crate::period::Maxima;
use crate::pricing::{PriceResolver, PriceTable};

/// Something that can produce dashboard data.
pub trait DataSource: Send {
    /// Shown in the title: `in-process`, `daemon v0.1.0`.
    fn label(&self) -> String;

    /// The data at `now` when anything changed since the last call (new usage,
    /// or `now` passed [`DashboardData::valid_until`]); `None` when the last
    /// data still holds. The first call always returns data.
    fn refresh(&mut self, now: Timestamp) -> Result<Option<DashboardData>>;

    /// Drop every cache: the next refresh re-reads everything (`r`, `--recalculate`).
    fn recalculate(&mut self);
}

/// The usage behind the in-process source: the seam the store plugs into.
pub trait UsageFeed: Send {
    /// Brings the usage up to date; true when anything changed (always true
    /// the first time and after `force`).
    fn update(&mut self, force: bool) -> Result<bool>;

    /// Every block of the history at `now` (sorted, gaps included, activity
    /// computed at `now`) and the model shares of the active one.
    fn blocks(&self, now: Timestamp) -> (Vec<Block>, Vec<ModelShare>);

    /// Maxima kept beyond what the blocks show (the store's all-time maxima,
    /// the original monitor's `max_tokens`).
    fn kept_maxima(&self) -> Maxima;

    /// What Claude Code told csm directly (official limits, hook activity),
    /// at `now`. Only the store keeps it.
    fn claude(&self, _now: Timestamp) -> ClaudeExtras {
        ClaudeExtras::default()
    }
}

/// The dashboard's Claude Code panes: `None` hides a pane.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaudeExtras {
    pub official: Option<data::OfficialLimits>,
    pub activity: Option<Vec<data::ActivityRow>>,
}

/// Dashboard data computed in this process from a [`UsageFeed`].
pub struct InProcessSource<F: UsageFeed> {
    feed: F,
    ctx: Arc<Context>,
    settings: DashboardSettings,
    window_length: SignedDuration,
    last: Option<DashboardData>,
    force: bool,
}

impl<F: UsageFeed> InProcessSource<F> {
    pub fn new(feed: F, ctx: Arc<Context>) -> Self {
        let settings = DashboardSettings::from_config(&ctx.config);
        InProcessSource {
            feed,
            ctx,
            settings,
            window_length: blocks::window_length(5.0),
            last: None,
            force: false,
        }
    }
}

impl<F: UsageFeed> DataSource for InProcessSource<F> {
    fn label(&self) -> String {
        "in-process".into()
    }

    fn refresh(&mut self, now: Timestamp) -> Result<Option<DashboardData>> {
        let force = std::mem::take(&mut self.force);
        let changed = self.feed.update(force)?;
        let expired = self
            .last
            .as_ref()
            .is_none_or(|d| d.valid_until.is_some_and(|t| now >= t));
        let extras = self.feed.claude(now);
        let mut data = match &self.last {
            // Only the Claude Code panes can have changed.
            Some(last) if !changed && !expired => {
                if last.official == extras.official && last.activity == extras.activity {
                    return Ok(None);
                }
                last.clone()
            }
            _ => {
                let (blocks, active_models) = self.feed.blocks(now);
                data::build(Inputs {
                    blocks: &blocks,
                    active_models,
                    kept: self.feed.kept_maxima(),
                    window_length: self.window_length,
                    now,
                    tz: self.ctx.tz(),
                    settings: self.settings,
                })?
            }
        };
        data.official = extras.official;
        data.activity = extras.activity;
        if self.last.as_ref() == Some(&data) {
            // Same picture (a file was touched without new usage): nothing to redraw.
            return Ok(None);
        }
        self.last = Some(data.clone());
        Ok(Some(data))
    }

    fn recalculate(&mut self) {
        self.force = true;
        self.last = None;
    }
}

/// Reads every transcript again whenever any file's size, mtime or inode
/// changed. A poll with nothing new costs a few `stat` calls
/// ([`ChangeDetector`]); a change costs a full parse of the history — until
/// the store (issue 3) makes that part incremental.
pub struct TranscriptFeed {
    ctx: Arc<Context>,
    prices: Option<PriceTable>,
    detector: Option<ChangeDetector>,
    /// Entries sorted by time with their cost.
    entries: Vec<UsageEntry>,
    costs: Vec<f64>,
    kept: Maxima,
}

impl TranscriptFeed {
    /// `kept` comes from outside the transcripts (the original monitor's
    /// `max_tokens`; the store's maxima later).
    pub fn new(ctx: Arc<Context>, kept: Maxima) -> TranscriptFeed {
        TranscriptFeed {
            ctx,
            prices: None,
            detector: None,
            entries: Vec::new(),
            costs: Vec::new(),
            kept,
        }
    }
}

impl UsageFeed for TranscriptFeed {
    fn update(&mut self, force: bool) -> Result<bool> {
        let (roots, changed) = poll_changes(&self.ctx, &mut self.detector, force)?;
        if !force && !changed {
            return Ok(false);
        }
        if force || self.prices.is_none() {
            self.prices = Some(usage::price_table(&self.ctx)?);
        }
        let started = std::time::Instant::now();
        let (entries, costs) = if roots.projects_dirs.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let loaded = usage::load(&self.ctx, None)?;
            let mut entries = loaded.entries;
            // Stable: reading order breaks ties, as `Loaded::by_time`.
            entries.sort_by_key(|e| e.timestamp);
            let costs = match self.prices.as_ref() {
                Some(t) => {
                    let mut resolver = PriceResolver::new(t);
                    usage::costs(&entries, self.ctx.mode, &mut resolver)
                        .into_iter()
                        .map(|c| c.usd)
                        .collect()
                }
                None => vec![0.0; entries.len()],
            };
            (entries, costs)
        };
        tracing::info!(
            entries = entries.len(),
            ms = started.elapsed().as_millis() as u64,
            "re-read transcripts"
        );
        self.entries = entries;
        self.costs = costs;
        Ok(true)
    }

    fn blocks(&self, now: Timestamp) -> (Vec<Block>, Vec<ModelShare>) {
        let timed = self
            .entries
            .iter()
            .zip(&self.costs)
            .map(|(entry, &cost)| Timed { entry, cost });
        let blocks = blocks::identify_blocks(timed, now, blocks::window_length(5.0));
        let models = match blocks.last().filter(|b| b.is_active) {
            Some(active) => {
                // The active window is the last one: its entries are the tail
                // from its first entry on.
                let first = active.first_entry.unwrap_or(active.start);
                let from = self.entries.partition_point(|e| e.timestamp < first);
                data::model_shares(
                    self.entries[from..]
                        .iter()
                        .zip(self.costs[from..].iter().copied()),
                )
            }
            None => Vec::new(),
        };
        (blocks, models)
    }

    fn kept_maxima(&self) -> Maxima {
        self.kept
    }
}

/// Whether anything under the data roots changed since the last poll (always
/// true the first time and after `force`). Roots are resolved on every poll
/// (a few stats): Claude Code may create its directory while the dashboard waits.
fn poll_changes(
    ctx: &Context,
    detector: &mut Option<ChangeDetector>,
    force: bool,
) -> Result<(crate::ingest::discover::Roots, bool)> {
    let roots = ctx.roots.resolve_required().map_err(anyhow::Error::msg)?;
    let same_roots = detector
        .as_ref()
        .is_some_and(|d| d.roots() == roots.projects_dirs.as_slice());
    if force || !same_roots {
        *detector = Some(ChangeDetector::new(roots.projects_dirs.clone()));
    }
    let changed = match detector.as_mut() {
        Some(d) => d.poll(),
        None => true,
    };
    Ok((roots, changed))
}

/// The history store behind the dashboard: a change on disk costs an
/// incremental ingest of the new bytes, and the windows come from the store's
/// kept aggregates (a tick with nothing new reads nothing).
pub struct StoreFeed {
    ctx: Arc<Context>,
    store: Option<crate::store::Store>,
    detector: Option<ChangeDetector>,
    blocks: Vec<Block>,
    /// The active window's entries with their costs, for model shares.
    active: Vec<(UsageEntry, f64)>,
    kept: Maxima,
    stored: Maxima,
}

impl StoreFeed {
    pub fn new(ctx: Arc<Context>, kept: Maxima) -> StoreFeed {
        StoreFeed {
            ctx,
            store: None,
            detector: None,
            blocks: Vec::new(),
            active: Vec::new(),
            kept,
            stored: Maxima::default(),
        }
    }
}

impl UsageFeed for StoreFeed {
    fn update(&mut self, force: bool) -> Result<bool> {
        let (_, changed) = poll_changes(&self.ctx, &mut self.detector, force)?;
        if !force && !changed && self.store.is_some() {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        // `--recalculate` re-reads everything on the first load only; `r`
        // (a forced refresh later) does it again on request.
        let recalculate = force && (self.store.is_some() || self.ctx.recalculate);
        let sources = if recalculate == self.ctx.recalculate {
            usage::open(&self.ctx)?
        } else {
            let mut ctx = (*self.ctx).clone();
            ctx.recalculate = recalculate;
            usage::open(&ctx)?
        };
        let Some(store) = sources.store else {
            bail!("the history store is off (--no-store)");
        };
        let now = Timestamp::now();
        self.blocks = store.blocks(self.ctx.mode, now)?;
        self.active = match self.blocks.iter().rev().find(|b| !b.is_gap) {
            Some(last) => {
                let prices = usage::price_table(&self.ctx)?;
                let mut resolver = PriceResolver::new(&prices);
                let first = last.first_entry.unwrap_or(last.start);
                store
                    .entries_since(first)?
                    .into_iter()
                    .map(|e| {
                        let c = usage::cost_of(&e, self.ctx.mode, &mut resolver).usd;
                        (e, c)
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let stats = store.stats()?;
        self.stored = Maxima {
            tokens: stats.max_block_tokens,
            cost_usd: stats.max_block_cost,
        };
        self.store = Some(store);
        tracing::info!(ms = started.elapsed().as_millis() as u64, "store sync");
        Ok(true)
    }

    fn blocks(&self, now: Timestamp) -> (Vec<Block>, Vec<ModelShare>) {
        let mut blocks = self.blocks.clone();
        blocks::judge_activity(
            &mut blocks,
            now,
            blocks::window_length(crate::store::STORED_WINDOW_HOURS),
        );
        let models = match blocks.last().filter(|b| b.is_active) {
            Some(_) => data::model_shares(self.active.iter().map(|(e, c)| (e, *c))),
            None => Vec::new(),
        };
        (blocks, models)
    }

    fn kept_maxima(&self) -> Maxima {
        // The store's maxima include the active window; the dashboard's
        // maximum is of completed ones, so only older stored maxima count
        // beyond what the blocks show.
        self.kept
    }

    fn claude(&self, now: Timestamp) -> ClaudeExtras {
        let Some(store) = &self.store else {
            return ClaudeExtras::default();
        };
        let official = crate::claude::latest_official_limits(store, now)
            .unwrap_or_else(|e| {
                tracing::warn!("official limits: {e}");
                None
            })
            .map(|s| s.limits);
        let activity = match store.has_activity() {
            Ok(true) => crate::claude::live_sessions(store, now)
                .map_err(|e| tracing::warn!("activity: {e}"))
                .ok(),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!("activity: {e}");
                None
            }
        };
        ClaudeExtras { official, activity }
    }
}

/// The original monitor's `<base>/config.json` `max_tokens`: the largest
/// window it had seen, kept as a floor for the all-time maximum.
pub fn original_monitor_max_tokens(base_dir: &std::path::Path) -> Option<u64> {
    let path: PathBuf = base_dir.join("config.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let n = v.get("max_tokens")?;
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| x as u64)
    })
}
