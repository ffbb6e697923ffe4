//! Loading the user's usage for a command: roots, files, entries, prices.

use anyhow::{Result, bail};

use crate::app::Context;
use crate::dedup::Deduper;
use crate::domain::{EntryCost, UsageEntry};
use crate::ingest::discover::{Roots, WalkStats, find_transcripts};
use crate::ingest::{LineStats, scan_all};
use crate::pricing::{CostMode, PriceResolver, PriceTable, entry_cost_detail};

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

/// Reads every transcript below the roots. `project` keeps only files of that
/// project (before de-duplication, as ccusage's `--project`).
pub fn load(ctx: &Context, project: Option<&str>) -> Result<Loaded> {
    let roots = ctx.roots.resolve();
    if roots.named_but_missing {
        bail!(
            "{}",
            roots
                .explanation
                .clone()
                .unwrap_or_else(|| "no Claude data directory".into())
        );
    }
    if let Some(why) = &roots.explanation {
        eprintln!("{why}");
    }
    let (mut files, walk) = find_transcripts(&roots);
    if let Some(p) = project {
        files.retain(|f| &*f.origin.project == p);
    }
    let (raw, stats) = scan_all(&files);
    let mut d = Deduper::with_capacity(raw.len());
    for e in raw {
        d.push(e);
    }
    let loaded = Loaded {
        roots,
        files: files.len(),
        walk,
        stats,
        entries: d.finish(),
    };
    if ctx.debug {
        debug_report(&loaded);
    }
    Ok(loaded)
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
