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

/// Message-id buckets: each holds the positions of the lines whose message
/// id falls in it, sorted, so a warm run finds a response's copies with one
/// small read.
const BUCKETS: u64 = 4096;

/// The least a bucket entry takes (a copy of the entry before's response:
/// three one-byte varints); sizes the decoding's first allocation.
const BUCKET_ENTRY_MIN: usize = 3;

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
}

const SIDECHAIN: u16 = 1;
const UNPRICED: u16 = 1 << 1;
const HAS_COST: u16 = 1 << 2;
const HAS_MESSAGE: u16 = 1 << 3;
const HAS_REQUEST: u16 = 1 << 4;
const HAS_RESET: u16 = 1 << 5;
const HAS_SLOT: u16 = 1 << 6;
/// Same session as the record before it.
const SAME_SESSION: u16 = 1 << 7;
/// The slot is in the chunk's own file: only its offset is written.
const SLOT_HERE: u16 = 1 << 8;
/// `usage.speed` in two bits from here: none, standard, fast.
const SPEED_SHIFT: u16 = 9;

fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

/// Writes a chunk of `file_id`'s lines (sorted by offset). Each record is
/// a set of flags and then varints, with offset, time and session given
/// against the record before: 40–50 bytes a line instead of 128 at fixed
/// places, which the cold load writes twice (WAL, then the database).
/// Chunks are always read whole, so nothing needs a record's place.
fn encode_chunk(file_id: i64, lines: &[Line], out: &mut Vec<u8>) {
    let (mut offset, mut ts, mut session) = (0u64, 0i64, None);
    for l in lines {
        let mut flags = 0u16;
        let mut flag = |on: bool, bit: u16| {
            if on {
                flags |= bit;
            }
        };
        flag(l.sidechain, SIDECHAIN);
        flag(l.unpriced, UNPRICED);
        flag(l.cost_usd.is_some(), HAS_COST);
        flag(l.message_id.is_some(), HAS_MESSAGE);
        flag(l.request_id.is_some(), HAS_REQUEST);
        flag(l.reset_s.is_some(), HAS_RESET);
        flag(l.slot.is_some(), HAS_SLOT);
        flag(session == Some(l.session_key), SAME_SESSION);
        flag(l.slot.is_some_and(|s| s.0 == file_id), SLOT_HERE);
        let speed = match l.speed {
            None => 0u16,
            Some(Speed::Standard) => 1,
            Some(Speed::Fast) => 2,
        };
        put_var(out, u64::from(flags | speed << SPEED_SHIFT));
        put_var(out, l.offset.wrapping_sub(offset));
        put_var(out, zigzag(l.ts_ms.wrapping_sub(ts)));
        for v in [
            l.tokens.input_tokens,
            l.tokens.output_tokens,
            l.tokens.cache_creation_input_tokens,
            l.tokens.cache_read_input_tokens,
            l.cache_1h,
            u64::from(l.model),
        ] {
            put_var(out, v);
        }
        let words = [
            l.cost_usd.map(f64::to_bits),
            l.message_id,
            l.request_id,
            (flags & SAME_SESSION == 0).then_some(l.session_key),
        ];
        for w in words.into_iter().flatten() {
            out.extend_from_slice(&w.to_le_bytes());
        }
        if let Some(r) = l.reset_s {
            put_var(out, zigzag(r));
        }
        out.extend_from_slice(&l.calc_cost.to_bits().to_le_bytes());
        if let Some((f, o)) = l.slot {
            if f != file_id {
                put_var(out, zigzag(f));
            }
            put_var(out, o);
        }
        (offset, ts, session) = (l.offset, l.ts_ms, Some(l.session_key));
    }
}

