//! Shared helpers for the integration tests that drive the real `csm` binary.
//!
//! Every command runs with a cleared environment: `HOME`, `CSM_HOME` and the
//! Claude data directory point into a temp dir, `TZ=UTC` and `CSM_NOW` fix the
//! clock, so nothing depends on the machine, the wall clock or the real home dir.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// The fixed "now" of every test (the generator's default reference time,
/// 2026-11-20T16:40:00Z, a Friday).
pub const NOW: &str = "2026-11-20T16:40:00Z";

pub const SONNET: &str = "claude-sonnet-4-5-20250929";
pub const OPUS: &str = "claude-opus-4-5-20251101";

/// A private temp tree: `home/`, `csm/` (CSM_HOME) and `claude/` (a Claude
/// config dir whose `projects/` holds the transcripts).
pub struct Sandbox {
    dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("csm-it-")
            .tempdir()
            .expect("temp dir");
        fs::create_dir_all(dir.path().join("home")).unwrap();
        Sandbox { dir }
    }

    /// Like [`Sandbox::new`], below `parent` instead of the default temp dir.
    pub fn new_in(parent: &Path) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("csm-it-")
            .tempdir_in(parent)
            .expect("temp dir");
        fs::create_dir_all(dir.path().join("home")).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    pub fn csm_home(&self) -> PathBuf {
        self.path().join("csm")
    }

    pub fn claude(&self) -> PathBuf {
        self.path().join("claude")
    }

    pub fn projects(&self) -> PathBuf {
        self.claude().join("projects")
    }

    /// `csm` with a clean environment and no data directory configured: the
    /// defaults below the temp `HOME` apply.
    pub fn bare_cmd(&self) -> Command {
        self.cmd_with_csm_home(&self.csm_home())
    }

    /// Like [`Sandbox::bare_cmd`] with another `CSM_HOME` (a fresh store).
    pub fn cmd_with_csm_home(&self, csm_home: &Path) -> Command {
        Command::from_std(self.clean_command(env!("CARGO_BIN_EXE_csm"), csm_home))
    }

    /// `program` with the environment every csm run of the tests gets:
    /// nothing inherited but `PATH`, this sandbox's `HOME`, `csm_home` as
    /// `CSM_HOME`, UTC and the fixed clock. No Claude dir is named.
    pub fn clean_command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        csm_home: &Path,
    ) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("CSM_HOME", csm_home)
            .env("TZ", "UTC")
            .env("CSM_NOW", NOW);
        c
    }

    /// `csm` reading this sandbox's Claude dir through `CLAUDE_CONFIG_DIR`.
    pub fn cmd(&self) -> Command {
        let mut c = self.bare_cmd();
        c.env("CLAUDE_CONFIG_DIR", self.claude());
        c
    }

    /// Like [`Sandbox::cmd`] with a new, empty `CSM_HOME` each time: a first
    /// run, which reads every transcript from the start (no history store yet).
    pub fn fresh_cmd(&self) -> Command {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let home = self
            .path()
            .join(format!("csm-fresh-{}", N.fetch_add(1, Ordering::Relaxed)));
        let mut c = self.cmd_with_csm_home(&home);
        c.env("CLAUDE_CONFIG_DIR", self.claude());
        c
    }

    /// Writes `lines` (each followed by `\n`) to `projects/<project>/<session>.jsonl`.
    pub fn write_session(&self, project: &str, session: &str, lines: &[String]) -> PathBuf {
        let dir = self.projects().join(project);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{session}.jsonl"));
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        fs::write(&path, text).unwrap();
        path
    }
}

/// Token counts of one line: input, output, cache creation, cache read.
pub type Tokens = [u64; 4];

/// One Claude Code assistant line with usage; `n` makes the message and
/// request ids unique.
pub fn usage_line(ts: &str, session: &str, n: u32, model: &str, t: Tokens) -> String {
    serde_json::json!({
        "timestamp": ts,
        "sessionId": session,
        "requestId": format!("req_{session}_{n}"),
        "type": "assistant",
        "message": {
            "id": format!("msg_{session}_{n}"),
            "model": model,
            "usage": {
                "input_tokens": t[0],
                "output_tokens": t[1],
                "cache_creation_input_tokens": t[2],
                "cache_read_input_tokens": t[3],
            }
        }
    })
    .to_string()
}

