//! The live dashboard sends alerts in-process while no daemon runs, rings
//! the bell and shows the alert; with a daemon running it leaves sending to
//! the daemon. Real `csm monitor` in a private tmux server; alerts go to a
//! `notify_command` script that records them.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use support::{Sandbox, small_history};

#[path = "support/tmux.rs"]
mod tmux;
use tmux::Tmux;

fn tmux_present() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let required = ["CI", "CSM_REQUIRE_SYSTEM_TOOLS"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        assert!(!required, "tmux is missing (scripts/test.sh installs it)");
        eprintln!("SKIPPED: tmux is not installed (scripts/test.sh installs it)");
    }
    ok
}

/// A history whose window (14:00–19:00Z) has been idle since 15:35 at the
/// tests' 16:40, and a config whose only backend appends each title to
/// `record.sh.out`. Returns the script the pane runs and that file.
fn setup(sb: &Sandbox) -> (PathBuf, PathBuf) {
    small_history(sb);
    let record = sb.path().join("record.sh");
    fs::write(&record, "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \"$0.out\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&record, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::create_dir_all(sb.csm_home()).unwrap();
    fs::write(
        sb.csm_home().join("config.toml"),
        format!(
            "token_limit = 1000000\n[alerts]\ndesktop = false\nnotify_command = [{}]\n",
            serde_json::to_string(record.to_str().unwrap()).unwrap()
        ),
    )
    .unwrap();
    let script = sb.path().join("run.sh");
    let q = |p: &Path| format!("'{}'", p.display());
    fs::write(
        &script,
        format!(
            "export HOME={} CSM_HOME={} CLAUDE_CONFIG_DIR={} CSM_NOW=2026-11-20T16:40:00Z TZ=UTC\n\
             exec {} --timezone UTC monitor --refresh 1\n",
            q(&sb.home()),
            q(&sb.csm_home()),
            q(&sb.claude()),
            q(Path::new(env!("CARGO_BIN_EXE_csm"))),
        ),
    )
    .unwrap();
    (script, sb.path().join("record.sh.out"))
}

const IDLE: &str = "Claude idle for 1h 05m — 2h 20m left in this window";

#[test]
fn the_dashboard_sends_alerts_while_no_daemon_runs() {
    if !tmux_present() {
        return;
    }
    let sb = Sandbox::new();
    let (script, out) = setup(&sb);
    let tmux = Tmux::start(&script);
    let pane = tmux.wait_for("the alert in the status line", |p| {
        p.contains(&format!("alert: {IDLE}"))
    });
    assert!(pane.contains("Sessions "), "{pane}");
    assert_eq!(fs::read_to_string(&out).unwrap(), format!("{IDLE}\n"));
    // The terminal bell rang (tmux flags the window).
    assert_eq!(
        tmux.ok(&["display-message", "-p", "-t", "csm", "#{window_bell_flag}"])
            .trim(),
        "1"
    );
    tmux.ok(&["send-keys", "-t", "csm", "q"]);
}

/// A daemon process, killed when the test is done with it.
struct DaemonProcess(Child);

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[cfg(target_os = "linux")]
fn with_a_daemon_running_the_dashboard_sends_nothing() {
    if !tmux_present() {
        return;
    }
    let sb = Sandbox::new();
    let (script, out) = setup(&sb);
    // A real daemon for this base directory, with every alert switched off
    // so whatever reaches the recorder comes from the dashboard.
    let quiet = sb.path().join("daemon.toml");
    fs::write(&quiet, "token_limit = 1000000\n[alerts]\ndesktop = false\n").unwrap();
    let daemon = DaemonProcess(
        Command::new(env!("CARGO_BIN_EXE_csm"))
            .env("CSM_HOME", sb.csm_home())
            .env("HOME", sb.home())
            .env("CLAUDE_CONFIG_DIR", sb.claude())
            .env("CSM_NOW", "2026-11-20T16:40:00Z")
            .env("TZ", "UTC")
            .arg("--config")
            .arg(&quiet)
            .args(["daemon", "run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let running = || {
        Command::new(env!("CARGO_BIN_EXE_csm"))
            .env("CSM_HOME", sb.csm_home())
            .env("HOME", sb.home())
            .args(["monitor", "--check-daemon"])
            .output()
            .unwrap()
            .status
            .success()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not start"
        );
        std::thread::yield_now();
    }
    // Its first snapshot is there before the dashboard starts.
    let snapshot = sb.csm_home().join("monitor_data.json");
    while !snapshot.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot from the daemon"
        );
        std::thread::yield_now();
    }

    let tmux = Tmux::start(&script);
    // The first frame comes after the first evaluation: by then an alert
    // would have been sent.
    let pane = tmux.wait_for("the dashboard", |p| p.contains("Sessions "));
    assert!(!pane.contains("alert:"), "{pane}");
    assert!(!out.exists(), "the dashboard sent an alert");
    assert_eq!(
        tmux.ok(&["display-message", "-p", "-t", "csm", "#{window_bell_flag}"])
            .trim(),
        "0",
        "no bell"
    );

    // The daemon goes away: the dashboard takes over on its next refresh.
    drop(daemon);
    tmux.wait_for("the alert once the daemon is gone", |p| {
        p.contains(&format!("alert: {IDLE}"))
    });
    assert_eq!(fs::read_to_string(&out).unwrap(), format!("{IDLE}\n"));
    tmux.ok(&["send-keys", "-t", "csm", "q"]);
}