/// A chunk's bytes being read; `None` once they run out or do not parse.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn var(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = *self.data.get(self.at)?;
            self.at += 1;
            if shift >= 64 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
            shift += 7;
        }
    }

    fn word(&mut self) -> Option<u64> {
        let b = self.data.get(self.at..self.at + 8)?;
        self.at += 8;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    fn line(&mut self, file_id: i64, prev: Option<&Line>) -> Option<Line> {
        let flags = u16::try_from(self.var()?).ok()?;
        let on = |bit: u16| flags & bit != 0;
        let offset = prev.map_or(0, |p| p.offset).wrapping_add(self.var()?);
        let ts_ms = prev
            .map_or(0, |p| p.ts_ms)
            .wrapping_add(unzigzag(self.var()?));
        let tokens = TokenCounts {
            input_tokens: self.var()?,
            output_tokens: self.var()?,
            cache_creation_input_tokens: self.var()?,
            cache_read_input_tokens: self.var()?,
        };
        let cache_1h = self.var()?;
        let model = u32::try_from(self.var()?).ok()?;
        let cost_usd = if on(HAS_COST) {
            Some(f64::from_bits(self.word()?))
        } else {
            None
        };
        let message_id = if on(HAS_MESSAGE) {
            Some(self.word()?)
        } else {
            None
        };
        let request_id = if on(HAS_REQUEST) {
            Some(self.word()?)
        } else {
            None
        };
        let session_key = match prev {
            Some(p) if on(SAME_SESSION) => p.session_key,
            _ => self.word()?,
        };
        let reset_s = if on(HAS_RESET) {
            Some(unzigzag(self.var()?))
        } else {
            None
        };
        let calc_cost = f64::from_bits(self.word()?);
        let slot = if !on(HAS_SLOT) {
            None
        } else if on(SLOT_HERE) {
            Some((file_id, self.var()?))
        } else {
            let f = unzigzag(self.var()?);
            Some((f, self.var()?))
        };
        Some(Line {
            offset,
            ts_ms,
            tokens,
            cache_1h,
            speed: match (flags >> SPEED_SHIFT) & 3 {
                1 => Some(Speed::Standard),
                2 => Some(Speed::Fast),
                _ => None,
            },
            cost_usd,
            model,
            message_id,
            request_id,
            session_key,
            sidechain: on(SIDECHAIN),
            reset_s,
            calc_cost,
            unpriced: on(UNPRICED),
            slot,
        })
    }
}

/// Column `i` of a row as bytes, without copying them.
pub(super) fn blob<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
    r.get_ref(i)?.as_blob().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// The lines of a chunk of `file_id`, as [`encode_chunk`] wrote them.
fn decode_chunk(file_id: i64, data: &[u8]) -> Result<Vec<Line>, StoreError> {
    let mut bytes = Bytes { data, at: 0 };
    let mut out: Vec<Line> = Vec::with_capacity(CHUNK_LINES);
    while bytes.at < data.len() {
        let line = bytes
            .line(file_id, out.last())
            .ok_or(StoreError::Damaged(file_id))?;
        out.push(line);
    }
    Ok(out)
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
    encode_chunk(file_id, lines, buf);
    let (mut lo, mut hi, mut kept) = (i64::MAX, i64::MIN, 0i64);
    for l in lines {
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
        out.push(decode_chunk(file_id, blob(r, 0)?)?);
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
    let mut tail = decode_chunk(file_id, &data)?;
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
    decode_chunk(file_id, &data)
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
        for line in decode_chunk(file, blob(r, 1)?)? {
            f(file, line)?;
        }
    }
    Ok(())
}

/// Calls `f` with every line of the files of `roots` and its file id, in no
/// particular order: one account's report reads its own chunks only, not
/// those of every account the store holds.
pub(super) fn scan_roots(
    conn: &Connection,
    roots: &[i64],
    mut f: impl FnMut(i64, Line) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT c.file_id, c.data FROM files f JOIN chunks c ON c.file_id = f.id
         WHERE f.root_id IN ({})",
        super::sync::id_list(roots)
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let file: i64 = r.get(0)?;
        for line in decode_chunk(file, blob(r, 1)?)? {
            f(file, line)?;
        }
    }
    Ok(())
}

