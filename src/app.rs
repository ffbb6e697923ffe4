//! The command layer: turns parsed flags, the environment and the config file
//! into the engine's [`Settings`] plus how output looks, and dispatches to
//! the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use jiff::Timestamp;

use crate::cli::{Cli, Command, CostModeArg, SourceArg};
use crate::commands;
use crate::config::Config;
use crate::engine::{Settings, Source};
pub use crate::env::{Env, UsageError, paths};
use crate::ingest::discover::RootRequest;
use crate::pricing::CostMode;

/// One command's run: the engine's settings and how its output looks.
#[derive(Clone)]
pub struct Context {
    pub settings: Settings,
    /// Colours on stdout (a terminal, no `--no-color` or `NO_COLOR`).
    pub color: bool,
    /// `--debug`: skip counts, store sync and unknown models on stderr.
    pub debug: bool,
}

impl std::ops::Deref for Context {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl Context {
    pub fn new(cli: &Cli, env: &Env, now: Timestamp) -> Result<Context> {
        let g = &cli.global;
        let (base_dir, config_path) = paths(cli, env)?;
        let mut config = Config::load(&config_path).map_err(|e| UsageError(e.to_string()))?;
        if let Some(d) = g.start_day {
            config.start_day = d;
        }
        if let Some(s) = g.sessions {
            config.sessions_per_period = s;
        }
        let tz_name = g.timezone.clone().or_else(|| config.timezone.clone());
        let tz = std::sync::OnceLock::new();
        if let Some(name) = tz_name.as_deref().filter(|n| *n != "local") {
            let zone = crate::zone::by_name(name).map_err(|_| {
                UsageError(format!(
                    "invalid value '{name}' for --timezone: not an IANA time zone name such as UTC or Europe/Warsaw (`timedatectl list-timezones` lists them)"
                ))
            })?;
            let _ = tz.set(zone);
        }
        let mode = match g.mode {
            None | Some(CostModeArg::Auto) => CostMode::Auto,
            Some(CostModeArg::Calculate) => CostMode::Calculate,
            Some(CostModeArg::Display) => CostMode::Display,
        };
        let roots = RootRequest {
            explicit: g.claude_dir.clone(),
            env_value: env.claude_config_dir.clone(),
            home: env.home.clone(),
            xdg_config_home: env
                .xdg_config_home
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        };
        Ok(Context {
            settings: Settings {
                now,
                tz,
                base_dir,
                config,
                roots,
                mode,
                source: match g.source {
                    SourceArg::Transcripts => Source::Transcripts,
                    SourceArg::Ccusage => Source::Ccusage,
                },
                no_store: g.no_store,
                recalculate: g.recalculate,
            },
            color: !(g.no_color || env.no_color) && env.stdout_is_terminal,
            debug: g.debug,
        })
    }
}

/// Runs the command line; the returned code is the process's exit status.
pub fn run(cli: Cli, env: &Env) -> ExitCode {
    match dispatch(cli, env) {
        Ok(code) => code,
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some();
            eprintln!("csm: {e:#}");
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn dispatch(cli: Cli, env: &Env) -> Result<ExitCode> {
    // Claude Code runs these: they never fail (exit 0 whatever happens), so
    // they come before anything that could.
    match &cli.command {
        Some(Command::Statusline(args)) => {
            return Ok(commands::claude::statusline(&cli, env, args));
        }
        Some(Command::Hook) => return Ok(commands::claude::hook(&cli, env)),
        _ => {}
    }
    let clock = env.clock()?;
    let now = clock.now();
    // These work without a valid config file: completions need none, and
    // `config` is how a broken file gets inspected and fixed.
    match &cli.command {
        Some(Command::Completions { shell }) => return Ok(commands::completions(*shell)),
        Some(Command::Config(cmd)) => {
            let (base_dir, config_path) = paths(&cli, env)?;
            return commands::config::run(cmd, &base_dir, &config_path);
        }
        _ => {}
    }
    // The demo reads no config: it generates everything it shows.
    if let Some(Command::Demo(args)) = &cli.command {
        return commands::demo::run(&cli, args, clock, env);
    }
    let ctx = Context::new(&cli, env, now)?;
    if cli.global.test_alert {
        return commands::notify::test(&ctx);
    }
    let Some(command) = cli.command else {
        return commands::monitor::run(ctx, &Default::default(), clock, env);
    };
    match command {
        Command::Blocks(args) => commands::reports::blocks(&ctx, &args),
        Command::Daily(args) => {
            commands::reports::periods(&ctx, &args, commands::reports::Kind::Daily)
        }
        Command::Weekly(args) => commands::reports::periods(
            &ctx,
            &args.report,
            commands::reports::Kind::Weekly(args.start_of_week),
        ),
        Command::Monthly(args) => {
            commands::reports::periods(&ctx, &args, commands::reports::Kind::Monthly)
        }
        Command::Session(args) => commands::reports::sessions(&ctx, &args),
        Command::Pricing(cmd) => commands::pricing::run(&ctx, cmd),
        Command::Doctor(args) => commands::doctor::run(&ctx, &args),
        Command::Db(cmd) => commands::db::run(ctx, cmd),
        Command::Monitor(args) => commands::monitor::run(ctx, &args, clock, env),
        Command::Period(args) => commands::period::run(&ctx, &args),
        Command::Notify(cmd) => commands::notify::run(&ctx, &cmd),
        Command::Daemon(cmd) => commands::daemon::run(ctx, &cmd, clock, &cli.global, env),
        Command::Status(args) => commands::status::run(ctx, &args, clock),
        Command::Setup(cmd) => commands::claude::setup(&ctx, &cmd),
        // Handled above, before the config file is read.
        Command::Config(_)
        | Command::Demo(_)
        | Command::Completions { .. }
        | Command::Statusline(_)
        | Command::Hook => Ok(ExitCode::SUCCESS),
    }
}
