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
    pub status: i32,
    pub max_rss_kib: u64,
}

/// Runs `cmd` to the end (stdout and stderr to files the caller chose) and
/// reads the kernel's account of its peak resident set size (wait4's
/// rusage), which counts every byte the process ever had resident.
pub fn run_measured(cmd: &mut Command) -> Measured {
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unwaited child; the pointers are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    // Reaped above; dropping a Child neither waits nor kills.
    drop(child);
    Measured {
        status,
        max_rss_kib: usage.ru_maxrss as u64,
    }
}

impl Measured {
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
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
