//! Finding Claude Code's data roots and the transcript files below them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::Origin;

/// Where the caller's environment says to look. Built by the command layer from
/// flags and environment so this module never reads the process environment.
#[derive(Clone, Debug, Default)]
pub struct RootRequest {
    /// `--claude-dir` values, in order.
    pub explicit: Vec<PathBuf>,
    /// The raw value of `CLAUDE_CONFIG_DIR`, when set.
    pub env_value: Option<String>,
    /// The user's home directory, for `~` expansion and the defaults.
    pub home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, when set and non-empty.
    pub xdg_config_home: Option<PathBuf>,
    /// The `projects/` dir of the account `--account` selected: the only
    /// root, used even when it is gone (its history stays in the store).
    pub account: Option<PathBuf>,
}

/// The resolved roots: each is a `projects/` directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roots {
    /// The `projects/` directories found, canonicalised and without duplicates.
    pub projects_dirs: Vec<PathBuf>,
    /// Why no root was found, when `projects_dirs` is empty: one line for the user.
    pub explanation: Option<String>,
    /// True when the user named the locations (flag or `CLAUDE_CONFIG_DIR`) and
    /// none exists: an error, not an empty report.
    pub named_but_missing: bool,
}

impl RootRequest {
    /// Like [`RootRequest::resolve`], but locations the user named that do
    /// not exist are an error (with the one-line explanation); missing
    /// default locations are not.
    pub fn resolve_required(&self) -> Result<Roots, String> {
        let roots = self.resolve();
        if roots.named_but_missing {
            return Err(roots
                .explanation
                .unwrap_or_else(|| "no Claude data directory".into()));
        }
        Ok(roots)
    }

    /// The roots from `--claude-dir` when given, else `CLAUDE_CONFIG_DIR` when set (even empty), else the default locations.
    pub fn resolve(&self) -> Roots {
        if let Some(dir) = &self.account {
            return Roots {
                projects_dirs: vec![fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())],
                explanation: None,
                named_but_missing: false,
            };
        }
        if !self.explicit.is_empty() {
            let tried: Vec<PathBuf> = self.explicit.iter().map(|p| self.expand(p)).collect();
            return collect_roots(&tried, "--claude-dir", true);
        }
        // Set at all (even empty) means the defaults are not consulted, as ccusage.
        if let Some(value) = self.env_value.as_deref() {
            let tried: Vec<PathBuf> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| self.expand(Path::new(s)))
                .collect();
            return collect_roots(&tried, "CLAUDE_CONFIG_DIR", true);
        }
        collect_roots(&self.default_dirs(), "the default locations", false)
    }

    /// The default Claude config dirs: `$XDG_CONFIG_HOME/claude` (or
    /// `~/.config/claude`) and `~/.claude`.
    fn default_dirs(&self) -> Vec<PathBuf> {
        let mut defaults = Vec::new();
        match (&self.xdg_config_home, &self.home) {
            (Some(xdg), _) => defaults.push(xdg.join("claude")),
            (None, Some(home)) => defaults.push(home.join(".config").join("claude")),
            (None, None) => {}
        }
        if let Some(home) = &self.home {
            defaults.push(home.join(".claude"));
        }
        defaults
    }

    /// The `projects/` dirs whose history a run reports on: the roots found,
    /// else, when none of the default locations exists any more, theirs as
    /// they were (a history store still holds what was read there).
    pub fn history_dirs(&self) -> Vec<PathBuf> {
        let roots = self.resolve();
        if !roots.projects_dirs.is_empty() || roots.named_but_missing {
            return roots.projects_dirs;
        }
        self.default_dirs()
            .iter()
            .map(|d| match fs::canonicalize(d) {
                Ok(c) => c.join("projects"),
                Err(_) => d.join("projects"),
            })
            .collect()
    }

    /// `p` with a leading `~` replaced by the home directory.
    pub fn expand(&self, p: &Path) -> PathBuf {
        let Some(home) = &self.home else {
            return p.to_path_buf();
        };
        match p.to_str() {
            Some("~") => home.clone(),
            Some(s) if s.starts_with("~/") => home.join(&s[2..]),
            _ => p.to_path_buf(),
        }
    }
}

