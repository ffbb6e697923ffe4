//! A quicker reading of the common usage line, with serde_json as the judge
//! of everything else.
//!
//! Most of a usage line is message content csm never looks at; serde_json
//! walks it eight bytes at a time and runs every key of the line's own
//! objects through UTF-8 validation and a field visitor. This reader first
//! maps the line's quotes, backslashes and non-ASCII bytes 64 bytes at a
//! time (SIMD compares and carry arithmetic, no loop per escape), so that in
//! a clean line a string is skipped by looking up its closing quote, and a
//! key or kept value is known plain ASCII when no other mark comes first;
//! it compares keys as bytes. (A line with a raw control byte or a bad
//! escape is walked byte by byte instead, which is rare.) It only answers
//! when the line is plain: valid JSON by the same rules serde_json applies,
//! the fields csm reads holding the types it expects, with no escapes in
//! keys or in the strings it keeps, no duplicate fields and no count it
//! would have to round (a `costUSD` float is made by serde_json itself from
//! the number's text). On anything else it answers `None` and the caller
//! asks serde_json, so it never decides a doubtful case: it can only be
//! faster, not different. `agrees_with_serde` checks that claim (tests,
//! fuzzing), and that the walk answers the `null` rule as a search would.

use std::borrow::Cow;

use memchr::memchr2;

use super::{RawCacheCreation, RawLine, RawMessage, RawSpeed, RawUsage};

/// Scratch space kept by the caller across lines, so reading allocates
/// only while it grows.
#[derive(Default)]
pub(super) struct Scratch {
    /// Open containers while skipping a value (`{` or `[`).
    stack: Vec<u8>,
    /// The line's [`Marks`].
    quotes: Vec<u64>,
    stops: Vec<u64>,
}

/// What the quick reader makes of a plain line.
pub(super) struct Quick<'a> {
    /// The line as serde_json reads it.
    pub raw: RawLine<'a>,
    /// Whether a member named in `NULL_REJECT_KEYS` holds `null`, at any
    /// depth: the walk passes every member, so it answers the null rule
    /// without a second search of the line.
    pub rejected_null: bool,
}

/// Reads `line` as serde_json would, if the line is plain (see above).
pub(super) fn read_line<'a>(line: &'a [u8], scratch: &mut Scratch) -> Option<Quick<'a>> {
    let Scratch {
        stack,
        quotes,
        stops,
    } = scratch;
    stack.clear();
    let clean = mark_line(line, quotes, stops);
    let mut c = Cursor {
        b: line,
        i: 0,
        stack,
        marks: clean.then_some(Marks { quotes, stops }),
        rejected_null: false,
    };
    c.ws();
    let raw = c.raw_line()?;
    c.ws();
    (c.i == line.len()).then_some(Quick {
        raw,
        rejected_null: c.rejected_null,
    })
}

struct Cursor<'a, 's> {
    b: &'a [u8],
    i: usize,
    /// Open containers while skipping a value (`{` or `[`).
    stack: &'s mut Vec<u8>,
    /// Present when the line is clean (see [`mark_line`]): strings are then
    /// found from these marks instead of byte by byte.
    marks: Option<Marks<'s>>,
    /// A member named in `NULL_REJECT_KEYS` was found holding `null`.
    rejected_null: bool,
}

/// Bit maps of a clean line, one bit a byte, 64 bytes a word.
#[derive(Clone, Copy)]
struct Marks<'s> {
    /// The quotes that open or close a string (escaped ones are cleared).
    quotes: &'s [u64],
    /// The string-delimiting quotes, every backslash and every byte past
    /// ASCII: from a string's opening quote, the next of these is its
    /// closing quote exactly when the string is plain ASCII with no escape.
    stops: &'s [u64],
}

/// The first set bit at or after `from` in a bit map of a line.
#[inline(always)]
fn next_bit(words: &[u64], from: usize) -> Option<usize> {
    let mut w = from / 64;
    let mut word = words.get(w)? & (!0u64 << (from % 64));
    while word == 0 {
        w += 1;
        word = *words.get(w)?;
    }
    Some(w * 64 + word.trailing_zeros() as usize)
}

impl Marks<'_> {
    /// The first string-delimiting quote at or after `from`.
    #[inline(always)]
    fn next_quote(&self, from: usize) -> Option<usize> {
        next_bit(self.quotes, from)
    }

    /// The first quote, backslash or non-ASCII byte at or after `from`.
    #[inline(always)]
    fn next_stop(&self, from: usize) -> Option<usize> {
        next_bit(self.stops, from)
    }
}

/// Fills the marks of `line` and tells whether it is clean: no byte below
/// 0x20 anywhere (compact JSON has none, not even between tokens) and every
/// backslash starting an escape serde_json accepts. Escapes are taken from
/// the left, as a string reader takes them; a backslash outside a string is
/// a grammar error the walk meets anyway. In a clean line a string ends at
/// the next unescaped quote, with nothing inside it to check.
fn mark_line(line: &[u8], quotes: &mut Vec<u64>, stops: &mut Vec<u64>) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to have AVX2.
        return unsafe { mark_line_avx2(line, quotes, stops) };
    }
    mark_line_with(line, quotes, stops, chunk_marks, |_, base, escaped| {
        valid_escapes(line, base, escaped)
    })
}

