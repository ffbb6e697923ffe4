//! The least a cold load can spend in SQLite: synthetic rows written straight
//! into csm's real `lines` table, the way the cold path writes them (indexes
//! dropped, one transaction per batch, indexes rebuilt at the end), with no
//! transcript read, parsed or priced.
//!
//! ```text
//! cargo run --release --example store_floor -- --dir /tmp/floor [--rows 186736] [--per-commit 5700]
//! ```
//!
//! The defaults are the generated 1 GiB history's figures: 186,736 accepted
//! usage lines (54 % of them counted copies), read in 33 batches of 32 MiB.
//! `--dir` must not exist yet or be empty; nothing else is touched.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use claude_session_monitor::store::Store;
use rusqlite::types::Value;

struct Args {
    dir: PathBuf,
    rows: u64,
    per_commit: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut dir = None;
    let mut rows = 186_736;
    let mut per_commit = 5_700;
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

    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('lines')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let indexes: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'lines' AND sql IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {name}"))?;
    }
    let insert = format!(
        "INSERT OR REPLACE INTO lines ({}) VALUES ({})",
        columns.join(", "),
        vec!["?"; columns.len()].join(", ")
    );

    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut id = 0i64;
    let mut commits = Duration::ZERO;
    let start = Instant::now();
    let mut k = 0;
    while k < args.rows {
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(&insert)?;
            for row in k..(k + args.per_commit).min(args.rows) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // 54 % of lines are the counted copy of a new response.
                let kept = state % 100 < 54;
                if kept {
                    id = (state >> 1) as i64;
                }
                let values = columns.iter().map(|c| value(c, row, id, kept));
                st.execute(rusqlite::params_from_iter(values))?;
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

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("rows                 {}", args.rows);
    println!(
        "insert + commit      {:8.1} ms  ({:.2} µs/row; commits {:.1} ms)",
        ms(inserted),
        ms(inserted) * 1e3 / args.rows.max(1) as f64,
        ms(commits)
    );
    println!(
        "build {} indexes      {:8.1} ms",
        indexes.len(),
        ms(indexed)
    );
    println!("total                {:8.1} ms", ms(inserted + indexed));
    Ok(())
}
