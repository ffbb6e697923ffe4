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
    // 3: the lines packed, a row per chunk of a file's lines instead of one
    // per line (see store/packed.rs); `lines` is carried over and dropped
    // by `packed::migrate_rows`.
    r#"
    CREATE TABLE chunks (
        id           INTEGER PRIMARY KEY,
        file_id      INTEGER NOT NULL REFERENCES files(id),
        -- Offset of the chunk's first line: a line is in the last chunk of
        -- its file that starts at or before it.
        first_offset INTEGER NOT NULL,
        -- Times of the chunk's earliest and latest lines, counted or not.
        min_ms       INTEGER NOT NULL,
        max_ms       INTEGER NOT NULL,
        lines        INTEGER NOT NULL,
        kept         INTEGER NOT NULL,
        data         BLOB NOT NULL,
        UNIQUE (file_id, first_offset)
    );
    CREATE INDEX chunks_time ON chunks(max_ms);

    CREATE TABLE models (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );

    -- Positions of the lines of each message id, by message id % 4096.
    CREATE TABLE message_buckets (
        bucket INTEGER PRIMARY KEY,
        data   BLOB NOT NULL
    );
    "#,
    // 4: the buckets' entries as varints (see packed::decode_bucket),
    // written again from the chunks by `packed::rebuild_buckets`.
    "",
    // 5: accounts. Every transcript belongs to the data root it was read
    // under; de-duplication, windows, captures and hook events are kept per
    // root, so one store holds several accounts without mixing them. Files
    // are attributed by `sync::attribute_by_path`, which also recomputes
    // the verdicts and windows per root.
    r#"
    CREATE TABLE roots (
        id   INTEGER PRIMARY KEY,
        -- The canonical `projects/` directory.
        path BLOB NOT NULL UNIQUE
    );
    -- NULL: under no root csm knows (listed as unattributed, never counted).
    ALTER TABLE files ADD COLUMN root_id INTEGER REFERENCES roots(id);
    -- With `present`, a count of an account's transcripts on disk reads the
    -- index alone (a warm run makes one).
    CREATE INDEX files_root ON files(root_id, present);

    DROP TABLE blocks;
    CREATE TABLE blocks (
        root_id       INTEGER NOT NULL,
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
        PRIMARY KEY (root_id, start_ms, is_gap)
    ) WITHOUT ROWID;

    -- Windows of several roots taken together (a comma list), kept as
    -- `blocks` rows under root_id = -slot while `generation` equals meta
    -- 'windows_gen' (bumped by every sync that changes anything).
    CREATE TABLE union_windows (
        scope      TEXT PRIMARY KEY,
        slot       INTEGER NOT NULL UNIQUE,
        generation INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- NULL: captured before csm knew accounts, or outside every root.
    ALTER TABLE official_limits ADD COLUMN root_id INTEGER;
    ALTER TABLE activity ADD COLUMN root_id INTEGER;
    "#,
];

/// The step that packs the lines: after its tables exist, the rows of
/// `lines` move into them.
const PACKING_STEP: usize = 2;

/// The step that re-encodes the message-id buckets.
const BUCKETS_STEP: usize = 3;

/// The step that gives every transcript its data root.
const ROOTS_STEP: usize = 4;

pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to date. A store from a newer csm is refused rather
/// than misread. Returns whether rows moved, leaving free pages behind.
pub fn migrate(conn: &mut Connection) -> Result<bool, super::StoreError> {
    migrate_to(conn, MIGRATIONS.len())
}

