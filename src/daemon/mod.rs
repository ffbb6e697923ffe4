//! `csm daemon run`: the background collector. One per base
//! directory; it wakes on file-change events from the data roots (and polls
//! every `interval_seconds` in case events are lost), ingests the new lines
//! into the history store, recomputes, and atomically rewrites
//! `monitor_data.json` (and its `sync_dirs` copies).
//!
//! The loop is a single thread waiting on one channel: file events, signals
//! and timers all arrive as [`Wake`] values, so a stop request is handled
//! between two updates and never interrupts a write.

pub mod instance;
pub mod logfile;
pub mod service;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use jiff::Timestamp;

use crate::blocks::Block;
use crate::engine::Clock;
use crate::engine::Settings;
use crate::engine::feed::{StoreFeed, UsageFeed};
use crate::engine::overview::DashboardData;
use crate::period::Maxima;

use self::instance::{Acquired, Instance};

/// Exit status of a daemon that found another one running (a service
/// manager should not restart it).
pub const EXIT_ALREADY_RUNNING: u8 = 3;

/// The snapshot is rewritten at least this often, so `last_update` tells
/// readers the daemon is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// How often the spool of hook events and status-line captures is looked
/// at (a `stat`), and the store asked whether another process wrote it (a
/// status line or a report that imported the spool): the dashboard's
/// activity panel follows within this.
const SPOOL_CHECK: Duration = Duration::from_secs(1);

/// File events arriving this close together are one change.
const QUIET: Duration = Duration::from_millis(25);
/// ...but a steady stream of writes does not delay an update longer than this.
const MAX_DEBOUNCE: Duration = Duration::from_millis(250);

/// Why the loop woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something changed below a data root.
    Files,
    /// SIGTERM, SIGINT or SIGHUP.
    Stop(i32),
}

/// What triggered an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    /// A file event: ingest now.
    Files,
    /// The poll fallback: ingest when a cheap check sees a change.
    Poll,
    /// No new usage expected: recompute for the clock (heartbeat, a window
    /// ending).
    Clock,
}

/// The daemon's own state, published with every file it writes.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonState {
    pub pid: u32,
    pub started_at: Timestamp,
    /// When usage last changed (new lines ingested).
    pub last_change: Option<Timestamp>,
    /// Failed updates in a row (0 after a success).
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// What the daemon publishes after each update, and how: in csm, the
/// snapshot file `monitor_data.json`, whose format lives with the other
/// faces; the daemon only computes, compares and writes it.
pub trait Publication: Clone + Send + 'static {
    /// The file's name in the base directory and in each of `sync_dirs`.
    const FILE_NAME: &'static str;

    /// The figures at `now` from the feed: the windows, the overview and
    /// what is published.
    fn compute(
        feed: &StoreFeed,
        s: &Settings,
        now: Timestamp,
    ) -> Result<(Vec<Block>, DashboardData, Self), String>;

    /// True when only what moves with the clock (and the daemon's state) differs.
    fn same_figures(&self, other: &Self) -> bool;

    /// The figures hold until this instant without new usage.
    fn valid_until(&self) -> Option<Timestamp>;

    fn set_state(&mut self, state: DaemonState);

    /// The file's contents.
    fn to_text(&self) -> String;

    /// For the log: windows this period and the current window's tokens.
    fn summary(&self) -> (u32, Option<u64>);

    /// With several accounts: the first account's publication (`self`)
    /// with every account's, in order, each named.
    fn with_accounts(self, accounts: Vec<(&AccountLabel, Self)>) -> Self;
}

/// Which of several accounts a publication or an update is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLabel {
    /// The account's name.
    pub name: String,
    /// Its Claude config dir.
    pub config_dir: PathBuf,
}

/// What an update hook sees: the point where notification rules are
/// evaluated after each update, before the file is written.
pub struct Update<'a, P> {
    pub now: Timestamp,
    /// What woke the daemon (hooks in tests tell updates apart by it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub trigger: Trigger,
    /// Every block (sorted, gaps included, activity at `now`); empty when
    /// the update failed before any data was loaded.
    pub blocks: &'a [Block],
    pub data: Option<&'a DashboardData>,
    /// What is about to be written, which a hook may fill in (alerts).
    /// After a failed update it is the previous one (hooks' fields included):
    /// set fields, do not append to them.
    pub snapshot: Option<&'a mut P>,
    /// Failed updates in a row, this one included (0 after a success).
    pub consecutive_failures: u32,
    pub error: Option<&'a str>,
    /// The settings of the account the update is about.
    pub settings: &'a Settings,
    /// With several accounts: which one this update is about.
    pub account: Option<&'a AccountLabel>,
}

