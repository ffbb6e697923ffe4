//! Properties (proptest) of de-duplication and of the history store, on
//! generated transcripts full of the hard cases: streamed copies of one
//! response with growing output, copies in other files (resumed sessions),
//! sidechain replays, exact ties, lines without ids.
//!
//! - Feeding the store the transcripts in random chunks (files appearing in
//!   any order, appends cut inside lines, repeated syncs with nothing new)
//!   gives the same entries and five-hour windows as one pass over the
//!   final files.
//! - De-duplication is idempotent: de-duplicating its own output, or the
//!   same lines read again (a copied transcript), changes nothing.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use claude_session_monitor::blocks::{Block, Timed, identify_blocks, window_length};
use claude_session_monitor::dedup::dedup;
use claude_session_monitor::domain::UsageEntry;
use claude_session_monitor::ingest::discover::{Roots, origin_of, walk_all};
use claude_session_monitor::ingest::parse::LineParser;
use claude_session_monitor::ingest::scan_all;
use claude_session_monitor::pricing::costs;
use claude_session_monitor::pricing::{CostMode, PriceResolver, PriceTable};
use claude_session_monitor::store::{Store, SyncOptions};
use jiff::Timestamp;
use proptest::prelude::*;

const FILES: [&str; 5] = [
    "-home-dev-a/s1.jsonl",
    "-home-dev-a/s2.jsonl",
    "-home-dev-b/s3.jsonl",
    "-home-dev-b/s3/subagents/agent-1.jsonl",
    "-home-dev-c/s4.jsonl",
];

const MODELS: [&str; 3] = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-5-20251101",
    "claude-haiku-4-5-20251001",
];

/// One line to write: which file, which response (None: no ids), and how.
#[derive(Clone, Debug)]
struct Copy {
    file: usize,
    response: Option<u8>,
    minute: u16,
    output: u8,
    model: usize,
    sidechain: bool,
}

fn arb_copy() -> impl Strategy<Value = Copy> {
    (
        0..FILES.len(),
        prop::option::weighted(0.9, 0u8..12),
        0u16..(3 * 24 * 60),
        0u8..4,
        0..MODELS.len(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(file, response, minute, output, model, sidechain)| Copy {
            file,
            response,
            minute,
            output,
            model,
            sidechain,
        })
}

fn line(c: &Copy) -> String {
    let ts = Timestamp::from_second(1_763_251_200 + i64::from(c.minute) * 60).unwrap();
    let mut v = serde_json::json!({
        "timestamp": format!("{}", ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
        "sessionId": format!("s{}", c.file),
        "type": "assistant",
        "isSidechain": c.sidechain,
        "message": {
            "model": MODELS[c.model],
            // Small counts: exact ties between copies happen often.
            "usage": {"input_tokens": 10, "output_tokens": u64::from(c.output) * 5,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7}
        }
    });
    if let Some(r) = c.response {
        v["message"]["id"] = format!("msg_{r}").into();
        v["requestId"] = format!("req_{r}").into();
    }
    v.to_string()
}

/// The final content of each file.
fn contents(copies: &[Copy]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new(); FILES.len()];
    for c in copies {
        out[c.file].extend_from_slice(line(c).as_bytes());
        out[c.file].push(b'\n');
    }
    out
}

fn roots(dir: &Path) -> Roots {
    Roots {
        projects_dirs: vec![dir.join("projects")],
        explanation: None,
        named_but_missing: false,
    }
}

/// What a report sees of an entry (not where it was read).
fn key(e: &UsageEntry) -> String {
    format!(
        "{} {:?} {:?} {:?} {:?} {} {} {}",
        e.timestamp,
        e.tokens,
        e.model,
        e.message_id,
        e.request_id,
        e.is_sidechain,
        e.origin.project,
        e.origin.session_id
    )
}

fn block_key(b: &Block) -> String {
    format!(
        "{} {} {:?} {:?} {} {} {:?} {:?} {:.9}",
        b.start,
        b.end,
        b.first_entry,
        b.actual_end,
        b.is_gap,
        b.entries,
        b.tokens,
        b.models,
        b.cost_usd
    )
}

/// The roots of these Claude config dirs.
fn roots_of(dirs: &[&Path]) -> Roots {
    Roots {
        projects_dirs: dirs.iter().map(|d| d.join("projects")).collect(),
        explanation: None,
        named_but_missing: false,
    }
}

/// One pass over the final files, in memory (what `--no-store` computes).
fn one_pass(dir: &Path, prices: &PriceTable) -> (Vec<String>, Vec<String>) {
    one_pass_over(&roots(dir), prices)
}

/// [`one_pass`] over the files below `roots`.
fn one_pass_over(roots: &Roots, prices: &PriceTable) -> (Vec<String>, Vec<String>) {
    let files = walk_all(roots).files;
    let (raw, _) = scan_all(&files);
    let entries = dedup(raw);
    let mut sorted: Vec<&UsageEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.timestamp);
    let mut resolver = PriceResolver::new(prices);
    let c = costs(sorted.iter().copied(), CostMode::Auto, &mut resolver);
    let blocks = identify_blocks(
        sorted.iter().zip(&c).map(|(e, c)| Timed {
            entry: e,
            cost: c.usd,
        }),
        window_length(5.0),
    );
    (
        entries.iter().map(key).collect(),
        in_order(blocks.iter().map(block_key).collect()),
    )
}

