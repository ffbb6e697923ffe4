//! The feeds behind every face: "bring the usage up to date, then give me
//! the windows". [`StoreFeed`] syncs the history store incrementally;
//! [`TranscriptFeed`] re-reads every transcript (`--no-store`). The
//! dashboard, the daemon and `csm status` all compute from one of them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use jiff::Timestamp;

use super::Settings;
use super::changes::ChangeDetector;
use super::load;
use super::overview::{self, CurrentDetail};
use crate::blocks::{self, Block, Timed};
use crate::domain::UsageEntry;
use crate::period::Maxima;
use crate::pricing::{PriceResolver, PriceTable};
use crate::store::{Store, StoreError};

/// The usage behind the in-process source: the seam the store plugs into.
pub trait UsageFeed: Send {
    /// Brings the usage up to date as of `now`; true when anything changed
    /// (always true the first time and after `force`).
    fn update(&mut self, force: bool, now: Timestamp) -> Result<bool>;

    /// Every block of the history at `now` (sorted, gaps included, activity
    /// computed at `now`) and the detail of the current one.
    fn blocks(&self, now: Timestamp) -> (Vec<Block>, CurrentDetail);

    /// Where csm looked when no Claude Code data folder exists, and what to do.
    fn notice(&self) -> Option<String> {
        None
    }

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
    /// Claude Code's own rate limits from the status line; `None` hides the pane.
    pub official: Option<overview::OfficialLimits>,
    /// Live Claude Code sessions from hooks; `None` hides the pane.
    pub activity: Option<Vec<overview::ActivityRow>>,
    /// Alerts sent since the current (or last) window started, newest first.
    pub alerts: Vec<overview::AlertRow>,
}

/// Reads every transcript again whenever any file's size, mtime or inode
/// changed. A poll with nothing new costs a few `stat` calls
/// ([`ChangeDetector`]); a change costs a full parse of the history — until
/// the store makes that part incremental.
pub struct TranscriptFeed {
    ctx: Arc<Settings>,
    prices: Option<PriceTable>,
    detector: Option<ChangeDetector>,
    /// Entries sorted by time with their cost.
    entries: Vec<UsageEntry>,
    costs: Vec<f64>,
    kept: Maxima,
    notice: Option<String>,
}

impl TranscriptFeed {
    /// `kept` comes from outside the transcripts (the original monitor's
    /// `max_tokens`; the store's maxima later).
    pub fn new(ctx: Arc<Settings>, kept: Maxima) -> TranscriptFeed {
        TranscriptFeed {
            ctx,
            prices: None,
            detector: None,
            entries: Vec::new(),
            costs: Vec::new(),
            kept,
            notice: None,
        }
    }
}

