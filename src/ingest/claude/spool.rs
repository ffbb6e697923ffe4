//! The spool: what `csm hook` and `csm statusline` hand to the store without
//! waiting for it.
//!
//! Claude Code waits for its hooks and repaints its status line several
//! times a second, while a daemon, a dashboard and report commands may hold
//! the store's write lock for a whole ingest. Instead of waiting (and, past a
//! timeout, losing the event), these callers append one JSON line to
//! `<base>/claude.spool`, and whichever process writes the store next moves
//! the lines into it (`Store::import_spool`).
//!
//! Appends and the import never lose or repeat a record:
//! - an append is one `write` on an `O_APPEND` file under a shared lock;
//! - the importer takes the exclusive lock (so no append is half done),
//!   renames the file to a sealed name, and appenders that still hold the
//!   old file notice the rename and write to the new one;
//! - sealed files are imported inside the store transaction that also names
//!   them in `meta`, and deleted after it commits, so a crash before the
//!   delete leaves files the next import recognises and only deletes.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::activity::ActivityEvent;
use super::limits::{OfficialBar, OfficialLimits};

/// The live spool in the base directory.
pub const FILE_NAME: &str = "claude.spool";
/// Sealed spools are `claude.spool.<ns>-<pid>-<n>`.
const SEALED_PREFIX: &str = "claude.spool.";
/// Past this size nobody has imported for a long time; further records are
/// refused rather than filling the disk.
pub const MAX_BYTES: u64 = 16 << 20;
/// Attempts to find the live file when importers keep sealing it.
const APPEND_ATTEMPTS: usize = 8;

/// One thing Claude Code told csm.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A `rate_limits` capture from the status line.
    Limits {
        /// The official limits captured.
        capture: OfficialLimits,
        /// The session whose status line captured them.
        session_id: Option<String>,
        /// That session's transcript: the account the capture belongs to.
        transcript: Option<String>,
    },
    /// A hook event.
    Activity(ActivityEvent),
}

/// Why a record could not be appended to the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Creating or writing the spool failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The live spool file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The spool is over [`MAX_BYTES`]: nobody has imported it for a long time.
    #[error("{path} holds {size} bytes not yet imported; record dropped")]
    Full {
        /// The live spool file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The live spool file kept being sealed under us; holds its path.
    #[error("{0} kept being replaced; record dropped")]
    Contended(PathBuf),
}

/// A sealed spool waiting to be imported.
#[derive(Debug)]
pub struct Sealed {
    /// The sealed spool file.
    pub path: PathBuf,
    /// Name, device, inode and size: recorded by the import that read it.
    pub id: String,
}

