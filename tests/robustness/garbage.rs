//! Garbage in the transcript tree never fails a run and never changes a
//! report: a generated clean history gives byte-identical `blocks`, `daily`
//! and `session` JSON before and after junk is added next to it, read fully
//! in memory (`--no-store`), into a new history store, and incrementally into
//! the store that already holds the clean history. `doctor` counts the junk
//! by reason.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Instant;

use claude_session_monitor::synth::{SynthOptions, default_now, generate};
use serde_json::Value;

use crate::support::{NOW, Sandbox, json_ok, stdout_ok};
use crate::tools::run_measured;

const REPORTS: [&[&str]; 3] = [
    &["blocks", "--json"],
    &["daily", "--json"],
    &["session", "--json"],
];

/// Size of the single line without usage that is far larger than what the
/// reader holds in memory (16 MiB).
const HUGE_LINE_BYTES: u64 = 200 * 1024 * 1024;

const DEPTH: usize = 200_000;

/// Peak resident memory allowed while reading the huge line.
const MAX_PEAK_MIB: u64 = 100;

/// A valid usage line (used as the core of the deeply nested lines).
const USAGE: &str = r#"{"timestamp":"2026-11-20T10:15:30.123Z","sessionId":"g1","requestId":"req_g1","type":"assistant","message":{"id":"msg_g1","model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":30,"cache_read_input_tokens":40}}}"#;

/// The three reports, in the given store mode.
fn reports(sb: &Sandbox, mode: &Store) -> Vec<String> {
    REPORTS
        .iter()
        .map(|args| {
            let mut cmd = match mode {
                Store::None => {
                    let mut c = sb.cmd();
                    c.arg("--no-store");
                    c
                }
                Store::Fresh => sb.fresh_cmd(),
                Store::At(home) => {
                    let mut c = sb.cmd_with_csm_home(home);
                    c.env("CLAUDE_CONFIG_DIR", sb.claude());
                    c
                }
            };
            stdout_ok(cmd.args(*args))
        })
        .collect()
}

enum Store {
    None,
    Fresh,
    At(PathBuf),
}

/// Deterministic bytes (xorshift64*), so a failure can be reproduced.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
    }
}

/// What the junk adds, by doctor counter.
#[derive(Debug, Default)]
struct Expected {
    files: u64,
    lines: u64,
    blank: u64,
    no_usage: u64,
    invalid_json: u64,
    invalid_fields: u64,
    oversized: u64,
    partial_tail_bytes: u64,
    symlinks: u64,
}

fn write_lines(path: &Path, lines: &[&[u8]], exp: &mut Expected) {
    let mut data = Vec::new();
    for l in lines {
        data.extend_from_slice(l);
        data.push(b'\n');
    }
    fs::write(path, data).unwrap();
    exp.files += 1;
    exp.lines += lines.len() as u64;
}

