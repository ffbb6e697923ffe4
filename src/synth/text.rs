//! Text material: a pre-escaped text pool for message and tool-result bodies,
//! a base64 pool for images and signatures, identifiers and timestamps.

use super::rng::Rng;

const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &[u8] = b"0123456789abcdef";

/// Appends `s` escaped as the inside of a JSON string.
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
}

/// A v4-style UUID as 36 ASCII bytes.
pub(crate) fn uuid(rng: &mut Rng) -> [u8; 36] {
    let a = rng.next_u64();
    let b = rng.next_u64();
    let mut nibbles = [0u8; 32];
    for i in 0..16 {
        nibbles[i] = ((a >> (60 - 4 * i)) & 15) as u8;
        nibbles[16 + i] = ((b >> (60 - 4 * i)) & 15) as u8;
    }
    nibbles[12] = 4;
    nibbles[16] = 8 | (nibbles[16] & 3);
    let mut out = [b'-'; 36];
    let mut j = 0;
    for (i, slot) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        *slot = HEX[nibbles[j] as usize];
        j += 1;
    }
    out
}

/// `prefix` followed by `n` base62 characters (`msg_01…`, `req_011C…`, `toolu_01…`).
pub(crate) fn b62_id<const N: usize>(rng: &mut Rng, prefix: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out[..prefix.len()].copy_from_slice(prefix);
    for slot in out.iter_mut().skip(prefix.len()) {
        *slot = B62[rng.below(62) as usize];
    }
    out
}

/// `n` lowercase hex characters.
pub(crate) fn hex_id(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| HEX[rng.below(16) as usize] as char)
        .collect()
}

/// Appends an ISO-8601 UTC timestamp with milliseconds (`2026-11-20T10:15:30.123Z`).
pub(crate) fn push_iso(out: &mut Vec<u8>, ms: i64) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    push_num(out, y as u64, 4);
    out.push(b'-');
    push_num(out, m as u64, 2);
    out.push(b'-');
    push_num(out, d as u64, 2);
    out.push(b'T');
    push_num(out, (sod / 3600) as u64, 2);
    out.push(b':');
    push_num(out, (sod / 60 % 60) as u64, 2);
    out.push(b':');
    push_num(out, (sod % 60) as u64, 2);
    out.push(b'.');
    push_num(out, milli as u64, 3);
    out.push(b'Z');
}

fn push_num(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = tmp.len() - i;
    for _ in digits..width {
        out.push(b'0');
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends a decimal integer.
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    push_num(out, v, 1);
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const IDENTS: &[&str] = &[
    "ingest",
    "parse_line",
    "entries",
    "block",
    "window",
    "offset",
    "reader",
    "store",
    "snapshot",
    "config",
    "pricing",
    "usage",
    "tokens",
    "session",
    "project",
    "cache",
    "dedup_key",
    "request_id",
    "message_id",
    "timestamp",
    "burn_rate",
    "projection",
    "handle",
    "state",
    "buf",
    "path",
    "files",
    "root",
    "limit",
    "model",
    "cost",
    "total",
];
const TYPES: &[&str] = &[
    "u64",
    "usize",
    "String",
    "&str",
    "PathBuf",
    "Vec<Entry>",
    "Option<Block>",
    "Timestamp",
    "HashMap<String, u64>",
    "Result<Usage>",
    "&[u8]",
    "bool",
];
const METHODS: &[&str] = &[
    "iter",
    "len",
    "to_owned",
    "clone",
    "as_ref",
    "unwrap_or_default",
    "into_iter",
    "collect",
    "flush",
    "sync_all",
    "read_to_end",
    "parse",
    "saturating_sub",
];
const WORDS: &[&str] = &[
    "the",
    "a",
    "file",
    "reader",
    "now",
    "handles",
    "partial",
    "lines",
    "and",
    "keeps",
    "offset",
    "of",
    "last",
    "complete",
    "line",
    "so",
    "that",
    "incremental",
    "ingest",
    "never",
    "double-counts",
    "entries",
    "when",
    "daemon",
    "restarts",
    "test",
    "passes",
    "block",
    "starts",
    "at",
    "hour",
    "window",
    "cost",
    "tokens",
    "cache",
    "read",
    "creation",
    "is",
    "computed",
    "from",
    "pricing",
    "table",
    "I'll",
    "check",
    "fix",
    "this",
    "function",
    "returns",
    "error",
    "because",
    "path",
    "does",
    "not",
    "exist",
    "résumé",
    "naïve",
    "Zażółć",
    "gęślą",
    "jaźń",
    "→",
    "✓",
    "日本語",
    "🚀",
    "≥",
    "µs",
];
const TOOLS: &[&str] = &[
    "Bash",
    "Read",
    "Edit",
    "Grep",
    "Glob",
    "Write",
    "Task",
    "TodoWrite",
    "WebFetch",
];

/// Tool names used for `tool_use` blocks.
pub(crate) fn tool_name(rng: &mut Rng) -> &'static str {
    TOOLS[rng.weighted(&[30, 28, 18, 8, 6, 4, 3, 2, 1])]
}

fn words(rng: &mut Rng, out: &mut String, n: u64) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick_str(WORDS));
    }
}