fn from_store(store: &Store) -> (Vec<String>, Vec<String>) {
    (
        store.entries(None).unwrap().iter().map(key).collect(),
        in_order(
            store
                .blocks(CostMode::Auto)
                .unwrap()
                .iter()
                .map(block_key)
                .collect(),
        ),
    )
}

/// Windows in a fixed order: reports sort them by start (see the test at the
/// end), the store and one pass may list a window and its gap either way.
fn in_order(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn append(dir: &Path, file: usize, bytes: &[u8]) {
    let path = dir.join("projects").join(FILES[file]);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// A schedule: in each round, how far (per mille of its length) each file
/// has been written; `None` while it does not exist yet.
fn arb_schedule() -> impl Strategy<Value = Vec<Vec<Option<u16>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::option::weighted(0.7, 0u16..=1000), FILES.len()),
        1..5,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn store_fed_in_random_chunks_equals_one_pass(
        copies in prop::collection::vec(arb_copy(), 1..60),
        schedule in arb_schedule(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("projects")).unwrap();
        let full = contents(&copies);
        let prices = claude_session_monitor::pricing::load(&dir.join("nothing")).unwrap();
        let mut store = Store::open(&dir.join("csm")).unwrap();
        let sync = |store: &mut Store| {
            let files = walk_all(&roots(dir)).files;
            store.sync(&files, &prices, &SyncOptions::default()).unwrap();
        };

        let mut written = vec![0usize; FILES.len()];
        for round in &schedule {
            for (i, upto) in round.iter().enumerate() {
                let Some(per_mille) = upto else { continue };
                // Only forward: a round may cut a file inside a line.
                let to = (full[i].len() * usize::from(*per_mille) / 1000).max(written[i]);
                if to > written[i] || (to == 0 && !full[i].is_empty()) {
                    append(dir, i, &full[i][written[i]..to]);
                    written[i] = to;
                }
            }
            sync(&mut store);
        }
        // The rest of every file, then a sync, then one with nothing new.
        for i in 0..FILES.len() {
            if !full[i].is_empty() {
                append(dir, i, &full[i][written[i]..]);
            }
        }
        sync(&mut store);
        let after_chunks = from_store(&store);
        sync(&mut store);
        prop_assert_eq!(&from_store(&store), &after_chunks, "a sync without changes changed something");

        let want = one_pass(dir, &prices);
        prop_assert_eq!(&after_chunks.0, &want.0, "entries");
        prop_assert_eq!(&after_chunks.1, &want.1, "blocks");

        // A fresh store fed everything at once agrees too.
        let mut fresh = Store::open(&dir.join("csm-fresh")).unwrap();
        sync(&mut fresh);
        prop_assert_eq!(&from_store(&fresh), &want);
    }

    /// Two accounts (A and B, the same layout, the copies shared out at
    /// random, so a response may sit in both) in one store, runs on A, B
    /// and A+B in a random order, before and after the rest of every file
    /// is written: every run equals one pass over its own roots.
    #[test]
    fn accounts_in_any_order_equal_one_pass_over_their_roots(
        copies in prop::collection::vec((arb_copy(), prop::bool::ANY), 1..50),
        order in prop::collection::vec(0usize..3, 1..6),
        later in prop::collection::vec(0usize..3, 1..4),
        cut in 0u16..=1000,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = [tmp.path().join("A"), tmp.path().join("B")];
        let mut full = Vec::new();
        for (k, dir) in dirs.iter().enumerate() {
            fs::create_dir_all(dir.join("projects")).unwrap();
            let mine: Vec<Copy> = copies
                .iter()
                .filter(|(_, in_b)| usize::from(*in_b) == k)
                .map(|(c, _)| c.clone())
                .collect();
            let content = contents(&mine);
            for (i, bytes) in content.iter().enumerate() {
                let upto = bytes.len() * usize::from(cut) / 1000;
                if upto > 0 {
                    append(dir, i, &bytes[..upto]);
                }
            }
            full.push(content);
        }
        let prices = claude_session_monitor::pricing::load(&tmp.path().join("nothing")).unwrap();
        let mut store = Store::open(&tmp.path().join("csm")).unwrap();
        let scope = |which: usize| -> Vec<&Path> {
            match which {
                0 => vec![dirs[0].as_path()],
                1 => vec![dirs[1].as_path()],
                _ => vec![dirs[0].as_path(), dirs[1].as_path()],
            }
        };
        let run = |store: &mut Store, which: usize| -> Result<(), TestCaseError> {
            let r = roots_of(&scope(which));
            store.set_scope(&r.projects_dirs).unwrap();
            let files = walk_all(&r).files;
            store.sync(&files, &prices, &SyncOptions::default()).unwrap();
            let want = one_pass_over(&r, &prices);
            let got = from_store(store);
            prop_assert_eq!(&got.0, &want.0, "entries of scope {}", which);
            prop_assert_eq!(&got.1, &want.1, "windows of scope {}", which);
            Ok(())
        };
        for which in &order {
            run(&mut store, *which)?;
        }
        for (k, dir) in dirs.iter().enumerate() {
            for (i, bytes) in full[k].iter().enumerate() {
                let upto = bytes.len() * usize::from(cut) / 1000;
                if upto < bytes.len() {
                    append(dir, i, &bytes[upto..]);
                }
            }
        }
        for which in &later {
            run(&mut store, *which)?;
        }
    }

    #[test]
    fn dedup_is_idempotent(copies in prop::collection::vec(arb_copy(), 0..80)) {
        let mut parser = LineParser::new();
        let parse = |parser: &mut LineParser, cs: &[Copy], file_base: usize| -> Vec<UsageEntry> {
            cs.iter()
                .map(|c| {
                    let origin = Arc::new(origin_of(&["p", &format!("f{}.jsonl", c.file + file_base)]));
                    parser.parse_line(line(c).as_bytes(), &origin).unwrap()
                })
                .collect()
        };
        let with_ids: Vec<Copy> = copies.iter().filter(|c| c.response.is_some()).cloned().collect();
        let entries = parse(&mut parser, &copies, 0);
        let once = dedup(entries.clone());
        prop_assert_eq!(dedup(once.clone()), once.clone(), "de-duplicating the result");

        // The lines with ids read again later (a resumed session's copy of
        // the transcript, in another file): nothing changes.
        let once_ids = dedup(parse(&mut parser, &with_ids, 0));
        let mut twice = parse(&mut parser, &with_ids, 0);
        twice.extend(parse(&mut parser, &with_ids, FILES.len()));
        let twice = dedup(twice);
        prop_assert_eq!(twice.iter().map(key).collect::<Vec<_>>(), once_ids.iter().map(key).collect::<Vec<_>>());
        let total = |es: &[UsageEntry]| es.iter().map(|e| e.tokens.total()).sum::<u64>();
        prop_assert_eq!(total(&twice), total(&once_ids));
    }
}

