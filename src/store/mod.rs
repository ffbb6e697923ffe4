//! The history store: an SQLite file that keeps every usage line csm
//! has read, so history outlives Claude Code's transcript clean-up and a run
//! only reads the bytes appended since the last one.
//!
//! What is stored is the raw material (every accepted line, copies included)
//! plus what is derived from it incrementally: which copy of each response
//! counts (de-duplication is a function of the lines sharing a message id, so
//! it is recomputed per message id) and the five-hour windows (recomputed from
//! the earliest change on). A run therefore gives exactly what one pass over
//! all transcripts would, however many runs came before.
//!
//! The lines are stored packed, in chunks of a transcript's lines with
//! message-id buckets beside them (`packed.rs`, `docs/store-packed.md`).

mod alerts;
mod claude;
mod packed;
mod roots;
mod schema;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::blocks::Block;
use crate::domain::{Origin, TokenCounts, UsageEntry};
use crate::ingest::discover::{DirStamp, TranscriptFile, WalkMemo};
use crate::pricing::CostMode;

pub use alerts::{OfficialCapture, SentAlert};
pub use claude::{BlockRow, SpoolImport};
pub use roots::{Scope, StoredRoot};
pub use sync::{SyncOptions, SyncReport, WindowUpdate};

/// File name of the store inside the base directory.
pub const FILE_NAME: &str = "history.db";

/// Window length the stored blocks are computed for (the default `--session-length`).
pub const STORED_WINDOW_HOURS: f64 = 5.0;

/// What can go wrong with the history store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An SQLite error (a busy timeout included, see [`StoreError::is_busy`]).
    #[error("history store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file-system error around the store.
    #[error("history store: {0}")]
    Io(#[from] std::io::Error),
    /// The file's schema is newer than this csm's.
    #[error(
        "history store was written by a newer csm (schema {found}, this csm knows {supported}); upgrade csm or move the file away"
    )]
    TooNew {
        /// The file's schema version.
        found: i64,
        /// The newest schema version this csm knows.
        supported: i64,
    },
    /// A stored chunk of lines could not be decoded; holds the file id.
    #[error(
        "history store: the stored lines of file {0} are damaged; run `csm db rebuild` to read the transcripts again"
    )]
    Damaged(i64),
}

impl StoreError {
    /// Another process held the write lock past the busy timeout.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// A WAL up to this size is left for the next process by a run that wrote
/// to it, instead of being checkpointed on close (see [`Store`]'s `Drop`).
const CHECKPOINT_ON_CLOSE_AFTER: u64 = 1 << 20;

/// SQLite's page cache per connection, in KiB.
const CACHE_KIB: i64 = 8192;
/// The page cache during a cold ingest (see `Store::cold_sync`).
const COLD_CACHE_KIB: i64 = 1024;

/// An open connection to the history store (`history.db` in the base directory).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Serialises writers across processes (see [`Store::writer_lock`]).
    lock_path: Option<PathBuf>,
    /// The roots queries report on ([`Store::set_scope`]).
    scope: Scope,
    /// The scope holds every transcript of the store (one account's store):
    /// queries of `files` need no filter.
    whole: bool,
}

/// The last connection to close a WAL database checkpoints it (two fsyncs)
/// and deletes it, and the next writer then syncs a new WAL's header: on a
/// short run that writes a few pages (a warm report, an imported hook event)
/// those syncs cost more than the rest of the run. Such a run leaves a small
/// WAL as it is; the run that lets it grow past [`CHECKPOINT_ON_CLOSE_AFTER`]
/// checkpoints it. Every first opener rebuilds the WAL index from the whole
/// WAL (about 3 ms a MiB), so a run that wrote nothing checkpoints what it
/// found: the runs after it, while nothing changes, open no WAL at all.
/// Crash safety is SQLite's either way.
impl Drop for Store {
    fn drop(&mut self) {
        if self.lock_path.is_none() {
            return;
        }
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let limit = if self.conn.total_changes() > 0 {
            CHECKPOINT_ON_CLOSE_AFTER
        } else {
            0
        };
        let small = std::fs::metadata(&wal).is_ok_and(|m| m.len() <= limit);
        if small {
            let _ = self.conn.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            );
        }
    }
}