/// Calls `f` with every counted line at or after `from` (after it, when
/// `strictly`) and its file id, in no particular order.
pub(super) fn scan_counted_since(
    conn: &Connection,
    from: i64,
    strictly: bool,
    mut f: impl FnMut(i64, Line),
) -> Result<(), StoreError> {
    scan(conn, Scan::Since(from), |file, l| {
        if l.kept() && (l.ts_ms > from || (l.ts_ms == from && !strictly)) {
            f(file, l);
        }
        Ok(())
    })
}

/// Sorts `items` in reading order of the position `pos` gives: by the path
/// of its file (`path`), then offset; the file id only separates rows that
/// share a path.
pub(super) fn sort_in_reading_order<'p, T>(
    items: &mut [T],
    path: impl Fn(i64) -> &'p [u8],
    pos: impl Fn(&T) -> Pos,
) {
    items.sort_by(|a, b| {
        let (pa, pb) = (pos(a), pos(b));
        path(pa.0)
            .cmp(path(pb.0))
            .then(pa.1.cmp(&pb.1))
            .then(pa.0.cmp(&pb.0))
    });
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

/// A bucket's entries, sorted. Each is three varints: the message id's
/// bits above the bucket's (all ids in a bucket share the low 12) as a
/// step up from the entry before, then the file id and the offset. The
/// steps are small and a response's copies step by 0, so an entry takes
/// about 10 bytes instead of 24 at fixed places: a cold load writes (and
/// checkpoints) less than half the pages at its end.
fn decode_bucket(bucket: i64, data: &[u8]) -> Vec<BucketEntry> {
    let mut bytes = Bytes { data, at: 0 };
    let mut out = Vec::with_capacity(data.len() / BUCKET_ENTRY_MIN);
    let mut high = 0u64;
    while let (Some(step), Some(file), Some(offset)) = (bytes.var(), bytes.var(), bytes.var()) {
        high = high.wrapping_add(step);
        out.push(((high << 12) | bucket as u64, (unzigzag(file), offset)));
    }
    out
}

fn put_bucket(
    conn: &Connection,
    bucket: i64,
    entries: &[BucketEntry],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    buf.clear();
    let mut last = None;
    let mut high = 0u64;
    // Sorted, so a repeated entry follows its twin and the ids' high bits
    // only go up.
    for e @ (m, (file, offset)) in entries {
        debug_assert_eq!(bucket_of(*m), bucket);
        if last == Some(e) {
            continue;
        }
        last = Some(e);
        put_var(buf, (m >> 12).wrapping_sub(high));
        put_var(buf, zigzag(*file));
        put_var(buf, *offset);
        high = m >> 12;
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
    Ok(data
        .as_deref()
        .map(|d| decode_bucket(bucket, d))
        .unwrap_or_default())
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
        put_bucket(conn, bucket, &entries, &mut buf)?;
    }
    Ok(())
}

/// Writes every bucket again from the stored lines (migration 4, which
/// changed their encoding).
pub(super) fn rebuild_buckets(conn: &Connection) -> Result<(), StoreError> {
    let mut all: Vec<BucketEntry> = Vec::new();
    scan(conn, Scan::All, |file, l| {
        if let Some(m) = l.message_id {
            all.push((m, l.pos(file)));
        }
        Ok(())
    })?;
    set_buckets(conn, all)
}

/// Replaces every bucket with `all` (a full recompute that read every line).
pub(super) fn set_buckets(conn: &Connection, mut all: Vec<BucketEntry>) -> Result<(), StoreError> {
    sort_for_buckets(&mut all);
    set_buckets_from_runs(conn, &all, &[all.len()])
}

/// Sorts entries the way the buckets hold them: by bucket, then entry.
pub(super) fn sort_for_buckets(entries: &mut [BucketEntry]) {
    entries.sort_unstable_by_key(|e| (bucket_of(e.0), *e));
}

/// Replaces every bucket with the entries of `runs` (the ends of
/// consecutive runs of `all`, each sorted by [`sort_for_buckets`]): a cold
/// load sorts each batch's entries as it writes them, so at its end the
/// buckets come from one sequential pass over the runs instead of one sort
/// of 188,000 entries.
pub(super) fn set_buckets_from_runs(
    conn: &Connection,
    all: &[BucketEntry],
    runs: &[usize],
) -> Result<(), StoreError> {
    conn.execute("DELETE FROM message_buckets", [])?;
    let mut cursors: Vec<std::ops::Range<usize>> = Vec::with_capacity(runs.len());
    let mut from = 0;
    for &end in runs {
        cursors.push(from..end);
        from = end;
    }
    let mut group: Vec<BucketEntry> = Vec::new();
    let mut buf = Vec::new();
    for bucket in 0..BUCKETS as i64 {
        group.clear();
        for c in &mut cursors {
            while c.start < c.end && bucket_of(all[c.start].0) == bucket {
                group.push(all[c.start]);
                c.start += 1;
            }
        }
        if !group.is_empty() {
            group.sort_unstable();
            put_bucket(conn, bucket, &group, &mut buf)?;
        }
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
/// no longer have, so every row is carried over. Returns whether there
/// were rows (their pages are then free).
pub(super) fn migrate_rows(conn: &Connection) -> Result<bool, StoreError> {
    let has_lines: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lines')",
        [],
        |r| r.get(0),
    )?;
    if !has_lines {
        return Ok(false);
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
    Ok(file.is_some())
}

#[cfg(test)]
impl Line {
    /// A line with made-up counts, counted nowhere.
    pub(super) fn for_tests(offset: u64, ts_ms: i64, message_id: Option<u64>) -> Line {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(offset: u64, ts_ms: i64, message_id: Option<u64>) -> Line {
        Line::for_tests(offset, ts_ms, message_id)
    }

    fn store() -> super::super::Store {
        super::super::Store::open_in_memory().unwrap()
    }

    fn any_line() -> impl Strategy<Value = Line> {
        let nan_free = || any::<f64>().prop_filter("NaN", |v| !v.is_nan());
        (
            (any::<u64>(), any::<i64>(), any::<[u64; 5]>(), 0usize..3),
            (proptest::option::of(nan_free()), any::<u32>()),
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
                prop_oneof![Just(7u64), any::<u64>()],
            ),
            (any::<bool>(), proptest::option::of(any::<i64>())),
            (nan_free(), any::<bool>()),
            proptest::option::of((prop_oneof![Just(3i64), any::<i64>()], any::<u64>())),
        )
            .prop_map(
                |(
                    (offset, ts_ms, t, speed),
                    (cost_usd, model),
                    (message_id, request_id, session_key),
                    (sidechain, reset_s),
                    (calc_cost, unpriced),
                    slot,
                )| Line {
                    offset,
                    ts_ms,
                    tokens: TokenCounts {
                        input_tokens: t[0],
                        output_tokens: t[1],
                        cache_creation_input_tokens: t[2],
                        cache_read_input_tokens: t[3],
                    },
                    cache_1h: t[4],
                    speed: [None, Some(Speed::Standard), Some(Speed::Fast)][speed],
                    cost_usd,
                    model,
                    message_id,
                    request_id,
                    session_key,
                    sidechain,
                    reset_s,
                    calc_cost,
                    unpriced,
                    slot,
                },
            )
    }

    proptest! {
        /// Every field, present or not, extreme or not, reads back as
        /// written, whatever the records around it (file 3's chunk: slots
        /// in file 3 are written short).
        #[test]
        fn chunks_read_back_as_written(mut lines in proptest::collection::vec(any_line(), 1..40)) {
            lines.sort_by_key(|l| l.offset);
            lines.dedup_by_key(|l| l.offset);
            let mut buf = Vec::new();
            encode_chunk(3, &lines, &mut buf);
            prop_assert_eq!(decode_chunk(3, &buf).unwrap(), lines);
        }

        /// Any positions under any message ids, the extremes included,
        /// come back from the buckets' varints as they went in.
        #[test]
        fn buckets_give_back_any_positions(
            entries in proptest::collection::vec(
                (
                    prop_oneof![any::<u64>(), 0u64..3, Just(u64::MAX), Just(u64::MAX - BUCKETS)],
                    (prop_oneof![any::<i64>(), 1i64..4], prop_oneof![any::<u64>(), 0u64..100]),
                ),
                0..200,
            ),
        ) {
            let s = store();
            set_buckets(&s.conn, entries.clone()).unwrap();
            let mut want: std::collections::BTreeMap<u64, Vec<Pos>> = Default::default();
            for (m, p) in &entries {
                want.entry(*m).or_default().push(*p);
            }
            for ps in want.values_mut() {
                ps.sort_unstable();
                ps.dedup();
            }
            let found = positions_of(&s.conn, want.keys().copied()).unwrap();
            prop_assert_eq!(found.len(), want.len());
            for (m, ps) in &want {
                prop_assert_eq!(&found[m], ps);
            }
        }

        /// Damaged bytes are an error, never a panic or a wrong read of
        /// the lines before the damage.
        #[test]
        fn cut_or_garbled_chunks_are_refused(
            lines in proptest::collection::vec(any_line(), 1..5),
            cut in any::<proptest::sample::Index>(),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut lines = lines;
            lines.sort_by_key(|l| l.offset);
            lines.dedup_by_key(|l| l.offset);
            let mut buf = Vec::new();
            encode_chunk(3, &lines, &mut buf);
            let short = &buf[..cut.index(buf.len())];
            if let Ok(got) = decode_chunk(3, short) {
                prop_assert!(got.len() < lines.len() && got[..] == lines[..got.len()]);
            }
            let _ = decode_chunk(3, &junk);
        }
    }

    #[test]
    fn a_typical_line_takes_under_50_bytes() {
        let mut lines: Vec<Line> = (0..100)
            .map(|i| {
                let mut l = line(
                    1000 + i * 2048,
                    1_764_000_000_000 + i as i64 * 9000,
                    Some(i),
                );
                l.request_id = Some(i * 31);
                l.slot = Some((3, l.offset));
                l
            })
            .collect();
        lines[5].slot = Some((2, 77));
        let mut buf = Vec::new();
        encode_chunk(3, &lines, &mut buf);
        assert!(buf.len() < 50 * lines.len(), "{} bytes", buf.len());
        assert_eq!(decode_chunk(3, &buf).unwrap(), lines);
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

    /// Buckets written from sorted runs (a cold load's batches) hold what
    /// one sorted list gives, whatever the runs' sizes.
    #[test]
    fn buckets_from_runs_equal_buckets_from_one_list() {
        let entries: Vec<BucketEntry> = (0..3000u64)
            .map(|i| ((i * 7919) % 5000 + (i % 3) * BUCKETS, ((i % 11) as i64, i)))
            .collect();
        let one = store();
        set_buckets(&one.conn, entries.clone()).unwrap();
        let runs = store();
        let mut parts = entries.clone();
        let ends = [0, 1, 1000, 1001, 2500, 3000];
        for w in ends.windows(2) {
            sort_for_buckets(&mut parts[w[0]..w[1]]);
        }
        set_buckets_from_runs(&runs.conn, &parts, &ends[1..]).unwrap();
        let dump = |c: &Connection| -> Vec<(i64, Vec<u8>)> {
            c.prepare("SELECT bucket, data FROM message_buckets ORDER BY bucket")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let (a, b) = (dump(&one.conn), dump(&runs.conn));
        assert!(a.len() > 1000);
        assert_eq!(a, b);
        let ids: Vec<u64> = entries.iter().map(|e| e.0).collect();
        let found = positions_of(&runs.conn, ids.iter().copied()).unwrap();
        for (m, pos) in &entries {
            assert!(found[m].contains(pos));
        }
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
