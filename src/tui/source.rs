//! Where the dashboard's data comes from: [`DataSource`] is what the screen
//! talks to — the in-process source over an engine feed, or the daemon's
//! `monitor_data.json` snapshot — and [`AutoSource`] switches between them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use jiff::Timestamp;

use crate::engine::Settings;
use crate::engine::feed::{UsageFeed, figures};
use crate::engine::overview::DashboardData;
use crate::notify::hook::AlertHook;

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

    /// The account shown, when the source covers several.
    fn account(&self) -> Option<String> {
        None
    }

    /// Shows the next account (`a`); a source of one account ignores it.
    fn next_account(&mut self) {}
}

/// Several accounts, one shown at a time: every account is refreshed (so
/// each one's alerts are evaluated while another is on screen) and the
/// shown one's data goes to the screen.
pub struct AccountsSource {
    accounts: Vec<ShownAccount>,
    shown: usize,
    /// The shown account changed since the last refresh: its data goes to
    /// the screen even when it did not change.
    switched: bool,
}

struct ShownAccount {
    name: String,
    source: Box<dyn DataSource>,
    last: Option<DashboardData>,
}

impl AccountsSource {
    /// `accounts` are names with their sources, the first shown first.
    pub fn new(accounts: Vec<(String, Box<dyn DataSource>)>) -> AccountsSource {
        AccountsSource {
            accounts: accounts
                .into_iter()
                .map(|(name, source)| ShownAccount {
                    name,
                    source,
                    last: None,
                })
                .collect(),
            shown: 0,
            switched: false,
        }
    }
}

impl DataSource for AccountsSource {
    fn label(&self) -> String {
        self.accounts
            .get(self.shown)
            .map_or_else(String::new, |a| a.source.label())
    }

    fn refresh(&mut self, now: Timestamp) -> Result<Option<DashboardData>> {
        let mut shown = None;
        for (i, a) in self.accounts.iter_mut().enumerate() {
            match a.source.refresh(now) {
                Ok(Some(d)) => {
                    a.last = Some(d.clone());
                    if i == self.shown {
                        shown = Some(d);
                    }
                }
                Ok(None) => {}
                Err(e) if i == self.shown => return Err(e),
                Err(e) => tracing::warn!(account = a.name, "refresh failed: {e:#}"),
            }
        }
        if std::mem::take(&mut self.switched) && shown.is_none() {
            shown = self.accounts.get(self.shown).and_then(|a| a.last.clone());
        }
        Ok(shown)
    }

    fn recalculate(&mut self) {
        for a in &mut self.accounts {
            a.source.recalculate();
            a.last = None;
        }
    }

    fn poll_interval(&self) -> Option<std::time::Duration> {
        self.accounts
            .iter()
            .filter_map(|a| a.source.poll_interval())
            .min()
    }

    fn account(&self) -> Option<String> {
        self.accounts.get(self.shown).map(|a| a.name.clone())
    }

    fn next_account(&mut self) {
        if !self.accounts.is_empty() {
            self.shown = (self.shown + 1) % self.accounts.len();
            self.switched = true;
        }
    }
}

/// How the dashboard names data it computes itself.
pub const IN_PROCESS_LABEL: &str = "live from transcripts";

/// Dashboard data computed in this process from a [`UsageFeed`].
pub struct InProcessSource<F: UsageFeed> {
    feed: F,
    ctx: Arc<Settings>,
    last: Option<DashboardData>,
    force: bool,
    alerts: Option<AlertHook>,
}

impl<F: UsageFeed> InProcessSource<F> {
    /// A source over `feed` with the dashboard settings taken from `ctx`'s config.
    pub fn new(feed: F, ctx: Arc<Settings>) -> Self {
        InProcessSource {
            feed,
            ctx,
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
        let data = match &self.last {
            // Only the Claude Code panes can have changed.
            Some(last) if !changed && !expired => {
                let extras = self.feed.claude(now);
                if extras.shown_in(last) {
                    return Ok(None);
                }
                let mut data = last.clone();
                extras.apply(&mut data);
                data
            }
            _ => {
                let (blocks, data) = figures(&self.feed, &self.ctx, now)?;
                if let Some(h) = self.alerts.as_mut() {
                    h.saw(&blocks);
                    h.limit = data.limit.tokens;
                }
                data
            }
        };
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

/// The daemon's `monitor_data.json`: a refresh costs one `stat` unless the
/// file changed (the daemon replaces it atomically, so a read never sees a
/// partial file).
pub struct SnapshotSource {
    path: PathBuf,
    /// The account whose entry to show, in a snapshot of several.
    account: Option<String>,
    stamp: Option<(u64, std::time::SystemTime, u64)>,
    version: Option<String>,
    last: Option<DashboardData>,
}

/// How often the snapshot file is checked: the dashboard follows the daemon
/// within a quarter of a second.
pub const SNAPSHOT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

impl SnapshotSource {
    /// A source reading the snapshot file at `path`; nothing is read until the first refresh.
    pub fn new(path: PathBuf) -> SnapshotSource {
        SnapshotSource {
            path,
            account: None,
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
        let entry = self.account.as_deref().and_then(|name| {
            snap.accounts
                .iter()
                .find(|e| e.account.as_ref().is_some_and(|a| a.name == name))
        });
        let data = entry.unwrap_or(&snap).to_dashboard();
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
    /// A source for the daemon of `base_dir`, falling back to `local` refreshed at most once every `local_every`; probes for a daemon at once.
    pub fn new(
        base_dir: PathBuf,
        local: Box<dyn DataSource>,
        local_every: std::time::Duration,
    ) -> AutoSource {
        AutoSource::for_account(base_dir, local, local_every, None)
    }

    /// An [`AutoSource`] that shows `account`'s entry of the daemon's
    /// snapshot when the daemon covers several accounts.
    pub fn for_account(
        base_dir: PathBuf,
        local: Box<dyn DataSource>,
        local_every: std::time::Duration,
        account: Option<String>,
    ) -> AutoSource {
        let mut snapshot = SnapshotSource::new(base_dir.join(crate::snapshot::FILE_NAME));
        snapshot.account = account;
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

    /// Whether data currently comes from the daemon's snapshot rather than the local source.
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
