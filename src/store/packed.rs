//! The stored usage lines, packed: each transcript's lines sit in chunks of
//! fixed-size records, one SQLite row per chunk, and the positions of the
//! lines of each response are found through message-id buckets (see
//! `docs/store-packed.md`). A row per line cost more than the whole cold
//! ingest's budget (about 2.6 µs a line to insert, 21 values bound each);
//! a chunk of 128 lines costs about what one line did.
//!
//! Everything here takes a connection (or transaction) and leaves the
//! transaction boundaries to the caller, so a batch's chunks, buckets and
//! read positions commit together.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;

use super::StoreError;
use crate::domain::{EntryCost, Origin, Speed, TokenCounts, UsageEntry};

/// A place in the history: (file id, byte offset of the line).
pub(super) type Pos = (i64, u64);

/// Lines per chunk. A chunk is read and written whole, so this bounds what
/// changing one line's verdict costs (16 KiB), while keeping the rows few
/// (a 1 GiB history: about 4,000 chunks for 188,000 lines).
pub(super) const CHUNK_LINES: usize = 128;

/// Bytes per record (see [`Line::encode`] for the layout).
const RECORD: usize = 128;

/// Message-id buckets: each holds the positions of the lines whose message
/// id falls in it, sorted, so a warm run finds a response's copies with one
/// small read.
const BUCKETS: u64 = 4096;

/// Bytes per bucket entry: message id, file id, offset.
const BUCKET_ENTRY: usize = 24;

/// One stored line.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Line {
    pub offset: u64,
    pub ts_ms: i64,
    pub tokens: TokenCounts,
    pub cache_1h: u64,
    pub speed: Option<Speed>,
    pub cost_usd: Option<f64>,
    /// Number in the `models` table; 0 for none.
    pub model: u32,
    pub message_id: Option<u64>,
    pub request_id: Option<u64>,
    pub session_key: u64,
    pub sidechain: bool,
    pub reset_s: Option<i64>,
    /// Price at the prices in use (meta `prices`).
    pub calc_cost: f64,
    pub unpriced: bool,
    /// Set when the line is the counted copy of its response: where the
    /// response was first seen (its place in reading order).
    pub slot: Option<Pos>,
}

const SIDECHAIN: u8 = 1;
const UNPRICED: u8 = 1 << 1;
const HAS_COST: u8 = 1 << 2;
const HAS_MESSAGE: u8 = 1 << 3;
const HAS_REQUEST: u8 = 1 << 4;
const HAS_RESET: u8 = 1 << 5;
const HAS_SLOT: u8 = 1 << 6;

impl Line {
    pub fn new(e: &UsageEntry, model: u32, cost: EntryCost, slot: Option<Pos>) -> Line {
        Line {
            offset: e.offset,
            ts_ms: e.timestamp.as_millisecond(),
            tokens: e.tokens,
            cache_1h: e.cache_creation_1h,
            speed: e.speed,
            cost_usd: e.cost_usd,
            model,
            message_id: e.message_id,
            request_id: e.request_id,
            session_key: e.session_key,
            sidechain: e.is_sidechain,
            reset_s: e.usage_limit_reset.map(|t| t.as_second()),
            calc_cost: cost.usd,
            unpriced: cost.unpriced,
            slot,
        }
    }

    pub fn kept(&self) -> bool {
        self.slot.is_some()
    }

    pub fn pos(&self, file_id: i64) -> Pos {
        (file_id, self.offset)
    }

    pub fn entry(&self, origin: Arc<Origin>, models: &Models) -> UsageEntry {
        UsageEntry {
            timestamp: super::ms(self.ts_ms),
            tokens: self.tokens,
            cache_creation_1h: self.cache_1h,
            speed: self.speed,
            cost_usd: self.cost_usd,
            model: models.name(self.model),
            message_id: self.message_id,
            request_id: self.request_id,
            session_key: self.session_key,
            origin,
            offset: self.offset,
            is_sidechain: self.sidechain,
            usage_limit_reset: self
                .reset_s
                .and_then(|s| jiff::Timestamp::from_second(s).ok()),
        }
    }