/// One raw (unescaped) pool line, ending with '\n'.
fn pool_line(rng: &mut Rng, out: &mut String) {
    use std::fmt::Write;
    let id = |rng: &mut Rng| rng.pick_str(IDENTS);
    let _ = match rng.below(12) {
        0 => writeln!(
            out,
            "    let {} = {}.{}()?;",
            id(rng),
            id(rng),
            rng.pick(METHODS)
        ),
        1 => writeln!(
            out,
            "pub fn {}(&mut self, {}: {}) -> Result<{}> {{",
            id(rng),
            id(rng),
            rng.pick(TYPES),
            rng.pick(TYPES)
        ),
        2 => writeln!(out, "        }}\n    }}"),
        3 => writeln!(
            out,
            "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z  INFO csm::{}: scanned {} files, {} new lines in {}ms",
            rng.range(1, 28),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            id(rng),
            rng.range(1, 4000),
            rng.range(0, 90_000),
            rng.range(1, 900)
        ),
        4 => writeln!(
            out,
            "test {}::tests::{}_{} ... \u{1b}[32mok\u{1b}[0m",
            id(rng),
            id(rng),
            id(rng)
        ),
        5 => {
            let n = rng.range(5, 22);
            words(rng, out, n);
            writeln!(out, ".")
        }
        6 => writeln!(
            out,
            "{{\"type\":\"assistant\",\"message\":{{\"model\":\"claude-sonnet-4-6\",\"usage\":{{\"input_tokens\":{},\"output_tokens\":{}}}}},\"timestamp\":\"2026-11-{:02}T12:00:00.000Z\"}}",
            rng.range(1, 5000),
            rng.range(1, 4000),
            rng.range(1, 28)
        ),
        7 => writeln!(
            out,
            "/home/dev/code/api/src/{}/{}.rs:{}:{}",
            id(rng),
            id(rng),
            rng.range(1, 900),
            rng.range(1, 80)
        ),
        8 => writeln!(
            out,
            "{}\t{}\t{}\t{}",
            id(rng),
            rng.below(100_000),
            rng.below(1000),
            rng.pick(TYPES)
        ),
        9 => writeln!(
            out,
            "    println!(\"{{}}\\n\", {}.display()); // C:\\Users\\dev\\{}.txt",
            id(rng),
            id(rng)
        ),
        10 => writeln!(
            out,
            "{}    | {} {}",
            rng.range(1, 999),
            rng.pick(METHODS),
            id(rng)
        ),
        _ => {
            out.push_str("// ");
            let n = rng.range(3, 12);
            words(rng, out, n);
            out.push('\n');
            Ok(())
        }
    };
}

/// Escaped text and base64 material, built once per run.
pub(crate) struct Pool {
    text: Vec<u8>,
    /// Offsets in `text` where a line starts (safe cut points).
    cuts: Vec<u32>,
    b64: Vec<u8>,
}

