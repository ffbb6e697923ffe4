//! Bringing the store up to date with the transcripts: read what is new,
//! record it, recompute what it changes.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{OptionalExtension, Transaction, params};
use rustc_hash::{FxHashMap, FxHashSet};

use super::{Store, StoreError, row_entry};
use crate::blocks::{self, Block, Timed};
use crate::dedup::{Deduper, Kept};
use crate::domain::{Origin, UsageEntry};
use crate::ingest::discover::TranscriptFile;
use crate::ingest::{FileScan, LineStats, scan_ranges};
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

#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Re-read every transcript from the start (`--recalculate`, `db rebuild`).
    pub recalculate: bool,
    /// The files given are only those looked at (a quick look): the others
    /// are unchanged, not gone; `vanished` lists the ones found missing.
    pub only_these: bool,
    pub vanished: Vec<std::path::PathBuf>,
    /// Directories listed whole by the quick look.
    pub relisted: Vec<std::path::PathBuf>,
}

#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    pub files_seen: usize,
    pub files_read: usize,
    pub files_gone: usize,
    pub stats: LineStats,
    pub new_lines: u64,
    /// Everything derived was recomputed (first run, rebuild, recovery, new prices).
    pub full_recompute: bool,
    /// Something visible may have changed.
    pub changed: bool,
    /// How the windows were brought up to date.
    pub windows: WindowUpdate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowUpdate {
    #[default]
    Untouched,
    /// New responses after the latest one: the latest window was extended.
    Extended,
    /// Recomputed from the window a change reached.
    RecomputedFrom(i64),
    Recomputed,
}

/// The time recorded for a file that could not be read: no real file has it.
const UNREAD_MTIME: i64 = crate::ingest::discover::UNSETTLED;

