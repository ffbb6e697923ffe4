//! Generates a deterministic synthetic Claude Code history.
//!
//! ```text
//! cargo run --release --example gen_history -- --out /tmp/claude --size 64MiB --seed 1 \
//!     [--now 2026-11-20T16:40:00Z|now] [--days 30] [--active] [--clean]
//! ```
//! Files go under `<out>/projects/`; point csm at it with `--claude-dir <out>`
//! (or ccusage with `CLAUDE_CONFIG_DIR=<out>`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use claude_session_monitor::synth::{SynthOptions, default_now, generate, parse_size};

const USAGE: &str = "usage: gen_history --out DIR [--size 64MiB|1GiB|BYTES] [--seed N] \
[--now RFC3339|now] [--days N] [--active] [--clean]";

struct Args {
    out: PathBuf,
    opts: SynthOptions,
}

fn parse_args() -> Result<Args, String> {
    let mut out: Option<PathBuf> = None;
    let mut opts = SynthOptions::new(1, 64 << 20, default_now());
    opts.active = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--size" => {
                let v = value("--size")?;
                opts.target_bytes = parse_size(&v).ok_or_else(|| format!("invalid --size: {v}"))?;
            }
            "--seed" => {
                let v = value("--seed")?;
                opts.seed = v.parse().map_err(|_| format!("invalid --seed: {v}"))?;
            }
            "--now" => {
                let v = value("--now")?;
                opts.now = if v == "now" {
                    jiff::Timestamp::now()
                } else {
                    v.parse().map_err(|e| format!("invalid --now {v}: {e}"))?
                };
            }
            "--days" => {
                let v = value("--days")?;
                opts.days = v.parse().map_err(|_| format!("invalid --days: {v}"))?;
            }
            "--active" => opts.active = true,
            "--clean" => opts.garbage = false,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument: {other}\n{USAGE}")),
        }
    }
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    Ok(Args { out, opts })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let projects = args.out.join("projects");
    if std::fs::read_dir(&projects).is_ok_and(|mut d| d.next().is_some()) {
        eprintln!(
            "{} is not empty; remove it first (histories of different runs would mix)",
            projects.display()
        );
        return ExitCode::from(2);
    }
    let started = Instant::now();
    match generate(&args.out, &args.opts) {
        Ok(s) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "wrote {} files ({} subagent, {} resumed, {} projects), {} bytes, {} lines in {:.2}s ({:.0} MiB/s)",
                s.files,
                s.subagent_files,
                s.resumed_files,
                s.projects,
                s.bytes,
                s.lines,
                secs,
                s.bytes as f64 / (1u64 << 20) as f64 / secs.max(1e-9)
            );
            println!(
                "usage lines {} (messages {} = {} tokens, streamed extra {}, copied {}, replayed {}, sidechain {}, synthetic {}, api errors {}, usage limit {}), malformed {} (null fields {})",
                s.usage_lines,
                s.messages,
                s.message_tokens,
                s.streamed_extra_lines,
                s.copied_lines,
                s.replayed_lines,
                s.sidechain_usage_lines,
                s.synthetic_lines,
                s.api_error_lines,
                s.usage_limit_lines,
                s.malformed_lines,
                s.null_field_lines
            );
            if let (Some(a), Some(b)) = (s.first_timestamp, s.last_timestamp) {
                println!("entries from {a} to {b} (now = {})", args.opts.now);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
