//! What one dashboard refresh costs: the first load, then ticks with nothing new.
//!
//! ```text
//! cargo run --release --example refresh_cost -- --claude-dir /tmp/claude [--ticks 50]
//! ```
//! Prints wall time and process CPU time (user + system, from getrusage via
//! /proc/self/stat on Linux) per tick. CSM_HOME is set to a temp dir so the
//! user's files are never read.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser as _;
use claude_session_monitor::app::{Context, Env};
use claude_session_monitor::cli::Cli;
use claude_session_monitor::engine::feed::{StoreFeed, TranscriptFeed};
use claude_session_monitor::period::Maxima;
use claude_session_monitor::tui::source::{DataSource, InProcessSource};

/// CPU seconds used by this process so far (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file (11 and 12 after the state).
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let mut ticks = 50usize;
    if let Some(i) = args.iter().position(|a| a == "--ticks") {
        ticks = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(50);
        args.drain(i..(i + 2).min(args.len()));
    }
    let home = tempfile::tempdir()?;
    let cli = Cli::parse_from(args);
    let mut env = Env::from_process();
    env.csm_home = Some(home.path().to_string_lossy().into_owned());
    let ctx = Arc::new(Context::new(&cli, &env, jiff::Timestamp::now())?.settings);
    let mut source: Box<dyn DataSource> = if ctx.no_store {
        let feed = TranscriptFeed::new(Arc::clone(&ctx), Maxima::default());
        Box::new(InProcessSource::new(feed, Arc::clone(&ctx)))
    } else {
        let feed = StoreFeed::new(Arc::clone(&ctx), Maxima::default());
        Box::new(InProcessSource::new(feed, Arc::clone(&ctx)))
    };

    let (t0, c0) = (Instant::now(), cpu_seconds());
    let first = source.refresh(jiff::Timestamp::now())?;
    println!(
        "first load: {:.0} ms wall, {:.0} ms CPU (data: {})",
        t0.elapsed().as_secs_f64() * 1e3,
        (cpu_seconds() - c0) * 1e3,
        first.is_some()
    );
    let (t1, c1) = (Instant::now(), cpu_seconds());
    let mut changed = 0;
    for _ in 0..ticks {
        if source.refresh(jiff::Timestamp::now())?.is_some() {
            changed += 1;
        }
    }
    let n = ticks.max(1) as f64;
    println!(
        "idle tick ({ticks} ticks, {changed} with changes): {:.2} ms wall, {:.2} ms CPU per tick",
        t1.elapsed().as_secs_f64() * 1e3 / n,
        (cpu_seconds() - c1) * 1e3 / n
    );
    // New usage: one response appended to the most recently written transcript.
    let roots = ctx.roots.resolve();
    let (files, _) = claude_session_monitor::ingest::discover::find_transcripts(&roots);
    if let Some(newest) = files.iter().max_by_key(|f| f.mtime_ns) {
        use std::io::Write as _;
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
        let id = std::process::id();
        let line = format!(
            "{{\"timestamp\":\"{now}\",\"sessionId\":\"refresh-cost\",\"requestId\":\"req_rc{id}\",\"message\":{{\"id\":\"msg_rc{id}\",\"model\":\"claude-sonnet-4-5-20250929\",\"usage\":{{\"input_tokens\":10,\"output_tokens\":20}}}}}}\n"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&newest.path)?
            .write_all(line.as_bytes())?;
        // The change detector notices within its poll; wait for it.
        let (t2, c2) = (Instant::now(), cpu_seconds());
        let mut ticks_until_seen = 0;
        while source.refresh(jiff::Timestamp::now())?.is_none() && ticks_until_seen < 1000 {
            ticks_until_seen += 1;
        }
        println!(
            "tick that ingests one new line: {:.1} ms wall, {:.1} ms CPU ({} idle ticks before it was seen)",
            t2.elapsed().as_secs_f64() * 1e3,
            (cpu_seconds() - c2) * 1e3,
            ticks_until_seen
        );
    }
    Ok(())
}
