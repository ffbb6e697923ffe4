//! Notifications through a real D-Bus: a private session bus (`dbus-daemon`
//! with a config of our own, no service activation), a real notification
//! server (`dunst -print` on a private `Xvfb` display), and the real `csm`.
//! What dunst prints is what a user would have seen.
//!
//! Needs `dbus-daemon`, `dbus-send`, `Xvfb` and `dunst` (scripts/test.sh
//! installs them). Without them the tests are skipped, unless `CI` or
//! `CSM_REQUIRE_SYSTEM_TOOLS` is set, where a missing tool fails them.

mod support;

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use claude_session_monitor::synth::{SynthOptions, default_now, generate};
use support::{Sandbox, stdout_ok};

const TOOLS: [&str; 4] = ["dbus-daemon", "dbus-send", "Xvfb", "dunst"];

/// False (after saying so) when a tool is missing and may be; panics when
/// the suite must run everything.
fn tools_present() -> bool {
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = ["CI", "CSM_REQUIRE_SYSTEM_TOOLS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    assert!(
        !required,
        "missing {missing:?}: scripts/test.sh installs them (dbus, dunst, xvfb)"
    );
    eprintln!("SKIPPED: missing {missing:?} (scripts/test.sh installs them)");
    false
}

/// Children killed (and reaped) when dropped, whatever the test did.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A private session bus, and (on request) an X display with dunst on it.
struct Desktop {
    kids: Kids,
    dir: PathBuf,
    address: String,
}

impl Desktop {
    fn bus(dir: &Path) -> Desktop {
        let conf = dir.join("bus.conf");
        let socket = dir.join("bus");
        fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {line:?}");
        Desktop {
            kids: Kids(vec![daemon]),
            dir: dir.to_path_buf(),
            address,
        }
    }

    /// Starts Xvfb and `dunst -print`, and waits until dunst owns the
    /// notification service.
    fn with_dunst(mut self) -> Desktop {
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "640x480x24",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut display = String::new();
        BufReader::new(xvfb.stdout.take().unwrap())
            .read_line(&mut display)
            .unwrap();
        let display = display.trim().to_string();
        assert!(!display.is_empty(), "Xvfb gave no display");
        self.kids.0.push(xvfb);
        let out = fs::File::create(self.dunst_log()).unwrap();
        let home = self.dir.join("dunst-home");
        fs::create_dir_all(&home).unwrap();
        let dunst = Command::new("dunst")
            .arg("-print")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("DISPLAY", format!(":{display}"))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("start dunst");
        self.kids.0.push(dunst);
        until("dunst on the bus", || {
            let o = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ])
                .output()
                .ok()?;
            String::from_utf8_lossy(&o.stdout)
                .contains("boolean true")
                .then_some(())
        });
        self
    }

    fn dunst_log(&self) -> PathBuf {
        self.dir.join("dunst.out")
    }

    /// Notifications dunst printed so far: (appname, summary, body).
    fn shown(&self) -> Vec<(String, String, String)> {
        let text = fs::read_to_string(self.dunst_log()).unwrap_or_default();
        let field = |block: &str, name: &str, next: &str| -> Option<String> {
            let start = block.find(&format!("\t{name}: '"))? + name.len() + 4;
            let end = block[start..].find(&format!("'\n\t{next}: "))? + start;
            Some(block[start..end].to_string())
        };
        text.split("\n}")
            .filter_map(|block| {
                Some((
                    field(block, "appname", "summary")?,
                    field(block, "summary", "body")?,
                    field(block, "body", "icon")?,
                ))
            })
            .collect()
    }

    /// Waits until dunst has printed `n` notifications.
    fn wait_for(&self, n: usize) -> Vec<(String, String, String)> {
        until(&format!("{n} notifications from dunst"), || {
            let s = self.shown();
            (s.len() >= n).then_some(s)
        })
    }
}

