//! Crash safety of the history store: a cold ingest killed with
//! SIGKILL at any point is repaired by the next run, which then prints
//! exactly what an uninterrupted run prints, and the database stays intact.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Sandbox, StoreMode, assert_same_text, dirty_flag, integrity, open_db, stdout_ok,
};

const MIB: u64 = 1024 * 1024;

/// Small enough to keep the test short; with [`BATCH`] the cold ingest
/// still commits several batches, so kills land between commits.
const HISTORY_BYTES: u64 = 16 * MIB;
/// Transcript bytes per commit for the killed runs (`CSM_INGEST_BATCH_BYTES`;
/// 64 MiB by default).
const BATCH: &str = "2097152";

const REPORTS: [&[&str]; 2] = [&["blocks", "--json"], &["daily", "--json"]];

fn reports(sb: &Sandbox, home: &Path) -> Vec<String> {
    REPORTS
        .iter()
        .map(|args| stdout_ok(sb.cmd_in(&StoreMode::At(home.to_path_buf())).args(*args)))
        .collect()
}

fn spawn_cold(sb: &Sandbox, home: &Path) -> Child {
    spawn_cold_batched(sb, home, BATCH)
}

/// A cold `blocks --json` run committing every `batch` bytes of transcript.
fn spawn_cold_batched(sb: &Sandbox, home: &Path, batch: &str) -> Child {
    sb.process(home)
        .env("CSM_INGEST_BATCH_BYTES", batch)
        .args(["blocks", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn csm")
}

/// What the store said while a run was in progress: the dirty flag and how
/// many lines were committed (None until the schema exists).
fn progress(home: &Path) -> Option<(Option<String>, i64)> {
    // Only once the store is in WAL mode, so this reader never holds up the
    // switch to it.
    if !home.join("history.db-wal").exists() {
        return None;
    }
    let conn = open_db(home);
    let lines: i64 = conn
        .query_row("SELECT coalesce(sum(lines), 0) FROM chunks", [], |r| {
            r.get(0)
        })
        .ok()?;
    Some((dirty_flag(&conn), lines))
}

enum KillAt {
    /// This long after the start.
    After(Duration),
    /// As soon as the store shows this (dirty flag, lines committed).
    When(fn(Option<&str>, i64) -> bool),
    /// This long after the store shows an ingest under way (dirty flag set).
    AfterDirty(Duration),
}

struct Killed {
    what: String,
    /// The run ended by itself before the kill point.
    finished_first: bool,
    dirty_after_kill: Option<String>,
}

fn kill_cold_run(sb: &Sandbox, home: &Path, what: &str, at: KillAt) -> Killed {
    kill_run(spawn_cold(sb, home), home, what, at)
}

/// Default batch size (64 MiB, one batch here).
const ONE_BATCH: &str = "67108864";

/// SIGKILLs `child` (a csm process on the store below `home`) at `at`; the
/// store is intact right after.
fn kill_run(mut child: Child, home: &Path, what: &str, at: KillAt) -> Killed {
    let mut finished_first = false;
    match at {
        KillAt::After(d) => std::thread::sleep(d),
        KillAt::When(cond) => loop {
            if child.try_wait().unwrap().is_some() {
                finished_first = true;
                break;
            }
            if let Some((dirty, lines)) = progress(home)
                && cond(dirty.as_deref(), lines)
            {
                break;
            }
            // Nothing to wait on but the database itself: poll it.
            std::thread::sleep(Duration::from_millis(2));
        },
        KillAt::AfterDirty(d) => loop {
            if child.try_wait().unwrap().is_some() {
                finished_first = true;
                break;
            }
            if progress(home).is_some_and(|(dirty, _)| dirty.as_deref() == Some("1")) {
                std::thread::sleep(d);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        },
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    // The run may end on its own between the last look and the signal
    // (SIGKILL to a process that already exited does nothing): a clean exit
    // means it finished first, anything else is the kill or a failure.
    use std::os::unix::process::ExitStatusExt as _;
    match status.signal() {
        Some(libc::SIGKILL) => {}
        _ if status.success() => finished_first = true,
        _ => panic!("{what}: the run failed before it was killed: {status}"),
    }
    let dirty_after_kill = if home.join("history.db").exists() {
        let conn = open_db(home);
        assert_eq!(
            integrity(&conn),
            "ok",
            "{what}: integrity right after the kill"
        );
        dirty_flag(&conn)
    } else {
        None
    };
    Killed {
        what: what.to_string(),
        finished_first,
        dirty_after_kill,
    }
}

#[test]
fn killed_cold_ingest_repairs_itself() {
    let started = Instant::now();
    let sb = Sandbox::new();
    let summary = sb.generate(5, HISTORY_BYTES, true);
    assert!(summary.bytes > 14 * MIB);

    // A clean cold run, timed.
    let clean_home = sb.path().join("csm-clean");
    let t0 = Instant::now();
    let status = spawn_cold(&sb, &clean_home).wait().unwrap();
    let cold = t0.elapsed();
    assert!(status.success());
    let clean = reports(&sb, &clean_home);
    assert!(clean[0].len() > 10_000, "a real history: {}", clean[0]);
    assert_eq!(dirty_flag(&open_db(&clean_home)).as_deref(), Some("0"));
    // Several batches went in (more bytes than one commit holds): the result
    // is still what one pass over the transcripts gives.
    let one_pass = stdout_ok(sb.cmd_in(&StoreMode::None).args(["blocks", "--json"]));
    assert_same_text("clean cold run vs --no-store", &clean[0], &one_pass);

    let mut cases: Vec<(String, KillAt)> = vec![
        (
            "store marked dirty, no lines yet".into(),
            KillAt::When(|dirty, lines| dirty == Some("1") && lines == 0),
        ),
        (
            "a batch of lines committed, ingest going on".into(),
            KillAt::When(|dirty, lines| dirty == Some("1") && lines > 0),
        ),
    ];
    for pct in [5u32, 20, 50, 80] {
        cases.push((
            format!("{pct}% of a cold run ({cold:?})"),
            KillAt::After(cold * pct / 100),
        ));
    }

    let mut killed: Vec<Killed> = Vec::new();
    for (i, (what, at)) in cases.into_iter().enumerate() {
        let home: PathBuf = sb.path().join(format!("csm-kill-{i}"));
        let k = kill_cold_run(&sb, &home, &what, at);
        // The next run repairs the store and prints what a clean run prints.
        let again = reports(&sb, &home);
        assert_same_text(
            &format!("{what}: blocks after the repairing run"),
            &again[0],
            &clean[0],
        );
        assert_same_text(
            &format!("{what}: daily after the repairing run"),
            &again[1],
            &clean[1],
        );
        let conn = open_db(&home);
        assert_eq!(integrity(&conn), "ok", "{what}: integrity after repair");
        assert_eq!(dirty_flag(&conn).as_deref(), Some("0"), "{what}");
        drop(conn);
        // And a warm run after it changes nothing.
        let warm = reports(&sb, &home);
        assert_same_text(
            &format!("{what}: blocks, warm run after repair"),
            &warm[0],
            &clean[0],
        );
        killed.push(k);
    }

    // The event-driven kills landed mid-ingest; so did at least some timed ones.
    for k in &killed[..2] {
        assert!(
            !k.finished_first,
            "{}: the run ended before the kill",
            k.what
        );
        assert_eq!(k.dirty_after_kill.as_deref(), Some("1"), "{}", k.what);
    }
    let mid = killed
        .iter()
        .filter(|k| k.dirty_after_kill.as_deref() == Some("1"))
        .count();
    assert!(
        mid >= 3,
        "only {mid} kills landed mid-ingest: {:?}",
        killed
            .iter()
            .map(|k| (&k.what, k.finished_first, &k.dirty_after_kill))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "cold run {cold:?}, whole test {:?}; kills (what, run ended first, dirty after): {:?}",
        started.elapsed(),
        killed
            .iter()
            .map(|k| (&k.what, k.finished_first, &k.dirty_after_kill))
            .collect::<Vec<_>>()
    );
}

/// Kills landing one after another on the same store, at seeded random
/// moments of cold, repairing and incremental runs, with transcripts
/// growing in between; no clean run in between. After each kill the store
/// is intact; one normal run then prints exactly what a clean run over the
/// final transcripts prints.
#[test]
fn repeated_random_kills_on_one_store() {
    let started = Instant::now();
    let sb = Sandbox::new();
    sb.generate(17, 24 * MIB, true);
    let grow = sb.projects().join("-home-dev-late/late.jsonl");
    std::fs::create_dir_all(grow.parent().unwrap()).unwrap();

    // How long an uninterrupted cold run takes here, to aim the kills.
    let probe = sb.path().join("csm-probe");
    let t0 = Instant::now();
    assert!(
        spawn_cold_batched(&sb, &probe, ONE_BATCH)
            .wait()
            .unwrap()
            .success()
    );
    let cold = t0.elapsed();

    let home = sb.path().join("csm-killed");
    let mut rng = crate::support::SplitMix(0xDEAD_BEEF);
    let mut outcomes = Vec::new();
    // Each kill lands a random time after the run marked the store dirty (on
    // a loaded machine a time from the start may land before the run even
    // opened the store); at least ten kills, more (up to twenty) until three
    // landed before the run could finish.
    for round in 0..20u32 {
        let mid = outcomes
            .iter()
            .filter(|o: &&(Duration, bool, Option<String>)| o.2.as_deref() == Some("1"))
            .count();
        if round >= 10 && mid >= 3 {
            break;
        }
        // From round 4 on, new lines arrive before each run (an incremental
        // ingest on top of whatever state the kills left).
        if round >= 4 {
            append_late_lines(&grow, round, 200, 16);
        }
        // Incremental runs are short (the windows are extended, not
        // recomputed): every other kill comes within their first moments.
        let at = if round % 2 == 1 {
            Duration::from_micros(rng.range(0, 20_000))
        } else {
            cold.mul_f64(rng.range(0, 1000) as f64 / 1000.0)
        };
        let what = format!("kill {round}, {at:?} into an ingest");
        let child = spawn_cold_batched(&sb, &home, ONE_BATCH);
        let k = kill_run(child, &home, &what, KillAt::AfterDirty(at));
        outcomes.push((at, k.finished_first, k.dirty_after_kill));
    }
    let clean_home = sb.path().join("csm-clean-final");
    let clean = reports(&sb, &clean_home);
    let again = reports(&sb, &home);
    for (i, (got, want)) in again.iter().zip(&clean).enumerate() {
        assert_same_text(&format!("{:?} after the kills", REPORTS[i]), got, want);
    }
    let conn = open_db(&home);
    assert_eq!(integrity(&conn), "ok");
    assert_eq!(dirty_flag(&conn).as_deref(), Some("0"));
    let mid = outcomes
        .iter()
        .filter(|o| o.2.as_deref() == Some("1"))
        .count();
    assert!(mid >= 3, "only {mid} kills landed mid-ingest: {outcomes:?}");
    eprintln!(
        "cold run {cold:?}; kills (when, run ended first, dirty after): {outcomes:?}; test {:?}",
        started.elapsed()
    );
}

/// `csm daemon run` (real clock, one-second interval) on the store below
/// `home`, with small ingest batches.
fn spawn_daemon(sb: &Sandbox, home: &Path) -> Child {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join("config.toml"), "interval_seconds = 1\n").unwrap();
    sb.process(home)
        .env_remove("CSM_NOW")
        .env("CSM_INGEST_BATCH_BYTES", BATCH)
        .args(["daemon", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn csm daemon run")
}

/// The snapshot, when there is one, is whole JSON: it is replaced
/// atomically, so a kill never leaves half of it.
fn snapshot_whole(home: &Path, what: &str) -> bool {
    match std::fs::read(home.join("monitor_data.json")) {
        Ok(bytes) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                panic!("{what}: monitor_data.json is not JSON ({e})");
            }
            true
        }
        Err(_) => false,
    }
}

/// The daemon SIGKILLed at seeded random moments of its first (cold) ingest
/// and of its updates while transcripts grow: after every kill the store
/// passes the integrity check and the snapshot, if any, is valid JSON; in
/// the end the reports equal a `--no-store` run over the final transcripts.
#[test]
fn killed_daemon_leaves_store_and_snapshot_whole() {
    let started = Instant::now();
    let sb = Sandbox::new();
    sb.generate(29, 8 * MIB, true);
    let grow = sb.projects().join("-home-dev-late/late.jsonl");
    std::fs::create_dir_all(grow.parent().unwrap()).unwrap();

    let probe = sb.path().join("csm-probe");
    let t0 = Instant::now();
    assert!(spawn_cold(&sb, &probe).wait().unwrap().success());
    let cold = t0.elapsed();

    let home = sb.path().join("csm-daemon");
    let mut rng = crate::support::SplitMix(0x0DAE_3017);
    let mut cold_kills = Vec::new();
    // First ingest: each kill a random time after the start (up to one and
    // a half cold runs), on the store the previous kill left. The daemon's
    // ingest is short enough that polling for its dirty flag can miss it.
    for round in 0..6u32 {
        let at = cold.mul_f64(rng.range(0, 1500) as f64 / 1000.0);
        let what = format!("daemon kill {round}, {at:?} after its start");
        let k = kill_run(spawn_daemon(&sb, &home), &home, &what, KillAt::After(at));
        assert!(!k.finished_first, "{what}: the daemon exited by itself");
        snapshot_whole(&home, &what);
        cold_kills.push((at, k.dirty_after_kill));
    }

    // Updates: the daemon is up (its snapshot written), new lines arrive,
    // and the kill lands somewhere in the next update cycles.
    let mut snapshots = 0;
    for round in 0..6u32 {
        let mut daemon = spawn_daemon(&sb, &home);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !home.join("monitor_data.json").exists() || daemon.try_wait().unwrap().is_some() {
            assert!(daemon.try_wait().unwrap().is_none(), "daemon exited");
            assert!(Instant::now() < deadline, "no snapshot after 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        append_late_lines(&grow, round, 300, 15);
        let at = Duration::from_millis(rng.range(0, 2500));
        let what = format!("daemon kill {round}, {at:?} after new lines");
        let k = kill_run(daemon, &home, &what, KillAt::After(at));
        assert!(!k.finished_first, "{what}: the daemon exited by itself");
        if snapshot_whole(&home, &what) {
            snapshots += 1;
        }
    }
    assert_eq!(snapshots, 6, "the snapshot stays in place across kills");

    let one_pass: Vec<String> = REPORTS
        .iter()
        .map(|args| stdout_ok(sb.cmd_in(&StoreMode::None).args(*args)))
        .collect();
    let after = reports(&sb, &home);
    for (i, (got, want)) in after.iter().zip(&one_pass).enumerate() {
        assert_same_text(
            &format!("{:?} after the daemon kills vs --no-store", REPORTS[i]),
            got,
            want,
        );
    }
    let conn = open_db(&home);
    assert_eq!(integrity(&conn), "ok");
    assert_eq!(dirty_flag(&conn).as_deref(), Some("0"));
    eprintln!(
        "cold run {cold:?}; first-ingest kills (when, dirty after): {cold_kills:?}; test {:?}",
        started.elapsed()
    );
}

/// Appends `count` usage lines of session "late" to `path`, numbered from
/// `round * 1000`, timestamped within hour `hour` of 2026-11-20.
fn append_late_lines(path: &std::path::Path, round: u32, count: u32, hour: u32) {
    let lines: String = (0..count)
        .map(|i| {
            let n = round * 1000 + i;
            let ts = format!(
                "2026-11-20T{hour:02}:{:02}:{:02}.000Z",
                (n / 60) % 40,
                n % 60
            );
            crate::support::usage_line(
                &ts,
                "late",
                n,
                crate::support::SONNET,
                [u64::from(n), 1, 0, 0],
            ) + "\n"
        })
        .collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, lines.as_bytes()).unwrap();
}
