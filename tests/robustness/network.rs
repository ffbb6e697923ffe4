//! No network access anywhere except `csm pricing update`.
//!
//! Each command runs under `strace -f -e trace=socket,connect`, which logs
//! every socket the process or any of its threads and children opens; an
//! internet socket (AF_INET, AF_INET6) fails the test. Local sockets
//! (AF_UNIX: the C library's name service cache, D-Bus for desktop
//! notifications) are not network access. `pricing update` against a local
//! server is the positive control: it proves the trace sees a connection
//! when there is one.
//!
//! Why strace rather than a network namespace without interfaces: a run in
//! an empty namespace only fails when csm *needs* the network, and a command
//! that tolerates a failed connection would pass; the trace catches the
//! attempt itself. It also needs only ptrace, which containers allow by
//! default, where creating a namespace needs privileges CI may not have.

use std::path::Path;

use crate::support::{Sandbox, small_history};
use crate::tools::{have, serve_prices};

/// Every command that exists today, each as a user would run it; the ones
/// that need stdin or a signal (`statusline`, `hook`, `daemon run`) are run
/// after these.
const COMMANDS: &[&[&str]] = &[
    &["blocks"],
    &["blocks", "--json"],
    &["daily", "--json"],
    &["weekly", "--json"],
    &["monthly"],
    &["session", "--json"],
    &["--no-store", "daily", "--json"],
    &["--recalculate", "blocks", "--json"],
    &["period", "--json"],
    &["doctor"],
    &["doctor", "--json"],
    &["db", "stats", "--json"],
    &["db", "rebuild"],
    &["pricing", "show", "--json"],
    &["config", "show"],
    &["config", "path"],
    &["config", "set", "start_day", "5"],
    &["monitor", "--once"],
    // Exits 1: no daemon runs here.
    &["monitor", "--check-daemon"],
    &["completions", "zsh"],
    &["--version"],
    &["--help"],
    &["setup", "claude", "--dry-run"],
    &["setup", "claude"],
    &["status"],
    &["status", "--format", "json"],
    // No session bus here: it may fail, but must not go online.
    &["notify", "test"],
];

/// The internet sockets a traced run of `csm args` opened or connected,
/// and its exit code (stdin closed, output discarded).
fn inet_calls(sb: &Sandbox, home: &Path, args: &[&str]) -> (Vec<String>, Option<i32>) {
    inet_calls_with(sb, home, args, Input::Closed)
}

/// What a traced run gets: closed stdin, a payload, or a SIGTERM once the
/// daemon's snapshot exists.
enum Input<'a> {
    Closed,
    Stdin(&'a [u8]),
    TermAfterSnapshot,
}

fn inet_calls_with(
    sb: &Sandbox,
    home: &Path,
    args: &[&str],
    input: Input,
) -> (Vec<String>, Option<i32>) {
    use std::io::Write;
    use std::process::Stdio;
    let log = sb.path().join("strace.log");
    let mut cmd = sb.clean_command("strace", home);
    cmd.args(["-f", "-qq", "-e", "trace=execve,socket,connect", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_csm"))
        .args(args)
        .env("CLAUDE_CONFIG_DIR", sb.claude())
        .stdin(match input {
            Input::Stdin(_) => Stdio::piped(),
            _ => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if matches!(input, Input::TermAfterSnapshot) {
        // The daemon sleeps on the real clock.
        cmd.env_remove("CSM_NOW");
    }
    let mut child = cmd.spawn().expect("run strace");
    match input {
        Input::Stdin(data) => child.stdin.take().unwrap().write_all(data).unwrap(),
        Input::TermAfterSnapshot => {
            let snapshot = home.join("monitor_data.json");
            let _ = std::fs::remove_file(&snapshot);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !snapshot.exists() {
                assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
                assert!(
                    std::time::Instant::now() < deadline,
                    "no snapshot from the traced daemon"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // The signal goes to csm itself (strace's child); strace then
            // exits with csm's status.
            let children = format!("/proc/{0}/task/{0}/children", child.id());
            let csm: i32 = std::fs::read_to_string(&children)
                .unwrap()
                .split_whitespace()
                .next()
                .expect("strace runs csm")
                .parse()
                .unwrap();
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(csm, libc::SIGTERM) };
        }
        Input::Closed => {}
    }
    let out = child.wait_with_output().expect("run strace");
    let trace = std::fs::read_to_string(&log).expect("strace log");
    // The exec of csm itself shows the trace worked.
    assert!(
        trace.contains("execve("),
        "strace did not trace `csm {}`: {trace}",
        args.join(" ")
    );
    let inet = trace
        .lines()
        .filter(|l| l.contains("AF_INET") || l.contains("AF_PACKET"))
        .map(str::to_string)
        .collect();
    (inet, out.status.code())
}

#[test]
fn no_command_but_pricing_update_opens_a_network_socket() {
    if !have("strace", "traces the sockets csm opens") {
        return;
    }
    let sb = Sandbox::new();
    small_history(&sb);
    let home = sb.path().join("csm");

    // The control: the one command that downloads is seen doing it.
    let url = serve_prices();
    let (calls, code) = inet_calls(&sb, &home, &["pricing", "update", "--url", &url]);
    assert_eq!(code, Some(0), "pricing update against the local server");
    assert!(
        calls
            .iter()
            .any(|l| l.contains("connect(") && l.contains("127.0.0.1")),
        "the trace missed pricing update's connection: {calls:?}"
    );

    for args in COMMANDS {
        let (calls, code) = inet_calls(&sb, &home, args);
        let want = if args.contains(&"--check-daemon") {
            1
        } else {
            0
        };
        if args != &["notify", "test"] {
            assert_eq!(code, Some(want), "`csm {}` under strace", args.join(" "));
        }
        assert!(
            calls.is_empty(),
            "`csm {}` opened internet sockets:\n{}",
            args.join(" "),
            calls.join("\n")
        );
    }

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude");
    let status = std::fs::read(root.join("statusline-with-rate-limits.json")).unwrap();
    let events = std::fs::read(root.join("hook-events.jsonl")).unwrap();
    let event = events.split(|b| *b == b'\n').next().unwrap();
    let runs: [(&[&str], Input); 3] = [
        (&["statusline"], Input::Stdin(&status)),
        (&["hook"], Input::Stdin(event)),
        (&["daemon", "run"], Input::TermAfterSnapshot),
    ];
    for (args, input) in runs {
        let (calls, code) = inet_calls_with(&sb, &home, args, input);
        assert_eq!(code, Some(0), "`csm {}` under strace", args.join(" "));
        assert!(
            calls.is_empty(),
            "`csm {}` opened internet sockets:\n{}",
            args.join(" "),
            calls.join("\n")
        );
    }
}
