//! The top of the command layer: reads the clock and the environment, builds
//! the run's [`Context`] from the flags and the config file, and dispatches
//! to the commands.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::commands;
pub use crate::commands::Context;
pub use crate::env::{Env, UsageError, paths};

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
        Command::Accounts(args) => commands::accounts::run(&ctx, &args),
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