const TEXT_POOL: usize = 384 * 1024;
const B64_POOL: usize = 96 * 1024;

impl Pool {
    pub(crate) fn new(rng: &mut Rng) -> Pool {
        let mut text = Vec::with_capacity(TEXT_POOL + 1024);
        let mut cuts = Vec::new();
        let mut line = String::new();
        while text.len() < TEXT_POOL {
            line.clear();
            pool_line(rng, &mut line);
            cuts.push(text.len() as u32);
            escape_into(&mut text, &line);
        }
        let b64 = (0..B64_POOL).map(|_| B64[rng.below(64) as usize]).collect();
        Pool { text, cuts, b64 }
    }

    /// Appends about `len` bytes of escaped text (whole pool lines).
    pub(crate) fn text(&self, rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
        let mut start = self.cuts[rng.below(self.cuts.len() as u64) as usize] as usize;
        let mut need = len.max(1);
        loop {
            let want_end = start + need;
            if want_end >= self.text.len() {
                out.extend_from_slice(&self.text[start..]);
                need -= self.text.len() - start;
                start = 0;
                continue;
            }
            let ci = self.cuts.partition_point(|&c| (c as usize) < want_end);
            let end = self.cuts.get(ci).map_or(self.text.len(), |&c| c as usize);
            out.extend_from_slice(&self.text[start..end]);
            return;
        }
    }

    /// Appends exactly `len` base64 characters.
    pub(crate) fn base64(&self, rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
        let mut start = rng.below(self.b64.len() as u64) as usize;
        let mut need = len;
        while need > 0 {
            let take = need.min(self.b64.len() - start);
            out.extend_from_slice(&self.b64[start..start + take]);
            need -= take;
            start = 0;
        }
    }
}

const PROMPTS: &[&str] = &[
    "Fix the failing test in the ingest module",
    "Why does the dashboard flicker when the terminal is resized?",
    "Add a --json flag to the blocks command that matches ccusage's output",
    "Refactor the pricing lookup so tiered prices are applied per token kind",
    "Can you review this diff and tell me what could break?",
    "Run the benchmarks and compare them with yesterday's numbers",
    "The daemon doesn't pick up new lines on macOS, investigate",
    "Write a migration that adds the speed column",
    "Explain how de-duplication works for resumed sessions",
    "Update the README with the new configuration keys",
    "please continue",
    "yes, go ahead",
    "Make the status line answer in under 20 ms",
    "Add property tests for the block splitter",
    "The CI is red on the clippy step, fix it",
    "Implement the inactivity alert described in the spec",
    "What's using so much memory when we parse 1 GiB of transcripts?",
    "Rename `entries` to `usage_entries` everywhere",
    "commit this with a good message",
    "Zażółć gęślą jaźń — check that unicode paths work ✓",
];

/// A user prompt (raw text).
pub(crate) fn prompt(rng: &mut Rng) -> &'static str {
    rng.pick_str(PROMPTS)
}

const SUMMARIES: &[&str] = &[
    "Incremental JSONL ingest with crash-safe offsets",
    "Fix flaky daemon lock test",
    "Tiered pricing for 1M-context models",
    "Dashboard layout for small terminals",
    "Billing period edge cases for day 31",
    "Status line latency investigation",
    "Notification backends refactor",
    "Claude Code hooks integration",
];

pub(crate) fn summary_title(rng: &mut Rng) -> &'static str {
    rng.pick_str(SUMMARIES)
}

const NOISE: &[&str] = &[
    "Error: EPIPE: broken pipe, write",
    "undefined",
    "[object Object]",
    "<<<<<<< HEAD",
    "npm WARN deprecated inflight@1.0.6",
    "{\"type\":\"assistant\" (truncated)",
    "Segmentation fault (core dumped)",
    "\u{feff}{}garbage",
];

pub(crate) fn noise_line(rng: &mut Rng) -> &'static str {
    rng.pick_str(NOISE)
}

/// An identifier-like word (file names, functions).
pub(crate) fn ident(rng: &mut Rng) -> &'static str {
    rng.pick_str(IDENTS)
}