/// A reading position in the store: (file id, byte offset).
type Pos = (i64, u64);

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
            let any: bool =
                self.conn
                    .query_row("SELECT EXISTS (SELECT 1 FROM files)", [], |r| r.get(0))?;
            let mut known = self.known_files_of(paths)?;
            for dir in &opts.relisted {
                known.extend(self.known_files_in(dir)?);
            }
            (known, !any)
        } else {
            let known = self.known_files()?;
            let first_run = known.is_empty();
            (known, first_run)
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
        let mut touched: FxHashSet<u64> = FxHashSet::default();
        let mut earliest_new: Option<i64> = None;
        // Lines written by this run, and the time of the latest counted one
        // before it: when everything new is a new response after that time,
        // the windows are extended instead of recomputed.
        let mut fresh: FxHashSet<Pos> = FxHashSet::default();
        let latest_before: Option<i64> = self.conn.query_row(
            "SELECT max(last_ms) FROM blocks WHERE is_gap = 0",
            [],
            |r| r.get(0),
        )?;
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
                let id = upsert_file(&tx, job, scan.end_offset, scan.stats.unreadable_files == 0)?;
                job.id = Some(id);
                add_file_stats(&tx, id, &scan.stats, job.start == 0)?;
                if job.start == 0 && opts.recalculate {
                    // A re-read from the start replaces what the rows held.
                    tx.execute("UPDATE lines SET kept = 0 WHERE file_id = ?1", [id])?;
                }
                let mut insert = tx.prepare_cached(INSERT_LINE)?;
                for e in &scan.entries {
                    let cost =
                        crate::commands::usage::cost_of(e, CostMode::Calculate, &mut resolver);
                    // Lines without a message id are never merged: they count as
                    // read. The others get their verdict below.
                    let slot = e.message_id.is_none().then_some((id, e.offset));
                    insert_line(&mut insert, id, e, cost, slot)?;
                    fresh.insert((id, e.offset));
                    report.new_lines += 1;
                    if let Some(m) = e.message_id {
                        touched.insert(m);
                    }
                    let t = e.timestamp.as_millisecond();
                    earliest_new = Some(earliest_new.map_or(t, |x: i64| x.min(t)));
                }
            }
            tx.commit()?;
            i = j;
        }

        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if repriced && !first_run {
            reprice(&tx, &mut resolver)?;
        }
        // A cold run killed before rebuilding its indexes left them out.
        tx.execute_batch(super::schema::LINE_INDEXES)?;
        let mut only_fresh = true;
        let earliest_change = if full {
            dedup_all(&tx)?;
            None
        } else {
            let (changed, untouched_before) = dedup_groups(&tx, &touched, &fresh)?;
            only_fresh = untouched_before;
            match (changed, earliest_new) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let appended = only_fresh
            && retire.is_empty()
            && matches!((latest_before, earliest_change), (Some(l), Some(t)) if t > l);
        if full {
            rebuild_blocks(&tx, None)?;
            report.windows = WindowUpdate::Recomputed;
        } else if appended && let Some(l) = latest_before {
            extend_blocks(&tx, l)?;
            report.windows = WindowUpdate::Extended;
        } else if let Some(t) = earliest_change {
            rebuild_blocks(&tx, Some(t))?;
            report.windows = WindowUpdate::RecomputedFrom(t);
        }
        set_meta(&tx, "prices", &price_mark)?;
        set_meta(&tx, "dirty", "0")?;
        tx.commit()?;
        report.changed = full || earliest_change.is_some() || report.files_gone > 0;
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
        // Half the usual page cache: the load appends in key order (the
        // time index nearly so) and builds the message index by sorting, so
        // it runs as fast with 4 MiB, and the 4 MiB saved keep peak memory
        // clear of its 64 MiB bound.
        self.conn
            .pragma_update(None, "cache_size", -super::COLD_CACHE_KIB)?;
        let mut order: Vec<&TranscriptFile> = files.iter().collect();
        order.sort_by(|a, b| path_bytes(a).cmp(path_bytes(b)));
        // File ids follow path order, so (file id, offset) sorts like reading order.
        let mut ids = Vec::with_capacity(order.len());
        {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            set_meta(&tx, "dirty", "1")?;
            // The message-id index is built once at the end: kept current
            // through the load, its random keys cost a third more wall time.
            // The time index stays: its keys mostly arrive in order, and
            // keeping it up costs about the CPU that building it does, but
            // beside the parsing instead of in the serial tail of the run
            // (1 GiB: 1.25 s against 1.37 s with both built at the end).
            tx.execute_batch("DROP INDEX IF EXISTS lines_message;")?;
            for f in &order {
                // Size and time are recorded with the lines (below): a row that
                // says "nothing read yet" must not look up to date if the run dies.
                let blank = TranscriptFile {
                    size: 0,
                    mtime_ns: 0,
                    ..(*f).clone()
                };
                ids.push(upsert_file(
                    &tx,
                    &Job {
                        file: &blank,
                        start: 0,
                        id: None,
                        returning: false,
                    },
                    0,
                    true,
                )?);
            }
            tx.commit()?;
        }
        report.files_read = order.len();
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
        // A producer thread reads (on the parsing pool), de-duplicates and
        // prices the next batch while this thread writes the current one to
        // SQLite, which is the longest single chain of work: that way both
        // cores stay busy. At most one batch waits in the channel, so memory
        // stays bounded.
        let (send, judged) = std::sync::mpsc::sync_channel::<ColdBatch>(1);
        let conn = &mut self.conn;
        let order = &order;
        let ids = &ids;
        std::thread::scope(|scope| -> Result<(), StoreError> {
            let producer = scope.spawn(move || {
                let mut resolver = PriceResolver::new(prices);
                let mut deduper: Deduper<Pos> = Deduper::default();
                for range in batches {
                    let jobs: Vec<(&TranscriptFile, u64)> =
                        order[range.clone()].iter().map(|f| (*f, 0)).collect();
                    let scans = scan_ranges(&jobs);
                    let batch = judge_cold_batch(range, scans, ids, &mut deduper, &mut resolver);
                    if send.send(batch).is_err() {
                        // The writer stopped on an error: nothing more to read.
                        break;
                    }
                }
                // Ends the writer's loop, which then builds the message-id index.
                drop(send);
                counted_in_time_order(deduper, &mut resolver)
            });
            // Owned here so that an error return drops it, which stops the
            // producer instead of leaving it blocked on a full channel.
            let judged = judged;
            for batch in judged.iter() {
                write_cold_batch(conn, &batch, ids, order, report)?;
            }
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Every line is in: the message-id index builds while the
            // producer orders and prices the counted copies (the two longest
            // serial steps left, run side by side).
            tx.execute_batch(super::schema::LINE_INDEXES)?;
            let (kept, calc) = match producer.join() {
                Ok(counted) => counted,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            let entries: Vec<&UsageEntry> = kept.iter().map(|k| &k.entry).collect();
            tx.execute("DELETE FROM blocks", [])?;
            write_blocks(&tx, None, &entries, &calc)?;
            report.windows = WindowUpdate::Recomputed;
            set_meta(&tx, "prices", price_mark)?;
            set_meta(&tx, "dirty", "0")?;
            tx.commit()?;
            Ok(())
        })?;
        self.conn
            .pragma_update(None, "cache_size", -super::CACHE_KIB)?;
        report.changed = true;
        Ok(())
    }

    fn known_files(&self) -> Result<HashMap<Vec<u8>, KnownFile>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("{KNOWN_FILE} FROM files"))?;
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
        let mut lo = dir.as_os_str().as_encoded_bytes().to_vec();
        lo.push(b'/');
        let mut hi = lo.clone();
        if let Some(last) = hi.last_mut() {
            *last = b'/' + 1;
        }
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
    let mut stmt = tx.prepare_cached(
        "SELECT offset, ts_ms, input, output, cache_create, cache_read, message_id FROM lines WHERE file_id = ?1",
    )?;
    let mut rows = stmt.query([file_id])?;
    while let Some(r) = rows.next()? {
        let Some(e) = fresh.get(&(r.get::<_, i64>(0)? as u64)) else {
            return Ok(false);
        };
        let same = r.get::<_, i64>(1)? == e.timestamp.as_millisecond()
            && r.get::<_, i64>(2)? as u64 == e.tokens.input_tokens
            && r.get::<_, i64>(3)? as u64 == e.tokens.output_tokens
            && r.get::<_, i64>(4)? as u64 == e.tokens.cache_creation_input_tokens
            && r.get::<_, i64>(5)? as u64 == e.tokens.cache_read_input_tokens
            && r.get::<_, Option<i64>>(6)?.map(|v| v as u64) == e.message_id;
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

fn path_bytes(f: &TranscriptFile) -> &[u8] {
    f.path.as_os_str().as_encoded_bytes()
}

fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
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
    let (mut lines, mut counts) = if from_start {
        (0u64, FileCounts::default())
    } else {
        tx.query_row(
            "SELECT lines_read, skipped FROM files WHERE id = ?1",
            [id],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
        )
        .map(|(l, s)| {
            (
                l,
                serde_json::from_str::<FileCounts>(&s).unwrap_or_default(),
            )
        })?
    };
    counts.skipped.resize(stats.skipped.len(), 0);
    lines += stats.lines;
    for (a, b) in counts.skipped.iter_mut().zip(stats.skipped) {
        *a += b;
    }
    counts.oversized += stats.oversized_lines;
    counts.unreadable = stats.unreadable_files;
    counts.partial_tail = stats.partial_tail_bytes;
    tx.execute(
        "UPDATE files SET lines_read = ?2, skipped = ?3 WHERE id = ?1",
        params![
            id,
            lines as i64,
            serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into())
        ],
    )?;
    Ok(())
}

