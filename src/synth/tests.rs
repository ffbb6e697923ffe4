use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use serde_json::Value;

use super::rng::{self, Rng};
use super::*;

const MIB: u64 = 1 << 20;
const HOUR_MS: i64 = 3_600_000;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop (no extra dev-dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("csm-synth-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts(seed: u64, bytes: u64) -> SynthOptions {
    SynthOptions::new(seed, bytes, default_now())
}

/// All files below `root`, as sorted paths relative to it.
fn files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn tree_bytes(root: &Path) -> u64 {
    files(root)
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).unwrap().len())
        .sum()
}

/// A usage entry as defined for `SynthSummary::usage_lines`.
fn is_usage(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    let ts_ok = o
        .get("timestamp")
        .and_then(Value::as_str)
        .is_some_and(|s| s.parse::<Timestamp>().is_ok());
    let Some(m) = o.get("message").and_then(Value::as_object) else {
        return false;
    };
    let Some(u) = m.get("usage").and_then(Value::as_object) else {
        return false;
    };
    let num = |k: &str| u.get(k).is_some_and(Value::is_u64);
    let opt_num = |k: &str| u.get(k).is_none_or(Value::is_u64);
    let opt_str =
        |obj: &serde_json::Map<String, Value>, k: &str| obj.get(k).is_none_or(Value::is_string);
    ts_ok
        && num("input_tokens")
        && num("output_tokens")
        && opt_num("cache_creation_input_tokens")
        && opt_num("cache_read_input_tokens")
        && opt_str(m, "model")
        && opt_str(m, "id")
        && opt_str(o, "requestId")
}

fn ts_ms(v: &Value) -> i64 {
    v["timestamp"]
        .as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map_or(i64::MIN, |t| t.as_millisecond())
}

fn u(v: &Value, k: &str) -> u64 {
    v["message"]["usage"][k].as_u64().unwrap_or(0)
}

/// Start and last entry of the final 5-hour block (ccusage's algorithm).
fn last_block(mut ts: Vec<i64>) -> (i64, i64) {
    ts.sort_unstable();
    let floor = |t: i64| t.div_euclid(HOUR_MS) * HOUR_MS;
    let mut start = floor(ts[0]);
    let mut last = ts[0];
    for &t in &ts[1..] {
        if t - start > 5 * HOUR_MS || t - last > 5 * HOUR_MS {
            start = floor(t);
        }
        last = t;
    }
    (start, last)
}

// ----- units ---------------------------------------------------------------

