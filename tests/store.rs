//! The history store through the real binary: building it round by
//! round gives what one pass gives; transcripts that disappear keep their
//! entries; a replaced transcript is re-read whole without double counting;
//! `--recalculate` changes nothing but keeps what is gone.

mod support;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use support::{
    JSON_REPORTS, SONNET, Sandbox, SplitMix, StoreMode, assert_matches_one_pass,
    assert_same_reports, doctor_counts, json_ok, jsonl_files, stdout_ok,
};

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// 1. Incremental equals one pass.

/// Bytes appended to one transcript (path relative to `projects/`) in a round.
type Append = (PathBuf, Vec<u8>);

/// Offsets just past each `\n` of `data`.
fn line_ends(data: &[u8]) -> Vec<usize> {
    data.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect()
}

/// The complete lines of `data` that are well-formed usage lines (JSON
/// objects with `message.usage`).
fn usage_lines(data: &[u8]) -> Vec<Value> {
    data.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|v| v["message"]["usage"].is_object() && v["timestamp"].is_string())
        .collect()
}

/// A usage line of its own (not a copy of anything in the generated history).
fn fresh_line(ts: &str, session: &str, n: u32, input: u64, output: u64) -> String {
    support::usage_line(ts, session, n, SONNET, [input, output, 0, 0])
}

