//! Reading Claude Code transcripts: find the files, stream their lines, turn
//! usage lines into typed entries and count everything else by reason.

pub mod claude;
pub mod discover;
pub mod parse;
pub mod reader;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use rayon::prelude::*;

use std::sync::Arc;

use crate::domain::{Origin, UsageEntry};
use discover::TranscriptFile;
use parse::{LineParser, SkipReason};
use reader::Line;

/// What reading produced besides entries: every line is counted once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Files read (each scan counts its file once).
    pub files: u64,
    /// Bytes consumed: from the start offset to just past the last complete line.
    pub bytes: u64,
    /// Complete lines read (an unterminated tail is not counted).
    pub lines: u64,
    /// Usage entries produced, unterminated ones included.
    pub entries: u64,
    /// Lines skipped, per [`SkipReason`] (indexed by the reason's discriminant).
    pub skipped: [u64; SkipReason::ALL.len()],
    /// Lines longer than the in-memory limit (parsed by streaming when they hold usage).
    pub oversized_lines: u64,
    /// Files that could not be opened or read.
    pub unreadable_files: u64,
    /// Bytes after the last newline that are not (yet) a complete entry.
    pub partial_tail_bytes: u64,
    /// Complete entries after the last newline: counted, not consumed.
    pub unterminated_entries: u64,
}

impl LineStats {
    /// Counts one line skipped for `reason`.
    pub fn skip(&mut self, reason: SkipReason) {
        self.skipped[reason as usize] += 1;
    }

    /// Lines skipped for `reason`.
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped[reason as usize]
    }

    /// Lines skipped for any reason.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &LineStats) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.lines += other.lines;
        self.entries += other.entries;
        for (a, b) in self.skipped.iter_mut().zip(other.skipped) {
            *a += b;
        }
        self.oversized_lines += other.oversized_lines;
        self.unreadable_files += other.unreadable_files;
        self.partial_tail_bytes += other.partial_tail_bytes;
        self.unterminated_entries += other.unterminated_entries;
    }
}

/// The result of reading one file from an offset.
#[derive(Debug, Default)]
pub struct FileScan {
    /// The usage entries read, in file order, each with its line's offset.
    pub entries: Vec<UsageEntry>,
    /// What the scan counted.
    pub stats: LineStats,
    /// Offset just past the last complete line read.
    pub end_offset: u64,
}

/// Per-thread reusable state: the line buffer and the parser's interned names.
#[derive(Default)]
pub struct Scanner {
    parser: LineParser,
    buf: Vec<u8>,
}

impl Scanner {
    /// Reads `file` from byte `start`, returning entries and counts.
    pub fn scan(&mut self, file: &TranscriptFile, start: u64) -> FileScan {
        self.scan_part(file, start, None)
    }