/// Writes every kind of junk but the huge line (see [`add_huge_line`])
/// below `projects/` and returns what doctor should count for it.
fn add_garbage(projects: &Path) -> Expected {
    let mut exp = Expected::default();
    // Junk next to real sessions, in a real project, and in a project of its own.
    let mut names: Vec<PathBuf> = fs::read_dir(projects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    let real = names.first().expect("a generated project").clone();
    let junk_dir = projects.join("-home-dev-garbage");
    fs::create_dir_all(&junk_dir).unwrap();

    // 1. Binary noise with NULs: 64 lines of 1 KiB, none blank, no newline inside.
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut junk = Vec::new();
    for _ in 0..64 {
        junk.push(0u8);
        for _ in 0..1023 {
            let b = noise.next();
            junk.push(if b == b'\n' { 0 } else { b });
        }
        junk.push(b'\n');
    }
    assert!(junk.contains(&0) && !junk.windows(9).any(|w| w == b"\"usage\":{"));
    fs::write(real.join("junk.jsonl"), &junk).unwrap();
    exp.files += 1;
    exp.lines += 64;
    exp.no_usage += 64;

    // 2. Invalid UTF-8: outside JSON, in a non-usage line, in a usage line's
    //    timestamp and in a usage line's structure; plus blank lines.
    let ts_line: Vec<u8> = USAGE
        .replace("2026-11-20T10:15:30.123Z", "2026-11-20T10:15:30.123@")
        .bytes()
        .map(|b| if b == b'@' { 0xff } else { b })
        .collect();
    write_lines(
        &junk_dir.join("utf8.jsonl"),
        &[
            b"\xff\xfe\xfd\xfc not UTF-8 at all \xc3\x28",
            b"{\"type\":\"user\",\"message\":{\"content\":\"caf\xe9\"}}",
            &ts_line,
            b"{\"message\":{\"usage\":{\xc3\x28:1}}}",
            b"",
            b" \t\r",
        ],
        &mut exp,
    );
    exp.no_usage += 2;
    exp.invalid_json += 2;
    exp.blank += 2;

    // 3. A usage line nested 200,000 brackets deep, and usage whose token
    //    count is nested that deep.
    let wrapped = ["[".repeat(DEPTH), USAGE.to_string(), "]".repeat(DEPTH)].concat();
    let deep_field = USAGE.replace(
        "\"input_tokens\":10",
        &format!(
            "\"input_tokens\":{}{}",
            "[".repeat(DEPTH),
            "]".repeat(DEPTH)
        ),
    );
    write_lines(
        &junk_dir.join("deep.jsonl"),
        &[wrapped.as_bytes(), deep_field.as_bytes()],
        &mut exp,
    );
    exp.invalid_fields += 2;

    // 4. Links: dangling, to itself, and a directory link back up (a loop if
    //    followed). Only `*.jsonl` links are counted.
    symlink(real.join("no-such-target.jsonl"), real.join("gone.jsonl")).unwrap();
    symlink("ring.jsonl", junk_dir.join("ring.jsonl")).unwrap();
    symlink("..", junk_dir.join("loop")).unwrap();
    symlink(&junk_dir, junk_dir.join("self")).unwrap();
    exp.symlinks += 2;

    // 5. A directory named like a transcript, and an empty file.
    fs::create_dir_all(real.join("x.jsonl")).unwrap();
    fs::write(real.join("empty.jsonl"), b"").unwrap();
    exp.files += 1;

    // 6. No trailing newline: the file ends in half a usage line.
    let half = &USAGE[..USAGE.find("\"output_tokens\"").unwrap()];
    assert!(half.contains("\"usage\":{"));
    fs::write(
        junk_dir.join("tail.jsonl"),
        format!("{{\"type\":\"summary\",\"summary\":\"s\"}}\n{half}"),
    )
    .unwrap();
    exp.files += 1;
    exp.lines += 1;
    exp.no_usage += 1;
    exp.partial_tail_bytes += half.len() as u64;
    exp
}

/// Adds one 200 MiB line without usage (written in pieces, never held in
/// memory) to the junk project.
fn add_huge_line(projects: &Path, exp: &mut Expected) {
    let junk_dir = projects.join("-home-dev-garbage");
    let f = File::create(junk_dir.join("huge.jsonl")).unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(br#"{"type":"user","message":{"role":"user","content":""#)
        .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut left = HUGE_LINE_BYTES;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    w.write_all(b"\"}}\n").unwrap();
    w.flush().unwrap();
    exp.files += 1;
    exp.lines += 1;
    exp.no_usage += 1;
    exp.oversized += 1;
}

fn num(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a count in {v}"))
}

/// Asserts the three reports equal the clean ones.
fn assert_same(what: &str, got: &[String], clean: &[String]) {
    for (i, (got, want)) in got.iter().zip(clean).enumerate() {
        assert!(got == want, "{what}: {:?} changed by garbage", REPORTS[i]);
    }
}

/// Asserts doctor's counters moved from `clean` to `now` by `exp`.
fn assert_counted(now: &Value, clean: &Value, exp: &Expected) {
    let delta = |path: &[&str]| num(now, path) - num(clean, path);
    assert_eq!(delta(&["files"]), exp.files, "files");
    assert_eq!(delta(&["lines"]), exp.lines, "lines");
    assert_eq!(delta(&["usageLines"]), 0, "usage lines");
    assert_eq!(delta(&["entries"]), 0, "entries");
    assert_eq!(delta(&["skipped", "blank"]), exp.blank, "blank");
    assert_eq!(delta(&["skipped", "no_usage"]), exp.no_usage, "no_usage");
    assert_eq!(
        delta(&["skipped", "invalid_json"]),
        exp.invalid_json,
        "invalid_json"
    );
    assert_eq!(
        delta(&["skipped", "invalid_fields"]),
        exp.invalid_fields,
        "invalid_fields"
    );
    for unchanged in ["not_usage_entry", "null_field", "bad_timestamp"] {
        assert_eq!(delta(&["skipped", unchanged]), 0, "{unchanged}");
    }
    assert_eq!(delta(&["oversizedLines"]), exp.oversized, "oversized");
    assert_eq!(
        delta(&["partialTailBytes"]),
        exp.partial_tail_bytes,
        "partial tail"
    );
    assert_eq!(delta(&["symlinksNotFollowed"]), exp.symlinks, "symlinks");
    assert_eq!(num(now, &["unreadableFiles"]), 0);
    // Every line read is an entry or skipped for one reason.
    let skipped: u64 = now["skipped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(num(now, &["lines"]), num(now, &["usageLines"]) + skipped);
}

#[test]
fn garbage_never_fails_a_run_or_changes_a_report() {
    let t0 = Instant::now();
    let sb = Sandbox::new();
    assert_eq!(NOW, default_now().to_string());
    let summary = generate(
        &sb.claude(),
        &SynthOptions {
            seed: 7,
            target_bytes: 2 * 1024 * 1024,
            now: default_now(),
            days: 12,
            active: true,
            garbage: false,
        },
    )
    .unwrap();
    assert_eq!(summary.malformed_lines, 0);
    assert!(summary.files >= 3, "{summary:?}");

    // Clean results, in memory and through a store; the store is kept for
    // the incremental runs below.
    let clean = reports(&sb, &Store::None);
    let store = sb.path().join("csm-incremental");
    assert_eq!(reports(&sb, &Store::At(store.clone())), clean);
    let blocks: Value = serde_json::from_str(&clean[0]).unwrap();
    assert!(blocks["blocks"].as_array().unwrap().len() > 3);
    assert!(clean[0].contains("\"isActive\": true"), "an active window");
    let clean_doctor = json_ok(sb.fresh_cmd().args(["doctor", "--json"]));
    assert_eq!(num(&clean_doctor, &["usageLines"]), summary.usage_lines);
    assert_eq!(num(&clean_doctor, &["lines"]), summary.lines);
    let setup = t0.elapsed();

    // Phase 1: every kind of junk but the huge line; every way of reading.
    let mut exp = add_garbage(&sb.projects());
    assert_same("--no-store", &reports(&sb, &Store::None), &clean);
    assert_same("new store", &reports(&sb, &Store::Fresh), &clean);
    let one_store = sb.path().join("csm-one");
    assert_same("one store", &reports(&sb, &Store::At(one_store)), &clean);
    assert_same(
        "incremental",
        &reports(&sb, &Store::At(store.clone())),
        &clean,
    );
    let doctor = json_ok(sb.fresh_cmd().args(["doctor", "--json"]));
    assert_counted(&doctor, &clean_doctor, &exp);

    // --debug: the same counts on stderr, stdout unchanged.
    let out = sb
        .fresh_cmd()
        .args(["daily", "--json", "--debug"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), clean[1]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let count = |key: &str| num(&doctor, &["skipped", key]);
    for needle in [
        format!("[debug] skipped {:>9}  no usage", count("no_usage")),
        format!("[debug] skipped {:>9}  invalid JSON", count("invalid_json")),
        format!("[debug] skipped {:>9}  blank line", count("blank")),
        format!(
            "[debug] skipped {:>9}  usage with invalid field",
            count("invalid_fields")
        ),
        format!("[debug] symlinks not followed: {}", exp.symlinks),
    ] {
        assert!(stderr.contains(&needle), "no {needle:?} in:\n{stderr}");
    }
    let text = stdout_ok(sb.fresh_cmd().arg("doctor"));
    assert!(text.contains("symlinks        2 not followed"), "{text}");
    assert!(
        text.contains(&format!("incomplete      {} bytes", exp.partial_tail_bytes)),
        "{text}"
    );
    let phase1 = t0.elapsed() - setup;

    // Phase 2: the 200 MiB line. Each run over it costs a full read, so
    // only: in memory (with --debug), incrementally, and doctor.
    let t2 = Instant::now();
    add_huge_line(&sb.projects(), &mut exp);
    let write_huge = t2.elapsed();
    // One read of it, with the kernel's count of the peak memory it took.
    let t3 = Instant::now();
    let (out_path, err_path) = (sb.path().join("huge.out"), sb.path().join("huge.err"));
    let measured = run_measured(
        sb.process(&sb.path().join("csm-huge"))
            .args(["blocks", "--json", "--no-store", "--debug"]),
        File::create(&out_path).unwrap(),
        File::create(&err_path).unwrap(),
    );
    let one_read = t3.elapsed();
    let stderr = fs::read_to_string(&err_path).unwrap();
    assert!(measured.success, "{stderr}");
    assert!(
        fs::read(&out_path).unwrap() == clean[0].as_bytes(),
        "blocks changed by a 200 MiB line"
    );
    let peak_mib = measured.max_rss_kib / 1024;
    assert!(
        peak_mib <= MAX_PEAK_MIB,
        "peak memory {peak_mib} MiB reading a 200 MiB line (limit {MAX_PEAK_MIB} MiB)"
    );
    assert!(
        stderr.contains(&format!(
            "[debug] skipped {:>9}  no usage",
            count("no_usage") + 1
        )),
        "{stderr}"
    );
    assert_same("incremental", &reports(&sb, &Store::At(store)), &clean);
    let doctor = json_ok(sb.fresh_cmd().args(["doctor", "--json"]));
    assert_counted(&doctor, &clean_doctor, &exp);

    eprintln!(
        "timing: clean setup {setup:?}, junk without the huge line {phase1:?}, writing 200 MiB {write_huge:?}, one debug-build read of it {one_read:?} (peak RSS {peak_mib} MiB), total {:?}",
        t0.elapsed()
    );
}

/// A line with a `null` that ccusage rejects (here `costUSD`) is accepted
/// when the line also nests 128+ levels anywhere: `has_rejected_null`
/// (src/ingest/parse.rs) walks the line with serde_json's recursion limit and
/// treats the resulting error as "no null found" (`unwrap_or(false)`).
/// Without the nesting the same line is skipped as `null_field`. ccusage
/// validates fields by schema, so nesting depth does not save such a line
/// there.
#[test]
fn deep_nesting_does_not_hide_a_rejected_null() {
    let sb = Sandbox::new();
    let with_null = USAGE.replace("\"model\"", "\"costUSD\":null,\"model\"");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let nested_after = USAGE.replace(
        "\"model\"",
        &format!("\"costUSD\":null,\"x\":{deep},\"model\""),
    );
    let nested_before = USAGE.replace(
        "\"model\"",
        &format!("\"x\":{deep},\"costUSD\":null,\"model\""),
    );
    for (name, line) in [
        ("plain", with_null),
        ("after", nested_after),
        ("before", nested_before),
    ] {
        sb.write_session("p", name, &[line]);
    }
    let v = json_ok(sb.cmd().args(["doctor", "--json", "--no-store"]));
    assert_eq!(v["skipped"]["null_field"], 3, "{v}");
    assert_eq!(v["entries"], 0, "{v}");
}