/// The `projects/` dir of a Claude config dir (or of a `projects/` dir
/// itself), canonical; `None` when it has none.
pub fn projects_dir_of(candidate: &Path) -> Option<PathBuf> {
    let dir = if candidate.join("projects").is_dir() {
        candidate.join("projects")
    } else if candidate.is_dir() && candidate.file_name().is_some_and(|n| n == "projects") {
        candidate.to_path_buf()
    } else {
        return None;
    };
    Some(fs::canonicalize(&dir).unwrap_or(dir))
}

fn collect_roots(candidates: &[PathBuf], origin: &str, named: bool) -> Roots {
    let mut projects_dirs: Vec<PathBuf> = Vec::new();
    for candidate in candidates {
        let Some(canonical) = projects_dir_of(candidate) else {
            continue;
        };
        if !projects_dirs.contains(&canonical) {
            projects_dirs.push(canonical);
        }
    }
    let explanation = projects_dirs.is_empty().then(|| {
        let list: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        format!(
            "No Claude Code data found: none of the paths from {origin} has a projects/ directory (tried: {}).",
            if list.is_empty() { "nothing".to_string() } else { list.join(", ") }
        )
    });
    Roots {
        named_but_missing: named && projects_dirs.is_empty(),
        projects_dirs,
        explanation,
    }
}

/// One transcript file and what its place in the tree says about it.
#[derive(Clone, Debug)]
pub struct TranscriptFile {
    /// The file's path.
    pub path: PathBuf,
    /// Project and session, from the file's place below `projects/`.
    pub origin: Arc<Origin>,
    /// Size in bytes when it was looked at.
    pub size: u64,
    /// Device id (0 where the platform has none): with `inode`, tells a replaced file.
    pub device: u64,
    /// Inode number (0 where the platform has none).
    pub inode: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// Things passed over while walking, counted for `doctor`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Directories that could not be listed.
    pub unreadable_dirs: u64,
    /// `*.jsonl` symlinks skipped (links are never followed).
    pub symlinks: u64,
    /// `*.jsonl` entries that are not regular files.
    pub non_file_jsonl: u64,
}

/// Every `*.jsonl` file below the roots, without following directory symlinks.
/// Sorted by path so runs are reproducible.
pub fn find_transcripts(roots: &Roots) -> (Vec<TranscriptFile>, WalkStats) {
    let mut files = Vec::new();
    let mut stats = WalkStats::default();
    for root in &roots.projects_dirs {
        walk_root(root, &mut files, &mut stats, &mut Vec::new());
    }
    sort_files(&mut files);
    (files, stats)
}

/// A directory and its modification time: its listing is unchanged while the
/// time is (files growing do not touch it; files appearing do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirStamp {
    /// The directory.
    pub path: PathBuf,
    /// Its modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// What an earlier walk saw, to check cheaply whether anything changed.
#[derive(Clone, Debug, Default)]
pub struct WalkMemo {
    /// The directories seen and their times.
    pub dirs: Vec<DirStamp>,
    /// The transcripts seen.
    pub files: Vec<TranscriptFile>,
}

/// A walk's result: the files, the directories seen (for the next memo) and
/// counts of what was passed over.
#[derive(Clone, Debug, Default)]
pub struct Walk {
    /// The transcripts found, sorted by path.
    pub files: Vec<TranscriptFile>,
    /// The directories listed and their times (for the next memo).
    pub dirs: Vec<DirStamp>,
    /// What was passed over.
    pub stats: WalkStats,
    /// False when the walk found exactly what the memo held (no listing
    /// changed, no file looked at again had moved): nothing to ingest.
    pub changed: bool,
    /// Transcripts of the memo looked at again and found missing.
    pub vanished: Vec<PathBuf>,
    /// Directories listed again: their transcripts not in `files` are gone.
    pub relisted: Vec<PathBuf>,
}

/// Every transcript, walking the whole tree and noting directory times.
pub fn walk_all(roots: &Roots) -> Walk {
    let mut w = Walk {
        changed: true,
        ..Walk::default()
    };
    for root in &roots.projects_dirs {
        walk_root(root, &mut w.files, &mut w.stats, &mut w.dirs);
    }
    sort_files(&mut w.files);
    w
}

/// How recently a file or directory must have changed to be looked at on
/// every run. Claude Code appends only to the sessions in use, and a session
/// left open overnight is still inside this window when work resumes; older
/// ones are looked at by the periodic full walk.
pub const HOT_AGE_NS: i64 = 24 * 3600 * 1_000_000_000;

