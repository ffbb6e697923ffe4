//! `csm demo`: the dashboard on a history generated into a temp dir, with
//! csm's own files there too, so nothing of the user's is read or written
//! (no config, no store, no Claude Code data). What screenshots use.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Context;
use crate::cli::{Cli, DemoArgs, MonitorArgs};
use crate::config::Config;
use crate::engine::{Clock, Settings, Source};
use crate::env::{Env, UsageError};
use crate::ingest::discover::RootRequest;
use crate::pricing::CostMode;
use crate::synth::{SynthOptions, generate};

/// Size of the generated history: a month of a busy user, quick to read.
const HISTORY_BYTES: u64 = 2 << 20;

/// A temp dir removed when dropped, whatever happened.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("csm-demo-{}-{nanos}", std::process::id()));
        crate::fsutil::create_private_dir(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs before any config is read: only `--timezone` and `--no-color` of
/// the command line count.
pub fn run(cli: &Cli, args: &DemoArgs, clock: Clock, env: &Env) -> Result<ExitCode> {
    let tz = match cli.global.timezone.as_deref().filter(|n| *n != "local") {
        Some(name) => crate::zone::by_name(name).map_err(|_| {
            UsageError(format!(
                "invalid value '{name}' for --timezone: not an IANA time zone name such as UTC or Europe/Warsaw"
            ))
        })?,
        None => crate::zone::system(),
    };
    let dir = TempDir::new()?;
    let claude = dir.0.join("claude");
    let now = clock.now();
    let mut opts = SynthOptions::new(args.seed, HISTORY_BYTES, now);
    // Ends in a window that is running now, as a first look should.
    opts.active = true;
    opts.garbage = false;
    generate(&claude, &opts).context("cannot generate the demo history")?;
    // No desktop notifications from a demo.
    let mut config = Config::default();
    config.alerts.desktop = false;
    let demo = Context {
        settings: Settings {
            now,
            tz: std::sync::OnceLock::from(tz),
            base_dir: dir.0.join("csm"),
            config,
            roots: RootRequest {
                explicit: vec![claude],
                env_value: None,
                home: None,
                xdg_config_home: None,
                account: None,
            },
            mode: CostMode::Auto,
            source: Source::Transcripts,
            no_store: false,
            recalculate: false,
            account: None,
        },
        color: !(cli.global.no_color || env.no_color) && env.stdout_is_terminal,
        debug: false,
    };
    let monitor = MonitorArgs {
        once: args.once,
        ..MonitorArgs::default()
    };
    let code = super::monitor::run(demo, &monitor, clock, env)?;
    drop(dir);
    Ok(code)
}
