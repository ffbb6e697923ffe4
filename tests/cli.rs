//! The command line as a user meets it: missing data, bad flag and config
//! values, `doctor`, `--help` and `--version`.

mod support;

use std::fs;

use predicates::prelude::*;
use serde_json::json;

use support::{Sandbox, column, json_ok, real, small_history, stdout_ok};

// ---------------------------------------------------------------------------
// 1. Missing data

#[test]
fn no_claude_data_at_default_locations_is_an_empty_report_with_one_line_why() {
    let sb = Sandbox::new();
    let home = sb.home();

    let out = sb.bare_cmd().args(["blocks", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout, json!({"blocks": []}));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of explanation, got:\n{stderr}");
    assert!(lines[0].contains("No Claude Code data found"), "{stderr}");
    // It says where it looked.
    assert!(
        lines[0].contains(&home.join(".claude").display().to_string()),
        "{stderr}"
    );
    assert!(
        lines[0].contains(&home.join(".config/claude").display().to_string()),
        "{stderr}"
    );

    let out = sb.bare_cmd().args(["daily", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let daily: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(daily["daily"], json!([]));
    for k in [
        "inputTokens",
        "outputTokens",
        "cacheCreationTokens",
        "cacheReadTokens",
        "totalTokens",
    ] {
        assert_eq!(daily["totals"][k], json!(0), "{k} in {text}");
    }
    // ccusage prints the empty sum as -0 (its sum starts at -0.0).
    assert!(text.contains("\"totalCost\": -0.0"), "{text}");
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);

    // Nothing was created in the (fake) home directory's Claude locations.
    assert!(!home.join(".claude").exists());
}

/// `status` on a machine without Claude Code data says where it looked and
/// fails, so a status bar shows trouble instead of a calm empty month.
#[test]
fn status_without_a_data_folder_says_where_it_looked_and_exits_1() {
    let sb = Sandbox::new();
    let out = sb.bare_cmd().arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("No Claude Code data found"), "{err}");
    assert!(
        err.contains(&sb.home().join(".claude").display().to_string()),
        "{err}"
    );
    assert!(err.contains("--claude-dir"), "{err}");
    // The line itself still prints (history in the store would show).
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("sessions 0/50")
    );
    // And the dashboard says the same in its frame.
    let frame = stdout_ok(sb.bare_cmd().args(["monitor", "--once"]));
    let words: Vec<&str> = frame
        .split(|c: char| c.is_whitespace() || c == '│')
        .filter(|w| !w.is_empty())
        .collect();
    let said = words.join(" ");
    assert!(said.contains("No Claude Code data found"), "{frame}");
    assert!(
        said.contains("Use Claude Code once, or point csm at its folder"),
        "{frame}"
    );
    // First thing on the screen, above the waiting line.
    assert!(frame.find("No Claude Code").unwrap() < frame.find("Waiting for").unwrap());
}

#[test]
fn no_data_in_xdg_config_home_either_is_still_empty_not_a_crash() {
    let sb = Sandbox::new();
    sb.bare_cmd()
        .env("XDG_CONFIG_HOME", sb.path().join("xdg"))
        .args(["session", "--json"])
        .assert()
        .success()
        .stderr(predicate::str::contains("xdg"));
}

#[test]
fn claude_config_dir_with_nothing_valid_is_an_error_naming_it_and_the_paths() {
    let sb = Sandbox::new();
    // An existing directory without projects/ and a path that does not exist.
    let empty = sb.path().join("empty-config");
    fs::create_dir_all(&empty).unwrap();
    let missing = sb.path().join("no-such-dir");
    let value = format!("{}, {}", empty.display(), missing.display());
    for args in [&["daily", "--json"][..], &["blocks"][..]] {
        sb.bare_cmd()
            .env("CLAUDE_CONFIG_DIR", &value)
            .args(args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains("CLAUDE_CONFIG_DIR"))
            .stderr(predicate::str::contains(empty.display().to_string()))
            .stderr(predicate::str::contains(missing.display().to_string()));
    }
}

#[test]
fn claude_config_dir_accepts_a_projects_dir_and_a_comma_list() {
    let sb = Sandbox::new();
    small_history(&sb);
    let missing = sb.path().join("missing");
    let value = format!(" {} ,, {} ", missing.display(), sb.projects().display());
    let v = json_ok(
        sb.bare_cmd()
            .env("CLAUDE_CONFIG_DIR", value)
            .args(["daily", "--json"]),
    );
    assert_eq!(v["daily"].as_array().unwrap().len(), 5);
}

