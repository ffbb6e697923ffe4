//! `daemon.log`: tracing output in a size-capped file, rotated to
//! `daemon.log.1` … `.N` so a daemon that runs for months never fills a disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "daemon.log";
/// Rotate once the file passes this size.
pub const MAX_BYTES: u64 = 2 << 20;
/// Rotated files kept besides the current one.
pub const KEEP: usize = 2;

/// A log file that rotates itself when it grows past `max_bytes`.
pub struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    written: u64,
    max_bytes: u64,
    keep: usize,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        let mut r = RotatingFile {
            path: path.to_path_buf(),
            file: None,
            written: 0,
            max_bytes,
            keep,
        };
        r.reopen()?;
        Ok(r)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let mut o = OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let f = o.open(&self.path)?;
        self.written = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(f);
        Ok(())
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut s = self.path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        self.reopen()
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.max_bytes {
            // A failed rotation must not stop logging: keep appending.
            if self.rotate().is_err() && self.file.is_none() {
                self.reopen()?;
            }
        }
        let f = match self.file.as_mut() {
            Some(f) => f,
            None => return Err(io::Error::other("log file not open")),
        };
        let n = f.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// Sends this process's tracing output to `<base>/daemon.log`.
pub fn init(base_dir: &Path, debug: bool) -> io::Result<()> {
    init_named(base_dir, FILE_NAME, debug)
}

/// Sends this process's tracing output to `<base>/<name>` (0600, rotated
/// past [`MAX_BYTES`]): the daemon's log, the dashboard's.
pub fn init_named(base_dir: &Path, name: &str, debug: bool) -> io::Result<()> {
    let file = RotatingFile::open(&base_dir.join(name), MAX_BYTES, KEEP)?;
    let level = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_max_level(level)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_cap_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..30 {
            writeln!(f, "line {i:02} of the log....").unwrap();
        }
        f.flush().unwrap();
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 100, "{}", size(&path));
        assert!(size(&dir.path().join("daemon.log.1")) > 0);
        assert!(size(&dir.path().join("daemon.log.2")) > 0);
        assert!(!dir.path().join("daemon.log.3").exists());
        // The newest line is in the current file, the ones before it in .1.
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.ends_with("line 29 of the log....\n"), "{current}");
        let older = std::fs::read_to_string(dir.path().join("daemon.log.1")).unwrap();
        assert!(older.contains("line 2"), "{older}");
        // Reopening continues from the file's size.
        drop(f);
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        assert_eq!(f.written, size(&path));
        writeln!(f, "x").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