/// A small history over two projects and nine days before [`NOW`]:
///
/// - `-home-dev-alpha` / `a1`: Tue 2026-11-10 09:10Z (sonnet), Sun 2026-11-15
///   10:20Z (opus + sonnet);
/// - `-home-dev-beta` / `b1`: Tue 2026-11-17 23:30Z (sonnet; Wed 00:30 in
///   Europe/Warsaw), Wed 2026-11-18 08:00Z (opus);
/// - `-home-dev-alpha` / `a2`: Fri 2026-11-20 14:05Z and 15:35Z (sonnet), the
///   window active at [`NOW`] (14:00–19:00Z).
pub fn small_history(sb: &Sandbox) {
    sb.write_session(
        "-home-dev-alpha",
        "a1",
        &[
            usage_line(
                "2026-11-10T09:10:00.000Z",
                "a1",
                1,
                SONNET,
                [100, 200, 300, 400],
            ),
            usage_line(
                "2026-11-15T10:20:00.000Z",
                "a1",
                2,
                OPUS,
                [1000, 2000, 0, 5000],
            ),
            usage_line(
                "2026-11-15T10:25:30.500Z",
                "a1",
                3,
                SONNET,
                [10, 20, 30, 40],
            ),
        ],
    );
    sb.write_session(
        "-home-dev-beta",
        "b1",
        &[
            usage_line(
                "2026-11-17T23:30:00.000Z",
                "b1",
                1,
                SONNET,
                [50, 60, 70, 80],
            ),
            usage_line("2026-11-18T08:00:00.000Z", "b1", 2, OPUS, [5, 6, 7, 8]),
        ],
    );
    sb.write_session(
        "-home-dev-alpha",
        "a2",
        &[
            usage_line(
                "2026-11-20T14:05:00.000Z",
                "a2",
                1,
                SONNET,
                [1000, 2000, 0, 0],
            ),
            usage_line(
                "2026-11-20T15:35:00.000Z",
                "a2",
                2,
                SONNET,
                [1000, 2000, 0, 0],
            ),
        ],
    );
}