/// [`migrate`], stopping at version `upto` (tests of one step).
fn migrate_to(conn: &mut Connection, upto: usize) -> Result<bool, super::StoreError> {
    let mut moved = false;
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        return Err(super::StoreError::TooNew {
            found: current,
            supported: VERSION,
        });
    }
    for (i, step) in MIGRATIONS
        .iter()
        .enumerate()
        .take(upto)
        .skip(current as usize)
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(step)?;
        if i == PACKING_STEP {
            moved |= super::packed::migrate_rows(&tx)?;
        }
        if i == BUCKETS_STEP {
            super::packed::rebuild_buckets(&tx)?;
        }
        if i == ROOTS_STEP {
            super::sync::attribute_by_path(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(moved)
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

        assert!(!migrate(&mut conn).unwrap(), "no lines to move");
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

    /// A version-2 store's lines, counted or not, with every value set or
    /// left out, come through the packing step as they were.
    #[test]
    fn packing_carries_every_stored_line_over() {
        use super::super::packed;
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..PACKING_STEP] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", PACKING_STEP as i64)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO files (id, path, project, session_id, project_path, device, inode, size, mtime_ns, read_to)
                 VALUES (1, x'2f61', 'p', 's', '/p', 1, 2, 30, 4, 30),
                        (2, x'2f62', 'p', 't', '/p', 1, 3, 30, 4, 30);
             INSERT INTO lines VALUES
                 (1, 20, 2000, 6, 7, 8, 9, 0, NULL, NULL, NULL, NULL, NULL, 11, 0, NULL, 0.0, 0, 0, NULL, NULL),
                 (1, 10, 1000, 1, 2, 3, 4, 2, 1, 0.25, 'claude-x', -5, 7, 9, 1, 1700000000, 0.5, 1, 1, 1, 10),
                 (2, 0, 1500, 1, 2, 3, 4, 0, 0, NULL, 'claude-x', -5, 7, 9, 0, NULL, 0.5, 0, 0, NULL, NULL);",
        )
        .unwrap();

        // Up to the step before accounts, which judges the lines again.
        assert!(migrate_to(&mut conn, ROOTS_STEP).unwrap(), "rows moved");
        assert!(
            !migrate_to(&mut conn, ROOTS_STEP).unwrap(),
            "nothing more to move"
        );
        let gone: bool = conn
            .query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'lines')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(gone, "the old table is dropped");
        let models = packed::Models::load(&conn).unwrap();
        let a = packed::file_lines(&conn, 1).unwrap();
        assert_eq!(a.iter().map(|l| l.offset).collect::<Vec<_>>(), [10, 20]);
        let full = &a[0];
        assert_eq!(full.ts_ms, 1000);
        assert_eq!(
            (
                full.tokens.input_tokens,
                full.tokens.cache_read_input_tokens,
                full.cache_1h
            ),
            (1, 4, 2)
        );
        assert_eq!(full.speed, Some(crate::domain::Speed::Fast));
        assert_eq!(full.cost_usd, Some(0.25));
        assert_eq!(models.name(full.model).as_deref(), Some("claude-x"));
        assert_eq!(full.message_id, Some(-5i64 as u64));
        assert_eq!((full.request_id, full.session_key), (Some(7), 9));
        assert!(full.sidechain && full.unpriced);
        assert_eq!((full.reset_s, full.calc_cost), (Some(1_700_000_000), 0.5));
        assert_eq!(full.slot, Some((1, 10)));
        let bare = &a[1];
        assert_eq!(
            (
                bare.speed,
                bare.cost_usd,
                bare.model,
                bare.message_id,
                bare.request_id
            ),
            (None, None, 0, None, None)
        );
        assert_eq!(
            (bare.reset_s, bare.slot, bare.sidechain),
            (None, None, false)
        );
        let b = packed::file_lines(&conn, 2).unwrap();
        assert_eq!(
            (b.len(), b[0].speed),
            (1, Some(crate::domain::Speed::Standard))
        );
        // Both copies of the response are found from its message id.
        let found = packed::positions_of(&conn, [-5i64 as u64]).unwrap();
        assert_eq!(found[&(-5i64 as u64)], [(1, 10), (2, 0)]);
        assert_eq!(packed::counts(&conn).unwrap(), (3, 1));
    }

    /// A version-3 store's buckets (24 bytes an entry) are written again
    /// in the new encoding, and still find every copy of a response.
    #[test]
    fn the_buckets_are_rewritten_from_the_chunks() {
        use super::super::packed;
        let mut conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..BUCKETS_STEP] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO files (id, path, project, session_id, project_path, device, inode, size, mtime_ns, read_to)
                 VALUES (1, x'2f61', 'p', 's', '/p', 1, 2, 30, 4, 30),
                        (2, x'2f62', 'p', 't', '/p', 1, 3, 30, 4, 30);",
        )
        .unwrap();
        let id = u64::MAX - 3;
        let mut buf = Vec::new();
        for (file, offsets) in [(1, [0u64, 40]), (2, [7, 90])] {
            let lines: Vec<packed::Line> = offsets
                .iter()
                .map(|&o| packed::Line::for_tests(o, 1000, Some(if o == 40 { 12 } else { id })))
                .collect();
            packed::put_new(&conn, file, &lines, &mut buf).unwrap();
        }
        // What version 3 wrote: message id, file id and offset as 8-byte words.
        let old: Vec<u8> = [(id, 1u64, 0u64), (id, 2, 7), (id, 2, 90)]
            .iter()
            .flat_map(|(m, f, o)| [m.to_le_bytes(), f.to_le_bytes(), o.to_le_bytes()])
            .flatten()
            .collect();
        conn.execute("DELETE FROM message_buckets", []).unwrap();
        conn.execute(
            "INSERT INTO message_buckets VALUES (?1, ?2)",
            rusqlite::params![(id % 4096) as i64, old],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", BUCKETS_STEP as i64)
            .unwrap();

        assert!(!migrate(&mut conn).unwrap());
        assert_eq!(version(&conn), VERSION);
        let found = packed::positions_of(&conn, [id, 12]).unwrap();
        assert_eq!(found[&id], [(1, 0), (2, 7), (2, 90)]);
        assert_eq!(found[&12], [(1, 40)]);
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