/// Splits a generated history into rounds of appends:
///
/// - every file is cut at random line boundaries into 3–6 chunks, appended
///   one per round from a random first round on; the files that sort first
///   start late, so new files appear before ones already read;
/// - the largest file is also cut inside a usage line and another file
///   right before a usage line's newline: a round ends with a half-written
///   line and one with a complete line whose newline comes later;
/// - resumed sessions appear in later rounds: a file sorting before its
///   source that repeats the source's lines read so far, and a new project
///   sorting before all others whose file repeats another session's lines
///   under its own session id, plus new lines older than the whole history
///   and in its middle.
fn plan_rounds(stage: &Path, seed: u64) -> Vec<Vec<Append>> {
    let mut rng = SplitMix(seed ^ 0x5EED_0FC0_FFEE);
    let files = jsonl_files(stage);
    assert!(files.len() >= 8, "generated history too small: {files:?}");
    let rel = |p: &Path| p.strip_prefix(stage).unwrap().to_path_buf();
    let datas: Vec<Vec<u8>> = files.iter().map(|p| fs::read(p).unwrap()).collect();
    let largest = (0..files.len()).max_by_key(|&i| datas[i].len()).unwrap();
    let unterminated = (0..files.len())
        .filter(|&i| i != largest && line_ends(&datas[i]).len() >= 4)
        .max_by_key(|&i| datas[i].len())
        .unwrap();

    let mut rounds: Vec<Vec<Append>> = Vec::new();
    fn push(rounds: &mut Vec<Vec<Append>>, round: usize, path: PathBuf, bytes: Vec<u8>) {
        if rounds.len() <= round {
            rounds.resize_with(round + 1, Vec::new);
        }
        rounds[round].push((path, bytes));
    }
    // Bytes of each file appended by the end of each round (for the copies).
    let mut written_by: Vec<Vec<usize>> = Vec::new();
    let first_late = files.len() / 3;
    for (i, data) in datas.iter().enumerate() {
        let ends = line_ends(data);
        let chunks = rng.range(3, 6).min(ends.len() as u64) as usize;
        // Cut points: distinct line ends before the last one.
        let mut cuts: Vec<usize> = Vec::new();
        let inner = &ends[..ends.len() - 1];
        while cuts.len() + 1 < chunks && cuts.len() < inner.len() {
            let c = inner[rng.range(0, inner.len() as u64 - 1) as usize];
            if !cuts.contains(&c) {
                cuts.push(c);
            }
        }
        let usage_line_spans = || {
            let mut start = 0;
            ends.iter()
                .filter_map(move |&end| {
                    let s = start;
                    start = end;
                    let line = &data[s..end];
                    (end - s > 200 && memfind(line, b"\"usage\"")).then_some((s, end))
                })
                .collect::<Vec<_>>()
        };
        if i == largest {
            // Inside a usage line, not at its end.
            let spans = usage_line_spans();
            let (s, e) = spans[spans.len() / 2];
            cuts.push(s + (e - s) / 2);
        }
        if i == unterminated {
            // Right before a usage line's newline.
            let spans = usage_line_spans();
            let (_, e) = spans[spans.len() / 3];
            cuts.retain(|&c| c != e);
            cuts.push(e - 1);
        }
        cuts.sort_unstable();
        cuts.dedup();
        cuts.retain(|&c| c > 0 && c < data.len());
        // Files sorting first arrive late.
        let start = if i < first_late {
            rng.range(1, 3) as usize
        } else if i == files.len() - 1 {
            0
        } else {
            rng.range(0, 1) as usize
        };
        let mut from = 0;
        let mut by_round = vec![0; start];
        for (k, to) in cuts.iter().copied().chain([data.len()]).enumerate() {
            push(
                &mut rounds,
                start + k,
                rel(&files[i]),
                data[from..to].to_vec(),
            );
            by_round.push(to);
            from = to;
        }
        written_by.push(by_round);
    }
    let n_rounds = rounds.len();
    let written = |i: usize, round: usize| -> &[u8] {
        let w = &written_by[i];
        let upto = w.get(round).copied().unwrap_or(*w.last().unwrap());
        &datas[i][..upto]
    };

    // A resumed copy sorting right before its source, once the source has
    // some usage lines.
    let resume_round = 2.min(n_rounds - 1);
    let source = (0..files.len())
        .filter(|&i| !usage_lines(written(i, resume_round - 1)).is_empty())
        .max_by_key(|&i| usage_lines(written(i, resume_round - 1)).len())
        .expect("a file with usage lines by round 1");
    let copied: Vec<String> = usage_lines(written(source, resume_round - 1))
        .iter()
        .map(|v| v.to_string())
        .collect();
    let copy_path = rel(&files[source]).with_file_name("--resumed-copy.jsonl");
    let mut text = String::new();
    for l in &copied {
        text.push_str(l);
        text.push('\n');
    }
    push(&mut rounds, resume_round, copy_path, text.into_bytes());

    // A new project sorting before every other, resuming another session
    // under a new session id, with lines of its own: older than everything,
    // and in the middle of the history. Written over two rounds.
    let late_round = (n_rounds - 1).max(resume_round + 1);
    let other = (0..files.len())
        .filter(|&i| i != source)
        .max_by_key(|&i| usage_lines(written(i, late_round - 1)).len())
        .unwrap();
    let mut lines: Vec<String> = usage_lines(written(other, late_round - 1))
        .into_iter()
        .map(|mut v| {
            v["sessionId"] = Value::from("early-resumed");
            v.to_string()
        })
        .collect();
    lines.insert(
        0,
        fresh_line("2026-09-01T08:00:00.000Z", "early-resumed", 1, 111, 222),
    );
    lines.push(fresh_line(
        "2026-11-10T12:34:56.789Z",
        "early-resumed",
        2,
        333,
        444,
    ));
    lines.push(fresh_line(
        "2026-11-10T12:34:56.789Z",
        "early-resumed",
        3,
        5,
        6,
    ));
    let early = PathBuf::from("projects/-0-early/early-resumed.jsonl");
    let half = lines.len() / 2;
    let join = |ls: &[String]| -> Vec<u8> {
        let mut t = String::new();
        for l in ls {
            t.push_str(l);
            t.push('\n');
        }
        t.into_bytes()
    };
    push(
        &mut rounds,
        late_round - 1,
        early.clone(),
        join(&lines[..half]),
    );
    push(&mut rounds, late_round, early, join(&lines[half..]));
    rounds
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn append(root: &Path, rel: &Path, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn incremental_equals_one_pass(seed: u64) {
    let stage = Sandbox::new();
    let summary = stage.generate(seed, 3 * MIB, true);
    assert!(summary.malformed_lines > 0, "{summary:?}");
    let rounds = plan_rounds(&stage.claude(), seed);
    assert!(rounds.len() >= 5, "{} rounds", rounds.len());

    let sb = Sandbox::new();
    fs::create_dir_all(sb.projects()).unwrap();
    let store = StoreMode::At(sb.path().join("csm-incremental"));
    let mut saw_partial = false;
    for (r, appends) in rounds.iter().enumerate() {
        for (rel, bytes) in appends {
            append(&sb.claude(), rel, bytes);
        }
        // A round may end with a transcript whose last line is incomplete.
        saw_partial |= jsonl_files(&sb.projects())
            .iter()
            .any(|p| fs::read(p).unwrap().last() != Some(&b'\n'));
        let incremental = sb.json_reports(&store);
        let one_pass = sb.json_reports(&StoreMode::None);
        assert_same_reports(
            &format!("seed {seed}, round {r} of {}", rounds.len()),
            &incremental,
            &one_pass,
        );
    }
    assert!(saw_partial, "no round ended inside a line");
    // The final tree is the generated one plus the copies, every line complete.
    for p in jsonl_files(&sb.projects()) {
        assert_eq!(fs::read(&p).unwrap().last(), Some(&b'\n'), "{p:?}");
    }
    let one_pass = assert_matches_one_pass(&sb, &store, "incremental vs --no-store");
    let blocks: Value = serde_json::from_str(&one_pass[0]).unwrap();
    assert!(blocks["blocks"].as_array().unwrap().len() > 10);
    // The early lines of the new project count, once.
    let daily: Value = serde_json::from_str(&one_pass[1]).unwrap();
    let sept = daily["daily"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == "2026-09-01")
        .expect("the day of the early line");
    assert_eq!(sept["inputTokens"], 111);

    // What was read and skipped is accounted the same way.
    let doctor =
        |mode: &StoreMode| doctor_counts(json_ok(sb.cmd_in(mode).args(["doctor", "--json"])));
    assert_eq!(doctor(&store), doctor(&StoreMode::None), "doctor counts");
}

#[test]
fn incremental_equals_one_pass_seed_11() {
    incremental_equals_one_pass(11);
}

#[test]
fn incremental_equals_one_pass_seed_12() {
    incremental_equals_one_pass(12);
}

#[test]
fn incremental_equals_one_pass_seed_13() {
    incremental_equals_one_pass(13);
}

// ---------------------------------------------------------------------------
// 2. Deleted transcripts keep their entries.

/// Deletes every second transcript (in path order); returns them with their content.
fn delete_half(sb: &Sandbox) -> Vec<(PathBuf, Vec<u8>)> {
    jsonl_files(&sb.projects())
        .into_iter()
        .step_by(2)
        .map(|p| {
            let data = fs::read(&p).unwrap();
            fs::remove_file(&p).unwrap();
            (p, data)
        })
        .collect()
}

fn store_section(sb: &Sandbox, mode: &StoreMode) -> Value {
    json_ok(sb.cmd_in(mode).args(["doctor", "--json"]))["store"].clone()
}

#[test]
fn deleted_transcripts_keep_their_entries() {
    let sb = Sandbox::new();
    sb.generate(21, 3 * MIB, true);
    let total = jsonl_files(&sb.projects()).len();
    let store = StoreMode::At(sb.path().join("csm-store"));
    let before = sb.json_reports(&store);
    assert_same_reports(
        "store vs --no-store",
        &before,
        &sb.json_reports(&StoreMode::None),
    );
    assert_eq!(store_section(&sb, &store)["filesGone"], 0);

    let deleted = delete_half(&sb);
    assert!(deleted.len() >= total / 2 && deleted.len() < total);
    // Twice: the run that notices the deletion and the one after.
    for run in ["first run after deletion", "second run after deletion"] {
        assert_same_reports(run, &sb.json_reports(&store), &before);
    }
    // Without the store the deleted transcripts are missing: every report changes.
    let reduced = sb.json_reports(&StoreMode::None);
    for ((args, b), r) in JSON_REPORTS.iter().zip(&before).zip(&reduced) {
        assert_ne!(
            b,
            r,
            "`csm {}` did not depend on the deleted files",
            args.join(" ")
        );
    }
    let section = store_section(&sb, &store);
    assert_eq!(section["filesGone"], deleted.len(), "{section}");
    assert_eq!(section["files"], total, "{section}");
    let doctor = json_ok(sb.cmd_in(&store).args(["doctor", "--json"]));
    assert_eq!(doctor["files"], total - deleted.len());

    // The transcripts come back (a restored backup: new inodes, same
    // content): nothing is counted twice, on this run or the next.
    for (p, data) in &deleted {
        fs::write(p, data).unwrap();
    }
    for run in ["first run after restoring", "second run after restoring"] {
        assert_same_reports(run, &sb.json_reports(&store), &before);
    }
    let section = store_section(&sb, &store);
    assert_eq!(section["filesGone"], 0, "{section}");
    assert_eq!(section["files"], total, "{section}");
}

// ---------------------------------------------------------------------------
// 3. A replaced transcript is re-read whole.

/// One usage line with hand-picked ids and token counts.
fn line(ts: &str, session: &str, id: &str, input: u64, output: u64) -> String {
    serde_json::json!({
        "timestamp": ts,
        "sessionId": session,
        "requestId": format!("req_{id}"),
        "type": "assistant",
        "message": {
            "id": format!("msg_{id}"),
            "model": SONNET,
            "usage": {"input_tokens": input, "output_tokens": output}
        }
    })
    .to_string()
}

fn lines_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// input, output totals and the entry count of the one window, from the store.
fn totals(sb: &Sandbox, mode: &StoreMode) -> (u64, u64, u64) {
    let daily = json_ok(sb.cmd_in(mode).args(["daily", "--json"]));
    let blocks = json_ok(sb.cmd_in(mode).args(["blocks", "--json"]));
    let windows: Vec<&Value> = blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["isGap"] == false)
        .collect();
    assert_eq!(windows.len(), 1, "{blocks}");
    let t = &daily["totals"];
    assert_eq!(windows[0]["tokenCounts"]["inputTokens"], t["inputTokens"]);
    assert_eq!(windows[0]["tokenCounts"]["outputTokens"], t["outputTokens"]);
    (
        t["inputTokens"].as_u64().unwrap(),
        t["outputTokens"].as_u64().unwrap(),
        windows[0]["entries"].as_u64().unwrap(),
    )
}

/// Old content of `a/s1.jsonl`: responses 1, 2 (output 200), 3 and a long
/// line without usage, so any rewrite below is shorter.
fn replaced_setup() -> (Sandbox, StoreMode) {
    let sb = Sandbox::new();
    let padding = serde_json::json!({
        "type": "user", "sessionId": "s1", "timestamp": "2026-11-20T10:00:00.000Z",
        "message": {"role": "user", "content": "x".repeat(2000)}
    })
    .to_string();
    sb.write_session(
        "a",
        "s1",
        &[
            padding,
            line("2026-11-20T10:10:00.000Z", "s1", "1", 10, 20),
            line("2026-11-20T10:20:00.000Z", "s1", "2", 100, 200),
            line("2026-11-20T10:30:00.000Z", "s1", "3", 1000, 2000),
        ],
    );
    sb.write_session(
        "b",
        "s9",
        &[line("2026-11-20T11:00:00.000Z", "s9", "9", 5, 5)],
    );
    let store = StoreMode::At(sb.path().join("csm-store"));
    assert_eq!(totals(&sb, &store), (1115, 2225, 4));
    (sb, store)
}

/// New content: response 1 unchanged, response 2 as a later streamed copy
/// (output 250), response 4 new; response 3 is gone.
fn new_content() -> String {
    lines_text(&[
        line("2026-11-20T10:10:00.000Z", "s1", "1", 10, 20),
        line("2026-11-20T10:20:00.000Z", "s1", "2", 100, 250),
        line("2026-11-20T12:00:00.000Z", "s1", "4", 7, 3),
    ])
}

/// Response 1 once, response 2 once at its larger copy, response 3 still
/// counted (its transcript line is gone but nothing replaced it), 4 and 9.
const AFTER_REPLACE: (u64, u64, u64) = (10 + 100 + 1000 + 7 + 5, 20 + 250 + 2000 + 3 + 5, 5);

fn check_after_replace(sb: &Sandbox, store: &StoreMode) {
    for run in 0..2 {
        assert_eq!(
            totals(sb, store),
            AFTER_REPLACE,
            "run {run} after the rewrite"
        );
    }
    // One pass over the new tree lacks response 3: the store is what keeps it.
    assert_eq!(
        totals(sb, &StoreMode::None),
        (10 + 100 + 7 + 5, 20 + 250 + 3 + 5, 4)
    );
    let session = json_ok(sb.cmd_in(store).args(["session", "--json"]));
    let s1 = session["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sessionId"] == "s1")
        .unwrap_or_else(|| panic!("no session s1 in {session}"));
    assert_eq!(s1["inputTokens"], 1117);
    assert_eq!(s1["outputTokens"], 2273);
    // Re-reading everything gives the same.
    let mut c = sb.cmd_in(store);
    let daily = json_ok(c.args(["daily", "--json", "--recalculate"]));
    assert_eq!(daily["totals"]["inputTokens"], AFTER_REPLACE.0);
    assert_eq!(daily["totals"]["outputTokens"], AFTER_REPLACE.1);
    assert_eq!(totals(sb, store), AFTER_REPLACE, "after --recalculate");
}

