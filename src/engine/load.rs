//! Loading the run's usage: roots, files, the store sync, entries, prices.
//! Nothing here prints: what a command may want to show (why no data was
//! found, what the sync did, skip counts, unknown models) comes back as data.

use anyhow::Result;

use super::Settings;
use crate::blocks::{Block, Timed, identify_blocks, window_length};
use crate::dedup::Deduper;
use crate::domain::UsageEntry;
use crate::ingest::discover::{
    HOT_AGE_NS, Roots, TranscriptFile, WalkStats, find_transcripts, walk_all, walk_changed,
};
use crate::ingest::{LineStats, scan_all};
use crate::pricing::{PriceResolver, PriceTable, costs};
use crate::store::{Store, SyncOptions, SyncReport};

/// De-duplicated entries in reading order, with what reading them found.
pub struct Loaded {
    /// The `projects/` directories read.
    pub roots: Roots,
    /// Transcript files on disk.
    pub files: usize,
    /// What walking the roots passed over.
    pub walk: WalkStats,
    /// Line counts: the store's totals when it is used, else this run's scan.
    pub stats: LineStats,
    /// The counted (de-duplicated) entries, in reading order.
    pub entries: Vec<UsageEntry>,
}

impl Loaded {
    /// Entries sorted by time (stable: reading order breaks ties).
    pub fn by_time(&self) -> Vec<&UsageEntry> {
        let mut v: Vec<&UsageEntry> = self.entries.iter().collect();
        v.sort_by_key(|e| e.timestamp);
        v
    }
}

/// The transcripts of this run and, unless `--no-store`, the history store
/// brought up to date with them.
pub struct Sources {
    /// The `projects/` directories found.
    pub roots: Roots,
    /// The transcripts on disk; after a quick look, only those looked at
    /// (`file_count` counts them all).
    pub files: Vec<TranscriptFile>,
    /// All transcripts on disk, also after a quick look.
    pub file_count: usize,
    /// What walking the roots passed over.
    pub walk: WalkStats,
    /// The history store, synced; `None` with `--no-store`.
    pub store: Option<Store>,
    /// What the store sync did, when anything on disk had changed.
    pub sync: Option<SyncReport>,
    /// Who is told what loading found (skip counts, unknown models).
    pub observer: Observer,
}