    /// Reads `file[start..end]` (to the end of the file when `end` is
    /// `None`); a bounded part ends just after a newline (see [`parts_of`]).
    fn scan_part(&mut self, file: &TranscriptFile, start: u64, end: Option<u64>) -> FileScan {
        let mut out = FileScan {
            end_offset: start,
            ..Default::default()
        };
        out.stats.files = 1;
        let ctx = file.origin.clone();
        let opened = File::open(&file.path).and_then(|mut f| {
            // A new file is read from its start: no seek (one system call
            // per file of a cold load).
            if start > 0 {
                f.seek(SeekFrom::Start(start))?;
            }
            Ok(f)
        });
        let mut handle = match opened {
            Ok(f) => f,
            Err(_) => {
                out.stats.unreadable_files = 1;
                return out;
            }
        };
        let parser = &mut self.parser;
        let stats = &mut out.stats;
        let entries = &mut out.entries;
        let mut oversized_usage = Vec::new();
        let on_line = |line: Line<'_>| {
            stats.lines += 1;
            match line {
                Line::Held { bytes, offset } => match parser.parse_line(bytes, &ctx) {
                    Ok(mut entry) => {
                        entry.offset = offset;
                        entries.push(entry);
                    }
                    Err(reason) => stats.skip(reason),
                },
                // A complete entry whose newline has not arrived counts now (as
                // ccusage counts it) but stays unconsumed, so the next run reads
                // it again; anything else is left for later.
                Line::Unterminated { bytes, offset } => {
                    stats.lines -= 1;
                    match parser.parse_line(bytes, &ctx) {
                        Ok(mut entry) => {
                            entry.offset = offset;
                            stats.unterminated_entries += 1;
                            entries.push(entry);
                        }
                        Err(_) => stats.partial_tail_bytes += bytes.len() as u64,
                    }
                }
                Line::Oversized {
                    offset,
                    len,
                    has_usage,
                } => {
                    stats.oversized_lines += 1;
                    if has_usage {
                        oversized_usage.push((offset, len));
                    } else {
                        stats.skip(SkipReason::NoUsage);
                    }
                }
            }
        };
        let result = read_file(&mut handle, start, end, &mut self.buf, on_line);
        match result {
            Ok(end) => out.end_offset = end,
            Err(_) => {
                // A read error mid-file (file replaced, I/O error): keep what was read.
                out.stats.unreadable_files = 1;
            }
        }
        let streamed = !oversized_usage.is_empty();
        for (offset, len) in oversized_usage {
            match self.parse_oversized(file, offset, len, &ctx) {
                Ok(mut entry) => {
                    entry.offset = offset;
                    out.entries.push(entry);
                }
                Err(reason) => out.stats.skip(reason),
            }
        }
        if streamed {
            // Entries in file order, however the file was cut into parts.
            out.entries.sort_by_key(|e| e.offset);
        }
        out.stats.entries = out.entries.len() as u64;
        out.stats.bytes = out.end_offset.saturating_sub(start);
        out
    }

    fn parse_oversized(
        &mut self,
        file: &TranscriptFile,
        offset: u64,
        len: u64,
        ctx: &Arc<Origin>,
    ) -> Result<UsageEntry, SkipReason> {
        let open = || -> Option<BufReader<std::io::Take<File>>> {
            let mut f = File::open(&file.path).ok()?;
            f.seek(SeekFrom::Start(offset)).ok()?;
            Some(BufReader::with_capacity(64 * 1024, f.take(len)))
        };
        let first = open().ok_or(SkipReason::InvalidJson)?;
        self.parser.parse_reader(first, open, ctx)
    }
}

