//! claude-session-monitor (`csm`): Claude Code usage windows, billing periods and
//! costs, from Claude Code's own transcripts.
//!
//! Data flows through the modules in this order: `ingest` (find files, parse
//! lines) → `dedup` → `pricing` → `blocks` / `report` (pure computation) →
//! `commands` (the thin shell that prints).

pub mod app;
pub mod blocks;
pub mod claude;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod dedup;
pub mod domain;
pub mod engine;
pub mod env;
pub mod fsutil;
pub mod ingest;
pub mod notify;
pub mod period;
pub mod pricing;
pub mod report;
pub mod snapshot;
pub mod store;
pub mod synth;
pub mod sys;
pub mod tui;
pub mod zone;
