//! One module per command family; each turns a context and its flags into output.

pub mod accounts;
pub mod claude;
pub mod config;
mod context;
pub mod daemon;
pub mod db;
pub mod demo;
pub mod doctor;
pub mod monitor;
pub mod notify;
pub mod period;
pub mod pricing;
pub mod reports;
pub mod status;

use std::process::ExitCode;

use anyhow::Result;

pub use self::context::Context;
use crate::engine::load::{Loaded, Observer, Sources};
use crate::pricing::PriceResolver;
use crate::store::SyncReport;

/// The engine's [`crate::engine::load::open`], saying on stderr what the user
/// should know: why no data was found, and with `--debug` what the store
/// sync did, the skip counts and the models without a price.
pub fn open(ctx: &Context) -> Result<Sources> {
    let mut s = crate::engine::load::open(ctx)?;
    if let Some(why) = &s.roots.explanation {
        eprintln!("{why}");
    }
    if ctx.debug {
        if let Some(r) = &s.sync {
            debug_sync(r);
        }
        s.observer = Observer {
            loaded: Some(debug_report),
            priced: Some(report_unknown_models),
        };
    }
    Ok(s)
}

/// Every entry of the run ([`open`], then the engine's load).
pub fn load(ctx: &Context, project: Option<&str>) -> Result<Loaded> {
    open(ctx)?.load(project)
}

/// Every window of the run (`hours` long) from the source it names
/// ([`open`] for transcripts).
pub fn blocks(ctx: &Context, hours: f64) -> Result<crate::engine::Windows> {
    crate::engine::blocks(ctx, hours, |_| open(ctx))
}

fn debug_sync(r: &SyncReport) {
    use crate::store::WindowUpdate;
    let windows = match r.windows {
        WindowUpdate::Untouched => "unchanged".to_string(),
        WindowUpdate::Extended => "latest extended".to_string(),
        WindowUpdate::RecomputedFrom(t) => format!("recomputed from {}", crate::store::ms(t)),
        WindowUpdate::Recomputed => "all recomputed".to_string(),
    };
    eprintln!(
        "[debug] store: {} of {} transcripts looked at read, {} new usage lines, windows {windows}",
        r.files_read, r.files_seen, r.new_lines
    );
}

fn debug_report(l: &Loaded) {
    use crate::ingest::parse::SkipReason;
    eprintln!(
        "[debug] {} files, {} lines, {} usage lines, {} entries after de-duplication",
        l.files,
        l.stats.lines,
        l.stats.entries,
        l.entries.len()
    );
    for r in SkipReason::ALL {
        let n = l.stats.skipped(r);
        if n > 0 {
            eprintln!("[debug] skipped {n:>9}  {}", r.label());
        }
    }
    if l.stats.unreadable_files > 0 {
        eprintln!("[debug] unreadable files: {}", l.stats.unreadable_files);
    }
    if l.walk.symlinks > 0 {
        eprintln!("[debug] symlinks not followed: {}", l.walk.symlinks);
    }
}

/// Models that had no price in this run, with entry counts, for `--debug` and `doctor`.
pub fn report_unknown_models(resolver: &PriceResolver<'_>) {
    for (model, n) in resolver.unknown_models() {
        eprintln!("[debug] no price for model {model} ({n} entries priced at $0)");
    }
}

/// `csm completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory as _;
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(shell, &mut cmd, "csm", &mut std::io::stdout());
    ExitCode::SUCCESS
}