#[test]
fn iso_timestamps_match_jiff() {
    let mut rng = Rng::new(5);
    for _ in 0..2000 {
        let ms = rng.range_i64(0, 4_102_444_800_000);
        let mut out = Vec::new();
        text::push_iso(&mut out, ms);
        let expected = Timestamp::from_millisecond(ms)
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

#[test]
fn portable_math_is_accurate() {
    for &x in &[-30.0, -1.5, -1e-9, 0.0, 0.3, 1.0, 2.5, 13.7, 18.3, 40.0] {
        let (a, b) = (rng::exp(x), f64::exp(x));
        assert!(((a - b) / b).abs() < 1e-13, "exp({x}) {a} {b}");
    }
    for &x in &[1e-12, 0.001, 0.5, 1.0, 1.41, 2.0, 105_000.0, 87e6, 1e300] {
        let (a, b) = (rng::ln(x), f64::ln(x));
        assert!((a - b).abs() < 1e-12 * b.abs().max(1.0), "ln({x}) {a} {b}");
    }
    for &(p, z) in &[
        (0.5, 0.0),
        (0.9, 1.281_551_565_5),
        (0.99, 2.326_347_874),
        (0.01, -2.326_347_874),
    ] {
        assert!((rng::inv_norm_cdf(p) - z).abs() < 1e-7);
    }
}

#[test]
fn parse_size_units() {
    assert_eq!(parse_size("64MiB"), Some(64 << 20));
    assert_eq!(parse_size("1GiB"), Some(1 << 30));
    assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
    assert_eq!(parse_size("500MB"), Some(500_000_000));
    assert_eq!(parse_size("12345"), Some(12_345));
    assert_eq!(parse_size(" 4 kib "), Some(4096));
    assert_eq!(parse_size("12XB"), None);
    assert_eq!(parse_size("MiB"), None);
}

#[test]
fn default_now_is_fixed() {
    assert_eq!(default_now().to_string(), "2026-11-20T16:40:00Z");
}

#[test]
fn project_dirs_are_encoded_like_claude_code() {
    assert_eq!(encode_cwd("/home/dev/code/api"), "-home-dev-code-api");
    assert_eq!(encode_cwd("/home/dev/.dotfiles"), "-home-dev--dotfiles");
    assert_eq!(
        encode_cwd("/home/dev/code/ml_pipeline"),
        "-home-dev-code-ml-pipeline"
    );
}

#[test]
fn size_distribution_matches_profile() {
    // The sizes a 256 MiB run would use (no I/O).
    let target = 256 * MIB;
    let n = dist::file_count(target, 3);
    assert!((600..=760).contains(&n), "{n} files");
    assert!((150..=200).contains(&dist::file_count(64 * MIB, 3)));
    let mut sizes = dist::sample_sizes(&mut Rng::new(9), n, target);
    let total: u64 = sizes.iter().sum();
    assert!(total.abs_diff(target) < target / 1000);
    sizes.sort_unstable();
    let q = |p: f64| sizes[((n as f64 * p) as usize).min(n - 1)] as f64;
    let within = |v: f64, want: f64, tol: f64| (v / want - 1.0).abs() < tol;
    assert!(within(q(0.5), 105_000.0, 0.1), "p50 {}", q(0.5));
    assert!(within(q(0.9), 654_000.0, 0.15), "p90 {}", q(0.9));
    assert!(within(q(0.99), 5_400_000.0, 0.3), "p99 {}", q(0.99));
    assert!(sizes[n - 1] <= 87_000_000);
    let mean = dist::mean_size();
    assert!((mean / 413_490.0 - 1.0).abs() < 0.03, "mean {mean}");
}

// ----- whole trees ---------------------------------------------------------

#[test]
fn same_seed_gives_identical_tree() {
    let o = opts(42, 3 * MIB);
    let (a, b, c) = (
        TempDir::new("det-a"),
        TempDir::new("det-b"),
        TempDir::new("det-c"),
    );
    let sa = generate(&a.0, &o).unwrap();
    let sb = generate(&b.0, &o).unwrap();
    assert_eq!(sa, sb);
    let fa = files(&a.0);
    assert_eq!(fa, files(&b.0));
    for f in &fa {
        assert_eq!(
            std::fs::read(a.0.join(f)).unwrap(),
            std::fs::read(b.0.join(f)).unwrap(),
            "{f:?}"
        );
    }
    let sc = generate(&c.0, &opts(43, 3 * MIB)).unwrap();
    assert_ne!(files(&c.0), fa);
    assert_ne!(sc, sa);
}

#[test]
fn total_size_within_five_percent() {
    for (seed, size) in [(1, 200_000), (2, MIB), (3, 5 * MIB), (4, 12 * MIB)] {
        let d = TempDir::new("size");
        let s = generate(&d.0, &opts(seed, size)).unwrap();
        let on_disk = tree_bytes(&d.0);
        assert_eq!(s.bytes, on_disk);
        let err = on_disk.abs_diff(size) as f64 / size as f64;
        assert!(err < 0.05, "size {size}: {on_disk} bytes ({err})");
        assert_eq!(s.files, files(&d.0).len());
    }
}

struct Parsed {
    /// (relative path, lines as text)
    files: Vec<(PathBuf, Vec<String>)>,
}

fn read_tree(root: &Path) -> Parsed {
    let files = files(root)
        .into_iter()
        .map(|f| {
            let data = std::fs::read(root.join(&f)).unwrap();
            assert!(data.ends_with(b"\n"), "{f:?} lacks a final newline");
            assert!(!data.contains(&b'\r'));
            let text = String::from_utf8(data).unwrap();
            let lines = text.lines().map(str::to_owned).collect();
            (f, lines)
        })
        .collect();
    Parsed { files }
}

#[test]
fn clean_history_is_valid_and_realistic() {
    let d = TempDir::new("clean");
    let mut o = opts(11, 24 * MIB);
    o.garbage = false;
    let s = generate(&d.0, &o).unwrap();
    let tree = read_tree(&d.0);
    let now = o.now.as_millisecond();

    let mut usage_lines = 0u64;
    let mut lines = 0u64;
    let mut models: HashSet<String> = HashSet::new();
    let mut key_files: HashMap<(String, String), HashSet<usize>> = HashMap::new();
    let mut by_msg_id: HashMap<String, Vec<(String, bool, i64)>> = HashMap::new();
    let mut usage_ts = Vec::new();
    let (mut limit_lines, mut fast, mut cost, mut tier, mut big_line, mut summaries, mut systems) =
        (0, 0, 0, 0, 0, 0, 0);
    let mut streamed_runs = 0;
    let mut subagent_files = 0;
    for (fi, (path, text_lines)) in tree.files.iter().enumerate() {
        // Layout.
        let parts: Vec<String> = path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(parts[0], "projects");
        assert!(parts[1].starts_with('-'), "{path:?}");
        let is_sub = match parts.len() {
            3 => {
                assert!(
                    parts[2].ends_with(".jsonl") && parts[2].len() == 36 + 6,
                    "{path:?}"
                );
                false
            }
            5 => {
                assert_eq!(parts[3], "subagents");
                assert!(parts[4].starts_with("agent-") && parts[4].ends_with(".jsonl"));
                let parent =
                    d.0.join(&parts[0])
                        .join(&parts[1])
                        .join(format!("{}.jsonl", parts[2]));
                assert!(parent.is_file(), "subagent without session file: {path:?}");
                true
            }
            _ => panic!("unexpected layout {path:?}"),
        };
        subagent_files += usize::from(is_sub);
        let session = if is_sub {
            parts[2].clone()
        } else {
            parts[2].trim_end_matches(".jsonl").to_string()
        };

        let mut last_session = None;
        let mut decreases = 0;
        let mut prev_ts = i64::MIN;
        let mut run: Option<(String, u64, Value)> = None;
        let mut run_len = 0;
        for l in text_lines {
            lines += 1;
            big_line += usize::from(l.len() > 50_000);
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{path:?}: {e}: {l:.200}"));
            assert!(v.is_object());
            if let Some(sid) = v["sessionId"].as_str() {
                last_session = Some(sid.to_string());
            }
            if is_sub && v.get("isSidechain").is_some() {
                assert_eq!(v["isSidechain"], Value::Bool(true));
                assert_eq!(v["sessionId"].as_str(), Some(session.as_str()));
            }
            summaries += usize::from(v["type"] == "summary");
            systems += usize::from(v["type"] == "system");
            let t = ts_ms(&v);
            if t != i64::MIN {
                assert!(t < now, "timestamp after now: {l:.300}");
                assert!(t > now - 31 * 24 * HOUR_MS);
                if t < prev_ts {
                    decreases += 1;
                }
                prev_ts = t;
            }
            if !is_usage(&v) {
                assert!(
                    v.pointer("/message/usage").is_none() || v["type"] != "assistant",
                    "{l:.300}"
                );
                run = None;
                continue;
            }
            usage_lines += 1;
            usage_ts.push(t);
            let model = v["message"]["model"].as_str().unwrap().to_string();
            let usage = &v["message"]["usage"];
            if let Some(cc) = usage.get("cache_creation") {
                let sum = cc["ephemeral_5m_input_tokens"].as_u64().unwrap()
                    + cc["ephemeral_1h_input_tokens"].as_u64().unwrap();
                assert_eq!(sum, u(&v, "cache_creation_input_tokens"));
            }
            fast += usize::from(usage["speed"] == "fast");
            cost += usize::from(v["costUSD"].is_f64());
            tier += usize::from(
                u(&v, "input_tokens") > 200_000 || u(&v, "cache_read_input_tokens") > 200_000,
            );
            if model == "<synthetic>" {
                assert!(
                    [
                        "input_tokens",
                        "output_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens"
                    ]
                    .iter()
                    .all(|k| u(&v, k) == 0)
                );
                let text = v["message"]["content"][0]["text"].as_str().unwrap();
                if let Some(epoch) = text.strip_prefix("Claude AI usage limit reached|") {
                    let epoch: i64 = epoch.parse().unwrap();
                    assert_eq!(v["isApiErrorMessage"], Value::Bool(true));
                    assert_eq!(epoch % 3600, 0);
                    assert!(epoch * 1000 > t && epoch * 1000 <= t + 5 * HOUR_MS);
                    limit_lines += 1;
                }
                run = None;
                continue;
            }
            models.insert(model);
            let id = v["message"]["id"].as_str().unwrap().to_string();
            let req = v["requestId"].as_str().unwrap().to_string();
            assert!(id.starts_with("msg_01") && req.starts_with("req_011C"));
            key_files
                .entry((id.clone(), req.clone()))
                .or_default()
                .insert(fi);
            let side = v["isSidechain"] == Value::Bool(true);
            by_msg_id
                .entry(id.clone())
                .or_default()
                .push((req.clone(), side, t));
            // Streaming: same key on consecutive lines, growing output, same other counts.
            let out = u(&v, "output_tokens");
            match &run {
                Some((k, prev_out, first)) if *k == format!("{id}/{req}") => {
                    assert!(out > *prev_out, "output_tokens must grow: {l:.300}");
                    for k in [
                        "input_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens",
                    ] {
                        assert_eq!(u(&v, k), u(first, k));
                    }
                    run_len += 1;
                    assert!(run_len <= 4);
                    if run_len == 2 {
                        streamed_runs += 1;
                    }
                    run = Some((format!("{id}/{req}"), out, first.clone()));
                }
                _ => {
                    run = Some((format!("{id}/{req}"), out, v.clone()));
                    run_len = 1;
                }
            }
        }
        // Copied or replayed lines only at the start: at most one step back in time.
        assert!(
            decreases <= 1,
            "{path:?}: {decreases} decreasing timestamps"
        );
        assert_eq!(last_session.as_deref(), Some(session.as_str()), "{path:?}");
    }

    assert_eq!(s.lines, lines);
    assert_eq!(s.usage_lines, usage_lines);
    assert_eq!(s.malformed_lines, 0);
    assert_eq!(s.files, tree.files.len());
    assert_eq!(s.subagent_files, subagent_files);
    assert!(subagent_files > 5);
    assert!(s.projects >= 5);
    assert_eq!(s.usage_limit_lines, limit_lines);
    assert!(limit_lines > 0);
    assert!(s.api_error_lines >= limit_lines);
    assert!(streamed_runs > 100, "{streamed_runs}");
    // Every replay line carries a new requestId, so it is a key of its own.
    assert_eq!((s.messages + s.replayed_lines) as usize, key_files.len());
    let all_models: HashSet<String> = MODELS.iter().map(|m| m.0.to_string()).collect();
    assert_eq!(models, all_models);
    assert!(fast > 0 && cost > 0 && tier > 0 && big_line > 0 && summaries > 0 && systems > 0);

    // Resumed sessions repeat earlier keys in another file.
    assert!(s.resumed_files > 0 && s.copied_lines > 0);
    assert!(key_files.values().any(|f| f.len() > 1));
    // Sidechain replays: same message.id and timestamp, another requestId.
    assert!(s.replayed_lines > 0);
    let replays = by_msg_id
        .values()
        .filter(|v| {
            v.iter().any(|(r1, side1, t1)| {
                v.iter()
                    .any(|(r2, side2, t2)| r1 != r2 && !side1 && *side2 && t1 == t2)
            })
        })
        .count();
    assert!(replays > 0);

    // Active window at `now`.
    assert_eq!(
        s.last_timestamp.map(|t| t.as_millisecond()),
        usage_ts.iter().max().copied()
    );
    let (start, last) = last_block(usage_ts);
    assert!(
        now - last < 5 * HOUR_MS && now < start + 5 * HOUR_MS,
        "not active"
    );
    assert!(now - last < 2 * HOUR_MS);
}

#[test]
fn garbage_is_rare_and_counted() {
    let d = TempDir::new("garbage");
    let o = opts(12, 16 * MIB);
    let s = generate(&d.0, &o).unwrap();
    let tree = read_tree(&d.0);
    let (mut usage, mut bad, mut nulls, mut blank, mut invalid, mut lines) =
        (0u64, 0u64, 0u64, 0, 0, 0u64);
    for (_, text_lines) in &tree.files {
        for l in text_lines {
            lines += 1;
            if l.trim().is_empty() {
                blank += 1;
                bad += 1;
                continue;
            }
            match serde_json::from_str::<Value>(l) {
                Err(_) => {
                    invalid += 1;
                    bad += 1;
                }
                Ok(v) if is_usage(&v) => usage += 1,
                Ok(v) if v.pointer("/message/usage").is_some() => {
                    bad += 1;
                    let m = &v["message"];
                    if m["model"].is_null()
                        || v["requestId"].is_null()
                        || m["usage"]["cache_read_input_tokens"].is_null()
                    {
                        nulls += 1;
                    }
                }
                Ok(_) => {}
            }
        }
    }
    assert_eq!(s.lines, lines);
    assert_eq!(s.usage_lines, usage);
    assert_eq!(s.malformed_lines, bad);
    assert_eq!(s.null_field_lines, nulls);
    assert!(blank > 0 && invalid > 0 && nulls > 0);
    let share = bad as f64 / lines as f64;
    assert!((0.002..0.01).contains(&share), "malformed share {share}");
}

#[test]
fn inactive_history_ends_before_the_window() {
    for seed in 20..23 {
        let d = TempDir::new("inactive");
        let mut o = opts(seed, 2 * MIB);
        o.active = false;
        o.days = 10;
        let s = generate(&d.0, &o).unwrap();
        let now = o.now.as_millisecond();
        let last = s.last_timestamp.unwrap().as_millisecond();
        assert!(now - last > 5 * HOUR_MS, "seed {seed}");
        assert!(s.first_timestamp.unwrap().as_millisecond() > now - 10 * 24 * HOUR_MS - HOUR_MS);

        let d2 = TempDir::new("active");
        o.active = true;
        o.now = "2025-02-03T08:15:00Z".parse().unwrap();
        let s = generate(&d2.0, &o).unwrap();
        let tree = read_tree(&d2.0);
        let ts: Vec<i64> = tree
            .files
            .iter()
            .flat_map(|(_, ls)| ls.iter())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(is_usage)
            .map(|v| ts_ms(&v))
            .collect();
        let now = o.now.as_millisecond();
        let (start, last) = last_block(ts);
        assert!(
            now - last < 5 * HOUR_MS && now < start + 5 * HOUR_MS,
            "seed {seed} not active"
        );
        assert!(s.last_timestamp.unwrap().as_millisecond() < now);
    }
}

/// The file-size profile on a real 256 MiB run (slow in debug builds).
#[test]
#[ignore]
fn quantiles_of_a_256_mib_run() {
    let d = TempDir::new("q256");
    let s = generate(&d.0, &opts(5, 256 * MIB)).unwrap();
    let mut sizes: Vec<u64> = files(&d.0)
        .iter()
        .map(|f| std::fs::metadata(d.0.join(f)).unwrap().len())
        .collect();
    sizes.sort_unstable();
    let n = sizes.len();
    let q = |p: f64| sizes[((n as f64 * p) as usize).min(n - 1)] as f64;
    let by_quantile: BTreeMap<&str, f64> =
        [("p50", q(0.5)), ("p90", q(0.9)), ("p99", q(0.99))].into();
    assert!((q(0.5) / 105_000.0 - 1.0).abs() < 0.12, "{by_quantile:?}");
    assert!((q(0.9) / 654_000.0 - 1.0).abs() < 0.15, "{by_quantile:?}");
    assert!(
        (q(0.99) / 5_400_000.0 - 1.0).abs() < 0.35,
        "{by_quantile:?}"
    );
    assert!(sizes[n - 1] <= 87_000_000 + 4_000_000);
    assert!(s.bytes.abs_diff(256 * MIB) < 256 * MIB / 20);
}
