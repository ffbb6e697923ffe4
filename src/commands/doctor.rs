//! `csm doctor`: what csm sees, so a surprising report can be explained.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::Context;
use crate::cli::DoctorArgs;
use crate::ingest::parse::SkipReason;
use crate::pricing::PriceResolver;
use crate::report::format::thousands;

/// Runs `csm doctor`: what csm sees (data roots, files, entries, skipped lines, unknown models), as text or JSON.
pub fn run(ctx: &Context, args: &DoctorArgs) -> Result<ExitCode> {
    let sources = super::open(ctx)?;
    let store_stats = match &sources.store {
        Some(store) => Some(store.stats()?),
        None => None,
    };
    // Transcripts under no root csm knows: never counted, so say so.
    let unattributed = match &sources.store {
        Some(store) => store.unattributed_files()?,
        None => Vec::new(),
    };
    let accounts = match &sources.store {
        Some(store) => store.known_roots()?.len(),
        None => 0,
    };
    let loaded = sources.load(None)?;
    let table = crate::engine::load::price_table(&ctx.base_dir)?;
    let mut resolver = PriceResolver::new(&table);
    let _ = crate::pricing::costs(
        &loaded.entries,
        crate::pricing::CostMode::Calculate,
        &mut resolver,
    );
    let unknown: Vec<(String, u64)> = resolver
        .unknown_models()
        .map(|(m, n)| (m.to_string(), n))
        .collect();
    let s = &loaded.stats;
    // Dated after now: a device whose clock runs fast. No face counts them.
    let future =
        crate::blocks::FutureEntries::count(loaded.entries.iter().map(|e| e.timestamp), ctx.now);
    let (notify_rows, sender) = super::notify::doctor_status(ctx);
    if args.json {
        let skipped: serde_json::Map<String, serde_json::Value> = SkipReason::ALL
            .iter()
            .map(|r| (r.key().to_string(), json!(s.skipped(*r))))
            .collect();
        let v = json!({
            "baseDir": ctx.base_dir.display().to_string(),
            "roots": loaded.roots.projects_dirs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "rootsNote": loaded.roots.explanation,
            "files": loaded.files,
            "bytes": s.bytes,
            "lines": s.lines,
            "usageLines": s.entries,
            "entries": loaded.entries.len(),
            "skipped": skipped,
            "oversizedLines": s.oversized_lines,
            "unreadableFiles": s.unreadable_files,
            "unreadableDirs": loaded.walk.unreadable_dirs,
            "partialTailBytes": s.partial_tail_bytes,
            "symlinksNotFollowed": loaded.walk.symlinks,
            "futureEntries": future.map(|f| json!({
                "entries": f.entries,
                "newest": crate::report::json::iso_ms(f.newest),
            })),
            "unknownModels": unknown.iter().map(|(m, n)| json!({"model": m, "entries": n})).collect::<Vec<_>>(),
            "pricing": table.source(),
            "store": store_stats.as_ref().map(|d| json!({
                "path": d.path.display().to_string(),
                "schemaVersion": d.schema_version,
                "files": d.files,
                "filesGone": d.files_gone,
                "lines": d.lines,
                "entries": d.entries,
                "windows": d.blocks,
                "bytes": d.bytes,
                "accounts": accounts,
                "unattributed": unattributed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            })),
            "timezone": ctx.tz().iana_name().unwrap_or("system"),
            "notifications": {
                "backends": notify_rows.iter().map(|r| json!({
                    "backend": r.name,
                    "enabled": r.enabled,
                    "available": r.status.is_ok(),
                    "detail": match &r.status { Ok(d) => d.clone(), Err(e) => e.message.clone() },
                    "hint": r.status.as_ref().err().and_then(|e| e.hint.clone()),
                })).collect::<Vec<_>>(),
                "sender": sender,
            },
            "daemon": daemon_json(ctx),
        });
        print!("{}", crate::report::json::to_pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    println!("csm {} doctor", env!("CARGO_PKG_VERSION"));
    println!("base dir        {}", ctx.base_dir.display());
    if loaded.roots.projects_dirs.is_empty() {
        println!(
            "data roots      none: {}",
            loaded.roots.explanation.as_deref().unwrap_or("")
        );
    }
    for root in &loaded.roots.projects_dirs {
        println!("data root       {}", root.display());
    }
    println!(
        "time zone       {}",
        ctx.tz().iana_name().unwrap_or("system")
    );
    println!(
        "prices          {} ({} models)",
        table.source(),
        table.len()
    );
    println!();
    println!("files           {}", thousands(loaded.files as u64));
    println!("bytes read      {}", thousands(s.bytes));
    println!("lines           {}", thousands(s.lines));
    println!("usage lines     {}", thousands(s.entries));
    println!(
        "entries         {} (after de-duplication)",
        thousands(loaded.entries.len() as u64)
    );
    if let Some(f) = future {
        println!(
            "future entries  {} dated in the future, newest at {} (a device's clock runs fast; counted in no window, period or alert)",
            thousands(f.entries as u64),
            ctx.tz().to_datetime(f.newest).strftime("%Y-%m-%d %H:%M")
        );
    }
    println!("skipped lines   {}", thousands(s.total_skipped()));
    for r in SkipReason::ALL {
        println!("  {:>12}  {}", thousands(s.skipped(r)), r.label());
    }
    if s.oversized_lines > 0 {
        println!(
            "oversized lines {} (streamed, not held in memory)",
            thousands(s.oversized_lines)
        );
    }
    if s.unreadable_files > 0 {
        println!("unreadable      {} files", thousands(s.unreadable_files));
    }
    if loaded.walk.unreadable_dirs > 0 {
        println!(
            "unreadable      {} directories (skipped)",
            thousands(loaded.walk.unreadable_dirs)
        );
    }
    if s.partial_tail_bytes > 0 {
        println!(
            "incomplete      {} bytes at file ends (a line still being written)",
            thousands(s.partial_tail_bytes)
        );
    }
    if loaded.walk.symlinks > 0 {
        println!("symlinks        {} not followed", loaded.walk.symlinks);
    }
    match &store_stats {
        Some(d) => println!(
            "history store   {} ({} entries, {} windows, {} transcripts of which {} gone, {} bytes)",
            d.path.display(),
            thousands(d.entries),
            thousands(d.blocks),
            thousands(d.files),
            thousands(d.files_gone),
            thousands(d.bytes)
        ),
        None => println!("history store   not used (--no-store)"),
    }
    if store_stats.is_some() {
        println!(
            "accounts        {accounts} in the store (`csm accounts` lists them){}",
            if unattributed.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} transcript(s) under no known account, not counted (first: {})",
                    unattributed.len(),
                    unattributed[0].display()
                )
            }
        );
    }
    for (i, r) in notify_rows.iter().enumerate() {
        let label = if i == 0 { "notifications" } else { "" };
        let state = match (&r.status, r.enabled) {
            (Ok(d), true) => format!("on, available: {d}"),
            (Ok(d), false) => format!("off (available: {d})"),
            (Err(e), true) => format!("on, NOT available: {}", e.message),
            (Err(e), false) => format!("off ({})", e.message),
        };
        println!("{label:<15} {:<8} {state}", r.name);
        if r.enabled
            && let Err(e) = &r.status
            && let Some(h) = &e.hint
        {
            println!("{:<15} {:<8} hint: {h}", "", "");
        }
    }
    println!("{:<15} {:<8} {sender}", "", "sender");
    println!("daemon          {}", daemon_line(ctx));
    if unknown.is_empty() {
        println!("unknown models  none");
    } else {
        println!("unknown models  (priced at $0; `csm pricing update` may know them)");
        for (m, n) in &unknown {
            println!("  {m}  ({} entries)", thousands(*n));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a daemon owns the base directory, and how fresh its snapshot is.
fn daemon_state(ctx: &Context) -> (Option<Option<u32>>, Option<crate::snapshot::Snapshot>) {
    use crate::daemon::instance::{Liveness, probe};
    let pid = match probe(&ctx.base_dir) {
        Liveness::Running { pid } => Some(pid),
        Liveness::Stopped => None,
    };
    let snap = crate::snapshot::read(&ctx.base_dir.join(crate::snapshot::FILE_NAME)).ok();
    (pid, snap)
}

fn daemon_json(ctx: &Context) -> serde_json::Value {
    let (pid, snap) = daemon_state(ctx);
    json!({
        "running": pid.is_some(),
        "pid": pid.flatten(),
        "snapshotUpdated": snap.map(|s| crate::snapshot::time_string(s.last_update)),
    })
}

fn daemon_line(ctx: &Context) -> String {
    let (pid, snap) = daemon_state(ctx);
    let age = snap.map(|s| {
        let secs = jiff::Timestamp::now()
            .duration_since(s.last_update)
            .as_secs()
            .max(0);
        format!(", snapshot updated {secs}s ago")
    });
    match pid {
        Some(Some(p)) => format!("running (pid {p}){}", age.unwrap_or_default()),
        Some(None) => format!("running{}", age.unwrap_or_default()),
        None => "not running (`csm daemon install` starts one)".into(),
    }
}
