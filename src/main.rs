use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = claude_session_monitor::cli::Cli::parse();
    let env = claude_session_monitor::app::Env::from_process();
    claude_session_monitor::app::run(cli, &env)
}
