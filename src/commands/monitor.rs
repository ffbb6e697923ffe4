//! `csm monitor` (and `csm` with no command): the live dashboard.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::app::{Context, Env};
use crate::cli::{MonitorArgs, SourceArg};
use crate::notify::Notifier;
use crate::notify::backend::Bell;
use crate::period::Maxima;
use crate::tui::source::{
    AlertHook, InProcessSource, StoreFeed, TranscriptFeed, original_monitor_max_tokens,
};
use crate::tui::{self, AlertQueue, Clock, Options};

pub fn run(ctx: Context, args: &MonitorArgs, clock: Clock, env: &Env) -> Result<ExitCode> {
    if args.check_daemon {
        return Ok(match running_daemon(&ctx.base_dir) {
            Some(pid) => {
                println!("csm daemon running (pid {pid})");
                ExitCode::SUCCESS
            }
            None => {
                println!("no csm daemon running");
                ExitCode::from(1)
            }
        });
    }
    if ctx.source == SourceArg::Ccusage {
        bail!("the dashboard reads transcripts; drop --source ccusage");
    }
    let debug = ctx.debug;
    let mut feed_ctx = ctx;
    // Debug counts go to the log, never to a terminal the dashboard owns.
    feed_ctx.debug = false;
    feed_ctx.quiet = true;
    let ctx = Arc::new(feed_ctx);
    // The original monitor's saved maximum counts as a window seen before.
    // The store (issue 3) will import it once into its maxima; until then it
    // is read on every start.
    let kept = Maxima {
        tokens: original_monitor_max_tokens(&ctx.base_dir).unwrap_or(0),
        cost_usd: 0.0,
    };
    // A one-frame print never sends notifications; the live dashboard does
    // while no daemon runs.
    let interactive = !args.once && env.stdout_is_terminal;
    let queue: AlertQueue = Default::default();
    let hook = || {
        let q = Arc::clone(&queue);
        let bell = Bell::new(move |title| q.lock().map(|mut v| v.push(title.to_string())).is_ok());
        let base = ctx.base_dir.clone();
        AlertHook::new(
            Notifier::for_context(&ctx, vec![Box::new(bell)]),
            move || running_daemon(&base).is_some(),
        )
    };
    let mut source: Box<dyn crate::tui::source::DataSource> = match (ctx.no_store, interactive) {
        (true, false) => Box::new(InProcessSource::new(
            TranscriptFeed::new(Arc::clone(&ctx), kept),
            Arc::clone(&ctx),
        )),
        (true, true) => Box::new(
            InProcessSource::new(
                TranscriptFeed::new(Arc::clone(&ctx), kept),
                Arc::clone(&ctx),
            )
            .with_alerts(hook()),
        ),
        (false, false) => Box::new(InProcessSource::new(
            StoreFeed::new(Arc::clone(&ctx), kept),
            Arc::clone(&ctx),
        )),
        (false, true) => Box::new(
            InProcessSource::new(StoreFeed::new(Arc::clone(&ctx), kept), Arc::clone(&ctx))
                .with_alerts(hook()),
        ),
    };
    let opts = Options {
        refresh: Duration::from_secs(args.refresh.max(1)),
        clock,
        tz: ctx.tz().clone(),
        color: ctx.color,
        alerts: interactive.then_some(queue),
    };
    if args.once || !env.stdout_is_terminal {
        let width = if env.stdout_is_terminal {
            ratatui::crossterm::terminal::size()
                .map(|(w, _)| w)
                .unwrap_or(100)
        } else {
            100
        };
        let text = tui::render_once(source.as_mut(), &opts, width, env.stdout_is_terminal)?;
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&ctx.base_dir, debug);
    tracing::info!(refresh_s = args.refresh, "monitor started");
    tui::run(source, opts)?;
    tracing::info!("monitor stopped");
    Ok(ExitCode::SUCCESS)
}

/// The pid in `<base>/daemon.pid` when that process is alive (and, where the
/// system tells, is a csm): a stale file from a crashed daemon does not count.
pub fn running_daemon(base_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(base_dir.join("daemon.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok().filter(|p| *p > 0)?;
    process_alive(pid).then_some(pid)
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // `pid (comm) S ...`: a zombie (Z) or dead (X) process is not running;
    // a reused pid belonging to another program is not the daemon.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].trim_start().chars().next();
    !matches!(state, Some('Z') | Some('X')) && comm.starts_with("csm")
}

#[cfg(not(target_os = "linux"))]
fn process_alive(pid: u32) -> bool {
    // `kill -0` asks whether the process exists without touching it.
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Logs go to `<base>/monitor.log` (0600), never to the terminal the
/// dashboard draws on. Over 5 MiB the file is rotated once to `.1`.
fn init_logging(base_dir: &Path, debug: bool) {
    use std::fs::OpenOptions;
    if crate::fsutil::create_private_dir(base_dir).is_err() {
        return;
    }
    let path = base_dir.join("monitor.log");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > 5 << 20) {
        let _ = std::fs::rename(&path, base_dir.join("monitor.log.1"));
    }
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let Ok(file) = opts.open(&path) else {
        return;
    };
    let level = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_max_level(level)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_pid_file_needs_a_live_csm_process() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(running_daemon(dir.path()), None);
        std::fs::write(dir.path().join("daemon.pid"), "not a pid").unwrap();
        assert_eq!(running_daemon(dir.path()), None);
        // A pid that cannot exist.
        std::fs::write(dir.path().join("daemon.pid"), "4194304999").unwrap();
        assert_eq!(running_daemon(dir.path()), None);
        // This test process is alive but is not csm.
        #[cfg(target_os = "linux")]
        {
            std::fs::write(
                dir.path().join("daemon.pid"),
                std::process::id().to_string(),
            )
            .unwrap();
            assert_eq!(running_daemon(dir.path()), None);
        }
    }
}
