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
use super::data::{self, CurrentDetail, DashboardData, DashboardSettings, Inputs};
use crate::app::Context;
use crate::blocks::{self, Block, Timed};
use crate::commands::usage;
use crate::domain::UsageEntry;
use crate::period::Maxima;
use crate::pricing::{PriceResolver, PriceTable};

/// Something that can produce dashboard data.
pub trait DataSource: Send {
    /// Shown in the title: `live from transcripts`, `from the daemon v0.1.0`.
    fn label(&self) -> String;

    /// The data at `now` when anything changed since the last call (new usage,
    /// or `now` passed [`DashboardData::valid_until`]); `None` when the last
    /// data still holds. The first call always returns data.
    fn refresh(&mut self, now: Timestamp) -> Result<Option<DashboardData>>;

    /// Drop every cache: the next refresh re-reads everything (`r`, `--recalculate`).
    fn recalculate(&mut self);

    /// How often [`DataSource::refresh`] should be called when that must be
    /// more often than the dashboard's `--refresh` (a cheap file check).
    fn poll_interval(&self) -> Option<std::time::Duration> {
        None
    }
}

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
    pub official: Option<data::OfficialLimits>,
    pub activity: Option<Vec<data::ActivityRow>>,
    /// Alerts sent since the current (or last) window started, newest first.
    pub alerts: Vec<data::AlertRow>,
}

/// How the dashboard names data it computes itself.
pub const IN_PROCESS_LABEL: &str = "live from transcripts";

/// Dashboard data computed in this process from a [`UsageFeed`].
pub struct InProcessSource<F: UsageFeed> {
    feed: F,
    ctx: Arc<Context>,
    settings: DashboardSettings,
    window_length: SignedDuration,
    last: Option<DashboardData>,
    force: bool,
    alerts: Option<AlertHook>,
}

/// The dashboard's share of notifications: while no daemon runs, it
/// evaluates the rules after every refresh and sends what is due (the store's
/// claims keep it from repeating what a daemon, or an earlier run, sent).
pub struct AlertHook {
    notifier: crate::notify::Notifier,
    /// True while a daemon runs (it sends instead).
    daemon_running: Box<dyn Fn() -> bool + Send>,
    /// The newest blocks seen (the rules need only the last few).
    tail: Vec<Block>,
    limit: Option<u64>,
    failures: u32,
    last_error: Option<String>,
}

impl AlertHook {
    pub fn new(
        notifier: crate::notify::Notifier,
        daemon_running: impl Fn() -> bool + Send + 'static,
    ) -> AlertHook {
        AlertHook {
            notifier,
            daemon_running: Box::new(daemon_running),
            tail: Vec::new(),
            limit: None,
            failures: 0,
            last_error: None,
        }
    }

    fn saw(&mut self, blocks: &[Block]) {
        // The current window, a gap and a window dated ahead of now at most.
        let from = blocks.len().saturating_sub(4);
        self.tail = blocks[from..].to_vec();
    }

    fn send(&mut self, now: Timestamp) {
        if (self.daemon_running)() {
            return;
        }
        let input = crate::notify::AlertInput::from_blocks(&self.tail, self.limit, now)
            .with_official(self.notifier.official_limits())
            .with_source_failures(self.failures, self.last_error.clone());
        self.notifier.evaluate_and_send(&input, now);
    }
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
            alerts: None,
        }
    }

    /// Evaluate and send alerts after every refresh (see [`AlertHook`]).
    pub fn with_alerts(mut self, hook: AlertHook) -> Self {
        self.alerts = Some(hook);
        self
    }

    fn compute(&mut self, now: Timestamp, changed: bool) -> Result<Option<DashboardData>> {
        let expired = self
            .last
            .as_ref()
            .is_none_or(|d| d.valid_until.is_some_and(|t| now >= t));
        let extras = self.feed.claude(now);
        let mut data = match &self.last {
            // Only the Claude Code panes can have changed.
            Some(last) if !changed && !expired => {
                if last.official == extras.official
                    && last.activity == extras.activity
                    && last.alerts == extras.alerts
                {
                    return Ok(None);
                }
                last.clone()
            }
            _ => {
                let (blocks, detail) = self.feed.blocks(now);
                if let Some(h) = self.alerts.as_mut() {
                    h.saw(&blocks);
                }
                let mut data = data::build(Inputs {
                    blocks: &blocks,
                    detail,
                    kept: self.feed.kept_maxima(),
                    window_length: self.window_length,
                    now,
                    tz: self.ctx.tz(),
                    settings: self.settings,
                })?;
                if let Some(h) = self.alerts.as_mut() {
                    h.limit = data.limit.tokens;
                }
                data.notice = self.feed.notice();
                data
            }
        };
        data.official = extras.official;
        data.activity = extras.activity;
        data.alerts = extras.alerts;
        if self.last.as_ref() == Some(&data) {
            // Same picture (a file was touched without new usage): nothing to redraw.
            return Ok(None);
        }
        self.last = Some(data.clone());
        Ok(Some(data))
    }
}

