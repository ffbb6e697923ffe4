//! End to end: the real `csm monitor` in a private tmux server, on a generated
//! history with an active window. Reads the pane, resizes the window, quits
//! with `q` and checks the terminal was restored.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use claude_session_monitor::report::format::thousands;
use claude_session_monitor::synth::{SynthOptions, default_now, generate};

const NOW: &str = "2026-11-20T16:40:00Z";

#[path = "support/tmux.rs"]
mod tmux;
use tmux::Tmux;

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Dirs {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    csm_home: PathBuf,
    claude: PathBuf,
}

fn history() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let csm_home = tmp.path().join("csm");
    let claude = tmp.path().join("claude");
    std::fs::create_dir_all(&home).unwrap();
    let mut opts = SynthOptions::new(4, 2 << 20, default_now());
    opts.active = true;
    generate(&claude, &opts).unwrap();
    Dirs {
        _tmp: tmp,
        home,
        csm_home,
        claude,
    }
}

/// What `csm blocks --json --active` reports for the same data and clock.
fn active_block_tokens(d: &Dirs) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_csm"))
        .args(["blocks", "--json", "--active"])
        .env("HOME", &d.home)
        .env("CSM_HOME", &d.csm_home)
        .env("CLAUDE_CONFIG_DIR", &d.claude)
        .env("CSM_NOW", NOW)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "one active block expected");
    blocks[0]["totalTokens"].as_u64().unwrap()
}

/// The shell script the pane runs: records csm's pid (the inner shell
/// `exec`s it), checks the tty settings before and after, prints the status.
fn script(d: &Dirs, path: &Path, pid_file: &Path) {
    let q = |p: &Path| format!("'{}'", p.display());
    let text = format!(
        "export HOME={home} CSM_HOME={csm} CLAUDE_CONFIG_DIR={claude} CSM_NOW={NOW}\n\
         unset NO_COLOR\n\
         export DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/csm-test-no-bus\n\
         before=$(stty -g)\n\
         sh -c 'echo $$ > {pid}; exec {bin} --timezone Europe/Warsaw monitor --refresh 1'\n\
         rc=$?\n\
         [ \"$before\" = \"$(stty -g)\" ] && echo TTY-RESTORED\n\
         echo EXITED=$rc\n",
        home = q(&d.home),
        csm = q(&d.csm_home),
        claude = q(&d.claude),
        pid = pid_file.display(),
        bin = Path::new(env!("CARGO_BIN_EXE_csm")).display(),
    );
    std::fs::write(path, text).unwrap();
}

/// Starts the dashboard in a fresh tmux server and waits until it shows the
/// active window.
fn start(d: &Dirs, tokens: &str) -> (Tmux, PathBuf) {
    let run = d.home.join("run.sh");
    let pid_file = d.home.join("csm.pid");
    script(d, &run, &pid_file);
    let tmux = Tmux::start(&run);
    tmux.wait_for("the dashboard", |p| {
        p.contains(tokens) && p.contains("left · resets") && p.contains("Sessions ")
    });
    (tmux, pid_file)
}

/// After csm exited: status 0, tty settings, normal screen, cursor, prompt.
fn assert_restored(tmux: &Tmux) {
    let after = tmux.wait_for("the program to exit", |p| p.contains("EXITED="));
    assert!(after.contains("EXITED=0"), "{after}");
    assert!(
        after.contains("TTY-RESTORED"),
        "stty settings differ:\n{after}"
    );
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "left the alternate screen"
    );
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor visible");
    assert!(
        !after.contains("Tokens"),
        "dashboard left on the normal screen:\n{after}"
    );
    assert!(after.contains("$ "), "shell prompt back:\n{after}");
}

#[test]
fn monitor_in_tmux_shows_the_window_resizes_and_restores_the_terminal() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let d = history();
    let tokens = thousands(active_block_tokens(&d));
    let (tmux, _) = start(&d, &tokens);
    let pane = tmux.pane();
    assert!(pane.contains("17:40:00"), "clock in Europe/Warsaw:\n{pane}");
    assert!(pane.contains("q quit · r re-read usage"), "{pane}");
    assert_eq!(tmux.format("#{alternate_on}"), "1", "alternate screen");

    // Smaller window: redrawn at 60 columns with the narrow key hints.
    tmux.ok(&["resize-window", "-t", "csm", "-x", "60", "-y", "15"]);
    let small = tmux.wait_for("the 60x15 redraw", |p| {
        p.contains("q quit · r re-read ·") && p.contains("Tokens") && p.contains("% used")
    });
    assert!(small.lines().all(|l| l.chars().count() <= 60), "{small}");
    assert!(small.contains("Sessions "), "{small}");
    // And back up again.
    tmux.ok(&["resize-window", "-t", "csm", "-x", "100", "-y", "30"]);
    tmux.wait_for("the 100x30 redraw", |p| {
        p.contains("q quit · r re-read usage")
    });

    tmux.ok(&["send-keys", "-t", "csm", "q"]);
    assert_restored(&tmux);
}

#[test]
fn sigterm_restores_the_terminal_too() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let d = history();
    let tokens = thousands(active_block_tokens(&d));
    let (tmux, pid_file) = start(&d, &tokens);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let status = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_restored(&tmux);
}

