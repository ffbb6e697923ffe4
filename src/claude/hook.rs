//! `csm hook`: one Claude Code hook event into the spool.
//!
//! Claude Code waits for a hook before going on, and a daemon or a report
//! may hold the store's write lock for a whole ingest. The event is appended
//! to the spool instead, which takes microseconds and never waits for the
//! store; the next process that writes the store imports it
//! ([`super::spool`]).

use std::path::Path;

use jiff::Timestamp;

use crate::ingest::claude::activity::{self, HookError};
use crate::ingest::claude::spool::{self, Record, SpoolError};

/// Why `csm hook` could not record an event.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    /// The hook input on stdin was not a usable event.
    #[error(transparent)]
    Input(#[from] HookError),
    /// The event could not be appended to the spool.
    #[error("event dropped: {0}")]
    Spool(#[from] SpoolError),
}

/// Records the hook event in `input` at `now`.
pub fn record(base_dir: &Path, input: &[u8], now: Timestamp) -> Result<(), HookFailure> {
    let event = activity::parse_hook(input, now)?;
    spool::append(base_dir, &Record::Activity(event))?;
    Ok(())
}
