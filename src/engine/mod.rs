//! The one path every face takes: settings of the run, the clock, loading
//! and syncing the history store, the feeds that keep it current, and "the
//! figures now" ([`overview`]). The dashboard, the daemon, `csm status`, the
//! status line, notifications and the reports all compute through here; the
//! engine never calls a face and knows no command-line flag.

pub mod accounts;
pub mod ccusage;
pub mod changes;
pub mod clock;
pub mod feed;
pub mod load;
pub mod overview;
pub mod statusline;

use std::path::PathBuf;

use anyhow::Result;
use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use clock::Clock;

use crate::blocks::Block;
use crate::config::Config;
use crate::ingest::discover::RootRequest;
use crate::pricing::CostMode;

/// Where a run takes its windows from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// Claude Code's transcripts, read by csm (through the history store).
    #[default]
    Transcripts,
    /// `ccusage blocks -j`, for users who want ccusage's numbers.
    Ccusage,
}

/// What a run computes with, resolved from flags, environment and config by
/// the command layer: no flag types and nothing about how output looks.
#[derive(Clone)]
pub struct Settings {
    /// The run's instant: everything is judged at it (`CSM_NOW` or the system clock).
    pub now: Timestamp,
    /// The display time zone, resolved on first use: finding the system's
    /// zone reads the zone database, which a plain `blocks --json` never needs.
    pub tz: std::sync::OnceLock<TimeZone>,
    /// csm's own directory: the history store, snapshot and downloaded prices (and, by default, config.toml).
    pub base_dir: PathBuf,
    /// The configuration file's values with the flag overrides applied.
    pub config: Config,
    /// Where to look for Claude Code's data, before resolving.
    pub roots: RootRequest,
    /// How usage is priced (`--mode`).
    pub mode: CostMode,
    /// Where usage comes from (`--source`).
    pub source: Source,
    /// `--no-store`: run fully in memory, without the history store.
    pub no_store: bool,
    /// Rebuild the store from every transcript first.
    pub recalculate: bool,
    /// The account's name when the run covers one of several
    /// ([`accounts::watched`]): its alerts name it and are its own.
    pub account: Option<String>,
}

impl Settings {
    /// The display time zone (`--timezone`, config, else the system's).
    pub fn tz(&self) -> &TimeZone {
        self.tz.get_or_init(crate::zone::system)
    }
}

/// A run's windows and the instant they are judged at (active, burn rate,
/// projection): the run's `now`, except for ccusage's windows, which keep
/// the clock ccusage judged them at ([`ccusage::blocks`]).
pub struct Windows {
    /// The windows and the gaps between them, oldest first.
    pub blocks: Vec<Block>,
    /// The instant they are judged at.
    pub now: Timestamp,
}

/// Every window of the run (`hours` long), from the source it names: the
/// one transcripts/ccusage switch. `open` finds the transcripts and syncs
/// the store ([`load::open`], or a command's wrapper that reports on it).
pub fn blocks(
    s: &Settings,
    hours: f64,
    open: impl FnOnce(&Settings) -> Result<load::Sources>,
) -> Result<Windows> {
    Ok(match s.source {
        Source::Transcripts => Windows {
            blocks: open(s)?.blocks(s, hours)?,
            now: s.now,
        },
        Source::Ccusage => {
            let (blocks, now) = ccusage::blocks(s.now)?;
            Windows { blocks, now }
        }
    })
}

/// The original monitor's `<base>/config.json` `max_tokens` as kept maxima:
/// the largest window it had seen, a floor for the all-time maximum.
pub fn kept_maxima(base_dir: &std::path::Path) -> crate::period::Maxima {
    crate::period::Maxima {
        tokens: feed::original_monitor_max_tokens(base_dir).unwrap_or(0),
        cost_usd: 0.0,
    }
}
