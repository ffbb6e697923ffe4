//! Cheap "did any transcript change?" for the refresh loop.
//!
//! Walking a large history costs a `readdir` per directory and a `stat` per
//! file (≈30 ms for 2,600 files in 1,300 directories on the test machine):
//! too much every 2 seconds. Claude Code writes to few files at a time, and a
//! new file shows as a changed directory mtime. So a quick poll `stat`s only
//! the top two directory levels and the recently modified ("hot") directories
//! and files, re-reading a directory whose mtime moved; a full walk every
//! `full_every` catches the rare write to an old file.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
}

fn stamp(meta: &fs::Metadata) -> Stamp {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt as _;
        meta.ino()
    };
    #[cfg(not(unix))]
    let inode = 0;
    Stamp {
        size: meta.len(),
        mtime_ns,
        inode,
    }
}

#[derive(Clone, Debug)]
struct Dir {
    stamp: Stamp,
    depth: usize,
}

/// Watches `*.jsonl` files below some roots by polling.
pub struct ChangeDetector {
    roots: Vec<PathBuf>,
    dirs: HashMap<PathBuf, Dir>,
    files: HashMap<PathBuf, Stamp>,
    last_full: Option<Instant>,
    /// How often everything is walked.
    pub full_every: Duration,
    /// Files and directories modified this recently are checked on every poll.
    pub hot_for: Duration,
}

impl ChangeDetector {
    /// A detector for `roots` that knows no files yet, so its first poll reports a change; full walks every 60 s, hot files for 24 h.
    pub fn new(roots: Vec<PathBuf>) -> ChangeDetector {
        ChangeDetector {
            roots,
            dirs: HashMap::new(),
            files: HashMap::new(),
            last_full: None,
            full_every: Duration::from_secs(60),
            hot_for: Duration::from_secs(24 * 3600),
        }
    }

    /// The directories being watched.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Files known after the last poll.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// True when a file was added, removed or changed (size, mtime, inode)
    /// since the last poll; always true the first time.
    pub fn poll(&mut self) -> bool {
        let due = self
            .last_full
            .is_none_or(|t| t.elapsed() >= self.full_every);
        if due {
            return self.full();
        }
        self.quick()
    }

    /// Walks everything now.
    pub fn full(&mut self) -> bool {
        let first = self.last_full.is_none();
        let mut dirs = HashMap::new();
        let mut files = HashMap::new();
        for root in self.roots.clone() {
            walk(&root, 0, &mut dirs, &mut files);
        }
        let changed = first || files != self.files;
        self.dirs = dirs;
        self.files = files;
        self.last_full = Some(Instant::now());
        changed
    }

    fn quick(&mut self) -> bool {
        let hot_since = SystemTime::now()
            .checked_sub(self.hot_for)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        // File systems keep coarse mtimes (a few ms): a directory modified
        // just before it was stamped may change again without its mtime
        // moving, so it is re-read until its mtime is a moment old.
        let settled_before = SystemTime::now()
            .checked_sub(Duration::from_secs(2))
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        let mut changed = false;
        // Directories: the roots and project directories always, deeper ones
        // while hot. A moved mtime means entries were added or removed.
        let watched: Vec<(PathBuf, Dir)> = self
            .dirs
            .iter()
            .filter(|(_, d)| d.depth <= 1 || d.stamp.mtime_ns >= hot_since)
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect();
        for (path, dir) in watched {
            match fs::symlink_metadata(&path) {
                Ok(m)
                    if m.is_dir()
                        && stamp(&m) == dir.stamp
                        && dir.stamp.mtime_ns < settled_before => {}
                Ok(m) if m.is_dir() => {
                    changed |= self.rescan_dir(&path, dir.depth, stamp(&m));
                }
                _ => {
                    // Gone: forget it and everything below.
                    self.dirs.retain(|p, _| !p.starts_with(&path));
                    self.files.retain(|p, _| !p.starts_with(&path));
                    changed = true;
                }
            }
        }
        let hot_files: Vec<(PathBuf, Stamp)> = self
            .files
            .iter()
            .filter(|(_, s)| s.mtime_ns >= hot_since)
            .map(|(p, s)| (p.clone(), *s))
            .collect();
        for (path, old) in hot_files {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => {
                    let now = stamp(&m);
                    if now != old {
                        self.files.insert(path, now);
                        changed = true;
                    }
                }
                _ => {
                    self.files.remove(&path);
                    changed = true;
                }
            }
        }
        changed
    }

    /// Re-reads one directory's entries: new files and subdirectories are
    /// added (subdirectories walked whole), vanished ones dropped.
    fn rescan_dir(&mut self, dir: &Path, depth: usize, new_stamp: Stamp) -> bool {
        let mut dirs = HashMap::new();
        let mut files = HashMap::new();
        walk_one(dir, depth, &mut dirs, &mut files);
        let mut changed = false;
        // Entries directly in `dir` that are no longer there.
        let direct = |p: &Path| p.parent() == Some(dir);
        let before_files: Vec<PathBuf> = self.files.keys().filter(|p| direct(p)).cloned().collect();
        for p in before_files {
            if !files.contains_key(&p) {
                self.files.remove(&p);
                changed = true;
            }
        }
        let before_dirs: Vec<PathBuf> = self.dirs.keys().filter(|p| direct(p)).cloned().collect();
        for p in before_dirs {
            if !dirs.contains_key(&p) {
                self.dirs.retain(|q, _| !q.starts_with(&p));
                self.files.retain(|q, _| !q.starts_with(&p));
                changed = true;
            }
        }
        for (p, s) in files {
            if self.files.get(&p) != Some(&s) {
                self.files.insert(p, s);
                changed = true;
            }
        }
        for (p, d) in dirs {
            if !self.dirs.contains_key(&p) {
                // A new directory: everything in it is new.
                let mut sub_dirs = HashMap::new();
                let mut sub_files = HashMap::new();
                walk(&p, d.depth, &mut sub_dirs, &mut sub_files);
                changed |= !sub_files.is_empty();
                self.dirs.extend(sub_dirs);
                self.files.extend(sub_files);
            }
        }
        self.dirs.insert(
            dir.to_path_buf(),
            Dir {
                stamp: new_stamp,
                depth,
            },
        );
        changed
    }
}

