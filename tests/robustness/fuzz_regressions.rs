//! Replays what the fuzzers found (tests/fixtures/fuzz-regressions/<target>/,
//! one minimal input per file, named after what it broke) and the fuzzers'
//! seed inputs (fuzz/seeds/<target>/) through the same checks the fuzz
//! targets run (oracles.rs), so every fixed crash stays fixed in CI.

use std::fs;
use std::path::PathBuf;

use crate::oracles;

fn inputs(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.') && n != "README.md")
        })
        .map(|p| {
            let data = fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    out
}

/// Runs `check` on every input of `target`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut n = 0;
    for dir in ["tests/fixtures/fuzz-regressions", "fuzz/seeds"] {
        for (path, data) in inputs(dir, target) {
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "{} fails its check", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn transcript_line_findings_stay_fixed() {
    assert!(replay("transcript_line", oracles::transcript_line) > 100);
}

#[test]
fn line_reader_findings_stay_fixed() {
    assert!(replay("line_reader", oracles::line_reader) > 10);
}

#[test]
fn config_findings_stay_fixed() {
    assert!(replay("config", oracles::config) >= 3);
}

#[test]
fn statusline_findings_stay_fixed() {
    assert!(replay("statusline", oracles::statusline) >= 6);
}

#[test]
fn hook_findings_stay_fixed() {
    assert!(replay("hook", oracles::hook) >= 9);
}

#[test]
fn claude_json_findings_stay_fixed() {
    assert!(replay("claude_json", oracles::claude_json) >= 6);
}
