//! One daemon per base directory: an exclusive lock on `<base>/daemon.lock`
//! held for the daemon's life, and `<base>/daemon.pid` for people and tools.
//!
//! The lock, not the pid file, says whether a daemon runs: the kernel drops
//! it when the process dies however it dies, so a stale pid file (or a pid
//! reused by another program) never counts as a live daemon.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const LOCK_FILE: &str = "daemon.lock";
pub const PID_FILE: &str = "daemon.pid";

/// How long a starting daemon waits for the lock: a client checking for a
/// daemon holds it (shared) for an instant.
const ACQUIRE_FOR: Duration = Duration::from_secs(2);

/// The running daemon's claim on its base directory; released on drop.
#[derive(Debug)]
pub struct Instance {
    _lock: File,
    pid_path: PathBuf,
    pid: u32,
}

#[derive(Debug)]
pub enum Acquired {
    Acquired(Instance),
    /// Another daemon holds the base directory (its pid when known).
    Held {
        pid: Option<u32>,
    },
}

impl Instance {
    /// Takes the base directory for this process, or says who has it.
    pub fn acquire(base_dir: &Path) -> io::Result<Acquired> {
        crate::fsutil::create_private_dir(base_dir)?;
        let lock_path = base_dir.join(LOCK_FILE);
        crate::fsutil::touch_private(&lock_path)?;
        let lock = OpenOptions::new().append(true).open(&lock_path)?;
        let deadline = Instant::now() + ACQUIRE_FOR;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Ok(Acquired::Held {
                        pid: read_pid(base_dir),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
        let pid = std::process::id();
        let pid_path = base_dir.join(PID_FILE);
        crate::fsutil::write_atomic(&pid_path, format!("{pid}\n").as_bytes(), 0o600)?;
        Ok(Acquired::Acquired(Instance {
            _lock: lock,
            pid_path,
            pid,
        }))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Only our own pid file: never one a newer daemon wrote.
        let ours = std::fs::read_to_string(&self.pid_path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.pid_path);
        }
    }
}

/// Whether a daemon owns a base directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Running { pid: Option<u32> },
    Stopped,
}

/// Asks the lock, without ever creating files: a shared lock that cannot be
/// had means a daemon holds the exclusive one.
pub fn probe(base_dir: &Path) -> Liveness {
    let Ok(f) = File::open(base_dir.join(LOCK_FILE)) else {
        return Liveness::Stopped;
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            Liveness::Stopped
        }
        Err(TryLockError::WouldBlock) => Liveness::Running {
            pid: read_pid(base_dir),
        },
        // A file system without locks: fall back to the pid file alone.
        Err(TryLockError::Error(_)) => match read_pid(base_dir) {
            Some(pid) if process_exists(pid) => Liveness::Running { pid: Some(pid) },
            _ => Liveness::Stopped,
        },
    }
}

pub fn read_pid(base_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(base_dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    crate::sys::process_exists(pid)
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instance_per_base_dir_and_the_lock_is_the_truth() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(dir.path()), Liveness::Stopped);
        let Acquired::Acquired(first) = Instance::acquire(dir.path()).unwrap() else {
            panic!("first acquire must succeed");
        };
        assert_eq!(
            probe(dir.path()),
            Liveness::Running {
                pid: Some(std::process::id())
            }
        );
        // A second claim (another open file description, as another process
        // would have) is refused, naming the holder.
        match Instance::acquire(dir.path()).unwrap() {
            Acquired::Held { pid } => assert_eq!(pid, Some(std::process::id())),
            Acquired::Acquired(_) => panic!("second instance acquired the lock"),
        }
        drop(first);
        assert_eq!(probe(dir.path()), Liveness::Stopped);
        assert!(!dir.path().join(PID_FILE).exists());
        // A stale pid file alone does not make a daemon.
        std::fs::write(dir.path().join(PID_FILE), "1\n").unwrap();
        assert_eq!(probe(dir.path()), Liveness::Stopped);
        assert!(matches!(
            Instance::acquire(dir.path()).unwrap(),
            Acquired::Acquired(_)
        ));
    }
}
