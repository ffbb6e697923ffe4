//! Data roots: every transcript belongs to the `projects/` directory it was
//! read under, and a run reports on its own roots only. A root is an
//! account (a Claude config dir); the store keeps each one's verdicts and
//! windows apart, so runs on different accounts never mix their numbers and
//! the order of runs never matters.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::{FxHashMap, FxHashSet};

use super::{Store, StoreError, path_from_blob};

/// Which roots a store's queries cover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every root the store knows (tools such as `csm db`, and tests).
    #[default]
    Every,
    /// These roots (ids in the `roots` table, sorted, no duplicates).
    Roots(Vec<i64>),
}

/// A root the store knows, with what it holds (`csm accounts`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRoot {
    /// Row id.
    pub id: i64,
    /// The `projects/` directory.
    pub path: PathBuf,
    /// Transcripts recorded under it, gone ones included.
    pub files: u64,
    /// Of those, the ones on disk at the last look.
    pub files_present: u64,
    /// Counted entries (one per response, de-duplicated within the root).
    pub entries: u64,
    /// Time of its earliest counted entry.
    pub first_entry: Option<jiff::Timestamp>,
    /// Time of its latest counted entry.
    pub last_entry: Option<jiff::Timestamp>,
}

/// Which root each file belongs to, as the store has it.
#[derive(Clone, Debug)]
pub(super) enum FileRoots {
    /// Every file is under this one root (the usual store of one account):
    /// no file needs looking up (a map of a 1 GiB history's files was a
    /// tenth of a warm sync).
    Single(i64),
    /// Each attributed file's root.
    Map(FxHashMap<i64, i64>),
}

/// Files of some roots, for filtering lines by file id.
pub(super) enum Files {
    /// Every file of the store.
    All,
    /// These.
    Some(FxHashSet<i64>),
}

impl Files {
    pub(super) fn contains(&self, file: &i64) -> bool {
        match self {
            Files::All => true,
            Files::Some(set) => set.contains(file),
        }
    }
}