/// Called after every update attempt, successful or not.
pub trait UpdateHook<P>: Send {
    fn after_update(&mut self, update: &mut Update<'_, P>);
}

/// Runs the daemon in the foreground until a signal stops it.
/// `debug` logs at debug level.
pub fn run<P: Publication>(
    ctx: Settings,
    clock: Clock,
    hooks: Vec<Box<dyn UpdateHook<P>>>,
    debug: bool,
) -> Result<ExitCode> {
    let base = ctx.base_dir.clone();
    crate::fsutil::create_private_dir(&base)
        .with_context(|| format!("cannot create {}", base.display()))?;
    let instance = match Instance::acquire(&base)
        .with_context(|| format!("cannot lock {}", base.join(instance::LOCK_FILE).display()))?
    {
        Acquired::Acquired(i) => i,
        Acquired::Held { pid } => {
            let who = pid.map_or_else(String::new, |p| format!(" (pid {p})"));
            eprintln!(
                "csm: a csm daemon is already running for {}{who}; `csm daemon stop` stops it",
                base.display()
            );
            return Ok(ExitCode::from(EXIT_ALREADY_RUNNING));
        }
    };
    if let Err(e) = logfile::init(&base, debug) {
        eprintln!(
            "csm: cannot open {}: {e}",
            base.join(logfile::FILE_NAME).display()
        );
    }
    tracing::info!(
        pid = std::process::id(),
        version = env!("CARGO_PKG_VERSION"),
        base = %base.display(),
        "daemon started"
    );
    let roots = ctx.roots.resolve().projects_dirs;
    let watching = if roots.is_empty() {
        "no Claude Code data folder yet".to_string()
    } else {
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // One line for whoever started it by hand; the rest goes to the log.
    eprintln!(
        "csm daemon {} running for {} (pid {}), watching {watching}; log: {}; stop with Ctrl-C or `csm daemon stop`",
        env!("CARGO_PKG_VERSION"),
        base.display(),
        std::process::id(),
        base.join(logfile::FILE_NAME).display()
    );
    let (tx, rx) = mpsc::channel::<Wake>();
    forward_signals(tx.clone())?;
    let mut watcher = watch::RootWatcher::new(tx);
    let mut daemon = Daemon::new(ctx, clock, hooks);
    watcher.sync(&daemon.roots());
    daemon.update(Trigger::Start);

    let poll_every = Duration::from_secs(daemon.ctx.config.interval_seconds.max(1));
    let mut next_poll = Instant::now() + poll_every;
    let mut next_spool = Instant::now() + SPOOL_CHECK;
    let stop = loop {
        let next_clock = daemon.next_clock_update();
        let deadline = next_poll.min(next_clock).min(next_spool);
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Wake::Stop(sig)) => break Some(sig),
            Ok(Wake::Files) => {
                if let Some(sig) = debounce(&rx) {
                    break Some(sig);
                }
                daemon.update(Trigger::Files);
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if now >= next_poll {
                    let added = watcher.sync(&daemon.roots());
                    daemon.update(if added { Trigger::Files } else { Trigger::Poll });
                    next_poll = Instant::now() + poll_every;
                } else if now >= next_clock {
                    daemon.update(Trigger::Clock);
                } else if now >= next_spool {
                    if crate::ingest::claude::spool::pending(&base)
                        || daemon.feed.changed_elsewhere()
                    {
                        daemon.update(Trigger::Files);
                    }
                    next_spool = Instant::now() + SPOOL_CHECK;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break None,
        }
    };
    tracing::info!(signal = stop, "daemon stopping");
    drop(watcher);
    drop(instance);
    Ok(ExitCode::SUCCESS)
}

/// Waits for the burst of events to end. Returns a stop signal that arrived
/// meanwhile.
fn debounce(rx: &mpsc::Receiver<Wake>) -> Option<i32> {
    let until = Instant::now() + MAX_DEBOUNCE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match rx.recv_timeout(QUIET.min(left)) {
            Ok(Wake::Files) => {}
            Ok(Wake::Stop(sig)) => return Some(sig),
            Err(_) => return None,
        }
    }
}

#[cfg(unix)]
fn forward_signals(tx: mpsc::Sender<Wake>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("cannot watch signals")?;
    std::thread::Builder::new()
        .name("csm-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = tx.send(Wake::Stop(sig));
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

#[cfg(not(unix))]
fn forward_signals(_tx: mpsc::Sender<Wake>) -> Result<()> {
    Ok(())
}

/// The daemon's state between updates.
struct Daemon<P> {
    ctx: Arc<Settings>,
    clock: Clock,
    feed: StoreFeed,
    /// With several accounts configured: the first one's name (its figures
    /// are `feed`'s), and the others with their own feeds.
    label: Option<AccountLabel>,
    others: Vec<OtherAccount>,
    kept: Maxima,
    hooks: Vec<Box<dyn UpdateHook<P>>>,
    started_at: Timestamp,
    last: Option<P>,
    last_written: Option<Instant>,
    /// The next heartbeat: pushed back by every write and every clock-driven
    /// update (a failing one too, so failures never make the loop spin).
    heartbeat_at: Instant,
    last_change: Option<Timestamp>,
    failures: u32,
    last_error: Option<(String, Timestamp)>,
    loaded: bool,
}

/// An account the daemon watches besides the first.
struct OtherAccount {
    label: AccountLabel,
    ctx: Arc<Settings>,
    feed: StoreFeed,
}

impl<P: Publication> Daemon<P> {
    fn new(ctx: Settings, clock: Clock, hooks: Vec<Box<dyn UpdateHook<P>>>) -> Daemon<P> {
        let kept = crate::engine::kept_maxima(&ctx.base_dir);
        let mut watched = crate::engine::accounts::watched(&ctx).into_iter();
        let label_of = |w: &crate::engine::accounts::Watched| AccountLabel {
            name: w.name.clone(),
            config_dir: w.config_dir.clone(),
        };
        let (ctx, label) = match watched.next() {
            Some(first) => (first.settings.clone(), Some(label_of(&first))),
            None => (ctx, None),
        };
        let others = watched
            .map(|w| {
                let label = label_of(&w);
                let ctx = Arc::new(w.settings);
                OtherAccount {
                    label,
                    feed: StoreFeed::new(Arc::clone(&ctx), kept),
                    ctx,
                }
            })
            .collect();
        let ctx = Arc::new(ctx);
        Daemon {
            label,
            others,
            feed: StoreFeed::new(Arc::clone(&ctx), kept),
            ctx,
            clock,
            kept,
            hooks,
            started_at: Timestamp::now(),
            last: None,
            last_written: None,
            heartbeat_at: Instant::now() + HEARTBEAT,
            last_change: None,
            failures: 0,
            last_error: None,
            loaded: false,
        }
    }

    /// The `projects/` directories that exist now.
    fn roots(&self) -> Vec<PathBuf> {
        let mut roots = self.ctx.roots.resolve().projects_dirs;
        for o in &self.others {
            roots.extend(o.ctx.roots.resolve().projects_dirs);
        }
        roots
    }

    /// When the clock alone calls for a new snapshot: the heartbeat, or the
    /// instant the figures stop holding (a window ends or goes idle).
    fn next_clock_update(&self) -> Instant {
        let heartbeat = self.heartbeat_at;
        let valid = self
            .last
            .as_ref()
            .and_then(|s| s.valid_until())
            .and_then(|until| {
                let left = until.duration_since(self.clock.now());
                // A fixed clock (CSM_NOW) never reaches it.
                (matches!(self.clock, Clock::System) && left.is_positive())
                    // A little after: woken at the instant, the window may still count as active.
                    .then(|| Instant::now() + left.unsigned_abs() + Duration::from_millis(50))
            });
        valid.map_or(heartbeat, |v| v.min(heartbeat))
    }

    fn ingest(&mut self, trigger: Trigger) -> Result<bool> {
        let now = self.clock.now();
        let loaded = self.loaded;
        let step = |feed: &mut StoreFeed| match trigger {
            Trigger::Start => feed.update(true, now),
            Trigger::Files => feed.reload(false, now).map(|()| true),
            Trigger::Poll => feed.update(false, now),
            Trigger::Clock if !loaded => feed.update(true, now),
            Trigger::Clock => Ok(false),
        };
        let mut ingested = step(&mut self.feed)?;
        for o in &mut self.others {
            ingested |= step(&mut o.feed)?;
        }
        Ok(ingested)
    }

    fn update(&mut self, trigger: Trigger) {
        let started = Instant::now();
        if trigger == Trigger::Clock {
            self.heartbeat_at = started + HEARTBEAT;
        }
        let mut result = self.ingest(trigger);
        if let Err(e) = &result
            && let Some(moved) = recover_corrupt_store(&self.ctx.base_dir, e)
        {
            tracing::warn!(
                moved_to = %moved.display(),
                "the history store was corrupt ({e:#}); moved it aside and rebuilding from the transcripts"
            );
            self.feed = StoreFeed::new(Arc::clone(&self.ctx), self.kept);
            for o in &mut self.others {
                o.feed = StoreFeed::new(Arc::clone(&o.ctx), self.kept);
            }
            result = self.ingest(Trigger::Start);
        }
        let now = self.clock.now();
        if matches!(result, Ok(true)) {
            release_memory();
        }
        match result {
            Ok(ingested) => {
                self.loaded = true;
                self.failures = 0;
                match P::compute(&self.feed, &self.ctx, now) {
                    Ok((blocks, d, snap)) => match self.other_accounts(trigger, now) {
                        Ok(others) => {
                            self.publish(trigger, now, &blocks, d, snap, others, ingested, started)
                        }
                        Err(e) => self.fail(trigger, now, e),
                    },
                    Err(e) => self.fail(trigger, now, format!("cannot compute the period: {e}")),
                }
            }
            Err(e) => self.fail(trigger, now, format!("{e:#}")),
        }
    }

    /// Every other account's publication at `now`, its hooks run (its
    /// alerts evaluated and sent).
    fn other_accounts(&mut self, trigger: Trigger, now: Timestamp) -> Result<Vec<P>, String> {
        let mut out = Vec::with_capacity(self.others.len());
        for o in &self.others {
            let (blocks, d, mut snap) = P::compute(&o.feed, &o.ctx, now)
                .map_err(|e| format!("account {}: cannot compute the period: {e}", o.label.name))?;
            for h in &mut self.hooks {
                h.after_update(&mut Update {
                    now,
                    trigger,
                    blocks: &blocks,
                    data: Some(&d),
                    snapshot: Some(&mut snap),
                    consecutive_failures: 0,
                    error: None,
                    settings: &o.ctx,
                    account: Some(&o.label),
                });
            }
            out.push(snap);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        trigger: Trigger,
        now: Timestamp,
        blocks: &[Block],
        d: DashboardData,
        mut snap: P,
        others: Vec<P>,
        ingested: bool,
        started: Instant,
    ) {
        let changed = self
            .last
            .as_ref()
            .is_none_or(|prev| !snap.same_figures(prev));
        if changed {
            self.last_change = Some(now);
        }
        snap.set_state(self.state());
        for h in &mut self.hooks {
            h.after_update(&mut Update {
                now,
                trigger,
                blocks,
                data: Some(&d),
                snapshot: Some(&mut snap),
                consecutive_failures: 0,
                error: None,
                settings: &self.ctx,
                account: self.label.as_ref(),
            });
        }
        if let Some(label) = &self.label {
            let mut all = vec![(label, snap.clone())];
            all.extend(self.others.iter().map(|o| &o.label).zip(others));
            snap = snap.with_accounts(all);
        }
        let due = self
            .last_written
            .is_none_or(|t| t.elapsed() >= HEARTBEAT - Duration::from_millis(500));
        if changed || due || trigger == Trigger::Clock {
            self.write(&snap);
        }
        tracing::debug!(
            ?trigger,
            ingested,
            changed,
            ms = started.elapsed().as_millis() as u64,
            "update"
        );
        if changed {
            let (sessions, active_tokens) = snap.summary();
            tracing::info!(
                ?trigger,
                sessions,
                active_tokens,
                ms = started.elapsed().as_millis() as u64,
                "snapshot updated"
            );
        }
        self.last = Some(snap);
    }

    fn fail(&mut self, trigger: Trigger, now: Timestamp, msg: String) {
        self.failures = self.failures.saturating_add(1);
        // The same error poll after poll: logged and written once.
        let repeated =
            self.failures > 1 && self.last_error.as_ref().is_some_and(|(m, _)| *m == msg);
        if repeated {
            tracing::debug!(failures = self.failures, "update failed again: {msg}");
        } else {
            tracing::warn!(failures = self.failures, "update failed: {msg}");
        }
        self.last_error = Some((msg.clone(), now));
        let mut snap = self.last.clone();
        if let Some(s) = snap.as_mut() {
            s.set_state(self.state());
        }
        for h in &mut self.hooks {
            h.after_update(&mut Update {
                now,
                trigger,
                blocks: &[],
                data: None,
                snapshot: snap.as_mut(),
                consecutive_failures: self.failures,
                error: Some(&msg),
                settings: &self.ctx,
                account: self.label.as_ref(),
            });
        }
        // Readers see the error; the figures stay those of the last success.
        if let Some(s) = snap {
            if !repeated {
                self.write(&s);
            }
            self.last = Some(s);
        }
    }

    fn state(&self) -> DaemonState {
        DaemonState {
            pid: std::process::id(),
            started_at: self.started_at,
            last_change: self.last_change,
            consecutive_failures: self.failures,
            last_error: self.last_error.as_ref().map(|(m, _)| m.clone()),
            last_error_at: self.last_error.as_ref().map(|(_, t)| *t),
        }
    }

    fn write(&mut self, snap: &P) {
        let text = snap.to_text();
        let path = self.ctx.base_dir.join(P::FILE_NAME);
        if let Err(e) = crate::fsutil::write_atomic(&path, text.as_bytes(), 0o600) {
            tracing::error!(path = %path.display(), "cannot write the snapshot: {e}");
            return;
        }
        self.last_written = Some(Instant::now());
        self.heartbeat_at = Instant::now() + HEARTBEAT;
        for dir in &self.ctx.config.sync_dirs {
            let dir = expand_home(dir, self.ctx.roots.home.as_deref());
            let copy = dir.join(P::FILE_NAME);
            // Shared folders (iCloud Drive) are read by other devices and apps.
            if let Err(e) = crate::fsutil::write_atomic(&copy, text.as_bytes(), 0o644) {
                tracing::warn!(path = %copy.display(), "cannot copy the snapshot: {e}");
            }
        }
    }
}

/// Hands the heap pages an ingest freed back to the system: a daemon that
/// idles for hours should not keep the peak of its first (cold) ingest.
fn release_memory() {
    crate::sys::release_free_memory();
}

/// `~/x` → `$HOME/x` (config paths are written by hand).
pub fn expand_home(p: &Path, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => p.to_path_buf(),
    }
}

/// When `e` says the history store is not a database (or is damaged), moves
/// it (and its WAL) aside, keeping it for inspection, and returns where.
fn recover_corrupt_store(base: &Path, e: &anyhow::Error) -> Option<PathBuf> {
    let corrupt = e.chain().any(|c| {
        let sqlite = c
            .downcast_ref::<crate::store::StoreError>()
            .and_then(|s| match s {
                crate::store::StoreError::Sqlite(r) => Some(r),
                _ => None,
            })
            .or_else(|| c.downcast_ref::<rusqlite::Error>());
        matches!(
            sqlite.and_then(rusqlite::Error::sqlite_error_code),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        )
    });
    if !corrupt {
        return None;
    }
    let db = base.join(crate::store::FILE_NAME);
    let stamp = Timestamp::now().as_second();
    let moved = base.join(format!("{}.corrupt-{stamp}", crate::store::FILE_NAME));
    std::fs::rename(&db, &moved).ok()?;
    for suffix in ["-wal", "-shm"] {
        let side = base.join(format!("{}{suffix}", crate::store::FILE_NAME));
        if side.exists() {
            let _ = std::fs::rename(&side, base.join(format!("{}{suffix}", moved.display())));
        }
    }
    Some(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded_in_sync_dirs() {
        let home = Path::new("/home/u");
        assert_eq!(
            expand_home(Path::new("~/Library/x"), Some(home)),
            PathBuf::from("/home/u/Library/x")
        );
        assert_eq!(
            expand_home(Path::new("/abs/x"), Some(home)),
            PathBuf::from("/abs/x")
        );
        assert_eq!(expand_home(Path::new("~/x"), None), PathBuf::from("~/x"));
    }

    #[test]
    fn a_damaged_store_is_moved_aside_other_errors_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(crate::store::FILE_NAME);
        std::fs::write(&db, vec![0x5a; 8192]).unwrap();
        let err = match crate::store::Store::open(dir.path()) {
            Ok(_) => panic!("a garbage file opened as a store"),
            Err(e) => anyhow::Error::new(e).context("loading"),
        };
        let other = anyhow::anyhow!("no Claude data directory");
        assert_eq!(recover_corrupt_store(dir.path(), &other), None);
        let moved = recover_corrupt_store(dir.path(), &err).expect("recognised as corrupt");
        assert!(!db.exists());
        assert_eq!(std::fs::read(&moved).unwrap(), vec![0x5a; 8192]);
        crate::store::Store::open(dir.path()).unwrap();
    }

    /// A publication of the daemon's own, so the loop is tested without
    /// any face: the windows' count, a note a hook may set, the state.
    #[derive(Clone, Debug, PartialEq)]
    struct Note {
        windows: usize,
        note: Option<String>,
        failures: Option<u32>,
    }

    impl Publication for Note {
        const FILE_NAME: &'static str = "note.txt";

        fn compute(
            feed: &StoreFeed,
            s: &Settings,
            now: Timestamp,
        ) -> Result<(Vec<Block>, DashboardData, Self), String> {
            let (blocks, d) =
                crate::engine::feed::figures(feed, s, now).map_err(|e| e.to_string())?;
            let windows = blocks.iter().filter(|b| !b.is_gap).count();
            Ok((
                blocks,
                d,
                Note {
                    windows,
                    note: None,
                    failures: None,
                },
            ))
        }
        fn same_figures(&self, other: &Self) -> bool {
            self.windows == other.windows
        }
        fn valid_until(&self) -> Option<Timestamp> {
            None
        }
        fn set_state(&mut self, state: DaemonState) {
            self.failures = Some(state.consecutive_failures);
        }
        fn to_text(&self) -> String {
            format!(
                "{} {} {}",
                self.windows,
                self.note.as_deref().unwrap_or("-"),
                self.failures.unwrap_or(0)
            )
        }
        fn summary(&self) -> (u32, Option<u64>) {
            (self.windows as u32, None)
        }
        fn with_accounts(self, accounts: Vec<(&AccountLabel, Self)>) -> Self {
            let names: Vec<String> = accounts
                .iter()
                .map(|(l, n)| format!("{}={}", l.name, n.windows))
                .collect();
            Note {
                note: Some(names.join(",")),
                ..self
            }
        }
    }

    /// Records what each update handed to hooks, and adds a note.
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<(Trigger, bool, u32)>>>);

    impl UpdateHook<Note> for Recorder {
        fn after_update(&mut self, u: &mut Update<'_, Note>) {
            self.0
                .lock()
                .unwrap()
                .push((u.trigger, u.data.is_some(), u.consecutive_failures));
            if let Some(s) = u.snapshot.as_mut() {
                s.note = Some("alert".into());
            }
        }
    }

    #[test]
    fn hooks_see_every_update_and_can_add_to_the_publication() {
        let dir = tempfile::tempdir().unwrap();
        let claude = dir.path().join("claude");
        let mut opts = crate::synth::SynthOptions::new(5, 256 << 10, crate::synth::default_now());
        opts.days = 5;
        crate::synth::generate(&claude, &opts).unwrap();
        let now = crate::synth::default_now();
        let ctx = Settings {
            now,
            tz: std::sync::OnceLock::from(jiff::tz::TimeZone::UTC),
            base_dir: dir.path().join("base"),
            config: crate::config::Config::default(),
            roots: crate::ingest::discover::RootRequest {
                explicit: vec![claude.clone()],
                env_value: None,
                home: None,
                xdg_config_home: None,
                account: None,
            },
            mode: crate::pricing::CostMode::Auto,
            source: crate::engine::Source::Transcripts,
            no_store: false,
            recalculate: false,
            account: None,
        };
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut d = Daemon::<Note>::new(
            ctx,
            Clock::Fixed(now),
            vec![Box::new(Recorder(calls.clone()))],
        );
        d.update(Trigger::Start);
        d.update(Trigger::Clock);
        std::fs::remove_dir_all(&claude).unwrap();
        d.update(Trigger::Files);
        assert_eq!(
            *calls.lock().unwrap(),
            [
                (Trigger::Start, true, 0),
                (Trigger::Clock, true, 0),
                (Trigger::Files, false, 1)
            ]
        );
        let written =
            std::fs::read_to_string(dir.path().join("base").join(Note::FILE_NAME)).unwrap();
        let fields: Vec<&str> = written.split(' ').collect();
        assert!(fields[0].parse::<usize>().unwrap() > 0, "{written}");
        // The hook's note is in the file, and so is the failure after it.
        assert_eq!(&fields[1..], ["alert", "1"], "{written}");
    }
}