/// [`mark_line`] with 32-byte compares, half as many as the 16-byte
/// version's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mark_line_avx2(line: &[u8], quotes: &mut Vec<u64>, stops: &mut Vec<u64>) -> bool {
    mark_line_with(
        line,
        quotes,
        stops,
        |chunk| chunk_marks_avx2(chunk),
        |chunk, base, escaped| valid_escapes_avx2(chunk, line, base, escaped),
    )
}

#[inline(always)]
fn mark_line_with(
    line: &[u8],
    quotes: &mut Vec<u64>,
    stops: &mut Vec<u64>,
    marks_of: impl Fn(&[u8; 64]) -> Chunk,
    escapes_ok: impl Fn(&[u8; 64], usize, u64) -> bool,
) -> bool {
    quotes.clear();
    stops.clear();
    let chunks = line.chunks_exact(64);
    let mut pad = [b' '; 64];
    let rest = chunks.remainder();
    pad[..rest.len()].copy_from_slice(rest);
    // Whether the first byte of the next word is escaped.
    let mut carry = 0;
    for (w, chunk) in chunks.chain(std::iter::once(&pad[..])).enumerate() {
        let Ok(chunk) = <&[u8; 64]>::try_from(chunk) else {
            return false;
        };
        let Chunk {
            quote,
            escape,
            control,
            high,
        } = marks_of(chunk);
        if control != 0 {
            return false;
        }
        let escaped = escaped_bytes(escape, &mut carry);
        if escaped != 0 && !escapes_ok(chunk, w * 64, escaped) {
            return false;
        }
        let quote = quote & !escaped;
        quotes.push(quote);
        stops.push(quote | escape | high);
    }
    true
}

/// The bytes of a word that a backslash escapes, given its backslashes and
/// whether its first byte is escaped by the word before (updated for the
/// next). A run of backslashes escapes alternately, starting from the left:
/// a run starting on an even bit ends escaping on an odd one if its length
/// is odd, and so on; adding the run's start to it finds its end with no
/// loop (the carry-propagation trick of simdjson's string scanner).
fn escaped_bytes(backslash: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_led, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    (EVEN ^ (even_led << 1)) & follows_escape
}

/// Whether every escaped byte of the word starting at `base` is one
/// serde_json accepts after a backslash (`\u` with four hex digits).
fn valid_escapes(line: &[u8], base: usize, escaped: u64) -> bool {
    let mut bits = escaped;
    let (mut bad, mut unicode) = (false, false);
    while bits != 0 {
        let at = base + bits.trailing_zeros() as usize;
        bits &= bits - 1;
        // Past the end is the padding: a backslash ending the line.
        let byte = line.get(at).copied().unwrap_or(b' ');
        bad |= !matches!(
            byte,
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' | b'u'
        );
        unicode |= byte == b'u';
    }
    if bad {
        return false;
    }
    !unicode || hex_after_u(line, base, escaped)
}

/// Whether each escaped `u` among the bits of `escaped` (a word starting
/// at `base`) has four hex digits after it.
fn hex_after_u(line: &[u8], base: usize, escaped: u64) -> bool {
    let mut bits = escaped;
    while bits != 0 {
        let at = base + bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if line.get(at) == Some(&b'u') {
            let hex = line.get(at + 1..at + 5);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
        }
    }
    true
}

/// [`valid_escapes`] for the word `chunk` (the line's bytes from `base`,
/// padded with spaces), with every byte classed at once: text with many
/// escapes spent more in the loop over them than in marking the line.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn valid_escapes_avx2(chunk: &[u8; 64], line: &[u8], base: usize, escaped: u64) -> bool {
    let (not_letter, u) = escape_letters_avx2(chunk);
    escaped & not_letter == 0 && (escaped & u == 0 || hex_after_u(line, base, escaped & u))
}

/// The bytes of `chunk` that may not follow a backslash (anything but
/// `" \ / b f n r t u`), and its `u`s. A byte is a letter when the
/// classes of its low and high nibble (table look-ups) share a bit: one
/// bit per high nibble among 2, 5, 6 and 7, set at the low nibbles that
/// make a letter with it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn escape_letters_avx2(chunk: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_set1_epi8, _mm256_setr_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8,
        _mm256_srli_epi16,
    };
    // High nibble 2 (`"` `/`): 1, 5 (`\`): 2, 6 (`b` `f` `n`): 4, 7 (`r` `t` `u`): 8.
    #[rustfmt::skip]
    let by_low = _mm256_setr_epi8(
        0, 0, 1 | 4 | 8, 0, 8, 8, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1,
        0, 0, 1 | 4 | 8, 0, 8, 8, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1,
    );
    #[rustfmt::skip]
    let by_high = _mm256_setr_epi8(
        0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0,
    );
    let nibble = _mm256_set1_epi8(0x0f);
    let u = _mm256_set1_epi8(b'u' as i8);
    let (mut not_letter, mut us) = (0u64, 0u64);
    for half in 0..2 {
        // SAFETY: each load reads 32 bytes inside `chunk`; unaligned loads
        // are allowed.
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().add(32 * half).cast::<__m256i>()) };
        let low = _mm256_shuffle_epi8(by_low, _mm256_and_si256(v, nibble));
        let high = _mm256_shuffle_epi8(by_high, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
        let letter = _mm256_and_si256(low, high);
        let bits = |m| u64::from(_mm256_movemask_epi8(m) as u32) << (32 * half);
        not_letter |= bits(_mm256_cmpeq_epi8(letter, _mm256_setzero_si256()));
        us |= bits(_mm256_cmpeq_epi8(v, u));
    }
    (not_letter, us)
}

