//! claude-session-monitor (`csm`): Claude Code usage windows, billing periods and
//! costs, from Claude Code's own transcripts.

pub mod domain;
pub mod ingest;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod blocks;
