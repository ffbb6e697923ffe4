//! `csm db stats|rebuild`: the history store.

use std::process::ExitCode;

use anyhow::{Result, bail};
use serde_json::json;

use super::Context;
use crate::cli::DbCommand;
use crate::report::format::{thousands, usd};
use crate::report::json::{iso_ms, to_pretty};

/// Runs `csm db stats` or `csm db rebuild`; fails under `--no-store`.
pub fn run(mut ctx: Context, cmd: DbCommand) -> Result<ExitCode> {
    if ctx.no_store {
        bail!("`csm db` works on the history store; drop --no-store");
    }
    let json = match cmd {
        DbCommand::Stats { json } => json,
        DbCommand::Rebuild => {
            ctx.settings.recalculate = true;
            false
        }
    };
    let sources = super::open(&ctx)?;
    let Some(store) = &sources.store else {
        bail!("no history store");
    };
    let s = store.stats()?;
    if json {
        let v = json!({
            "path": s.path.display().to_string(),
            "schemaVersion": s.schema_version,
            "bytes": s.bytes,
            "transcripts": s.files,
            "transcriptsGone": s.files_gone,
            "lines": s.lines,
            "entries": s.entries,
            "windows": s.blocks,
            "firstEntry": s.first_entry.map(iso_ms),
            "lastEntry": s.last_entry.map(iso_ms),
            "maxWindowTokens": s.max_block_tokens,
            "maxWindowCostUSD": s.max_block_cost,
        });
        print!("{}", to_pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.recalculate {
        let r = sources.sync.unwrap_or_default();
        println!(
            "Rebuilt from {} transcripts ({} lines read).",
            thousands(r.files_read as u64),
            thousands(r.stats.lines)
        );
    }
    println!(
        "history store  {} ({} bytes, schema {})",
        s.path.display(),
        thousands(s.bytes),
        s.schema_version
    );
    println!(
        "transcripts    {} ({} gone from disk, their entries kept)",
        thousands(s.files),
        thousands(s.files_gone)
    );
    println!("lines          {} (copies included)", thousands(s.lines));
    println!("entries        {}", thousands(s.entries));
    println!("windows        {}", thousands(s.blocks));
    if let (Some(a), Some(b)) = (s.first_entry, s.last_entry) {
        println!("covering       {} to {}", iso_ms(a), iso_ms(b));
    }
    println!(
        "largest window {} tokens, {}",
        thousands(s.max_block_tokens),
        usd(s.max_block_cost)
    );
    Ok(ExitCode::SUCCESS)
}