/// The bytes of interest in 64 bytes of a line, one bit a byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Chunk {
    quote: u64,
    escape: u64,
    /// Below 0x20.
    control: u64,
    /// Past ASCII.
    high: u64,
}

/// The [`Chunk`] of 64 bytes.
#[cfg(target_arch = "x86_64")]
fn chunk_marks(chunk: &[u8; 64]) -> Chunk {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut out = Chunk::default();
    // SAFETY: SSE2 is part of every x86_64 CPU; each load reads 16 bytes
    // inside `chunk`, and unaligned loads are allowed.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let escape = _mm_set1_epi8(b'\\' as i8);
        let below = _mm_set1_epi8(0x1f);
        for i in 0..4 {
            let v = _mm_loadu_si128(chunk.as_ptr().add(16 * i).cast::<__m128i>());
            let bits = |m| u64::from(_mm_movemask_epi8(m) as u16) << (16 * i);
            out.quote |= bits(_mm_cmpeq_epi8(v, quote));
            out.escape |= bits(_mm_cmpeq_epi8(v, escape));
            // max(v, 0x1f) == 0x1f exactly when v <= 0x1f (unsigned).
            out.control |= bits(_mm_cmpeq_epi8(_mm_max_epu8(v, below), below));
            // A byte's top bit is what the mask collects.
            out.high |= bits(v);
        }
    }
    out
}

/// [`chunk_marks`] with 32-byte compares.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chunk_marks_avx2(chunk: &[u8; 64]) -> Chunk {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_set1_epi8,
    };
    let quote = _mm256_set1_epi8(b'"' as i8);
    let escape = _mm256_set1_epi8(b'\\' as i8);
    let below = _mm256_set1_epi8(0x1f);
    let mut out = Chunk::default();
    for half in 0..2 {
        // SAFETY: each load reads 32 bytes inside `chunk`; unaligned loads
        // are allowed.
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().add(32 * half).cast::<__m256i>()) };
        let bits = |m| u64::from(_mm256_movemask_epi8(m) as u32) << (32 * half);
        out.quote |= bits(_mm256_cmpeq_epi8(v, quote));
        out.escape |= bits(_mm256_cmpeq_epi8(v, escape));
        // max(v, 0x1f) == 0x1f exactly when v <= 0x1f (unsigned).
        out.control |= bits(_mm256_cmpeq_epi8(_mm256_max_epu8(v, below), below));
        out.high |= bits(v);
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
fn chunk_marks(chunk: &[u8; 64]) -> Chunk {
    chunk_marks_portable(chunk)
}

/// [`chunk_marks`] a byte at a time: the reference the SIMD one is tested
/// against, and the version for other CPUs.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn chunk_marks_portable(chunk: &[u8; 64]) -> Chunk {
    let mut out = Chunk::default();
    for (i, &b) in chunk.iter().enumerate() {
        out.quote |= u64::from(b == b'"') << i;
        out.escape |= u64::from(b == b'\\') << i;
        out.control |= u64::from(b < 0x20) << i;
        out.high |= u64::from(b >= 0x80) << i;
    }
    out
}