fn desktop_config(sb: &Sandbox, extra: &str) {
    fs::create_dir_all(sb.csm_home()).unwrap();
    fs::write(
        sb.csm_home().join("config.toml"),
        format!("{extra}\n[alerts]\ndesktop = true\n"),
    )
    .unwrap();
}

#[test]
fn notify_test_reaches_a_real_notification_server_and_says_when_there_is_none() {
    if !tools_present() {
        return;
    }
    let sb = Sandbox::new();
    fs::create_dir_all(sb.projects()).unwrap();
    desktop_config(&sb, "");
    let bus = Desktop::bus(sb.path());

    // The bus, but nobody serving notifications yet.
    let out = sb
        .cmd()
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .args(["notify", "test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("desktop  FAILED: no notification server on the session bus"),
        "{text}"
    );
    let doctor = stdout_ok(
        sb.cmd()
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .arg("doctor"),
    );
    assert!(doctor.contains("desktop  on, NOT available"), "{doctor}");

    let desk = bus.with_dunst();
    let out = stdout_ok(
        sb.cmd()
            .env("DBUS_SESSION_BUS_ADDRESS", &desk.address)
            .arg("--test-alert"),
    );
    assert!(
        out.contains("desktop  delivered (notification id "),
        "{out}"
    );
    let shown = desk.wait_for(1);
    assert_eq!(
        shown[0],
        (
            "csm".to_string(),
            "csm test notification".to_string(),
            "csm alerts arrive here: 30 min before a window ends, after 10 min without activity, at 80 and 95 % of your limits."
                .to_string()
        )
    );
    let doctor = stdout_ok(
        sb.cmd()
            .env("DBUS_SESSION_BUS_ADDRESS", &desk.address)
            .arg("doctor"),
    );
    assert!(doctor.contains("desktop  on, available: dunst"), "{doctor}");
}

/// A generated history with an active window; that window's end and tokens
/// as `csm blocks` sees them.
fn active_history(sb: &Sandbox) -> (jiff::Timestamp, u64) {
    let mut opts = SynthOptions::new(4, 1 << 20, default_now());
    opts.active = true;
    generate(&sb.claude(), &opts).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&stdout_ok(sb.cmd().args(["blocks", "--json", "--active"]))).unwrap();
    let block = &v["blocks"][0];
    let end = block["endTime"].as_str().unwrap().parse().unwrap();
    (end, block["totalTokens"].as_u64().unwrap())
}

#[test]
fn the_rules_on_a_generated_history_deliver_through_dbus_once() {
    if !tools_present() {
        return;
    }
    let sb = Sandbox::new();
    let (end, tokens) = active_history(&sb);
    // A limit that puts the window at a known share below 80 %.
    let limit = tokens * 2;
    desktop_config(&sb, &format!("token_limit = {limit}"));
    let now = end - jiff::SignedDuration::from_mins(20);
    let hm = end.strftime("%H:%M").to_string();

    let desk = Desktop::bus(sb.path()).with_dunst();
    let check = || {
        stdout_ok(
            sb.cmd()
                .env("DBUS_SESSION_BUS_ADDRESS", &desk.address)
                .env("CSM_NOW", now.to_string())
                .args(["--timezone", "UTC", "notify", "check"]),
        )
    };
    let out = check();
    // `notify check` prints each alert's title, its body indented by four
    // spaces, then each backend's result indented by two.
    let mut sent: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(body) = line.strip_prefix("    ") {
            let last = sent.last_mut().expect("a body after a title");
            if !last.1.is_empty() {
                last.1.push('\n');
            }
            last.1.push_str(body);
        } else if !line.starts_with(' ') && !line.is_empty() {
            sent.push((line.to_string(), String::new()));
        }
    }
    assert!(!sent.is_empty(), "{out}");
    let shown = desk.wait_for(sent.len());
    let got: Vec<(String, String)> = shown
        .iter()
        .map(|(_, s, b)| (s.clone(), b.clone()))
        .collect();
    assert_eq!(got, sent, "dunst shows what csm sent, in order");
    let ending = shown
        .iter()
        .find(|(_, s, _)| s.starts_with("Claude window ends"))
        .unwrap_or_else(|| panic!("no window-ending alert in {shown:?}"));
    assert_eq!(ending.0, "csm");
    assert_eq!(
        ending.1,
        format!("Claude window ends in 20 min ({hm}) — 50 % used")
    );
    assert_eq!(
        ending.2,
        format!(
            "Finish or save what you are doing: the window resets at {hm}, and your next prompt after that starts a new one."
        )
    );

    // A second evaluation (a restarted daemon would do the same) sends nothing.
    assert_eq!(check().trim(), "nothing due");
    // A marker notification arrives after anything the second check could
    // have sent: dunst shows exactly one more.
    stdout_ok(
        sb.cmd()
            .env("DBUS_SESSION_BUS_ADDRESS", &desk.address)
            .args(["notify", "test", "--title", "marker"]),
    );
    let after = desk.wait_for(shown.len() + 1);
    assert_eq!(after.len(), shown.len() + 1);
    assert_eq!(after.last().unwrap().1, "marker");
}

