//! `csm hook`: one Claude Code hook event into the store's activity table.
//!
//! Claude Code waits for a hook before going on, so this opens the store the
//! cheap way (no migration, no writers' lock) with a short busy timeout; when
//! another process holds the database longer than that, the event is dropped
//! and logged rather than making Claude Code wait.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

use super::activity::{self, HookError};
use crate::store::{Store, StoreError};

/// How long an event waits for another writer before it is dropped. Only
/// paid while another process writes: 100 ms dropped events when 16 report
/// commands, the daemon and the dashboard shared a loaded machine
/// (tests/robustness/contention.rs); an ingest's write transaction lasts
/// well under a second there.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);

#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error(transparent)]
    Input(#[from] HookError),
    #[error("event dropped: {0}")]
    Store(#[from] StoreError),
}

/// Records the hook event in `input` at `now`. The store is created on the
/// first event when no csm command made it yet.
pub fn record(base_dir: &Path, input: &[u8], now: Timestamp) -> Result<(), HookFailure> {
    let event = activity::parse_hook(input, now)?;
    let mut store = match Store::open_existing(base_dir, BUSY_TIMEOUT)? {
        Some(s) => s,
        None => {
            let s = Store::open(base_dir)?;
            s.set_busy_timeout(BUSY_TIMEOUT)?;
            s
        }
    };
    store.record_activity(&event)?;
    Ok(())
}