const INSERT_LINE: &str = "INSERT OR REPLACE INTO lines (file_id, offset, ts_ms, input, output, cache_create,
    cache_read, cache_1h, speed, cost_usd, model, message_id, request_id, session_key, sidechain, reset_s,
    calc_cost, unpriced, kept, slot_file, slot_offset)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

/// Stores one line; `slot` is set when the line is the counted copy of its
/// response (and says where the response was first seen).
fn insert_line(
    insert: &mut rusqlite::CachedStatement<'_>,
    file_id: i64,
    e: &UsageEntry,
    cost: crate::domain::EntryCost,
    slot: Option<Pos>,
) -> Result<(), StoreError> {
    bind_line(insert, 1, file_id, e, cost, slot)?;
    insert.raw_execute()?;
    Ok(())
}

/// Columns of a stored line, as bound by [`bind_line`].
const LINE_VALUES: usize = 21;

/// Rows per statement when a cold batch stores its lines: the statement's
/// start, reset and per-call overhead is then shared by many rows (1 GiB:
/// 1.17–1.29 s against 1.38 s one row at a time, 0.2 s less CPU; 8 rows
/// gain little, more than 32 nothing measurable).
const ROWS_PER_INSERT: usize = 32;

/// [`INSERT_LINE`] for `rows` lines at once.
fn insert_lines_sql(rows: usize) -> String {
    let head = &INSERT_LINE[..INSERT_LINE.find("VALUES").unwrap_or(INSERT_LINE.len())];
    let row = format!("({})", vec!["?"; LINE_VALUES].join(", "));
    format!("{head}VALUES {}", vec![row; rows].join(", "))
}