/// Hands `on_line` every line of `handle` from `start` (its current position)
/// to `end` (the end of the file when `None`), returning the end of the last
/// complete line, as [`reader::read_lines`].
///
/// Files are read, not mapped. Once reads land on aligned addresses (see
/// [`reader::read_lines`]), the copy costs less than a map's page faults,
/// unmaps and the interrupt each unmap sends the other core: a cold 1 GiB
/// load took 0.75 s reading every file, 0.78 s mapping those of 256 KiB and
/// more (10 alternating runs each; 0.84 s with the unaligned reads before).
fn read_file(
    handle: &mut File,
    start: u64,
    end: Option<u64>,
    buf: &mut Vec<u8>,
    on_line: impl FnMut(Line<'_>),
) -> std::io::Result<u64> {
    let left = end.map_or(u64::MAX, |end| end.saturating_sub(start));
    reader::read_lines(&mut handle.take(left), start, buf, on_line)
}

thread_local! {
    /// One scanner per worker thread for the life of the process: its line
    /// buffer grows once instead of once per file.
    static SCANNER: std::cell::RefCell<Scanner> = std::cell::RefCell::new(Scanner::default());
}

fn with_scanner<T>(f: impl FnOnce(&mut Scanner) -> T) -> T {
    SCANNER.with(|s| f(&mut s.borrow_mut()))
}

/// Below this many bytes to read, starting the thread pool costs more than
/// it saves (a warm run reads the few new bytes of one transcript).
const PARALLEL_FROM_BYTES: u64 = 8 << 20;

/// A big transcript is read in parts of about this size, each by whichever
/// core is free, so one 64 MiB transcript does not leave the other core idle.
const PART_BYTES: u64 = 8 << 20;

/// How far past a part's nominal end its newline is looked for; a line
/// longer than this is left whole inside one part.
const PART_NEWLINE_SEARCH: u64 = 1 << 20;

/// Where to cut `file[start..]` into parts: each is `(start, end)` with `end`
/// just past a newline, the last one open (`None`: to the end of the file).
fn parts_of(file: &TranscriptFile, start: u64, part_bytes: u64) -> Vec<(u64, Option<u64>)> {
    let mut parts = Vec::new();
    let mut from = start;
    if file.size.saturating_sub(start) >= 2 * part_bytes
        && let Ok(handle) = File::open(&file.path)
    {
        let mut chunk = vec![0u8; 64 * 1024];
        while file.size.saturating_sub(from) >= 2 * part_bytes {
            match newline_after(&handle, from + part_bytes, &mut chunk) {
                Some(cut) => {
                    parts.push((from, Some(cut)));
                    from = cut;
                }
                None => break,
            }
        }
    }
    parts.push((from, None));
    parts
}

/// The offset just past the first newline at or after `at`, looked for
/// within [`PART_NEWLINE_SEARCH`] bytes.
#[cfg(unix)]
fn newline_after(handle: &File, at: u64, chunk: &mut [u8]) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut pos = at;
    while pos - at < PART_NEWLINE_SEARCH {
        let n = match handle.read_at(chunk, pos) {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        if let Some(i) = memchr::memchr(b'\n', &chunk[..n]) {
            return Some(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
    None
}

#[cfg(not(unix))]
fn newline_after(_: &File, _: u64, _: &mut [u8]) -> Option<u64> {
    None
}

/// One file's parts read separately, as one read of the whole range would
/// have returned them.
fn merge_parts(start: u64, parts: Vec<FileScan>) -> FileScan {
    let mut out = FileScan {
        end_offset: start,
        ..Default::default()
    };
    let mut failed = false;
    for part in parts {
        failed |= part.stats.unreadable_files > 0;
        out.stats.merge(&part.stats);
        out.entries.extend(part.entries);
        out.end_offset = part.end_offset;
    }
    if failed {
        // As a single read that failed mid-file: nothing counts as consumed.
        out.end_offset = start;
        out.stats.unreadable_files = 1;
    }
    out.stats.files = 1;
    out.stats.entries = out.entries.len() as u64;
    out.stats.bytes = out.end_offset.saturating_sub(start);
    out
}

/// A piece of work for the parsing threads: `file[start..end]`.
struct Part<'a> {
    file: &'a TranscriptFile,
    start: u64,
    end: Option<u64>,
}

/// The parts of every job, in job order, and how many each job has.
fn split_jobs<'a>(
    jobs: &[(&'a TranscriptFile, u64)],
    part_bytes: u64,
) -> (Vec<Part<'a>>, Vec<usize>) {
    let mut parts = Vec::new();
    let mut counts = Vec::with_capacity(jobs.len());
    for (file, start) in jobs {
        let cuts = parts_of(file, *start, part_bytes);
        counts.push(cuts.len());
        parts.extend(
            cuts.into_iter()
                .map(|(start, end)| Part { file, start, end }),
        );
    }
    (parts, counts)
}

/// Puts parsed parts (in part order) back together per job.
fn assemble(
    jobs: &[(&TranscriptFile, u64)],
    counts: &[usize],
    scans: impl IntoIterator<Item = FileScan>,
) -> Vec<FileScan> {
    let mut scans = scans.into_iter();
    jobs.iter()
        .zip(counts)
        .map(|((_, start), &n)| merge_parts(*start, scans.by_ref().take(n).collect()))
        .collect()
}

fn scan_one(p: &Part<'_>) -> FileScan {
    with_scanner(|scanner| scanner.scan_part(p.file, p.start, p.end))
}

/// Reads each file from its start offset, in parallel when there is enough
/// to read; results in input order.
pub fn scan_ranges(jobs: &[(&TranscriptFile, u64)]) -> Vec<FileScan> {
    scan_ranges_in(jobs, PARALLEL_FROM_BYTES, PART_BYTES)
}

fn scan_ranges_in(
    jobs: &[(&TranscriptFile, u64)],
    parallel_from: u64,
    part_bytes: u64,
) -> Vec<FileScan> {
    let total: u64 = jobs.iter().map(|(f, s)| f.size.saturating_sub(*s)).sum();
    if total < parallel_from {
        return jobs
            .iter()
            .map(|(f, s)| with_scanner(|scanner| scanner.scan(f, *s)))
            .collect();
    }
    let (parts, counts) = split_jobs(jobs, part_bytes);
    let left = |p: &Part<'_>| p.end.unwrap_or(p.file.size).saturating_sub(p.start);
    let mut order: Vec<usize> = (0..parts.len()).collect();
    // Largest first so one big part does not start last and run alone.
    order.sort_by_key(|&i| std::cmp::Reverse(left(&parts[i])));
    let mut scans: Vec<(usize, FileScan)> = order
        .par_iter()
        .map(|&i| (i, scan_one(&parts[i])))
        .collect();
    scans.sort_by_key(|(i, _)| *i);
    assemble(jobs, &counts, scans.into_iter().map(|(_, s)| s))
}

/// Threads for the cold load's own thread sets (the walk, the parsing).
/// Asked of the system rather than of rayon, which would start its pool
/// only to answer.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Batches ahead of the one being delivered that the parsing threads may
/// read: enough that they never wait for a slow consumer's last step,
/// little enough to bound memory.
const BATCHES_AHEAD: usize = 2;

/// Reads batches of jobs one after another and hands each batch's scans (in
/// job order) to `deliver` on the calling thread, in batch order, until it
/// returns false. Unlike [`scan_ranges`] per batch, the parsing threads go
/// on to the next batch while the last files of one are still being read,
/// so no core waits at a batch's end (a cold 1 GiB load has 33 of them).
pub fn scan_batches(
    batches: &[Vec<(&TranscriptFile, u64)>],
    deliver: impl FnMut(usize, Vec<FileScan>) -> bool,
) {
    scan_batches_in(batches, PART_BYTES, deliver);
}

fn scan_batches_in(
    batches: &[Vec<(&TranscriptFile, u64)>],
    part_bytes: u64,
    mut deliver: impl FnMut(usize, Vec<FileScan>) -> bool,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard};

    struct State {
        /// Per batch: parsed parts, in part order.
        done: Vec<Vec<Option<FileScan>>>,
        left: Vec<usize>,
        delivered: usize,
        stop: bool,
    }
    let split: Vec<(Vec<Part<'_>>, Vec<usize>)> =
        batches.iter().map(|b| split_jobs(b, part_bytes)).collect();
    // Every part in batch order, as (batch, index in batch).
    let queue: Vec<(usize, usize)> = split
        .iter()
        .enumerate()
        .flat_map(|(b, (parts, _))| (0..parts.len()).map(move |i| (b, i)))
        .collect();
    let state = Mutex::new(State {
        done: split
            .iter()
            .map(|(p, _)| p.iter().map(|_| None).collect())
            .collect(),
        left: split.iter().map(|(p, _)| p.len()).collect(),
        delivered: 0,
        stop: false,
    });
    let changed = Condvar::new();
    let next = AtomicUsize::new(0);
    // A panic elsewhere must not leave a waiter blocked on a poisoned lock.
    let lock = || -> MutexGuard<'_, State> { state.lock().unwrap_or_else(|e| e.into_inner()) };
    /// Wakes everyone with `stop` set if a parsing thread unwinds.
    struct StopOnPanic<'a>(&'a dyn Fn());
    impl Drop for StopOnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                (self.0)();
            }
        }
    }
    let stop_all = || {
        lock().stop = true;
        changed.notify_all();
    };
    std::thread::scope(|scope| {
        for _ in 0..cores() {
            scope.spawn(|| {
                let _guard = StopOnPanic(&stop_all);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(b, i)) = queue.get(k) else { break };
                    {
                        let mut st = lock();
                        while b >= st.delivered + BATCHES_AHEAD && !st.stop {
                            st = changed.wait(st).unwrap_or_else(|e| e.into_inner());
                        }
                        if st.stop {
                            break;
                        }
                    }
                    let scan = scan_one(&split[b].0[i]);
                    let mut st = lock();
                    st.done[b][i] = Some(scan);
                    st.left[b] -= 1;
                    if st.left[b] == 0 {
                        changed.notify_all();
                    }
                }
            });
        }
        for (b, (_, counts)) in split.iter().enumerate() {
            let parts = {
                let mut st = lock();
                while st.left[b] > 0 && !st.stop {
                    st = changed.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.stop {
                    return;
                }
                std::mem::take(&mut st.done[b])
            };
            let scans = assemble(&batches[b], counts, parts.into_iter().flatten());
            let more = deliver(b, scans);
            let mut st = lock();
            st.delivered = b + 1;
            st.stop |= !more;
            changed.notify_all();
            if !more {
                return;
            }
        }
    });
}