/// The same result as [`walk_all`] with fewer system calls: a directory
/// whose time is unchanged is not listed again (its files are those of the
/// memo, each looked at again for growth); only changed and new directories
/// are listed. The looking is spread over the cores.
///
/// Only what changed within [`HOT_AGE_NS`] of `now_ns` is looked at again,
/// plus the roots and the project directories (where new sessions appear):
/// on a month of history that is a few dozen system calls instead of
/// thousands. The caller runs [`walk_all`] now and then to catch the rest.
pub fn walk_changed(roots: &Roots, memo: &WalkMemo, now_ns: i64) -> Walk {
    use rustc_hash::{FxHashMap, FxHashSet};

    let mut w = Walk::default();
    let under_roots = |p: &Path| roots.projects_dirs.iter().find(|r| p.starts_with(r));
    // The memo may hold directories of other roots (an earlier run with
    // another CLAUDE_CONFIG_DIR): only this run's roots count.
    let dirs: Vec<&DirStamp> = memo
        .dirs
        .iter()
        .filter(|d| under_roots(&d.path).is_some())
        .collect();
    let known_dirs: FxHashSet<&[u8]> = dirs.iter().map(|d| key(&d.path)).collect();
    let hot_since = now_ns.saturating_sub(HOT_AGE_NS);
    let always = |p: &Path| {
        roots
            .projects_dirs
            .iter()
            .any(|r| p == r.as_path() || p.parent() == Some(r.as_path()))
    };
    // The remembered directories worth a look are looked at again; the
    // others count as unchanged.
    let look: Vec<usize> = (0..dirs.len())
        .filter(|&i| {
            let t = dirs[i].mtime_ns;
            t >= hot_since || t == UNSETTLED || always(&dirs[i].path)
        })
        .collect();
    let mut now: Vec<(usize, Option<i64>)> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| (i, Some(d.mtime_ns)))
        .collect();
    let looked = map_spread(&look, |&i| {
        fs::metadata(&dirs[i].path)
            .ok()
            .map(|m| file_identity(&m).2)
    });
    for (i, mtime) in look.into_iter().zip(looked) {
        now[i].1 = mtime;
    }
    let mut unchanged: FxHashSet<&[u8]> = FxHashSet::default();
    let mut relist: Vec<(&Path, i64)> = Vec::new();
    for (i, mtime) in now {
        let d = dirs[i];
        match mtime {
            None => w.changed = true,
            Some(t) if t == d.mtime_ns => {
                unchanged.insert(key(&d.path));
                w.dirs.push(stamp(&d.path, t));
            }
            Some(t) => {
                w.changed = true;
                relist.push((&d.path, t));
            }
        }
    }
    // Roots the memo does not know yet are walked whole.
    for root in &roots.projects_dirs {
        if !known_dirs.contains(key(root)) {
            w.changed = true;
            walk(root, root, &mut w.files, &mut w.stats, &mut w.dirs);
        }
    }
    // Changed directories: list them; directories new to the memo are walked.
    for (dir, t) in relist {
        let Some(root) = under_roots(dir) else {
            continue;
        };
        let mut sub = Vec::new();
        let listed = list_dir(root, dir, &mut w.files, &mut w.stats, &mut sub);
        w.dirs.push(stamp_listed(dir, t, listed));
        if listed {
            w.relisted.push(dir.to_path_buf());
        }
        for s in sub {
            if !known_dirs.contains(key(&s)) {
                walk(root, &s, &mut w.files, &mut w.stats, &mut w.dirs);
            }
        }
    }
    // Files of unchanged directories: looked at again for growth.
    let by_dir: FxHashMap<&[u8], ()> = unchanged.iter().map(|k| (*k, ())).collect();
    let of_unchanged: Vec<&TranscriptFile> = memo
        .files
        .iter()
        .filter(|f| f.path.parent().is_some_and(|p| by_dir.contains_key(key(p))))
        .collect();
    let again: Vec<Result<(TranscriptFile, bool), &Path>> = map_spread(&of_unchanged, |f| {
        if f.mtime_ns < hot_since && f.mtime_ns != UNSETTLED {
            return Ok(((*f).clone(), false));
        }
        let Some(m) = fs::symlink_metadata(&f.path).ok().filter(|m| m.is_file()) else {
            return Err(f.path.as_path());
        };
        let (device, inode, mtime_ns) = file_identity(&m);
        let moved = (device, inode, mtime_ns, m.len()) != (f.device, f.inode, f.mtime_ns, f.size);
        Ok((
            TranscriptFile {
                path: f.path.clone(),
                origin: f.origin.clone(),
                size: m.len(),
                device,
                inode,
                mtime_ns,
            },
            moved,
        ))
    });
    let mut kept_files = 0;
    for found in again {
        match found {
            Ok((f, moved)) => {
                kept_files += 1;
                w.changed |= moved;
                w.files.push(f);
            }
            Err(path) => w.vanished.push(path.to_path_buf()),
        }
    }
    // A file of an unchanged directory that vanished changes the directory's
    // time, so counting is enough to notice anything odd.
    let expected = memo
        .files
        .iter()
        .filter(|f| f.path.parent().is_some_and(|p| by_dir.contains_key(key(p))))
        .count();
    if expected != kept_files {
        w.changed = true;
    }
    sort_files(&mut w.files);
    w
}

