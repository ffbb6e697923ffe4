//! The process environment, read once so everything below is testable, and
//! the paths and clock it gives.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use jiff::Timestamp;

use crate::cli::Cli;
use crate::config;
use crate::engine::Clock;

/// The process environment, read once so everything below is testable.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// The user's home directory.
    pub home: Option<PathBuf>,
    /// `CSM_HOME`: csm's base directory, overriding the XDG location.
    pub csm_home: Option<String>,
    /// `XDG_CONFIG_HOME`: where the base directory (`claude-monitor`) and Claude Code's XDG config are looked for.
    pub xdg_config_home: Option<String>,
    /// `CLAUDE_CONFIG_DIR`: Claude Code config directories, comma-separated.
    pub claude_config_dir: Option<String>,
    /// `NO_COLOR` is set to a non-empty value.
    pub no_color: bool,
    /// Whether standard output is a terminal.
    pub stdout_is_terminal: bool,
    /// `CSM_NOW`: a fixed clock (RFC 3339) for tests, demos and screenshots.
    pub now: Option<String>,
}

impl Env {
    /// Reads the real process environment.
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

impl Env {
    /// The clock of this run: fixed by `CSM_NOW` (tests, demos, screenshots),
    /// else the system's. A value that is not a time is a usage error.
    pub fn clock(&self) -> Result<Clock, UsageError> {
        match self.now.as_deref() {
            None | Some("") => Ok(Clock::System),
            Some(s) => s
                .parse::<Timestamp>()
                .map(Clock::Fixed)
                .map_err(|e| UsageError(format!("invalid value '{s}' for CSM_NOW: {e}"))),
        }
    }
}