/// Found by `store_fed_in_random_chunks_equals_one_pass`: an entry just over
/// five hours after the previous one, in the same clock hour as the end of
/// that silence, starts a window (floored to the hour) before the gap that
/// precedes it. The store keeps windows by start time, one pass in the
/// order it finds them; reports sort by start (as ccusage), so the JSON
/// must be the same either way.
#[test]
fn a_window_that_starts_before_its_gap_reports_the_same_from_the_store() {
    use crate::support::{SONNET, Sandbox, StoreMode, stdout_ok, usage_line};
    let sb = Sandbox::new();
    sb.write_session(
        "-home-dev-gap",
        "g1",
        &[
            usage_line("2026-11-17T18:01:00.000Z", "g1", 1, SONNET, [10, 0, 0, 7]),
            usage_line("2026-11-17T23:02:00.000Z", "g1", 2, SONNET, [10, 0, 0, 7]),
        ],
    );
    let one_pass = stdout_ok(sb.cmd_in(&StoreMode::None).args(["blocks", "--json"]));
    assert!(
        one_pass.contains("gap-2026-11-17T23:01:00.000Z"),
        "{one_pass}"
    );
    for args in [
        &["blocks", "--json"][..],
        &["blocks", "--json", "--order", "desc"],
    ] {
        let want = stdout_ok(sb.cmd_in(&StoreMode::None).args(args));
        let stored = stdout_ok(sb.cmd_in(&StoreMode::Fresh).args(args));
        crate::support::assert_same_text(&format!("{args:?}: store vs one pass"), &stored, &want);
    }
}