#[test]
fn claude_dir_flag_at_a_missing_dir_is_an_error_naming_it() {
    let sb = Sandbox::new();
    small_history(&sb);
    let missing = sb.path().join("nowhere");
    // The flag wins over a valid CLAUDE_CONFIG_DIR.
    sb.cmd()
        .arg("--claude-dir")
        .arg(&missing)
        .args(["daily", "--json"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("--claude-dir"))
        .stderr(predicate::str::contains(missing.display().to_string()));
}

// ---------------------------------------------------------------------------
// 2. Bad values: exit 2, the value named

#[test]
fn bad_flag_values_exit_2_and_name_the_value() {
    let sb = Sandbox::new();
    small_history(&sb);
    let cases: &[(&[&str], &str)] = &[
        (&["--timezone", "Mars/Base", "daily"], "Mars/Base"),
        (&["daily", "--timezone", "Mars/Base", "--json"], "Mars/Base"),
        (&["daily", "--since", "2026-13-01"], "2026-13-01"),
        (&["daily", "--until", "20261132"], "20261132"),
        (&["session", "--since", "yesterday"], "yesterday"),
        (&["--mode", "foo", "daily"], "foo"),
        (&["blocks", "--token-limit", "lots"], "lots"),
        (&["blocks", "-t", "-5"], "-5"),
        (&["--start-day", "40", "daily"], "40"),
        (&["--start-day", "0", "daily"], "0"),
        (&["blocks", "--session-length", "-3"], "-3"),
        (&["blocks", "--session-length=-3"], "-3"),
        (&["blocks", "--session-length", "0"], "0"),
        (&["weekly", "--start-of-week", "someday"], "someday"),
        (&["daily", "--order", "sideways"], "sideways"),
        (&["--source", "magic", "blocks"], "magic"),
    ];
    for (args, value) in cases {
        let out = sb.cmd().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(
            stderr.contains(&format!("'{value}'")),
            "{args:?}: stderr does not name '{value}':\n{stderr}"
        );
    }
}

#[test]
fn invalid_csm_now_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.cmd()
        .env("CSM_NOW", "tomorrow-ish")
        .args(["daily", "--json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tomorrow-ish"))
        .stderr(predicate::str::contains("CSM_NOW"));
}