/// Binds one line's values from parameter `first` (1-based) on.
fn bind_line(
    insert: &mut rusqlite::Statement<'_>,
    first: usize,
    file_id: i64,
    e: &UsageEntry,
    cost: crate::domain::EntryCost,
    slot: Option<Pos>,
) -> Result<(), StoreError> {
    let values = params![
        file_id,
        e.offset as i64,
        e.timestamp.as_millisecond(),
        e.tokens.input_tokens as i64,
        e.tokens.output_tokens as i64,
        e.tokens.cache_creation_input_tokens as i64,
        e.tokens.cache_read_input_tokens as i64,
        e.cache_creation_1h as i64,
        e.speed.map(|s| i64::from(s == crate::domain::Speed::Fast)),
        e.cost_usd,
        e.model.as_deref(),
        e.message_id.map(|v| v as i64),
        e.request_id.map(|v| v as i64),
        e.session_key as i64,
        e.is_sidechain,
        e.usage_limit_reset.map(|t| t.as_second()),
        cost.usd,
        cost.unpriced,
        slot.is_some(),
        slot.map(|s| s.0),
        slot.map(|s| s.1 as i64),
    ];
    // A value left out would keep the previous row's binding.
    debug_assert_eq!(values.len(), LINE_VALUES);
    for (k, value) in values.iter().enumerate() {
        insert.raw_bind_parameter(first + k, value)?;
    }
    Ok(())
}