    /// Appends the record: little-endian, at fixed places so a record is
    /// found by its index.
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let mut flags = 0u8;
        let mut flag = |on: bool, bit: u8| {
            if on {
                flags |= bit;
            }
        };
        flag(self.sidechain, SIDECHAIN);
        flag(self.unpriced, UNPRICED);
        flag(self.cost_usd.is_some(), HAS_COST);
        flag(self.message_id.is_some(), HAS_MESSAGE);
        flag(self.request_id.is_some(), HAS_REQUEST);
        flag(self.reset_s.is_some(), HAS_RESET);
        flag(self.slot.is_some(), HAS_SLOT);
        let (slot_file, slot_offset) = self.slot.unwrap_or((0, 0));
        for v in [
            self.offset,
            self.ts_ms as u64,
            self.tokens.input_tokens,
            self.tokens.output_tokens,
            self.tokens.cache_creation_input_tokens,
            self.tokens.cache_read_input_tokens,
            self.cache_1h,
            self.cost_usd.unwrap_or(0.0).to_bits(),
            self.message_id.unwrap_or(0),
            self.request_id.unwrap_or(0),
            self.session_key,
            self.reset_s.unwrap_or(0) as u64,
            self.calc_cost.to_bits(),
            slot_file as u64,
            slot_offset,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.model.to_le_bytes());
        let speed = match self.speed {
            None => 0u8,
            Some(Speed::Standard) => 1,
            Some(Speed::Fast) => 2,
        };
        out.extend_from_slice(&[flags, speed, 0, 0]);
        debug_assert_eq!(out.len() - start, RECORD);
    }

    /// Reads one record (`b` is exactly [`RECORD`] bytes).
    fn decode(b: &[u8]) -> Line {
        let word = |i: usize| -> u64 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let mut m = [0u8; 4];
        m.copy_from_slice(&b[120..124]);
        let flags = b[124];
        let on = |bit: u8| flags & bit != 0;
        Line {
            offset: word(0),
            ts_ms: word(1) as i64,
            tokens: TokenCounts {
                input_tokens: word(2),
                output_tokens: word(3),
                cache_creation_input_tokens: word(4),
                cache_read_input_tokens: word(5),
            },
            cache_1h: word(6),
            cost_usd: on(HAS_COST).then(|| f64::from_bits(word(7))),
            message_id: on(HAS_MESSAGE).then(|| word(8)),
            request_id: on(HAS_REQUEST).then(|| word(9)),
            session_key: word(10),
            reset_s: on(HAS_RESET).then(|| word(11) as i64),
            calc_cost: f64::from_bits(word(12)),
            slot: on(HAS_SLOT).then(|| (word(13) as i64, word(14))),
            model: u32::from_le_bytes(m),
            speed: match b[125] {
                1 => Some(Speed::Standard),
                2 => Some(Speed::Fast),
                _ => None,
            },
            sidechain: on(SIDECHAIN),
            unpriced: on(UNPRICED),
        }
    }
}

/// Column `i` of a row as bytes, without copying them.
pub(super) fn blob<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
    r.get_ref(i)?.as_blob().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// The lines of a chunk of `file_id`.
fn records(file_id: i64, data: &[u8]) -> Result<impl Iterator<Item = Line> + '_, StoreError> {
    if !data.len().is_multiple_of(RECORD) {
        return Err(StoreError::Damaged(file_id));
    }
    Ok(data.chunks_exact(RECORD).map(Line::decode))
}

fn decode_all(file_id: i64, data: &[u8]) -> Result<Vec<Line>, StoreError> {
    Ok(records(file_id, data)?.collect())
}

/// Model names by number, as the `models` table holds them.
#[derive(Default)]
pub(super) struct Models {
    names: Vec<Option<Arc<str>>>,
    ids: FxHashMap<Arc<str>, u32>,
}

impl Models {
    pub fn load(conn: &Connection) -> Result<Models, StoreError> {
        let mut models = Models::default();
        let mut stmt = conn.prepare_cached("SELECT id, name FROM models")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: u32 = r.get(0)?;
            let name: Arc<str> = Arc::from(r.get::<_, String>(1)?.as_str());
            models.remember(id, name);
        }
        Ok(models)
    }

    fn remember(&mut self, id: u32, name: Arc<str>) {
        let i = id as usize;
        if self.names.len() <= i {
            self.names.resize(i + 1, None);
        }
        self.names[i] = Some(name.clone());
        self.ids.insert(name, id);
    }

    /// The number of `name`, recorded in the store when it is new (within
    /// the caller's transaction: a rolled-back run must not reuse it, so a
    /// `Models` lives no longer than one sync).
    pub fn id(&mut self, conn: &Connection, name: Option<&str>) -> Result<u32, StoreError> {
        let Some(name) = name else { return Ok(0) };
        if let Some(id) = self.ids.get(name) {
            return Ok(*id);
        }
        conn.prepare_cached("INSERT INTO models (name) VALUES (?1)")?
            .execute([name])?;
        let id = u32::try_from(conn.last_insert_rowid()).unwrap_or(0);
        self.remember(id, Arc::from(name));
        Ok(id)
    }

    pub fn name(&self, id: u32) -> Option<Arc<str>> {
        self.names.get(id as usize).cloned().flatten()
    }
}