/// Runs `cmd`, asserts exit 0 and returns stdout.
pub fn stdout_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run csm");
    assert!(
        out.status.success(),
        "csm failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs `cmd`, asserts exit 0 and parses stdout as JSON.
pub fn json_ok(cmd: &mut Command) -> Value {
    let s = stdout_ok(cmd);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{s}"))
}

/// The string values of `key` in each element of the array `v[list]`.
pub fn column(v: &Value, list: &str, key: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no array {list:?} in {v}"))
        .iter()
        .map(|r| match &r[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// The real path of `p` (temp dirs may sit behind a symlink such as /tmp).
pub fn real(p: &Path) -> PathBuf {
    fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

// ---------------------------------------------------------------------------
// History-store helpers (tests/store*.rs).

/// The `--json` reports every store test compares.
pub const JSON_REPORTS: [&[&str]; 5] = [
    &["blocks", "--json"],
    &["daily", "--json"],
    &["weekly", "--json"],
    &["monthly", "--json"],
    &["session", "--json"],
];

/// Where a command keeps its history.
#[derive(Clone, Debug)]
pub enum StoreMode {
    /// `--no-store`: everything in memory.
    None,
    /// A new, empty `CSM_HOME` for each command.
    Fresh,
    /// The store below this `CSM_HOME`, kept across commands.
    At(PathBuf),
}

impl Sandbox {
    /// `csm` reading this sandbox's Claude dir with the history kept as `mode` says.
    pub fn cmd_in(&self, mode: &StoreMode) -> Command {
        match mode {
            StoreMode::None => {
                let mut c = self.cmd();
                c.arg("--no-store");
                c
            }
            StoreMode::Fresh => self.fresh_cmd(),
            StoreMode::At(home) => {
                let mut c = self.cmd_with_csm_home(home);
                c.env("CLAUDE_CONFIG_DIR", self.claude());
                c
            }
        }
    }

    /// stdout of each of [`JSON_REPORTS`] (asserting success), in that order.
    pub fn json_reports(&self, mode: &StoreMode) -> Vec<String> {
        JSON_REPORTS
            .iter()
            .map(|args| stdout_ok(self.cmd_in(mode).args(*args)))
            .collect()
    }

    /// `csm` as a plain process (for spawning, killing, running in parallel),
    /// with the same clean environment as [`Sandbox::cmd_with_csm_home`] and
    /// this sandbox's Claude dir.
    pub fn process(&self, csm_home: &Path) -> std::process::Command {
        let mut c = self.clean_command(env!("CARGO_BIN_EXE_csm"), csm_home);
        c.env("CLAUDE_CONFIG_DIR", self.claude());
        c
    }

    /// Writes a generated history (see `synth`) of about `bytes` into the Claude dir.
    pub fn generate(
        &self,
        seed: u64,
        bytes: u64,
        garbage: bool,
    ) -> claude_session_monitor::synth::SynthSummary {
        use claude_session_monitor::synth::{SynthOptions, default_now, generate};
        let mut opts = SynthOptions::new(seed, bytes, default_now());
        opts.days = 20;
        opts.garbage = garbage;
        generate(&self.claude(), &opts).expect("generate history")
    }
}

/// Asserts two texts are byte-identical, showing the first lines that differ.
pub fn assert_same_text(what: &str, got: &str, want: &str) {
    if got == want {
        return;
    }
    let line = got
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(got.lines().count().min(want.lines().count()));
    let around = |s: &str| {
        s.lines()
            .skip(line.saturating_sub(3))
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "{what}: differs at line {} ({} vs {} bytes)\n--- got (around there):\n{}\n--- want:\n{}",
        line + 1,
        got.len(),
        want.len(),
        around(got),
        around(want),
    );
}

/// Asserts two lists of [`JSON_REPORTS`] outputs are byte-identical, naming
/// the first report that differs.
pub fn assert_same_reports(what: &str, got: &[String], want: &[String]) {
    assert_eq!(got.len(), want.len());
    for ((args, g), w) in JSON_REPORTS.iter().zip(got).zip(want) {
        assert_same_text(&format!("{what}: `csm {}`", args.join(" ")), g, w);
    }
}

/// Every `*.jsonl` file below `dir`, sorted by path bytes.
pub fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    out
}

/// `csm doctor --json` without the parts that legitimately differ between
/// the store and `--no-store` (the `store` section, the base dir).
pub fn doctor_counts(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("store");
        o.remove("baseDir");
    }
    v
}

/// A seeded PRNG (splitmix64), so every random choice can be reproduced.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Opens a store file with rusqlite, without creating it.
/// Starts `cmd` with stdin, stdout and stderr all piped.
pub fn spawn_piped(cmd: &mut std::process::Command) -> std::process::Child {
    use std::process::Stdio;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn csm")
}

pub fn open_db(csm_home: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_with_flags(
        csm_home.join("history.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open history.db");
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    conn
}

/// The store's `dirty` meta flag (None when unset or the table is missing).
pub fn dirty_flag(conn: &rusqlite::Connection) -> Option<String> {
    conn.query_row("SELECT value FROM meta WHERE key = 'dirty'", [], |r| {
        r.get(0)
    })
    .ok()
}

/// `PRAGMA integrity_check` of the store.
pub fn integrity(conn: &rusqlite::Connection) -> String {
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

/// Asserts that the reports through `store` and through a fresh store both
/// equal one pass without a store; returns that one-pass output.
pub fn assert_matches_one_pass(sb: &Sandbox, store: &StoreMode, what: &str) -> Vec<String> {
    let one_pass = sb.json_reports(&StoreMode::None);
    assert_same_reports(what, &sb.json_reports(store), &one_pass);
    assert_same_reports(
        "new store vs --no-store",
        &sb.json_reports(&StoreMode::Fresh),
        &one_pass,
    );
    one_pass
}
