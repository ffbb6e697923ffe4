//! `csm monitor` (and `csm` with no command): the live dashboard.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::Context;
use crate::cli::MonitorArgs;
use crate::engine::Source;
use crate::engine::feed::{StoreFeed, TranscriptFeed};
use crate::env::Env;
use crate::notify::Notifier;
use crate::notify::backend::Bell;
use crate::notify::hook::AlertHook;
use crate::tui::source::{AccountsSource, AutoSource, DataSource, InProcessSource};
use crate::tui::{self, AlertQueue, Clock, Options};

/// Runs `csm monitor`: the live dashboard, one frame with `--once`, or the daemon probe with `--check-daemon` (exit 1 when none runs).
pub fn run(ctx: Context, args: &MonitorArgs, clock: Clock, env: &Env) -> Result<ExitCode> {
    if args.check_daemon {
        use crate::daemon::instance::{Liveness, probe};
        return Ok(match probe(&ctx.base_dir) {
            Liveness::Running { pid } => {
                match pid {
                    Some(pid) => println!("csm daemon running (pid {pid})"),
                    None => println!("csm daemon running"),
                }
                ExitCode::SUCCESS
            }
            Liveness::Stopped => {
                println!("no csm daemon running");
                ExitCode::from(1)
            }
        });
    }
    if ctx.source == Source::Ccusage {
        bail!("the dashboard reads transcripts; drop --source ccusage");
    }
    // Debug output goes to the log, never to a terminal the dashboard owns.
    let (debug, color) = (ctx.debug, ctx.color);
    let ctx = Arc::new(ctx.settings);
    // The original monitor's saved maximum counts as a window seen before.
    // The store will import it once into its maxima; until then it
    // is read on every start.
    let kept = crate::engine::kept_maxima(&ctx.base_dir);
    // A one-frame print never sends notifications; the live dashboard does
    // while no daemon runs.
    let interactive = !args.once && env.stdout_is_terminal;
    let queue: AlertQueue = Default::default();
    // An account's settings name it, so its notifier's alerts do too.
    let hook = |ctx: &Arc<crate::engine::Settings>| {
        let q = Arc::clone(&queue);
        let bell = Bell::new(move |title| q.lock().map(|mut v| v.push(title.to_string())).is_ok());
        let base = ctx.base_dir.clone();
        AlertHook::new(
            Notifier::for_context(ctx, vec![Box::new(bell)]),
            move || {
                matches!(
                    crate::daemon::instance::probe(&base),
                    crate::daemon::instance::Liveness::Running { .. }
                )
            },
        )
    };
    let refresh = Duration::from_secs(args.refresh.max(1));
    // One account's source: in process (with its alerts while no daemon
    // runs), or the daemon's snapshot while one runs for this base dir.
    let source_for = |ctx: Arc<crate::engine::Settings>,
                      account: Option<&str>|
     -> Box<dyn DataSource> {
        if ctx.no_store {
            let local = InProcessSource::new(
                TranscriptFeed::new(Arc::clone(&ctx), kept),
                Arc::clone(&ctx),
            );
            return if interactive {
                Box::new(local.with_alerts(hook(&ctx)))
            } else {
                Box::new(local)
            };
        }
        let local = InProcessSource::new(StoreFeed::new(Arc::clone(&ctx), kept), Arc::clone(&ctx));
        let local: Box<dyn DataSource> = if interactive {
            Box::new(local.with_alerts(hook(&ctx)))
        } else {
            Box::new(local)
        };
        Box::new(AutoSource::for_account(
            ctx.base_dir.clone(),
            local,
            refresh,
            account.map(str::to_string),
        ))
    };
    let watched = crate::engine::accounts::watched(&ctx);
    let mut source: Box<dyn DataSource> = if watched.is_empty() {
        source_for(Arc::clone(&ctx), None)
    } else {
        // Several accounts: one shown at a time, `a` switches.
        Box::new(AccountsSource::new(
            watched
                .into_iter()
                .map(|w| {
                    let s = source_for(Arc::new(w.settings), Some(&w.name));
                    (w.name, s)
                })
                .collect(),
        ))
    };
    let opts = Options {
        refresh: Duration::from_secs(args.refresh.max(1)),
        clock,
        tz: ctx.tz().clone(),
        color,
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

/// Logs go to `<base>/monitor.log` (0600), never to the terminal the
/// dashboard draws on; size-capped like the daemon's.
fn init_logging(base_dir: &Path, debug: bool) {
    if crate::fsutil::create_private_dir(base_dir).is_ok() {
        // No log is better than a dashboard that cannot start.
        let _ = crate::daemon::logfile::init_named(base_dir, "monitor.log", debug);
    }
}
