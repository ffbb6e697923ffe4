//! Several processes on one history store: reports running in
//! loops while another process ingests a cold history, and while a
//! transcript grows, never fail, never print "database is locked", always
//! print valid JSON; afterwards the store gives what one pass gives.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    SONNET, Sandbox, StoreMode, assert_matches_one_pass, assert_same_text, dirty_flag,
    doctor_counts, json_ok, open_db, usage_line,
};

const MIB: u64 = 1024 * 1024;

/// One finished `csm` run of a looping client.
struct Run {
    who: String,
    output: Output,
}

fn check_runs(runs: &[Run]) {
    for r in runs {
        let stderr = String::from_utf8_lossy(&r.output.stderr);
        assert!(
            r.output.status.success(),
            "{} failed ({:?}): {stderr}",
            r.who,
            r.output.status
        );
        assert!(
            !stderr.to_lowercase().contains("locked") && !stderr.to_lowercase().contains("busy"),
            "{}: {stderr}",
            r.who
        );
        serde_json::from_slice::<Value>(&r.output.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: not JSON ({e}): {}",
                r.who,
                String::from_utf8_lossy(&r.output.stdout)
            )
        });
    }
}

/// Appends usage lines to `path`, one per call; every third line arrives in
/// two halves, so some runs see a transcript ending inside a line.
struct Grower {
    path: PathBuf,
    n: u32,
    pending: Option<String>,
}

impl Grower {
    fn step(&mut self) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        if let Some(rest) = self.pending.take() {
            f.write_all(rest.as_bytes()).unwrap();
            return;
        }
        self.n += 1;
        let ts = format!("2026-11-20T15:{:02}:{:02}.000Z", self.n / 60, self.n % 60);
        let line = usage_line(&ts, "grow", self.n, SONNET, [u64::from(self.n), 7, 0, 0]) + "\n";
        if self.n.is_multiple_of(3) {
            let (a, b) = line.split_at(line.len() / 2);
            f.write_all(a.as_bytes()).unwrap();
            self.pending = Some(b.to_string());
        } else {
            f.write_all(line.as_bytes()).unwrap();
        }
    }

    /// Writes any half line still missing.
    fn finish(&mut self) {
        if self.pending.is_some() {
            self.step();
        }
    }
}

#[test]
fn reports_run_while_another_process_ingests() {
    let sb = Sandbox::new();
    sb.generate(31, 48 * MIB, true);
    let home = sb.path().join("csm-shared");

    let ingester = sb
        .process(&home)
        .args(["blocks", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the ingest is under way (the store exists and is marked
    // dirty): the clients below then start while it runs.
    loop {
        if home.join("history.db-wal").exists()
            && dirty_flag(&open_db(&home)).as_deref() == Some("1")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    let done = AtomicBool::new(false);
    let grow_path = sb.projects().join("-home-dev-growing/grow.jsonl");
    std::fs::create_dir_all(grow_path.parent().unwrap()).unwrap();
    let (ingest, runs) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..5)
            .map(|i| {
                let (sb, home, done) = (&sb, &home, &done);
                let mut grower = (i == 0).then(|| Grower {
                    path: grow_path.clone(),
                    n: 0,
                    pending: None,
                });
                scope.spawn(move || {
                    let mut runs = Vec::new();
                    let mut after_done = 0;
                    for k in 0..200 {
                        if done.load(Ordering::SeqCst) {
                            after_done += 1;
                            if after_done > 3 {
                                break;
                            }
                        }
                        // Client 0 also makes a transcript grow between its runs.
                        if let Some(g) = grower.as_mut() {
                            g.step();
                        }
                        let args: &[&str] = if (i + k) % 2 == 0 {
                            &["blocks", "--json"]
                        } else {
                            &["daily", "--json"]
                        };
                        let output = sb.process(home).args(args).output().unwrap();
                        runs.push(Run {
                            who: format!("client {i}, run {k}: csm {}", args.join(" ")),
                            output,
                        });
                    }
                    if let Some(g) = grower.as_mut() {
                        g.finish();
                    }
                    runs
                })
            })
            .collect();
        let ingest = ingester.wait_with_output().unwrap();
        done.store(true, Ordering::SeqCst);
        let runs: Vec<Run> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        (ingest, runs)
    });
    check_runs(&[Run {
        who: "the ingesting run".into(),
        output: ingest,
    }]);
    check_runs(&runs);
    assert!(runs.len() >= 5 * 4, "{} client runs", runs.len());

    // Afterwards: exactly what one pass over the final tree gives.
    let store = StoreMode::At(home.clone());
    assert_matches_one_pass(&sb, &store, "shared store vs --no-store");
    let doctor =
        |mode: &StoreMode| doctor_counts(json_ok(sb.cmd_in(mode).args(["doctor", "--json"])));
    assert_eq!(doctor(&store), doctor(&StoreMode::None), "doctor counts");
    assert_eq!(dirty_flag(&open_db(&home)).as_deref(), Some("0"));
}

/// Runs `csm blocks --json` in `n` processes started together on `home`.
fn start_together(sb: &Sandbox, home: &Path, n: usize) -> Vec<Run> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let mut cmd = sb.process(home);
                cmd.args(["blocks", "--json"]);
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    Run {
                        who: format!("process {i} of the first runs"),
                        output: cmd.output().unwrap(),
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[test]
fn first_runs_started_together_share_a_new_store() {
    let sb = Sandbox::new();
    sb.generate(32, 8 * MIB, true);
    let want = crate::support::stdout_ok(sb.cmd_in(&StoreMode::None).args(["blocks", "--json"]));
    // Several attempts: the race is between the first few milliseconds of each.
    for attempt in 0..3 {
        let home = sb.path().join(format!("csm-new-{attempt}"));
        let runs = start_together(&sb, &home, 6);
        check_runs(&runs);
        let after = crate::support::stdout_ok(
            sb.cmd_in(&StoreMode::At(home.clone()))
                .args(["blocks", "--json"]),
        );
        assert_same_text(
            &format!("attempt {attempt}: blocks after the first runs"),
            &after,
            &want,
        );
    }
}