#[test]
fn bad_config_file_exits_2_naming_key_and_line() {
    let sb = Sandbox::new();
    small_history(&sb);
    let cases: &[(&str, &[&str])] = &[
        // Unknown key (a typo) on line 2.
        ("start_day = 3\nsesions = 5\n", &["sesions", "line 2"]),
        // Bad values.
        (
            "# comment\n\nstart_day = 40\n",
            &["start_day", "line 3", "40"],
        ),
        (
            "start_day = 2\ntimezone = \"Mars/Base\"\n",
            &["timezone", "line 2", "Mars/Base"],
        ),
        (
            "token_limit = \"lots\"\n",
            &["token_limit", "line 1", "lots"],
        ),
        (
            "start_day = 1\n[alerts]\nlimit_thresholds = [80, 180]\n",
            &["limit_thresholds", "line 3", "180"],
        ),
        ("start_day = \n", &["line 1"]),
        (
            "[alerts]\ndesktop = true\nsound = \"ding\"\n",
            &["sound", "line 3"],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let file = sb.path().join(format!("config-{i}.toml"));
        fs::write(&file, text).unwrap();
        let out = sb
            .cmd()
            .arg("--config")
            .arg(&file)
            .args(["daily", "--json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(out.stdout.is_empty());
        assert!(
            stderr.contains(&file.display().to_string()),
            "names the file: {stderr}"
        );
        for n in *needles {
            assert!(stderr.contains(n), "{text:?}: no {n:?} in {stderr}");
        }
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        // The file is never rewritten or reset.
        assert_eq!(fs::read_to_string(&file).unwrap(), *text);
    }
}

/// A bad value names the key. A value of the wrong TOML type is
/// reported with its line but without the key ("line 1: invalid type: string
/// \"many\", expected u32"): `describe_toml_error` in src/config.rs prints
/// only toml's message.
#[test]
fn config_value_of_wrong_type_names_the_key() {
    let sb = Sandbox::new();
    for (text, key) in [
        ("sessions_per_period = \"many\"\n", "sessions_per_period"),
        ("[alerts]\ndesktop = \"yes\"\n", "desktop"),
    ] {
        let file = sb.path().join("config.toml");
        fs::write(&file, text).unwrap();
        sb.cmd()
            .arg("--config")
            .arg(&file)
            .args(["daily", "--json"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(key));
    }
}

#[test]
fn config_in_csm_home_is_read_and_flags_override_it() {
    let sb = Sandbox::new();
    small_history(&sb);
    fs::create_dir_all(sb.csm_home()).unwrap();
    fs::write(
        sb.csm_home().join("config.toml"),
        "timezone = \"Europe/Warsaw\"\n",
    )
    .unwrap();
    // 2026-11-17T23:30Z is the 18th in Warsaw: the config's zone is used...
    let v = json_ok(sb.cmd().args(["daily", "--json"]));
    assert!(!column(&v, "daily", "date").contains(&"2026-11-17".to_string()));
    // ...unless the flag says otherwise.
    let v = json_ok(sb.cmd().args(["daily", "--json", "--timezone", "UTC"]));
    assert!(column(&v, "daily", "date").contains(&"2026-11-17".to_string()));
    // A broken config in CSM_HOME is an error too, not silently ignored.
    fs::write(sb.csm_home().join("config.toml"), "start_dya = 1\n").unwrap();
    sb.cmd()
        .args(["daily", "--json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("start_dya"));
}

// ---------------------------------------------------------------------------
// 8. doctor, --help, --version

#[test]
fn doctor_lists_root_files_and_skip_reasons() {
    let sb = Sandbox::new();
    small_history(&sb);
    // One of each of a few skip reasons, in its own file.
    sb.write_session(
        "-home-dev-beta",
        "odd",
        &[
            String::new(),
            "{\"type\":\"user\",\"message\":{\"content\":\"hi\"}}".into(),
            "{\"message\":{\"usage\":{\"input_tokens\":1,".into(),
        ],
    );
    let text = stdout_ok(sb.cmd().arg("doctor"));
    let root = real(&sb.projects());
    assert!(
        text.contains(&format!("data root       {}", root.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("base dir        {}", sb.csm_home().display())),
        "{text}"
    );
    let field = |name: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} line in:\n{text}"))[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(field("files"), "4");
    assert_eq!(field("usage lines"), "7");
    assert_eq!(field("entries"), "7");
    assert_eq!(field("skipped lines"), "3");
    // Each reason is listed with its count, zero or not.
    let reason = |label: &str| -> String {
        text.lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(reason("blank line"), "1");
    assert_eq!(reason("no usage"), "1");
    assert_eq!(reason("invalid JSON"), "1");
    assert_eq!(reason("JSON without message.usage"), "0");
    assert_eq!(reason("missing or invalid timestamp"), "0");
    assert!(text.contains("unknown models  none"), "{text}");
    assert!(text.contains("time zone       UTC"), "{text}");

    // The JSON form carries the same numbers (on a first run: see
    // doctor_counts_survive_the_history_store).
    let v = json_ok(sb.fresh_cmd().args(["doctor", "--json"]));
    assert_eq!(v["files"], json!(4));
    assert_eq!(v["entries"], json!(7));
    assert_eq!(v["roots"], json!([root.display().to_string()]));
    assert_eq!(v["skipped"]["blank"], json!(1));
    assert_eq!(v["skipped"]["no_usage"], json!(1));
    assert_eq!(v["skipped"]["invalid_json"], json!(1));
}

/// With the history store (commit 4d99779), `doctor` counts only the lines
/// this run read: run it twice and the second run says "skipped lines 0",
/// "lines 0", "bytes read 0" although the transcripts still hold the bad
/// lines, while doctor and --debug must show the counts.
#[test]
fn doctor_counts_survive_the_history_store() {
    let sb = Sandbox::new();
    small_history(&sb);
    sb.write_session("p", "odd", &[String::new(), "not json".into()]);
    let first = json_ok(sb.cmd().args(["doctor", "--json"]));
    let second = json_ok(sb.cmd().args(["doctor", "--json"]));
    assert_eq!(first["skipped"]["blank"], json!(1));
    assert_eq!(second["skipped"], first["skipped"]);
    assert_eq!(second["lines"], first["lines"]);
    let out = sb
        .cmd()
        .args(["daily", "--json", "--debug"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("blank line"), "{stderr}");
    // Windows come from the store without reading entries: a warm
    // `blocks --debug` still reports what the transcripts hold.
    for _ in 0..2 {
        let out = sb
            .cmd()
            .args(["blocks", "--json", "--debug"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("blank line"), "{stderr}");
        assert!(stderr.contains("no usage"), "{stderr}");
    }
}

#[test]
fn doctor_without_data_explains_instead_of_failing() {
    let sb = Sandbox::new();
    sb.bare_cmd()
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicate::str::contains("data roots      none"))
        .stdout(predicate::str::contains("No Claude Code data found"));
}

#[test]
fn doctor_names_unknown_models() {
    let sb = Sandbox::new();
    sb.write_session(
        "p",
        "s",
        &[support::usage_line(
            "2026-11-20T10:00:00.000Z",
            "s",
            1,
            "claude-nonexistent-9",
            [1, 2, 3, 4],
        )],
    );
    sb.cmd()
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicate::str::contains("claude-nonexistent-9"));
    let v = json_ok(sb.cmd().args(["doctor", "--json"]));
    assert_eq!(
        v["unknownModels"],
        json!([{"model": "claude-nonexistent-9", "entries": 1}])
    );
}

/// A report whose reader goes away (`csm completions bash | head -c 10`)
/// ends quietly, not with a panic about a broken pipe.
#[cfg(unix)]
#[test]
fn a_report_ends_quietly_when_its_reader_goes() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let sb = Sandbox::new();
    // Over 100 KiB: more than a pipe holds, so csm is still writing when
    // the read end closes.
    let mut child = sb
        .clean_command(env!("CARGO_BIN_EXE_csm"), &sb.csm_home())
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        status.success() || status.signal() == Some(libc::SIGPIPE),
        "{status:?}"
    );
}

#[test]
fn help_and_version() {
    let sb = Sandbox::new();
    let help = stdout_ok(sb.bare_cmd().arg("--help"));
    for word in [
        "blocks",
        "daily",
        "weekly",
        "monthly",
        "session",
        "pricing",
        "doctor",
        "--claude-dir",
        "--timezone",
        "--mode",
        "--no-color",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let sub = stdout_ok(sb.bare_cmd().args(["blocks", "--help"]));
    for word in ["--active", "--recent", "--token-limit", "--session-length"] {
        assert!(sub.contains(word), "blocks --help lacks {word}:\n{sub}");
    }
    // A flag that only makes sense alone stays off every subcommand's help.
    assert!(help.contains("--test-alert"), "{help}");
    assert!(!sub.contains("--test-alert"), "{sub}");
    // `--recalculate` says what it is: a store rebuild.
    assert!(help.contains("csm db rebuild"), "{help}");
    let expected = format!("csm {}\n", env!("CARGO_PKG_VERSION"));
    sb.bare_cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(expected.clone());
    sb.bare_cmd().arg("-V").assert().success().stdout(expected);
    // An unknown command or flag is a usage error.
    sb.bare_cmd()
        .arg("frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("frobnicate"));
    sb.bare_cmd()
        .args(["daily", "--frobnicate"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--frobnicate"));
}

/// `db stats` describes the store the reports read; `db rebuild` re-reads
/// everything and changes no report.
#[test]
fn db_stats_and_rebuild() {
    let sb = Sandbox::new();
    small_history(&sb);
    let before = stdout_ok(sb.cmd().args(["blocks", "--json"]));
    let stats = json_ok(sb.cmd().args(["db", "stats", "--json"]));
    let doctor = json_ok(sb.cmd().args(["doctor", "--json"]));
    assert_eq!(stats["entries"], doctor["entries"], "{stats}");
    assert!(stats["lines"].as_u64().unwrap() >= stats["entries"].as_u64().unwrap());
    assert_eq!(stats["transcriptsGone"], json!(0));
    let out = stdout_ok(sb.cmd().args(["db", "rebuild"]));
    assert!(out.contains("Rebuilt from"), "{out}");
    assert_eq!(stdout_ok(sb.cmd().args(["blocks", "--json"])), before);
    sb.cmd()
        .args(["db", "stats", "--no-store"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--no-store"));
}

/// `csm demo --once`: a dashboard frame with a current window, from a
/// history of its own; the home directory and csm's base stay untouched and
/// the temp dir is gone afterwards.
#[test]
fn demo_prints_a_frame_with_a_current_window_and_touches_nothing() {
    let sb = Sandbox::new();
    let tmp = sb.home().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let out = sb
        .bare_cmd()
        .args(["demo", "--once", "--timezone", "UTC"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = String::from_utf8(out.stdout).unwrap();
    for must in [
        "Tokens",
        "% used",
        "left · resets",
        "% elapsed",
        "Sessions ",
    ] {
        assert!(frame.contains(must), "{must}:\n{frame}");
    }
    assert!(!sb.csm_home().exists(), "the demo wrote to CSM_HOME");
    assert!(!sb.home().join(".claude").exists());
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "temp dir left behind"
    );
}
