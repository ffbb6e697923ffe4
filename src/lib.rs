//! claude-session-monitor (`csm`): Claude Code usage windows, billing periods and
//! costs, from Claude Code's own transcripts.
//!
//! Data flows: `ingest` (find files, parse lines) → `dedup` → `store` (the
//! SQLite history, incremental) → `engine` (the one path every face takes:
//! feeds, windows, "the figures now") → the faces (`tui`, `daemon` and its
//! `snapshot`, `claude` status line and hooks, `notify`, reports) → `commands`
//! (the thin shell that prints). `docs/architecture.md` draws the layers.
//! Modules are public only where tests, benches, examples or fuzz targets
//! reach them.

// No unwrap in the product; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod blocks;
pub mod claude;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod daemon;
pub mod dedup;
pub mod domain;
pub mod engine;
pub(crate) mod env;
pub(crate) mod fsutil;
pub mod ingest;
pub(crate) mod notify;
pub mod period;
pub mod pricing;
pub mod report;
pub(crate) mod snapshot;
pub mod store;
pub mod synth;
pub mod sys;
pub mod tui;
pub(crate) mod zone;