impl<F: UsageFeed> DataSource for InProcessSource<F> {
    fn label(&self) -> String {
        IN_PROCESS_LABEL.into()
    }

    fn refresh(&mut self, now: Timestamp) -> Result<Option<DashboardData>> {
        let force = std::mem::take(&mut self.force);
        let result = match self.feed.update(force, now) {
            Ok(changed) => {
                if let Some(h) = self.alerts.as_mut() {
                    h.failures = 0;
                    h.last_error = None;
                }
                self.compute(now, changed)
            }
            Err(e) => {
                if let Some(h) = self.alerts.as_mut() {
                    h.failures = h.failures.saturating_add(1);
                    h.last_error = Some(format!("{e:#}"));
                }
                Err(e)
            }
        };
        // Every tick, changed or not: the rules are about time passing too.
        if let Some(h) = self.alerts.as_mut() {
            h.send(now);
        }
        result
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
    notice: Option<String>,
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

    fn blocks(&self, now: Timestamp) -> (Vec<Block>, CurrentDetail) {
        let timed = self
            .entries
            .iter()
            .zip(&self.costs)
            .map(|(entry, &cost)| Timed { entry, cost });
        let blocks = blocks::identify_blocks(timed, now, blocks::window_length(5.0));
        let detail = match data::tail_from(&blocks, now) {
            Some(first) => {
                let from = self.entries.partition_point(|e| e.timestamp < first);
                data::current_detail(
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

/// What the screen says when no data root exists: where csm looked and what
/// to do; with stored history, that what is shown is history.
fn no_data_notice(roots: &crate::ingest::discover::Roots, has_history: bool) -> Option<String> {
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
    /// Entries since [`data::tail_from`] with their costs: the current
    /// window's model shares and pace.
    active: Vec<(UsageEntry, f64)>,
    kept: Maxima,
    /// The store's `data_version` after the last reload.
    version: Option<i64>,
    notice: Option<String>,
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
            version: None,
            notice: None,
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
            usage::open(&self.ctx)?
        } else {
            let mut ctx = (*self.ctx).clone();
            ctx.recalculate = recalculate;
            usage::open(&ctx)?
        };
        let Some(store) = sources.store else {
            bail!("the history store is off (--no-store)");
        };
        self.blocks = store.blocks(self.ctx.mode, now)?;
        self.active = match data::tail_from(&self.blocks, now) {
            Some(first) => {
                let prices = usage::price_table(&self.ctx)?;
                let mut resolver = PriceResolver::new(&prices);
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
        self.version = store.data_version().ok();
        let roots = self.ctx.roots.resolve();
        self.notice = no_data_notice(&roots, !self.blocks.is_empty());
        self.store = Some(store);
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "store sync");
        Ok(())
    }
}

impl UsageFeed for StoreFeed {
    fn update(&mut self, force: bool, now: Timestamp) -> Result<bool> {
        let (_, changed) = poll_changes(&self.ctx, &mut self.detector, force)?;
        let spooled = crate::claude::spool::pending(&self.ctx.base_dir);
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
        let mut blocks = self.blocks.clone();
        blocks::judge_activity(
            &mut blocks,
            now,
            blocks::window_length(crate::store::STORED_WINDOW_HOURS),
        );
        let detail = data::current_detail(&blocks, self.active.iter().map(|(e, c)| (e, *c)), now);
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
        let since = data::tail_from(&self.blocks, now);
        let alerts = match since {
            Some(since) => store
                .recent_alerts(ALERTS_SHOWN)
                .map_err(|e| tracing::warn!("alerts: {e}"))
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.sent_at >= since)
                .map(|a| data::AlertRow {
                    severity: data::Severity::of(&a.rule, &a.key),
                    sent_at: a.sent_at,
                    title: a.title,
                })
                .collect(),
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

/// The daemon's `monitor_data.json`: a refresh costs one `stat` unless the
/// file changed (the daemon replaces it atomically, so a read never sees a
/// partial file).
pub struct SnapshotSource {
    path: PathBuf,
    stamp: Option<(u64, std::time::SystemTime, u64)>,
    version: Option<String>,
    last: Option<DashboardData>,
}

/// How often the snapshot file is checked: the dashboard follows the daemon
/// within a quarter of a second.
pub const SNAPSHOT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

impl SnapshotSource {
    pub fn new(path: PathBuf) -> SnapshotSource {
        SnapshotSource {
            path,
            stamp: None,
            version: None,
            last: None,
        }
    }

    fn stamp(&self) -> Option<(u64, std::time::SystemTime, u64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(&m);
        #[cfg(not(unix))]
        let ino = 0;
        Some((m.len(), m.modified().ok()?, ino))
    }
}

impl DataSource for SnapshotSource {
    fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("from the daemon v{v}"),
            None => "from the daemon".into(),
        }
    }

    fn refresh(&mut self, _now: Timestamp) -> Result<Option<DashboardData>> {
        let stamp = self.stamp();
        if stamp.is_some() && stamp == self.stamp && self.last.is_some() {
            return Ok(None);
        }
        let snap = crate::snapshot::read(&self.path)?;
        self.stamp = stamp;
        self.version = snap.daemon_version.clone();
        let data = snap.to_dashboard();
        if self.last.as_ref() == Some(&data) {
            return Ok(None);
        }
        self.last = Some(data.clone());
        Ok(Some(data))
    }

    fn recalculate(&mut self) {
        self.stamp = None;
        self.last = None;
    }

    fn poll_interval(&self) -> Option<std::time::Duration> {
        Some(SNAPSHOT_POLL)
    }
}

/// The daemon's snapshot while a daemon owns the base directory, else the
/// in-process source; switches when a daemon starts or stops.
pub struct AutoSource {
    base_dir: PathBuf,
    snapshot: SnapshotSource,
    local: Box<dyn DataSource>,
    local_every: std::time::Duration,
    local_next: std::time::Instant,
    local_last: Option<DashboardData>,
    using_daemon: bool,
    probed_at: Option<std::time::Instant>,
}

/// How often the dashboard asks whether a daemon runs.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl AutoSource {
    pub fn new(
        base_dir: PathBuf,
        local: Box<dyn DataSource>,
        local_every: std::time::Duration,
    ) -> AutoSource {
        let snapshot = SnapshotSource::new(base_dir.join(crate::snapshot::FILE_NAME));
        let mut s = AutoSource {
            base_dir,
            snapshot,
            local,
            local_every,
            local_next: std::time::Instant::now(),
            local_last: None,
            using_daemon: false,
            probed_at: None,
        };
        s.probe();
        s
    }

    fn probe(&mut self) {
        use crate::daemon::instance::{Liveness, probe};
        self.probed_at = Some(std::time::Instant::now());
        let live = matches!(probe(&self.base_dir), Liveness::Running { .. })
            && self.base_dir.join(crate::snapshot::FILE_NAME).exists();
        if live != self.using_daemon {
            tracing::info!(daemon = live, "dashboard data source changed");
            self.using_daemon = live;
            self.snapshot.recalculate();
            self.local_next = std::time::Instant::now();
        }
    }

    pub fn using_daemon(&self) -> bool {
        self.using_daemon
    }
}

impl DataSource for AutoSource {
    fn label(&self) -> String {
        if self.using_daemon {
            self.snapshot.label()
        } else {
            self.local.label()
        }
    }

    fn refresh(&mut self, now: Timestamp) -> Result<Option<DashboardData>> {
        let was_daemon = self.using_daemon;
        if self.probed_at.is_none_or(|t| t.elapsed() >= PROBE_EVERY) {
            self.probe();
        }
        if self.using_daemon {
            match self.snapshot.refresh(now) {
                Ok(d) => return Ok(d),
                Err(e) => {
                    // The daemon stopped between the probe and the read, or
                    // wrote a version this csm cannot read: compute here.
                    tracing::warn!("daemon snapshot unusable: {e:#}");
                    self.using_daemon = false;
                    self.local_next = std::time::Instant::now();
                }
            }
        }
        let switched = was_daemon;
        if !switched && std::time::Instant::now() < self.local_next {
            return Ok(None);
        }
        self.local_next = std::time::Instant::now() + self.local_every;
        let d = self.local.refresh(now)?;
        if let Some(d) = &d {
            self.local_last = Some(d.clone());
            return Ok(Some(d.clone()));
        }
        // Back from the daemon with nothing new here: show this source's last picture.
        Ok(if switched {
            self.local_last.clone()
        } else {
            None
        })
    }

    fn recalculate(&mut self) {
        if self.using_daemon {
            self.snapshot.recalculate();
        } else {
            self.local.recalculate();
        }
    }

    fn poll_interval(&self) -> Option<std::time::Duration> {
        Some(SNAPSHOT_POLL)
    }
}

#[cfg(test)]
mod snapshot_source_tests {
    use super::*;
    use crate::daemon::instance::{Acquired, Instance};

    /// An in-process stand-in: always the same data, counting refreshes.
    struct Fixed(DashboardData, u32);

    impl DataSource for Fixed {
        fn label(&self) -> String {
            IN_PROCESS_LABEL.into()
        }
        fn refresh(&mut self, _now: Timestamp) -> Result<Option<DashboardData>> {
            self.1 += 1;
            Ok((self.1 == 1).then(|| self.0.clone()))
        }
        fn recalculate(&mut self) {}
    }

    fn write(base: &std::path::Path, s: &crate::snapshot::Snapshot) {
        crate::fsutil::write_atomic(
            &base.join(crate::snapshot::FILE_NAME),
            crate::snapshot::to_json(s).as_bytes(),
            0o600,
        )
        .unwrap();
    }

    #[test]
    fn follows_the_daemon_while_it_runs_and_falls_back_when_it_stops() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let (_, local_data, snap) = crate::snapshot::tests::sample();
        let now = snap.last_update;
        let mut local_only = local_data.clone();
        local_only.period.sessions.used = 99;

        // No daemon: in-process.
        let mut s = AutoSource::new(
            base.to_path_buf(),
            Box::new(Fixed(local_only.clone(), 0)),
            std::time::Duration::from_secs(2),
        );
        assert_eq!(s.label(), IN_PROCESS_LABEL);
        assert_eq!(s.refresh(now).unwrap(), Some(local_only.clone()));

        // A daemon takes the base directory and writes its snapshot.
        let Acquired::Acquired(daemon) = Instance::acquire(base).unwrap() else {
            panic!("lock")
        };
        write(base, &snap);
        let mut s = AutoSource::new(
            base.to_path_buf(),
            Box::new(Fixed(local_only.clone(), 0)),
            std::time::Duration::from_secs(2),
        );
        assert!(s.using_daemon());
        assert_eq!(s.refresh(now).unwrap(), Some(snap.to_dashboard()));
        assert_eq!(
            s.label(),
            format!("from the daemon v{}", crate::snapshot::VERSION)
        );
        // Unchanged file: nothing new.
        assert_eq!(s.refresh(now).unwrap(), None);
        // The daemon rewrites it: the next check (every 250 ms) sees it.
        let mut next = snap.clone();
        next.total_sessions_this_month += 1;
        next.period.sessions_used += 1;
        write(base, &next);
        let got = s.refresh(now).unwrap().expect("new data");
        assert_eq!(got.period.sessions.used, snap.period.sessions_used + 1);
        assert_eq!(s.poll_interval(), Some(SNAPSHOT_POLL));

        // The daemon stops: within a probe interval the dashboard computes itself.
        drop(daemon);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let got = loop {
            if let Some(d) = s.refresh(now).unwrap()
                && !s.using_daemon()
            {
                break d;
            }
            assert!(std::time::Instant::now() < deadline, "never fell back");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert_eq!(got, local_only);
        assert_eq!(s.label(), IN_PROCESS_LABEL);
    }
}