/// Whether process `pid` is still there.
fn alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
        || Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Waits (bounded) for `pid` to exit; false when it is still there.
fn exits(pid: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A dashboard on the generated history, and its pid.
fn running_dashboard() -> (Dirs, Tmux, String) {
    let d = history();
    let tokens = thousands(active_block_tokens(&d));
    let (tmux, pid_file) = start(&d, &tokens);
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(alive(&pid));
    (d, tmux, pid)
}

/// Closing the terminal (`tmux kill-session`: the pane's pty goes away and
/// the shell's group gets SIGHUP) ends the dashboard instead of leaving it
/// spinning on a terminal that is gone.
#[test]
fn the_dashboard_exits_when_its_terminal_goes_away() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let (_d, tmux, pid) = running_dashboard();
    tmux.ok(&["kill-session", "-t", "csm"]);
    // Generous for a loaded CI machine: the figure (within 1 s) is measured
    // by scripts/monitor-bench.py.
    assert!(
        exits(&pid, Duration::from_secs(10)),
        "csm {pid} outlived its terminal"
    );
}

/// A terminal that is gone and a SIGTERM on top: whichever the dashboard
/// sees first, it exits.
#[test]
fn sigterm_ends_a_dashboard_whose_terminal_is_gone() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let (_d, tmux, pid) = running_dashboard();
    tmux.ok(&["kill-server"]);
    // Already gone is fine too (kill then fails).
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        exits(&pid, Duration::from_secs(10)),
        "csm {pid} ignored SIGTERM"
    );
}

/// With a daemon running, the dashboard shows the daemon's snapshot (title
/// `from the daemon v…`), follows it when a transcript grows, and computes in-process
/// again once the daemon stops.
#[test]
fn dashboard_follows_the_daemon_and_falls_back_when_it_stops() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let d = history();
    let tokens = active_block_tokens(&d);
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_csm"))
        .args(["daemon", "run"])
        .env("HOME", &d.home)
        .env("CSM_HOME", &d.csm_home)
        .env("CLAUDE_CONFIG_DIR", &d.claude)
        .env("CSM_NOW", NOW)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let snapshot = d.csm_home.join("monitor_data.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !snapshot.exists() {
        assert!(Instant::now() < deadline, "no snapshot from the daemon");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (tmux, _) = start(&d, &thousands(tokens));
    tmux.wait_for("the daemon as the data source", |p| {
        p.contains("from the daemon v")
    });

    // A new line one minute before "now" joins the active window.
    let dir = d.claude.join("projects").join("-home-dev-live");
    std::fs::create_dir_all(&dir).unwrap();
    let line = serde_json::json!({
        "timestamp": "2026-11-20T16:39:00.000Z",
        "sessionId": "live",
        "requestId": "req_live_1",
        "type": "assistant",
        "message": {
            "id": "msg_live_1",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": 1234, "output_tokens": 0,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }
    });
    std::fs::write(dir.join("live.jsonl"), format!("{line}\n")).unwrap();
    let grown = thousands(tokens + 1234);
    tmux.wait_for("the appended line", |p| p.contains(&grown));

    // The daemon stops: the dashboard carries on in-process.
    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(daemon.wait().unwrap().success());
    tmux.wait_for("the in-process source", |p| {
        p.contains("live from transcripts") && p.contains(&grown)
    });
    tmux.ok(&["send-keys", "-t", "csm", "q"]);
    assert_restored(&tmux);
}

/// With two accounts configured the dashboard shows one, named in the
/// title, and `a` switches to the other (its own figures).
#[test]
fn a_switches_the_account_the_dashboard_shows() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let d = history();
    let other = d.home.join("other-claude");
    let mut opts = SynthOptions::new(9, 1 << 20, default_now());
    opts.active = true;
    generate(&other, &opts).unwrap();
    std::fs::create_dir_all(&d.csm_home).unwrap();
    std::fs::write(
        d.csm_home.join("config.toml"),
        format!(
            "[[accounts]]\nname = \"one\"\nclaude_dir = \"{}\"\n\
             [[accounts]]\nname = \"two\"\nclaude_dir = \"{}\"\n",
            d.claude.display(),
            other.display()
        ),
    )
    .unwrap();
    let tokens = thousands(active_block_tokens(&d));
    let (tmux, _) = start(&d, &tokens);
    let first = tmux.wait_for("account one", |p| p.contains("csm · one"));
    assert!(first.contains("a next account"), "{first}");
    tmux.ok(&["send-keys", "-t", "csm", "a"]);
    let second = tmux.wait_for("account two", |p| {
        p.contains("csm · two") && p.contains("Tokens")
    });
    assert!(
        !second.contains(&format!("Tokens   {tokens} ")),
        "two's own figures:\n{second}"
    );
    tmux.ok(&["send-keys", "-t", "csm", "a"]);
    tmux.wait_for("back to account one", |p| {
        p.contains("csm · one") && p.contains(&tokens)
    });
    tmux.ok(&["send-keys", "-t", "csm", "q"]);
    assert_restored(&tmux);
}
