//! `--source ccusage`: windows as `ccusage blocks -j` computes them, for users
//! who want ccusage's numbers (the original monitor's data source).

use std::process::Command;

use jiff::Timestamp;
use serde::Deserialize;

use crate::blocks::Block;
use crate::domain::TokenCounts;

/// Why `--source ccusage` could not produce windows.
#[derive(Debug, thiserror::Error)]
pub enum CcusageError {
    /// The ccusage program could not be started.
    #[error(
        "cannot run `{program}` ({reason}): install it (`npm install -g ccusage`), set CSM_CCUSAGE to its path, or drop --source ccusage to use csm's own reader"
    )]
    Missing {
        /// The command csm tried to start (`CSM_CCUSAGE` or `ccusage`).
        program: String,
        /// The operating system's error.
        reason: String,
    },
    /// ccusage ran but exited unsuccessfully.
    #[error("`{program} blocks -j` failed ({status}): {stderr}")]
    Failed {
        /// The command that was run (`CSM_CCUSAGE` or `ccusage`).
        program: String,
        /// Its exit status, as displayed.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// ccusage's output is not the `blocks -j` JSON csm expects.
    #[error("`{program} blocks -j` printed something csm cannot read: {reason}")]
    BadOutput {
        /// The command that was run.
        program: String,
        /// What in its JSON could not be read.
        reason: String,
    },
}

#[derive(Deserialize)]
struct RawOutput {
    blocks: Vec<RawBlock>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBlock {
    start_time: String,
    end_time: String,
    actual_end_time: Option<String>,
    is_active: bool,
    #[serde(default)]
    is_gap: bool,
    entries: usize,
    token_counts: RawTokens,
    #[serde(rename = "costUSD")]
    cost_usd: f64,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    usage_limit_reset_time: Option<String>,
    #[serde(default)]
    burn_rate: Option<RawBurnRate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBurnRate {
    tokens_per_minute: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTokens {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

/// Runs ccusage (`CSM_CCUSAGE` or `ccusage` on PATH) and converts its
/// blocks, with the instant ccusage judged them at: the run's `now` when
/// ccusage's `isActive` flags agree with it, else the real clock (ccusage
/// knows no `CSM_NOW`), so its windows come back as it printed them.
pub fn blocks(now: Timestamp) -> Result<(Vec<Block>, Timestamp), CcusageError> {
    let program = std::env::var("CSM_CCUSAGE").unwrap_or_else(|_| "ccusage".into());
    let out = Command::new(&program)
        .args(["blocks", "-j", "--offline"])
        .output()
        .map_err(|e| CcusageError::Missing {
            program: program.clone(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(CcusageError::Failed {
            program,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(500)
                .collect(),
        });
    }
    let (blocks, active) =
        parse_blocks(&out.stdout).map_err(|reason| CcusageError::BadOutput { program, reason })?;
    let agrees = |at: Timestamp| {
        blocks
            .iter()
            .zip(&active)
            .all(|(b, a)| b.is_active_at(at) == *a)
    };
    let wall = Timestamp::now();
    let judged_at = if !agrees(now) && agrees(wall) {
        wall
    } else {
        now
    };
    Ok((blocks, judged_at))
}

/// Converts `ccusage blocks -j` output into csm's blocks, with ccusage's
/// `isActive` of each.
pub fn parse_blocks(json: &[u8]) -> Result<(Vec<Block>, Vec<bool>), String> {
    let raw: RawOutput = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let time = |s: &str| {
        s.parse::<Timestamp>()
            .map_err(|e| format!("bad time {s:?}: {e}"))
    };
    raw.blocks
        .into_iter()
        .map(|b| {
            let actual_end = b.actual_end_time.as_deref().map(time).transpose()?;
            let start = time(&b.start_time)?;
            let total = b.token_counts.input_tokens
                + b.token_counts.output_tokens
                + b.token_counts.cache_creation_input_tokens
                + b.token_counts.cache_read_input_tokens;
            // ccusage reports no first-entry time, but its burn rate is the
            // total over the minutes since the first entry: invert it so
            // rates and projections come out as ccusage's.
            let first_entry = match (&b.burn_rate, actual_end) {
                (Some(r), Some(last)) if r.tokens_per_minute > 0.0 => {
                    let minutes = total as f64 / r.tokens_per_minute;
                    let back = jiff::SignedDuration::from_secs_f64(minutes * 60.0);
                    Some(last.checked_sub(back).unwrap_or(start))
                }
                (None, Some(last)) if b.is_active => Some(last),
                _ => (!b.is_gap).then_some(start),
            };
            let block = Block {
                start,
                end: time(&b.end_time)?,
                first_entry,
                actual_end,
                is_gap: b.is_gap,
                entries: b.entries,
                tokens: TokenCounts {
                    input_tokens: b.token_counts.input_tokens,
                    output_tokens: b.token_counts.output_tokens,
                    cache_creation_input_tokens: b.token_counts.cache_creation_input_tokens,
                    cache_read_input_tokens: b.token_counts.cache_read_input_tokens,
                },
                cost_usd: b.cost_usd,
                models: b.models,
                usage_limit_reset: b.usage_limit_reset_time.as_deref().map(time).transpose()?,
            };
            Ok((block, b.is_active))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|v| v.into_iter().unzip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ccusage_output() {
        let json = br#"{"blocks":[{"id":"2026-11-23T18:00:00.000Z","startTime":"2026-11-23T18:00:00.000Z","endTime":"2026-11-23T23:00:00.000Z","actualEndTime":"2026-11-23T19:20:40.324Z","isActive":false,"isGap":false,"entries":2,"tokenCounts":{"inputTokens":2000,"outputTokens":4000,"cacheCreationInputTokens":6000,"cacheReadInputTokens":8000},"totalTokens":20000,"costUSD":0.0909,"models":["claude-sonnet-4-5-20250929"],"burnRate":null,"projection":null},{"id":"gap-2026-11-24T00:20:40.324Z","startTime":"2026-11-24T00:20:40.324Z","endTime":"2026-11-25T18:40:40.493Z","actualEndTime":null,"isActive":false,"isGap":true,"entries":0,"tokenCounts":{"inputTokens":0,"outputTokens":0,"cacheCreationInputTokens":0,"cacheReadInputTokens":0},"totalTokens":0,"costUSD":0,"models":[],"burnRate":null,"projection":null}]}"#;
        let (blocks, active) = parse_blocks(json).unwrap();
        assert_eq!(active, vec![false, false]);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].total_tokens(), 20000);
        assert!(blocks[1].is_gap);
        assert_eq!(blocks[1].actual_end, None);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = parse_blocks(b"Need to install ccusage?").unwrap_err();
        assert!(!err.is_empty());
    }
}