/// `f` over `items`, spread over the cores only when there are enough of
/// them to pay for starting the threads (a quick look has a few dozen).
fn map_spread<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    if items.len() < 512 {
        items.iter().map(f).collect()
    } else {
        items.par_iter().map(f).collect()
    }
}

/// A path as hash-map key: its bytes (hashing a `Path` walks its components).
fn key(p: &Path) -> &[u8] {
    p.as_os_str().as_encoded_bytes()
}

/// A directory's time as worth remembering: one changed in the last couple of
/// seconds may change again within the clock's granularity without its time
/// moving, so it is remembered as "list again".
/// The time remembered for a directory that must be listed again (and for
/// a transcript that must be read again).
pub const UNSETTLED: i64 = i64::MIN;

fn stamp(path: &Path, mtime_ns: i64) -> DirStamp {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(i64::MAX, |d| d.as_nanos() as i64);
    let settled = now_ns.saturating_sub(mtime_ns) > 2_000_000_000;
    DirStamp {
        path: path.to_path_buf(),
        mtime_ns: if settled { mtime_ns } else { UNSETTLED },
    }
}

/// [`stamp`] for a directory just listed, or not: one that could not be
/// listed is listed again next time whatever its time, since making it
/// readable (chmod) does not change its time.
fn stamp_listed(path: &Path, mtime_ns: i64, listed: bool) -> DirStamp {
    if listed {
        stamp(path, mtime_ns)
    } else {
        DirStamp {
            path: path.to_path_buf(),
            mtime_ns: i64::MIN,
        }
    }
}

fn sort_files(files: &mut Vec<TranscriptFile>) {
    // Byte order of the whole path, as ccusage: `s1.jsonl` sorts before `s1/…`.
    files.sort_by(|a, b| {
        a.path
            .as_os_str()
            .as_encoded_bytes()
            .cmp(b.path.as_os_str().as_encoded_bytes())
    });
    files.dedup_by(|a, b| a.path == b.path);
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<TranscriptFile>,
    stats: &mut WalkStats,
    dirs: &mut Vec<DirStamp>,
) {
    for d in visit(root, dir, out, stats, dirs) {
        walk(root, &d, out, stats, dirs);
    }
}

/// Lists one directory and notes its time; returns its subdirectories.
fn visit(
    root: &Path,
    dir: &Path,
    out: &mut Vec<TranscriptFile>,
    stats: &mut WalkStats,
    dirs: &mut Vec<DirStamp>,
) -> Vec<PathBuf> {
    let mtime = fs::metadata(dir).ok().map(|m| file_identity(&m).2);
    let mut sub = Vec::new();
    let listed = list_dir(root, dir, out, stats, &mut sub);
    if let Some(t) = mtime {
        dirs.push(stamp_listed(dir, t, listed));
    }
    sub
}