impl FileRoots {
    pub(super) fn load(conn: &Connection) -> Result<FileRoots, StoreError> {
        let (roots, one, loose): (i64, Option<i64>, bool) = conn.query_row(
            "SELECT (SELECT count(*) FROM roots), (SELECT min(id) FROM roots),
                    EXISTS (SELECT 1 FROM files WHERE root_id IS NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if let (1, Some(id), false) = (roots, one, loose) {
            return Ok(FileRoots::Single(id));
        }
        let mut stmt =
            conn.prepare_cached("SELECT id, root_id FROM files WHERE root_id IS NOT NULL")?;
        let mut rows = stmt.query([])?;
        let mut by_file = FxHashMap::default();
        while let Some(r) = rows.next()? {
            by_file.insert(r.get(0)?, r.get(1)?);
        }
        Ok(FileRoots::Map(by_file))
    }

    /// The root of a file; `None` for an unattributed one.
    pub(super) fn of(&self, file: i64) -> Option<i64> {
        match self {
            FileRoots::Single(id) => Some(*id),
            FileRoots::Map(m) => m.get(&file).copied(),
        }
    }

    /// The files of `roots`.
    pub(super) fn files_of(&self, roots: &[i64]) -> Files {
        match self {
            FileRoots::Single(id) if roots.contains(id) => Files::All,
            FileRoots::Single(_) => Files::Some(FxHashSet::default()),
            FileRoots::Map(m) => Files::Some(
                m.iter()
                    .filter(|(_, r)| roots.contains(r))
                    .map(|(f, _)| *f)
                    .collect(),
            ),
        }
    }

    /// Every root that holds a file (the single root of a store of one
    /// account, even while it holds none yet).
    pub(super) fn roots(&self) -> Vec<i64> {
        match self {
            FileRoots::Single(id) => vec![*id],
            FileRoots::Map(m) => {
                let mut v: Vec<i64> = m.values().copied().collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }
}

/// The root a transcript's path lies under, from its project (the first
/// segment below `projects/`): what precedes `/<project>/`. `None` when the
/// path does not hold its project.
pub(super) fn root_by_path(path: &[u8], project: &str) -> Option<Vec<u8>> {
    let needle = [b"/", project.as_bytes(), b"/"].concat();
    if project.is_empty() {
        return None;
    }
    let at = path
        .windows(needle.len())
        .rposition(|w| w == needle.as_slice())?;
    (at > 0).then(|| path[..at].to_vec())
}

/// The id of the root at `path`, adding it when new.
pub(super) fn root_id(conn: &Connection, path: &[u8]) -> Result<i64, StoreError> {
    if let Some(id) = conn
        .prepare_cached("SELECT id FROM roots WHERE path = ?1")?
        .query_row([path], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO roots (path) VALUES (?1)")?
        .execute([path])?;
    Ok(conn.last_insert_rowid())
}

/// Whether `path` lies below `root` (byte-wise, on a `/` boundary).
pub(super) fn is_below(path: &[u8], root: &[u8]) -> bool {
    path.len() > root.len() && path.starts_with(root) && path[root.len()] == b'/'
}

impl Store {
    /// Scopes every query of this store to `roots` (the run's `projects/`
    /// directories), recording roots it has not seen. Transcripts recorded
    /// without a root whose path lies below one of them are attributed to
    /// it now; their verdicts and windows are recomputed by the next sync.
    pub fn set_scope(&mut self, roots: &[PathBuf]) -> Result<(), StoreError> {
        let keys: Vec<&[u8]> = roots
            .iter()
            .map(|r| r.as_os_str().as_encoded_bytes())
            .collect();
        let mut ids = Vec::with_capacity(keys.len());
        // A file under no root stays so unless it lies below one of these:
        // only then is a write due (a file no root holds must not cost
        // every run the write lock).
        let mut unattributed = false;
        for key in &keys {
            if let Some(id) = self
                .conn
                .prepare_cached("SELECT id FROM roots WHERE path = ?1")?
                .query_row([key], |r| r.get::<_, i64>(0))
                .optional()?
            {
                ids.push(id);
            }
            let (lo, hi) = below_range(key);
            unattributed |= self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM files WHERE root_id IS NULL AND path >= ?1 AND path < ?2)",
                params![lo, hi],
                |r| r.get::<_, bool>(0),
            )?;
        }
        if ids.len() < keys.len() || unattributed {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            ids.clear();
            let mut moved = 0;
            for key in &keys {
                let id = root_id(&tx, key)?;
                if unattributed {
                    moved += attribute_below(&tx, key, id)?;
                }
                ids.push(id);
            }
            if moved > 0 {
                super::sync::set_meta(&tx, "dirty", "1")?;
            }
            tx.commit()?;
        }
        ids.sort_unstable();
        ids.dedup();
        self.whole = self.conn.query_row(
            "SELECT (SELECT count(*) FROM roots) = ?1
                    AND NOT EXISTS (SELECT 1 FROM files WHERE root_id IS NULL)",
            [ids.len() as i64],
            |r| r.get(0),
        )?;
        self.scope = Scope::Roots(ids);
        Ok(())
    }

    /// Scopes every query to the one known root `id`.
    pub fn scope_to_root(&mut self, id: i64) {
        self.scope = Scope::Roots(vec![id]);
        self.whole = false;
    }

    /// A short text naming the scope (`every`, `1,3`): caches of figures
    /// keep it so one account's figures are never shown for another.
    pub fn scope_key(&self) -> String {
        match &self.scope {
            Scope::Every => "every".into(),
            Scope::Roots(ids) => super::sync::id_list(ids),
        }
    }

    /// The ids of the roots in scope: for [`Scope::Every`], every root that
    /// holds a transcript.
    pub(super) fn scope_ids(&self) -> Result<Vec<i64>, StoreError> {
        Ok(match &self.scope {
            Scope::Every => FileRoots::load(&self.conn)?.roots(),
            Scope::Roots(ids) => ids.clone(),
        })
    }

    /// Paths of the roots in scope, by id.
    pub(super) fn scope_paths(&self) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id, path FROM roots")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let keep = match &self.scope {
                Scope::Every => true,
                Scope::Roots(ids) => ids.contains(&id),
            };
            if keep {
                out.push((id, r.get(1)?));
            }
        }
        Ok(out)
    }

