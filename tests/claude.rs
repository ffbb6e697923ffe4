//! Claude Code integration through the binary: `csm statusline`, `csm hook`,
//! `csm setup claude`, and what they feed the dashboard.

mod support;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/claude")
        .join(name)
}

/// A sandbox with the small history already in its store.
fn warm() -> Sandbox {
    let sb = Sandbox::new();
    small_history(&sb);
    stdout_ok(sb.cmd().args(["blocks", "--json"]));
    sb
}

/// Runs `csm <args>` with `stdin` and returns (exit code, stdout, stderr).
fn run_with_stdin(
    cmd: &mut assert_cmd::Command,
    args: &[&str],
    stdin: &[u8],
) -> (i32, String, String) {
    let out = cmd.args(args).write_stdin(stdin.to_vec()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn statusline(sb: &Sandbox, stdin: &[u8]) -> String {
    let (code, out, err) = run_with_stdin(sb.cmd().env("NO_COLOR", "1"), &["statusline"], stdin);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(err, "");
    assert_eq!(out.lines().count(), 1, "one line: {out:?}");
    out.trim_end().to_string()
}

fn monitor_once(sb: &Sandbox, now: &str) -> String {
    stdout_ok(sb.cmd().env("CSM_NOW", now).args(["monitor", "--once"]))
}

#[test]
fn statusline_shows_window_today_official_limits_and_context() {
    let sb = warm();
    let line = statusline(&sb, &fs::read(fixture("statusline-42-63.json")).unwrap());
    // The active window (14:00-19:00Z) of the small history: 2 sonnet lines.
    assert!(line.starts_with("Opus 4.7 | block $"), "{line}");
    assert!(line.contains(" · 2h20m left | today $"), "{line}");
    assert!(line.ends_with(" | 5h 42% · wk 63% | ctx 38%"), "{line}");
    // No terminal but colours on: Claude Code renders them. NO_COLOR wins.
    let (_, coloured, _) = run_with_stdin(
        &mut sb.cmd(),
        &["statusline"],
        &fs::read(fixture("statusline-42-63.json")).unwrap(),
    );
    assert!(coloured.contains("\x1b[32m42%\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[33m63%\x1b[0m"), "{coloured:?}");
}

#[test]
fn statusline_capture_reaches_the_dashboard_and_goes_stale() {
    let sb = warm();
    statusline(&sb, &fs::read(fixture("statusline-42-63.json")).unwrap());
    let frame = monitor_once(&sb, NOW);
    let five = frame.lines().find(|l| l.contains("5-hour")).unwrap();
    assert!(
        five.contains("42%") && five.contains("resets 19:00"),
        "{frame}"
    );
    let week = frame.lines().find(|l| l.contains("Weekly")).unwrap();
    assert!(
        week.contains("63%") && week.contains("resets Mon 08:00"),
        "{frame}"
    );
    assert!(
        frame.contains("official limits, captured 0m ago"),
        "{frame}"
    );
    assert!(!frame.contains("stale"), "{frame}");

    let later = monitor_once(&sb, "2026-11-20T16:51:00Z");
    assert!(later.contains("42%") && later.contains("63%"), "{later}");
    assert!(
        later.contains("official limits stale: captured 11m ago"),
        "{later}"
    );
}

#[test]
fn statusline_without_rate_limits_shows_the_estimate_or_a_fresh_capture() {
    let sb = warm();
    let api = fs::read(fixture("statusline-api-key.json")).unwrap();
    let line = statusline(&sb, &api);
    assert!(line.starts_with("Sonnet 4.6 | block $"), "{line}");
    // The window's tokens against the largest earlier one, marked `~`.
    assert!(line.contains(" | 5h ~"), "{line}");
    assert!(!line.contains("wk "), "{line}");
    // Another session's capture from a minute ago is the truth.
    statusline(&sb, &fs::read(fixture("statusline-42-63.json")).unwrap());
    let (_, line, _) = run_with_stdin(
        sb.cmd()
            .env("CSM_NOW", "2026-11-20T16:41:00Z")
            .env("NO_COLOR", "1"),
        &["statusline"],
        &api,
    );
    assert!(line.contains("5h 42% · wk 63%"), "{line}");
}

#[test]
fn statusline_rejects_impossible_limits_and_says_why_in_the_log() {
    let sb = warm();
    let mut v: Value =
        serde_json::from_slice(&fs::read(fixture("statusline-42-63.json")).unwrap()).unwrap();
    v["rate_limits"]["five_hour"]["used_percentage"] = 1_795_201_200u64.into();
    let line = statusline(&sb, v.to_string().as_bytes());
    assert!(line.contains("wk 63%"), "{line}");
    assert!(!line.contains("5h 42%"), "{line}");
    let log = fs::read_to_string(sb.csm_home().join("claude.log")).unwrap();
    assert!(
        log.contains("five_hour.used_percentage 1795201200"),
        "{log}"
    );
    let frame = monitor_once(&sb, NOW);
    assert!(!frame.contains("5-hour"), "{frame}");
    assert!(frame.contains("Weekly"), "{frame}");
}

#[test]
fn statusline_survives_bad_stdin() {
    let sb = warm();
    let huge = vec![b'x'; 3 << 20];
    for input in [&b""[..], b"garbage{", b"\xff\xfe\x00", b"[]", &huge] {
        let line = statusline(&sb, input);
        // The store's figures still show.
        assert!(line.starts_with("block $"), "{line}");
    }
    // Without a store or any data there is still a line.
    let empty = Sandbox::new();
    let (code, out, err) = run_with_stdin(&mut empty.cmd(), &["statusline"], b"garbage");
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out.trim_end(), "csm: no usage data");
    // A config file that does not parse: a short line, exit 0.
    fs::create_dir_all(empty.csm_home()).unwrap();
    fs::write(empty.csm_home().join("config.toml"), "start_day = \"x\"").unwrap();
    let (code, out, _) = run_with_stdin(&mut empty.cmd(), &["statusline"], b"{}");
    assert_eq!(code, 0);
    assert!(out.starts_with("csm: config error"), "{out}");
}

/// Spawns csm with stdin left open and returns its output once it exits
/// (panics if it is still running after `deadline`).
fn run_with_open_stdin(sb: &Sandbox, args: &[&str], deadline: Duration) -> std::process::Output {
    let mut child = support::spawn_piped(sb.process(&sb.csm_home()).args(args));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"model\":").unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > deadline {
            child.kill().unwrap();
            panic!("csm {args:?} still waiting for stdin after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn a_stdin_that_never_closes_does_not_hang() {
    let sb = warm();
    let out = run_with_open_stdin(&sb, &["statusline"], Duration::from_secs(10));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("block $"));
    let out = run_with_open_stdin(&sb, &["hook"], Duration::from_secs(10));
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn hooks_are_silent_and_feed_the_activity_panel() {
    let sb = warm();
    let events = fs::read_to_string(fixture("hook-events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    let at = |i: usize| format!("2026-11-20T16:{:02}:00Z", 30 + i);
    // Everything up to the Notification: waiting for the user.
    for (i, l) in lines.iter().enumerate().take(5) {
        let (code, out, err) =
            run_with_stdin(sb.cmd().env("CSM_NOW", at(i)), &["hook"], l.as_bytes());
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "{l}");
    }
    // The hooks spool their events; the next writer (here the dashboard)
    // moves them into the store.
    let spool = fs::read_to_string(sb.csm_home().join("claude.spool")).unwrap();
    assert_eq!(spool.lines().count(), 5, "{spool}");
    let frame = monitor_once(&sb, "2026-11-20T16:36:00Z");
    let n: i64 = open_db(&sb.csm_home())
        .query_row("SELECT count(*) FROM activity", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 5);
    assert!(!sb.csm_home().join("claude.spool").exists());
    let row = frame.lines().find(|l| l.contains(" api ")).expect(&frame);
    assert!(
        row.contains("WAITING FOR YOU") && row.contains("2m"),
        "{frame}"
    );
    // A new prompt: active again.
    let (code, ..) = run_with_stdin(
        sb.cmd().env("CSM_NOW", "2026-11-20T16:37:00Z"),
        &["hook"],
        lines[1].as_bytes(),
    );
    assert_eq!(code, 0);
    let frame = monitor_once(&sb, "2026-11-20T16:38:00Z");
    let row = frame.lines().find(|l| l.contains(" api ")).expect(&frame);
    assert!(row.contains("ACTIVE") && row.contains("1m"), "{frame}");
    // SessionEnd: the session leaves the panel.
    let (code, ..) = run_with_stdin(
        sb.cmd().env("CSM_NOW", "2026-11-20T16:39:00Z"),
        &["hook"],
        lines[7].as_bytes(),
    );
    assert_eq!(code, 0);
    let frame = monitor_once(&sb, "2026-11-20T16:39:30Z");
    assert!(frame.contains("no live Claude Code session"), "{frame}");
}

#[test]
fn a_bad_hook_event_is_logged_not_printed() {
    let sb = warm();
    for input in [&b""[..], b"nope", br#"{"hook_event_name":"Stop"}"#] {
        let (code, out, err) = run_with_stdin(&mut sb.cmd(), &["hook"], input);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    }
    let log = fs::read_to_string(sb.csm_home().join("claude.log")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.contains("hook input has no session_id"), "{log}");
}

#[test]
fn a_hook_before_any_store_is_kept_until_one_exists() {
    let sb = Sandbox::new();
    let line = fs::read_to_string(fixture("hook-events.jsonl")).unwrap();
    let first = line.lines().next().unwrap();
    let (code, out, err) = run_with_stdin(&mut sb.bare_cmd(), &["hook"], first.as_bytes());
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    assert!(!sb.csm_home().join("history.db").exists());
    sb.write_session("-home-dev-alpha", "a1", &[]);
    stdout_ok(sb.cmd().args(["blocks", "--json"]));
    let n: i64 = open_db(&sb.csm_home())
        .query_row("SELECT count(*) FROM activity", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

/// Another process holds the store's write lock (a long ingest): the hook
/// and the status line neither wait nor lose anything; the next writer
/// stores both.
#[test]
fn a_locked_store_delays_events_and_captures_without_losing_them() {
    let sb = warm();
    statusline(&sb, &fs::read(fixture("statusline-42-63.json")).unwrap());
    let conn = open_db(&sb.csm_home());
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let ev = fs::read_to_string(fixture("hook-events.jsonl")).unwrap();
    let (code, out, err) = run_with_stdin(
        &mut sb.cmd(),
        &["hook"],
        ev.lines().next().unwrap().as_bytes(),
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    // New figures: shown at once from the payload, stored later.
    let mut v: Value =
        serde_json::from_slice(&fs::read(fixture("statusline-42-63.json")).unwrap()).unwrap();
    v["rate_limits"]["five_hour"]["used_percentage"] = 44.into();
    let line = statusline(&sb, v.to_string().as_bytes());
    assert!(
        line.contains("block $") && line.contains("5h 44%"),
        "{line}"
    );
    let log = fs::read_to_string(sb.csm_home().join("claude.log")).unwrap_or_default();
    assert!(
        !log.contains("dropped") && !log.contains("not stored"),
        "{log}"
    );
    let spool = fs::read_to_string(sb.csm_home().join("claude.spool")).unwrap();
    assert_eq!(spool.lines().count(), 2, "{spool}");
    conn.execute_batch("ROLLBACK").unwrap();
    let status: Value =
        serde_json::from_str(&stdout_ok(sb.cmd().args(["status", "--format", "json"]))).unwrap();
    assert_eq!(
        status["official_limits"]["five_hour"]["used_percent"], 44.0,
        "{status}"
    );
    let n: i64 = conn
        .query_row("SELECT count(*) FROM activity", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn statusline_brings_a_store_that_is_behind_up_to_date_in_the_background() {
    let sb = warm();
    let path = sb.projects().join("-home-dev-alpha").join("a2.jsonl");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&usage_line(
        "2026-11-20T16:30:00.000Z",
        "a2",
        3,
        SONNET,
        [1000, 2000, 0, 0],
    ));
    text.push('\n');
    fs::write(&path, &text).unwrap();
    let mut v: Value =
        serde_json::from_slice(&fs::read(fixture("statusline-42-63.json")).unwrap()).unwrap();
    v["transcript_path"] = path.to_string_lossy().into_owned().into();
    statusline(&sb, v.to_string().as_bytes());
    // The detached ingest reads the new line; poll the store for it.
    let conn = open_db(&sb.csm_home());
    let start = Instant::now();
    loop {
        let entries: i64 = conn
            .query_row(
                "SELECT coalesce(sum(entries), 0) FROM blocks WHERE is_gap = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if entries == 8 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "store never caught up ({entries} entries)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// csm setup claude

fn settings(sb: &Sandbox) -> PathBuf {
    sb.claude().join("settings.json")
}

fn setup(sb: &Sandbox, extra: &[&str]) -> std::process::Output {
    let mut c = sb.cmd();
    c.args(["setup", "claude"]).args(extra);
    c.output().unwrap()
}

fn backups(sb: &Sandbox) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(sb.claude())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains(".csm-backup-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn csm_exe() -> String {
    env!("CARGO_BIN_EXE_csm").to_string()
}

#[test]
fn setup_into_a_missing_file_then_again_then_uninstall() {
    let sb = Sandbox::new();
    let out = setup(&sb, &[]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_str(&fs::read_to_string(settings(&sb)).unwrap()).unwrap();
    let exe = csm_exe();
    assert!(
        v["statusLine"]["command"]
            .as_str()
            .unwrap()
            .ends_with("csm statusline")
    );
    assert!(v["statusLine"]["command"].as_str().unwrap().contains(&exe));
    for e in [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Notification",
        "Stop",
        "SubagentStop",
        "SessionEnd",
    ] {
        let cmd = v["hooks"][e][0]["hooks"][0]["command"].as_str().unwrap();
        assert!(cmd.ends_with("csm hook"), "{e}: {cmd}");
    }
    assert!(backups(&sb).is_empty(), "nothing to back up");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(settings(&sb)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Again: nothing changes, nothing is written.
    let before = fs::read(settings(&sb)).unwrap();
    let out = setup(&sb, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already set up"));
    assert_eq!(fs::read(settings(&sb)).unwrap(), before);
    assert!(backups(&sb).is_empty());
    // Uninstall: an empty object, the installed file backed up.
    let out = setup(&sb, &["--uninstall"]);
    assert!(out.status.success());
    assert_eq!(fs::read_to_string(settings(&sb)).unwrap(), "{}\n");
    let b = backups(&sb);
    assert_eq!(b.len(), 1);
    assert_eq!(fs::read(&b[0]).unwrap(), before);
}

const EXISTING: &str = r#"{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "model": "opus",
  "hooks": {
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "notify-send 'Claude is done'"
          }
        ]
      }
    ],
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "~/bin/guard.sh",
            "timeout": 5
          }
        ]
      }
    ]
  },
  "permissions": {
    "allow": [
      "Bash(cargo test:*)"
    ],
    "deny": []
  },
  "cleanupPeriodDays": 99
}
"#;

#[test]
fn setup_keeps_other_keys_and_hooks_backs_up_and_uninstalls_only_ours() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.claude()).unwrap();
    fs::write(settings(&sb), EXISTING).unwrap();
    let out = setup(&sb, &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("backup of the previous file"), "{stdout}");
    let text = fs::read_to_string(settings(&sb)).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["model"], "opus");
    assert_eq!(v["cleanupPeriodDays"], 99);
    assert_eq!(v["permissions"]["allow"][0], "Bash(cargo test:*)");
    let stop = v["hooks"]["Stop"].as_array().unwrap();
    assert_eq!(stop.len(), 2);
    assert_eq!(
        stop[0]["hooks"][0]["command"],
        "notify-send 'Claude is done'"
    );
    let pre = v["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre[0]["hooks"][0]["timeout"], 5);
    assert!(
        pre[1]["hooks"][0]["command"]
            .as_str()
            .unwrap()
            .ends_with("csm hook")
    );
    // Key order is the file's, new keys at the end.
    let order: Vec<usize> = [
        "\"$schema\"",
        "\"model\"",
        "\"hooks\"",
        "\"permissions\"",
        "\"cleanupPeriodDays\"",
        "\"statusLine\"",
    ]
    .iter()
    .map(|k| text.find(k).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    let b = backups(&sb);
    assert_eq!(b.len(), 1);
    assert_eq!(fs::read_to_string(&b[0]).unwrap(), EXISTING);
    // Uninstall restores the original text exactly.
    assert!(setup(&sb, &["--uninstall"]).status.success());
    assert_eq!(fs::read_to_string(settings(&sb)).unwrap(), EXISTING);
}

#[test]
fn setup_reads_unusual_formatting() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.claude()).unwrap();
    let text = "{\"env\":{\"A\":\"1\"},\t\"hooks\" :{ \"Stop\":[ {\"hooks\":[{\"type\":\"command\",\"command\":\"true\"}]}]}\r\n,\"n\":1E2}";
    fs::write(settings(&sb), text).unwrap();
    let out = setup(&sb, &[]);
    assert!(out.status.success(), "{out:?}");
    let new = fs::read_to_string(settings(&sb)).unwrap();
    let v: Value = serde_json::from_str(&new).unwrap();
    assert_eq!(v["env"]["A"], "1");
    assert_eq!(v["n"], 100.0);
    assert!(
        new.contains("\"n\": 1E2"),
        "untouched values keep their text: {new}"
    );
    assert_eq!(v["hooks"]["Stop"][0]["hooks"][0]["command"], "true");
    assert_eq!(v["hooks"]["Stop"].as_array().unwrap().len(), 2);
    assert!(setup(&sb, &["--uninstall"]).status.success());
    let back: Value = serde_json::from_str(&fs::read_to_string(settings(&sb)).unwrap()).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
}

#[test]
fn setup_dry_run_prints_a_diff_and_writes_nothing() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.claude()).unwrap();
    fs::write(settings(&sb), EXISTING).unwrap();
    let out = setup(&sb, &["--dry-run"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("+++ "), "{stdout}");
    assert!(stdout.contains("+  \"statusLine\": {"), "{stdout}");
    assert!(stdout.contains("dry run: nothing written"), "{stdout}");
    assert_eq!(fs::read_to_string(settings(&sb)).unwrap(), EXISTING);
    assert!(backups(&sb).is_empty());
}

