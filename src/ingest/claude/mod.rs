//! Claude Code's inputs besides transcripts: the official limits its status
//! line hands over, hook events, and the spool both are queued in.

pub mod account;
pub mod activity;
pub mod limits;
pub mod spool;

pub use activity::{ActivityState, LiveSession};
pub use limits::{OfficialBar, OfficialLimits, OfficialStatus};