#[test]
fn transcript_replaced_by_a_new_shorter_file_is_reread_whole() {
    let (sb, store) = replaced_setup();
    let path = sb.projects().join("a/s1.jsonl");
    let tmp = sb.projects().join("a/s1.jsonl.tmp");
    fs::write(&tmp, new_content()).unwrap();
    fs::rename(&tmp, &path).unwrap();
    check_after_replace(&sb, &store);
}

#[test]
fn transcript_truncated_and_rewritten_in_place_is_reread_whole() {
    let (sb, store) = replaced_setup();
    // Same inode, shorter content.
    let path = sb.projects().join("a/s1.jsonl");
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(new_content().as_bytes()).unwrap();
    drop(f);
    check_after_replace(&sb, &store);
}

#[test]
fn transcript_replaced_by_a_longer_different_file_is_reread_whole() {
    let (sb, store) = replaced_setup();
    // New inode, longer than what was read, different from the first byte:
    // reading it from the old offset would miss response 5 and mis-split lines.
    let path = sb.projects().join("a/s1.jsonl");
    let tmp = sb.projects().join("a/s1.jsonl.tmp");
    let mut text = lines_text(&[line("2026-11-20T10:05:00.000Z", "s1", "5", 40_000, 50_000)]);
    text.push_str(&"\n".repeat(3000));
    text.push_str(&new_content());
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, &path).unwrap();
    let want = (AFTER_REPLACE.0 + 40_000, AFTER_REPLACE.1 + 50_000, 6);
    assert_eq!(totals(&sb, &store), want);
    assert_eq!(totals(&sb, &store), want, "second run");
}

