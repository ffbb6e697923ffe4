//! What Claude Code tells csm directly: official-limit captures from the
//! status line and hook events, plus the cheap reads the status line makes.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{ScopeRoot, Store, StoreError, ms, schema};
use crate::ingest::claude::activity::ActivityEvent;
use crate::ingest::claude::limits::{OfficialBar, OfficialLimits};
use crate::ingest::claude::spool::{self, Record};
use crate::pricing::CostMode;

/// An unchanged capture is written again after this long, so its age keeps
/// saying when Claude Code last confirmed the figures.
const RECAPTURE_EVERY: SignedDuration = SignedDuration::from_secs(30);
/// Captures and hook events older than this are pruned.
const KEEP_LIMITS: SignedDuration = SignedDuration::from_hours(24 * 40);
const KEEP_ACTIVITY: SignedDuration = SignedDuration::from_hours(24 * 7);

/// A block row as the status line needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockRow {
    /// Window start.
    pub start: Timestamp,
    /// Window end (start plus the stored window length).
    pub end: Timestamp,
    /// Time of the window's last entry.
    pub last_entry: Option<Timestamp>,
    /// Usage entries in the window.
    pub entries: u64,
    /// All four token kinds summed.
    pub tokens: u64,
    /// Cost in USD, by the cost mode asked for.
    pub cost_usd: f64,
}

