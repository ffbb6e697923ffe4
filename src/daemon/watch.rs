//! File-change events from the data roots (notify: inotify, FSEvents,
//! ReadDirectoryChangesW), forwarded into the daemon's wake-up channel.
//!
//! Roots come and go (Claude Code creates its directory on first use; a user
//! may delete it): [`RootWatcher::sync`] watches the ones that exist now and
//! re-arms a root that was replaced. The daemon's poll fallback calls it on
//! every poll, so a root that appears is watched within `interval_seconds`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use notify::event::{AccessKind, AccessMode, CreateKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::Wake;

pub struct RootWatcher {
    watcher: Option<RecommendedWatcher>,
    /// Watched roots with the identity (device, inode) they had when watched.
    watched: HashMap<PathBuf, Identity>,
}

impl RootWatcher {
    /// A watcher sending [`Wake::Files`] for relevant events; without one
    /// (the platform refused), the daemon polls only.
    pub fn new(tx: Sender<Wake>) -> RootWatcher {
        let watcher = notify::recommended_watcher(move |res: notify::Result<Event>| match res {
            Ok(e) if relevant(&e) => {
                let _ = tx.send(Wake::Files);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("file watcher: {e}");
                // Events may have been lost: look at everything.
                let _ = tx.send(Wake::Files);
            }
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("no file watcher ({e}); polling only");
                None
            }
        };
        RootWatcher {
            watcher,
            watched: HashMap::new(),
        }
    }

    /// Watches each root that exists; forgets the ones that are gone or were
    /// replaced by a new directory. True when a root was added.
    pub fn sync(&mut self, roots: &[PathBuf]) -> bool {
        let Some(w) = self.watcher.as_mut() else {
            return false;
        };
        let mut added = false;
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(p, id)| !roots.contains(p) || identity(p) != Some(**id))
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            // Fails when the directory is gone (the kernel dropped the watch).
            let _ = w.unwatch(&p);
            self.watched.remove(&p);
            tracing::info!(root = %p.display(), "stopped watching a data root");
        }
        for root in roots {
            if self.watched.contains_key(root) {
                continue;
            }
            let Some(id) = identity(root) else { continue };
            match w.watch(root, RecursiveMode::Recursive) {
                Ok(()) => {
                    tracing::info!(root = %root.display(), "watching data root");
                    self.watched.insert(root.clone(), id);
                    added = true;
                }
                Err(e) => {
                    tracing::warn!(root = %root.display(), "cannot watch ({e}); polling it");
                }
            }
        }
        added
    }

    #[cfg(test)]
    pub fn watching(&self) -> usize {
        self.watched.len()
    }
}

/// What tells a directory from one that replaced it: device and inode, and
/// the birth time where the file system keeps one (a deleted directory's
/// inode is often reused at once).
type Identity = (u64, u64, Option<std::time::SystemTime>);

fn identity(p: &Path) -> Option<Identity> {
    let m = std::fs::metadata(p).ok().filter(|m| m.is_dir())?;
    let born = m.created().ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino(), born))
    }
    #[cfg(not(unix))]
    {
        Some((0, 0, born))
    }
}

/// Writes to transcripts and directory changes matter; reads and opens do not
/// (the daemon's own reads would otherwise wake it again).
fn relevant(e: &Event) -> bool {
    match e.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    if e.need_rescan() || e.paths.is_empty() {
        return true;
    }
    let dir_event = matches!(
        e.kind,
        EventKind::Create(CreateKind::Folder) | EventKind::Remove(_)
    );
    dir_event
        || e.paths
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, ModifyKind};

    #[test]
    fn transcript_writes_matter_reads_do_not() {
        let ev = |kind, p: &str| Event::new(kind).add_path(PathBuf::from(p));
        assert!(relevant(&ev(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            "/r/p/s.jsonl"
        )));
        assert!(relevant(&ev(
            EventKind::Create(CreateKind::Folder),
            "/r/new-project"
        )));
        assert!(!relevant(&ev(
            EventKind::Access(AccessKind::Read),
            "/r/p/s.jsonl"
        )));
        assert!(!relevant(&ev(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            "/r/p/notes.txt"
        )));
    }

    #[test]
    fn a_root_that_appears_is_watched_and_one_replaced_is_rewatched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("projects");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut w = RootWatcher::new(tx);
        assert!(!w.sync(std::slice::from_ref(&root)));
        assert_eq!(w.watching(), 0);
        std::fs::create_dir_all(root.join("p")).unwrap();
        assert!(w.sync(std::slice::from_ref(&root)));
        std::fs::write(root.join("p/s.jsonl"), "{}\n").unwrap();
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert!(
            matches!(got, Ok(Wake::Files)),
            "no event for a new transcript"
        );
        // Replaced by a new directory: watched again.
        std::fs::remove_dir_all(&root).unwrap();
        assert!(!w.sync(std::slice::from_ref(&root)));
        assert_eq!(w.watching(), 0);
        std::fs::create_dir_all(&root).unwrap();
        assert!(w.sync(std::slice::from_ref(&root)));
        while rx.try_recv().is_ok() {}
        std::fs::write(root.join("t.jsonl"), "{}\n").unwrap();
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert!(matches!(got, Ok(Wake::Files)));
    }
}
