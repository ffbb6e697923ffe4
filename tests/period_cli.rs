//! `csm period`, `csm monitor --once`, `csm config` and `csm completions`
//! through the real binary, on a generated history and temp dirs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use claude_session_monitor::report::format::thousands;
use claude_session_monitor::synth::{SynthOptions, default_now, generate};
use serde_json::Value;

const NOW: &str = "2026-11-20T16:40:00Z";

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    claude: PathBuf,
}

fn shared() -> &'static Dirs {
    static D: OnceLock<Dirs> = OnceLock::new();
    D.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let claude = root.join("claude");
        let mut opts = SynthOptions::new(4, 2 << 20, default_now());
        opts.active = true;
        generate(&claude, &opts).unwrap();
        Dirs {
            _tmp: tmp,
            root,
            claude,
        }
    })
}

fn csm(home: &Path, args: &[&str]) -> Output {
    let d = shared();
    Command::new(env!("CARGO_BIN_EXE_csm"))
        .args(args)
        .env("HOME", home)
        .env("CSM_HOME", home.join("csm"))
        .env("CLAUDE_CONFIG_DIR", &d.claude)
        .env("CSM_NOW", NOW)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn fresh_home() -> tempfile::TempDir {
    tempfile::tempdir_in(&shared().root).unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn period_json_agrees_with_blocks() {
    let home = fresh_home();
    let p = json(&csm(
        home.path(),
        &[
            "--timezone",
            "Europe/Warsaw",
            "--start-day",
            "15",
            "period",
            "--json",
        ],
    ));
    let period = &p["period"];
    // Start day 15, Warsaw: 2026-11-15 00:00 CET is 2026-11-14T23:00Z.
    assert_eq!(period["startDate"], "2026-11-15");
    assert_eq!(period["endDate"], "2026-12-15");
    assert_eq!(period["start"], "2026-11-14T23:00:00.000Z");
    assert_eq!(p["timezone"], "Europe/Warsaw");
    assert_eq!(p["startDay"], 15);

    let b = json(&csm(home.path(), &["blocks", "--json"]));
    let blocks = b["blocks"].as_array().unwrap();
    let start = period["start"].as_str().unwrap();
    let end = period["end"].as_str().unwrap();
    let inside: Vec<&Value> = blocks
        .iter()
        .filter(|b| {
            let s = b["startTime"].as_str().unwrap();
            !b["isGap"].as_bool().unwrap() && s >= start && s < end
        })
        .collect();
    let used = inside.len() as u64;
    assert!(used > 0);
    assert_eq!(period["sessions"]["used"], used);
    assert_eq!(period["sessions"]["left"], 50 - used);
    assert_eq!(period["sessions"]["over"], 0);
    let cost: f64 = inside.iter().map(|b| b["costUSD"].as_f64().unwrap()).sum();
    assert!((period["costUSD"].as_f64().unwrap() - cost).abs() < 1e-6);
    let tokens: u64 = inside
        .iter()
        .map(|b| b["totalTokens"].as_u64().unwrap())
        .sum();
    assert_eq!(period["totalTokens"], tokens);
    // Nov 20 → Dec 15 (exclusive): 25 days, today included.
    assert_eq!(period["daysLeft"], 25);
    let avg = period["avgSessionsPerDay"].as_f64().unwrap();
    assert!((avg - (50 - used) as f64 / 25.0).abs() < 1e-9);

    // The active block and the token limit (max of completed blocks).
    let active = blocks.iter().find(|b| b["isActive"] == true).unwrap();
    assert_eq!(p["activeBlock"]["totalTokens"], active["totalTokens"]);
    let max = blocks
        .iter()
        .filter(|b| b["isActive"] == false && b["isGap"] == false)
        .map(|b| b["totalTokens"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(p["maxTokens"], max);
    assert_eq!(p["tokenLimit"]["tokens"], max);
    assert_eq!(p["tokenLimit"]["source"], "max");
    assert!(p.get("history").is_none());
}

#[test]
fn period_history_and_sessions_over_the_limit() {
    let home = fresh_home();
    let p = json(&csm(
        home.path(),
        &[
            "-z",
            "UTC",
            "--sessions",
            "2",
            "period",
            "--json",
            "--history",
            "2",
        ],
    ));
    let hist = p["history"].as_array().unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["startDate"], "2026-10-01");
    assert_eq!(hist[1]["startDate"], "2026-09-01");
    assert_eq!(hist[0]["daysLeft"], 0);
    let s = &p["period"]["sessions"];
    let used = s["used"].as_u64().unwrap();
    assert!(used > 2, "the generated month has more than two windows");
    assert_eq!(s["left"], 0);
    assert_eq!(s["over"], used - 2);
    // The table says so too.
    let out = csm(
        home.path(),
        &["-z", "UTC", "--sessions", "2", "period", "--history", "1"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("over by {}", used - 2)), "{text}");
    assert!(text.contains("2026-10-01 – 2026-10-31"), "{text}");
}

#[test]
fn plan_price_gives_a_value_ratio() {
    let home = fresh_home();
    let out = csm(home.path(), &["config", "set", "plan_price_usd", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = json(&csm(home.path(), &["-z", "UTC", "period", "--json"]));
    let cost = p["period"]["costUSD"].as_f64().unwrap();
    let ratio = p["period"]["valueRatio"].as_f64().unwrap();
    assert!((ratio - cost / 5.0).abs() < 1e-9);
}

#[test]
fn original_monitor_max_tokens_is_a_floor() {
    let home = fresh_home();
    let base = home.path().join("csm");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("config.json"), r#"{"max_tokens": 987654321}"#).unwrap();
    let p = json(&csm(home.path(), &["period", "--json"]));
    assert_eq!(p["maxTokens"], 987654321u64);
    assert_eq!(p["tokenLimit"]["tokens"], 987654321u64);
}

#[test]
fn monitor_once_prints_one_plain_frame() {
    let home = fresh_home();
    let b = json(&csm(home.path(), &["blocks", "--json", "--active"]));
    let tokens = b["blocks"][0]["totalTokens"].as_u64().unwrap();
    for args in [
        &["-z", "Europe/Warsaw", "monitor", "--once"][..],
        &["-z", "Europe/Warsaw"][..],
    ] {
        let out = csm(home.path(), args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\x1b'), "escape codes in a pipe");
        let grouped = thousands(tokens);
        assert!(text.contains(&grouped), "{text}");
        assert!(text.contains("17:40:00"), "{text}");
        assert!(text.lines().last().unwrap().contains("q quit"), "{text}");
    }
}

#[test]
fn monitor_flags() {
    let home = fresh_home();
    let out = csm(home.path(), &["monitor", "--check-daemon"]);
    assert_eq!(out.status.code(), Some(1));
    let out = csm(home.path(), &["monitor", "--refresh", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains('0'));
    let out = csm(home.path(), &["--version"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("csm "));
}

#[test]
fn config_commands() {
    let home = fresh_home();
    let path = home.path().join("csm").join("config.toml");
    let out = csm(home.path(), &["config", "path"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        path.display().to_string()
    );
    let out = csm(home.path(), &["config", "set", "start_day", "31"]);
    assert!(out.status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let out = csm(home.path(), &["config", "set", "alerts.desktop", "false"]);
    assert!(out.status.success());
    let shown = String::from_utf8(csm(home.path(), &["config", "show"]).stdout).unwrap();
    assert!(
        shown.contains("start_day = 31") && shown.contains("desktop = false"),
        "{shown}"
    );
    // Bad value: exit 2, key named, file unchanged.
    let before = std::fs::read_to_string(&path).unwrap();
    let out = csm(home.path(), &["config", "set", "sessions_per_period", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sessions_per_period"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    // A broken file: commands name key and line; `config path` still works.
    std::fs::write(&path, "start_day = 2\nmystery = 1\n").unwrap();
    let out = csm(home.path(), &["period"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mystery") && err.contains("line 2"), "{err}");
    assert!(csm(home.path(), &["config", "path"]).status.success());
    let out = csm(home.path(), &["config", "set", "start_day", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "start_day = 2\nmystery = 1\n"
    );
}

#[test]
fn completions_for_each_shell() {
    let home = fresh_home();
    for shell in ["bash", "zsh", "fish"] {
        let out = csm(home.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("csm") && text.contains("monitor") && text.contains("period"),
            "{shell}"
        );
    }
    assert_eq!(
        csm(home.path(), &["completions", "tcsh"]).status.code(),
        Some(2)
    );
}

/// Every face on `claude` at `now`, with a fresh store: status JSON, period
/// JSON, the active block, a dashboard frame, the alerts due and doctor.
struct Faces {
    status: Value,
    period: Value,
    active: Value,
    frame: String,
    due: String,
    doctor: String,
}

fn faces(claude: &Path, now: &str) -> Faces {
    let home = fresh_home();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_csm"))
            .args(args)
            .env("HOME", home.path())
            .env("CSM_HOME", home.path().join("csm"))
            .env("CLAUDE_CONFIG_DIR", claude)
            .env("CSM_NOW", now)
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/csm-test",
            )
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    };
    let text = |out: Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    Faces {
        status: json(&run(&["status", "--format", "json"])),
        period: json(&run(&["period", "--json"])),
        active: json(&run(&["blocks", "--json", "--active"])),
        frame: text(run(&["--timezone", "UTC", "monitor", "--once"])),
        due: text(run(&["--timezone", "UTC", "notify", "check", "--dry-run"])),
        doctor: text(run(&["doctor"])),
    }
}

/// A response stamped 6 h ahead (a device whose clock runs fast) changes no
/// face: the window containing now stays current, its 30-minute and idle
/// alerts are due, sessions and period cost are those of the history without
/// it, and doctor and the dashboard report it.
#[test]
fn an_entry_dated_six_hours_ahead_changes_no_face() {
    let d = shared();
    // 25 minutes before the active window (which started at 16:00Z) resets.
    let now = "2026-11-20T20:35:00Z";
    let skewed = tempfile::tempdir_in(&d.root).unwrap();
    let copy = Command::new("cp")
        .args(["-r"])
        .arg(d.claude.join("projects"))
        .arg(skewed.path())
        .status()
        .unwrap();
    assert!(copy.success());
    let dir = skewed.path().join("projects").join("-home-dev-laptop");
    std::fs::create_dir_all(&dir).unwrap();
    let line = serde_json::json!({
        "timestamp": "2026-11-21T02:35:00.000Z",
        "sessionId": "skewed",
        "requestId": "req_skewed_1",
        "type": "assistant",
        "message": {
            "id": "msg_skewed_1",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": 5000, "output_tokens": 7000,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 90000}
        }
    });
    std::fs::write(dir.join("skewed.jsonl"), format!("{line}\n")).unwrap();

    let plain = faces(&d.claude, now);
    let ahead = faces(skewed.path(), now);

    // The window containing now is the current one in every face.
    let id = plain.status["active_block"]["id"].clone();
    assert!(id.is_string(), "a current window at {now}");
    assert_eq!(ahead.status["active_block"]["id"], id);
    assert_eq!(
        ahead.status["active_block"]["total_tokens"],
        plain.status["active_block"]["total_tokens"]
    );
    assert_eq!(ahead.period["activeBlock"]["id"], id);
    let active = ahead.active["blocks"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{:#}", ahead.active);
    assert_eq!(active[0]["id"], id);
    // Sessions used and period cost as without the response.
    for key in ["sessions_used", "cost_usd", "total_tokens"] {
        assert_eq!(
            ahead.status["period"][key], plain.status["period"][key],
            "{key}"
        );
    }
    assert_eq!(
        ahead.period["period"]["sessions"],
        plain.period["period"]["sessions"]
    );
    assert_eq!(
        ahead.period["period"]["costUSD"],
        plain.period["period"]["costUSD"]
    );
    // The window's alerts are due, the same ones.
    assert!(
        ahead.due.contains("Claude window ends in 25 min"),
        "{}",
        ahead.due
    );
    assert!(ahead.due.contains("Claude idle for"), "{}", ahead.due);
    assert_eq!(ahead.due, plain.due);
    // Reported, not counted.
    assert_eq!(ahead.status["future_entries"]["entries"], 1);
    assert!(plain.status["future_entries"].is_null());
    assert!(
        ahead
            .doctor
            .contains("1 dated in the future, newest at 2026-11-21"),
        "{}",
        ahead.doctor
    );
    assert!(!plain.doctor.contains("dated in the future"));
    assert!(
        ahead
            .frame
            .contains("1 entry dated in the future (newest Sat 02:35)"),
        "{}",
        ahead.frame
    );
    let tokens_line = |f: &str| f.lines().find(|l| l.contains("Tokens")).map(str::to_string);
    assert_eq!(tokens_line(&ahead.frame), tokens_line(&plain.frame));
    // 4 h without a new entry: the screen says idle and projects nothing.
    assert!(
        ahead.frame.contains("idle 4h 0m · nothing projected"),
        "{}",
        ahead.frame
    );
    assert!(!ahead.frame.contains("at this pace"), "{}", ahead.frame);
}
