//! Bringing the store up to date with the transcripts: read what is new,
//! record it, recompute what it changes.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{OptionalExtension, Transaction, params};
use rustc_hash::{FxHashMap, FxHashSet};

use super::packed::{self, Line, Pos};
use super::roots::{self, FileRoots, Files};
use super::{Store, StoreError};
use crate::blocks::{self, Block, Timed};
use crate::dedup::{Deduper, Kept};
use crate::domain::{Origin, UsageEntry};
use crate::ingest::discover::TranscriptFile;
use crate::ingest::{FileScan, LineStats, scan_batches, scan_ranges};
use crate::pricing::{CostMode, PriceResolver, PriceTable};

/// Bytes of transcript read between two commits on a cold run: bounds memory
/// and what a kill can cost, without committing so often it slows ingest
/// (1 GiB history: 32 MiB batches peak at 60 MiB resident and run as fast
/// as 64 MiB ones, which peak at 65 MiB).
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// `CSM_INGEST_BATCH_BYTES` overrides [`BATCH_BYTES`]: the crash tests use
/// small batches so a small history still commits several times before a
/// kill lands.
fn batch_bytes() -> u64 {
    std::env::var("CSM_INGEST_BATCH_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(BATCH_BYTES)
}

/// What a [`Store::sync`] call reads and how.
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Re-read every transcript from the start (`--recalculate`, `db rebuild`).
    pub recalculate: bool,
    /// The files given are only those looked at (a quick look): the others
    /// are unchanged, not gone; `vanished` lists the ones found missing.
    pub only_these: bool,
    /// Transcripts found missing by the quick look: they count as gone.
    pub vanished: Vec<std::path::PathBuf>,
    /// Directories listed whole by the quick look.
    pub relisted: Vec<std::path::PathBuf>,
}

/// What a [`Store::sync`] call did.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Transcript files passed in.
    pub files_seen: usize,
    /// Files read, from the start or from where the last read stopped.
    pub files_read: usize,
    /// Files the store knew that are no longer on disk.
    pub files_gone: usize,
    /// Line counts over the files read.
    pub stats: LineStats,
    /// Usage entries written to the store.
    pub new_lines: u64,
    /// Everything derived was recomputed (first run, rebuild, recovery, new prices).
    pub full_recompute: bool,
    /// Something visible may have changed.
    pub changed: bool,
    /// How the windows were brought up to date.
    pub windows: WindowUpdate,
}

/// How a sync brought the stored windows up to date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowUpdate {
    /// Nothing touched the windows.
    #[default]
    Untouched,
    /// New responses after the latest one: the latest window was extended.
    Extended,
    /// Recomputed from the window a change reached.
    RecomputedFrom(i64),
    /// Every window was recomputed.
    Recomputed,
}

impl WindowUpdate {
    /// What a sync did to the windows when it did `self` to some roots'
    /// and `other` to another's.
    fn and(self, other: WindowUpdate) -> WindowUpdate {
        use WindowUpdate::*;
        match (self, other) {
            (Recomputed, _) | (_, Recomputed) => Recomputed,
            (RecomputedFrom(a), RecomputedFrom(b)) => RecomputedFrom(a.min(b)),
            (RecomputedFrom(a), _) | (_, RecomputedFrom(a)) => RecomputedFrom(a),
            (Extended, _) | (_, Extended) => Extended,
            (Untouched, Untouched) => Untouched,
        }
    }
}

/// The time recorded for a file that could not be read: no real file has it.
const UNREAD_MTIME: i64 = crate::ingest::discover::UNSETTLED;

struct KnownFile {
    id: i64,
    device: u64,
    inode: u64,
    size: u64,
    mtime_ns: i64,
    read_to: u64,
    present: bool,
}

struct Job<'a> {
    file: &'a TranscriptFile,
    start: u64,
    /// Row to update, or a new row to create.
    id: Option<i64>,
    /// The transcript was gone and is back: same content goes back into its
    /// row, different content gets a row of its own.
    returning: bool,
}