/// The counted copies in time order (reading order on ties), with their
/// calculated prices: what the windows are computed from.
fn counted_in_time_order(
    deduper: Deduper<Pos>,
    resolver: &mut PriceResolver<'_>,
) -> (Vec<crate::dedup::Kept<Pos>>, Vec<f64>) {
    let mut kept = deduper.finish_kept();
    kept.sort_by(|a, b| {
        a.entry
            .timestamp
            .cmp(&b.entry.timestamp)
            .then(a.slot.cmp(&b.slot))
    });
    let calc = kept
        .iter()
        .map(|k| crate::commands::usage::cost_of(&k.entry, CostMode::Calculate, resolver).usd)
        .collect();
    (kept, calc)
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

/// De-duplicates and prices one cold batch, in reading order.
fn judge_cold_batch(
    files: std::ops::Range<usize>,
    scans: Vec<FileScan>,
    ids: &[i64],
    deduper: &mut Deduper<Pos>,
    resolver: &mut PriceResolver<'_>,
) -> ColdBatch {
    let ids = &ids[files.clone()];
    let first_id_of_batch = ids[0];
    let mut placed: Vec<(Pos, usize)> = Vec::new();
    let mut demote: Vec<Pos> = Vec::new();
    for (k, scan) in scans.iter().enumerate() {
        for e in &scan.entries {
            let pos = (ids[k], e.offset);
            let pushed = deduper.push_at(e.clone(), pos);
            if let Some(old) = pushed.displaced
                && old.0 < first_id_of_batch
            {
                demote.push(old);
            }
            placed.push((pos, pushed.index));
        }
    }
    // Verdicts as they stand after this batch: a later batch that displaces
    // one of these lines demotes it then.
    let kept = deduper.kept();
    let entries = scans.iter().flat_map(|scan| &scan.entries);
    let rows = entries
        .zip(&placed)
        .map(|(e, &(pos, index))| {
            let verdict = &kept[index];
            let slot = (verdict.winner == pos).then_some(verdict.slot);
            let cost = crate::commands::usage::cost_of(e, CostMode::Calculate, resolver);
            (cost, slot)
        })
        .collect();
    ColdBatch {
        files,
        scans,
        rows,
        demote,
    }
}

/// Stores one judged cold batch: its lines, the demotions it causes, and its
/// files' read positions, in one transaction.
fn write_cold_batch(
    conn: &mut rusqlite::Connection,
    batch: &ColdBatch,
    ids: &[i64],
    order: &[&TranscriptFile],
    report: &mut SyncReport,
) -> Result<(), StoreError> {
    let ids = &ids[batch.files.clone()];
    let files = &order[batch.files.clone()];
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(INSERT_LINE)?;
        let mut insert_many = tx.prepare_cached(&insert_lines_sql(ROWS_PER_INSERT))?;
        let mut rows = batch.rows.iter();
        let mut pending = Vec::with_capacity(ROWS_PER_INSERT);
        for (k, scan) in batch.scans.iter().enumerate() {
            report.stats.merge(&scan.stats);
            for (e, (cost, slot)) in scan.entries.iter().zip(rows.by_ref()) {
                pending.push((ids[k], e, *cost, *slot));
                if pending.len() == ROWS_PER_INSERT {
                    for (i, (id, e, cost, slot)) in pending.drain(..).enumerate() {
                        bind_line(&mut insert_many, 1 + i * LINE_VALUES, id, e, cost, slot)?;
                    }
                    insert_many.raw_execute()?;
                }
            }
        }
        // The rest one at a time: the many-row statement takes only full sets.
        for (id, e, cost, slot) in pending {
            insert_line(&mut insert, id, e, cost, slot)?;
        }
        report.new_lines += batch.rows.len() as u64;
        let mut unkeep = tx.prepare_cached(
            "UPDATE lines SET kept = 0, slot_file = NULL, slot_offset = NULL WHERE file_id = ?1 AND offset = ?2",
        )?;
        for (file, offset) in &batch.demote {
            unkeep.execute(params![file, *offset as i64])?;
        }
        let mut done = tx.prepare_cached(
            "UPDATE files SET read_to = ?2, size = ?3, mtime_ns = ?4 WHERE id = ?1",
        )?;
        for (k, scan) in batch.scans.iter().enumerate() {
            let f = files[k];
            done.execute(params![
                ids[k],
                scan.end_offset as i64,
                f.size as i64,
                recorded_mtime(f, scan.stats.unreadable_files == 0)
            ])?;
            add_file_stats(&tx, ids[k], &scan.stats, true)?;
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
    read_to: u64,
    readable: bool,
) -> Result<i64, StoreError> {
    let f = job.file;
    let mtime_ns = recorded_mtime(f, readable);
    let o = &f.origin;
    match job.id {
        Some(id) => {
            tx.execute(
                "UPDATE files SET device = ?2, inode = ?3, size = ?4, mtime_ns = ?5, read_to = ?6, present = 1
                 WHERE id = ?1",
                params![id, f.device as i64, f.inode as i64, f.size as i64, mtime_ns, read_to as i64],
            )?;
            Ok(id)
        }
        None => {
            tx.execute(
                "INSERT INTO files (path, project, session_id, project_path, device, inode, size, mtime_ns, read_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    path_bytes(f),
                    &*o.project,
                    o.session_id,
                    o.project_path,
                    f.device as i64,
                    f.inode as i64,
                    f.size as i64,
                    mtime_ns,
                    read_to as i64
                ],
            )?;
            Ok(tx.last_insert_rowid())
        }
    }
}

/// Columns of [`row_entry`] plus the row's position.
const LINE_COLUMNS: &str = "l.ts_ms, l.input, l.output, l.cache_create, l.cache_read, l.cache_1h, l.speed,
    l.cost_usd, l.model, l.message_id, l.request_id, l.session_key, l.sidechain, l.reset_s, l.offset,
    l.file_id, l.kept, l.slot_file, l.slot_offset";

/// A stored line as de-duplication sees it, with its current verdict.
struct StoredLine {
    entry: UsageEntry,
    pos: Pos,
    kept: bool,
    slot: Option<Pos>,
}

fn read_line(r: &rusqlite::Row<'_>, origin: &Arc<Origin>) -> rusqlite::Result<StoredLine> {
    let model = r
        .get::<_, Option<String>>(8)?
        .map(|m| Arc::from(m.as_str()));
    let entry = row_entry(r, origin.clone(), model)?;
    let pos = (r.get::<_, i64>(15)?, entry.offset);
    let slot = match (r.get::<_, Option<i64>>(17)?, r.get::<_, Option<i64>>(18)?) {
        (Some(f), Some(o)) => Some((f, o as u64)),
        _ => None,
    };
    Ok(StoredLine {
        entry,
        pos,
        kept: r.get(16)?,
        slot,
    })
}

/// Writes the verdicts that differ from what is stored; returns the earliest
/// timestamp among lines whose verdict changed.
fn apply_verdicts(
    tx: &Transaction<'_>,
    lines: &[StoredLine],
    kept: Vec<Kept<Pos>>,
) -> Result<Option<i64>, StoreError> {
    let winners: FxHashMap<Pos, Pos> = kept.into_iter().map(|k| (k.winner, k.slot)).collect();
    let mut set = tx.prepare_cached(
        "UPDATE lines SET kept = ?3, slot_file = ?4, slot_offset = ?5 WHERE file_id = ?1 AND offset = ?2",
    )?;
    let mut earliest: Option<i64> = None;
    for line in lines {
        let want = winners.get(&line.pos).copied();
        let now_kept = want.is_some();
        if now_kept == line.kept && (!now_kept || want == line.slot) {
            continue;
        }
        set.execute(params![
            line.pos.0,
            line.pos.1 as i64,
            now_kept,
            want.map(|s| s.0),
            want.map(|s| s.1 as i64),
        ])?;
        let t = line.entry.timestamp.as_millisecond();
        earliest = Some(earliest.map_or(t, |x: i64| x.min(t)));
    }
    Ok(earliest)
}

/// Placeholder origin: de-duplication never looks at project or session names.
fn no_origin() -> Arc<Origin> {
    Arc::new(Origin {
        project: Arc::from(""),
        session_id: String::new(),
        project_path: String::new(),
    })
}

/// Recomputes every response's verdict from all stored lines.
fn dedup_all(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let origin = no_origin();
    let mut stmt = tx.prepare(&format!(
        "SELECT {LINE_COLUMNS} FROM lines l JOIN files f ON f.id = l.file_id
         WHERE l.message_id IS NOT NULL ORDER BY f.path, l.offset"
    ))?;
    let lines: Vec<StoredLine> = stmt
        .query_map([], |r| read_line(r, &origin))?
        .collect::<Result<_, _>>()?;
    let mut d: Deduper<Pos> = Deduper::with_capacity(lines.len());
    for l in &lines {
        d.push_at(l.entry.clone(), l.pos);
    }
    apply_verdicts(tx, &lines, d.finish_kept())?;
    Ok(())
}

/// Recomputes the verdicts of the responses with these message ids (each
/// response depends only on the lines sharing its message id). Also tells
/// whether every line of those responses is in `fresh` (no response seen
/// before was touched).
fn dedup_groups(
    tx: &Transaction<'_>,
    ids: &FxHashSet<u64>,
    fresh: &FxHashSet<Pos>,
) -> Result<(Option<i64>, bool), StoreError> {
    let origin = no_origin();
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {LINE_COLUMNS} FROM lines l JOIN files f ON f.id = l.file_id
         WHERE l.message_id = ?1 ORDER BY f.path, l.offset"
    ))?;
    let mut earliest: Option<i64> = None;
    let mut all_fresh = true;
    for id in ids {
        let lines: Vec<StoredLine> = stmt
            .query_map([*id as i64], |r| read_line(r, &origin))?
            .collect::<Result<_, _>>()?;
        all_fresh &= lines.iter().all(|l| fresh.contains(&l.pos));
        let mut d: Deduper<Pos> = Deduper::default();
        for l in &lines {
            d.push_at(l.entry.clone(), l.pos);
        }
        if let Some(t) = apply_verdicts(tx, &lines, d.finish_kept())? {
            earliest = Some(earliest.map_or(t, |x| x.min(t)));
        }
    }
    Ok((earliest, all_fresh))
}

