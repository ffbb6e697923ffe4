//! The few calls into the C library that std does not wrap, each behind a
//! safe function: every `unsafe` block of csm outside the quick reader's
//! SIMD scans is here.

use std::time::Duration;

/// Rust ignores SIGPIPE, so printing to a closed pipe fails and `println!`
/// panics; a report whose reader has gone should end quietly, as other
/// command-line tools do. Call first thing in `main`.
pub fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called before any thread starts; resetting a signal's
    // disposition to its default has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Whether process `pid` exists and may be signalled (signal 0).
pub fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        unsafe { libc::kill(pid, 0) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Sends SIGTERM to `pid`.
#[cfg(unix)]
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill has no memory effects.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Starts the child of `c` in a session of its own, so closing this
/// terminal does not stop it.
#[cfg(unix)]
pub fn own_session(c: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: setsid is one, and it
    // touches no memory.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// The real user id (0 where there is none).
pub fn user_id() -> u32 {
    #[cfg(unix)]
    // SAFETY: getuid cannot fail and has no memory effects.
    unsafe {
        libc::getuid()
    }
    #[cfg(not(unix))]
    0
}

/// Hands the heap pages freed since the last call back to the system: a
/// daemon that idles for hours should not keep the peak of a cold ingest.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Has glibc serve every allocation of `bytes` or more by its own mapping
/// (instead of a bound that moves after the first big free), so freed big
/// buffers go straight back to the system.
pub fn map_allocations_from(bytes: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator, under its
    // own lock; any value is valid for this one.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, bytes);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = bytes;
}

/// What waiting on the terminal's input found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Bytes (or a partial escape sequence) are waiting.
    Readable,
    /// Nothing within the timeout.
    Timeout,
    /// The terminal is gone: hung up, in error, or not a valid descriptor.
    Gone(&'static str),
}

/// The terminal the dashboard reads keys from, found as crossterm finds it:
/// standard input when it is a terminal, else `/dev/tty` (kept open here).
pub struct TerminalInput {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    #[cfg(unix)]
    _tty: Option<std::fs::File>,
}

impl TerminalInput {
    /// Opens the terminal to read keys from: standard input if it is a terminal, else `/dev/tty`.
    pub fn open() -> std::io::Result<TerminalInput> {
        #[cfg(unix)]
        {
            use std::io::IsTerminal as _;
            use std::os::fd::AsRawFd as _;
            if std::io::stdin().is_terminal() {
                return Ok(TerminalInput {
                    fd: libc::STDIN_FILENO,
                    _tty: None,
                });
            }
            let tty = std::fs::OpenOptions::new().read(true).open("/dev/tty")?;
            Ok(TerminalInput {
                fd: tty.as_raw_fd(),
                _tty: Some(tty),
            })
        }
        #[cfg(not(unix))]
        {
            Ok(TerminalInput {})
        }
    }

    /// Waits up to `timeout` for input. A hang-up is reported as soon as it
    /// happens, so a caller never has to read from a terminal that is gone
    /// (crossterm's reader loops forever on end of file).
    pub fn wait(&self, timeout: Duration) -> Readiness {
        #[cfg(unix)]
        {
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: `pfd` is one valid, initialised pollfd that outlives the
            // call, and the count passed is 1.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                return match std::io::Error::last_os_error().kind() {
                    std::io::ErrorKind::Interrupted => Readiness::Timeout,
                    _ => Readiness::Gone("poll on the terminal failed"),
                };
            }
            if n == 0 {
                return Readiness::Timeout;
            }
            if pfd.revents & libc::POLLNVAL != 0 {
                Readiness::Gone("the terminal was closed")
            } else if pfd.revents & libc::POLLHUP != 0 {
                Readiness::Gone("the terminal hung up")
            } else if pfd.revents & libc::POLLERR != 0 {
                Readiness::Gone("the terminal reported an error")
            } else {
                Readiness::Readable
            }
        }
        #[cfg(not(unix))]
        {
            std::thread::sleep(timeout.min(Duration::from_millis(50)));
            Readiness::Readable
        }
    }

    /// Whether the terminal is gone, without waiting.
    pub fn is_gone(&self) -> Option<&'static str> {
        match self.wait(Duration::ZERO) {
            Readiness::Gone(why) => Some(why),
            _ => None,
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn this_process_exists_and_a_free_pid_does_not() {
        assert!(process_exists(std::process::id()));
        assert!(!process_exists(u32::MAX));
        assert!(user_id() == unsafe_free_uid());
    }

    /// The same id, read without libc: the owner of a file this process just made.
    fn unsafe_free_uid() -> u32 {
        use std::os::unix::fs::MetadataExt as _;
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().metadata().unwrap().uid()
    }

    /// The safe wrapper against the raw call it wraps: a pipe whose writer
    /// is closed reads as a hang-up; one with bytes in it is readable; an
    /// empty open one times out.
    #[test]
    fn a_closed_pipe_is_gone_and_an_open_one_waits() {
        use std::io::Write as _;
        use std::os::fd::AsRawFd as _;
        let (reader, mut writer) = std::io::pipe().unwrap();
        let input = TerminalInput {
            fd: reader.as_raw_fd(),
            _tty: None,
        };
        assert_eq!(input.wait(Duration::from_millis(10)), Readiness::Timeout);
        writer.write_all(b"q").unwrap();
        assert_eq!(input.wait(Duration::from_millis(10)), Readiness::Readable);
        drop(writer);
        assert!(matches!(
            input.wait(Duration::from_secs(5)),
            Readiness::Gone(_)
        ));
        assert!(input.is_gone().is_some());
    }
}
