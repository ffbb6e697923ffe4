//! Contention: many processes on one history store at once, as
//! on a user's machine: the live dashboard refreshing every second, 16
//! report commands running back to back, repeated short calls, and Claude
//! Code appending to a transcript all the while. Zero failed calls, zero
//! "database is locked", every JSON output valid, the dashboard never fails
//! a refresh; afterwards the store gives what one pass gives and every file
//! is still private.
//!
//! The CI run lasts [`CI_RUN`]; `contention_for_a_minute` (ignored, run by
//! hand) lasts [`LONG_RUN`]. The daemon runs alongside the dashboard, and
//! Claude Code's own callers join: `csm statusline` 50 times a second and
//! `csm hook` 10 times a second, fed the payloads in tests/fixtures/claude/.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    NOW, SONNET, Sandbox, StoreMode, assert_matches_one_pass, dirty_flag, integrity, open_db,
    stdout_ok, usage_line,
};
use crate::tools::{assert_private_tree, have};

const CI_RUN: Duration = Duration::from_secs(10);
const LONG_RUN: Duration = Duration::from_secs(60);

/// Status-line calls a second in all, from this many callers.
const STATUSLINE_PER_SECOND: f64 = 50.0;
const STATUSLINE_CALLERS: usize = 5;

/// How many report commands run at once.
const REPORTERS: usize = 16;

/// The report commands the reporters cycle through.
const REPORTS: &[&[&str]] = &[
    &["blocks", "--json"],
    &["daily", "--json"],
    &["weekly", "--json"],
    &["monthly", "--json"],
    &["session", "--json"],
    &["period", "--json"],
    &["doctor", "--json"],
    &["blocks", "--json", "--active"],
    &["db", "stats", "--json"],
];

/// A process that calls csm again and again for the whole run.
struct Client {
    name: String,
    /// The argument lists it cycles through.
    calls: Vec<Vec<String>>,
    /// Calls per second it aims at; `None`: back to back.
    per_second: Option<f64>,
    /// What it feeds on stdin, one payload per call in turn; none: no stdin.
    stdin: Vec<Vec<u8>>,
    /// Checks one successful call's stdout.
    check: fn(&[u8]) -> Result<(), String>,
}

fn json_stdout(out: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<Value>(out)
        .map(drop)
        .map_err(|e| format!("not JSON ({e})"))
}

fn frame_stdout(out: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(out);
    // The frame's title; its body depends on the clock (the daemon's
    // snapshot is taken on the real one).
    if text.contains("┌ csm") && text.contains("Period") {
        Ok(())
    } else {
        Err(format!("not a dashboard frame: {text}"))
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `csm statusline` printed one line of text.
fn status_line(out: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(out);
    let line = text.strip_suffix('\n').unwrap_or(&text);
    if line.trim().is_empty() || line.contains('\n') {
        Err(format!("not one status line: {text:?}"))
    } else {
        Ok(())
    }
}

/// `csm hook` prints nothing (Claude Code would show it).
fn silent(out: &[u8]) -> Result<(), String> {
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("hook printed {:?}", String::from_utf8_lossy(out)))
    }
}

fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/claude")
            .join(name),
    )
    .unwrap()
}

/// The clients of a run: 16 reporters, a `monitor --once` loop, the status
/// line at 50 calls a second and hook events at 10 a second.
fn clients() -> Vec<Client> {
    let mut out: Vec<Client> = (0..REPORTERS)
        .map(|i| Client {
            name: format!("reporter {i}"),
            // Each starts at another report, so all kinds run at once.
            calls: (0..REPORTS.len())
                .map(|k| args(REPORTS[(i + k) % REPORTS.len()]))
                .collect(),
            per_second: None,
            stdin: Vec::new(),
            check: json_stdout,
        })
        .collect();
    out.push(Client {
        name: "monitor --once".into(),
        calls: vec![args(&["monitor", "--once"])],
        per_second: Some(4.0),
        stdin: Vec::new(),
        check: frame_stdout,
    });
    // Several Claude Code sessions repaint at once: one caller could not
    // start a process every 20 ms next to 16 busy reporters on 2 cores.
    for i in 0..STATUSLINE_CALLERS {
        out.push(Client {
            name: format!("statusline {i}"),
            calls: vec![args(&["statusline"])],
            per_second: Some(STATUSLINE_PER_SECOND / STATUSLINE_CALLERS as f64),
            stdin: [
                "statusline-with-rate-limits.json",
                "statusline-42-63.json",
                "statusline-api-key.json",
            ]
            .iter()
            .map(|f| fixture(f))
            .collect(),
            check: status_line,
        });
    }
    out.push(Client {
        name: "hook".into(),
        calls: vec![args(&["hook"])],
        per_second: Some(10.0),
        stdin: fixture("hook-events.jsonl")
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
        check: silent,
    });
    out
}