/// New prices: every line's calculated cost again.
fn reprice(tx: &Transaction<'_>, resolver: &mut PriceResolver<'_>) -> Result<(), StoreError> {
    let origin = no_origin();
    let lines: Vec<StoredLine> = {
        let mut stmt = tx.prepare(&format!("SELECT {LINE_COLUMNS} FROM lines l"))?;
        stmt.query_map([], |r| read_line(r, &origin))?
            .collect::<Result<_, _>>()?
    };
    let mut set = tx.prepare_cached(
        "UPDATE lines SET calc_cost = ?3, unpriced = ?4 WHERE file_id = ?1 AND offset = ?2",
    )?;
    for l in &lines {
        let c = crate::commands::usage::cost_of(&l.entry, CostMode::Calculate, resolver);
        set.execute(params![l.pos.0, l.pos.1 as i64, c.usd, c.unpriced])?;
    }
    Ok(())
}

/// Recomputes the stored windows from the first one that a change at `from`
/// (ms) can affect, or all of them.
fn rebuild_blocks(tx: &Transaction<'_>, from: Option<i64>) -> Result<(), StoreError> {
    // A window's start depends only on the entries before its first entry, so
    // restarting at the last window that began before the change is exact.
    let restart: Option<(i64, i64)> = match from {
        None => None,
        Some(t) => tx
            .query_row(
                "SELECT start_ms, first_ms FROM blocks WHERE is_gap = 0 AND first_ms < ?1
                 ORDER BY start_ms DESC LIMIT 1",
                [t],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok(),
    };
    let (from_start, from_first) = restart.map_or((i64::MIN, i64::MIN), |r| r);
    let prev_last: Option<i64> = if restart.is_some() {
        tx.query_row(
            "SELECT max(ts_ms) FROM lines WHERE kept = 1 AND ts_ms < ?1",
            [from_first],
            |r| r.get(0),
        )?
    } else {
        None
    };
    let (entries, calc) = kept_since(tx, from_first, false)?;
    let refs: Vec<&UsageEntry> = entries.iter().collect();
    match prev_last {
        Some(p) => tx.execute(
            "DELETE FROM blocks WHERE start_ms >= ?1 OR (is_gap = 1 AND start_ms > ?2)",
            params![from_start, p],
        )?,
        None => tx.execute("DELETE FROM blocks", [])?,
    };
    write_blocks(tx, prev_last, &refs, &calc)
}

/// The counted entries at or after `from` (after, when `strictly`), in
/// window order, with their calculated costs.
fn kept_since(
    tx: &Transaction<'_>,
    from: i64,
    strictly: bool,
) -> Result<(Vec<UsageEntry>, Vec<f64>), StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT l.ts_ms, l.input, l.output, l.cache_create, l.cache_read, l.cache_1h, l.speed,
                l.cost_usd, l.model, l.message_id, l.request_id, l.session_key, l.sidechain,
                l.reset_s, l.offset, l.calc_cost
         FROM lines l JOIN files s ON s.id = l.slot_file
         WHERE l.kept = 1 AND l.ts_ms {} ?1
         ORDER BY l.ts_ms, s.path, l.slot_offset",
        if strictly { ">" } else { ">=" }
    ))?;
    let origin = no_origin();
    let mut models: FxHashMap<String, Arc<str>> = FxHashMap::default();
    let mut rows = stmt.query([from])?;
    let mut entries: Vec<UsageEntry> = Vec::new();
    let mut calc: Vec<f64> = Vec::new();
    while let Some(r) = rows.next()? {
        let model = r.get::<_, Option<String>>(8)?.map(|m| {
            models
                .entry(m.clone())
                .or_insert_with(|| Arc::from(m.as_str()))
                .clone()
        });
        entries.push(row_entry(r, origin.clone(), model)?);
        calc.push(r.get(15)?);
    }
    Ok((entries, calc))
}