impl Store {
    /// Opens an existing, current store without creating, migrating or
    /// taking the writers' lock: the path for Claude Code's status line and
    /// hooks, which must answer in milliseconds. `None` when there is no
    /// store yet or its schema is not this csm's (a full open fixes that).
    /// `busy` bounds how long a write waits for another writer.
    pub fn open_existing(base_dir: &Path, busy: Duration) -> Result<Option<Store>, StoreError> {
        let path = base_dir.join(super::FILE_NAME);
        if !path.is_file() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != schema::VERSION {
            return Ok(None);
        }
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Some(Store {
            conn,
            path,
            lock_path: Some(base_dir.join("history.lock")),
            scope: super::Scope::Every,
            whole: false,
        }))
    }

    /// Bounds how long a write waits for another writer from now on.
    pub fn set_busy_timeout(&self, busy: Duration) -> Result<(), StoreError> {
        Ok(self.conn.busy_timeout(busy)?)
    }

    /// Whether `c` is worth recording: it differs from the latest capture,
    /// or that one is [`RECAPTURE_EVERY`] old (the status line repaints
    /// several times a second).
    pub fn capture_due(&self, c: &OfficialLimits) -> Result<bool, StoreError> {
        Ok(!self.latest_limits()?.is_some_and(|last| {
            last.five_hour == c.five_hour
                && last.seven_day == c.seven_day
                && c.captured_at >= last.captured_at
                && c.captured_at.duration_since(last.captured_at) < RECAPTURE_EVERY
        }))
    }

    /// Records a capture (tests; csm itself imports captures from the spool).
    #[cfg(test)]
    pub(crate) fn record_limits(
        &mut self,
        c: &OfficialLimits,
        session_id: Option<&str>,
    ) -> Result<(), StoreError> {
        insert_limits(&self.conn, c, session_id, None)
    }

    /// The most recent capture, if any.
    pub fn latest_limits(&self) -> Result<Option<OfficialLimits>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT captured_ms, five_hour_pct, five_hour_reset_s, seven_day_pct, seven_day_reset_s
             FROM official_limits WHERE {} ORDER BY captured_ms DESC LIMIT 1",
            self.told_filter()
        ))?;
        let bar = |pct: Option<f64>, reset: Option<i64>| {
            pct.map(|p| OfficialBar {
                used_percent: p,
                resets_at: reset.and_then(|s| Timestamp::from_second(s).ok()),
            })
        };
        Ok(stmt
            .query_row([], |r| {
                Ok(OfficialLimits {
                    captured_at: ms(r.get(0)?),
                    five_hour: bar(r.get(1)?, r.get(2)?),
                    seven_day: bar(r.get(3)?, r.get(4)?),
                })
            })
            .optional()?)
    }

    /// Records one hook event (tests; csm itself imports events from the spool).
    #[cfg(test)]
    pub(crate) fn record_activity(&mut self, e: &ActivityEvent) -> Result<(), StoreError> {
        insert_activity(&self.conn, e, None)
    }

    /// Moves what `csm hook` and `csm statusline` spooled into the store, in
    /// one transaction (see [`crate::ingest::claude::spool`]). Waits for the write
    /// lock only as long as the busy timeout allows.
    pub fn import_spool(&mut self, base_dir: &Path) -> Result<SpoolImport, StoreError> {
        let mut report = SpoolImport::default();
        if !spool::pending(base_dir) {
            return Ok(report);
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        spool::seal(base_dir)?;
        let files = spool::sealed(base_dir)?;
        let done: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [SPOOL_META], |r| {
                r.get(0)
            })
            .optional()?;
        let done: HashSet<&str> = done
            .as_deref()
            .map(|d| d.lines().collect())
            .unwrap_or_default();
        for f in &files {
            if done.contains(f.id.as_str()) {
                continue;
            }
            let parsed = spool::parse(&std::fs::read(&f.path)?);
            report.skipped += parsed.skipped;
            for r in &parsed.records {
                match r {
                    Record::Limits {
                        capture,
                        session_id,
                        transcript,
                    } => {
                        let root = root_of(&tx, transcript.as_deref())?;
                        insert_limits(&tx, capture, session_id.as_deref(), root)?;
                        report.captures += 1;
                    }
                    Record::Activity(e) => {
                        let root = root_of(&tx, e.transcript.as_deref())?;
                        insert_activity(&tx, e, root)?;
                        report.events += 1;
                    }
                }
            }
        }
        let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![SPOOL_META, ids.join("\n")],
        )?;
        tx.commit()?;
        for f in &files {
            // Left behind, it is recognised by its id and only deleted.
            let _ = std::fs::remove_file(&f.path);
        }
        Ok(report)
    }

    /// Hook events from `since` on, in time order.
    pub fn activity_since(&self, since: Timestamp) -> Result<Vec<ActivityEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT ts_ms, session_id, event, cwd, project, detail FROM activity
             WHERE ts_ms >= ?1 AND {} ORDER BY ts_ms, rowid",
            self.told_filter()
        ))?;
        let rows = stmt.query_map([since.as_millisecond()], |r| {
            Ok(ActivityEvent {
                ts: ms(r.get(0)?),
                session_id: r.get(1)?,
                event: r.get(2)?,
                cwd: r.get(3)?,
                project: r.get(4)?,
                detail: r.get(5)?,
                transcript: None,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What Claude Code told csm that belongs to the roots in scope: rows of
    /// their sessions, and rows of no known account (recorded before csm
    /// knew accounts) while the store holds one account at most.
    pub(super) fn told_filter(&self) -> String {
        match &self.scope {
            super::Scope::Every => "1 = 1".into(),
            super::Scope::Roots(ids) => format!(
                "(root_id IN ({}) OR (root_id IS NULL AND (SELECT count(*) FROM roots) <= 1))",
                super::sync::id_list(ids)
            ),
        }
    }

    /// Whether any hook event was ever recorded (hooks are set up, for any account).
    pub fn has_activity(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM activity)", [], |r| r.get(0))?)
    }

    /// Windows (gaps left out) that end after `from`, oldest first.
    pub fn blocks_ending_after(
        &self,
        from: Timestamp,
        mode: CostMode,
    ) -> Result<Vec<BlockRow>, StoreError> {
        let root = match self.scope_root()? {
            ScopeRoot::None => return Ok(Vec::new()),
            ScopeRoot::One(root) => root,
            ScopeRoot::Many => {
                return Ok(self
                    .blocks(mode)?
                    .into_iter()
                    .filter(|b| !b.is_gap && b.end > from)
                    .map(|b| BlockRow {
                        start: b.start,
                        end: b.end,
                        last_entry: b.actual_end,
                        entries: b.entries as u64,
                        tokens: b.tokens.total(),
                        cost_usd: b.cost_usd,
                    })
                    .collect());
            }
        };
        let cost = cost_column(mode);
        let sql = format!(
            "SELECT start_ms, end_ms, last_ms, entries,
                    input + output + cache_create + cache_read, {cost}
             FROM blocks WHERE root_id = ?2 AND is_gap = 0 AND end_ms > ?1 ORDER BY start_ms"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![from.as_millisecond(), root], |r| {
            Ok(BlockRow {
                start: ms(r.get(0)?),
                end: ms(r.get(1)?),
                last_entry: r.get::<_, Option<i64>>(2)?.map(ms),
                entries: r.get::<_, i64>(3)? as u64,
                tokens: r.get::<_, i64>(4)? as u64,
                cost_usd: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The most tokens of any window that started before `before`.
    pub fn max_block_tokens_before(&self, before: Timestamp) -> Result<u64, StoreError> {
        let root = match self.scope_root()? {
            ScopeRoot::None => return Ok(0),
            ScopeRoot::One(root) => root,
            ScopeRoot::Many => {
                return Ok(self
                    .blocks(CostMode::Auto)?
                    .iter()
                    .filter(|b| !b.is_gap && b.start < before)
                    .map(|b| b.tokens.total())
                    .max()
                    .unwrap_or(0));
            }
        };
        Ok(self.conn.query_row(
            "SELECT coalesce(max(input + output + cache_create + cache_read), 0)
             FROM blocks WHERE root_id = ?2 AND is_gap = 0 AND start_ms < ?1",
            params![before.as_millisecond(), root],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Cost of the counted entries in `[since, until]` under `mode` (entries
    /// dated after `until`, a clock running fast, are left out).
    pub fn cost_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        mode: CostMode,
    ) -> Result<f64, StoreError> {
        let mut total = 0.0;
        let (since, until) = (since.as_millisecond(), until.as_millisecond());
        let roots = self.scope_ids()?;
        let cost = |cost_usd: Option<f64>, calc: f64| match mode {
            CostMode::Auto => cost_usd.unwrap_or(calc),
            CostMode::Calculate => calc,
            CostMode::Display => cost_usd.unwrap_or(0.0),
        };
        if roots.len() > 1 {
            let (roots, files) = self.scoped_files()?;
            return Ok(self
                .union_kept(&roots, &files)?
                .iter()
                .filter(|k| (since..=until).contains(&k.entry.timestamp.as_millisecond()))
                .map(|k| cost(k.entry.cost_usd, k.calc))
                .sum());
        }
        let in_scope = super::roots::FileRoots::load(&self.conn)?.files_of(&roots);
        super::packed::scan_counted_since(&self.conn, since, false, |file, l| {
            if l.ts_ms > until || !in_scope.contains(&file) {
                return;
            }
            total += cost(l.cost_usd, l.calc_cost);
        })?;
        Ok(total)
    }

    /// Stored size of a transcript (what has been read of it), if known.
    pub fn transcript_read_to(&self, path: &Path) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT read_to FROM files WHERE path = ?1 AND present = 1",
                [path.as_os_str().as_encoded_bytes()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|v| v as u64))
    }
}

/// What one import moved into the store.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpoolImport {
    /// Official-limit captures imported.
    pub captures: usize,
    /// Hook activity events imported.
    pub events: usize,
    /// Lines that were not a record.
    pub skipped: usize,
}

/// The sealed spools the last import read, one id per line.
const SPOOL_META: &str = "spool_imported";

/// The root (account) of the session whose transcript is at `path`.
fn root_of(conn: &Connection, path: Option<&str>) -> Result<Option<i64>, StoreError> {
    match path {
        Some(p) => super::roots::root_of_path(conn, p.as_bytes()),
        None => Ok(None),
    }
}

fn insert_limits(
    conn: &Connection,
    c: &OfficialLimits,
    session_id: Option<&str>,
    root: Option<i64>,
) -> Result<(), StoreError> {
    let bar = |b: &Option<OfficialBar>| {
        (
            b.as_ref().map(|b| b.used_percent),
            b.as_ref().and_then(|b| b.resets_at).map(|t| t.as_second()),
        )
    };
    let (fp, fr) = bar(&c.five_hour);
    let (sp, sr) = bar(&c.seven_day);
    conn.prepare_cached(
        "INSERT INTO official_limits (captured_ms, session_id, five_hour_pct, five_hour_reset_s,
             seven_day_pct, seven_day_reset_s, root_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        c.captured_at.as_millisecond(),
        session_id,
        fp,
        fr,
        sp,
        sr,
        root
    ])?;
    if let Ok(old) = c.captured_at.checked_sub(KEEP_LIMITS) {
        conn.prepare_cached("DELETE FROM official_limits WHERE captured_ms < ?1")?
            .execute([old.as_millisecond()])?;
    }
    Ok(())
}

/// Session starts and ends (rare) also prune events older than a week.
fn insert_activity(
    conn: &Connection,
    e: &ActivityEvent,
    root: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO activity (ts_ms, session_id, event, cwd, project, detail, root_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.ts.as_millisecond(),
        e.session_id,
        e.event,
        e.cwd,
        e.project,
        e.detail,
        root
    ])?;
    if matches!(e.event.as_str(), "SessionStart" | "SessionEnd")
        && let Ok(old) = e.ts.checked_sub(KEEP_ACTIVITY)
    {
        conn.prepare_cached("DELETE FROM activity WHERE ts_ms < ?1")?
            .execute([old.as_millisecond()])?;
    }
    Ok(())
}

fn cost_column(mode: CostMode) -> &'static str {
    match mode {
        CostMode::Auto => "cost_auto",
        CostMode::Calculate => "cost_calc",
        CostMode::Display => "cost_display",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn capture(pct: f64, at: &str) -> OfficialLimits {
        OfficialLimits {
            five_hour: Some(OfficialBar {
                used_percent: pct,
                resets_at: Some(t("2026-11-20T19:00:00Z")),
            }),
            seven_day: None,
            captured_at: t(at),
        }
    }

    #[test]
    fn captures_round_trip_and_unchanged_ones_are_throttled() {
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.latest_limits().unwrap(), None);
        let c = capture(42.0, "2026-11-20T16:40:00Z");
        assert!(s.capture_due(&c).unwrap());
        s.record_limits(&c, Some("s1")).unwrap();
        assert_eq!(s.latest_limits().unwrap(), Some(c.clone()));
        // The same figures 10 s later: not due.
        assert!(
            !s.capture_due(&capture(42.0, "2026-11-20T16:40:10Z"))
                .unwrap()
        );
        // 30 s later they are, so the capture's age stays honest.
        let later = capture(42.0, "2026-11-20T16:40:30Z");
        assert!(s.capture_due(&later).unwrap());
        s.record_limits(&later, None).unwrap();
        assert_eq!(s.latest_limits().unwrap(), Some(later));
        // New figures are due at once.
        assert!(
            s.capture_due(&capture(43.0, "2026-11-20T16:40:31Z"))
                .unwrap()
        );
    }

    fn event(n: i64) -> ActivityEvent {
        ActivityEvent {
            ts: t("2026-11-20T10:00:00Z") + SignedDuration::from_secs(n),
            session_id: format!("s{n}"),
            event: "PreToolUse".into(),
            cwd: None,
            project: None,
            detail: None,
            transcript: None,
        }
    }

    /// A capture or event belongs to the account whose root holds the
    /// session's transcript: each account sees its own; one from no known
    /// root is nobody's once the store knows two accounts.
    #[test]
    fn captures_and_events_belong_to_the_sessions_account() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("csm");
        let (a, b) = (dir.path().join("a/projects"), dir.path().join("b/projects"));
        let mut s = Store::open(&base).unwrap();
        s.set_scope(std::slice::from_ref(&a)).unwrap();
        s.set_scope(std::slice::from_ref(&b)).unwrap();
        let in_root = |root: &std::path::Path| Some(root.join("p/s.jsonl").display().to_string());
        for (pct, transcript) in [(10.0, in_root(&a)), (20.0, in_root(&b)), (30.0, None)] {
            let record = Record::Limits {
                capture: capture(pct, &format!("2026-11-20T16:4{}:00Z", pct as u8 / 10)),
                session_id: None,
                transcript: transcript.clone(),
            };
            spool::append(&base, &record).unwrap();
            let mut e = event(pct as i64);
            e.transcript = transcript;
            spool::append(&base, &Record::Activity(e)).unwrap();
        }
        s.import_spool(&base).unwrap();
        let seen = |s: &mut Store, root: &std::path::Path| {
            s.set_scope(&[root.to_path_buf()]).unwrap();
            let pct = s
                .latest_limits()
                .unwrap()
                .and_then(|l| l.five_hour)
                .map(|b| b.used_percent);
            let events: Vec<String> = s
                .activity_since(Timestamp::MIN)
                .unwrap()
                .into_iter()
                .map(|e| e.session_id)
                .collect();
            (pct, events)
        };
        assert_eq!(seen(&mut s, &a), (Some(10.0), vec!["s10".to_string()]));
        assert_eq!(seen(&mut s, &b), (Some(20.0), vec!["s20".to_string()]));
    }

    #[test]
    fn the_spool_is_imported_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let mut s = Store::open(base).unwrap();
        assert_eq!(s.import_spool(base).unwrap(), SpoolImport::default());
        let c = capture(42.0, "2026-11-20T16:40:00Z");
        spool::append(
            base,
            &Record::Limits {
                capture: c.clone(),
                session_id: None,
                transcript: None,
            },
        )
        .unwrap();
        spool::append(base, &Record::Activity(event(1))).unwrap();
        spool::append(base, &Record::Activity(event(2))).unwrap();
        let got = s.import_spool(base).unwrap();
        assert_eq!(
            got,
            SpoolImport {
                captures: 1,
                events: 2,
                skipped: 0
            }
        );
        assert!(!spool::pending(base));
        assert_eq!(s.latest_limits().unwrap(), Some(c));
        assert_eq!(
            s.activity_since(Timestamp::MIN).unwrap(),
            vec![event(1), event(2)]
        );
        assert_eq!(s.import_spool(base).unwrap(), SpoolImport::default());
    }

    /// A crash after the commit and before the delete: the next import
    /// recognises the file and imports nothing twice.
    #[test]
    fn a_sealed_spool_left_after_its_import_is_not_imported_again() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let mut s = Store::open(base).unwrap();
        spool::append(base, &Record::Activity(event(1))).unwrap();
        spool::seal(base).unwrap();
        let kept = std::fs::read(&spool::sealed(base).unwrap()[0].path).unwrap();
        let name = spool::sealed(base).unwrap()[0].path.clone();
        s.import_spool(base).unwrap();
        // The "crash": the file is still there (same inode, as never deleted).
        assert!(!name.exists());
        std::fs::write(&name, &kept).unwrap();
        let id = spool::sealed(base).unwrap()[0].id.clone();
        s.conn
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = ?2",
                params![id, SPOOL_META],
            )
            .unwrap();
        // A new record arrives meanwhile.
        spool::append(base, &Record::Activity(event(2))).unwrap();
        let got = s.import_spool(base).unwrap();
        assert_eq!(got.events, 1, "only the new record");
        assert_eq!(
            s.activity_since(Timestamp::MIN).unwrap(),
            vec![event(1), event(2)]
        );
        assert!(!spool::pending(base));
    }

    #[test]
    fn a_busy_store_leaves_the_spool_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let mut s = Store::open(base).unwrap();
        s.set_busy_timeout(Duration::ZERO).unwrap();
        let other = Store::open(base).unwrap();
        other.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        spool::append(base, &Record::Activity(event(1))).unwrap();
        let err = s.import_spool(base).unwrap_err();
        assert!(err.is_busy(), "{err}");
        assert!(spool::pending(base));
        other.conn.execute_batch("COMMIT").unwrap();
        assert_eq!(s.import_spool(base).unwrap().events, 1);
    }

    #[test]
    fn activity_round_trips_and_old_events_are_pruned() {
        let mut s = Store::open_in_memory().unwrap();
        assert!(!s.has_activity().unwrap());
        let e = |ts: &str, event: &str| ActivityEvent {
            ts: t(ts),
            session_id: "s".into(),
            event: event.into(),
            cwd: Some("/w/api".into()),
            project: Some("api".into()),
            detail: Some("Bash".into()),
            transcript: None,
        };
        s.record_activity(&e("2026-11-01T10:00:00Z", "Stop"))
            .unwrap();
        s.record_activity(&e("2026-11-20T10:00:00Z", "PreToolUse"))
            .unwrap();
        assert!(s.has_activity().unwrap());
        assert_eq!(
            s.activity_since(t("2026-11-20T00:00:00Z")).unwrap(),
            vec![e("2026-11-20T10:00:00Z", "PreToolUse")]
        );
        s.record_activity(&e("2026-11-20T10:01:00Z", "SessionEnd"))
            .unwrap();
        let all = s.activity_since(Timestamp::MIN).unwrap();
        assert_eq!(all.len(), 2, "the event from November 1st is pruned");
    }
}