/// Reads every file whole, in parallel. Entries come back in reading order
/// (files by path, then lines), which de-duplication and ccusage's sums rely on.
pub fn scan_all(files: &[TranscriptFile]) -> (Vec<UsageEntry>, LineStats) {
    let jobs: Vec<(&TranscriptFile, u64)> = files.iter().map(|f| (f, 0)).collect();
    let scans = scan_ranges(&jobs);
    let mut stats = LineStats::default();
    let mut entries = Vec::with_capacity(scans.iter().map(|s| s.entries.len()).sum());
    for scan in scans {
        stats.merge(&scan.stats);
        entries.extend(scan.entries);
    }
    (entries, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated history (malformed lines included), with a line still
    /// being written at the end of one transcript.
    fn history() -> (tempfile::TempDir, Vec<TranscriptFile>) {
        let dir = tempfile::tempdir().unwrap();
        let now = "2026-11-20T12:00:00Z".parse().unwrap();
        crate::synth::generate(
            dir.path(),
            &crate::synth::SynthOptions::new(7, 6 << 20, now),
        )
        .unwrap();
        let roots = discover::Roots {
            projects_dirs: vec![dir.path().join("projects")],
            explanation: None,
            named_but_missing: false,
        };
        let (mut files, _) = discover::find_transcripts(&roots);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let biggest = files.iter_mut().max_by_key(|f| f.size).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&biggest.path)
            .unwrap();
        std::io::Write::write_all(&mut f, br#"{"type":"assistant","message":{"usage":"#).unwrap();
        biggest.size = f.metadata().unwrap().len();
        (dir, files)
    }

    fn same(a: &FileScan, b: &FileScan) {
        assert_eq!(a.entries, b.entries);
        assert_eq!(a.stats, b.stats);
        assert_eq!(a.end_offset, b.end_offset);
    }

    /// Cut into many small parts, in parallel or batch by batch, every file
    /// reads exactly as one read of it does: same entries in the same order,
    /// same counts, same end.
    #[test]
    fn reading_in_parts_gives_what_one_read_gives() {
        let (_dir, files) = history();
        // Whole files, and some from a line in the middle (a warm run).
        let jobs: Vec<(&TranscriptFile, u64)> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let start = if i % 3 == 0 {
                    line_start_near(f, f.size / 2)
                } else {
                    0
                };
                (f, start)
            })
            .collect();
        let whole: Vec<FileScan> = jobs
            .iter()
            .map(|(f, s)| Scanner::default().scan(f, *s))
            .collect();
        assert!(whole.iter().map(|s| s.entries.len()).sum::<usize>() > 500);
        // Parts read with read() and, above the map threshold on Linux, mapped.
        for part in [4096, 300 * 1024] {
            let (_, counts) = split_jobs(&jobs, part);
            assert!(
                counts.iter().any(|&n| n > 1),
                "files are cut into parts of {part}"
            );

            let parted = scan_ranges_in(&jobs, 0, part);
            for (a, b) in whole.iter().zip(&parted) {
                same(a, b);
            }

            let batches: Vec<Vec<(&TranscriptFile, u64)>> =
                jobs.chunks(7).map(<[_]>::to_vec).collect();
            let mut got: Vec<(usize, Vec<FileScan>)> = Vec::new();
            scan_batches_in(&batches, part, |b, scans| {
                got.push((b, scans));
                true
            });
            let order: Vec<usize> = got.iter().map(|g| g.0).collect();
            assert_eq!(order, (0..batches.len()).collect::<Vec<_>>());
            let batched: Vec<FileScan> = got.into_iter().flat_map(|g| g.1).collect();
            assert_eq!(batched.len(), whole.len());
            for (a, b) in whole.iter().zip(&batched) {
                same(a, b);
            }
        }
    }

    /// A consumer that stops gets nothing more, and the readers stop too.
    #[test]
    fn batches_stop_when_the_consumer_does() {
        let (_dir, files) = history();
        let jobs: Vec<(&TranscriptFile, u64)> = files.iter().map(|f| (f, 0)).collect();
        let batches: Vec<Vec<(&TranscriptFile, u64)>> = jobs.chunks(3).map(<[_]>::to_vec).collect();
        assert!(batches.len() > 3);
        let mut seen = Vec::new();
        scan_batches_in(&batches, 4096, |b, _| {
            seen.push(b);
            b < 1
        });
        assert_eq!(seen, [0, 1]);
    }

    /// The offset of the first line starting at or after `at`.
    fn line_start_near(f: &TranscriptFile, at: u64) -> u64 {
        let bytes = std::fs::read(&f.path).unwrap();
        let at = at as usize;
        bytes[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(0, |i| (at + i + 1) as u64)
    }
}