impl<'a> Cursor<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// JSON whitespace, as serde_json reads it.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        if self.peek()? != byte {
            return None;
        }
        self.i += 1;
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if !self.b[self.i..].starts_with(word) {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// Walks the members of an object, handing each key (plain ASCII, no
    /// escapes) to `member`, which must read the value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.plain_string()?.as_bytes();
            self.eat(b':')?;
            self.ws();
            self.note_null(key);
            member(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string with no escapes and nothing serde_json could refuse: no
    /// control characters, valid UTF-8. Returns its contents. Inlined, as
    /// it reads every key of csm's objects: the call cost about as much as
    /// the look-up.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        if let Some(marks) = self.marks {
            let stop = marks.next_stop(start)?;
            if self.b[stop] == b'"' {
                // Nothing but ASCII before the closing quote.
                self.i = stop + 1;
                let s = &self.b[start..stop];
                debug_assert!(s.is_ascii(), "the marks said ASCII");
                // SAFETY: ASCII bytes are UTF-8.
                return Some(unsafe { std::str::from_utf8_unchecked(s) });
            }
        }
        self.plain_string_rest(start)
    }

    /// [`Self::plain_string`] past a quick answer: a string with a
    /// backslash or a byte past ASCII, or a line without marks.
    #[inline(never)]
    fn plain_string_rest(&mut self, start: usize) -> Option<&'a str> {
        let s = match self.marks {
            Some(marks) => {
                // A backslash or a byte past ASCII comes first.
                let end = marks.next_quote(start)?;
                &self.b[start..end]
            }
            None => {
                let len = find_stop(&self.b[start..])?;
                if self.b[start + len] != b'"' {
                    return None;
                }
                &self.b[start..start + len]
            }
        };
        if s.contains(&b'\\') {
            return None;
        }
        let text = if s.is_ascii() {
            // SAFETY: ASCII bytes are UTF-8 (checked just above).
            unsafe { std::str::from_utf8_unchecked(s) }
        } else {
            std::str::from_utf8(s).ok()?
        };
        self.i = start + s.len() + 1;
        Some(text)
    }

    /// `null` or a plain string, as an `Option<Cow<str>>` field.
    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        Some(Some(Cow::Borrowed(self.plain_string()?)))
    }

    fn opt_bool(&mut self) -> Option<Option<bool>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            _ => None,
        }
    }

    /// An unsigned integer serde_json reads as `u64` without a detour
    /// through floats: no sign, fraction, exponent or leading zero, at most
    /// 19 digits.
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            if self.i - start == 19 {
                return None;
            }
            n = n * 10 + u64::from(d - b'0');
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(n)
    }

    fn opt_uint(&mut self) -> Option<Option<u64>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        self.uint().map(Some)
    }

    /// `null` or a number, as an `Option<f64>` field. The number's text is
    /// found here by the grammar, and turned into a float by serde_json
    /// itself: its rounding is not always the nearest float (no
    /// `float_roundtrip`), and the two readings must agree to the bit.
    fn opt_f64(&mut self) -> Option<Option<f64>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let start = self.i;
        self.skip_number()?;
        serde_json::from_slice::<f64>(&self.b[start..self.i])
            .ok()
            .map(Some)
    }

    fn raw_line(&mut self) -> Option<RawLine<'a>> {
        let mut raw = RawLine {
            timestamp: None,
            message: None,
            request_id: None,
            session_id: None,
            version: None,
            cost_usd: None,
            is_sidechain: None,
            is_api_error: None,
        };
        let names: [&[u8]; 8] = [
            b"timestamp",
            b"message",
            b"requestId",
            b"sessionId",
            b"version",
            b"costUSD",
            b"isSidechain",
            b"isApiErrorMessage",
        ];
        self.fields(&names, |c, field| {
            match field {
                0 => raw.timestamp = c.opt_str()?,
                1 => raw.message = c.opt_message()?,
                2 => raw.request_id = c.opt_str()?,
                3 => raw.session_id = c.opt_str()?,
                4 => raw.version = c.opt_str()?,
                5 => raw.cost_usd = c.opt_f64()?,
                6 => raw.is_sidechain = c.opt_bool()?,
                _ => raw.is_api_error = c.opt_bool()?,
            }
            Some(())
        })?;
        Some(raw)
    }

    /// Walks an object of csm's: `read` gets the position in `names` of
    /// each member named there and must read its value; other members are
    /// skipped. A name seen twice is serde's "duplicate field" error.
    fn fields(
        &mut self,
        names: &[&[u8]],
        mut read: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        let mut seen = 0u32;
        // Length and end bytes first: most keys are told apart without a
        // comparison of the whole (a call to memcmp each).
        let named = |key: &[u8]| {
            names.iter().position(|name| {
                name.len() == key.len()
                    && name.first() == key.first()
                    && name.last() == key.last()
                    && *name == key
            })
        };
        self.object(|c, key| match named(key) {
            Some(field) if seen & (1 << field) == 0 => {
                seen |= 1 << field;
                read(c, field)
            }
            Some(_) => None,
            None => c.skip_value(),
        })
    }

    /// `Some(false)` after a `null`, `Some(true)` at an object; `None`
    /// for anything else (serde would also read an array as a struct: let
    /// it).
    fn null_or_object(&mut self) -> Option<bool> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| false),
            b'{' => Some(true),
            _ => None,
        }
    }

    fn opt_message(&mut self) -> Option<Option<RawMessage<'a>>> {
        if !self.null_or_object()? {
            return Some(None);
        }
        let mut message = RawMessage {
            usage: None,
            model: None,
            id: None,
        };
        self.fields(&[b"usage", b"model", b"id"], |c, field| {
            match field {
                0 => message.usage = c.opt_usage()?,
                1 => message.model = c.opt_str()?,
                _ => message.id = c.opt_str()?,
            }
            Some(())
        })?;
        Some(Some(message))
    }

    fn opt_usage(&mut self) -> Option<Option<RawUsage>> {
        if !self.null_or_object()? {
            return Some(None);
        }
        let (mut input, mut output) = (None, None);
        let mut usage = RawUsage {
            input_tokens: 0,
            output_tokens: 0,
            cache_creation_input_tokens: None,
            cache_read_input_tokens: None,
            cache_creation: None,
            speed: None,
        };
        let names: [&[u8]; 6] = [
            b"input_tokens",
            b"output_tokens",
            b"cache_creation_input_tokens",
            b"cache_read_input_tokens",
            b"cache_creation",
            b"speed",
        ];
        self.fields(&names, |c, field| {
            match field {
                0 => input = Some(c.uint()?),
                1 => output = Some(c.uint()?),
                2 => usage.cache_creation_input_tokens = c.opt_uint()?,
                3 => usage.cache_read_input_tokens = c.opt_uint()?,
                4 => usage.cache_creation = c.opt_cache_creation()?,
                _ => usage.speed = c.opt_speed()?,
            }
            Some(())
        })?;
        // Missing required counts are serde's error to report.
        usage.input_tokens = input?;
        usage.output_tokens = output?;
        Some(Some(usage))
    }

    fn opt_cache_creation(&mut self) -> Option<Option<RawCacheCreation>> {
        if !self.null_or_object()? {
            return Some(None);
        }
        let mut split = RawCacheCreation {
            ephemeral_5m_input_tokens: None,
            ephemeral_1h_input_tokens: None,
        };
        let names: [&[u8]; 2] = [b"ephemeral_5m_input_tokens", b"ephemeral_1h_input_tokens"];
        // Present means a number here: `null` is a type error.
        self.fields(&names, |c, field| {
            let count = Some(c.uint()?);
            match field {
                0 => split.ephemeral_5m_input_tokens = count,
                _ => split.ephemeral_1h_input_tokens = count,
            }
            Some(())
        })?;
        Some(Some(split))
    }

    fn opt_speed(&mut self) -> Option<Option<RawSpeed>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        match self.plain_string()? {
            "standard" => Some(Some(RawSpeed::Standard)),
            "fast" => Some(Some(RawSpeed::Fast)),
            _ => None,
        }
    }

    /// Skips one value of any kind, by serde_json's rules for a value it
    /// ignores: strict grammar, no depth limit, strings checked for control
    /// characters and escapes but not for UTF-8.
    fn skip_value(&mut self) -> Option<()> {
        let base = self.stack.len();
        loop {
            // A value.
            self.ws();
            match self.peek()? {
                b'"' => self.skip_string()?,
                open @ (b'{' | b'[') => {
                    self.i += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.i += 1;
                    } else {
                        self.stack.push(open);
                        if open == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                _ => return None,
            }
            // What follows it: close containers until one wants another value.
            loop {
                if self.stack.len() == base {
                    return Some(());
                }
                let open = *self.stack.last()?;
                self.ws();
                match (open, self.peek()?) {
                    (_, b',') => {
                        self.i += 1;
                        if open == b'{' {
                            self.member_key()?;
                        }
                        break;
                    }
                    (b'{', b'}') | (b'[', b']') => {
                        self.i += 1;
                        self.stack.pop();
                    }
                    _ => return None,
                }
            }
        }
    }

    /// The key and colon of a member inside a skipped object.
    fn member_key(&mut self) -> Option<()> {
        self.ws();
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        self.skip_string()?;
        let key = &self.b[start..self.i - 1];
        self.eat(b':')?;
        self.ws();
        self.note_null(key);
        Some(())
    }

    /// At a member's value: notes a `null` under a rejecting key. Only
    /// valid lines are answered, where a value starting with `n` is `null`.
    fn note_null(&mut self, key: &[u8]) {
        if self.peek() == Some(b'n') && super::is_rejecting_key(key) {
            self.rejected_null = true;
        }
    }

    /// At an opening quote: skips to just past the closing one.
    #[inline(always)]
    fn skip_string(&mut self) -> Option<()> {
        self.i += 1;
        if let Some(marks) = self.marks {
            self.i = marks.next_quote(self.i)? + 1;
            return Some(());
        }
        self.skip_string_unmarked()
    }

    /// [`Self::skip_string`] in a line without marks, checking escapes.
    #[inline(never)]
    fn skip_string_unmarked(&mut self) -> Option<()> {
        loop {
            let rest = &self.b[self.i..];
            let at = find_stop(rest)?;
            self.i += at + 1;
            match rest[at] {
                b'"' => return Some(()),
                b'\\' => {}
                _ => return None,
            }
            match self.peek()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                b'u' => {
                    let hex = self.b.get(self.i + 1..self.i + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 5;
                }
                _ => return None,
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`
    fn skip_number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        let digits = |c: &mut Self| {
            let n = c.b[c.i..].iter().take_while(|b| b.is_ascii_digit()).count();
            c.i += n;
            n
        };
        if self.peek()? == b'0' {
            self.i += 1;
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return None;
            }
        } else if digits(self) == 0 {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }
}

/// Where a string's plain run ends: at a quote, a backslash, or a byte
/// below 0x20 (which JSON forbids raw in a string). Most strings in a line
/// are short keys and values, which a byte loop finishes before `memchr2`
/// would have set up; long ones (message text, tool input) go to `memchr2`.
fn find_stop(s: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let stop = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    let head = s.len().min(SHORT);
    if let Some(at) = s[..head].iter().position(|&b| stop(b)) {
        return Some(at);
    }
    let rest = &s[head..];
    let quote_or_escape = memchr2(b'"', b'\\', rest);
    let run = &rest[..quote_or_escape.unwrap_or(rest.len())];
    let control = if has_control(run) {
        run.iter().position(|&b| b < 0x20)
    } else {
        None
    };
    control.or(quote_or_escape).map(|at| head + at)
}

/// Any byte below 0x20. Written without early exit so the compiler can
/// check many bytes at once.
fn has_control(s: &[u8]) -> bool {
    s.chunks(64)
        .any(|chunk| chunk.iter().fold(false, |any, &b| any | (b < 0x20)))
}

/// False when the quick reading of `line` exists and differs from
/// serde_json's (which must then also succeed). For tests and fuzzing.
pub fn agrees_with_serde(line: &[u8]) -> bool {
    match read_line(line, &mut Scratch::default()) {
        None => true,
        Some(fast) => match serde_json::from_slice::<RawLine<'_>>(line) {
            Ok(slow) => fast.raw == slow && fast.rejected_null == super::has_rejected_null(line),
            Err(_) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(line: &str) -> Option<RawLine<'_>> {
        read_line(line.as_bytes(), &mut Scratch::default()).map(|q| q.raw)
    }

    const LINE: &str = r#"{"parentUuid":null,"isSidechain":false,"cwd":"/w","sessionId":"s1","version":"2.0.14","message":{"model":"claude-sonnet-4-5","id":"m1","type":"message","content":[{"type":"text","text":"a \"quoted\" \\ line\n\u00e9 ü"},{"type":"tool_use","input":{"n":[1,-2.5e3,0,true,null,{}],"e":[]}}],"usage":{"input_tokens":3,"cache_creation_input_tokens":10,"cache_read_input_tokens":200,"cache_creation":{"ephemeral_5m_input_tokens":4,"ephemeral_1h_input_tokens":6},"output_tokens":5,"service_tier":"standard","speed":"fast"}},"requestId":"r1","type":"assistant","timestamp":"2025-06-01T10:00:00.000Z"}"#;

    #[test]
    fn a_typical_line_is_read_and_matches_serde() {
        let raw = quick(LINE).expect("plain line");
        assert_eq!(raw.timestamp.as_deref(), Some("2025-06-01T10:00:00.000Z"));
        assert_eq!(raw.is_sidechain, Some(false));
        let message = raw.message.as_ref().unwrap();
        assert_eq!(message.id.as_deref(), Some("m1"));
        let usage = message.usage.as_ref().unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (3, 5));
        assert_eq!(usage.cache_read_input_tokens, Some(200));
        assert!(agrees_with_serde(LINE.as_bytes()));
        let spaced = format!(" \t{}\r\n ", LINE.replace(",", " ,\n ").replace(":", " : "));
        assert!(quick(&spaced).is_some(), "{spaced}");
        assert!(agrees_with_serde(spaced.as_bytes()));
    }

    #[test]
    fn doubtful_lines_are_left_to_serde() {
        let cases = [
            // Escapes where csm keeps the string or matches a key.
            LINE.replace(r#""id":"m1""#, r#""id":"m\u0031""#),
            LINE.replace(r#""usage""#, r#""us\u0061ge""#),
            // Duplicate fields, floats, big or signed counts, leading zeros.
            LINE.replace(
                r#""requestId":"r1""#,
                r#""requestId":"r1","requestId":"r2""#,
            ),
            LINE.replace(r#""input_tokens":3"#, r#""input_tokens":3.0"#),
            LINE.replace(
                r#""input_tokens":3"#,
                r#""input_tokens":30000000000000000000"#,
            ),
            LINE.replace(r#""input_tokens":3"#, r#""input_tokens":-3"#),
            LINE.replace(r#""input_tokens":3"#, r#""input_tokens":03"#),
            // A cost serde_json cannot hold in a float.
            LINE.replace(r#""parentUuid":null"#, r#""costUSD":1e400"#),
            // Null where serde_json refuses it, a missing required count.
            LINE.replace(
                r#""ephemeral_1h_input_tokens":6"#,
                r#""ephemeral_1h_input_tokens":null"#,
            ),
            LINE.replace(r#""input_tokens":3,"#, ""),
            // Bad JSON: trailing comma, bad number, raw control byte, bad
            // escape, trailing bytes, not an object, truncated.
            LINE.replace(r#"{}],"#, r#"{},],"#),
            LINE.replace("-2.5e3", "-2.e3"),
            LINE.replace("a \\\"quoted", "a \t quoted"),
            LINE.replace("\\n", "\\x"),
            format!("{LINE}x"),
            format!("[{LINE}]"),
            LINE[..LINE.len() - 1].to_string(),
            // Unknown speed, a message given as an array.
            LINE.replace(r#""speed":"fast""#, r#""speed":"warp""#),
            r#"{"message":[{"usage":null}],"timestamp":"t"}"#.to_string(),
        ];
        for line in &cases {
            assert!(quick(line).is_none(), "should defer: {line}");
            assert!(agrees_with_serde(line.as_bytes()));
        }
    }

    /// The null rule is answered by the walk, at any depth and through
    /// escaped keys, and never by text inside a string.
    #[test]
    fn the_walk_finds_a_null_under_a_rejecting_key() {
        let cases = [
            (LINE.to_string(), false),
            (LINE.replace(r#""cwd":"/w""#, r#""cwd":null"#), true),
            (
                LINE.replace(r#""model":"claude-sonnet-4-5""#, r#""model":null"#),
                true,
            ),
            (
                LINE.replace(r#""e":[]"#, r#""e":[{"x":{"id":null}}]"#),
                true,
            ),
            (LINE.replace(r#""e":[]"#, r#""e":{"id" : null}"#), true),
            (
                LINE.replace(r#""e":[]"#, r#""e":{"idx":null,"ID":null}"#),
                false,
            ),
            (LINE.replace(r#""e":[]"#, r#""e":["id",null]"#), false),
            (LINE.replace("a \"quoted", r#""id":null"#), false),
        ];
        for (line, rejected) in &cases {
            let read = read_line(line.as_bytes(), &mut Scratch::default())
                .unwrap_or_else(|| panic!("should be quick: {line}"));
            assert_eq!(read.rejected_null, *rejected, "{line}");
            assert_eq!(
                super::super::has_rejected_null(line.as_bytes()),
                *rejected,
                "{line}"
            );
            assert!(agrees_with_serde(line.as_bytes()), "{line}");
        }
    }

    /// Older transcripts carry a `costUSD` on every usage line; the number
    /// becomes the same float serde_json makes of it, to the bit.
    #[test]
    fn costs_are_read_quickly_and_rounded_as_serde_rounds_them() {
        for cost in [
            "0.5",
            "0",
            "-0",
            "-0.0",
            "12",
            "0.08196",
            "1e-7",
            "2.5E+3",
            "0.30000000000000004",
            "2.2250738585072011e-308",
            "9007199254740993",
            "123456789012345678901234567890",
            "0.1234567890123456789012345678901234567890",
        ] {
            let line = LINE.replace(r#""parentUuid":null"#, &format!(r#""costUSD":{cost}"#));
            let raw = quick(&line).unwrap_or_else(|| panic!("should be quick: {cost}"));
            let slow: RawLine<'_> = serde_json::from_str(&line).unwrap();
            assert_eq!(
                raw.cost_usd.map(f64::to_bits),
                slow.cost_usd.map(f64::to_bits),
                "{cost}"
            );
            assert!(raw.cost_usd.is_some(), "{cost}");
            assert!(agrees_with_serde(line.as_bytes()), "{cost}");
        }
    }

    /// Every line of a generated history (real layout and line mix,
    /// malformed lines included) reads the same both ways, and the quick
    /// reader takes nearly all usage lines itself.
    #[test]
    fn a_generated_history_reads_the_same_and_mostly_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::synth::default_now();
        crate::synth::generate(
            dir.path(),
            &crate::synth::SynthOptions::new(7, 4 << 20, now),
        )
        .unwrap();
        let (mut usage, mut quick) = (0, 0);
        let mut files = vec![dir.path().to_path_buf()];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            for line in std::fs::read(&path).unwrap().split(|&b| b == b'\n') {
                assert!(agrees_with_serde(line), "{}", String::from_utf8_lossy(line));
                if serde_json::from_slice::<RawLine<'_>>(line)
                    .is_ok_and(|raw| raw.message.is_some_and(|m| m.usage.is_some()))
                {
                    usage += 1;
                    quick += usize::from(read_line(line, &mut Scratch::default()).is_some());
                }
            }
        }
        assert!(usage > 500, "{usage} usage lines");
        assert!(quick * 100 >= usage * 95, "{quick} of {usage} read quickly");
    }

    /// The table look-ups class every byte value as the byte loop does,
    /// and the whole check agrees with it on words full of escapes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_escape_letters_match_the_byte_loop() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for start in (0..=255u8).step_by(64) {
            let chunk: [u8; 64] = std::array::from_fn(|i| start + i as u8);
            // SAFETY: the CPU was just found to have AVX2.
            let (not_letter, u) = unsafe { escape_letters_avx2(&chunk) };
            for (i, b) in chunk.iter().enumerate() {
                let letter = b"\"\\/bfnrtu".contains(b);
                assert_eq!(not_letter >> i & 1 == 0, letter, "{b:#x}");
                assert_eq!(u >> i & 1 == 1, *b == b'u', "{b:#x}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    proptest::proptest! {
        #[test]
        fn simd_escape_check_matches_the_byte_loop(
            picks in proptest::array::uniform32(0usize..24),
            more in proptest::array::uniform32(0usize..24),
            tail in proptest::array::uniform4(0usize..24),
            escaped in proptest::num::u64::ANY,
        ) {
            if !std::arch::is_x86_feature_detected!("avx2") {
                return Ok(());
            }
            const BYTES: &[u8] = b"\"\\/bfnrtuuuu0aF9gx \x01\x80\xff";
            let line: Vec<u8> = picks
                .iter()
                .chain(&more)
                .chain(&tail)
                .map(|&i| BYTES[i % BYTES.len()])
                .collect();
            let chunk: [u8; 64] = line[..64].try_into().unwrap();
            // SAFETY: the CPU was just found to have AVX2.
            let fast = unsafe { valid_escapes_avx2(&chunk, &line, 0, escaped) };
            proptest::prop_assert_eq!(fast, valid_escapes(&line, 0, escaped));
        }
    }

    #[cfg(target_arch = "x86_64")]
    proptest::proptest! {
        #[test]
        fn simd_marks_match_the_byte_loop(
            low in proptest::array::uniform32(proptest::num::u8::ANY),
            high in proptest::array::uniform32(proptest::num::u8::ANY),
        ) {
            let mut chunk = [0u8; 64];
            chunk[..32].copy_from_slice(&low);
            chunk[32..].copy_from_slice(&high);
            proptest::prop_assert_eq!(chunk_marks(&chunk), chunk_marks_portable(&chunk));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let wide = unsafe { chunk_marks_avx2(&chunk) };
                proptest::prop_assert_eq!(wide, chunk_marks_portable(&chunk));
            }
        }
    }

    proptest::proptest! {
        /// The carry trick marks exactly the bytes a left-to-right reading
        /// of escapes marks, across word boundaries.
        #[test]
        fn escaped_bytes_match_a_left_to_right_reading(
            text in proptest::collection::vec(
                proptest::prop_oneof![proptest::strategy::Just(b'\\'), proptest::strategy::Just(b'a')],
                0..200,
            )
        ) {
            let mut expected = vec![false; text.len() + 64];
            let mut i = 0;
            while i < text.len() {
                if text[i] == b'\\' {
                    expected[i + 1] = true;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            let mut carry = 0;
            for (w, chunk) in text.chunks(64).enumerate() {
                let backslash = chunk
                    .iter()
                    .enumerate()
                    .fold(0u64, |m, (j, &b)| m | u64::from(b == b'\\') << j);
                let escaped = escaped_bytes(backslash, &mut carry);
                for j in 0..chunk.len() {
                    proptest::prop_assert_eq!(escaped >> j & 1 == 1, expected[w * 64 + j], "byte {}", w * 64 + j);
                }
            }
            let ends_escaping = carry == 1;
            proptest::prop_assert_eq!(ends_escaping, expected[text.len()] && text.len() % 64 == 0);
        }
    }

    /// Escapes in a skipped string at every position relative to the
    /// 64-byte words of the marks: valid ones read the same as serde_json,
    /// bad ones are left to it.
    #[test]
    fn escapes_across_mark_words_read_as_serde_does() {
        let valid = [
            r#"\""#,
            r#"\\"#,
            r#"\\\""#,
            r#"\\\\"#,
            r#"\"\""#,
            r#"\u00e9"#,
            r#"\/\b\f\n\r\t"#,
            r#"x\\"#,
            r#"\\\\\""#,
        ];
        let bad = [r#"\x"#, r#"\u12"#, r#"\u12g4"#, r#"\"#, "\u{1}", r#"\\\"#];
        for pad in 0..70 {
            let filler = "p".repeat(pad);
            for piece in valid {
                for line in [
                    LINE.replace(r#"a \"quoted"#, &format!("{filler}{piece}")),
                    LINE.replace(r#"\u00e9 ü"#, &format!("{filler}{piece}")),
                ] {
                    assert!(quick(&line).is_some(), "{line}");
                    assert!(agrees_with_serde(line.as_bytes()), "{line}");
                }
            }
            for piece in bad {
                let line = LINE.replace(r#"a \"quoted"#, &format!("{filler}{piece}"));
                assert!(quick(&line).is_none(), "{line}");
                assert!(agrees_with_serde(line.as_bytes()), "{line}");
            }
            // A kept string or a key with an escape, and a backslash outside
            // any string, whatever word they fall in.
            for line in [
                LINE.replace(r#""id":"m1""#, &format!(r#""id":"{filler}\"m1""#)),
                LINE.replace(
                    r#""cwd":"/w""#,
                    &format!(r#""cwd":"{filler}","\u0063wd":1"#),
                ),
                LINE.replace(r#""cwd":"/w""#, &format!(r#""cwd":"{filler}"\"#)),
            ] {
                assert!(quick(&line).is_none(), "{line}");
                assert!(agrees_with_serde(line.as_bytes()), "{line}");
            }
        }
    }

    #[test]
    fn what_serde_skips_unchecked_is_skipped_here_too() {
        // serde_json does not check UTF-8 or \u code points in values it ignores.
        let mut bytes = LINE.replace("ü", "\u{0}").into_bytes();
        let at = bytes.iter().position(|&b| b == 0).unwrap();
        bytes[at] = 0xff;
        assert!(read_line(&bytes, &mut Scratch::default()).is_some());
        assert!(agrees_with_serde(&bytes));
        let lone = LINE.replace("\\u00e9", "\\ud800");
        assert!(quick(&lone).is_some());
        assert!(agrees_with_serde(lone.as_bytes()));
        // Nesting far beyond serde's limit for the values it reads.
        let deep = LINE.replace(
            r#""e":[]"#,
            &format!(r#""e":{}{}"#, "[".repeat(5000), "]".repeat(5000)),
        );
        assert!(quick(&deep).is_some());
        assert!(agrees_with_serde(deep.as_bytes()));
    }
}
