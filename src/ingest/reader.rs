//! Streaming line reader with bounded memory.
//!
//! Transcripts hold lines of any length (a tool result can be hundreds of MiB on
//! one line). Lines up to [`MAX_HELD_LINE`] are handed out as slices of a reused
//! buffer; longer ones are never held: they are scanned for the `"usage"` marker
//! in passing and reported by position so the caller can stream-parse them.

use std::io::{self, Read};

use memchr::memmem;

/// Longest line kept in memory whole. A usage line is a few KiB; the lines
/// past this are tool results, which are only searched for the marker, so
/// holding them would only cost memory (two readers' buffers at 4 MiB took
/// a cold 1 GiB load past 64 MiB of peak RSS).
pub const MAX_HELD_LINE: usize = 1024 * 1024;

const INITIAL_BUFFER: usize = 256 * 1024;

/// Reads land on addresses aligned to this. The kernel's copy out of the
/// page cache runs about 3.5 times slower into a destination off a 64-byte
/// boundary on the AMD machine csm is measured on (1 GiB of transcripts:
/// 0.21 s of kernel time aligned, 0.74-0.81 s at +1 or +16 bytes).
const READ_ALIGN: usize = 64;

/// The least a read asks for once the buffer holds a pending line.
const MIN_READ: usize = 64 * 1024;

use super::parse::USAGE_MARKER;