/// Stores `lines` (sorted by offset, at most [`CHUNK_LINES`]) as the chunk
/// of `file_id` that starts at the first one, replacing a chunk stored there.
fn put_chunk(
    conn: &Connection,
    file_id: i64,
    lines: &[Line],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let Some(first) = lines.first() else {
        return Ok(());
    };
    buf.clear();
    let (mut lo, mut hi, mut kept) = (i64::MAX, i64::MIN, 0i64);
    for l in lines {
        l.encode(buf);
        lo = lo.min(l.ts_ms);
        hi = hi.max(l.ts_ms);
        kept += i64::from(l.kept());
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO chunks (file_id, first_offset, min_ms, max_ms, lines, kept, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        file_id,
        first.offset as i64,
        lo,
        hi,
        lines.len() as i64,
        kept,
        &buf[..]
    ])?;
    Ok(())
}

/// Stores a file's lines (sorted by offset) as new chunks.
pub(super) fn put_new(
    conn: &Connection,
    file_id: i64,
    lines: &[Line],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    for part in lines.chunks(CHUNK_LINES) {
        put_chunk(conn, file_id, part, buf)?;
    }
    Ok(())
}

/// One file's stored chunks, in offset order.
fn file_chunks(conn: &Connection, file_id: i64) -> Result<Vec<Vec<Line>>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT data FROM chunks WHERE file_id = ?1 ORDER BY first_offset")?;
    let mut rows = stmt.query([file_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(decode_all(file_id, blob(r, 0)?)?);
    }
    Ok(out)
}

/// Every line stored for a file, in offset order.
pub(super) fn file_lines(conn: &Connection, file_id: i64) -> Result<Vec<Line>, StoreError> {
    Ok(file_chunks(conn, file_id)?.into_iter().flatten().collect())
}

fn delete_file_chunks(conn: &Connection, file_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM chunks WHERE file_id = ?1")?
        .execute([file_id])?;
    Ok(())
}

/// Adds lines read from a file; a line at an offset already stored replaces
/// it. Lines after everything stored (a transcript that grew) fill the last
/// chunk and then start new ones; anything else (a file read again from the
/// start) rewrites the file's chunks.
pub(super) fn upsert(
    conn: &Connection,
    file_id: i64,
    mut lines: Vec<Line>,
) -> Result<(), StoreError> {
    if lines.is_empty() {
        return Ok(());
    }
    lines.sort_by_key(|l| l.offset);
    let mut buf = Vec::new();
    let last: Option<(u64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT first_offset, data FROM chunks WHERE file_id = ?1
             ORDER BY first_offset DESC LIMIT 1",
        )?
        .query_row([file_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .optional()?;
    let Some((_, data)) = last else {
        return put_new(conn, file_id, &lines, &mut buf);
    };
    let mut tail = decode_all(file_id, &data)?;
    let appends = tail.last().is_none_or(|t| t.offset < lines[0].offset);
    if appends {
        let room = CHUNK_LINES.saturating_sub(tail.len()).min(lines.len());
        let rest = lines.split_off(room);
        if !lines.is_empty() {
            tail.extend(lines);
            put_chunk(conn, file_id, &tail, &mut buf)?;
        }
        return put_new(conn, file_id, &rest, &mut buf);
    }
    let mut merged: std::collections::BTreeMap<u64, Line> = file_lines(conn, file_id)?
        .into_iter()
        .map(|l| (l.offset, l))
        .collect();
    for l in lines {
        merged.insert(l.offset, l);
    }
    delete_file_chunks(conn, file_id)?;
    let all: Vec<Line> = merged.into_values().collect();
    put_new(conn, file_id, &all, &mut buf)
}

/// Changes every line of a file with `f`.
pub(super) fn modify_file(
    conn: &Connection,
    file_id: i64,
    mut f: impl FnMut(&mut Line),
) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    for mut chunk in file_chunks(conn, file_id)? {
        chunk.iter_mut().for_each(&mut f);
        put_chunk(conn, file_id, &chunk, &mut buf)?;
    }
    Ok(())
}

/// The chunks holding `positions`, each read once: (file id, chunk start)
/// to the positions in it. Positions stored nowhere are left out.
fn chunks_of(
    conn: &Connection,
    positions: impl IntoIterator<Item = Pos>,
) -> Result<FxHashMap<(i64, u64), Vec<u64>>, StoreError> {
    let mut starts: FxHashMap<i64, Vec<u64>> = FxHashMap::default();
    let mut out: FxHashMap<(i64, u64), Vec<u64>> = FxHashMap::default();
    let mut list = conn.prepare_cached(
        "SELECT first_offset FROM chunks WHERE file_id = ?1 ORDER BY first_offset",
    )?;
    for (file, offset) in positions {
        let s = match starts.entry(file) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(
                list.query_map([file], |r| r.get::<_, i64>(0).map(|v| v as u64))?
                    .collect::<Result<Vec<u64>, _>>()?,
            ),
        };
        // The last chunk starting at or before the offset.
        let i = s.partition_point(|&first| first <= offset);
        if i > 0 {
            out.entry((file, s[i - 1])).or_default().push(offset);
        }
    }
    Ok(out)
}