/// The daemon evaluates the rules after its updates: the window-ending alert
/// reaches the notification server once, the snapshot lists it, and a
/// restarted daemon does not send it again.
#[test]
fn the_daemon_delivers_through_dbus_once_across_restarts() {
    if !tools_present() {
        return;
    }
    let sb = Sandbox::new();
    let (end, tokens) = active_history(&sb);
    desktop_config(&sb, &format!("token_limit = {}", tokens * 2));
    let now = end - jiff::SignedDuration::from_mins(20);
    let hm = end.strftime("%H:%M").to_string();
    let desk = Desktop::bus(sb.path()).with_dunst();
    let snapshot = sb.csm_home().join("monitor_data.json");

    let daemon = || -> Child {
        let mut c = sb.process(&sb.csm_home());
        c.env("DBUS_SESSION_BUS_ADDRESS", &desk.address)
            .env("CSM_NOW", now.to_string())
            .args(["--timezone", "UTC", "daemon", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.spawn().unwrap()
    };
    let stop = |mut child: Child| {
        let pid = child.id() as i32;
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        assert!(child.wait().unwrap().success());
    };

    let first = daemon();
    let shown = desk.wait_for(1);
    let ending = shown
        .iter()
        .find(|(_, s, _)| s.starts_with("Claude window ends"))
        .unwrap_or_else(|| panic!("no window-ending alert in {shown:?}"));
    assert_eq!(
        ending.1,
        format!("Claude window ends in 20 min ({hm}) — 50 % used")
    );
    // The snapshot written after that update lists it (with whatever else
    // was due, the idle alert here); dunst shows each of them.
    let listed = until("the alert in the snapshot", || {
        let text = fs::read_to_string(&snapshot).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let alerts = v["alerts"].as_array()?;
        alerts
            .iter()
            .any(|a| a["title"].as_str() == Some(ending.1.as_str()))
            .then_some(alerts.len())
    });
    let shown = desk.wait_for(listed);
    stop(first);

    // A restarted daemon writes its snapshot again but sends nothing new: a
    // marker sent after its first update is the only new notification.
    fs::remove_file(&snapshot).unwrap();
    let second = daemon();
    until("the restarted daemon's snapshot", || {
        snapshot.exists().then_some(())
    });
    stop(second);
    stdout_ok(
        sb.cmd()
            .env("DBUS_SESSION_BUS_ADDRESS", &desk.address)
            .args(["notify", "test", "--title", "marker"]),
    );
    let after = desk.wait_for(shown.len() + 1);
    assert_eq!(after.len(), shown.len() + 1, "{after:?}");
    assert_eq!(after.last().unwrap().1, "marker");
}