/// [`walk`] from a root, its subdirectories (the projects) spread over the
/// cores: a cold run starts with this walk, most of it `stat` calls
/// waiting on the kernel. Not [`map_spread`]: a root has a handful of
/// projects, far below its threshold, and rayon's pool for the walk cost
/// memory and gained nothing when measured.
fn walk_root(
    root: &Path,
    out: &mut Vec<TranscriptFile>,
    stats: &mut WalkStats,
    dirs: &mut Vec<DirStamp>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sub = visit(root, root, out, stats, dirs);
    let threads = super::cores().min(sub.len());
    if threads < 2 {
        for d in sub {
            walk(root, &d, out, stats, dirs);
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let found: Vec<(Vec<TranscriptFile>, WalkStats, Vec<DirStamp>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut found = (Vec::new(), WalkStats::default(), Vec::new());
                    while let Some(d) = sub.get(next.fetch_add(1, Ordering::Relaxed)) {
                        walk(root, d, &mut found.0, &mut found.1, &mut found.2);
                    }
                    found
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for (files, s, d) in found {
        out.extend(files);
        stats.unreadable_dirs += s.unreadable_dirs;
        stats.symlinks += s.symlinks;
        stats.non_file_jsonl += s.non_file_jsonl;
        dirs.extend(d);
    }
}

/// One directory: its transcripts go to `out`, its subdirectories to `sub`.
/// False when it could not be listed (no permission, gone).
fn list_dir(
    root: &Path,
    dir: &Path,
    out: &mut Vec<TranscriptFile>,
    stats: &mut WalkStats,
    sub: &mut Vec<PathBuf>,
) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        stats.unreadable_dirs += 1;
        return false;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
        if file_type.is_dir() {
            sub.push(path);
            continue;
        }
        if !is_jsonl {
            continue;
        }
        // Links below projects/ are never followed (as ccusage): no loops, no
        // files counted twice.
        if file_type.is_symlink() {
            stats.symlinks += 1;
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if !meta.is_file() {
            stats.non_file_jsonl += 1;
            continue;
        }
        if let Some(file) = describe(root, path, &meta) {
            out.push(file);
        }
    }
    true
}

fn describe(root: &Path, path: PathBuf, meta: &fs::Metadata) -> Option<TranscriptFile> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let (device, inode, mtime_ns) = file_identity(meta);
    Some(TranscriptFile {
        origin: Arc::new(origin_of(&parts)),
        size: meta.len(),
        device,
        inode,
        mtime_ns,
        path,
    })
}

/// Project and session from the path below `projects/`, as ccusage names them:
/// `P/S.jsonl` is session S of P; `…/S/subagents/x.jsonl` and other nested
/// files belong to the directory above them.
pub fn origin_of(parts: &[&str]) -> Origin {
    let project = match parts {
        [first, _, ..] if !first.trim().is_empty() => *first,
        _ => "unknown",
    };
    let (session_id, project_path) = match parts {
        [] => (String::new(), "Unknown Project".to_string()),
        [file] => (file.to_string(), "Unknown Project".to_string()),
        [p, file] => (stem(file).to_string(), p.to_string()),
        [before @ .., session, "subagents", _] if !before.is_empty() => {
            (session.to_string(), before.join("/"))
        }
        [before @ .., dir, _] => (dir.to_string(), before.join("/")),
    };
    Origin {
        project: Arc::from(project),
        session_id,
        project_path,
    }
}

fn stem(file: &str) -> &str {
    file.strip_suffix(".jsonl").unwrap_or(file)
}

#[cfg(unix)]
pub(crate) fn file_identity(meta: &fs::Metadata) -> (u64, u64, i64) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.dev(),
        meta.ino(),
        meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
    )
}