fn read_chunk(conn: &Connection, file_id: i64, first: u64) -> Result<Vec<Line>, StoreError> {
    let data: Vec<u8> = conn
        .prepare_cached("SELECT data FROM chunks WHERE file_id = ?1 AND first_offset = ?2")?
        .query_row(params![file_id, first as i64], |r| r.get(0))?;
    decode_all(file_id, &data)
}

/// The lines stored at `positions` (those that exist).
pub(super) fn lines_at(
    conn: &Connection,
    positions: impl IntoIterator<Item = Pos>,
) -> Result<FxHashMap<Pos, Line>, StoreError> {
    let mut out = FxHashMap::default();
    for ((file, first), offsets) in chunks_of(conn, positions)? {
        let chunk = read_chunk(conn, file, first)?;
        for o in offsets {
            if let Ok(i) = chunk.binary_search_by_key(&o, |l| l.offset) {
                out.insert((file, o), chunk[i].clone());
            }
        }
    }
    Ok(out)
}

/// Changes the lines at `positions` with `f`, writing back only the chunks
/// where `f` changed something (it returns whether it did).
pub(super) fn modify_at(
    conn: &Connection,
    positions: impl IntoIterator<Item = Pos>,
    mut f: impl FnMut(Pos, &mut Line) -> bool,
) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    for ((file, first), offsets) in chunks_of(conn, positions)? {
        let mut chunk = read_chunk(conn, file, first)?;
        let mut changed = false;
        for o in offsets {
            if let Ok(i) = chunk.binary_search_by_key(&o, |l| l.offset) {
                changed |= f((file, o), &mut chunk[i]);
            }
        }
        if changed {
            put_chunk(conn, file, &chunk, &mut buf)?;
        }
    }
    Ok(())
}

/// Which chunks a scan reads.
#[derive(Clone, Copy, Debug)]
pub(super) enum Scan {
    All,
    /// Chunks holding a line at or after this time (ms); their other lines
    /// come too, for the caller to filter.
    Since(i64),
}

/// Calls `f` with every line of the chunks `scan` selects (file by file, in
/// offset order for `All`) and its file id.
pub(super) fn scan(
    conn: &Connection,
    scan: Scan,
    mut f: impl FnMut(i64, Line) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (sql, from) = match scan {
        Scan::All => (
            "SELECT file_id, data FROM chunks WHERE ?1 IS NULL ORDER BY file_id, first_offset",
            None,
        ),
        Scan::Since(t) => (
            "SELECT file_id, data FROM chunks WHERE max_ms >= ?1",
            Some(t),
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([from])?;
    while let Some(r) = rows.next()? {
        let file: i64 = r.get(0)?;
        for line in records(file, blob(r, 1)?)? {
            f(file, line)?;
        }
    }
    Ok(())
}

/// Lines and counted lines over the whole store.
pub(super) fn counts(conn: &Connection) -> Result<(u64, u64), StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(lines), 0), coalesce(sum(kept), 0) FROM chunks",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )?)
}

