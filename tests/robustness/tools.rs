//! System tools and process plumbing the robustness tests share.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Is `tool` on PATH? When it is not, a test skips itself locally but fails
/// in CI (`CI` or `CSM_REQUIRE_SYSTEM_TOOLS` set), where scripts/test.sh
/// installs it.
pub fn have(tool: &str, why: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let required = ["CI", "CSM_REQUIRE_SYSTEM_TOOLS"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        assert!(
            !required,
            "{tool} is missing ({why}); scripts/test.sh installs it"
        );
        eprintln!("SKIPPED: {tool} is missing ({why})");
    }
    found
}

pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// The uid and gid of `nobody` (65534 on Debian and most Linux systems).
pub const NOBODY: u32 = 65534;

/// A copy of the csm binary any user can run (the build directory may sit
/// below a home only root can enter).
pub fn public_csm(dir: &Path) -> PathBuf {
    let to = dir.join("csm-bin");
    fs::copy(env!("CARGO_BIN_EXE_csm"), &to).unwrap();
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
    to
}

/// Chowns `path` and everything below it to `uid:gid` (no symlinks followed).
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// A finished child with its peak resident memory.
pub struct Measured {
    pub success: bool,
    pub max_rss_kib: u64,
}

/// Runs `cmd` to the end under GNU time (`/usr/bin/time -f %M`) and reads
/// the peak resident set size the kernel accounted to it. Not wait4 from
/// this process: a child spawned from the test process inherits the test
/// process's high-water mark through vfork and exec, which would measure the
/// test harness; time is a small process of its own.
///
/// Without GNU time (outside CI only, see [`have`]) the command runs
/// unmeasured and the peak reads 0.
pub fn run_measured(cmd: &Command, stdout: fs::File, stderr: fs::File) -> Measured {
    let report = tempfile::NamedTempFile::new().unwrap();
    let measure = have("/usr/bin/time", "measures peak memory");
    let mut timed = if measure {
        let mut t = Command::new("/usr/bin/time");
        t.args(["-f", "%M", "-o"]).arg(report.path());
        t.arg(cmd.get_program());
        t
    } else {
        Command::new(cmd.get_program())
    };
    timed.args(cmd.get_args()).env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let status = timed
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .expect("run /usr/bin/time");
    if !measure {
        return Measured {
            success: status.success(),
            max_rss_kib: 0,
        };
    }
    let text = fs::read_to_string(report.path()).unwrap();
    let max_rss_kib = text
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak memory from /usr/bin/time: {text:?}"));
    Measured {
        success: status.success(),
        max_rss_kib,
    }
}

/// Serves one HTTP response with a minimal LiteLLM price list on 127.0.0.1
/// (for `csm pricing update --url`, the one command that may use the
/// network); returns the URL. The server thread ends after one request or
/// 30 s without one.
pub fn serve_prices() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let body = serde_json::json!({
        crate::support::SONNET: {
            "input_cost_per_token": 3e-6,
            "output_cost_per_token": 1.5e-5,
            "cache_creation_input_token_cost": 3.75e-6,
            "cache_read_input_token_cost": 3e-7,
            "litellm_provider": "anthropic",
            "mode": "chat"
        }
    })
    .to_string();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(_) => return,
            }
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    format!("http://127.0.0.1:{port}/prices.json")
}

/// Makes `cmd`'s process start with umask `mask`.
pub fn with_umask(cmd: &mut Command, mask: u32) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: umask is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask as libc::mode_t);
            Ok(())
        })
    }
}

/// Asserts every directory at and below `dir` is 0700 and every file 0600
/// (`except` names files that are meant to be shared), and returns the
/// files' names relative to `dir`.
pub fn assert_private_tree(dir: &Path, except: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mode = fs::symlink_metadata(&d).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "directory {} is {mode:o}", d.display());
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            // A file may go away while we look (SQLite's WAL when its last
            // connection closes).
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            assert!(meta.is_file(), "{rel}: not a regular file");
            files.push(rel.clone());
            if except.contains(&rel.as_str()) {
                continue;
            }
            let mode = meta.permissions().mode() & 0o7777;
            assert_eq!(mode, 0o600, "{rel} is {mode:o}");
        }
    }
    files.sort();
    files
}
