//! The least a cold load can spend in SQLite: synthetic rows written straight
//! into csm's real `lines` table, the way the cold path writes them (the
//! message-id index dropped and rebuilt at the end, the time index kept up,
//! 32 rows per statement, one transaction per batch), with no transcript
//! read, parsed or priced.
//!
//! ```text
//! cargo run --release --example store_floor -- --dir /tmp/floor [--rows 186736] [--per-commit 5700] [--layout rows|chunks]
//! ```
//!
//! The defaults are the generated 1 GiB history's figures: 186,736 accepted
//! usage lines (54 % of them counted copies), read in 33 batches of 32 MiB.
//! `--dir` must not exist yet or be empty; nothing else is touched.
//!
//! `--layout chunks` measures the layout a faster store would need instead:
//! the same lines packed 64 bytes each, one row per 70 lines of a file, with
//! an index on the chunks' first times, plus the counted copies' message ids
//! in 4,096 sorted buckets for the warm de-duplication, and what 200 warm
//! look-ups and additions cost there (tables this example creates; csm does
//! not use them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use claude_session_monitor::store::Store;
use rusqlite::types::Value;

struct Args {
    dir: PathBuf,
    rows: u64,
    per_commit: u64,
    chunks: bool,
}

/// Rows per statement, as csm's cold load writes them (the rest of a batch
/// one at a time).
const ROWS_PER_INSERT: u64 = 32;
/// Lines per packed row, about one file's worth in the generated history.
const LINES_PER_CHUNK: u64 = 70;
/// Bytes per packed line: offset, time, four counts, ids, cost.
const PACKED_LINE: usize = 64;

fn parse_args() -> anyhow::Result<Args> {
    let mut dir = None;
    let mut rows = 186_736;
    let mut per_commit = 5_700;
    let mut chunks = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value)),
            "--rows" => rows = value.parse().with_context(|| format!("--rows {value}"))?,
            "--per-commit" => {
                per_commit = value
                    .parse()
                    .with_context(|| format!("--per-commit {value}"))?
            }
            "--layout" => match value.as_str() {
                "rows" => chunks = false,
                "chunks" => chunks = true,
                other => bail!("--layout {other}: expected rows or chunks"),
            },
            other => bail!("unknown flag {other}"),
        }
    }
    let dir = dir.context("--dir DIR is required (a fresh temp dir)")?;
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty", dir.display());
    }
    if per_commit == 0 {
        bail!("--per-commit must be at least 1");
    }
    Ok(Args {
        dir,
        rows,
        per_commit,
        chunks,
    })
}

/// A value for one column of row `k`, shaped like real data where it matters
/// to SQLite: keys in reading order, increasing times, random message ids
/// (a copy repeats the id of the row before it), a model name.
fn value(column: &str, k: u64, id: i64, kept: bool) -> Value {
    let file = (k / 70) as i64;
    let offset = (k % 70 * 15_000) as i64;
    match column {
        "file_id" | "slot_file" => Value::Integer(file),
        "offset" | "slot_offset" => Value::Integer(offset),
        "ts_ms" => Value::Integer(1_760_000_000_000 + k as i64 * 7_000),
        "message_id" | "request_id" | "session_key" => Value::Integer(id),
        "model" => Value::Text("claude-sonnet-4-5-20250929".to_owned()),
        "kept" => Value::Integer(i64::from(kept)),
        "cost_usd" | "speed" | "reset_s" => Value::Null,
        "calc_cost" => Value::Real(0.0123),
        _ => Value::Integer((k % 5_000) as i64),
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // The real schema, at the real file name, through csm's own open.
    drop(Store::open(&args.dir)?);
    let mut conn = rusqlite::Connection::open(args.dir.join("history.db"))?;
    // The settings csm's store runs a cold load with.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "cache_size", -4096)?;

    if args.chunks {
        return chunk_floor(&mut conn, &args);
    }

    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('lines')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let indexes: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name = 'lines_message'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {name}"))?;
    }
    let row_sql = format!("({})", vec!["?"; columns.len()].join(", "));
    let insert = |rows: u64| {
        format!(
            "INSERT OR REPLACE INTO lines ({}) VALUES {}",
            columns.join(", "),
            vec![row_sql.as_str(); rows as usize].join(", ")
        )
    };
    let (insert_many, insert_one) = (insert(ROWS_PER_INSERT), insert(1));

    let mut state = SEED;
    let mut id = 0i64;
    let mut commits = Duration::ZERO;
    let start = Instant::now();
    let mut k = 0;
    while k < args.rows {
        let tx = conn.transaction()?;
        {
            let end = (k + args.per_commit).min(args.rows);
            let mut row = k;
            while row < end {
                let n = if end - row >= ROWS_PER_INSERT {
                    ROWS_PER_INSERT
                } else {
                    1
                };
                let mut values = Vec::with_capacity(n as usize * columns.len());
                for r in row..row + n {
                    next(&mut state);
                    // 54 % of lines are the counted copy of a new response.
                    let kept = state % 100 < 54;
                    if kept {
                        id = (state >> 1) as i64;
                    }
                    values.extend(columns.iter().map(|c| value(c, r, id, kept)));
                }
                let sql = if n == 1 { &insert_one } else { &insert_many };
                tx.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(values))?;
                row += n;
            }
        }
        let at = Instant::now();
        tx.commit()?;
        commits += at.elapsed();
        k += args.per_commit;
    }
    let inserted = start.elapsed();
    let at = Instant::now();
    for (_, sql) in &indexes {
        conn.execute_batch(sql)?;
    }
    let indexed = at.elapsed();

    print_figures(args.rows, inserted, commits, indexes.len(), indexed);
    Ok(())
}