impl Store {
    /// Reads whatever is new in `files` (all transcripts currently on disk) and
    /// updates entries, de-duplication and windows.
    pub fn sync(
        &mut self,
        files: &[TranscriptFile],
        prices: &PriceTable,
        opts: &SyncOptions,
    ) -> Result<SyncReport, StoreError> {
        let _lock = self.writer_lock()?;
        let mut report = SyncReport {
            files_seen: files.len(),
            ..Default::default()
        };
        let price_mark = format!("{} [{}]", prices.source(), prices.len());
        let dirty = self.meta("dirty")?.as_deref() == Some("1");
        let repriced = self.meta("prices")?.as_deref() != Some(price_mark.as_str());
        let (known, first_run) = if opts.only_these {
            let paths = files.iter().map(path_bytes).chain(
                opts.vanished
                    .iter()
                    .map(|p| p.as_os_str().as_encoded_bytes()),
            );
            let mut known = self.known_files_of(paths)?;
            for dir in &opts.relisted {
                known.extend(self.known_files_in(dir)?);
            }
            (known, self.is_empty()?)
        } else {
            // Only this run's roots: another account's transcripts are
            // not gone because this run does not see them.
            (self.known_files()?, self.is_empty()?)
        };

        let mut jobs: Vec<Job<'_>> = Vec::new();
        let mut retire: Vec<i64> = Vec::new();
        let mut seen_paths: FxHashSet<&[u8]> = FxHashSet::default();
        for f in files {
            let key = f.path.as_os_str().as_encoded_bytes();
            seen_paths.insert(key);
            match known.get(key) {
                None => jobs.push(Job {
                    file: f,
                    start: 0,
                    id: None,
                    returning: false,
                }),
                Some(k) if !k.present => jobs.push(Job {
                    file: f,
                    start: 0,
                    id: Some(k.id),
                    returning: true,
                }),
                Some(k) => {
                    let replaced = k.device != f.device
                        || k.inode != f.inode
                        || (f.size < k.read_to && !still_holds(f, k.read_to));
                    if replaced {
                        // Keep the old copy's lines under a retired row: a rewritten
                        // transcript must not erase history it no longer holds.
                        retire.push(k.id);
                        jobs.push(Job {
                            file: f,
                            start: 0,
                            id: None,
                            returning: false,
                        });
                    } else if opts.recalculate {
                        jobs.push(Job {
                            file: f,
                            start: 0,
                            id: Some(k.id),
                            returning: false,
                        });
                    } else if f.size != k.size || f.mtime_ns != k.mtime_ns || !k.present {
                        jobs.push(Job {
                            file: f,
                            start: k.read_to,
                            id: Some(k.id),
                            returning: false,
                        });
                    }
                }
            }
        }
        let gone: Vec<i64> = known
            .iter()
            .filter(|(path, k)| k.present && !seen_paths.contains(path.as_slice()))
            .filter(|(path, _)| {
                // After a quick look, only what it saw missing is gone.
                !opts.only_these || {
                    let path = super::path_from_blob(path.to_vec());
                    opts.vanished.contains(&path)
                        || path
                            .parent()
                            .is_some_and(|p| opts.relisted.iter().any(|d| d == p))
                }
            })
            .map(|(_, k)| k.id)
            .collect();
        report.files_gone = gone.len();
        report.files_read = jobs.len();

        let full = first_run || dirty || opts.recalculate || repriced;
        report.full_recompute = full;
        if first_run && !dirty {
            self.cold_sync(files, prices, &price_mark, &mut report)?;
            return Ok(report);
        }
        if !full && jobs.is_empty() && retire.is_empty() && gone.is_empty() {
            return Ok(report);
        }

        // Mark the derived state stale before the first write, so a kill
        // anywhere below is repaired by the next run.
        {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            set_meta(&tx, "dirty", "1")?;
            for id in &retire {
                retire_file(&tx, *id)?;
            }
            for id in &gone {
                tx.execute("UPDATE files SET present = 0 WHERE id = ?1", [id])?;
            }
            tx.commit()?;
        }

        let mut resolver = PriceResolver::new(prices);
        let mut models = packed::Models::load(&self.conn)?;
        let mut root_paths = self.scope_paths()?;
        // A batch's new lines with a message id, for the buckets.
        let mut placed: Vec<(u64, Pos)> = Vec::new();
        let mut touched: FxHashSet<u64> = FxHashSet::default();
        // The earliest new line of each file read.
        let mut earliest_new: FxHashMap<i64, i64> = FxHashMap::default();
        // Lines written by this run, and the time of the latest counted one
        // before it: when everything new is a new response after that time,
        // the windows are extended instead of recomputed.
        let mut fresh: FxHashSet<Pos> = FxHashSet::default();
        let latest_before: FxHashMap<i64, i64> = self
            .conn
            .prepare(
                "SELECT root_id, max(last_ms) FROM blocks WHERE is_gap = 0 AND last_ms IS NOT NULL
                 GROUP BY root_id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        // Batches in path order, so a cold run's lines arrive in reading order.
        jobs.sort_by(|a, b| path_bytes(a.file).cmp(path_bytes(b.file)));
        let batch_bytes = batch_bytes();
        let mut i = 0;
        while i < jobs.len() {
            let mut bytes = 0;
            let mut j = i;
            while j < jobs.len() && (j == i || bytes < batch_bytes) {
                bytes += jobs[j].file.size.saturating_sub(jobs[j].start);
                j += 1;
            }
            let batch: Vec<(&TranscriptFile, u64)> =
                jobs[i..j].iter().map(|jb| (jb.file, jb.start)).collect();
            let scans = scan_ranges(&batch);
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for (job, scan) in jobs[i..j].iter_mut().zip(&scans) {
                report.stats.merge(&scan.stats);
                if job.returning
                    && let Some(old) = job.id
                    && !same_lines(&tx, old, &scan.entries)?
                {
                    retire_file(&tx, old)?;
                    job.id = None;
                }
                let root = file_root(&tx, &mut root_paths, job.file)?;
                let id = upsert_file(
                    &tx,
                    job,
                    root,
                    scan.end_offset,
                    scan.stats.unreadable_files == 0,
                )?;
                job.id = Some(id);
                add_file_stats(&tx, id, &scan.stats, job.start == 0)?;
                if job.start == 0 && opts.recalculate {
                    // A re-read from the start replaces what the lines held.
                    packed::modify_file(&tx, id, |l| l.slot = None)?;
                }
                let mut lines = Vec::with_capacity(scan.entries.len());
                for e in &scan.entries {
                    let cost = crate::pricing::cost_of(e, CostMode::Calculate, &mut resolver);
                    // Lines without a message id are never merged: they count as
                    // read. The others get their verdict below.
                    let slot = e.message_id.is_none().then_some((id, e.offset));
                    let model = models.id(&tx, e.model.as_deref())?;
                    lines.push(Line::new(e, model, cost, slot));
                    fresh.insert((id, e.offset));
                    report.new_lines += 1;
                    if let Some(m) = e.message_id {
                        touched.insert(m);
                        placed.push((m, (id, e.offset)));
                    }
                    let t = e.timestamp.as_millisecond();
                    earliest_new
                        .entry(id)
                        .and_modify(|x| *x = (*x).min(t))
                        .or_insert(t);
                }
                packed::upsert(&tx, id, lines)?;
            }
            packed::add_to_buckets(&tx, std::mem::take(&mut placed))?;
            tx.commit()?;
            i = j;
        }

        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if repriced && !first_run {
            reprice(&tx, &mut resolver)?;
        }
        let file_roots = FileRoots::load(&tx)?;
        let mut changed_any = false;
        if full {
            // Also rebuilds the buckets, which a cold run killed before
            // its end left out.
            recompute_all(&tx, &file_roots)?;
            report.windows = WindowUpdate::Recomputed;
            changed_any = true;
        } else {
            let (mut earliest, only_fresh) = dedup_groups(&tx, &file_roots, &touched, &fresh)?;
            for (file, t) in &earliest_new {
                if let Some(root) = file_roots.of(*file) {
                    let e = earliest.entry(root).or_insert(*t);
                    *e = (*e).min(*t);
                }
            }
            let mut changes: Vec<(i64, i64)> = earliest.into_iter().collect();
            changes.sort_unstable();
            for (root, t) in changes {
                changed_any = true;
                let files = file_roots.files_of(&[root]);
                let latest = latest_before.get(&root).copied();
                let appended = only_fresh && retire.is_empty() && latest.is_some_and(|l| t > l);
                if appended && let Some(l) = latest {
                    extend_blocks(&tx, root, &files, l)?;
                    report.windows = report.windows.and(WindowUpdate::Extended);
                } else {
                    rebuild_blocks(&tx, root, &files, Some(t))?;
                    report.windows = report.windows.and(WindowUpdate::RecomputedFrom(t));
                }
            }
        }
        set_meta(&tx, "prices", &price_mark)?;
        set_meta(&tx, "dirty", "0")?;
        bump_generation(&tx)?;
        tx.commit()?;
        report.changed = changed_any || report.files_gone > 0;
        Ok(report)
    }

    /// First run: everything is new, so de-duplication and windows are
    /// computed in memory while the lines stream into the store, each batch
    /// committed with its files' read positions.
    fn cold_sync(
        &mut self,
        files: &[TranscriptFile],
        prices: &PriceTable,
        price_mark: &str,
        report: &mut SyncReport,
    ) -> Result<(), StoreError> {
        // An eighth of the usual page cache: the load appends chunks in key
        // order, so it runs as fast with 1 MiB, and the memory saved pays
        // for the bucket entries held to the end, keeping the run's peak
        // clear of its 64 MiB bound (1 GiB: 60–61 MiB; 62–63 with 4 MiB).
        self.conn
            .pragma_update(None, "cache_size", -super::COLD_CACHE_KIB)?;
        map_big_allocations();
        let mut order: Vec<&TranscriptFile> = files.iter().collect();
        order.sort_by(|a, b| path_bytes(a).cmp(path_bytes(b)));
        // File ids follow path order, so (file id, offset) sorts like
        // reading order. The table is empty (a first run), so they are
        // chosen here and the reading starts while the rows go in.
        let ids: Vec<i64> = (1..=order.len() as i64).collect();
        report.files_read = order.len();
        // Each account's responses are de-duplicated and windowed apart.
        let roots_of: Vec<Option<i64>> = {
            let mut root_paths = self.scope_paths()?;
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let roots = order
                .iter()
                .map(|f| file_root(&tx, &mut root_paths, f))
                .collect::<Result<_, _>>()?;
            tx.commit()?;
            roots
        };
        let roots_of = &roots_of;
        let batch_bytes = batch_bytes();
        let mut batches: Vec<std::ops::Range<usize>> = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let mut bytes = 0;
            let mut j = i;
            while j < order.len() && (j == i || bytes < batch_bytes) {
                bytes += order[j].size;
                j += 1;
            }
            batches.push(i..j);
            i = j;
        }
        // Three stages, each on its own thread, so the cores never wait on
        // one another: a reader parses batch after batch (on parsing threads
        // that run ahead into the next batch), a producer de-duplicates and
        // prices them, and this thread writes them to SQLite. With the
        // reader and producer as one thread, the pool sat idle while each
        // batch was judged (1 GiB: about 15 % of both cores). At most one
        // batch waits in each channel, and a parsed batch holds only its
        // entries, so memory stays bounded.
        let (send_scans, scanned) =
            std::sync::mpsc::sync_channel::<(std::ops::Range<usize>, Vec<FileScan>)>(1);
        let (send, judged) = std::sync::mpsc::sync_channel::<ColdBatch>(1);
        let conn = &mut self.conn;
        let order = &order;
        let ids = &ids;
        std::thread::scope(|scope| -> Result<(), StoreError> {
            scope.spawn(move || {
                let jobs: Vec<Vec<(&TranscriptFile, u64)>> = batches
                    .iter()
                    .map(|range| order[range.clone()].iter().map(|f| (*f, 0)).collect())
                    .collect();
                // Stops reading when the judge has stopped.
                scan_batches(&jobs, |b, scans| {
                    send_scans.send((batches[b].clone(), scans)).is_ok()
                });
            });
            let producer = scope.spawn(move || {
                let mut judge = ColdJudge::new(prices);
                for (range, scans) in scanned.iter() {
                    let batch = judge.judge(range, scans, ids, roots_of);
                    if send.send(batch).is_err() {
                        // The writer stopped on an error: dropping `scanned`
                        // stops the reader too.
                        break;
                    }
                }
                // Ends the writer's loop, which then writes the buckets
                // while this thread computes the windows (and frees the
                // counted copies).
                drop(send);
                judge.windows()
            });
            // Owned here so that an error return drops it, which stops the
            // producer instead of leaving it blocked on a full channel.
            let judged = judged;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            set_meta(&tx, "dirty", "1")?;
            for ((f, &id), root) in order.iter().zip(ids).zip(roots_of) {
                // Size and time are recorded with the lines (below): a row
                // that says "nothing read yet" must not look up to date if
                // the run dies.
                insert_file(&tx, f, Some(id), *root, 0, 0, 0)?;
            }
            tx.commit()?;
            let mut writer = ColdWriter::default();
            for batch in judged.iter() {
                write_cold_batch(conn, &batch, ids, order, &mut writer, report)?;
            }
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Every line is in: the buckets are written while the producer
            // computes the windows.
            packed::set_buckets_from_runs(&tx, &writer.placed, &writer.runs)?;
            let windows = match producer.join() {
                Ok(windows) => windows,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            tx.execute("DELETE FROM blocks", [])?;
            for (root, [auto, calculate, display]) in windows {
                insert_blocks(&tx, root, &auto, &calculate, &display)?;
            }
            report.windows = WindowUpdate::Recomputed;
            set_meta(&tx, "prices", price_mark)?;
            set_meta(&tx, "dirty", "0")?;
            bump_generation(&tx)?;
            tx.commit()?;
            Ok(())
        })?;
        self.conn
            .pragma_update(None, "cache_size", -super::CACHE_KIB)?;
        report.changed = true;
        Ok(())
    }

    fn known_files(&self) -> Result<HashMap<Vec<u8>, KnownFile>, StoreError> {
        let filter = match &self.scope {
            _ if self.whole => String::new(),
            super::Scope::Every => String::new(),
            super::Scope::Roots(ids) => format!(" WHERE root_id IN ({})", id_list(ids)),
        };
        let mut stmt = self
            .conn
            .prepare(&format!("{KNOWN_FILE} FROM files{filter}"))?;
        let rows = stmt.query_map([], known_file)?;
        let mut out = HashMap::new();
        for r in rows {
            let (k, v) = r?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// The rows of the transcripts directly in `dir`.
    fn known_files_in(
        &self,
        dir: &std::path::Path,
    ) -> Result<HashMap<Vec<u8>, KnownFile>, StoreError> {
        let (lo, hi) = roots::below_range(dir.as_os_str().as_encoded_bytes());
        let mut stmt = self.conn.prepare_cached(&format!(
            "{KNOWN_FILE} FROM files WHERE path >= ?1 AND path < ?2"
        ))?;
        let rows = stmt.query_map([lo, hi], known_file)?;
        let mut out = HashMap::new();
        for r in rows {
            let (k, v) = r?;
            if super::path_from_blob(k.clone()).parent() == Some(dir) {
                out.insert(k, v);
            }
        }
        Ok(out)
    }

    /// The rows of these paths only (those a quick look saw).
    fn known_files_of<'p>(
        &self,
        paths: impl Iterator<Item = &'p [u8]>,
    ) -> Result<HashMap<Vec<u8>, KnownFile>, StoreError> {
        // One read transaction for all the look-ups: alone, each would take
        // and drop the WAL read lock (two fcntl calls and a check of the WAL
        // index), which for a few hundred paths was a tenth of a warm run.
        let tx = self.conn.unchecked_transaction()?;
        let mut out = HashMap::new();
        {
            let mut stmt =
                tx.prepare_cached(&format!("{KNOWN_FILE} FROM files WHERE path = ?1"))?;
            for p in paths {
                if let Some((k, v)) = stmt.query_row([p], known_file).optional()? {
                    out.insert(k, v);
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }
}

/// `1,2,3`: ids for an SQL `IN` list (integers, so nothing to escape).
pub(super) fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

impl Store {
    /// Whether the store has recorded no transcript at all (a cold load).
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(!self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM files)", [], |r| r.get(0))?)
    }
}

/// The root a transcript is recorded under: the run's root that holds it,
/// else the one its path names (recorded when new). `roots` are the known
/// roots (id, path), extended with any added here.
fn file_root(
    conn: &rusqlite::Connection,
    roots: &mut Vec<(i64, Vec<u8>)>,
    f: &TranscriptFile,
) -> Result<Option<i64>, StoreError> {
    let path = path_bytes(f);
    if let Some((id, _)) = roots.iter().find(|(_, r)| roots::is_below(path, r)) {
        return Ok(Some(*id));
    }
    let Some(root) = roots::root_by_path(path, &f.origin.project) else {
        return Ok(None);
    };
    let id = roots::root_id(conn, &root)?;
    roots.push((id, root));
    Ok(Some(id))
}

const KNOWN_FILE: &str = "SELECT path, id, device, inode, size, mtime_ns, read_to, present";

fn known_file(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, KnownFile)> {
    Ok((
        r.get::<_, Vec<u8>>(0)?,
        KnownFile {
            id: r.get(1)?,
            device: r.get::<_, i64>(2)? as u64,
            inode: r.get::<_, i64>(3)? as u64,
            size: r.get::<_, i64>(4)? as u64,
            mtime_ns: r.get(5)?,
            read_to: r.get::<_, i64>(6)? as u64,
            present: r.get(7)?,
        },
    ))
}

/// Whether `f` (as a walk saw it, before this process took the writers'
/// lock) now holds at least `read_to` bytes under the same identity. The
/// walk's size can be older than what another process read meanwhile: that
/// file did not shrink, and re-reading it whole as a replacement would pile
/// up copies under contention.
fn still_holds(f: &TranscriptFile, read_to: u64) -> bool {
    std::fs::metadata(&f.path).is_ok_and(|m| {
        let (device, inode, _) = crate::ingest::discover::file_identity(&m);
        m.len() >= read_to && (device, inode) == (f.device, f.inode)
    })
}

/// Moves a transcript's row aside (its lines stay counted) so its path can
/// get a new row.
fn retire_file(tx: &Transaction<'_>, id: i64) -> Result<(), StoreError> {
    tx.execute(
        // Still a BLOB (concatenation gives TEXT), so paths keep sorting by bytes.
        "UPDATE files SET path = CAST(path || x'00' || CAST(id AS TEXT) AS BLOB), present = 0 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// Whether a file read again holds every line stored for it, unchanged.
fn same_lines(
    tx: &Transaction<'_>,
    file_id: i64,
    entries: &[UsageEntry],
) -> Result<bool, StoreError> {
    let fresh: FxHashMap<u64, &UsageEntry> = entries.iter().map(|e| (e.offset, e)).collect();
    Ok(packed::file_lines(tx, file_id)?.iter().all(|l| {
        fresh.get(&l.offset).is_some_and(|e| {
            l.ts_ms == e.timestamp.as_millisecond()
                && l.tokens == e.tokens
                && l.message_id == e.message_id
        })
    }))
}

fn path_bytes(f: &TranscriptFile) -> &[u8] {
    f.path.as_os_str().as_encoded_bytes()
}

/// Records that this sync changed the store: windows kept for unions of
/// roots are stale from now on.
fn bump_generation(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('windows_gen', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [],
    )?;
    Ok(())
}

/// Keeps the windows of several roots taken together (`scope`, computed at
/// `generation`) for the next run, unless a sync changed the store since.
pub(super) fn keep_union_windows(
    conn: &rusqlite::Connection,
    scope: &str,
    generation: i64,
    [auto, calculate, display]: &[Vec<Block>; 3],
) -> Result<(), StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let now: i64 = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'windows_gen'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if now != generation {
        return Ok(());
    }
    let slot: i64 = match tx
        .query_row(
            "SELECT slot FROM union_windows WHERE scope = ?1",
            [scope],
            |r| r.get(0),
        )
        .optional()?
    {
        Some(s) => s,
        None => tx.query_row(
            "SELECT coalesce(max(slot), 0) + 1 FROM union_windows",
            [],
            |r| r.get(0),
        )?,
    };
    tx.execute("DELETE FROM blocks WHERE root_id = ?1", [-slot])?;
    insert_blocks(&tx, -slot, auto, calculate, display)?;
    tx.execute(
        "INSERT INTO union_windows (scope, slot, generation) VALUES (?1, ?2, ?3)
         ON CONFLICT(scope) DO UPDATE SET generation = excluded.generation",
        params![scope, slot, generation],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// What reading a file found, accumulated across runs (the `skipped` column).
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct FileCounts {
    pub skipped: Vec<u64>,
    pub oversized: u64,
    /// These two describe the file as last read, not a running total.
    pub unreadable: u64,
    pub partial_tail: u64,
}

/// Adds what reading a file found to its counters (replacing them when the
/// file was read from the start).
fn add_file_stats(
    tx: &Transaction<'_>,
    id: i64,
    stats: &LineStats,
    from_start: bool,
) -> Result<(), StoreError> {
    let before = if from_start {
        (0u64, FileCounts::default())
    } else {
        tx.prepare_cached("SELECT lines_read, skipped FROM files WHERE id = ?1")?
            .query_row([id], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
            })
            .map(|(l, s)| {
                (
                    l,
                    serde_json::from_str::<FileCounts>(&s).unwrap_or_default(),
                )
            })?
    };
    let (lines, skipped) = file_counts(before, stats);
    tx.prepare_cached("UPDATE files SET lines_read = ?2, skipped = ?3 WHERE id = ?1")?
        .execute(params![id, lines, skipped])?;
    Ok(())
}

/// A file's `lines_read` and `skipped` columns: what reading it found,
/// added to what they held.
fn file_counts((mut lines, mut counts): (u64, FileCounts), stats: &LineStats) -> (i64, String) {
    counts.skipped.resize(stats.skipped.len(), 0);
    lines += stats.lines;
    for (a, b) in counts.skipped.iter_mut().zip(stats.skipped) {
        *a += b;
    }
    counts.oversized += stats.oversized_lines;
    counts.unreadable = stats.unreadable_files;
    counts.partial_tail = stats.partial_tail_bytes;
    (
        lines as i64,
        serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into()),
    )
}

/// A cold batch read and judged, ready to be written.
struct ColdBatch {
    /// The files read (indexes into the cold run's path order).
    files: std::ops::Range<usize>,
    scans: Vec<FileScan>,
    /// For each entry in reading order: its price, and where its response
    /// was first seen when it is the counted copy.
    rows: Vec<(crate::domain::EntryCost, Option<Pos>)>,
    /// Lines of earlier batches that stopped being the counted copy.
    demote: Vec<Pos>,
}

/// The cold load's de-duplication and pricing, batch after batch, and in
/// the end the windows over the counted copies, root by root.
struct ColdJudge<'p> {
    resolver: PriceResolver<'p>,
    roots: FxHashMap<Option<i64>, RootJudge>,
}

/// One root's responses during a cold load.
#[derive(Default)]
struct RootJudge {
    deduper: Deduper<Pos>,
    /// The calculated price of each response's counted copy (by its index
    /// in the deduper), kept from when the copy was read: the windows need
    /// it, and pricing 100,000 copies again sat in the serial end of the run.
    calc: Vec<f64>,
}

impl<'p> ColdJudge<'p> {
    fn new(prices: &'p PriceTable) -> Self {
        ColdJudge {
            resolver: PriceResolver::new(prices),
            roots: FxHashMap::default(),
        }
    }

    /// De-duplicates and prices one cold batch, in reading order.
    fn judge(
        &mut self,
        files: std::ops::Range<usize>,
        scans: Vec<FileScan>,
        ids: &[i64],
        roots_of: &[Option<i64>],
    ) -> ColdBatch {
        let roots_of = &roots_of[files.clone()];
        let ids = &ids[files.clone()];
        let first_id_of_batch = ids[0];
        let mut placed: Vec<(Pos, Option<i64>, usize, crate::domain::EntryCost)> = Vec::new();
        let mut demote: Vec<Pos> = Vec::new();
        for (k, scan) in scans.iter().enumerate() {
            let root = roots_of[k];
            let judge = self.roots.entry(root).or_default();
            for e in &scan.entries {
                let pos = (ids[k], e.offset);
                let cost = crate::pricing::cost_of(e, CostMode::Calculate, &mut self.resolver);
                let pushed = judge.deduper.push_at(e.clone(), pos);
                if pushed.index == judge.calc.len() {
                    judge.calc.push(cost.usd);
                } else if judge.deduper.kept()[pushed.index].winner == pos {
                    judge.calc[pushed.index] = cost.usd;
                }
                if let Some(old) = pushed.displaced
                    && old.0 < first_id_of_batch
                {
                    demote.push(old);
                }
                placed.push((pos, root, pushed.index, cost));
            }
        }
        // Verdicts as they stand after this batch: a later batch that
        // displaces one of these lines demotes it then.
        let rows = placed
            .into_iter()
            .map(|(pos, root, index, cost)| {
                let verdict = self.roots.get(&root).map(|j| &j.deduper.kept()[index]);
                (
                    cost,
                    verdict.and_then(|v| (v.winner == pos).then_some(v.slot)),
                )
            })
            .collect();
        ColdBatch {
            files,
            scans,
            rows,
            demote,
        }
    }

    /// Each root's windows over its counted copies under each cost mode,
    /// taken in time order (reading order on ties).
    fn windows(self) -> Vec<(i64, [Vec<Block>; 3])> {
        let mut out = Vec::new();
        for (root, judge) in self.roots {
            let Some(root) = root else { continue };
            let kept = judge.deduper.finish_kept();
            // Sorting 24-byte keys, not 200-byte entries.
            let mut keys: Vec<(jiff::Timestamp, Pos, usize)> = kept
                .iter()
                .enumerate()
                .map(|(i, k)| (k.entry.timestamp, k.slot, i))
                .collect();
            keys.sort_unstable();
            let entries: Vec<&UsageEntry> = keys.iter().map(|k| &kept[k.2].entry).collect();
            let calc: Vec<f64> = keys.iter().map(|k| judge.calc[k.2]).collect();
            out.push((root, windows(None, &entries, &calc)));
        }
        out
    }
}

/// Has glibc give every allocation of 1 MiB or more its own mapping, for
/// good. By default the first such block freed raises that bound (up to
/// 32 MiB), after which the batches' entry lists and the de-duplicator's
/// growing table come from the four threads' heaps: a grown table then sat
/// next to the one it replaced, and freed batches stayed spread over the
/// heaps. A cold 1 GiB load peaked at 64–67 MiB that way, 55–58 MiB with the
/// bound fixed, in the same time (six runs each).
fn map_big_allocations() {
    crate::sys::map_allocations_from(1 << 20);
}

/// What the cold load's writer keeps from batch to batch.
#[derive(Default)]
struct ColdWriter {
    models: packed::Models,
    /// Where every line with a message id is, for the buckets written at
    /// the end: one sorted run per batch.
    placed: Vec<(u64, Pos)>,
    runs: Vec<usize>,
    lines: Vec<Line>,
    buf: Vec<u8>,
}

/// Stores one judged cold batch: its lines, the demotions it causes, and its
/// files' read positions, in one transaction.
fn write_cold_batch(
    conn: &mut rusqlite::Connection,
    batch: &ColdBatch,
    ids: &[i64],
    order: &[&TranscriptFile],
    writer: &mut ColdWriter,
    report: &mut SyncReport,
) -> Result<(), StoreError> {
    let ids = &ids[batch.files.clone()];
    let files = &order[batch.files.clone()];
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut rows = batch.rows.iter();
        for (k, scan) in batch.scans.iter().enumerate() {
            report.stats.merge(&scan.stats);
            writer.lines.clear();
            for (e, (cost, slot)) in scan.entries.iter().zip(rows.by_ref()) {
                let model = writer.models.id(&tx, e.model.as_deref())?;
                writer.lines.push(Line::new(e, model, *cost, *slot));
                if let Some(m) = e.message_id {
                    writer.placed.push((m, (ids[k], e.offset)));
                }
            }
            // A cold load's files are new: nothing stored to merge with.
            packed::put_new(&tx, ids[k], &writer.lines, &mut writer.buf)?;
        }
        report.new_lines += batch.rows.len() as u64;
        let run_start = writer.runs.last().copied().unwrap_or(0);
        packed::sort_for_buckets(&mut writer.placed[run_start..]);
        writer.runs.push(writer.placed.len());
        packed::modify_at(&tx, batch.demote.iter().copied(), |_, l| {
            l.slot = None;
            true
        })?;
        let mut done = tx.prepare_cached(
            "UPDATE files SET read_to = ?2, size = ?3, mtime_ns = ?4, lines_read = ?5, skipped = ?6
             WHERE id = ?1",
        )?;
        for (k, scan) in batch.scans.iter().enumerate() {
            let f = files[k];
            let (lines, skipped) = file_counts(Default::default(), &scan.stats);
            done.execute(params![
                ids[k],
                scan.end_offset as i64,
                f.size as i64,
                recorded_mtime(f, scan.stats.unreadable_files == 0),
                lines,
                skipped
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The time to record for a file just read. A file that could not be read
/// (no permission) is recorded with no time, so the next walk sees it changed
/// and it is read again: making it readable moves neither its size nor its
/// time.
fn recorded_mtime(f: &TranscriptFile, readable: bool) -> i64 {
    if readable { f.mtime_ns } else { UNREAD_MTIME }
}

/// Records a file read up to `read_to` (see [`recorded_mtime`] for a file
/// that could not be read).
fn upsert_file(
    tx: &Transaction<'_>,
    job: &Job<'_>,
    root: Option<i64>,
    read_to: u64,
    readable: bool,
) -> Result<i64, StoreError> {
    let f = job.file;
    let mtime_ns = recorded_mtime(f, readable);
    match job.id {
        Some(id) => {
            tx.prepare_cached(
                "UPDATE files SET device = ?2, inode = ?3, size = ?4, mtime_ns = ?5, read_to = ?6, present = 1
                 WHERE id = ?1",
            )?
            .execute(params![id, f.device as i64, f.inode as i64, f.size as i64, mtime_ns, read_to as i64])?;
            Ok(id)
        }
        None => insert_file(tx, f, None, root, f.size, mtime_ns, read_to),
    }
}

/// A new row for `f`, numbered `id` or, without one, after the last row.
fn insert_file(
    tx: &Transaction<'_>,
    f: &TranscriptFile,
    id: Option<i64>,
    root: Option<i64>,
    size: u64,
    mtime_ns: i64,
    read_to: u64,
) -> Result<i64, StoreError> {
    let o = &f.origin;
    tx.prepare_cached(
        "INSERT INTO files (id, path, project, session_id, project_path, device, inode, size, mtime_ns, read_to, root_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id,
        path_bytes(f),
        &*o.project,
        o.session_id,
        o.project_path,
        f.device as i64,
        f.inode as i64,
        size as i64,
        mtime_ns,
        read_to as i64,
        root
    ])?;
    Ok(tx.last_insert_rowid())
}

/// A stored line as de-duplication sees it, with its current verdict.
struct StoredLine {
    entry: UsageEntry,
    pos: Pos,
    slot: Option<Pos>,
}

impl StoredLine {
    fn new(pos: Pos, line: &Line, models: &packed::Models, origin: &Arc<Origin>) -> StoredLine {
        StoredLine {
            entry: line.entry(origin.clone(), models),
            pos,
            slot: line.slot,
        }
    }
}

/// The verdicts that differ from what is stored, added to `changes`
/// (position to its new slot, `None` for a copy that no longer counts).
/// Returns the earliest timestamp among those lines.
fn verdict_changes(
    lines: &[StoredLine],
    kept: Vec<Kept<Pos>>,
    changes: &mut FxHashMap<Pos, Option<Pos>>,
) -> Option<i64> {
    let winners: FxHashMap<Pos, Pos> = kept.into_iter().map(|k| (k.winner, k.slot)).collect();
    let mut earliest: Option<i64> = None;
    for line in lines {
        let want = winners.get(&line.pos).copied();
        if want == line.slot {
            continue;
        }
        changes.insert(line.pos, want);
        let t = line.entry.timestamp.as_millisecond();
        earliest = Some(earliest.map_or(t, |x: i64| x.min(t)));
    }
    earliest
}

/// Writes verdicts found by [`verdict_changes`].
fn apply_verdicts(
    tx: &Transaction<'_>,
    changes: FxHashMap<Pos, Option<Pos>>,
) -> Result<(), StoreError> {
    packed::modify_at(tx, changes.keys().copied(), |pos, l| {
        let want = changes.get(&pos).copied().flatten();
        let changed = l.slot != want;
        l.slot = want;
        changed
    })
}

/// Placeholder origin: de-duplication never looks at project or session names.
fn no_origin() -> Arc<Origin> {
    Arc::new(Origin {
        project: Arc::from(""),
        session_id: String::new(),
        project_path: String::new(),
    })
}

/// The paths of files by id, looked up once each: de-duplication and the
/// windows order lines by path, then offset (reading order).
struct Paths<'t> {
    tx: &'t Transaction<'t>,
    known: FxHashMap<i64, Arc<[u8]>>,
}

impl<'t> Paths<'t> {
    fn new(tx: &'t Transaction<'t>) -> Self {
        Paths {
            tx,
            known: FxHashMap::default(),
        }
    }

    /// Every file's path at once (for reads of the whole history).
    fn all(tx: &'t Transaction<'t>) -> Result<Self, StoreError> {
        let mut paths = Paths::new(tx);
        let mut stmt = tx.prepare_cached("SELECT id, path FROM files")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            paths
                .known
                .insert(r.get(0)?, Arc::from(packed::blob(r, 1)?));
        }
        Ok(paths)
    }

    fn of(&mut self, id: i64) -> Result<Arc<[u8]>, StoreError> {
        if let Some(p) = self.known.get(&id) {
            return Ok(p.clone());
        }
        let p: Vec<u8> = self
            .tx
            .prepare_cached("SELECT path FROM files WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .unwrap_or_default();
        let p: Arc<[u8]> = Arc::from(p);
        self.known.insert(id, p.clone());
        Ok(p)
    }

    /// Sorts `items` by the reading order of the position `pos` gives.
    fn sort_by_pos<T>(
        &mut self,
        items: &mut [T],
        pos: impl Fn(&T) -> Pos,
    ) -> Result<(), StoreError> {
        for item in items.iter() {
            self.of(pos(item).0)?;
        }
        let known = &self.known;
        let path = |id: i64| known.get(&id).map_or(&[][..], |p| &p[..]);
        packed::sort_in_reading_order(items, path, pos);
        Ok(())
    }
}

/// Attributes every transcript to the root its path names (a store from
/// before accounts), then recomputes verdicts and windows per root.
pub(super) fn attribute_by_path(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let left = roots::attribute_all_by_path(tx)?;
    if left > 0 {
        tracing::warn!(
            files = left,
            "transcripts under no data root left unattributed"
        );
    }
    recompute_all(tx, &FileRoots::load(tx)?)
}

/// Every verdict, the buckets and every root's windows again.
fn recompute_all(tx: &Transaction<'_>, roots: &FileRoots) -> Result<(), StoreError> {
    dedup_all(tx, roots)?;
    tx.execute("DELETE FROM blocks", [])?;
    for root in roots.roots() {
        rebuild_blocks(tx, root, &roots.files_of(&[root]), None)?;
    }
    Ok(())
}

/// Recomputes every response's verdict from all stored lines, root by root
/// (a response counts once per account), and the message-id buckets.
fn dedup_all(tx: &Transaction<'_>, roots: &FileRoots) -> Result<(), StoreError> {
    let origin = no_origin();
    let models = packed::Models::load(tx)?;
    let mut paths = Paths::all(tx)?;
    let mut by_root: FxHashMap<Option<i64>, Vec<StoredLine>> = FxHashMap::default();
    let mut buckets: Vec<(u64, Pos)> = Vec::new();
    packed::scan(tx, packed::Scan::All, |file, l| {
        if let Some(m) = l.message_id {
            buckets.push((m, l.pos(file)));
            by_root
                .entry(roots.of(file))
                .or_default()
                .push(StoredLine::new(l.pos(file), &l, &models, &origin));
        }
        Ok(())
    })?;
    packed::set_buckets(tx, buckets)?;
    let mut changes = FxHashMap::default();
    for lines in by_root.values_mut() {
        paths.sort_by_pos(lines, |l| l.pos)?;
        let mut d: Deduper<Pos> = Deduper::with_capacity(lines.len());
        for l in lines.iter() {
            d.push_at(l.entry.clone(), l.pos);
        }
        verdict_changes(lines, d.finish_kept(), &mut changes);
    }
    apply_verdicts(tx, changes)
}

/// Recomputes the verdicts of the responses with these message ids (each
/// response depends only on the lines sharing its message id, within its
/// root). Returns, per root, the earliest line whose verdict changed, and
/// whether every line of those responses is in `fresh` (no response seen
/// before was touched).
fn dedup_groups(
    tx: &Transaction<'_>,
    roots: &FileRoots,
    ids: &FxHashSet<u64>,
    fresh: &FxHashSet<Pos>,
) -> Result<(FxHashMap<i64, i64>, bool), StoreError> {
    let origin = no_origin();
    let models = packed::Models::load(tx)?;
    let mut paths = Paths::new(tx);
    let found = packed::positions_of(tx, ids.iter().copied())?;
    let stored = packed::lines_at(tx, found.values().flatten().copied())?;
    let mut earliest: FxHashMap<i64, i64> = FxHashMap::default();
    let mut all_fresh = true;
    let mut changes = FxHashMap::default();
    for (id, positions) in found {
        let mut all: Vec<(Option<i64>, StoredLine)> = positions
            .iter()
            .filter_map(|p| stored.get(p).map(|l| (p, l)))
            // A bucket can still name a line since replaced by another.
            .filter(|(_, l)| l.message_id == Some(id))
            .map(|(p, l)| (roots.of(p.0), StoredLine::new(*p, l, &models, &origin)))
            .collect();
        // A response nearly always lives in one root: group without a map.
        all.sort_by_key(|(root, _)| *root);
        let mut groups: Vec<(Option<i64>, Vec<StoredLine>)> = Vec::new();
        for (root, line) in all {
            match groups.last_mut() {
                Some((r, lines)) if *r == root => lines.push(line),
                _ => groups.push((root, vec![line])),
            }
        }
        for (root, lines) in &mut groups {
            paths.sort_by_pos(lines, |l| l.pos)?;
            all_fresh &= lines.iter().all(|l| fresh.contains(&l.pos));
            let mut d: Deduper<Pos> = Deduper::default();
            for l in lines.iter() {
                d.push_at(l.entry.clone(), l.pos);
            }
            if let Some(t) = verdict_changes(lines, d.finish_kept(), &mut changes)
                && let Some(root) = root
            {
                let e = earliest.entry(*root).or_insert(t);
                *e = (*e).min(t);
            }
        }
    }
    apply_verdicts(tx, changes)?;
    Ok((earliest, all_fresh))
}

/// New prices: every line's calculated cost again.
fn reprice(tx: &Transaction<'_>, resolver: &mut PriceResolver<'_>) -> Result<(), StoreError> {
    let origin = no_origin();
    let models = packed::Models::load(tx)?;
    let files: Vec<i64> = tx
        .prepare("SELECT DISTINCT file_id FROM chunks")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for file in files {
        packed::modify_file(tx, file, |l| {
            let c = crate::pricing::cost_of(
                &l.entry(origin.clone(), &models),
                CostMode::Calculate,
                resolver,
            );
            l.calc_cost = c.usd;
            l.unpriced = c.unpriced;
        })?;
    }
    Ok(())
}

/// Recomputes the stored windows from the first one that a change at `from`
/// (ms) can affect, or all of them.
fn rebuild_blocks(
    tx: &Transaction<'_>,
    root: i64,
    files: &Files,
    from: Option<i64>,
) -> Result<(), StoreError> {
    // A window's start depends only on the entries before its first entry, so
    // restarting at the last window that began before the change is exact.
    let restart: Option<(i64, i64)> = match from {
        None => None,
        Some(t) => tx
            .query_row(
                "SELECT start_ms, first_ms FROM blocks
                 WHERE root_id = ?2 AND is_gap = 0 AND first_ms < ?1
                 ORDER BY start_ms DESC LIMIT 1",
                [t, root],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok(),
    };
    let (from_start, from_first) = restart.map_or((i64::MIN, i64::MIN), |r| r);
    // The latest counted entry before the restart: the windows before it
    // hold every counted entry before `from_first`, and no change reaches
    // them.
    let prev_last: Option<i64> = if restart.is_some() {
        tx.query_row(
            "SELECT max(last_ms) FROM blocks WHERE root_id = ?2 AND is_gap = 0 AND start_ms < ?1",
            [from_start, root],
            |r| r.get(0),
        )?
    } else {
        None
    };
    let (entries, calc) = kept_since(tx, files, from_first, false)?;
    let refs: Vec<&UsageEntry> = entries.iter().collect();
    match prev_last {
        Some(p) => tx.execute(
            "DELETE FROM blocks WHERE root_id = ?3 AND (start_ms >= ?1 OR (is_gap = 1 AND start_ms > ?2))",
            params![from_start, p, root],
        )?,
        None => tx.execute("DELETE FROM blocks WHERE root_id = ?1", [root])?,
    };
    write_blocks(tx, root, prev_last, &refs, &calc)
}

/// The counted entries at or after `from` (after, when `strictly`), in
/// window order, with their calculated costs.
fn kept_since(
    tx: &Transaction<'_>,
    files: &Files,
    from: i64,
    strictly: bool,
) -> Result<(Vec<UsageEntry>, Vec<f64>), StoreError> {
    let models = packed::Models::load(tx)?;
    let mut lines: Vec<Line> = Vec::new();
    packed::scan_counted_since(tx, from, strictly, |file, l| {
        if files.contains(&file) {
            lines.push(l);
        }
    })?;
    // Time order, reading order (of where each response was first seen) on ties.
    let mut paths = Paths::new(tx);
    paths.sort_by_pos(&mut lines, |l| l.slot.unwrap_or_default())?;
    lines.sort_by_key(|l| l.ts_ms);
    let origin = no_origin();
    let calc = lines.iter().map(|l| l.calc_cost).collect();
    let entries = lines
        .iter()
        .map(|l| l.entry(origin.clone(), &models))
        .collect();
    Ok((entries, calc))
}

/// Extends the stored windows with the counted entries after `latest` (the
/// last counted entry's time before this run), all of them new: the latest
/// window continues and later ones follow, without reading what came before.
fn extend_blocks(
    tx: &Transaction<'_>,
    root: i64,
    files: &Files,
    latest: i64,
) -> Result<(), StoreError> {
    let (entries, calc) = kept_since(tx, files, latest, true)?;
    let last = |mode: CostMode| -> Result<Block, StoreError> {
        Ok(tx.query_row(
            &format!(
                "SELECT {} FROM blocks WHERE root_id = ?1 AND is_gap = 0 ORDER BY start_ms DESC LIMIT 1",
                super::BLOCK_COLUMNS
            ),
            [root],
            |r| super::row_block(r, mode),
        )?)
    };
    let length = blocks::window_length(super::STORED_WINDOW_HOURS);
    let by_mode = |mode: CostMode, cost: &dyn Fn(usize) -> f64| -> Result<Vec<Block>, StoreError> {
        let timed = entries.iter().enumerate().map(|(i, e)| Timed {
            entry: e,
            cost: cost(i),
        });
        Ok(blocks::extend_window(last(mode)?, timed, length))
    };
    let auto = by_mode(CostMode::Auto, &|i| entries[i].cost_usd.unwrap_or(calc[i]))?;
    let calculate = by_mode(CostMode::Calculate, &|i| calc[i])?;
    let display = by_mode(CostMode::Display, &|i| entries[i].cost_usd.unwrap_or(0.0))?;
    insert_blocks(tx, root, &auto, &calculate, &display)
}

/// Computes the windows over `entries` (time order, following an entry at
/// `prev_last` when given) under each cost mode and stores them.
fn write_blocks(
    tx: &Transaction<'_>,
    root: i64,
    prev_last: Option<i64>,
    entries: &[&UsageEntry],
    calc: &[f64],
) -> Result<(), StoreError> {
    let [auto, calculate, display] = windows(prev_last, entries, calc);
    insert_blocks(tx, root, &auto, &calculate, &display)
}

/// The windows over `entries` (time order, following an entry at
/// `prev_last` when given) under each cost mode: auto, calculate, display.
pub(super) fn windows(
    prev_last: Option<i64>,
    entries: &[&UsageEntry],
    calc: &[f64],
) -> [Vec<Block>; 3] {
    let length = blocks::window_length(super::STORED_WINDOW_HOURS);
    let prev = prev_last.map(super::ms);
    // The modes differ only in what an entry costs: the windows are found
    // once, then each other mode's costs are summed over the same entries
    // in the same order, the very sums a pass of its own would make. Three
    // passes were the end of a cold load, with the other core idle.
    let timed = entries
        .iter()
        .zip(calc)
        .map(|(e, &cost)| Timed { entry: e, cost });
    let calculate = blocks::identify_blocks_after(prev, timed, length);
    let mut auto = calculate.clone();
    let mut display = calculate.clone();
    let mut from = 0;
    for (a, d) in auto.iter_mut().zip(&mut display) {
        // A window holds the next `entries` entries; a gap holds none.
        let to = from + a.entries;
        let these = entries.get(from..to).unwrap_or_default();
        let costs = calc.get(from..to).unwrap_or_default();
        a.cost_usd = these
            .iter()
            .zip(costs)
            .fold(0.0, |sum, (e, c)| sum + e.cost_usd.unwrap_or(*c));
        d.cost_usd = these
            .iter()
            .fold(0.0, |sum, e| sum + e.cost_usd.unwrap_or(0.0));
        from = to;
    }
    [auto, calculate, display]
}

/// Stores windows computed under the three cost modes (same windows, three
/// costs), replacing stored ones with the same start.
fn insert_blocks(
    tx: &Transaction<'_>,
    root: i64,
    auto: &[Block],
    calculate: &[Block],
    display: &[Block],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO blocks (start_ms, end_ms, first_ms, last_ms, is_gap, entries, input, output,
            cache_create, cache_read, cost_auto, cost_calc, cost_display, models, reset_s, root_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for ((b, c), d) in auto.iter().zip(calculate).zip(display) {
        insert.execute(params![
            b.start.as_millisecond(),
            b.end.as_millisecond(),
            b.first_entry.map(|t| t.as_millisecond()),
            b.actual_end.map(|t| t.as_millisecond()),
            b.is_gap,
            b.entries as i64,
            b.tokens.input_tokens as i64,
            b.tokens.output_tokens as i64,
            b.tokens.cache_creation_input_tokens as i64,
            b.tokens.cache_read_input_tokens as i64,
            b.cost_usd,
            c.cost_usd,
            d.cost_usd,
            serde_json::to_string(&b.models).unwrap_or_else(|_| "[]".into()),
            b.usage_limit_reset.map(|t| t.as_second()),
            root,
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding the windows once and summing the other modes' costs gives
    /// what a pass per mode gives, to the bit.
    #[test]
    fn windows_of_all_modes_equal_a_pass_per_mode() {
        let start = jiff::Timestamp::from_second(1_750_000_000).unwrap();
        let mut at = start;
        let entries: Vec<UsageEntry> = (0..400u64)
            .map(|i| {
                // Mostly minutes apart, now and then a break past a window.
                let step = if i % 37 == 0 {
                    7 * 3600
                } else {
                    60 + (i * 7919) % 900
                };
                at = at
                    .checked_add(jiff::SignedDuration::from_secs(step as i64))
                    .unwrap();
                UsageEntry {
                    cost_usd: (i % 3 == 0).then_some(0.1 + i as f64 / 7.0),
                    ..crate::domain::sample_entry(at, i)
                }
            })
            .collect();
        let refs: Vec<&UsageEntry> = entries.iter().collect();
        let calc: Vec<f64> = (0..entries.len()).map(|i| i as f64 / 3.0 + 0.01).collect();
        let length = blocks::window_length(super::super::STORED_WINDOW_HOURS);
        let pass = |cost: &dyn Fn(usize) -> f64| {
            let timed = refs.iter().enumerate().map(|(i, e)| Timed {
                entry: e,
                cost: cost(i),
            });
            blocks::identify_blocks_after(None, timed, length)
        };
        let want = [
            pass(&|i| entries[i].cost_usd.unwrap_or(calc[i])),
            pass(&|i| calc[i]),
            pass(&|i| entries[i].cost_usd.unwrap_or(0.0)),
        ];
        let got = windows(None, &refs, &calc);
        assert!(want[0].iter().filter(|b| b.is_gap).count() > 5);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.len(), w.len());
            for (a, b) in g.iter().zip(w) {
                assert_eq!(a.cost_usd.to_bits(), b.cost_usd.to_bits());
                assert_eq!(
                    (a.start, a.entries, a.is_gap),
                    (b.start, b.entries, b.is_gap)
                );
            }
        }
    }
}
