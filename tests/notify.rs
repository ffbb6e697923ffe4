//! `notify_command`, `csm notify test` / `--test-alert` and `csm notify check`
//! through the real binary, with a script that records what it receives.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::{Sandbox, small_history, stdout_ok};

/// A script that writes its arguments, then `CSM_TITLE` and `CSM_BODY`, each
/// NUL-terminated, to `<dir>/<n>.args` and `<dir>/<n>.env`.
fn recorder(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let dir = sb.path().join("received");
    fs::create_dir_all(&dir).unwrap();
    let script = sb.path().join("record.sh");
    fs::write(
        &script,
        "#!/bin/sh\n\
         d=\"$1\"; shift\n\
         n=$(ls \"$d\" | grep -c '\\.args$')\n\
         printf '%s\\0' \"$@\" > \"$d/$n.args\"\n\
         printf '%s\\0' \"$CSM_TITLE\" \"$CSM_BODY\" > \"$d/$n.env\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    (script, dir)
}

fn received(dir: &Path, n: usize, ext: &str) -> Vec<String> {
    let raw = fs::read(dir.join(format!("{n}.{ext}"))).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let mut parts: Vec<String> = text.split('\0').map(String::from).collect();
    assert_eq!(parts.pop().as_deref(), Some(""), "NUL-terminated");
    parts
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".args")
        })
        .count()
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// `config.toml` with the desktop off and `notify_command` = `argv`.
fn config(sb: &Sandbox, argv: &[&str], extra: &str) {
    let list: Vec<String> = argv.iter().map(|a| toml_str(a)).collect();
    fs::create_dir_all(sb.csm_home()).unwrap();
    fs::write(
        sb.csm_home().join("config.toml"),
        format!(
            "{extra}\n[alerts]\ndesktop = false\nnotify_command = [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
}

#[test]
fn notify_command_gets_hostile_text_intact_and_runs_none_of_it() {
    let sb = Sandbox::new();
    let (script, dir) = recorder(&sb);
    let canary = sb.path().join("pwned");
    let c = canary.display();
    let title = format!(
        "it's \"quoted\" $(touch {c}1) `touch {c}2`; touch {c}3 && echo '\nsecond line \\ {{body}}"
    );
    let body = format!("$HOME ${{PATH}} $(touch {c}4)\n\t| touch {c}5 > {c}6");
    config(&sb, &[script.to_str().unwrap(), dir.to_str().unwrap()], "");
    let out = stdout_ok(
        sb.cmd()
            .current_dir(sb.path())
            .args(["notify", "test", "--title", &title, "--body", &body]),
    );
    assert!(out.contains("command  delivered"), "{out}");
    assert_eq!(received(&dir, 0, "args"), vec![title.clone(), body.clone()]);
    assert_eq!(received(&dir, 0, "env"), vec![title.clone(), body.clone()]);
    for n in 1..=6 {
        assert!(
            !Path::new(&format!("{c}{n}")).exists(),
            "something ran a shell"
        );
    }

    // The template form puts the texts where the user wants them.
    config(
        &sb,
        &[
            script.to_str().unwrap(),
            dir.to_str().unwrap(),
            "--title={title}",
            "{body}",
        ],
        "",
    );
    stdout_ok(
        sb.cmd()
            .args(["notify", "test", "--title", &title, "--body", &body]),
    );
    assert_eq!(
        received(&dir, 1, "args"),
        vec![format!("--title={title}"), body.clone()]
    );
}

#[test]
fn test_alert_reports_each_backend_and_fails_when_none_delivered() {
    let sb = Sandbox::new();
    // Nothing configured.
    fs::create_dir_all(sb.csm_home()).unwrap();
    fs::write(
        sb.csm_home().join("config.toml"),
        "[alerts]\ndesktop = false\n",
    )
    .unwrap();
    let out = sb.cmd().arg("--test-alert").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no notification backend is configured"),
        "{out:?}"
    );

    // A command that fails: reported, exit 1.
    config(&sb, &["false"], "");
    let out = sb.cmd().arg("--test-alert").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("command  FAILED: false failed"), "{text}");

    // The desktop with no session bus at all: the hint says so. (A dead
    // socket in the sandbox: the machine's own bus is never touched.)
    config(&sb, &["false"], "");
    fs::write(
        sb.csm_home().join("config.toml"),
        "[alerts]\ndesktop = true\n",
    )
    .unwrap();
    let dead = format!("unix:path={}", sb.path().join("no-bus").display());
    let out = sb
        .cmd()
        .env("DBUS_SESSION_BUS_ADDRESS", &dead)
        .args(["notify", "test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("desktop  FAILED: "), "{text}");
    assert!(text.contains("hint: "), "{text}");
}

#[test]
fn notify_check_sends_each_due_alert_once_through_the_command() {
    let sb = Sandbox::new();
    small_history(&sb);
    let (script, dir) = recorder(&sb);
    // The active window (14:00–19:00Z) holds 6,000 tokens: 60 % of this limit.
    config(
        &sb,
        &[script.to_str().unwrap(), dir.to_str().unwrap()],
        "token_limit = 10000",
    );
    // 16:40: idle since 15:35.
    let out = stdout_ok(sb.cmd().args(["--timezone", "UTC", "notify", "check"]));
    let idle = "Claude idle for 1h 05m — 2h 20m left in this window";
    assert!(out.contains(idle), "{out}");
    assert_eq!(count(&dir), 1);
    assert_eq!(
        received(&dir, 0, "args"),
        vec![
            idle.to_string(),
            "Nothing since 15:35, 60 % used. Pick the work back up before 19:00 or let the window run out."
                .to_string()
        ]
    );
    // Again: nothing new, nothing repeated.
    let out = stdout_ok(sb.cmd().args(["--timezone", "UTC", "notify", "check"]));
    assert_eq!(out.trim(), "nothing due");
    assert_eq!(count(&dir), 1);

    // 18:35: the window ends in 25 minutes; the idle streak was told already.
    let late = |cmd: &mut assert_cmd::Command| {
        cmd.env("CSM_NOW", "2026-11-20T18:35:00Z").args([
            "--timezone",
            "Europe/Warsaw",
            "notify",
            "check",
        ]);
    };
    let mut cmd = sb.cmd();
    late(&mut cmd);
    let out = stdout_ok(&mut cmd);
    assert!(
        out.contains("Claude window ends in 25 min (20:00) — 60 % used"),
        "{out}"
    );
    assert_eq!(count(&dir), 2);
    let mut cmd = sb.cmd();
    late(&mut cmd);
    cmd.arg("--dry-run");
    assert_eq!(stdout_ok(&mut cmd).trim(), "nothing due");

    // The store remembers them.
    let conn = support::open_db(&sb.csm_home());
    let n: i64 = conn
        .query_row("SELECT count(*) FROM alerts_sent", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn notify_check_dry_run_sends_and_records_nothing() {
    let sb = Sandbox::new();
    small_history(&sb);
    let (script, dir) = recorder(&sb);
    config(
        &sb,
        &[script.to_str().unwrap(), dir.to_str().unwrap()],
        "token_limit = 6500",
    );
    let out = stdout_ok(
        sb.cmd()
            .args(["--timezone", "UTC", "notify", "check", "--dry-run"]),
    );
    // 6,000 of 6,500 tokens is 92 %: the 80 % threshold, and the idle streak.
    assert!(
        out.contains("due  Claude window at 92 % of your limit — resets 19:00"),
        "{out}"
    );
    assert!(out.contains("due  Claude idle for 1h 05m"), "{out}");
    assert_eq!(count(&dir), 0);
    let out = stdout_ok(sb.cmd().args(["--timezone", "UTC", "notify", "check"]));
    assert_eq!(count(&dir), 2, "{out}");
}
