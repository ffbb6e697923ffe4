//! Crash safety of the history store (SPEC 3): a cold ingest killed with
//! SIGKILL at any point is repaired by the next run, which then prints
//! exactly what an uninterrupted run prints, and the database stays intact.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Sandbox, StoreMode, assert_same_text, dirty_flag, integrity, open_db, stdout_ok,
};

const MIB: u64 = 1024 * 1024;

/// Large enough that the cold ingest commits more than one batch of lines.
const HISTORY_BYTES: u64 = 100 * MIB;

const REPORTS: [&[&str]; 2] = [&["blocks", "--json"], &["daily", "--json"]];

fn reports(sb: &Sandbox, home: &Path) -> Vec<String> {
    REPORTS
        .iter()
        .map(|args| stdout_ok(sb.cmd_in(&StoreMode::At(home.to_path_buf())).args(*args)))
        .collect()
}

fn spawn_cold(sb: &Sandbox, home: &Path) -> Child {
    sb.process(home)
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
        .query_row("SELECT count(*) FROM lines", [], |r| r.get(0))
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
    let mut child = spawn_cold(sb, home);
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
    if child.try_wait().unwrap().is_some() {
        finished_first = true;
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    if !finished_first {
        assert!(!status.success(), "{what}: killed run exited successfully");
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
    assert!(summary.bytes > 90 * MIB);

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
    assert!(spawn_cold(&sb, &probe).wait().unwrap().success());
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
            let lines: String = (0..200u32)
                .map(|i| {
                    let n = round * 1000 + i;
                    let ts = format!("2026-11-20T16:{:02}:{:02}.000Z", (n / 60) % 40, n % 60);
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
                .open(&grow)
                .unwrap();
            std::io::Write::write_all(&mut f, lines.as_bytes()).unwrap();
        }
        // Incremental runs are short (the windows are extended, not
        // recomputed): every other kill comes within their first moments.
        let at = if round % 2 == 1 {
            Duration::from_micros(rng.range(0, 20_000))
        } else {
            cold.mul_f64(rng.range(0, 1000) as f64 / 1000.0)
        };
        let k = kill_cold_run(
            &sb,
            &home,
            &format!("kill {round}, {at:?} into an ingest"),
            KillAt::AfterDirty(at),
        );
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