#[test]
fn transcript_deleted_then_recreated_with_other_content_keeps_old_entries() {
    let sb = Sandbox::new();
    let store = StoreMode::At(sb.path().join("csm-store"));
    // Lines of equal length: the new file's line sits where the old first one was.
    let old = [
        line("2026-11-20T10:10:00.000Z", "s1", "1", 10, 20),
        line("2026-11-20T10:20:00.000Z", "s1", "2", 100, 200),
    ];
    let new = line("2026-11-20T10:30:00.000Z", "s1", "3", 10, 20);
    assert_eq!(old[0].len(), new.len());
    let path = sb.write_session("a", "s1", &old);
    assert_eq!(totals(&sb, &store), (110, 220, 2));
    fs::remove_file(&path).unwrap();
    assert_eq!(totals(&sb, &store), (110, 220, 2), "after deletion");
    // Another transcript appears under the same name: responses 1 and 2 are
    // history, response 3 is new.
    sb.write_session("a", "s1", std::slice::from_ref(&new));
    for run in 0..2 {
        assert_eq!(
            totals(&sb, &store),
            (120, 240, 3),
            "run {run} after re-creation"
        );
    }
}

// ---------------------------------------------------------------------------
// 6. --recalculate.

#[test]
fn recalculate_changes_nothing_and_keeps_deleted_transcripts() {
    let sb = Sandbox::new();
    sb.generate(61, 3 * MIB, true);
    let store = StoreMode::At(sb.path().join("csm-store"));
    let before = sb.json_reports(&store);
    let db_before = store_section(&sb, &store);
    let recalc = |sb: &Sandbox| -> Vec<String> {
        JSON_REPORTS
            .iter()
            .map(|args| stdout_ok(sb.cmd_in(&store).args(*args).arg("--recalculate")))
            .collect()
    };
    assert_same_reports("--recalculate", &recalc(&sb), &before);
    assert_same_reports("after --recalculate", &sb.json_reports(&store), &before);
    // Re-reading replaced the stored lines rather than adding to them.
    let db_after = store_section(&sb, &store);
    for key in ["files", "lines", "entries", "windows"] {
        assert_eq!(
            db_after[key], db_before[key],
            "{key}: {db_before} -> {db_after}"
        );
    }

    let deleted = delete_half(&sb);
    assert!(!deleted.is_empty());
    assert_same_reports("--recalculate after deletion", &recalc(&sb), &before);
    assert_same_reports("after that", &sb.json_reports(&store), &before);
    let section = store_section(&sb, &store);
    assert_eq!(section["filesGone"], deleted.len());
    assert_eq!(section["lines"], db_before["lines"]);
    // And the reduced tree alone does give less.
    assert_ne!(sb.json_reports(&StoreMode::None)[1], before[1]);
}