#[cfg(not(unix))]
pub(crate) fn file_identity(meta: &fs::Metadata) -> (u64, u64, i64) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    (0, 0, mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"{}\n").unwrap();
    }

    #[test]
    fn explicit_dirs_win_and_accept_projects_dir_itself() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("a/projects")).unwrap();
        fs::create_dir_all(t.path().join("b/projects")).unwrap();
        let req = RootRequest {
            explicit: vec![t.path().join("a"), t.path().join("b/projects")],
            env_value: Some(t.path().join("zzz").display().to_string()),
            ..Default::default()
        };
        let roots = req.resolve();
        assert_eq!(roots.projects_dirs.len(), 2);
        assert!(roots.explanation.is_none());
    }

    #[test]
    fn env_comma_list_trims_dedups_and_expands_tilde() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("home/c1/projects")).unwrap();
        let req = RootRequest {
            env_value: Some(" ~/c1 , ,~/c1/projects,~/missing ".into()),
            home: Some(t.path().join("home")),
            ..Default::default()
        };
        let roots = req.resolve();
        assert_eq!(roots.projects_dirs.len(), 1);
    }

    #[test]
    fn env_with_nothing_valid_names_variable_and_paths() {
        let req = RootRequest {
            env_value: Some("/nonexistent/one,/nonexistent/two".into()),
            ..Default::default()
        };
        let roots = req.resolve();
        assert!(roots.projects_dirs.is_empty());
        let why = roots.explanation.unwrap();
        assert!(why.contains("CLAUDE_CONFIG_DIR"), "{why}");
        assert!(why.contains("/nonexistent/two"), "{why}");
    }

    #[test]
    fn defaults_use_xdg_then_dot_claude() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        fs::create_dir_all(home.join(".claude/projects")).unwrap();
        fs::create_dir_all(home.join(".config/claude/projects")).unwrap();
        let req = RootRequest {
            home: Some(home.clone()),
            ..Default::default()
        };
        let roots = req.resolve();
        assert_eq!(roots.projects_dirs.len(), 2);
        let with_xdg = RootRequest {
            home: Some(home.clone()),
            xdg_config_home: Some(t.path().join("xdg")),
            ..Default::default()
        };
        assert_eq!(with_xdg.resolve().projects_dirs.len(), 1);
    }

    #[test]
    fn walk_changed_sees_new_and_hot_files_like_a_full_walk() {
        let t = tempfile::tempdir().unwrap();
        let projects = t.path().join("projects");
        touch(&projects.join("p/a.jsonl"));
        touch(&projects.join("p/s/subagents/x.jsonl"));
        // Settled directories (a fresh one is always listed again).
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for d in ["", "p", "p/s", "p/s/subagents"] {
            fs::File::open(projects.join(d))
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        let roots = Roots {
            projects_dirs: vec![projects.clone()],
            ..Default::default()
        };
        let first = walk_all(&roots);
        assert!(first.dirs.iter().all(|d| d.mtime_ns != UNSETTLED));
        assert_eq!(first.files.len(), 2);
        let memo = WalkMemo {
            dirs: first.dirs.clone(),
            files: first.files.clone(),
        };
        // Nothing changed: same files, nothing listed again.
        let same = walk_changed(&roots, &memo, now_ns());
        assert_eq!(paths(&same.files), paths(&first.files));
        assert!(!same.changed);
        // A file grows, another appears in a new directory.
        fs::write(projects.join("p/a.jsonl"), b"{}\n{}\n").unwrap();
        touch(&projects.join("q/new.jsonl"));
        let later = walk_changed(&roots, &memo, now_ns());
        assert!(later.changed);
        let full = walk_all(&roots);
        assert_eq!(paths(&later.files), paths(&full.files));
        let grown = later
            .files
            .iter()
            .find(|f| f.path.ends_with("p/a.jsonl"))
            .unwrap();
        assert_eq!(grown.size, 6);
        // A deleted file changes its directory's time: gone.
        fs::remove_file(projects.join("p/s/subagents/x.jsonl")).unwrap();
        let after_delete = walk_changed(&roots, &memo, now_ns());
        assert!(
            !after_delete
                .files
                .iter()
                .any(|f| f.path.ends_with("x.jsonl"))
        );
    }

    #[test]
    fn walk_changed_ignores_directories_of_other_roots() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a/projects");
        let b = t.path().join("b/projects");
        touch(&a.join("p/x.jsonl"));
        touch(&b.join("p/y.jsonl"));
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for d in [&a, &b, &a.join("p"), &b.join("p")] {
            fs::File::open(d).unwrap().set_modified(hour_ago).unwrap();
        }
        let both = Roots {
            projects_dirs: vec![a.clone(), b.clone()],
            ..Default::default()
        };
        let w = walk_all(&both);
        let memo = WalkMemo {
            dirs: w.dirs,
            files: w.files,
        };
        let only_b = Roots {
            projects_dirs: vec![b.clone()],
            ..Default::default()
        };
        let seen = walk_changed(&only_b, &memo, now_ns());
        assert_eq!(paths(&seen.files), vec![b.join("p/y.jsonl")]);
    }

    fn now_ns() -> i64 {
        jiff::Timestamp::now().as_nanosecond() as i64
    }

    #[test]
    fn walk_changed_leaves_cold_sessions_to_the_full_walk() {
        let t = tempfile::tempdir().unwrap();
        let projects = t.path().join("projects");
        touch(&projects.join("p/old.jsonl"));
        touch(&projects.join("p/hot.jsonl"));
        touch(&projects.join("p/s/subagents/x.jsonl"));
        let two_days_ago =
            std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
        for d in [
            "",
            "p",
            "p/s",
            "p/s/subagents",
            "p/old.jsonl",
            "p/s/subagents/x.jsonl",
        ] {
            fs::File::open(projects.join(d))
                .unwrap()
                .set_modified(two_days_ago)
                .unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .append(true)
            .open(projects.join("p/hot.jsonl"))
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let roots = Roots {
            projects_dirs: vec![projects.clone()],
            ..Default::default()
        };
        let first = walk_all(&roots);
        let memo = WalkMemo {
            dirs: first.dirs.clone(),
            files: first.files.clone(),
        };
        // A recent session grows: seen.
        fs::write(projects.join("p/hot.jsonl"), b"{}\n").unwrap();
        let w = walk_changed(&roots, &memo, now_ns());
        assert!(w.changed);
        assert_eq!(w.files.len(), 3);
        // A new session in an old project directory: seen (project
        // directories are always looked at).
        touch(&projects.join("p/new.jsonl"));
        let w = walk_changed(&roots, &memo, now_ns());
        assert!(w.files.iter().any(|f| f.path.ends_with("p/new.jsonl")));
        // A session untouched for two days grows: left to the full walk.
        fs::remove_file(projects.join("p/new.jsonl")).unwrap();
        fs::File::open(projects.join("p"))
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        let memo = WalkMemo {
            dirs: walk_all(&roots).dirs,
            files: walk_all(&roots).files,
        };
        fs::write(projects.join("p/s/subagents/x.jsonl"), b"{}\n{}\n").unwrap();
        let w = walk_changed(&roots, &memo, now_ns());
        assert!(!w.changed);
        let full = walk_all(&roots);
        let grown = |files: &[TranscriptFile]| {
            files
                .iter()
                .find(|f| f.path.ends_with("x.jsonl"))
                .unwrap()
                .size
        };
        assert_eq!(grown(&w.files), 3);
        assert_eq!(grown(&full.files), 6);
    }

    fn paths(files: &[TranscriptFile]) -> Vec<PathBuf> {
        files.iter().map(|f| f.path.clone()).collect()
    }

    #[test]
    fn origins_follow_ccusage_naming() {
        let o = origin_of(&["P", "abc.jsonl"]);
        assert_eq!(
            (&*o.project, o.session_id.as_str(), o.project_path.as_str()),
            ("P", "abc", "P")
        );
        let o = origin_of(&["P", "S", "subagents", "agent-1.jsonl"]);
        assert_eq!((o.session_id.as_str(), o.project_path.as_str()), ("S", "P"));
        let o = origin_of(&["P", "x", "y", "deep.jsonl"]);
        assert_eq!(
            (o.session_id.as_str(), o.project_path.as_str()),
            ("y", "P/x")
        );
        let o = origin_of(&["top.jsonl"]);
        assert_eq!(
            (&*o.project, o.session_id.as_str(), o.project_path.as_str()),
            ("unknown", "top.jsonl", "Unknown Project")
        );
        assert_eq!(&*origin_of(&[" ", "s.jsonl"]).project, "unknown");
    }

    #[test]
    fn walk_finds_nested_files_names_sessions_and_survives_links() {
        let t = tempfile::tempdir().unwrap();
        let projects = t.path().join("projects");
        touch(&projects.join("-home-dev-api/s1.jsonl"));
        touch(&projects.join("-home-dev-api/s1/subagents/agent-7.jsonl"));
        touch(&projects.join("-home-dev-api/notes.txt"));
        fs::create_dir_all(projects.join("-home-dev-api/dir.jsonl")).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&projects, projects.join("-home-dev-api/loop")).unwrap();
            std::os::unix::fs::symlink(&projects, projects.join("-home-dev-api/loop.jsonl"))
                .unwrap();
            std::os::unix::fs::symlink("/nonexistent", projects.join("dangling.jsonl")).unwrap();
        }
        let roots = Roots {
            projects_dirs: vec![projects],
            ..Default::default()
        };
        let (files, stats) = find_transcripts(&roots);
        let names: Vec<(&str, &str)> = files
            .iter()
            .map(|f| (&*f.origin.project, f.origin.session_id.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![("-home-dev-api", "s1"), ("-home-dev-api", "s1")]
        );
        #[cfg(unix)]
        assert_eq!(stats.symlinks, 2);
    }
}