/// Extends the stored windows with the counted entries after `latest` (the
/// last counted entry's time before this run), all of them new: the latest
/// window continues and later ones follow, without reading what came before.
fn extend_blocks(tx: &Transaction<'_>, latest: i64) -> Result<(), StoreError> {
    let (entries, calc) = kept_since(tx, latest, true)?;
    let last = |mode: CostMode| -> Result<Block, StoreError> {
        Ok(tx.query_row(
            &format!(
                "SELECT {} FROM blocks WHERE is_gap = 0 ORDER BY start_ms DESC LIMIT 1",
                super::BLOCK_COLUMNS
            ),
            [],
            |r| super::row_block(r, mode),
        )?)
    };
    let length = blocks::window_length(super::STORED_WINDOW_HOURS);
    let never = jiff::Timestamp::MIN;
    let by_mode = |mode: CostMode, cost: &dyn Fn(usize) -> f64| -> Result<Vec<Block>, StoreError> {
        let timed = entries.iter().enumerate().map(|(i, e)| Timed {
            entry: e,
            cost: cost(i),
        });
        Ok(blocks::extend_window(last(mode)?, timed, never, length))
    };
    let auto = by_mode(CostMode::Auto, &|i| entries[i].cost_usd.unwrap_or(calc[i]))?;
    let calculate = by_mode(CostMode::Calculate, &|i| calc[i])?;
    let display = by_mode(CostMode::Display, &|i| entries[i].cost_usd.unwrap_or(0.0))?;
    insert_blocks(tx, &auto, &calculate, &display)
}

