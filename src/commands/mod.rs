//! One module per command family; each turns a context and its flags into output.

pub mod claude;
pub mod config;
pub mod daemon;
pub mod db;
pub mod doctor;
pub mod monitor;
pub mod notify;
pub mod period;
pub mod pricing;
pub mod reports;
pub mod status;
pub mod usage;

use std::process::ExitCode;

/// `csm completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory as _;
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(shell, &mut cmd, "csm", &mut std::io::stdout());
    ExitCode::SUCCESS
}