fn bucket_of(message_id: u64) -> i64 {
    (message_id % BUCKETS) as i64
}

type BucketEntry = (u64, Pos);

fn decode_bucket(data: &[u8]) -> Vec<BucketEntry> {
    data.chunks_exact(BUCKET_ENTRY)
        .map(|b| {
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[i * 8..i * 8 + 8]);
                u64::from_le_bytes(w)
            };
            (word(0), (word(1) as i64, word(2)))
        })
        .collect()
}

fn put_bucket(
    conn: &Connection,
    bucket: i64,
    entries: &[BucketEntry],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    buf.clear();
    for (m, (file, offset)) in entries {
        buf.extend_from_slice(&m.to_le_bytes());
        buf.extend_from_slice(&(*file as u64).to_le_bytes());
        buf.extend_from_slice(&offset.to_le_bytes());
    }
    conn.prepare_cached("INSERT OR REPLACE INTO message_buckets (bucket, data) VALUES (?1, ?2)")?
        .execute(params![bucket, &buf[..]])?;
    Ok(())
}

fn read_bucket(conn: &Connection, bucket: i64) -> Result<Vec<BucketEntry>, StoreError> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM message_buckets WHERE bucket = ?1")?
        .query_row([bucket], |r| r.get(0))
        .optional()?;
    Ok(data.as_deref().map(decode_bucket).unwrap_or_default())
}

/// Records where lines with these message ids are, next to what the
/// buckets hold.
pub(super) fn add_to_buckets(
    conn: &Connection,
    mut adds: Vec<BucketEntry>,
) -> Result<(), StoreError> {
    adds.sort_unstable_by_key(|(m, pos)| (bucket_of(*m), *m, *pos));
    let mut buf = Vec::new();
    for group in adds.chunk_by(|a, b| bucket_of(a.0) == bucket_of(b.0)) {
        let bucket = bucket_of(group[0].0);
        let mut entries = read_bucket(conn, bucket)?;
        entries.extend_from_slice(group);
        entries.sort_unstable();
        entries.dedup();
        put_bucket(conn, bucket, &entries, &mut buf)?;
    }
    Ok(())
}

/// Replaces every bucket with `all` (a cold load, or a full recompute that
/// read every line).
pub(super) fn set_buckets(conn: &Connection, mut all: Vec<BucketEntry>) -> Result<(), StoreError> {
    conn.execute("DELETE FROM message_buckets", [])?;
    all.sort_unstable_by_key(|(m, pos)| (bucket_of(*m), *m, *pos));
    all.dedup();
    let mut buf = Vec::new();
    for group in all.chunk_by(|a, b| bucket_of(a.0) == bucket_of(b.0)) {
        put_bucket(conn, bucket_of(group[0].0), group, &mut buf)?;
    }
    Ok(())
}

/// Where lines with these message ids may be: the buckets can name a
/// position whose line has since been replaced by one with another id, so
/// callers check the line's id.
pub(super) fn positions_of(
    conn: &Connection,
    ids: impl IntoIterator<Item = u64>,
) -> Result<FxHashMap<u64, Vec<Pos>>, StoreError> {
    let mut by_bucket: FxHashMap<i64, Vec<u64>> = FxHashMap::default();
    for id in ids {
        by_bucket.entry(bucket_of(id)).or_default().push(id);
    }
    let mut out: FxHashMap<u64, Vec<Pos>> = FxHashMap::default();
    for (bucket, wanted) in by_bucket {
        let entries = read_bucket(conn, bucket)?;
        for m in wanted {
            let from = entries.partition_point(|e| e.0 < m);
            let at: Vec<Pos> = entries[from..]
                .iter()
                .take_while(|e| e.0 == m)
                .map(|e| e.1)
                .collect();
            out.insert(m, at);
        }
    }
    Ok(out)
}

