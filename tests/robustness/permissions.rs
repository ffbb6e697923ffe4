//! Files csm writes are private: the store (with its WAL, shared
//! memory and lock files), config, prices and logs are 0600, directories
//! 0700, whatever the umask. Every command runs here with umask 000, so a
//! file not created private on purpose would come out world-writable.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Sandbox, small_history};
use crate::tools::{assert_private_tree, serve_prices, with_umask};

/// Every command that writes below the base dir, in an order that makes
/// each write something; the ones that need stdin or a signal (`statusline`,
/// `hook`, `daemon run`) are run by `claude_and_daemon`.
fn writing_commands(prices_url: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["blocks", "--json"]),
        v(&["daily", "--json"]),
        v(&["period", "--json"]),
        v(&["config", "set", "start_day", "3"]),
        v(&["config", "set", "alerts.limit_thresholds", "[70, 90]"]),
        v(&["pricing", "update", "--url", prices_url]),
        v(&["db", "rebuild"]),
        v(&["db", "stats"]),
        v(&["doctor", "--json"]),
        v(&["monitor", "--once"]),
        v(&["setup", "claude", "--dry-run"]),
        v(&["setup", "claude"]),
        v(&["status"]),
    ]
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/claude")
            .join(name),
    )
    .unwrap()
}

/// `csm args` with umask 000 and `input` on stdin; must succeed.
fn run_input(sb: &Sandbox, home: &Path, args: &[&str], input: &[u8]) {
    use std::io::Write;
    let mut cmd: Command = sb.process(home);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = with_umask(&mut cmd, 0o000).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "csm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Claude Code's callers, `notify test` (no session bus here: it may fail,
/// but what it writes is private) and the daemon until its first snapshot,
/// stopped with SIGTERM.
fn claude_and_daemon(sb: &Sandbox, home: &Path) {
    run_input(
        sb,
        home,
        &["statusline"],
        &fixture("statusline-with-rate-limits.json"),
    );
    let hook = fixture("hook-events.jsonl");
    run_input(
        sb,
        home,
        &["hook"],
        hook.split(|b| *b == b'\n').next().unwrap(),
    );

    let mut cmd = sb.process(home);
    cmd.args(["notify", "test"]);
    with_umask(&mut cmd, 0o000).output().unwrap();

    let mut cmd = sb.process(home);
    cmd.env_remove("CSM_NOW")
        .args(["daemon", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut daemon = with_umask(&mut cmd, 0o000).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !home.join("monitor_data.json").exists() {
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(Instant::now() < deadline, "no snapshot from the daemon");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success(), "daemon after SIGTERM");
}

fn run(sb: &Sandbox, home: &Path, args: &[String]) {
    let mut cmd: Command = sb.process(home);
    cmd.args(args);
    let out = with_umask(&mut cmd, 0o000).output().unwrap();
    assert!(
        out.status.success(),
        "csm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn everything_csm_writes_is_private_even_with_umask_000() {
    let sb = Sandbox::new();
    small_history(&sb);
    // A base dir whose parents do not exist yet: they are created private too.
    let nested = sb.path().join("deep");
    let home = nested.join("er").join("csm");
    // Claude Code's settings file is the user's: `setup claude` keeps its
    // mode rather than making it csm's 0600 or the umask's 0666.
    let settings = sb.claude().join("settings.json");
    std::fs::write(&settings, "{\"model\": \"opus\"}\n").unwrap();
    std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o640)).unwrap();
    for args in writing_commands(&serve_prices()) {
        run(&sb, &home, &args);
    }
    claude_and_daemon(&sb, &home);
    assert_private_tree(&nested, &[]);
    let files = assert_private_tree(&home, &[]);
    let mode = std::fs::metadata(&settings).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640, "settings.json mode after setup claude");
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(
        text.contains("statusLine") && text.contains("opus"),
        "{text}"
    );
    for want in [
        "history.db",
        "config.toml",
        "pricing.json",
        "monitor_data.json",
    ] {
        assert!(files.iter().any(|f| f == want), "no {want} in {files:?}");
    }
}