/// What the reader hands to its caller for each complete line.
pub enum Line<'a> {
    /// A complete line (without its `\n`), starting at `offset` in the file.
    Held {
        /// The line's bytes, borrowed from the read buffer.
        bytes: &'a [u8],
        /// Where the line starts in the file, in bytes.
        offset: u64,
    },
    /// A line longer than [`MAX_HELD_LINE`]: only its position and whether it
    /// contains the usage marker are known.
    Oversized {
        /// Where the line starts in the file, in bytes.
        offset: u64,
        /// The line's length in bytes, without its `\n`.
        len: u64,
        /// Whether the line contains the usage marker anywhere.
        has_usage: bool,
    },
    /// Bytes after the last newline at end of file: a line still being written,
    /// or a file whose writer never ends with a newline. Not consumed.
    Unterminated {
        /// The bytes after the last newline, borrowed from the read buffer.
        bytes: &'a [u8],
        /// Where they start in the file, in bytes.
        offset: u64,
    },
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
    // buf[begin..filled] holds the start of a line whose newline has not
    // been read yet.
    let mut begin = 0usize;
    let mut filled = 0usize;
    let mut consumed = start;
    // Oversized-line state: set while skipping through a line we cannot hold.
    let mut oversized: Option<OversizedScan> = None;

    loop {
        let pending = filled - begin;
        // The pending bytes go just before an aligned address, where the
        // next read lands.
        let head = (READ_ALIGN - buf.as_ptr() as usize % READ_ALIGN) % READ_ALIGN;
        let to = head + pending.next_multiple_of(READ_ALIGN);
        if to + MIN_READ > buf.len() {
            // A pending line is shorter than the limit (a longer one is
            // not held), so this size always leaves room.
            let most = MAX_HELD_LINE + 2 * READ_ALIGN + MIN_READ;
            buf.resize((buf.len() * 2).min(most), 0);
            continue;
        }
        if to - pending != begin {
            buf.copy_within(begin..filled, to - pending);
            begin = to - pending;
            filled = to;
        }
        let n = match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut search_from = filled;
        filled += n;

        while let Some(pos) = memchr::memchr(b'\n', &buf[search_from..filled]) {
            let nl = search_from + pos;
            if nl - begin >= MAX_HELD_LINE {
                oversized.get_or_insert_default();
            }
            if let Some(mut scan) = oversized.take() {
                scan.feed(&finder, &buf[begin..nl]);
                let len = scan.len;
                on_line(Line::Oversized {
                    offset: consumed,
                    len,
                    has_usage: scan.has_usage,
                });
                consumed += len + 1;
            } else {
                on_line(Line::Held {
                    bytes: &buf[begin..nl],
                    offset: consumed,
                });
                consumed += (nl - begin) as u64 + 1;
            }
            begin = nl + 1;
            search_from = begin;
        }
        if filled - begin >= MAX_HELD_LINE {
            oversized.get_or_insert_default();
        }
        if let Some(scan) = &mut oversized {
            // Too long to hold: look for the marker as the line goes by.
            scan.feed(&finder, &buf[begin..filled]);
            begin = 0;
            filled = 0;
        }
    }
    if filled > begin && oversized.is_none() {
        on_line(Line::Unterminated {
            bytes: &buf[begin..filled],
            offset: consumed,
        });
    }
    Ok(consumed)
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

    /// Everything the reader handed out, owned.
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

    /// What the reader must hand out for `data`, worked out the plain way.
    fn expected(data: &[u8]) -> (Collected, u64) {
        let mut out = Collected::default();
        let mut at = 0;
        while let Some(p) = data[at..].iter().position(|&b| b == b'\n') {
            let line = &data[at..at + p];
            if line.len() >= MAX_HELD_LINE {
                let has = line.windows(USAGE_MARKER.len()).any(|w| w == USAGE_MARKER);
                out.over.push((at as u64, line.len() as u64, has));
            } else {
                out.held.push((line.to_vec(), at as u64));
            }
            at += p + 1;
        }
        if at < data.len() && data.len() - at < MAX_HELD_LINE {
            out.tail = Some((data[at..].to_vec(), at as u64));
        }
        (out, at as u64)
    }

    /// What `read_lines` hands out, checked against [`expected`], from a
    /// buffer of `buf_start` bytes and through a source that returns at
    /// most `step` bytes a read.
    fn collect_in_steps(data: &[u8], buf_start: usize, step: usize) -> (Held, Over, u64) {
        let mut read = Collected::default();
        let mut buf = vec![0; buf_start];
        let mut source = Steps { data, step };
        let end = read_lines(&mut source, 0, &mut buf, |l| read.push(l)).unwrap();
        let (want, want_end) = expected(data);
        assert!(read == want, "read_lines differs from the plain splitting");
        assert_eq!(end, want_end, "read_lines ends elsewhere");
        (read.held, read.over, end)
    }

    fn collect(data: &[u8], buf_start: usize) -> (Held, Over, u64) {
        collect_in_steps(data, buf_start, usize::MAX)
    }

    /// A source handing out at most `step` bytes a read.
    struct Steps<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Steps<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(buf.len()).min(self.step);
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn reads_land_on_aligned_addresses() {
        // Lines of every length mod 64, so the pending tail is moved to
        // every offset.
        let data: Vec<u8> = (0..3000)
            .flat_map(|i| std::iter::repeat_n(b'a', i % 131).chain([b'\n']))
            .collect();
        struct Check<'a>(&'a [u8]);
        impl Read for Check<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                assert_eq!(buf.as_ptr() as usize % READ_ALIGN, 0, "unaligned read");
                let n = self.0.len().min(buf.len()).min(40_000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut lines = 0;
        let end = read_lines(&mut Check(&data), 0, &mut Vec::new(), |_| lines += 1).unwrap();
        assert_eq!(lines, 3000);
        assert_eq!(end, data.len() as u64);
    }

    #[test]
    fn lines_at_the_size_limit_are_split_alike() {
        for len in [MAX_HELD_LINE - 1, MAX_HELD_LINE, MAX_HELD_LINE + 1] {
            let mut data = vec![b'z'; len];
            data.extend_from_slice(b"\n\"usage\":{}\n");
            data.extend(std::iter::repeat_n(b'q', len));
            collect(&data, 0);
            // The limit crossed inside a read, and at a read's end.
            collect_in_steps(&data, 0, 100_003);
            collect_in_steps(&data, 0, len);
        }
    }

    proptest::proptest! {
        #[test]
        fn read_lines_splits_as_the_plain_way_does(
            data in proptest::collection::vec(
                proptest::prop_oneof![Just(b'\n'), Just(b'a'), Just(b'"'), proptest::num::u8::ANY],
                0..2000,
            ),
            step in 1usize..300,
        ) {
            collect_in_steps(&data, 0, step);
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
