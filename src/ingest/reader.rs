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

    type Held = Vec<(Vec<u8>, u64)>;
    type Over = Vec<(u64, u64, bool)>;

    fn collect(data: &[u8], buf_start: usize) -> (Held, Over, u64) {
        let mut held = Vec::new();
        let mut over = Vec::new();
        let mut buf = vec![0; buf_start];
        let end = read_lines(&mut &data[..], 0, &mut buf, |l| match l {
            Line::Held { bytes, offset } => held.push((bytes.to_vec(), offset)),
            Line::Oversized {
                offset,
                len,
                has_usage,
            } => over.push((offset, len, has_usage)),
            Line::Unterminated { .. } => {}
        })
        .unwrap();
        (held, over, end)
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
