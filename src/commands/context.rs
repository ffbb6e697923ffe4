//! The run context every command gets: the engine's [`Settings`], resolved
//! from the flags, the environment and the config file, plus how output looks.

use std::path::PathBuf;

use anyhow::Result;
use jiff::Timestamp;

use crate::cli::{Cli, CostModeArg, SourceArg};
use crate::config::Config;
use crate::engine::{Settings, Source, accounts};
use crate::env::{Env, UsageError, paths};
use crate::ingest::discover::RootRequest;
use crate::pricing::CostMode;

/// One command's run: the engine's settings and how its output looks.
#[derive(Clone)]
pub struct Context {
    /// The engine's settings; `Context` derefs to them.
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
    /// Builds the context from the command line and environment: loads the config file, applies the flag overrides and checks a named time zone.
    pub fn new(cli: &Cli, env: &Env, now: Timestamp) -> Result<Context> {
        let g = &cli.global;
        let (base_dir, config_path) = paths(cli, env)?;
        let mut config = Config::load(&config_path).map_err(|e| UsageError(e.to_string()))?;
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
        let mut roots = RootRequest {
            explicit: g.claude_dir.clone(),
            env_value: env.claude_config_dir.clone(),
            home: env.home.clone(),
            xdg_config_home: env
                .xdg_config_home
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            account: None,
        };
        if let Some(selector) = &g.account {
            // The store names the accounts it holds (a store of an older
            // csm is brought up to date first).
            let store = match crate::store::Store::open_existing(
                &base_dir,
                std::time::Duration::from_secs(5),
            )? {
                Some(s) => Some(s),
                None if base_dir.join(crate::store::FILE_NAME).is_file() => {
                    Some(crate::store::Store::open(&base_dir)?)
                }
                None => None,
            };
            let known = accounts::known(store.as_ref(), &config, &roots)?;
            roots.account = Some(accounts::select(selector, &known, &roots).map_err(UsageError)?);
        }
        // One account's run takes its own plan settings (flags win over
        // both) and, one of several configured, its name: its alerts are
        // the same ones the daemon covering all of them sends.
        let mut account = None;
        if !config.accounts.is_empty() {
            let resolved = roots.resolve();
            if let [one] = resolved.projects_dirs.as_slice()
                && let Some(a) = accounts::configured_for(&config, &roots, one)
            {
                if config.accounts.len() > 1 {
                    account = Some(accounts::describe(one, &config, &roots, None).name);
                }
                config = config.for_account(a);
            }
        }
        if let Some(d) = g.start_day {
            config.start_day = d;
        }
        if let Some(s) = g.sessions {
            config.sessions_per_period = s;
        }
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
                account,
            },
            color: !(g.no_color || env.no_color) && env.stdout_is_terminal,
            debug: g.debug,
        })
    }
}
