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
    // 2: what Claude Code tells csm directly (official limits from the status
    // line, activity from hooks) and the alerts already sent.
    r#"
    -- One row per status-line call that carried rate_limits.
    CREATE TABLE official_limits (
        captured_ms      INTEGER NOT NULL,
        session_id       TEXT,
        five_hour_pct    REAL,
        five_hour_reset_s INTEGER,
        seven_day_pct    REAL,
        seven_day_reset_s INTEGER
    );
    CREATE INDEX official_limits_time ON official_limits(captured_ms);

    -- One row per hook event received.
    CREATE TABLE activity (
        ts_ms       INTEGER NOT NULL,
        session_id  TEXT NOT NULL,
        event       TEXT NOT NULL,
        cwd         TEXT,
        project     TEXT,
        detail      TEXT
    );
    CREATE INDEX activity_session_time ON activity(session_id, ts_ms);
    CREATE INDEX activity_time ON activity(ts_ms);

    -- A quick look at the transcripts reads only the recently active ones.
    CREATE INDEX files_recent ON files(mtime_ns) WHERE present = 1;

    -- Alerts delivered (or given up on), one row per rule key, so a restart
    -- never repeats one.
    CREATE TABLE alerts_sent (
        key      TEXT PRIMARY KEY,
        rule     TEXT NOT NULL,
        sent_ms  INTEGER NOT NULL,
        title    TEXT NOT NULL,
        body     TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The secondary indexes of `lines` (also in migration 1): a cold load drops
/// the message-id one and builds it again at the end.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn an_older_store_is_brought_forward_keeping_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A store as the first release left it.
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute("INSERT INTO meta VALUES ('k', 'v')", [])
            .unwrap();

        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), VERSION);
        let kept: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'k'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "v");
        conn.execute(
            "INSERT INTO alerts_sent VALUES ('w', 'window_end', 1, 't', 'b')",
            [],
        )
        .unwrap();

        // Running it again changes nothing.
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), VERSION);
    }

    #[test]
    fn a_store_from_a_newer_csm_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(super::super::StoreError::TooNew { .. })
        ));
    }
}
