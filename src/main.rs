//! `csm`: parses the command line and runs it through `claude_session_monitor::app`;
//! a bad flag or value is one line on stderr and exit status 2.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    // Claude Code runs `csm hook` / `csm statusline` on every event and
    // repaint, exactly as `csm setup claude` wrote them: those skip building
    // the whole command-line parser.
    if let Some(cli) = claude_session_monitor::cli::Cli::claude_fast_path(std::env::args_os()) {
        let env = claude_session_monitor::app::Env::from_process();
        return claude_session_monitor::app::run(cli, &env);
    }
    let cli = match claude_session_monitor::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if cli.ends_with_its_reader() {
        claude_session_monitor::sys::restore_sigpipe();
    }
    let env = claude_session_monitor::app::Env::from_process();
    claude_session_monitor::app::run(cli, &env)
}

/// Help and version print in full; a bad flag or value is one line naming
/// it, exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let choices = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("[possible values"))
                .map(|l| format!(" {l}"))
                .unwrap_or_default();
            eprintln!("csm: {first}{choices} (see `csm --help`)");
            ExitCode::from(2)
        }
    }
}
