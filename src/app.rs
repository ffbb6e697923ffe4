//! The command layer: turns parsed flags, the environment and the config file
//! into a run context, and dispatches to the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cli::{Cli, Command, CostModeArg, SourceArg};
use crate::commands;
use crate::config::{self, Config};
use crate::ingest::discover::RootRequest;
use crate::pricing::CostMode;

/// The process environment, read once so everything below is testable.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub home: Option<PathBuf>,
    pub csm_home: Option<String>,
    pub xdg_config_home: Option<String>,
    pub claude_config_dir: Option<String>,
    pub no_color: bool,
    pub stdout_is_terminal: bool,
    /// `CSM_NOW`: a fixed clock (RFC 3339) for tests, demos and screenshots.
    pub now: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        use std::io::IsTerminal;
        let var = |k: &str| std::env::var(k).ok();
        Env {
            home: std::env::home_dir(),
            csm_home: var("CSM_HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            claude_config_dir: var("CLAUDE_CONFIG_DIR"),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            stdout_is_terminal: std::io::stdout().is_terminal(),
            now: var("CSM_NOW"),
        }
    }
}

/// A wrong flag or config value: reported in one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Everything a command needs to know about this run.
#[derive(Clone)]
pub struct Context {
    pub now: Timestamp,
    /// The display time zone, resolved on first use: finding the system's
    /// zone reads the zone database, which a plain `blocks --json` never needs.
    tz: std::sync::OnceLock<TimeZone>,
    pub base_dir: PathBuf,
    pub config: Config,
    pub roots: RootRequest,
    pub mode: CostMode,
    pub source: SourceArg,
    pub no_store: bool,
    pub recalculate: bool,
    pub color: bool,
    pub debug: bool,
    /// Nothing may be printed to the terminal (the dashboard owns it).
    pub quiet: bool,
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
            now,
            tz,
            base_dir,
            config,
            roots,
            mode,
            source: g.source,
            no_store: g.no_store,
            recalculate: g.recalculate,
            color: !(g.no_color || env.no_color) && env.stdout_is_terminal,
            debug: g.debug,
            quiet: false,
        })
    }
}

/// The base directory and the config file this run uses.
pub fn paths(cli: &Cli, env: &Env) -> Result<(PathBuf, PathBuf)> {
    let base_dir = config::base_dir(
        env.csm_home.as_deref(),
        env.xdg_config_home.as_deref(),
        env.home.as_deref(),
    )
    .context("cannot find a home directory: set CSM_HOME")?;
    let config_path = cli
        .global
        .config
        .clone()
        .unwrap_or_else(|| base_dir.join("config.toml"));
    Ok((base_dir, config_path))
}

impl Context {
    /// The display time zone (`--timezone`, config, else the system's).
    pub fn tz(&self) -> &TimeZone {
        self.tz.get_or_init(crate::zone::system)
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
    let now = match env.now.as_deref() {
        None | Some("") => Timestamp::now(),
        Some(s) => s
            .parse()
            .map_err(|e| UsageError(format!("invalid value '{s}' for CSM_NOW: {e}")))?,
    };
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
    let clock = if env.now.as_deref().is_some_and(|s| !s.is_empty()) {
        crate::tui::Clock::Fixed(now)
    } else {
        crate::tui::Clock::System
    };
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
        | Command::Completions { .. }
        | Command::Statusline(_)
        | Command::Hook => Ok(ExitCode::SUCCESS),
    }
}
