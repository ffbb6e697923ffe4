//! Loading the user's usage for a command: roots, files, entries, prices.

use anyhow::Result;

use crate::app::Context;
use crate::blocks::{Block, Timed, identify_blocks, window_length};
use crate::dedup::Deduper;
use crate::domain::{EntryCost, UsageEntry};
use crate::ingest::discover::{
    HOT_AGE_NS, Roots, TranscriptFile, WalkStats, find_transcripts, walk_all, walk_changed,
};
use crate::ingest::{LineStats, scan_all};
use crate::pricing::{CostMode, PriceResolver, PriceTable, entry_cost_detail};
use crate::store::{Store, SyncOptions, SyncReport};

/// De-duplicated entries in reading order, with what reading them found.
pub struct Loaded {
    pub roots: Roots,
    pub files: usize,
    pub walk: WalkStats,
    pub stats: LineStats,
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
    pub roots: Roots,
    /// The transcripts on disk; after a quick look, only those looked at
    /// (`file_count` counts them all).
    pub files: Vec<TranscriptFile>,
    pub file_count: usize,
    pub walk: WalkStats,
    pub store: Option<Store>,
    pub sync: Option<SyncReport>,
}

/// How often a run walks every directory and looks at every file.
const FULL_WALK_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Finds the transcripts and syncs the store (reading only what is new).
pub fn open(ctx: &Context) -> Result<Sources> {
    let roots = ctx.roots.resolve_required().map_err(anyhow::Error::msg)?;
    if let Some(why) = &roots.explanation
        && !ctx.quiet
    {
        eprintln!("{why}");
    }
    if ctx.no_store {
        let (files, walk) = find_transcripts(&roots);
        return Ok(Sources {
            roots,
            file_count: files.len(),
            files,
            walk,
            store: None,
            sync: None,
        });
    }
    let mut store = Store::open(&ctx.base_dir)?;
    // Walk everything now and then; in between, list only directories whose
    // time changed and look again only at recently active files.
    let last_full = store
        .meta("full_walk_ms")?
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

    // Nothing moved since the last run: the store is current as it is.
    let report = if walked.changed {
        let prices = price_table(ctx)?;
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
        if ctx.debug {
            debug_sync(&report);
        }
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
    let (store, sync) = (Some(store), Some(report));
    Ok(Sources {
        roots,
        file_count: if full { files.len() } else { store_files },
        files,
        walk,
        store,
        sync,
    })
}

impl Sources {
    /// Counted entries in reading order. `project` keeps only that project's
    /// files, before de-duplication (as ccusage's `--project`).
    pub fn load(self, ctx: &Context, project: Option<&str>) -> Result<Loaded> {
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
        if ctx.debug {
            debug_report(&loaded);
        }
        Ok(loaded)
    }

    /// Five-hour windows (or `hours`-long ones): from the store when it keeps
    /// them, else computed from the entries.
    pub fn blocks(self, ctx: &Context, hours: f64) -> Result<Vec<Block>> {
        if let Some(store) = &self.store
            && hours == crate::store::STORED_WINDOW_HOURS
        {
            return Ok(store.blocks(ctx.mode, ctx.now)?);
        }
        let loaded = self.load(ctx, None)?;
        let table = price_table(ctx)?;
        let mut resolver = PriceResolver::new(&table);
        let sorted = loaded.by_time();
        let costs = costs(sorted.iter().copied(), ctx.mode, &mut resolver);
        if ctx.debug {
            report_unknown_models(&resolver);
        }
        let timed = sorted.iter().zip(&costs).map(|(e, c)| Timed {
            entry: e,
            cost: c.usd,
        });
        Ok(identify_blocks(timed, ctx.now, window_length(hours)))
    }
}

/// Reads every transcript below the roots (through the store unless
/// `--no-store`). `project` keeps only files of that project.
pub fn load(ctx: &Context, project: Option<&str>) -> Result<Loaded> {
    open(ctx)?.load(ctx, project)
}

fn debug_sync(r: &SyncReport) {
    use crate::store::WindowUpdate;
    let windows = match r.windows {
        WindowUpdate::Untouched => "unchanged".to_string(),
        WindowUpdate::Extended => "latest extended".to_string(),
        WindowUpdate::RecomputedFrom(t) => format!("recomputed from {}", crate::store::ms(t)),
        WindowUpdate::Recomputed => "all recomputed".to_string(),
    };
    eprintln!(
        "[debug] store: {} of {} transcripts looked at read, {} new usage lines, windows {windows}",
        r.files_read, r.files_seen, r.new_lines
    );
}

fn debug_report(l: &Loaded) {
    use crate::ingest::parse::SkipReason;
    eprintln!(
        "[debug] {} files, {} lines, {} usage lines, {} entries after de-duplication",
        l.files,
        l.stats.lines,
        l.stats.entries,
        l.entries.len()
    );
    for r in SkipReason::ALL {
        let n = l.stats.skipped(r);
        if n > 0 {
            eprintln!("[debug] skipped {n:>9}  {}", r.label());
        }
    }
    if l.stats.unreadable_files > 0 {
        eprintln!("[debug] unreadable files: {}", l.stats.unreadable_files);
    }
    if l.walk.symlinks > 0 {
        eprintln!("[debug] symlinks not followed: {}", l.walk.symlinks);
    }
}

/// Prices for this run: `<base>/pricing.json` after `csm pricing update`,
/// else the embedded table.
pub fn price_table(ctx: &Context) -> Result<PriceTable> {
    Ok(crate::pricing::load(&ctx.base_dir)?)
}

/// Each entry's cost under the run's mode, in the same order as `entries`.
pub fn costs<'e>(
    entries: impl IntoIterator<Item = &'e UsageEntry>,
    mode: CostMode,
    resolver: &mut PriceResolver<'_>,
) -> Vec<EntryCost> {
    entries
        .into_iter()
        .map(|e| cost_of(e, mode, resolver))
        .collect()
}

pub fn cost_of(e: &UsageEntry, mode: CostMode, resolver: &mut PriceResolver<'_>) -> EntryCost {
    entry_cost_detail(
        mode,
        e.cost_usd,
        e.reportable_model(),
        &e.billable(),
        e.speed_or_standard(),
        resolver,
    )
}

/// Models that had no price in this run, with entry counts, for `--debug` and `doctor`.
pub fn report_unknown_models(resolver: &PriceResolver<'_>) {
    for (model, n) in resolver.unknown_models() {
        eprintln!("[debug] no price for model {model} ({n} entries priced at $0)");
    }
}