/// Computes the windows over `entries` (time order, following an entry at
/// `prev_last` when given) under each cost mode and stores them.
fn write_blocks(
    tx: &Transaction<'_>,
    prev_last: Option<i64>,
    entries: &[&UsageEntry],
    calc: &[f64],
) -> Result<(), StoreError> {
    let length = blocks::window_length(super::STORED_WINDOW_HOURS);
    // Activity is judged when read; stored windows use a clock far in the past.
    let never = jiff::Timestamp::MIN;
    let prev = prev_last.map(super::ms);
    let by_mode = |cost: &dyn Fn(usize) -> f64| -> Vec<Block> {
        let timed = entries.iter().enumerate().map(|(i, e)| Timed {
            entry: e,
            cost: cost(i),
        });
        blocks::identify_blocks_after(prev, timed, never, length)
    };
    let auto = by_mode(&|i| entries[i].cost_usd.unwrap_or(calc[i]));
    let calculate = by_mode(&|i| calc[i]);
    let display = by_mode(&|i| entries[i].cost_usd.unwrap_or(0.0));
    insert_blocks(tx, &auto, &calculate, &display)
}

/// Stores windows computed under the three cost modes (same windows, three
/// costs), replacing stored ones with the same start.
fn insert_blocks(
    tx: &Transaction<'_>,
    auto: &[Block],
    calculate: &[Block],
    display: &[Block],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO blocks (start_ms, end_ms, first_ms, last_ms, is_gap, entries, input, output,
            cache_create, cache_read, cost_auto, cost_calc, cost_display, models, reset_s)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EntryCost, Origin};
    use crate::ingest::parse::LineParser;

    /// A line stored by the many-row statement reads back exactly as the
    /// same line stored alone: every value lands in its own column.
    #[test]
    fn many_row_inserts_store_what_single_inserts_do() {
        let store = Store::open_in_memory().unwrap();
        let origin = Arc::new(Origin {
            project: Arc::from("p"),
            session_id: "s".into(),
            project_path: "p".into(),
        });
        let line = br#"{"timestamp":"2026-11-20T10:00:00.000Z","sessionId":"s","requestId":"r1","isSidechain":true,"costUSD":0.5,"message":{"id":"m1","model":"claude-opus-4-5","usage":{"input_tokens":3,"output_tokens":5,"cache_creation_input_tokens":7,"cache_read_input_tokens":11,"cache_creation":{"ephemeral_5m_input_tokens":2,"ephemeral_1h_input_tokens":5},"speed":"fast"}}}"#;
        let entry = LineParser::new().parse_line(line, &origin).unwrap();
        let cost = EntryCost {
            usd: 0.25,
            unpriced: true,
        };
        let one = store.conn.prepare(INSERT_LINE).unwrap();
        assert_eq!(one.parameter_count(), LINE_VALUES);
        drop(one);
        let mut many = store
            .conn
            .prepare(&insert_lines_sql(ROWS_PER_INSERT))
            .unwrap();
        assert_eq!(many.parameter_count(), LINE_VALUES * ROWS_PER_INSERT);
        for i in 0..ROWS_PER_INSERT {
            let mut e = entry.clone();
            e.offset = i as u64;
            bind_line(&mut many, 1 + i * LINE_VALUES, 2, &e, cost, Some((9, 40))).unwrap();
        }
        assert_eq!(many.raw_execute().unwrap(), ROWS_PER_INSERT);
        drop(many);
        let mut single = store.conn.prepare_cached(INSERT_LINE).unwrap();
        insert_line(&mut single, 1, &entry, cost, Some((9, 40))).unwrap();
        drop(single);

        let rows: Vec<Vec<rusqlite::types::Value>> = store
            .conn
            .prepare("SELECT * FROM lines ORDER BY file_id, offset")
            .unwrap()
            .query_map([], |r| {
                (2..r.as_ref().column_count())
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), ROWS_PER_INSERT + 1);
        // All but file id and offset: the same values, in the same columns.
        assert!(rows.iter().all(|r| *r == rows[0]), "{rows:?}");
        assert!(rows[0].contains(&rusqlite::types::Value::Real(0.25)));
    }
}