    /// Every root the store knows, with what it holds.
    pub fn known_roots(&self) -> Result<Vec<StoredRoot>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.path,
                    (SELECT count(*) FROM files f WHERE f.root_id = r.id),
                    (SELECT count(*) FROM files f WHERE f.root_id = r.id AND f.present = 1),
                    (SELECT coalesce(sum(entries), 0) FROM blocks b WHERE b.root_id = r.id AND b.is_gap = 0),
                    (SELECT min(first_ms) FROM blocks b WHERE b.root_id = r.id AND b.is_gap = 0),
                    (SELECT max(last_ms) FROM blocks b WHERE b.root_id = r.id AND b.is_gap = 0)
             FROM roots r ORDER BY r.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredRoot {
                id: r.get(0)?,
                path: path_from_blob(r.get(1)?),
                files: r.get::<_, i64>(2)? as u64,
                files_present: r.get::<_, i64>(3)? as u64,
                entries: r.get::<_, i64>(4)? as u64,
                first_entry: r.get::<_, Option<i64>>(5)?.map(super::ms),
                last_entry: r.get::<_, Option<i64>>(6)?.map(super::ms),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Transcripts recorded under no root csm knows: never counted, listed
    /// so the user can name their root (`--claude-dir`).
    pub fn unattributed_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM files WHERE root_id IS NULL ORDER BY path")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| Ok(path_from_blob(r?))).collect()
    }

    /// The root of the transcript at `path`, when the store knows it (the
    /// status line and hooks attribute what they capture to it).
    pub fn root_of_transcript(&self, path: &Path) -> Result<Option<i64>, StoreError> {
        root_of_path(&self.conn, path.as_os_str().as_encoded_bytes())
    }
}

/// The byte range of the paths below `root` (`root/` up to `root0`).
pub(super) fn below_range(root: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut lo = root.to_vec();
    lo.push(b'/');
    let mut hi = root.to_vec();
    hi.push(b'/' + 1);
    (lo, hi)
}

/// The root of the transcript at `path`: the one the store read it under,
/// else the known root it lies below.
pub(super) fn root_of_path(conn: &Connection, path: &[u8]) -> Result<Option<i64>, StoreError> {
    if let Some(id) = conn
        .prepare_cached("SELECT root_id FROM files WHERE path = ?1")?
        .query_row([path], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten()
    {
        return Ok(Some(id));
    }
    let mut stmt = conn.prepare_cached("SELECT id, path FROM roots")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if is_below(path, super::packed::blob(r, 1)?) {
            return Ok(Some(r.get(0)?));
        }
    }
    Ok(None)
}

/// Attributes the unattributed files below `root` to it; returns how many.
fn attribute_below(conn: &Connection, root: &[u8], id: i64) -> Result<usize, StoreError> {
    let (lo, hi) = below_range(root);
    Ok(conn
        .prepare_cached(
            "UPDATE files SET root_id = ?1 WHERE root_id IS NULL AND path >= ?2 AND path < ?3",
        )?
        .execute(params![id, lo, hi])?)
}

/// Gives every unattributed file the root its path names (see
/// [`root_by_path`]); returns the files left unattributed.
pub(super) fn attribute_all_by_path(conn: &Connection) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare("SELECT id, path, project FROM files WHERE root_id IS NULL")?;
    let found: Vec<(i64, Vec<u8>, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut left = 0;
    let mut set = conn.prepare_cached("UPDATE files SET root_id = ?2 WHERE id = ?1")?;
    for (id, path, project) in found {
        match root_by_path(&path, &project) {
            Some(root) => {
                set.execute(params![id, root_id(conn, &root)?])?;
            }
            None => left += 1,
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_is_what_precedes_the_project() {
        let p = b"/home/u/.claude/projects/-home-u-x/abc.jsonl";
        assert_eq!(
            root_by_path(p, "-home-u-x").as_deref(),
            Some(&b"/home/u/.claude/projects"[..])
        );
        let sub = b"/w/projects/p/s1/subagents/agent-1.jsonl";
        assert_eq!(root_by_path(sub, "p").as_deref(), Some(&b"/w/projects"[..]));
        assert_eq!(root_by_path(b"/elsewhere/x.jsonl", "p"), None);
        assert_eq!(root_by_path(b"/p/x.jsonl", "p"), None, "no root above");
        assert_eq!(root_by_path(b"/a/p/x.jsonl", ""), None);
    }

    #[test]
    fn below_means_inside_the_directory() {
        assert!(is_below(b"/a/projects/x", b"/a/projects"));
        assert!(!is_below(b"/a/projects2/x", b"/a/projects"));
        assert!(!is_below(b"/a/projects", b"/a/projects"));
    }
}