/// `dir` and everything below it.
fn walk(
    dir: &Path,
    depth: usize,
    dirs: &mut HashMap<PathBuf, Dir>,
    files: &mut HashMap<PathBuf, Stamp>,
) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    dirs.insert(
        dir.to_path_buf(),
        Dir {
            stamp: stamp(&meta),
            depth,
        },
    );
    let mut sub = HashMap::new();
    walk_one(dir, depth, &mut sub, files);
    for p in sub.into_keys() {
        walk(&p, depth + 1, dirs, files);
    }
}

/// The direct entries of `dir`: `*.jsonl` files and subdirectories (as
/// discovery, symlinks are not followed).
fn walk_one(
    dir: &Path,
    depth: usize,
    dirs: &mut HashMap<PathBuf, Dir>,
    files: &mut HashMap<PathBuf, Stamp>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let path = entry.path();
        if ft.is_dir() {
            if let Ok(m) = entry.metadata() {
                dirs.insert(
                    path,
                    Dir {
                        stamp: stamp(&m),
                        depth: depth + 1,
                    },
                );
            }
        } else if ft.is_file()
            && path.extension().is_some_and(|e| e == "jsonl")
            && let Ok(m) = entry.metadata()
        {
            files.insert(path, stamp(&m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn append(p: &Path, s: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn sees_appends_new_files_new_dirs_and_removals_without_full_walks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("projects");
        let proj = root.join("p1");
        fs::create_dir_all(&proj).unwrap();
        append(&proj.join("s1.jsonl"), "{}\n");
        let mut d = ChangeDetector::new(vec![root.clone()]);
        // No periodic full walk during the test: only quick polls after the first.
        d.full_every = Duration::from_secs(3600);
        assert!(d.poll(), "first poll reports data");
        assert!(!d.poll());
        append(&proj.join("s1.jsonl"), "{\"a\":1}\n");
        assert!(d.poll(), "append");
        assert!(!d.poll());
        append(&proj.join("s2.jsonl"), "{}\n");
        assert!(d.poll(), "new file");
        let sub = proj.join("s2").join("subagents");
        fs::create_dir_all(&sub).unwrap();
        assert!(!d.poll(), "an empty directory is no change");
        append(&sub.join("agent-1.jsonl"), "{}\n");
        assert!(d.poll(), "new subagent file");
        assert_eq!(d.file_count(), 3);
        append(&proj.join("notes.txt"), "x");
        assert!(!d.poll(), "other files do not count");
        fs::create_dir_all(root.join("p2")).unwrap();
        append(&root.join("p2").join("s9.jsonl"), "{}\n");
        assert!(d.poll(), "new project");
        fs::remove_file(proj.join("s1.jsonl")).unwrap();
        assert!(d.poll(), "removed file");
        fs::remove_dir_all(proj.join("s2")).unwrap();
        assert!(d.poll(), "removed directory");
        assert_eq!(d.file_count(), 2);
        assert!(!d.poll());
    }
}