impl UsageFeed for TranscriptFeed {
    fn update(&mut self, force: bool, _now: Timestamp) -> Result<bool> {
        let (roots, changed) = poll_changes(&self.ctx, &mut self.detector, force)?;
        self.notice = no_data_notice(&roots, false);
        if !force && !changed {
            return Ok(false);
        }
        if force || self.prices.is_none() {
            self.prices = Some(load::price_table(&self.ctx.base_dir)?);
        }
        let started = std::time::Instant::now();
        let (entries, costs) = if roots.projects_dirs.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let loaded = load::load(&self.ctx, None)?;
            let mut entries = loaded.entries;
            // Stable: reading order breaks ties, as `Loaded::by_time`.
            entries.sort_by_key(|e| e.timestamp);
            let costs = match self.prices.as_ref() {
                Some(t) => {
                    let mut resolver = PriceResolver::new(t);
                    crate::pricing::costs(&entries, self.ctx.mode, &mut resolver)
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

    fn blocks(&self, now: Timestamp) -> (Vec<Block>, CurrentDetail) {
        let timed = self
            .entries
            .iter()
            .zip(&self.costs)
            .map(|(entry, &cost)| Timed { entry, cost });
        let blocks = blocks::identify_blocks(
            timed,
            blocks::window_length(crate::store::STORED_WINDOW_HOURS),
        );
        let detail = match overview::tail_from(&blocks, now) {
            Some(first) => {
                let from = self.entries.partition_point(|e| e.timestamp < first);
                overview::current_detail(
                    &blocks,
                    self.entries[from..]
                        .iter()
                        .zip(self.costs[from..].iter().copied()),
                    now,
                )
            }
            None => CurrentDetail::default(),
        };
        (blocks, detail)
    }

    fn kept_maxima(&self) -> Maxima {
        self.kept
    }

    fn notice(&self) -> Option<String> {
        self.notice.clone()
    }
}

/// The windows and "the figures now" of a feed at `now`, Claude Code's
/// panes and the no-data notice included: what the dashboard, the daemon's
/// snapshot and `csm status` all show.
pub fn figures(
    feed: &dyn UsageFeed,
    s: &Settings,
    now: Timestamp,
) -> Result<(Vec<Block>, overview::DashboardData), jiff::Error> {
    let (blocks, detail) = feed.blocks(now);
    let mut d = overview::build(overview::Inputs {
        blocks: &blocks,
        detail,
        kept: feed.kept_maxima(),
        window_length: blocks::window_length(crate::store::STORED_WINDOW_HOURS),
        now,
        tz: s.tz(),
        settings: overview::DashboardSettings::from_config(&s.config),
    })?;
    feed.claude(now).apply(&mut d);
    d.notice = feed.notice();
    Ok((blocks, d))
}

impl ClaudeExtras {
    /// Puts the panes into `d`.
    pub fn apply(self, d: &mut overview::DashboardData) {
        d.official = self.official;
        d.activity = self.activity;
        d.alerts = self.alerts;
    }

    /// Whether `d` already shows these panes.
    pub fn shown_in(&self, d: &overview::DashboardData) -> bool {
        d.official == self.official && d.activity == self.activity && d.alerts == self.alerts
    }
}

/// What the screen says when no data root exists: where csm looked and what
/// to do; with stored history, that what is shown is history.
pub fn no_data_notice(roots: &crate::ingest::discover::Roots, has_history: bool) -> Option<String> {
    if !roots.projects_dirs.is_empty() {
        return None;
    }
    let why = roots
        .explanation
        .clone()
        .unwrap_or_else(|| "No Claude Code data folder found.".into());
    Some(if has_history {
        format!("{why} Showing stored history only: the folder is gone or was moved.")
    } else {
        format!(
            "{why} Use Claude Code once, or point csm at its folder with --claude-dir DIR or CLAUDE_CONFIG_DIR."
        )
    })
}

/// Whether anything under the data roots changed since the last poll (always
/// true the first time and after `force`). Roots are resolved on every poll
/// (a few stats): Claude Code may create its directory while the dashboard waits.
fn poll_changes(
    ctx: &Settings,
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
    ctx: Arc<Settings>,
    store: Option<crate::store::Store>,
    detector: Option<ChangeDetector>,
    blocks: Vec<Block>,
    /// Entries since [`overview::tail_from`] with their costs: the current
    /// window's model shares and pace.
    active: Vec<(UsageEntry, f64)>,
    kept: Maxima,
    /// The store's `data_version` after the last reload.
    version: Option<i64>,
    notice: Option<String>,
    /// The alerts last read, with the store's `data_version` and the window
    /// start they were read for: a refresh re-reads them only when another
    /// process wrote the store or the window changed (a dashboard refreshes
    /// every 2 s all day).
    alerts: std::sync::Mutex<Option<(i64, Timestamp, Vec<overview::AlertRow>)>>,
}

impl StoreFeed {
    /// A feed that opens the store on its first update; `kept` is what it reports as its kept maxima (e.g. the original monitor's `max_tokens`).
    pub fn new(ctx: Arc<Settings>, kept: Maxima) -> StoreFeed {
        StoreFeed {
            ctx,
            store: None,
            detector: None,
            blocks: Vec::new(),
            active: Vec::new(),
            kept,
            version: None,
            notice: None,
            alerts: std::sync::Mutex::new(None),
        }
    }

    /// Whether another process wrote the store since the last reload (a
    /// report command that imported hook events, say).
    pub fn changed_elsewhere(&self) -> bool {
        match (&self.store, self.version) {
            (Some(s), Some(v)) => s.data_version().is_ok_and(|now| now != v),
            _ => false,
        }
    }

    /// Brings the store up to date with the transcripts (an incremental
    /// ingest unless `recalculate`) and reloads the windows: what the daemon
    /// does on every file-change event.
    pub fn reload(&mut self, recalculate: bool, now: Timestamp) -> Result<()> {
        let started = std::time::Instant::now();
        let sources = if recalculate == self.ctx.recalculate {
            load::open(&self.ctx)?
        } else {
            let mut ctx = (*self.ctx).clone();
            ctx.recalculate = recalculate;
            load::open(&ctx)?
        };
        let Some(store) = sources.store else {
            bail!("the history store is off (--no-store)");
        };
        self.blocks = store.blocks(self.ctx.mode)?;
        self.active = match overview::tail_from(&self.blocks, now) {
            Some(first) => {
                let prices = load::price_table(&self.ctx.base_dir)?;
                let mut resolver = PriceResolver::new(&prices);
                store
                    .entries_since(first)?
                    .into_iter()
                    .map(|e| {
                        let c = crate::pricing::cost_of(&e, self.ctx.mode, &mut resolver).usd;
                        (e, c)
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        self.version = store.data_version().ok();
        let roots = self.ctx.roots.resolve();
        self.notice = no_data_notice(&roots, !self.blocks.is_empty());
        self.store = Some(store);
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "store sync");
        Ok(())
    }
}

impl StoreFeed {
    /// The alerts sent since `since`, newest first (cached while the store
    /// is unchanged).
    fn window_alerts(&self, store: &Store, since: Timestamp) -> Vec<overview::AlertRow> {
        let version = store.data_version().ok();
        let mut cache = self.alerts.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(v), Some((cv, cs, rows))) = (version, cache.as_ref())
            && *cv == v
            && *cs == since
        {
            return rows.clone();
        }
        let rows: Vec<overview::AlertRow> = store
            .recent_alerts(ALERTS_SHOWN)
            .map_err(|e| tracing::warn!("alerts: {e}"))
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.sent_at >= since)
            .filter(|a| super::accounts::alert_is_of(&a.key, self.ctx.account.as_deref()))
            .map(|a| overview::AlertRow {
                severity: overview::Severity::of(&a.rule, &a.key),
                sent_at: a.sent_at,
                title: a.title,
            })
            .collect();
        *cache = version.map(|v| (v, since, rows.clone()));
        rows
    }
}

impl UsageFeed for StoreFeed {
    fn update(&mut self, force: bool, now: Timestamp) -> Result<bool> {
        let (_, changed) = poll_changes(&self.ctx, &mut self.detector, force)?;
        let spooled = crate::ingest::claude::spool::pending(&self.ctx.base_dir);
        if !force && !changed && !spooled && self.store.is_some() {
            return Ok(false);
        }
        // `--recalculate` re-reads everything on the first load only; `r`
        // (a forced refresh later) does it again on request.
        let recalculate = force && (self.store.is_some() || self.ctx.recalculate);
        self.reload(recalculate, now)?;
        Ok(true)
    }

    fn blocks(&self, now: Timestamp) -> (Vec<Block>, CurrentDetail) {
        let blocks = self.blocks.clone();
        let detail =
            overview::current_detail(&blocks, self.active.iter().map(|(e, c)| (e, *c)), now);
        (blocks, detail)
    }

    fn notice(&self) -> Option<String> {
        self.notice.clone()
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
        let official = latest_official_limits(store, now)
            .unwrap_or_else(|e| {
                tracing::warn!("official limits: {e}");
                None
            })
            .map(|s| s.limits);
        let activity = match store.has_activity() {
            Ok(true) => live_sessions(store, now)
                .map_err(|e| tracing::warn!("activity: {e}"))
                .ok(),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!("activity: {e}");
                None
            }
        };
        let alerts = match overview::tail_from(&self.blocks, now) {
            Some(since) => self.window_alerts(store, since),
            None => Vec::new(),
        };
        ClaudeExtras {
            official,
            activity,
            alerts,
        }
    }
}

/// How many of the window's alerts the dashboard lists at most.
const ALERTS_SHOWN: usize = 8;

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

/// Captures older than this are not shown at all (not even as stale): the
/// weekly window they describe has reset since.
pub const SHOW_LIMITS_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 7);

/// The latest official-limits capture at `now` with its age and staleness;
/// `None` when there is none from the last week.
pub fn latest_official_limits(
    store: &Store,
    now: Timestamp,
) -> Result<Option<crate::ingest::claude::limits::OfficialStatus>, StoreError> {
    Ok(store
        .latest_limits()?
        .filter(|l| now.duration_since(l.captured_at) <= SHOW_LIMITS_FOR)
        .map(|l| crate::ingest::claude::limits::OfficialStatus::at(l, now)))
}

/// The Claude Code sessions live at `now` (ACTIVE, WAITING FOR YOU, IDLE),
/// waiting ones first.
pub fn live_sessions(
    store: &Store,
    now: Timestamp,
) -> Result<Vec<crate::ingest::claude::activity::LiveSession>, StoreError> {
    use crate::ingest::claude::activity;
    let since = now
        .checked_sub(activity::GONE_AFTER)
        .unwrap_or(Timestamp::MIN);
    let events = store.activity_since(since)?;
    Ok(activity::live_sessions_from(&events, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::claude::activity::{self, ActivityState};
    use crate::ingest::claude::limits::{OfficialBar, OfficialLimits};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn what_the_snapshot_and_status_read() {
        let mut store = Store::open_in_memory().unwrap();
        let now = t("2026-11-20T16:40:00Z");
        assert_eq!(latest_official_limits(&store, now).unwrap(), None);
        assert_eq!(live_sessions(&store, now).unwrap(), vec![]);
        let capture = OfficialLimits {
            five_hour: Some(OfficialBar {
                used_percent: 42.0,
                resets_at: Some(t("2026-11-20T19:00:00Z")),
            }),
            seven_day: Some(OfficialBar {
                used_percent: 63.0,
                resets_at: Some(t("2026-11-23T08:00:00Z")),
            }),
            captured_at: now,
        };
        store.record_limits(&capture, Some("s")).unwrap();
        let s = latest_official_limits(&store, t("2026-11-20T16:51:00Z"))
            .unwrap()
            .unwrap();
        assert!(s.stale);
        assert_eq!(s.age_seconds, 660);
        insta::assert_json_snapshot!(s, @r#"
        {
          "five_hour": {
            "used_percent": 42.0,
            "resets_at": "2026-11-20T19:00:00Z"
          },
          "seven_day": {
            "used_percent": 63.0,
            "resets_at": "2026-11-23T08:00:00Z"
          },
          "captured_at": "2026-11-20T16:40:00Z",
          "age_seconds": 660,
          "stale": true
        }
        "#);
        // A week on, the capture describes windows that have reset.
        assert_eq!(
            latest_official_limits(&store, t("2026-11-27T16:41:00Z")).unwrap(),
            None
        );

        let input = br#"{"session_id":"s1","hook_event_name":"Stop","cwd":"/w/api"}"#;
        let e = activity::parse_hook(input, t("2026-11-20T16:38:00Z")).unwrap();
        store.record_activity(&e).unwrap();
        let live = live_sessions(&store, now).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].project, "api");
        assert_eq!(live[0].state, ActivityState::WaitingForYou);
        // Five hours later the session has gone.
        assert!(
            live_sessions(&store, t("2026-11-20T21:39:00Z"))
                .unwrap()
                .is_empty()
        );
    }
}
