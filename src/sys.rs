//! The few calls into the C library that std does not wrap, each behind a
//! safe function.

use std::time::Duration;

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