/// Migration 3: moves the rows of the version-2 `lines` table into chunks
/// and buckets, then drops the table. Stores hold history the transcripts
/// no longer have, so every row is carried over.
pub(super) fn migrate_rows(conn: &Connection) -> Result<(), StoreError> {
    let has_lines: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lines')",
        [],
        |r| r.get(0),
    )?;
    if !has_lines {
        return Ok(());
    }
    let mut models = Models::load(conn)?;
    let mut buckets: Vec<BucketEntry> = Vec::new();
    let mut buf = Vec::new();
    let mut file: Option<i64> = None;
    let mut lines: Vec<Line> = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT file_id, offset, ts_ms, input, output, cache_create, cache_read, cache_1h,
                    speed, cost_usd, model, message_id, request_id, session_key, sidechain,
                    reset_s, calc_cost, unpriced, kept, slot_file, slot_offset
             FROM lines ORDER BY file_id, offset",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let file_id: i64 = r.get(0)?;
            if file != Some(file_id) {
                if let Some(f) = file {
                    put_new(conn, f, &lines, &mut buf)?;
                }
                lines.clear();
                file = Some(file_id);
            }
            let u = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)? as u64) };
            let model = r.get::<_, Option<String>>(10)?;
            let kept: bool = r.get(18)?;
            let slot = match (r.get::<_, Option<i64>>(19)?, r.get::<_, Option<i64>>(20)?) {
                (Some(f), Some(o)) if kept => Some((f, o as u64)),
                _ => None,
            };
            let line = Line {
                offset: u(1)?,
                ts_ms: r.get(2)?,
                tokens: TokenCounts {
                    input_tokens: u(3)?,
                    output_tokens: u(4)?,
                    cache_creation_input_tokens: u(5)?,
                    cache_read_input_tokens: u(6)?,
                },
                cache_1h: u(7)?,
                speed: r
                    .get::<_, Option<i64>>(8)?
                    .map(|s| if s == 1 { Speed::Fast } else { Speed::Standard }),
                cost_usd: r.get(9)?,
                model: models.id(conn, model.as_deref())?,
                message_id: r.get::<_, Option<i64>>(11)?.map(|v| v as u64),
                request_id: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
                session_key: u(13)?,
                sidechain: r.get(14)?,
                reset_s: r.get(15)?,
                calc_cost: r.get(16)?,
                unpriced: r.get(17)?,
                slot,
            };
            if let Some(m) = line.message_id {
                buckets.push((m, (file_id, line.offset)));
            }
            lines.push(line);
        }
    }
    if let Some(f) = file {
        put_new(conn, f, &lines, &mut buf)?;
    }
    set_buckets(conn, buckets)?;
    conn.execute_batch("DROP TABLE lines;")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(offset: u64, ts_ms: i64, message_id: Option<u64>) -> Line {
        Line {
            offset,
            ts_ms,
            tokens: TokenCounts {
                input_tokens: 1,
                output_tokens: 2,
                cache_creation_input_tokens: 3,
                cache_read_input_tokens: 4,
            },
            cache_1h: 0,
            speed: None,
            cost_usd: None,
            model: 0,
            message_id,
            request_id: None,
            session_key: 7,
            sidechain: false,
            reset_s: None,
            calc_cost: 0.5,
            unpriced: false,
            slot: None,
        }
    }

    fn store() -> super::super::Store {
        super::super::Store::open_in_memory().unwrap()
    }

    proptest! {
        /// Every field, present or not, reads back as written.
        #[test]
        fn records_read_back_as_written(
            offset in any::<u64>(), ts_ms in any::<i64>(), t in any::<[u64; 5]>(),
            speed in 0u8..3, cost in proptest::option::of(any::<f64>().prop_filter("nan", |v| !v.is_nan())),
            model in any::<u32>(), message in proptest::option::of(any::<u64>()),
            request in proptest::option::of(any::<u64>()), session_key in any::<u64>(),
            sidechain in any::<bool>(), reset in proptest::option::of(any::<i64>()),
            calc in any::<f64>().prop_filter("nan", |v| !v.is_nan()), unpriced in any::<bool>(),
            slot in proptest::option::of((any::<i64>(), any::<u64>())),
        ) {
            let l = Line {
                offset, ts_ms,
                tokens: TokenCounts {
                    input_tokens: t[0], output_tokens: t[1],
                    cache_creation_input_tokens: t[2], cache_read_input_tokens: t[3],
                },
                cache_1h: t[4],
                speed: [None, Some(Speed::Standard), Some(Speed::Fast)][speed as usize],
                cost_usd: cost, model, message_id: message, request_id: request,
                session_key, sidechain, reset_s: reset, calc_cost: calc, unpriced, slot,
            };
            let mut buf = Vec::new();
            l.encode(&mut buf);
            prop_assert_eq!(buf.len(), RECORD);
            prop_assert_eq!(Line::decode(&buf), l);
        }
    }

    #[test]
    fn appended_lines_fill_the_last_chunk_then_start_new_ones() {
        let s = store();
        let c = &s.conn;
        upsert(
            c,
            1,
            (0..100).map(|i| line(i * 10, i as i64, None)).collect(),
        )
        .unwrap();
        upsert(
            c,
            1,
            (100..300).map(|i| line(i * 10, i as i64, None)).collect(),
        )
        .unwrap();
        let sizes: Vec<i64> = c
            .prepare("SELECT lines FROM chunks WHERE file_id = 1 ORDER BY first_offset")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(sizes, vec![128, 128, 44]);
        let all = file_lines(c, 1).unwrap();
        assert_eq!(all.len(), 300);
        assert!(all.windows(2).all(|w| w[0].offset < w[1].offset));
        assert_eq!(counts(c).unwrap(), (300, 0));
    }

    #[test]
    fn a_line_at_a_stored_offset_replaces_it_and_the_rest_stay() {
        let s = store();
        let c = &s.conn;
        upsert(
            c,
            1,
            (0..200).map(|i| line(i * 10, i as i64, None)).collect(),
        )
        .unwrap();
        let mut again = line(50, 99, Some(3));
        again.slot = Some((1, 50));
        upsert(c, 1, vec![again.clone(), line(5, 1, None)]).unwrap();
        let all = file_lines(c, 1).unwrap();
        assert_eq!(all.len(), 201);
        assert_eq!(all.iter().find(|l| l.offset == 50), Some(&again));
        assert!(all.windows(2).all(|w| w[0].offset < w[1].offset));
        assert_eq!(counts(c).unwrap(), (201, 1));
    }

    #[test]
    fn verdicts_change_in_place_and_only_where_asked() {
        let s = store();
        let c = &s.conn;
        upsert(c, 1, (0..300).map(|i| line(i, i as i64, None)).collect()).unwrap();
        upsert(c, 2, vec![line(0, 0, None)]).unwrap();
        modify_at(c, [(1, 7), (1, 200), (2, 0), (2, 99)], |pos, l| {
            l.slot = Some(pos);
            true
        })
        .unwrap();
        let got = lines_at(c, [(1, 7), (1, 200), (1, 8), (2, 0), (2, 99), (3, 0)]).unwrap();
        assert_eq!(got.len(), 4, "positions stored nowhere are left out");
        assert_eq!(got[&(1, 7)].slot, Some((1, 7)));
        assert_eq!(got[&(1, 8)].slot, None);
        assert_eq!(got[&(2, 0)].slot, Some((2, 0)));
        assert_eq!(counts(c).unwrap(), (301, 3));
        let mut since = Vec::new();
        scan(c, Scan::Since(250), |f, l| {
            since.push((f, l.offset));
            Ok(())
        })
        .unwrap();
        assert!(since.contains(&(1, 299)) && !since.iter().any(|p| p.0 == 2));
    }

    #[test]
    fn buckets_find_every_copy_of_a_response() {
        let s = store();
        let c = &s.conn;
        set_buckets(c, vec![(5, (1, 0)), (5 + BUCKETS, (1, 10)), (5, (2, 3))]).unwrap();
        add_to_buckets(c, vec![(5, (3, 0)), (5, (1, 0)), (9, (1, 20))]).unwrap();
        let found = positions_of(c, [5, 5 + BUCKETS, 9, 11]).unwrap();
        assert_eq!(found[&5], vec![(1, 0), (2, 3), (3, 0)]);
        assert_eq!(found[&(5 + BUCKETS)], vec![(1, 10)]);
        assert_eq!(found[&9], vec![(1, 20)]);
        assert!(found[&11].is_empty());
    }

    #[test]
    fn model_numbers_are_kept_across_loads() {
        let s = store();
        let c = &s.conn;
        let mut m = Models::load(c).unwrap();
        let a = m.id(c, Some("claude-opus-4-5")).unwrap();
        let b = m.id(c, Some("claude-sonnet-4-5")).unwrap();
        assert_eq!(m.id(c, Some("claude-opus-4-5")).unwrap(), a);
        assert_eq!(m.id(c, None).unwrap(), 0);
        let again = Models::load(c).unwrap();
        assert_eq!(again.name(a).as_deref(), Some("claude-opus-4-5"));
        assert_eq!(again.name(b).as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(again.name(0), None);
    }
}