/// What an import read from the sealed spools.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// The records read, in file order.
    pub records: Vec<Record>,
    /// Lines that were not a record (a write cut short by a full disk).
    pub skipped: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RawRecord {
    Limits {
        captured_ms: i64,
        session_id: Option<String>,
        five_hour: Option<RawBar>,
        seven_day: Option<RawBar>,
        // Absent in spools written before accounts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript: Option<String>,
    },
    Activity {
        ts_ms: i64,
        session_id: String,
        event: String,
        cwd: Option<String>,
        project: Option<String>,
        detail: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct RawBar {
    pct: f64,
    reset_s: Option<i64>,
}

impl RawBar {
    fn from_bar(b: &OfficialBar) -> RawBar {
        RawBar {
            pct: b.used_percent,
            reset_s: b.resets_at.map(|t| t.as_second()),
        }
    }

    fn into_bar(self) -> OfficialBar {
        OfficialBar {
            used_percent: self.pct,
            resets_at: self.reset_s.and_then(|s| Timestamp::from_second(s).ok()),
        }
    }
}

impl RawRecord {
    fn from_record(r: &Record) -> RawRecord {
        match r {
            Record::Limits {
                capture,
                session_id,
                transcript,
            } => RawRecord::Limits {
                captured_ms: capture.captured_at.as_millisecond(),
                session_id: session_id.clone(),
                five_hour: capture.five_hour.as_ref().map(RawBar::from_bar),
                seven_day: capture.seven_day.as_ref().map(RawBar::from_bar),
                transcript: transcript.clone(),
            },
            Record::Activity(e) => RawRecord::Activity {
                ts_ms: e.ts.as_millisecond(),
                session_id: e.session_id.clone(),
                event: e.event.clone(),
                cwd: e.cwd.clone(),
                project: e.project.clone(),
                detail: e.detail.clone(),
                transcript: e.transcript.clone(),
            },
        }
    }

    fn into_record(self) -> Option<Record> {
        Some(match self {
            RawRecord::Limits {
                captured_ms,
                session_id,
                five_hour,
                seven_day,
                transcript,
            } => Record::Limits {
                capture: OfficialLimits {
                    captured_at: Timestamp::from_millisecond(captured_ms).ok()?,
                    five_hour: five_hour.map(RawBar::into_bar),
                    seven_day: seven_day.map(RawBar::into_bar),
                },
                session_id,
                transcript,
            },
            RawRecord::Activity {
                ts_ms,
                session_id,
                event,
                cwd,
                project,
                detail,
                transcript,
            } => Record::Activity(ActivityEvent {
                ts: Timestamp::from_millisecond(ts_ms).ok()?,
                session_id,
                event,
                cwd,
                project,
                detail,
                transcript,
            }),
        })
    }
}

/// Appends `record` to `<base>/claude.spool`, creating the directory and the
/// file (0700/0600) as needed. Waits only for an import that is sealing the
/// file at this instant.
pub fn append(base_dir: &Path, record: &Record) -> Result<(), SpoolError> {
    let path = base_dir.join(FILE_NAME);
    let io_err = |source| SpoolError::Io {
        path: path.clone(),
        source,
    };
    let mut line = serde_json::to_vec(&RawRecord::from_record(record))
        .map_err(|e| io_err(io::Error::other(e)))?;
    line.push(b'\n');
    crate::fsutil::create_private_dir(base_dir).map_err(io_err)?;
    for _ in 0..APPEND_ATTEMPTS {
        let mut f = crate::fsutil::open_private_append(&path).map_err(io_err)?;
        f.lock_shared().map_err(io_err)?;
        // Sealed while this process waited for the lock: write to the new one.
        if !is_current(&f, &path) {
            continue;
        }
        let size = f.metadata().map_err(io_err)?.len();
        if size > MAX_BYTES {
            return Err(SpoolError::Full { path, size });
        }
        // One write: O_APPEND keeps concurrent appenders' lines whole.
        return f.write_all(&line).map_err(io_err);
    }
    Err(SpoolError::Contended(path))
}

/// Whether `f` is still the file at `path`.
fn is_current(f: &File, path: &Path) -> bool {
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => same_file(&a, &b),
        _ => false,
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    dev_ino(a) == dev_ino(b)
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

/// Whether anything waits to be imported: a non-empty live spool or a sealed
/// one. Costs a `stat` and a listing of the (small) base directory.
pub fn pending(base_dir: &Path) -> bool {
    fs::metadata(base_dir.join(FILE_NAME)).is_ok_and(|m| m.len() > 0)
        || fs::read_dir(base_dir).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| is_sealed_name(&e.file_name().to_string_lossy())))
        })
}

fn is_sealed_name(name: &str) -> bool {
    name.strip_prefix(SEALED_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'-')
    })
}

/// Renames the live spool to a sealed name once no append is in progress.
/// Callers hold the store's write lock, so sealing never races itself.
pub fn seal(base_dir: &Path) -> io::Result<()> {
    let path = base_dir.join(FILE_NAME);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    f.lock()?;
    if !is_current(&f, &path) || f.metadata()?.len() == 0 {
        return Ok(());
    }
    fs::rename(&path, base_dir.join(sealed_name()))
}

/// A name no other seal uses: the wall clock (never `CSM_NOW`, which
/// stands still), the process and a counter within it.
fn sealed_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEALS: AtomicU64 = AtomicU64::new(0);
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{SEALED_PREFIX}{ns}-{}-{}",
        std::process::id(),
        SEALS.fetch_add(1, Ordering::Relaxed)
    )
}

