//! Streaming line reader with bounded memory.
//!
//! Transcripts hold lines of any length (a tool result can be hundreds of MiB on
//! one line). Lines up to [`MAX_HELD_LINE`] are handed out as slices of a reused
//! buffer; longer ones are never held: they are scanned for the `"usage"` marker
//! in passing and reported by position so the caller can stream-parse them.

use std::io::{self, Read};

use memchr::memmem;

/// Longest line kept in memory whole.
pub const MAX_HELD_LINE: usize = 4 * 1024 * 1024;

const INITIAL_BUFFER: usize = 256 * 1024;

use super::parse::USAGE_MARKER;

/// What the reader hands to its caller for each complete line.
pub enum Line<'a> {
    /// A complete line (without its `\n`), starting at `offset` in the file.
    Held { bytes: &'a [u8], offset: u64 },
    /// A line longer than [`MAX_HELD_LINE`]: only its position and whether it
    /// contains the usage marker are known.
    Oversized {
        offset: u64,
        len: u64,
        has_usage: bool,
    },
    /// Bytes after the last newline at end of file: a line still being written,
    /// or a file whose writer never ends with a newline. Not consumed.
    Unterminated { bytes: &'a [u8], offset: u64 },
}

/// Reads `source` from its current position (which is `start` in the file) and
/// calls `on_line` for each complete line. Returns the offset just past the last
/// complete line: bytes after it (a line still being written) are not consumed.
pub fn read_lines<R: Read>(
    source: &mut R,
    start: u64,
    buf: &mut Vec<u8>,
    mut on_line: impl FnMut(Line<'_>),
) -> io::Result<u64> {
    if buf.len() < INITIAL_BUFFER {
        buf.resize(INITIAL_BUFFER, 0);
    }
    let finder = memmem::Finder::new(USAGE_MARKER);
    // Bytes buf[..filled] are valid; buf[..pending_from] is already consumed.
    let mut filled = 0usize;
    let mut consumed = start;
    // Oversized-line state: set while skipping through a line we cannot hold.
    let mut oversized: Option<OversizedScan> = None;

    loop {
        if filled == buf.len() {
            // The partial line fills the buffer: grow it, or give up holding it.
            if buf.len() < MAX_HELD_LINE && oversized.is_none() {
                let new_len = (buf.len() * 2).min(MAX_HELD_LINE);
                buf.resize(new_len, 0);
            } else {
                let scan = oversized.get_or_insert(OversizedScan::default());
                scan.feed(&finder, &buf[..filled]);
                filled = 0;
            }
        }
        let n = match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let scan_from = filled;
        filled += n;

        let mut line_start = 0usize;
        let mut search_from = scan_from;
        while let Some(pos) = memchr::memchr(b'\n', &buf[search_from..filled]) {
            let nl = search_from + pos;
            if let Some(mut scan) = oversized.take() {
                scan.feed(&finder, &buf[line_start..nl]);
                let len = scan.len;
                on_line(Line::Oversized {
                    offset: consumed,
                    len,
                    has_usage: scan.has_usage,
                });
                consumed += len + 1;
            } else {
                on_line(Line::Held {
                    bytes: &buf[line_start..nl],
                    offset: consumed,
                });
                consumed += (nl - line_start) as u64 + 1;
            }
            line_start = nl + 1;
            search_from = line_start;
        }
        if line_start > 0 {
            buf.copy_within(line_start..filled, 0);
            filled -= line_start;
        }
    }
    if filled > 0 && oversized.is_none() {
        on_line(Line::Unterminated {
            bytes: &buf[..filled],
            offset: consumed,
        });
    }
    Ok(consumed)
}

/// Bytes of a mapped file looked at before the pages behind are handed back:
/// a mapped page counts as resident memory until it is released.
const RELEASE_EVERY: usize = 2 * 1024 * 1024;

/// How far one newline search reaches, so a long line is walked (and its pages
/// released) in steps rather than touched whole.
const SEARCH_STEP: usize = 1024 * 1024;

/// [`read_lines`] over bytes already in memory (a mapped file from `start`):
/// the same lines, offsets and end offset. `release(n)` says that
/// `data[..n]` will not be looked at again, so a mapping can drop those pages.
pub fn split_lines(
    data: &[u8],
    start: u64,
    mut release: impl FnMut(usize),
    mut on_line: impl FnMut(Line<'_>),
) -> u64 {
    let finder = memmem::Finder::new(USAGE_MARKER);
    let mut line_start = 0usize;
    let mut released = 0usize;
    while line_start < data.len() {
        let mut search = line_start;
        let mut oversized: Option<OversizedScan> = None;
        let nl = loop {
            let end = (search + SEARCH_STEP).min(data.len());
            if let Some(p) = memchr::memchr(b'\n', &data[search..end]) {
                break Some(search + p);
            }
            search = end;
            if search - line_start > MAX_HELD_LINE {
                // Too long to hand out whole: look for the marker as the line
                // goes by and let its pages go.
                let scan = oversized.get_or_insert_with(|| {
                    let mut scan = OversizedScan::default();
                    scan.feed(&finder, &data[line_start..search]);
                    scan
                });
                if scan.len < (search - line_start) as u64 {
                    let from = line_start + scan.len as usize;
                    scan.feed(&finder, &data[from..search]);
                }
                // The scan keeps its own copy of the bytes a marker could span.
                release(search);
                released = search;
            }
            if search == data.len() {
                break None;
            }
        };
        let Some(nl) = nl else {
            // As read_lines: a tail too long to hold is not handed out.
            if data.len() - line_start < MAX_HELD_LINE {
                on_line(Line::Unterminated {
                    bytes: &data[line_start..],
                    offset: start + line_start as u64,
                });
            }
            break;
        };
        let offset = start + line_start as u64;
        match oversized {
            Some(mut scan) => {
                let from = line_start + scan.len as usize;
                scan.feed(&finder, &data[from..nl]);
                on_line(Line::Oversized {
                    offset,
                    len: scan.len,
                    has_usage: scan.has_usage,
                });
            }
            None if nl - line_start >= MAX_HELD_LINE => {
                on_line(Line::Oversized {
                    offset,
                    len: (nl - line_start) as u64,
                    has_usage: finder.find(&data[line_start..nl]).is_some(),
                });
            }
            None => on_line(Line::Held {
                bytes: &data[line_start..nl],
                offset,
            }),
        }
        line_start = nl + 1;
        if line_start - released >= RELEASE_EVERY {
            release(line_start);
            released = line_start;
        }
    }
    start + line_start as u64
}

/// Running state while passing over a line too long to hold.
#[derive(Default)]
struct OversizedScan {
    len: u64,
    has_usage: bool,
    /// The tail of the previous piece, so a marker split across reads is found.
    tail: Vec<u8>,
}

impl OversizedScan {
    fn feed(&mut self, finder: &memmem::Finder<'_>, piece: &[u8]) {
        self.len += piece.len() as u64;
        if self.has_usage || piece.is_empty() {
            return;
        }
        let keep = USAGE_MARKER.len() - 1;
        let head_len = piece.len().min(keep);
        self.tail.extend_from_slice(&piece[..head_len]);
        if finder.find(&self.tail).is_some() || finder.find(piece).is_some() {
            self.has_usage = true;
            return;
        }
        self.tail.clear();
        self.tail
            .extend_from_slice(&piece[piece.len().saturating_sub(keep)..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Just;

    type Held = Vec<(Vec<u8>, u64)>;
    type Over = Vec<(u64, u64, bool)>;

    type Tail = Option<(Vec<u8>, u64)>;

    /// Everything a splitter handed out, owned.
    #[derive(Debug, Default, PartialEq)]
    struct Collected {
        held: Held,
        over: Over,
        tail: Tail,
    }

    impl Collected {
        fn push(&mut self, line: Line<'_>) {
            match line {
                Line::Held { bytes, offset } => self.held.push((bytes.to_vec(), offset)),
                Line::Oversized {
                    offset,
                    len,
                    has_usage,
                } => self.over.push((offset, len, has_usage)),
                Line::Unterminated { bytes, offset } => self.tail = Some((bytes.to_vec(), offset)),
            }
        }
    }

    /// What `read_lines` hands out, checked against what `split_lines` hands
    /// out over the same bytes in memory.
    fn collect(data: &[u8], buf_start: usize) -> (Held, Over, u64) {
        let mut read = Collected::default();
        let mut buf = vec![0; buf_start];
        let read_end = read_lines(&mut &data[..], 0, &mut buf, |l| read.push(l)).unwrap();

        let mut split = Collected::default();
        let released = std::cell::Cell::new(0);
        let split_end = split_lines(
            data,
            0,
            |upto| {
                assert!(upto >= released.get(), "release goes backwards");
                released.set(upto);
            },
            |l| {
                if let Line::Held { offset, .. } = l {
                    assert!(
                        offset as usize >= released.get(),
                        "line handed out after release"
                    );
                }
                split.push(l)
            },
        );
        assert_eq!(read, split, "read_lines and split_lines disagree");
        assert_eq!(read_end, split_end, "read_lines and split_lines end apart");
        (read.held, read.over, read_end)
    }

    #[test]
    fn lines_at_the_size_limit_are_split_alike() {
        for len in [MAX_HELD_LINE - 1, MAX_HELD_LINE, MAX_HELD_LINE + 1] {
            let mut data = vec![b'z'; len];
            data.extend_from_slice(b"\n\"usage\":{}\n");
            data.extend(std::iter::repeat_n(b'q', len));
            collect(&data, 0);
        }
    }

    #[test]
    fn released_bytes_are_never_handed_out_again() {
        // Many short lines: the splitter releases as it goes, and the check
        // in `collect` fails if a line starts before a released point.
        let line = b"{\"usage\":{\"input_tokens\":1}}\n".repeat(200_000);
        let (held, _, end) = collect(&line, 0);
        assert_eq!(held.len(), 200_000);
        assert_eq!(end, line.len() as u64);
    }

    proptest::proptest! {
        #[test]
        fn split_lines_agrees_with_read_lines(
            data in proptest::collection::vec(
                proptest::prop_oneof![Just(b'\n'), Just(b'a'), Just(b'"'), proptest::num::u8::ANY],
                0..2000,
            )
        ) {
            collect(&data, 0);
        }
    }

    #[test]
    fn splits_lines_and_leaves_partial_tail() {
        let (held, over, end) = collect(b"a\n\nbcd\npartial", 0);
        assert_eq!(
            held,
            vec![(b"a".to_vec(), 0), (b"".to_vec(), 2), (b"bcd".to_vec(), 3)]
        );
        assert!(over.is_empty());
        assert_eq!(end, 7);
    }

    #[test]
    fn huge_line_is_not_held_and_marker_is_found_across_reads() {
        let mut data = Vec::new();
        data.extend_from_slice(b"first\n");
        let big = MAX_HELD_LINE + 3 * INITIAL_BUFFER + 17;
        let mut line = vec![b'x'; big];
        // Put the marker across a likely read boundary near the end.
        let at = big - INITIAL_BUFFER - 3;
        line[at..at + USAGE_MARKER.len()].copy_from_slice(USAGE_MARKER);
        data.extend_from_slice(&line);
        data.extend_from_slice(b"\nlast\n");
        let mut big_nousage = vec![b'y'; MAX_HELD_LINE + 5];
        big_nousage.push(b'\n');
        data.extend_from_slice(&big_nousage);

        let (held, over, end) = collect(&data, 0);
        assert_eq!(held.len(), 2);
        assert_eq!(held[1], (b"last".to_vec(), 6 + big as u64 + 1));
        assert_eq!(over.len(), 2);
        assert_eq!(over[0], (6, big as u64, true));
        assert_eq!(over[1].1, (MAX_HELD_LINE + 5) as u64);
        assert!(!over[1].2);
        assert_eq!(end, data.len() as u64);
    }

    #[test]
    fn marker_split_exactly_between_pieces() {
        let mut scan = OversizedScan::default();
        let finder = memmem::Finder::new(USAGE_MARKER);
        scan.feed(&finder, b"aaaa\"usa");
        assert!(!scan.has_usage);
        scan.feed(&finder, b"ge\":{bbbb");
        assert!(scan.has_usage);
        assert_eq!(scan.len, 17);
    }

    #[test]
    fn offsets_continue_from_start() {
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        let mut tail = Vec::new();
        let end = read_lines(&mut &b"x\ny\nzz"[..], 100, &mut buf, |l| match l {
            Line::Held { offset, .. } => offsets.push(offset),
            Line::Unterminated { bytes, offset } => tail.push((bytes.to_vec(), offset)),
            Line::Oversized { .. } => {}
        })
        .unwrap();
        assert_eq!(offsets, vec![100, 102]);
        assert_eq!(tail, vec![(b"zz".to_vec(), 104)]);
        assert_eq!(end, 104);
    }
}