fn print_figures(
    rows: u64,
    inserted: Duration,
    commits: Duration,
    indexes: usize,
    indexed: Duration,
) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("lines                {rows}");
    println!(
        "insert + commit      {:8.1} ms  ({:.2} µs/line; commits {:.1} ms)",
        ms(inserted),
        ms(inserted) * 1e3 / rows.max(1) as f64,
        ms(commits)
    );
    println!("build {indexes} indexes      {:8.1} ms", ms(indexed));
    println!("total                {:8.1} ms", ms(inserted + indexed));
}

/// The same lines, batches and commits, packed into chunk rows.
fn chunk_floor(conn: &mut rusqlite::Connection, args: &Args) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE chunks (
            file_id  INTEGER NOT NULL,
            offset   INTEGER NOT NULL,
            first_ms INTEGER NOT NULL,
            last_ms  INTEGER NOT NULL,
            lines    BLOB NOT NULL,
            PRIMARY KEY (file_id, offset)
        ) WITHOUT ROWID",
    )?;
    let ts = |row: u64| 1_760_000_000_000 + row as i64 * 7_000;
    // The warm de-duplication's lookup, for the counted copies: message id,
    // file, offset, total, in buckets by id.
    let mut buckets: Vec<Vec<[u64; 3]>> = vec![Vec::new(); BUCKETS];
    let mut state = SEED;
    let mut commits = Duration::ZERO;
    let mut packed = Vec::with_capacity(LINES_PER_CHUNK as usize * PACKED_LINE);
    let start = Instant::now();
    let mut k = 0;
    while k < args.rows {
        let batch_end = (k + args.per_commit).min(args.rows);
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached("INSERT INTO chunks VALUES (?1, ?2, ?3, ?4, ?5)")?;
            while k < batch_end {
                let n = (batch_end - k).min(LINES_PER_CHUNK - k % LINES_PER_CHUNK);
                packed.clear();
                for row in k..k + n {
                    next(&mut state);
                    if state % 100 < 54 {
                        let place =
                            (row / LINES_PER_CHUNK) << 32 | (row % LINES_PER_CHUNK * 15_000);
                        buckets[(state % BUCKETS as u64) as usize].push([
                            state,
                            place,
                            row % 5_000,
                        ]);
                    }
                    packed.extend_from_slice(&(row % LINES_PER_CHUNK * 15_000).to_le_bytes());
                    packed.extend_from_slice(&ts(row).to_le_bytes());
                    packed.extend_from_slice(&state.to_le_bytes());
                    packed.resize(packed.len() + PACKED_LINE - 24, (row % 251) as u8);
                }
                st.execute(rusqlite::params![
                    (k / LINES_PER_CHUNK) as i64,
                    (k % LINES_PER_CHUNK * 15_000) as i64,
                    ts(k),
                    ts(k + n - 1),
                    &packed
                ])?;
                k += n;
            }
        }
        let at = Instant::now();
        tx.commit()?;
        commits += at.elapsed();
    }
    let inserted = start.elapsed();
    let at = Instant::now();
    conn.execute_batch("CREATE INDEX chunks_time ON chunks(first_ms)")?;
    print_figures(args.rows, inserted, commits, 1, at.elapsed());

    let at = Instant::now();
    let counted: usize = buckets.iter().map(Vec::len).sum();
    conn.execute_batch(
        "CREATE TABLE message_buckets (bucket INTEGER PRIMARY KEY, entries BLOB NOT NULL)",
    )?;
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare("INSERT INTO message_buckets VALUES (?1, ?2)")?;
        for (bucket, entries) in buckets.iter_mut().enumerate() {
            entries.sort_unstable();
            st.execute(rusqlite::params![bucket as i64, pack(entries)])?;
        }
    }
    tx.commit()?;
    println!(
        "message buckets      {:8.1} ms  ({counted} ids in {BUCKETS} rows)",
        at.elapsed().as_secs_f64() * 1e3
    );

    // A warm run's share: 200 new responses, each looked up and added. It
    // starts, as a warm run does, from a checkpointed WAL.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let at = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut get = tx.prepare("SELECT entries FROM message_buckets WHERE bucket = ?1")?;
        let mut put = tx.prepare("UPDATE message_buckets SET entries = ?2 WHERE bucket = ?1")?;
        for _ in 0..200 {
            next(&mut state);
            let bucket = (state % BUCKETS as u64) as i64;
            let blob: Vec<u8> = get.query_row([bucket], |r| r.get(0))?;
            let mut entries = unpack(&blob);
            if let Err(at) = entries.binary_search_by_key(&state, |e| e[0]) {
                entries.insert(at, [state, 0, 1]);
            }
            put.execute(rusqlite::params![bucket, pack(&entries)])?;
        }
    }
    tx.commit()?;
    println!(
        "200 warm look-ups    {:8.1} ms",
        at.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// The synthetic data's fixed start, so runs compare.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// One xorshift step: the synthetic data's message ids and coin flips.
fn next(state: &mut u64) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
}

/// Message-id buckets of the chunk layout.
const BUCKETS: usize = 4096;

fn pack(entries: &[[u64; 3]]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|e| e.iter().flat_map(|v| v.to_le_bytes()))
        .collect()
}

fn unpack(blob: &[u8]) -> Vec<[u64; 3]> {
    blob.chunks_exact(24)
        .map(|e| {
            let v = |i: usize| u64::from_le_bytes(e[i..i + 8].try_into().unwrap_or_default());
            [v(0), v(8), v(16)]
        })
        .collect()
}