#[test]
fn setup_on_a_read_only_file_or_bad_json_changes_nothing() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.claude()).unwrap();
    fs::write(settings(&sb), EXISTING).unwrap();
    let mut perms = fs::metadata(settings(&sb)).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(settings(&sb), perms).unwrap();
    let out = setup(&sb, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("settings.json is read-only: nothing changed"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(settings(&sb)).unwrap(), EXISTING);
    assert!(backups(&sb).is_empty());

    let bad = "{\"model\": \"opus\",}";
    let sb = Sandbox::new();
    fs::create_dir_all(sb.claude()).unwrap();
    fs::write(settings(&sb), bad).unwrap();
    let out = setup(&sb, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("settings.json: not valid JSON"), "{err}");
    assert!(err.contains("nothing changed"), "{err}");
    assert_eq!(fs::read_to_string(settings(&sb)).unwrap(), bad);
}

#[test]
fn setup_goes_to_the_first_claude_dir() {
    let sb = Sandbox::new();
    let other = sb.path().join("other-claude");
    let out = sb
        .cmd()
        .args(["setup", "claude", "--claude-dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(other.join("settings.json").is_file());
    assert!(!settings(&sb).exists());
    // Without flags: CLAUDE_CONFIG_DIR (the sandbox's), then the sandbox HOME's .claude.
    assert!(setup(&sb, &[]).status.success());
    assert!(settings(&sb).is_file());
    let out = sb.bare_cmd().args(["setup", "claude"]).output().unwrap();
    assert!(out.status.success());
    assert!(sb.home().join(".claude/settings.json").is_file());
}

#[test]
fn statusline_capture_reaches_csm_status_and_goes_stale() {
    let sb = warm();
    statusline(&sb, &fs::read(fixture("statusline-42-63.json")).unwrap());
    let json = |now: &str| -> Value {
        serde_json::from_str(&stdout_ok(
            sb.cmd()
                .env("CSM_NOW", now)
                .args(["status", "--format", "json"]),
        ))
        .unwrap()
    };
    let s = json(NOW);
    let o = &s["official_limits"];
    assert_eq!(o["five_hour"]["used_percent"], 42.0, "{s}");
    assert_eq!(o["seven_day"]["used_percent"], 63.0, "{s}");
    assert!(
        o["five_hour"]["resets_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-20T19:00"),
        "{s}"
    );
    assert!(
        o["seven_day"]["resets_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-23T08:00"),
        "{s}"
    );
    assert_eq!(o["stale"], false, "{s}");
    let later = json("2026-11-20T16:51:00Z");
    assert_eq!(later["official_limits"]["five_hour"]["used_percent"], 42.0);
    assert_eq!(later["official_limits"]["stale"], true, "{later}");
    let text = stdout_ok(
        sb.cmd()
            .env("CSM_NOW", "2026-11-20T16:51:00Z")
            .args(["status"]),
    );
    assert!(
        text.contains("| 5h 42% (resets 19:00) · wk 63% (resets Mon 08:00) · stale 11m |"),
        "{text}"
    );
}
