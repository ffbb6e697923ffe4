//! Reading Claude Code transcripts: find the files, stream their lines, turn
//! usage lines into typed entries and count everything else by reason.

pub mod discover;
#[cfg(target_os = "linux")]
pub mod mapped;
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
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub entries: u64,
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
    pub fn skip(&mut self, reason: SkipReason) {
        self.skipped[reason as usize] += 1;
    }

    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped[reason as usize]
    }

    pub fn total_skipped(&self) -> u64 {
        self.skipped.iter().sum()
    }

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
    pub entries: Vec<UsageEntry>,
    pub stats: LineStats,
    /// Offset just past the last complete line read.
    pub end_offset: u64,
}

/// Per-thread reusable state: the line buffers and the parser's interned names.
#[derive(Default)]
pub struct Scanner {
    parser: LineParser,
    buf: Vec<u8>,
    /// The line being parsed, copied out of the bytes read. When those are
    /// a mapped file, another process rewriting the file changes them in
    /// place, and parsing reads some bytes twice (check, then convert), so
    /// it must see one version. Read buffers take the same (cheap) path.
    line: Vec<u8>,
}

/// Parses a line that may live in a mapped file, through a private copy
/// (see [`Scanner::line`]); lines the pre-filter drops are never copied.
fn parse_held(
    parser: &mut LineParser,
    copy: &mut Vec<u8>,
    bytes: &[u8],
    ctx: &Arc<Origin>,
) -> Result<UsageEntry, SkipReason> {
    parser.prefilter(bytes)?;
    copy.clear();
    copy.extend_from_slice(bytes);
    parser.parse_candidate(copy, ctx)
}

impl Scanner {
    /// Reads `file` from byte `start`, returning entries and counts.
    pub fn scan(&mut self, file: &TranscriptFile, start: u64) -> FileScan {
        let mut out = FileScan {
            end_offset: start,
            ..Default::default()
        };
        out.stats.files = 1;
        let ctx = file.origin.clone();
        let opened = File::open(&file.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(start))?;
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
        let copy = &mut self.line;
        let stats = &mut out.stats;
        let entries = &mut out.entries;
        let mut oversized_usage = Vec::new();
        let on_line = |line: Line<'_>| {
            stats.lines += 1;
            match line {
                Line::Held { bytes, offset } => match parse_held(parser, copy, bytes, &ctx) {
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
                    match parse_held(parser, copy, bytes, &ctx) {
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
        let result = read_file(&mut handle, start, &mut self.buf, on_line);
        match result {
            Ok(end) => out.end_offset = end,
            Err(_) => {
                // A read error mid-file (file replaced, I/O error): keep what was read.
                out.stats.unreadable_files = 1;
            }
        }
        for (offset, len) in oversized_usage {
            match self.parse_oversized(file, offset, len, &ctx) {
                Ok(mut entry) => {
                    entry.offset = offset;
                    out.entries.push(entry);
                }
                Err(reason) => out.stats.skip(reason),
            }
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

/// From this many bytes to read, a file is mapped rather than read (see
/// [`mapped`]); below it the copy is cheaper than setting up a map.
#[cfg(target_os = "linux")]
const MAP_FROM_BYTES: u64 = 64 * 1024;

/// Hands `on_line` every line of `handle` from `start` (its current position),
/// returning the end of the last complete line, as [`reader::read_lines`].
fn read_file(
    handle: &mut File,
    start: u64,
    buf: &mut Vec<u8>,
    on_line: impl FnMut(Line<'_>),
) -> std::io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        let end = handle.metadata()?.len();
        // A file that cannot be mapped (a special file, no address space
        // left) is still read the plain way.
        if end.saturating_sub(start) >= MAP_FROM_BYTES
            && let Ok(Some(map)) = mapped::Mapping::new(handle, start, end)
        {
            let read_to =
                reader::split_lines(map.bytes(), start, |upto| map.release(upto), on_line);
            // Truncated while read: like a read that failed mid-file. A cut
            // inside the last page reads as zeros without any fault, hence
            // the second look at the size.
            if map.cut_short() || handle.metadata()?.len() < end {
                return Err(std::io::Error::other("transcript shrank while read"));
            }
            return Ok(read_to);
        }
    }
    reader::read_lines(handle, start, buf, on_line)
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

/// Reads each file from its start offset, in parallel when there is enough
/// to read; results in input order.
pub fn scan_ranges(jobs: &[(&TranscriptFile, u64)]) -> Vec<FileScan> {
    let left = |i: usize| jobs[i].0.size.saturating_sub(jobs[i].1);
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    // Largest first so one huge file does not start last and run alone.
    order.sort_by_key(|&i| std::cmp::Reverse(left(i)));
    let scan = |&i: &usize| {
        (
            i,
            with_scanner(|scanner| scanner.scan(jobs[i].0, jobs[i].1)),
        )
    };
    let total: u64 = (0..jobs.len()).map(left).sum();
    let mut scans: Vec<(usize, FileScan)> = if total < PARALLEL_FROM_BYTES {
        order.iter().map(scan).collect()
    } else {
        order.par_iter().map(scan).collect()
    };
    scans.sort_by_key(|(i, _)| *i);
    scans.into_iter().map(|(_, s)| s).collect()
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