impl Store {
    /// Opens (creating if needed) `<base>/history.db`: WAL so readers never
    /// wait for the writer, a busy timeout so writers queue instead of failing.
    pub fn open(base_dir: &Path) -> Result<Store, StoreError> {
        crate::fsutil::create_private_dir(base_dir)?;
        let path = base_dir.join(FILE_NAME);
        crate::fsutil::touch_private(&path)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let lock_path = base_dir.join("history.lock");
        Self::setup(conn, path, Some(lock_path))
    }

    /// A store that lives in memory only (tests).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::setup(
            Connection::open_in_memory()?,
            PathBuf::from(":memory:"),
            None,
        )
    }

    /// An exclusive lock held while one process brings the store up to date:
    /// two processes planning the same new transcripts at once would both
    /// insert them. Others wait here (a file lock, no timeout to run out),
    /// then find little or nothing left to do. Readers never take it.
    pub(crate) fn writer_lock(&self) -> Result<Option<std::fs::File>, StoreError> {
        let Some(p) = &self.lock_path else {
            return Ok(None);
        };
        crate::fsutil::touch_private(p)?;
        let f = std::fs::OpenOptions::new().append(true).open(p)?;
        f.lock()?;
        Ok(Some(f))
    }

    fn setup(
        conn: Connection,
        path: PathBuf,
        lock_path: Option<PathBuf>,
    ) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        let mut store = Store {
            conn,
            path,
            lock_path,
            scope: Scope::Every,
            whole: false,
        };
        // Switching a new file to WAL and creating the schema race between
        // processes started together (switching the journal mode does not
        // wait for a busy database): do both under the writers' lock, and
        // only when needed, so an open never waits for a long ingest.
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let current: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let in_memory = store.lock_path.is_none();
        if (!mode.eq_ignore_ascii_case("wal") && !in_memory) || current != schema::VERSION {
            let _lock = store.writer_lock()?;
            if !in_memory {
                let _: String = store
                    .conn
                    .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            }
            if schema::migrate(&mut store.conn)? {
                // The old rows' pages are free: give them back to the file
                // system once (a 1 GiB history's store: 43 MB to 16 MB). A
                // failure only leaves the file larger.
                let _ = store.conn.execute_batch("VACUUM");
            }
        }
        Ok(store)
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The counted entries (one per response) of the roots in scope, in
    /// reading order, optionally of one project only.
    pub fn entries(&self, project: Option<&str>) -> Result<Vec<UsageEntry>, StoreError> {
        let (roots, mut files) = self.scoped_files()?;
        if let Some(p) = project {
            files.retain(|_, f| &*f.origin.project == p);
        }
        if roots.len() > 1 {
            return Ok(self
                .union_kept(&roots, &files)?
                .into_iter()
                .map(|k| k.entry)
                .collect());
        }
        let mut lines: Vec<(i64, packed::Line)> = Vec::new();
        packed::scan_roots(&self.conn, &roots, |file, l| {
            if l.kept() && files.contains_key(&file) {
                lines.push((file, l));
            }
            Ok(())
        })?;
        self.ordered_entries(lines, &files, |(_, l)| l.slot.unwrap_or_default())
    }

    /// Every stored line of one project's files (in the roots in scope),
    /// copies included, in reading order: `--project` de-duplicates within
    /// the project only, as ccusage.
    pub fn project_lines(&self, project: &str) -> Result<Vec<UsageEntry>, StoreError> {
        let (roots, files) = self.scoped_files()?;
        let mut lines: Vec<(i64, packed::Line)> = Vec::new();
        packed::scan_roots(&self.conn, &roots, |file, l| {
            if files
                .get(&file)
                .is_some_and(|f| &*f.origin.project == project)
            {
                lines.push((file, l));
            }
            Ok(())
        })?;
        self.ordered_entries(lines, &files, |(file, l)| l.pos(*file))
    }

    /// Counted entries from `since` on, in time order (reading order on ties).
    pub fn entries_since(&self, since: Timestamp) -> Result<Vec<UsageEntry>, StoreError> {
        let (roots, files) = self.scoped_files()?;
        let mut entries = if roots.len() > 1 {
            let mut all: Vec<UsageEntry> = self
                .union_kept(&roots, &files)?
                .into_iter()
                .map(|k| k.entry)
                .collect();
            all.retain(|e| e.timestamp >= since);
            all
        } else {
            let mut lines: Vec<(i64, packed::Line)> = Vec::new();
            packed::scan_counted_since(&self.conn, since.as_millisecond(), false, |file, l| {
                if files.contains_key(&file) {
                    lines.push((file, l));
                }
            })?;
            self.ordered_entries(lines, &files, |(_, l)| l.slot.unwrap_or_default())?
        };
        // Stable: reading order stays on ties.
        entries.sort_by_key(|e| e.timestamp);
        Ok(entries)
    }

    /// The roots in scope and their files' paths and origins, by id.
    fn scoped_files(
        &self,
    ) -> Result<(Vec<i64>, rustc_hash::FxHashMap<i64, StoredFile>), StoreError> {
        let roots = self.scope_ids()?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, path, project, session_id, project_path FROM files WHERE root_id IN ({})",
            sync::id_list(&roots)
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = rustc_hash::FxHashMap::default();
        while let Some(r) = rows.next()? {
            out.insert(
                r.get::<_, i64>(0)?,
                StoredFile {
                    path: packed::blob(r, 1)?.to_vec(),
                    origin: Arc::new(Origin {
                        project: Arc::from(r.get::<_, String>(2)?.as_str()),
                        session_id: r.get(3)?,
                        project_path: r.get(4)?,
                    }),
                },
            );
        }
        Ok((roots, out))
    }

    /// The counted responses of `files` taken together, in reading order:
    /// their lines de-duplicated as one history, so a response copied into
    /// two roots counts once (as ccusage counts a comma list). Each comes
    /// with its counted copy's calculated cost.
    fn union_kept(
        &self,
        roots: &[i64],
        files: &rustc_hash::FxHashMap<i64, StoredFile>,
    ) -> Result<Vec<UnionKept>, StoreError> {
        let mut lines: Vec<(i64, packed::Line)> = Vec::new();
        packed::scan_roots(&self.conn, roots, |file, l| {
            if files.contains_key(&file) {
                lines.push((file, l));
            }
            Ok(())
        })?;
        let path = |id: i64| {
            files
                .get(&id)
                .map(|f| f.path.as_slice())
                .unwrap_or_default()
        };
        packed::sort_in_reading_order(&mut lines, path, |(file, l)| l.pos(*file));
        let models = packed::Models::load(&self.conn)?;
        let calc: rustc_hash::FxHashMap<packed::Pos, f64> = lines
            .iter()
            .map(|(file, l)| (l.pos(*file), l.calc_cost))
            .collect();
        let mut d: crate::dedup::Deduper<packed::Pos> =
            crate::dedup::Deduper::with_capacity(lines.len());
        for (file, l) in &lines {
            if let Some(f) = files.get(file) {
                d.push_at(l.entry(f.origin.clone(), &models), l.pos(*file));
            }
        }
        Ok(d.finish_kept()
            .into_iter()
            .map(|k| UnionKept {
                calc: calc.get(&k.winner).copied().unwrap_or_default(),
                entry: k.entry,
            })
            .collect())
    }

    /// The entries of `lines` (with their files' ids), in the reading order
    /// of the position `at` gives.
    fn ordered_entries(
        &self,
        mut lines: Vec<(i64, packed::Line)>,
        files: &rustc_hash::FxHashMap<i64, StoredFile>,
        at: impl Fn(&(i64, packed::Line)) -> (i64, u64),
    ) -> Result<Vec<UsageEntry>, StoreError> {
        let path = |id: i64| {
            files
                .get(&id)
                .map(|f| f.path.as_slice())
                .unwrap_or_default()
        };
        packed::sort_in_reading_order(&mut lines, path, at);
        let models = packed::Models::load(&self.conn)?;
        let unknown = Arc::new(Origin {
            project: Arc::from("unknown"),
            session_id: String::new(),
            project_path: String::new(),
        });
        Ok(lines
            .iter()
            .map(|(file, l)| {
                let origin = files.get(file).map_or(&unknown, |f| &f.origin);
                l.entry(origin.clone(), &models)
            })
            .collect())
    }

    /// The five-hour windows of the roots in scope with costs under
    /// `mode`: one root's are stored; several roots' are computed from
    /// their lines taken together.
    pub fn blocks(&self, mode: CostMode) -> Result<Vec<Block>, StoreError> {
        match self.scope_root()? {
            ScopeRoot::None => Ok(Vec::new()),
            ScopeRoot::One(root) => self.stored_blocks(root, mode),
            ScopeRoot::Many => {
                let (roots, files) = self.scoped_files()?;
                let scope = sync::id_list(&roots);
                let generation = self.generation()?;
                if let Some(slot) = self.union_slot(&scope, generation)? {
                    return self.stored_blocks(-slot, mode);
                }
                let mut kept = self.union_kept(&roots, &files)?;
                // Stable: reading order (by path, not by file id, which
                // follows the order roots were first read) stays on ties.
                kept.sort_by_key(|k| k.entry.timestamp);
                let entries: Vec<&UsageEntry> = kept.iter().map(|k| &k.entry).collect();
                let calc: Vec<f64> = kept.iter().map(|k| k.calc).collect();
                let windows = sync::windows(None, &entries, &calc);
                // A cache only: a store busy with a writer or read-only
                // answers the same, computed again next time.
                if let Err(e) = sync::keep_union_windows(&self.conn, &scope, generation, &windows) {
                    tracing::debug!("union windows not kept: {e}");
                }
                let [auto, calculate, display] = windows;
                Ok(match mode {
                    CostMode::Auto => auto,
                    CostMode::Calculate => calculate,
                    CostMode::Display => display,
                })
            }
        }
    }

    /// The windows stored under `root_id` (a root, or a union's `-slot`).
    fn stored_blocks(&self, root_id: i64, mode: CostMode) -> Result<Vec<Block>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {BLOCK_COLUMNS} FROM blocks WHERE root_id = ?1 ORDER BY start_ms, is_gap DESC"
        ))?;
        let rows = stmt.query_map([root_id], |r| row_block(r, mode))?;
        Ok(rows.collect::<Result<Vec<Block>, _>>()?)
    }

    /// How many syncs changed the store (meta 'windows_gen').
    fn generation(&self) -> Result<i64, StoreError> {
        Ok(self
            .meta("windows_gen")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The slot of the windows kept for `scope`, when they are current.
    fn union_slot(&self, scope: &str, generation: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT slot FROM union_windows WHERE scope = ?1 AND generation = ?2")?
            .query_row(params![scope, generation], |r| r.get(0))
            .optional()?)
    }

    /// Whether the scope is one root (whose windows are stored) or several.
    pub(crate) fn scope_root(&self) -> Result<ScopeRoot, StoreError> {
        Ok(match self.scope_ids()?.as_slice() {
            [] => ScopeRoot::None,
            [one] => ScopeRoot::One(*one),
            _ => ScopeRoot::Many,
        })
    }

    /// Lines read and skipped by reason over every transcript still present
    /// in the roots in scope, accumulated across runs.
    pub fn line_stats(&self) -> Result<crate::ingest::LineStats, StoreError> {
        let mut out = crate::ingest::LineStats::default();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT lines_read, skipped, read_to FROM files WHERE present = 1{}",
            self.files_filter()
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            out.files += 1;
            out.lines += r.get::<_, i64>(0)? as u64;
            out.bytes += r.get::<_, i64>(2)? as u64;
            let c: sync::FileCounts =
                serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default();
            for (a, b) in out.skipped.iter_mut().zip(c.skipped) {
                *a += b;
            }
            out.oversized_lines += c.oversized;
            out.unreadable_files += c.unreadable;
            out.partial_tail_bytes += c.partial_tail;
        }
        out.entries = out.lines.saturating_sub(out.total_skipped());
        Ok(out)
    }

    /// What the last walk saw, for a walk that lists only changed
    /// directories: the directories with their times and the transcripts
    /// present that changed since `since_ns` (what a quick look needs).
    pub fn walk_memo_since(&self, since_ns: i64) -> Result<WalkMemo, StoreError> {
        let mut memo = WalkMemo {
            dirs: self.walk_memo_dirs()?,
            ..WalkMemo::default()
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT path, project, session_id, project_path, device, inode, size, mtime_ns
             FROM files WHERE present = 1 AND (mtime_ns >= ?1 OR mtime_ns = ?2){}",
            self.files_filter_on("+root_id")
        ))?;
        // A transcript that could not be read is looked at on every run.
        let mut rows = stmt.query([since_ns, crate::ingest::discover::UNSETTLED])?;
        while let Some(r) = rows.next()? {
            memo.files.push(TranscriptFile {
                path: path_from_blob(r.get(0)?),
                origin: Arc::new(Origin {
                    project: Arc::from(r.get::<_, String>(1)?.as_str()),
                    session_id: r.get(2)?,
                    project_path: r.get(3)?,
                }),
                device: r.get::<_, i64>(4)? as u64,
                inode: r.get::<_, i64>(5)? as u64,
                size: r.get::<_, i64>(6)? as u64,
                mtime_ns: r.get(7)?,
            });
        }
        Ok(memo)
    }

    /// Transcripts of the roots in scope on disk at the last look.
    pub fn present_files(&self) -> Result<usize, StoreError> {
        Ok(self.conn.query_row(
            &format!(
                "SELECT count(*) FROM files WHERE present = 1{}",
                self.files_filter()
            ),
            [],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// ` AND root_id IN (…)` for queries of `files` in scope.
    fn files_filter(&self) -> String {
        self.files_filter_on("root_id")
    }

    /// [`Store::files_filter`] on `column`: `+root_id` keeps SQLite from
    /// choosing the root index over a better one (the quick look's recent
    /// files: through `files_root` it read every row of the root, a sixth
    /// of a warm run).
    fn files_filter_on(&self, column: &str) -> String {
        if self.whole {
            return String::new();
        }
        match &self.scope {
            Scope::Every => format!(" AND {column} IS NOT NULL"),
            Scope::Roots(ids) => format!(" AND {column} IN ({})", sync::id_list(ids)),
        }
    }

    /// The `meta` key of the last full walk of the roots in scope.
    pub fn full_walk_key(&self) -> String {
        match &self.scope {
            Scope::Every => "full_walk_ms".into(),
            Scope::Roots(ids) => format!("full_walk_ms:{}", sync::id_list(ids)),
        }
    }

    fn walk_memo_dirs(&self) -> Result<Vec<DirStamp>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, mtime_ns FROM dirs")?;
        let mut rows = stmt.query([])?;
        let mut dirs = Vec::new();
        while let Some(r) = rows.next()? {
            dirs.push(DirStamp {
                path: path_from_blob(r.get(0)?),
                mtime_ns: r.get(1)?,
            });
        }
        Ok(dirs)
    }

    /// Remembers the directories a walk saw (only when they differ from
    /// `before`, what the walk started from) and, for a full walk, when it ran.
    pub fn save_walk(
        &mut self,
        before: &[DirStamp],
        dirs: &[DirStamp],
        full_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        fn key(d: &DirStamp) -> &[u8] {
            d.path.as_os_str().as_encoded_bytes()
        }
        let same = before.len() == dirs.len() && {
            let old: rustc_hash::FxHashMap<&[u8], i64> =
                before.iter().map(|d| (key(d), d.mtime_ns)).collect();
            dirs.iter().all(|d| old.get(key(d)) == Some(&d.mtime_ns))
        };
        if same && full_at.is_none() {
            return Ok(());
        }
        let scoped_roots: Option<Vec<Vec<u8>>> = match &self.scope {
            Scope::Every => None,
            Scope::Roots(_) => Some(self.scope_paths()?.into_iter().map(|(_, p)| p).collect()),
        };
        let walk_key = self.full_walk_key();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if !same {
            // Only this run's roots' directories: another account's stay.
            match scoped_roots {
                None => {
                    tx.execute("DELETE FROM dirs", [])?;
                }
                Some(roots) => {
                    for root in roots {
                        let (lo, hi) = roots::below_range(&root);
                        tx.execute(
                            "DELETE FROM dirs WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
                            params![root, lo, hi],
                        )?;
                    }
                }
            }
            let mut ins =
                tx.prepare_cached("INSERT OR REPLACE INTO dirs (path, mtime_ns) VALUES (?1, ?2)")?;
            for d in dirs {
                ins.execute(params![d.path.as_os_str().as_encoded_bytes(), d.mtime_ns])?;
            }
        }
        if let Some(t) = full_at {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?2, ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [t.as_millisecond().to_string(), walk_key],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sizes and counts for `csm db stats`.
    pub fn stats(&self) -> Result<DbStats, StoreError> {
        let one = |sql: &str| -> Result<i64, rusqlite::Error> {
            self.conn.query_row(sql, [], |r| r.get(0))
        };
        let (lines, entries) = packed::counts(&self.conn)?;
        Ok(DbStats {
            path: self.path.clone(),
            schema_version: one("PRAGMA user_version")?,
            files: one("SELECT count(*) FROM files")? as u64,
            files_gone: one("SELECT count(*) FROM files WHERE present = 0")? as u64,
            lines,
            entries,
            blocks: one("SELECT count(*) FROM blocks WHERE is_gap = 0 AND root_id > 0")? as u64,
            // The windows hold every counted entry.
            first_entry: self
                .conn
                .query_row(
                    "SELECT min(first_ms) FROM blocks WHERE is_gap = 0 AND root_id > 0",
                    [],
                    |r| r.get::<_, Option<i64>>(0),
                )?
                .map(ms),
            last_entry: self
                .conn
                .query_row(
                    "SELECT max(last_ms) FROM blocks WHERE is_gap = 0 AND root_id > 0",
                    [],
                    |r| r.get::<_, Option<i64>>(0),
                )?
                .map(ms),
            max_block_tokens: one(
                "SELECT coalesce(max(input + output + cache_create + cache_read), 0) FROM blocks WHERE is_gap = 0 AND root_id > 0",
            )? as u64,
            max_block_cost: self.conn.query_row(
                "SELECT coalesce(max(cost_auto), 0.0) FROM blocks WHERE is_gap = 0 AND root_id > 0",
                [],
                |r| r.get(0),
            )?,
            bytes: [FILE_NAME, "history.db-wal"]
                .iter()
                .filter_map(|n| self.path.parent().map(|d| d.join(n)))
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum(),
        })
    }

    /// Changes whenever another connection commits to the store (SQLite's
    /// `data_version`); this connection's own commits leave it alone.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// A value of the store's `meta` table, when the key is set.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }
}

/// A response counted over several roots (see `Store::union_kept`).
struct UnionKept {
    entry: UsageEntry,
    calc: f64,
}

/// How many roots a store's scope covers.
pub(crate) enum ScopeRoot {
    /// None: nothing to report.
    None,
    /// One: its windows are stored.
    One(i64),
    /// Several: their windows are computed from the lines taken together.
    Many,
}

/// A transcript as the store knows it.
struct StoredFile {
    path: Vec<u8>,
    origin: Arc<Origin>,
}

/// Sizes and counts of the store, for `csm db stats`.
#[derive(Clone, Debug)]
pub struct DbStats {
    /// The store file's path.
    pub path: PathBuf,
    /// Schema version (SQLite's `user_version`).
    pub schema_version: i64,
    /// Transcript files recorded, gone ones included.
    pub files: u64,
    /// Transcript files recorded as no longer on disk.
    pub files_gone: u64,
    /// Usage lines stored, copies included.
    pub lines: u64,
    /// Counted entries: one per response after de-duplication.
    pub entries: u64,
    /// Windows stored (gaps left out).
    pub blocks: u64,
    /// Time of the earliest counted entry.
    pub first_entry: Option<Timestamp>,
    /// Time of the latest counted entry.
    pub last_entry: Option<Timestamp>,
    /// Token total (all four kinds) of the largest window.
    pub max_block_tokens: u64,
    /// Cost in USD of the costliest window, in auto cost mode.
    pub max_block_cost: f64,
    /// Size of the store file plus its WAL, in bytes.
    pub bytes: u64,
}

fn path_from_blob(bytes: Vec<u8>) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

pub(crate) fn ms(v: i64) -> Timestamp {
    Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Columns of [`row_block`], in order.
pub(crate) const BLOCK_COLUMNS: &str =
    "start_ms, end_ms, first_ms, last_ms, is_gap, entries, input,
    output, cache_create, cache_read, cost_auto, cost_calc, cost_display, models, reset_s";

/// A stored window (selected as [`BLOCK_COLUMNS`]) with its cost in `mode`,
/// judged inactive.
fn row_block(r: &rusqlite::Row<'_>, mode: CostMode) -> rusqlite::Result<Block> {
    let cost = match mode {
        CostMode::Auto => r.get::<_, f64>(10)?,
        CostMode::Calculate => r.get(11)?,
        CostMode::Display => r.get(12)?,
    };
    let models: String = r.get(13)?;
    Ok(Block {
        start: ms(r.get(0)?),
        end: ms(r.get(1)?),
        first_entry: r.get::<_, Option<i64>>(2)?.map(ms),
        actual_end: r.get::<_, Option<i64>>(3)?.map(ms),
        is_gap: r.get(4)?,
        entries: r.get::<_, i64>(5)? as usize,
        tokens: TokenCounts {
            input_tokens: r.get::<_, i64>(6)? as u64,
            output_tokens: r.get::<_, i64>(7)? as u64,
            cache_creation_input_tokens: r.get::<_, i64>(8)? as u64,
            cache_read_input_tokens: r.get::<_, i64>(9)? as u64,
        },
        cost_usd: cost,
        models: serde_json::from_str(&models).unwrap_or_default(),
        usage_limit_reset: r
            .get::<_, Option<i64>>(14)?
            .and_then(|s| Timestamp::from_second(s).ok()),
    })
}

#[cfg(test)]
mod tests;
