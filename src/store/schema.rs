//! Schema and forward migrations, versioned with `PRAGMA user_version`.

use rusqlite::Connection;

/// Each step moves the schema from version `i` to `i + 1`. Never edit a
/// released step: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: transcripts, every accepted usage line, windows, maxima.
    r#"
    CREATE TABLE files (
        id           INTEGER PRIMARY KEY,
        path         BLOB NOT NULL UNIQUE,
        project      TEXT NOT NULL,
        session_id   TEXT NOT NULL,
        project_path TEXT NOT NULL,
        device       INTEGER NOT NULL,
        inode        INTEGER NOT NULL,
        size         INTEGER NOT NULL,
        mtime_ns     INTEGER NOT NULL,
        -- End of the last complete line read: the next run starts here.
        read_to      INTEGER NOT NULL,
        -- 0 once the transcript is gone; its entries stay.
        present      INTEGER NOT NULL DEFAULT 1,
        -- Lines read and what was skipped (JSON, see sync::FileCounts), so
        -- doctor and --debug report totals without re-reading.
        lines_read   INTEGER NOT NULL DEFAULT 0,
        skipped      TEXT NOT NULL DEFAULT '{}'
    );

    -- Every accepted usage line, copies included: de-duplication is recomputed
    -- per message id from these, so a later run gives what one pass would.
    CREATE TABLE lines (
        file_id       INTEGER NOT NULL REFERENCES files(id),
        offset        INTEGER NOT NULL,
        ts_ms         INTEGER NOT NULL,
        input         INTEGER NOT NULL,
        output        INTEGER NOT NULL,
        cache_create  INTEGER NOT NULL,
        cache_read    INTEGER NOT NULL,
        cache_1h      INTEGER NOT NULL,
        speed         INTEGER,
        cost_usd      REAL,
        model         TEXT,
        message_id    INTEGER,
        request_id    INTEGER,
        session_key   INTEGER NOT NULL,
        sidechain     INTEGER NOT NULL,
        reset_s       INTEGER,
        -- Price of the line at the prices in use (see meta 'prices').
        calc_cost     REAL NOT NULL,
        unpriced      INTEGER NOT NULL,
        -- The line is the counted copy of its response; slot_* is where the
        -- response was first seen (its place in reading order).
        kept          INTEGER NOT NULL DEFAULT 0,
        slot_file     INTEGER,
        slot_offset   INTEGER,
        PRIMARY KEY (file_id, offset)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS lines_message ON lines(message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS lines_kept_time ON lines(ts_ms) WHERE kept = 1;

    -- Five-hour windows over the kept lines, kept current incrementally.
    CREATE TABLE blocks (
        start_ms      INTEGER NOT NULL,
        end_ms        INTEGER NOT NULL,
        first_ms      INTEGER,
        last_ms       INTEGER,
        is_gap        INTEGER NOT NULL,
        entries       INTEGER NOT NULL,
        input         INTEGER NOT NULL,
        output        INTEGER NOT NULL,
        cache_create  INTEGER NOT NULL,
        cache_read    INTEGER NOT NULL,
        cost_auto     REAL NOT NULL,
        cost_calc     REAL NOT NULL,
        cost_display  REAL NOT NULL,
        models        TEXT NOT NULL,
        reset_s       INTEGER,
        -- A gap can start at the same instant as the window after it.
        PRIMARY KEY (start_ms, is_gap)
    ) WITHOUT ROWID;

    -- Directories under the data roots with their times, so a run lists only
    -- the ones whose contents changed.
    CREATE TABLE dirs (
        path     BLOB PRIMARY KEY,
        mtime_ns INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The secondary indexes of `lines` (also in migration 1): a cold load drops
/// and rebuilds them.
pub const LINE_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS lines_message ON lines(message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS lines_kept_time ON lines(ts_ms) WHERE kept = 1;";

pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date. A store from a newer csm is refused rather
/// than misread.
pub fn migrate(conn: &mut Connection) -> Result<(), super::StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        return Err(super::StoreError::TooNew {
            found: current,
            supported: VERSION,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