// ---------------------------------------------------------------------------
// 5. New responses after the latest one extend the windows.

/// `--debug` says how the store brought its windows up to date.
fn window_update(sb: &Sandbox, store: &StoreMode) -> String {
    let out = sb
        .cmd_in(store)
        .args(["--debug", "blocks", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .find_map(|l| l.split_once("windows ").map(|(_, w)| w.to_string()))
        .unwrap_or_default()
}

#[test]
fn appended_responses_extend_the_latest_window_exactly() {
    let sb = Sandbox::new();
    sb.generate(31, 2 * MIB, false);
    let store = StoreMode::At(sb.path().join("csm-store"));
    let blocks: Value =
        serde_json::from_str(&stdout_ok(sb.cmd_in(&store).args(["blocks", "--json"]))).unwrap();
    let latest = blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|b| b["isGap"] == false)
        .unwrap()["actualEndTime"]
        .as_str()
        .unwrap()
        .to_string();
    let latest: jiff::Timestamp = latest.parse().unwrap();
    let at = |minutes: i64| {
        latest
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    let file = PathBuf::from("projects/-home-dev-appended/live.jsonl");
    let session_line = |ts: &str, n: u32, out: u64| fresh_line(ts, "live", n, 1000, out) + "\n";
    let rounds: Vec<(&str, String)> = vec![
        // Inside the latest window, then after a silence longer than a window
        // (a gap and a new window), then streamed copies of one response.
        (
            "latest extended",
            session_line(&at(10), 1, 50) + &session_line(&at(12), 2, 60),
        ),
        ("latest extended", session_line(&at(7 * 60), 3, 70)),
        (
            "latest extended",
            session_line(&at(7 * 60 + 1), 4, 10) + &session_line(&at(7 * 60 + 2), 4, 90),
        ),
        // A later copy of a response already stored: its verdict may move.
        ("recomputed from", session_line(&at(7 * 60 + 3), 4, 500)),
        // A response at the very instant of the latest one.
        ("recomputed from", session_line(&at(7 * 60 + 3), 5, 5)),
    ];
    for (i, (expected, text)) in rounds.iter().enumerate() {
        append(&sb.claude(), &file, text.as_bytes());
        let how = window_update(&sb, &store);
        assert!(how.starts_with(expected), "round {i}: windows {how}");
        assert_same_reports(
            &format!("round {i}"),
            &sb.json_reports(&store),
            &sb.json_reports(&StoreMode::None),
        );
    }
}

// ---------------------------------------------------------------------------
// Accounts: one store, several Claude config dirs, numbers never mixed.

/// A generated history (`seed`) in its own Claude config dir `<sandbox>/<name>`.
fn account_dir(sb: &Sandbox, name: &str, seed: u64, bytes: u64) -> PathBuf {
    let dir = sb.path().join(name);
    generate_account(&dir, seed, bytes);
    support::real(&dir)
}

/// A generated history (`seed`, about `bytes`, 20 days) in the Claude config dir `dir`.
fn generate_account(dir: &Path, seed: u64, bytes: u64) {
    use claude_session_monitor::synth::{SynthOptions, default_now, generate};
    let mut opts = SynthOptions::new(seed, bytes, default_now());
    opts.days = 20;
    generate(dir, &opts).expect("generate history");
}

/// `csm <args>` on `roots` (a comma list, as ccusage takes it) with the
/// store below `csm_home`, or `--no-store` when `csm_home` is `None`.
fn on_roots(sb: &Sandbox, csm_home: Option<&Path>, roots: &[&Path], args: &[&str]) -> String {
    let list: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let mut c = match csm_home {
        Some(h) => sb.cmd_with_csm_home(h),
        None => {
            let mut c = sb.cmd_with_csm_home(&sb.path().join("unused"));
            c.arg("--no-store");
            c
        }
    };
    c.env("CLAUDE_CONFIG_DIR", list.join(",")).args(args);
    stdout_ok(&mut c)
}

/// The reports of the account tests: windows and days.
const ACCOUNT_REPORTS: [&[&str]; 2] = [&["blocks", "--json"], &["daily", "--json"]];

/// A, B, A+B, C, A, B+C in one store: each run equals the `--no-store` run
/// on the same roots, whatever ran before it (a second account's history
/// used to be added to the first's).
#[test]
fn accounts_never_mix_whatever_the_order() {
    let sb = Sandbox::new();
    let a = account_dir(&sb, "A", 31, 300 * 1024);
    let b = account_dir(&sb, "B", 32, 300 * 1024);
    let c = account_dir(&sb, "C", 33, 300 * 1024);
    let home = sb.csm_home();
    for roots in [
        vec![&a],
        vec![&b],
        vec![&a, &b],
        vec![&c],
        vec![&a],
        vec![&b, &c],
    ] {
        let roots: Vec<&Path> = roots.iter().map(|p| p.as_path()).collect();
        for args in ACCOUNT_REPORTS {
            let stored = on_roots(&sb, Some(&home), &roots, args);
            let memory = on_roots(&sb, None, &roots, args);
            support::assert_same_text(&format!("{roots:?} {args:?}"), &stored, &memory);
        }
    }
    // Several roots' windows are kept for the next run while nothing
    // changes: a second run answers from them, a change recomputes them.
    let union = |home: &Path| on_roots(&sb, Some(home), &[&a, &b], &["blocks", "--json"]);
    let memory = on_roots(&sb, None, &[&a, &b], &["blocks", "--json"]);
    support::assert_same_text("A+B again (kept windows)", &union(&home), &memory);
    let kept: i64 = rusqlite::Connection::open(home.join("history.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM blocks WHERE root_id < 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(kept > 0, "the union's windows are kept");
    support::assert_same_text("A+B once more", &union(&home), &memory);
    // The union is de-duplicated: a response copied into both accounts
    // counts once, as in one pass over both.
    let copy = a.join("projects").join("copied");
    fs::create_dir_all(&copy).unwrap();
    let some = jsonl_files(&b.join("projects"))[0].clone();
    fs::copy(&some, copy.join("same.jsonl")).unwrap();
    for args in ACCOUNT_REPORTS {
        let stored = on_roots(&sb, Some(&home), &[&a, &b], args);
        let memory = on_roots(&sb, None, &[&a, &b], args);
        support::assert_same_text(
            &format!("A+B with a shared copy {args:?}"),
            &stored,
            &memory,
        );
    }
    let stored = on_roots(&sb, Some(&home), &[&a], &["blocks", "--json"]);
    let memory = on_roots(&sb, None, &[&a], &["blocks", "--json"]);
    support::assert_same_text("A with the copy", &stored, &memory);
}

/// Deleting one account's transcripts keeps their entries for that account
/// only; another account's runs in between neither count them nor drop them.
#[test]
fn deleted_transcripts_count_for_their_own_account() {
    let sb = Sandbox::new();
    let a = account_dir(&sb, "A", 41, 300 * 1024);
    let b = account_dir(&sb, "B", 42, 300 * 1024);
    let home = sb.csm_home();
    let before_a = on_roots(&sb, Some(&home), &[&a], &["daily", "--json"]);
    let before_b = on_roots(&sb, Some(&home), &[&b], &["daily", "--json"]);
    let files = jsonl_files(&a.join("projects"));
    for f in files.iter().step_by(2) {
        fs::remove_file(f).unwrap();
    }
    // B first: A's deletion is none of B's business.
    assert_eq!(
        on_roots(&sb, Some(&home), &[&b], &["daily", "--json"]),
        before_b
    );
    assert_eq!(
        on_roots(&sb, Some(&home), &[&a], &["daily", "--json"]),
        before_a
    );
    let memory = on_roots(&sb, None, &[&a], &["daily", "--json"]);
    assert_ne!(memory, before_a, "the deleted half held usage");
}

/// `--account PATH` reports an account whose dir is gone from what the
/// store kept; `csm accounts` lists it as gone.
#[test]
fn an_account_whose_dir_is_gone_stays_reportable() {
    let sb = Sandbox::new();
    let a = account_dir(&sb, "A", 51, 200 * 1024);
    let b = account_dir(&sb, "B", 52, 200 * 1024);
    let home = sb.csm_home();
    let before = on_roots(&sb, Some(&home), &[&a], &["blocks", "--json"]);
    on_roots(&sb, Some(&home), &[&b], &["blocks", "--json"]);
    fs::remove_dir_all(&a).unwrap();
    let mut c = sb.cmd_with_csm_home(&home);
    c.env("CLAUDE_CONFIG_DIR", &b)
        .args(["blocks", "--json", "--account"])
        .arg(&a);
    assert_eq!(stdout_ok(&mut c), before);
    let v = json_ok(
        sb.cmd_with_csm_home(&home)
            .env("CLAUDE_CONFIG_DIR", &b)
            .args(["accounts", "--json"]),
    );
    let list = v["accounts"].as_array().unwrap();
    let state: Vec<(String, bool)> = list
        .iter()
        .map(|x| {
            (
                x["configDir"].as_str().unwrap().to_string(),
                x["present"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        state.contains(&(a.display().to_string(), false)),
        "{state:?}"
    );
    assert!(
        state.contains(&(b.display().to_string(), true)),
        "{state:?}"
    );
    assert!(v["unattributed"].as_array().unwrap().is_empty());
    // A name that is no account is refused, naming the value and the known ones.
    let out = sb
        .cmd_with_csm_home(&home)
        .args(["blocks", "--account", "nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'nobody'") && err.contains("known:"), "{err}");
}

/// Two configured accounts with their own billing days and plans: each
/// one's period, and `status` covering both, one line and one entry each.
#[test]
fn two_accounts_with_different_billing_days() {
    let sb = Sandbox::new();
    let work = account_dir(&sb, "work", 61, 200 * 1024);
    let personal = account_dir(&sb, "personal", 62, 200 * 1024);
    let config = sb.path().join("config.toml");
    fs::write(
        &config,
        format!(
            "sessions_per_period = 50\n\
             [[accounts]]\nname = \"work\"\nclaude_dir = \"{}\"\nstart_day = 15\nsessions_per_period = 40\n\
             [[accounts]]\nname = \"personal\"\nclaude_dir = \"{}\"\n",
            work.display(),
            personal.display()
        ),
    )
    .unwrap();
    let period = |account: &str| {
        json_ok(sb.bare_cmd().arg("--config").arg(&config).args([
            "period",
            "--json",
            "--account",
            account,
        ]))
    };
    let (w, p) = (period("work"), period("personal"));
    // NOW is 2026-11-20: the 15th's period began on 2026-11-15, the 1st's on 2026-11-01.
    let start = |v: &Value| v.to_string();
    assert!(start(&w).contains("2026-11-15"), "{w}");
    assert!(start(&p).contains("2026-11-01"), "{p}");
    let status = stdout_ok(sb.bare_cmd().arg("--config").arg(&config).args(["status"]));
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines.len(), 2, "{status}");
    assert!(
        lines[0].starts_with("work: ") && lines[0].contains("/40 "),
        "{status}"
    );
    assert!(
        lines[1].starts_with("personal: ") && lines[1].contains("/50 "),
        "{status}"
    );
    let snap = json_ok(
        sb.bare_cmd()
            .arg("--config")
            .arg(&config)
            .args(["status", "--format", "json"]),
    );
    let entries = snap["accounts"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["account"]["name"], "work");
    assert_eq!(entries[1]["account"]["name"], "personal");
    // The top level is the first account's (what the original widget reads).
    assert_eq!(snap["sessions_limit"], 40);
    assert_eq!(
        snap["billing_period_start"],
        entries[0]["billing_period_start"]
    );
    assert_ne!(
        entries[0]["billing_period_start"],
        entries[1]["billing_period_start"]
    );
    // Each entry equals the account's own snapshot.
    for (i, name) in ["work", "personal"].iter().enumerate() {
        let own = json_ok(sb.bare_cmd().arg("--config").arg(&config).args([
            "status",
            "--format",
            "json",
            "--account",
            name,
        ]));
        assert_eq!(
            own["period"], entries[i]["period"],
            "{name}: the entry is the account's own figures"
        );
    }
}

/// A store written by the release before accounts (schema 4), which had
/// counted two accounts together, is migrated: every file goes to the root
/// its path names, each account then reports what a pass over it alone
/// gives (a deleted transcript included), and a file under no root is
/// listed, not counted.
///
/// The fixture was written by csm at commit ffb2e3f (see
/// `write_migration_fixture`): `CLAUDE_CONFIG_DIR=/tmp/csmfx/A csm daily`,
/// the same for B, then A's first transcript deleted and A read again.
#[test]
fn a_store_from_the_previous_release_migrates_per_account() {
    let sb = Sandbox::new();
    let a = account_dir(&sb, "fx/A", 71, 200 * 1024);
    let b = account_dir(&sb, "fx/B", 72, 200 * 1024);
    let root = a.parent().unwrap().to_path_buf();
    // What A held before its first transcript was deleted.
    let full_a: Vec<String> = ACCOUNT_REPORTS
        .iter()
        .map(|args| on_roots(&sb, None, &[&a], args))
        .collect();
    let first = jsonl_files(&a.join("projects"))[0].clone();
    fs::remove_file(&first).unwrap();

    let home = sb.csm_home();
    fs::create_dir_all(&home).unwrap();
    let db = home.join("history.db");
    fs::copy("tests/fixtures/store/history-schema4.db", &db).unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 4, "the fixture is the previous release's schema");
        // The fixture's paths name /tmp/csmfx: move them to this sandbox.
        let rows: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT id, path FROM files")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let old = b"/tmp/csmfx";
        for (id, path) in rows {
            assert!(path.starts_with(old), "{}", String::from_utf8_lossy(&path));
            let mut new = root.as_os_str().as_encoded_bytes().to_vec();
            new.extend_from_slice(&path[old.len()..]);
            conn.execute(
                "UPDATE files SET path = ?2 WHERE id = ?1",
                rusqlite::params![id, new],
            )
            .unwrap();
        }
        conn.execute_batch(
            "DELETE FROM dirs; DELETE FROM meta WHERE key = 'full_walk_ms';
             INSERT INTO files (path, project, session_id, project_path, device, inode, size, mtime_ns, read_to, present)
                 VALUES (x'2f6c6f6f73652e6a736f6e6c', 'p', 's', '/p', 0, 0, 0, 0, 0, 0);",
        )
        .unwrap();
    }
    // B first, then A: each is its own.
    for args in ACCOUNT_REPORTS {
        support::assert_same_text(
            &format!("B {args:?}"),
            &on_roots(&sb, Some(&home), &[&b], args),
            &on_roots(&sb, None, &[&b], args),
        );
    }
    let migrated_a: Vec<String> = ACCOUNT_REPORTS
        .iter()
        .map(|args| on_roots(&sb, Some(&home), &[&a], args))
        .collect();
    assert_same_reports(
        "A after migration (its deleted transcript kept)",
        &migrated_a,
        &full_a,
    );
    let v = json_ok(
        sb.cmd_with_csm_home(&home)
            .env("CLAUDE_CONFIG_DIR", &a)
            .args(["accounts", "--json"]),
    );
    assert_eq!(v["unattributed"], serde_json::json!(["/loose.jsonl"]));
    assert_eq!(v["accounts"].as_array().unwrap().len(), 2);
    let doctor = stdout_ok(
        sb.cmd_with_csm_home(&home)
            .env("CLAUDE_CONFIG_DIR", &a)
            .arg("doctor"),
    );
    assert!(
        doctor.contains("1 transcript(s) under no known account"),
        "{doctor}"
    );
}

/// Writes the histories of the migration fixture into `CSM_FIXTURE_DIR`
/// (by hand, once: `CSM_FIXTURE_DIR=/tmp/csmfx cargo test --test store
/// write_migration_fixture -- --ignored`, then run the previous release's
/// csm on them as the test above says).
#[test]
#[ignore]
fn write_migration_fixture() {
    let dir = PathBuf::from(std::env::var("CSM_FIXTURE_DIR").expect("CSM_FIXTURE_DIR"));
    for (name, seed) in [("A", 71), ("B", 72)] {
        generate_account(&dir.join(name), seed, 200 * 1024);
    }
}

/// The default config dir (the sandbox HOME's `.claude`) deleted whole: its history stays in the store
/// and the reports still show it (no other account's).
#[test]
fn history_of_a_deleted_default_dir_is_still_reported() {
    let sb = Sandbox::new();
    let default = sb.home().join(".claude");
    generate_account(&default, 91, 200 * 1024);
    let before = stdout_ok(sb.bare_cmd().args(["blocks", "--json"]));
    assert!(before.contains("\"totalTokens\""), "{before}");
    // Another account in the same store must not leak in afterwards.
    let other = account_dir(&sb, "other", 92, 200 * 1024);
    on_roots(&sb, Some(&sb.csm_home()), &[&other], &["blocks", "--json"]);
    fs::remove_dir_all(&default).unwrap();
    assert_eq!(stdout_ok(sb.bare_cmd().args(["blocks", "--json"])), before);
}