/// The sealed spools, oldest first.
pub fn sealed(base_dir: &Path) -> io::Result<Vec<Sealed>> {
    let mut out = Vec::new();
    for e in fs::read_dir(base_dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_sealed_name(&name) {
            continue;
        }
        let m = match e.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.push(Sealed {
            path: e.path(),
            id: format!("{name}:{}:{}", identity(&m), m.len()),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn identity(m: &fs::Metadata) -> String {
    let (dev, ino) = dev_ino(m);
    format!("{dev}:{ino}")
}

/// Device and inode (zeros where the platform has none).
fn dev_ino(m: &fs::Metadata) -> (u64, u64) {
    let (dev, ino, _) = crate::ingest::discover::file_identity(m);
    (dev, ino)
}

/// The records in a spool's bytes; lines that are not one are counted.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<RawRecord>(line)
            .ok()
            .and_then(RawRecord::into_record)
        {
            Some(r) => out.records.push(r),
            None => out.skipped += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn event(n: u32) -> Record {
        Record::Activity(ActivityEvent {
            ts: t("2026-11-26T10:00:00Z") + jiff::SignedDuration::from_secs(n.into()),
            session_id: format!("s{n}"),
            event: "PreToolUse".into(),
            cwd: Some("/p/x".into()),
            project: Some("x".into()),
            detail: Some("Bash \"q\"\n".into()),
            transcript: None,
        })
    }

    fn limits() -> Record {
        Record::Limits {
            capture: OfficialLimits {
                captured_at: t("2026-11-26T10:00:00.123Z"),
                five_hour: Some(OfficialBar {
                    used_percent: 42.5,
                    resets_at: Some(t("2026-11-26T12:00:00Z")),
                }),
                seven_day: None,
            },
            session_id: None,
            transcript: None,
        }
    }

    fn read_all(base: &Path) -> Parsed {
        let mut all = Parsed::default();
        for s in sealed(base).unwrap() {
            let p = parse(&fs::read(&s.path).unwrap());
            all.records.extend(p.records);
            all.skipped += p.skipped;
        }
        all
    }

    #[test]
    fn records_round_trip_through_a_sealed_spool() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("csm");
        assert!(!pending(&base));
        append(&base, &limits()).unwrap();
        append(&base, &event(1)).unwrap();
        assert!(pending(&base));
        seal(&base).unwrap();
        assert!(!base.join(FILE_NAME).exists());
        assert!(pending(&base), "a sealed spool still waits");
        let got = read_all(&base);
        assert_eq!(got.records, vec![limits(), event(1)]);
        assert_eq!(got.skipped, 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let s = &sealed(&base).unwrap()[0];
            assert_eq!(
                fs::metadata(&s.path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn cut_and_foreign_lines_are_counted_not_fatal() {
        let bytes =
            b"{\"kind\":\"activity\",\"ts_ms\":1,\"session_id\":\"a\",\"event\":\"Stop\"}\n\
            {\"kind\":\"activity\",\"ts_ms\":2,\"sess\n\
            not json\n\
            {\"kind\":\"weather\"}\n\n";
        let p = parse(bytes);
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.skipped, 3);
    }

    #[test]
    fn only_sealed_names_are_picked_up() {
        for (name, sealed) in [
            ("claude.spool.1764151200000000000-42-0", true),
            ("claude.spool", false),
            ("claude.spool.", false),
            ("claude.spool.tmp", false),
            ("claude.spool.1-2.bak", false),
        ] {
            assert_eq!(is_sealed_name(name), sealed, "{name}");
        }
    }

    #[test]
    fn a_full_spool_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join(FILE_NAME)).unwrap();
        f.set_len(MAX_BYTES + 1).unwrap();
        assert!(matches!(
            append(dir.path(), &event(1)),
            Err(SpoolError::Full { .. })
        ));
    }

    /// Appenders racing an importer that seals over and over: every record
    /// ends up in exactly one sealed file, whole.
    #[test]
    fn concurrent_appends_and_seals_lose_and_repeat_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let base = base.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        append(&base, &event(w * 1000 + i)).unwrap();
                    }
                })
            })
            .collect();
        while !writers.iter().all(|w| w.is_finished()) {
            seal(&base).unwrap();
        }
        for w in writers {
            w.join().unwrap();
        }
        seal(&base).unwrap();
        let got = read_all(&base);
        assert_eq!(got.skipped, 0);
        let mut ids: Vec<String> = got
            .records
            .iter()
            .map(|r| match r {
                Record::Activity(e) => e.session_id.clone(),
                Record::Limits { .. } => unreachable!(),
            })
            .collect();
        ids.sort();
        let mut want: Vec<String> = (0..4)
            .flat_map(|w| (0..250).map(move |i| format!("s{}", w * 1000 + i)))
            .collect();
        want.sort();
        assert_eq!(ids, want);
    }
}