/// What a command wants to be told while the engine loads: the engine
/// prints nothing itself, so `--debug` output is the command's.
#[derive(Clone, Copy, Default)]
pub struct Observer {
    /// Called with the entries and skip counts once they are loaded.
    pub loaded: Option<fn(&Loaded)>,
    /// Called with the price lookups once windows were priced from entries.
    pub priced: Option<fn(&PriceResolver<'_>)>,
}

/// How often a run walks every directory and looks at every file.
const FULL_WALK_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Finds the transcripts and syncs the store (reading only what is new).
pub fn open(ctx: &Settings) -> Result<Sources> {
    let roots = ctx.roots.resolve_required().map_err(anyhow::Error::msg)?;
    if ctx.no_store {
        let (files, walk) = find_transcripts(&roots);
        return Ok(Sources {
            roots,
            file_count: files.len(),
            files,
            walk,
            store: None,
            sync: None,
            observer: Observer::default(),
        });
    }
    let mut store = Store::open(&ctx.base_dir)?;
    // Every query answers for this run's roots only: another account's
    // history in the same store is neither counted nor taken for gone.
    store.set_scope(&history_dirs(ctx, &roots))?;
    // Walk everything now and then; in between, list only directories whose
    // time changed and look again only at recently active files.
    let last_full = store
        .meta(&store.full_walk_key())?
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    // File times are real, so this schedule follows the real clock even when
    // reports are computed for a fixed one (CSM_NOW).
    let wall = jiff::Timestamp::now();
    let now_ms = wall.as_millisecond();
    let now_ns = wall.as_nanosecond() as i64;
    // A first look needs only what changed lately; when something did, the
    // sync needs the whole list.
    let recent = store.walk_memo_since(now_ns.saturating_sub(HOT_AGE_NS))?;
    let full = ctx.recalculate
        || recent.dirs.is_empty()
        || now_ms.saturating_sub(last_full) > FULL_WALK_EVERY.as_millis() as i64
        || last_full > now_ms;
    // After a quick look, the sync gets only what was looked at.
    let mut walked = if full {
        walk_all(&roots)
    } else {
        walk_changed(&roots, &recent, now_ns)
    };

    // Nothing moved since the last run: the store is current as it is,
    // unless its derived state awaits a recompute (a killed run, or
    // transcripts just attributed to their root).
    let changed = walked.changed || store.meta("dirty")?.as_deref() == Some("1");
    let report = if changed {
        let prices = price_table(&ctx.base_dir)?;
        let report = store.sync(
            &walked.files,
            &prices,
            &SyncOptions {
                recalculate: ctx.recalculate,
                only_these: !full,
                vanished: std::mem::take(&mut walked.vanished),
                relisted: std::mem::take(&mut walked.relisted),
            },
        )?;
        store.save_walk(&recent.dirs, &walked.dirs, full.then_some(wall))?;
        report
    } else {
        SyncReport::default()
    };
    // What Claude Code's hooks and status line spooled meanwhile.
    let imported = store.import_spool(&ctx.base_dir)?;
    if imported.skipped > 0 {
        tracing::warn!(
            lines = imported.skipped,
            "spool lines that were not a record skipped"
        );
    }
    let store_files = if full { 0 } else { store.present_files()? };
    let (files, walk) = (walked.files, walked.stats);
    let (store, sync) = (Some(store), changed.then_some(report));
    Ok(Sources {
        roots,
        file_count: if full { files.len() } else { store_files },
        files,
        walk,
        store,
        sync,
        observer: Observer::default(),
    })
}

impl Sources {
    /// Counted entries in reading order. `project` keeps only that project's
    /// files, before de-duplication (as ccusage's `--project`).
    pub fn load(self, project: Option<&str>) -> Result<Loaded> {
        let (entries, stats) = match (&self.store, project) {
            (Some(store), None) => (store.entries(None)?, store.line_stats()?),
            (Some(store), Some(p)) => {
                let mut d = Deduper::default();
                for e in store.project_lines(p)? {
                    d.push(e);
                }
                (d.finish(), store.line_stats()?)
            }
            (None, _) => {
                let files: Vec<TranscriptFile> = self
                    .files
                    .iter()
                    .filter(|f| project.is_none_or(|p| &*f.origin.project == p))
                    .cloned()
                    .collect();
                let (raw, stats) = scan_all(&files);
                let mut d = Deduper::with_capacity(raw.len());
                for e in raw {
                    d.push(e);
                }
                (d.finish(), stats)
            }
        };
        let loaded = Loaded {
            roots: self.roots,
            files: self.file_count,
            walk: self.walk,
            stats,
            entries,
        };
        if let Some(f) = self.observer.loaded {
            f(&loaded);
        }
        Ok(loaded)
    }

    /// Five-hour windows (or `hours`-long ones): from the store when it keeps
    /// them, else computed from the entries.
    pub fn blocks(self, ctx: &Settings, hours: f64) -> Result<Vec<Block>> {
        if let Some(store) = &self.store
            && hours == crate::store::STORED_WINDOW_HOURS
        {
            let blocks = store.blocks(ctx.mode)?;
            if self.observer.loaded.is_some() {
                // `--debug`: the skip counts the store keeps per transcript,
                // as a run from entries reports them (warm runs too).
                self.load(None)?;
            }
            return Ok(blocks);
        }
        let priced = self.observer.priced;
        let loaded = self.load(None)?;
        let table = price_table(&ctx.base_dir)?;
        let mut resolver = PriceResolver::new(&table);
        let sorted = loaded.by_time();
        let costs = costs(sorted.iter().copied(), ctx.mode, &mut resolver);
        if let Some(f) = priced {
            f(&resolver);
        }
        let timed = sorted.iter().zip(&costs).map(|(e, c)| Timed {
            entry: e,
            cost: c.usd,
        });
        Ok(identify_blocks(timed, window_length(hours)))
    }
}

/// The roots the store reports on: the run's, else (no default location on
/// disk any more) the default ones as they were.
fn history_dirs(ctx: &Settings, roots: &Roots) -> Vec<std::path::PathBuf> {
    if roots.projects_dirs.is_empty() {
        ctx.roots.history_dirs()
    } else {
        roots.projects_dirs.clone()
    }
}

/// Reads every transcript below the roots (through the store unless
/// `--no-store`). `project` keeps only files of that project.
pub fn load(ctx: &Settings, project: Option<&str>) -> Result<Loaded> {
    open(ctx)?.load(project)
}

/// Prices for this run: `<base>/pricing.json` after `csm pricing update`,
/// else the embedded table.
pub fn price_table(base_dir: &std::path::Path) -> Result<PriceTable> {
    Ok(crate::pricing::load(base_dir)?)
}