/// One failed call, with enough to see why.
struct Failure {
    who: String,
    output: Output,
    why: String,
}

#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    appended: AtomicU64,
    statusline: AtomicU64,
    hook: AtomicU64,
}

fn run_client(
    sb: &Sandbox,
    home: &Path,
    c: &Client,
    until: Instant,
    tally: &Tally,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut k = 0usize;
    let started = Instant::now();
    while Instant::now() < until {
        if let Some(rate) = c.per_second {
            let due = started + Duration::from_secs_f64(k as f64 / rate);
            let now = Instant::now();
            if due > now {
                // Pacing a rate, not waiting for an event.
                std::thread::sleep(due - now);
            }
        }
        let argv = &c.calls[k % c.calls.len()];
        let mut cmd = sb.process(home);
        cmd.args(argv)
            .stdin(if !c.stdin.is_empty() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn csm");
        if let Some(mut pipe) = child.stdin.take() {
            let _ = pipe.write_all(&c.stdin[k % c.stdin.len()]);
        }
        let output = child.wait_with_output().unwrap();
        tally.calls.fetch_add(1, Ordering::Relaxed);
        if c.name.starts_with("statusline") {
            tally.statusline.fetch_add(1, Ordering::Relaxed);
        } else if c.name == "hook" {
            tally.hook.fetch_add(1, Ordering::Relaxed);
        }
        let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
        let why = if !output.status.success() {
            Some(format!("exit {:?}", output.status))
        } else if stderr.contains("locked") || stderr.contains("busy") {
            Some("locked or busy".to_string())
        } else {
            (c.check)(&output.stdout).err()
        };
        if let Some(why) = why {
            failures.push(Failure {
                who: format!("{}: csm {}", c.name, argv.join(" ")),
                output,
                why,
            });
        }
        k += 1;
    }
    failures
}

/// Claude Code at work: a usage line every 20 ms, sometimes in two writes.
fn append_lines(path: &Path, stop: &AtomicBool, tally: &Tally) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut n = 0u32;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let ts = format!(
            "2026-11-20T16:{:02}:{:02}.{:03}Z",
            (n / 60) % 40,
            n % 60,
            n % 1000
        );
        let line = usage_line(&ts, "busy", n, SONNET, [u64::from(n), 3, 0, 0]) + "\n";
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        if n.is_multiple_of(4) {
            let (a, b) = line.split_at(line.len() / 2);
            f.write_all(a.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            f.write_all(b.as_bytes()).unwrap();
        } else {
            f.write_all(line.as_bytes()).unwrap();
        }
        tally.appended.fetch_add(1, Ordering::Relaxed);
        // Claude Code's pace, not a synchronisation.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A long-running process of the run (the dashboard; the daemon joins here).
trait Background {
    /// Stops it and says what went wrong while it ran, if anything.
    fn finish(self: Box<Self>) -> Result<String, String>;
}

/// The real dashboard (`csm monitor --refresh 1 --debug`) in a private tmux
/// server; its log says how often it refreshed and whether one failed.
struct Dashboard {
    socket: String,
    log: PathBuf,
}

impl Dashboard {
    fn tmux(&self, a: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(a)
            .output()
            .expect("tmux")
    }

    fn start(sb: &Sandbox, home: &Path) -> Dashboard {
        let q = |p: &Path| format!("'{}'", p.display());
        let script = sb.path().join("dashboard.sh");
        fs::write(
            &script,
            format!(
                "export HOME={} CSM_HOME={} CLAUDE_CONFIG_DIR={} CSM_NOW={NOW} TZ=UTC\n\
                 {} monitor --refresh 1 --debug\n\
                 echo DASHBOARD-EXITED=$?\n",
                q(&sb.home()),
                q(home),
                q(&sb.claude()),
                q(Path::new(env!("CARGO_BIN_EXE_csm"))),
            ),
        )
        .unwrap();
        let d = Dashboard {
            // The sandbox's unique name: runs in parallel get their own server.
            socket: format!(
                "csm-contention-{}",
                sb.path().file_name().unwrap().to_string_lossy()
            ),
            log: home.join("monitor.log"),
        };
        let out = d.tmux(&[
            "new-session",
            "-d",
            "-s",
            "csm",
            "-x",
            "120",
            "-y",
            "40",
            "sh",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = d.tmux(&[
            "send-keys",
            "-t",
            "csm",
            &format!("sh {}", q(&script)),
            "Enter",
        ]);
        assert!(out.status.success());
        // Running once its first refresh is logged.
        let deadline = Instant::now() + Duration::from_secs(60);
        while d.refreshes() == 0 {
            assert!(Instant::now() < deadline, "the dashboard never refreshed");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn refreshes(&self) -> usize {
        fs::read_to_string(&self.log)
            .map(|t| {
                t.lines()
                    .filter(|l| {
                        l.ends_with(" refresh")
                            || l.contains("refresh us=")
                            || l.contains(": refresh")
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Background for Dashboard {
    fn finish(self: Box<Self>) -> Result<String, String> {
        let pane = String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "csm"]).stdout)
            .into_owned();
        let _ = self.tmux(&["send-keys", "-t", "csm", "q"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let exited = loop {
            let now =
                String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "csm"]).stdout)
                    .into_owned();
            if let Some(at) = now.find("DASHBOARD-EXITED=") {
                break now[at..].lines().next().unwrap_or("").to_string();
            }
            if Instant::now() > deadline {
                return Err(format!("the dashboard did not quit on q:\n{now}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = self.tmux(&["kill-server"]);
        if exited != "DASHBOARD-EXITED=0" {
            return Err(format!("the dashboard ended with {exited}"));
        }
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| {
                let l = l.to_lowercase();
                l.contains("failed") || l.contains("locked") || l.contains("error")
            })
            .collect();
        if !bad.is_empty() {
            return Err(format!("dashboard log:\n{}", bad.join("\n")));
        }
        // Its frame (the daemon, on the real clock, may show "waiting for a
        // new session" where the active window was).
        if !pane.contains("q quit") {
            return Err(format!("dashboard gone from its pane:\n{pane}"));
        }
        Ok(format!("dashboard: {} refreshes", self.refreshes()))
    }
}

/// `csm daemon run` (real clock, one-second interval) on the store.
struct Daemon {
    child: std::process::Child,
    home: PathBuf,
}

impl Daemon {
    fn start(sb: &Sandbox, home: &Path) -> Daemon {
        // Private like every file csm keeps (the tree is checked at the end).
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(home.join("config.toml"))
                .unwrap()
        };
        f.write_all(b"interval_seconds = 1\n").unwrap();
        drop(f);
        let child = sb
            .process(home)
            .env_remove("CSM_NOW")
            .args(["daemon", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn csm daemon run");
        let d = Daemon {
            child,
            home: home.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !home.join("monitor_data.json").exists() {
            assert!(Instant::now() < deadline, "the daemon wrote no snapshot");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }
}

impl Background for Daemon {
    fn finish(mut self: Box<Self>) -> Result<String, String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!("the daemon exited during the run: {status}"));
        }
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                return Err("the daemon ignored SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        if !status.success() {
            return Err(format!("the daemon ended with {status}: {stderr}"));
        }
        let log = fs::read_to_string(self.home.join("daemon.log")).unwrap_or_default();
        let bad: Vec<&str> = log
            .lines()
            .chain(stderr.lines())
            .filter(|l| {
                // Levels as tracing writes them; the base dir's name may hold
                // any word.
                l.contains(" ERROR ")
                    || l.contains(" WARN ")
                    || l.contains("database is locked")
                    || l.contains("database is busy")
            })
            .collect();
        if !bad.is_empty() {
            return Err(format!("daemon log:\n{}", bad.join("\n")));
        }
        let snapshot = fs::read(self.home.join("monitor_data.json")).unwrap_or_default();
        serde_json::from_slice::<Value>(&snapshot)
            .map_err(|e| format!("monitor_data.json is not JSON: {e}"))?;
        Ok(format!("daemon: {} log lines", log.lines().count()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// Everything at once for `length`; returns the number of csm calls made.
fn contention(length: Duration) -> u64 {
    if !have("tmux", "runs the live dashboard") {
        return 0;
    }
    let sb = Sandbox::new();
    sb.generate(41, 6 * 1024 * 1024, true);
    let home = sb.path().join("csm-busy");
    // The store exists and holds the history before the crowd arrives (a
    // cold ingest under contention is concurrency.rs's subject).
    let status = sb
        .process(&home)
        .args(["blocks", "--json"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let mut background: Vec<Box<dyn Background>> = vec![
        Box::new(Dashboard::start(&sb, &home)),
        Box::new(Daemon::start(&sb, &home)),
    ];
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let busy = sb.projects().join("-home-dev-busy/busy.jsonl");
    let clients = clients();
    let started = Instant::now();
    let until = started + length;
    let failures: Vec<Failure> = std::thread::scope(|s| {
        let writer = s.spawn(|| append_lines(&busy, &stop, &tally));
        let threads: Vec<_> = clients
            .iter()
            .map(|c| {
                let (sb, home, tally) = (&sb, &home, &tally);
                s.spawn(move || run_client(sb, home, c, until, tally))
            })
            .collect();
        let failures = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        failures
    });
    let elapsed = started.elapsed();
    // While the dashboard still holds the store open (WAL files present).
    let files = assert_private_tree(&home, &[]);
    let mut notes = Vec::new();
    for b in background.drain(..) {
        match b.finish() {
            Ok(note) => notes.push(note),
            Err(e) => panic!("{e}"),
        }
    }
    let calls = tally.calls.load(Ordering::Relaxed);
    let (statusline, hooks) = (
        tally.statusline.load(Ordering::Relaxed),
        tally.hook.load(Ordering::Relaxed),
    );
    eprintln!(
        "contention: {calls} csm calls in {elapsed:?} ({:.1}/s; {statusline} statusline, {hooks} hook, {} reports and monitor --once), {} lines appended, {}; files {files:?}",
        calls as f64 / elapsed.as_secs_f64(),
        calls - statusline - hooks,
        tally.appended.load(Ordering::Relaxed),
        notes.join(", ")
    );
    if let Some(f) = failures.first() {
        panic!(
            "{} of {calls} calls failed; first: {} ({})\nstderr: {}\nstdout: {}",
            failures.len(),
            f.who,
            f.why,
            String::from_utf8_lossy(&f.output.stderr),
            String::from_utf8_lossy(&f.output.stdout)
                .chars()
                .take(500)
                .collect::<String>()
        );
    }
    assert!(calls >= REPORTERS as u64 * 2, "only {calls} calls");
    // The status line and hooks log their troubles instead of printing them;
    // a hook event dropped for a busy store would be logged here.
    let claude_log = fs::read_to_string(home.join("claude.log")).unwrap_or_default();
    assert!(claude_log.trim().is_empty(), "claude.log:\n{claude_log}");
    // Every hook event reached the store: the last ones are still spooled
    // (the daemon imports once a second) until the next writer runs.
    stdout_ok(
        sb.cmd_in(&StoreMode::At(home.clone()))
            .args(["blocks", "--json"]),
    );
    assert!(!home.join("claude.spool").exists());
    let recorded: i64 = open_db(&home)
        .query_row("SELECT count(*) FROM activity", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recorded as u64, hooks, "hook events recorded");

    // Afterwards: intact, and what one pass over the final tree gives. (The
    // dashboard may have quit in the middle of an ingest, leaving the store
    // marked dirty: the next run repairs it, as crash.rs proves.)
    let conn = open_db(&home);
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_matches_one_pass(&sb, &StoreMode::At(home.clone()), "after contention")
    }));
    if let Err(e) = r {
        eprintln!("KEPT {}", sb.path().display());
        std::mem::forget(sb);
        std::panic::resume_unwind(e);
    }
    assert_eq!(dirty_flag(&open_db(&home)).as_deref(), Some("0"));
    // No transcript was replaced or deleted: a run that saw the growing file
    // before another run read further must not take it for a rewritten one
    // (each such mistake re-read it whole and kept a retired copy).
    let doctor = crate::support::json_ok(
        sb.cmd_in(&StoreMode::At(home.clone()))
            .args(["doctor", "--json"]),
    );
    assert_eq!(doctor["store"]["filesGone"], 0, "{}", doctor["store"]);
    calls
}

#[test]
fn dashboard_reports_and_writers_share_the_store() {
    contention(CI_RUN);
}

#[test]
#[ignore = "a minute long: run by hand (cargo test --test robustness contention_for_a_minute -- --ignored --nocapture)"]
fn contention_for_a_minute() {
    contention(LONG_RUN);
}
