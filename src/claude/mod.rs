//! Claude Code's faces: the status line it runs, the hook receiver, and
//! installing both into its settings. What they capture (official limits,
//! activity, the spool) is read in `ingest::claude`; the status line's
//! figures come from `engine::statusline`.

pub mod hook;
pub mod setup;
pub mod statusline;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

/// Most Claude Code sends on stdin; more is not a payload of ours.
pub const STDIN_MAX: usize = 1 << 20;

/// Why stdin could not be read by [`read_stdin_bounded`].
#[derive(Debug, thiserror::Error)]
pub enum StdinError {
    /// Stdin did not close within this timeout.
    #[error("no input within {0:?}")]
    Timeout(Duration),
    /// More than [`STDIN_MAX`] bytes arrived.
    #[error("input larger than {STDIN_MAX} bytes")]
    TooLarge,
    /// Reading stdin failed.
    #[error("cannot read input: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads stdin to its end, at most [`STDIN_MAX`] bytes and for at most
/// `timeout`: a stdin that never closes (a terminal, a stuck pipe) must not
/// hang Claude Code. The reader thread is left behind on timeout; the process
/// exits soon after.
pub fn read_stdin_bounded(timeout: Duration) -> Result<Vec<u8>, StdinError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("csm-stdin".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(16 << 10);
            let r = std::io::stdin()
                .lock()
                .take(STDIN_MAX as u64 + 1)
                .read_to_end(&mut buf)
                .map(|_| buf);
            let _ = tx.send(r);
        })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(buf)) if buf.len() > STDIN_MAX => Err(StdinError::TooLarge),
        Ok(Ok(buf)) => Ok(buf),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(StdinError::Timeout(timeout)),
    }
}

/// File the status line and hooks log to: they may print nothing else.
pub const LOG_FILE: &str = "claude.log";

/// Appends one line to `<base>/claude.log` (0600, rotated once past 1 MiB).
/// A plain append rather than a tracing subscriber: these processes live a
/// few milliseconds and log only when something went wrong.
pub fn log(base_dir: &Path, now: Timestamp, what: &str, msg: &str) {
    use std::io::Write as _;
    if crate::fsutil::create_private_dir(base_dir).is_err() {
        return;
    }
    let path = base_dir.join(LOG_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > 1 << 20) {
        let _ = std::fs::rename(&path, base_dir.join(format!("{LOG_FILE}.1")));
    }
    if let Ok(mut f) = crate::fsutil::open_private_append(&path) {
        let line = format!("{now} {what}: {}\n", msg.replace('\n', " "));
        let _ = f.write_all(line.as_bytes());
    }
}
