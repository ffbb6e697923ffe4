//! The status line's store query: the current window, today's cost and the
//! token scale, from the few window rows that end today, with a small cache
//! file so a repaint reads almost nothing.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::config::TokenLimit;
use crate::pricing::CostMode;
use crate::store::{BlockRow, Store};

/// What the store says, as far as the line needs it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreFigures {
    /// The window active at `now`: cost, end, tokens.
    pub block: Option<ActiveBlock>,
    /// Cost in USD of today's usage so far (since local midnight).
    pub today_cost: f64,
    /// The token scale for the estimated 5-hour percentage.
    pub token_limit: Option<u64>,
}

/// The window whose span contains `now`, as the status line shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveBlock {
    /// Its cost so far in USD.
    pub cost_usd: f64,
    /// When it ends.
    pub end: Timestamp,
    /// Its tokens so far (all four kinds).
    pub tokens: u64,
}

// ---------------------------------------------------------------------------
// Reading the store, with a cache.

/// File name of the cache in the base directory.
pub const CACHE_FILE: &str = "statusline-cache.json";

/// What the cache remembers: the window rows it was computed from (when they
/// are unchanged, today's cost and the token scale are too) and the figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cache {
    /// What the figures were computed from.
    pub key: CacheKey,
    /// The figures computed.
    pub figures: StoreFigures,
}

/// The inputs today's cost and the token scale depend on: when all are equal, the cached figures are reused.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CacheKey {
    /// Local midnight that starts today.
    pub day_start: Timestamp,
    /// The cost mode, as its `Debug` name.
    pub mode: String,
    /// The configured token limit, as its `Debug` form.
    pub token_limit: String,
    /// `(start, last entry, entries, tokens, cost)` of each window ending today.
    pub rows: Vec<(i64, Option<i64>, u64, u64, f64)>,
    /// The account(s) the figures are of ([`Store::scope_key`]).
    #[serde(default)]
    pub scope: String,
}

/// Settings the figures depend on.
pub struct FigureSettings<'a> {
    /// How usage is priced.
    pub mode: CostMode,
    /// The display time zone: it decides when "today" starts.
    pub tz: &'a TimeZone,
    /// How the token scale for the estimated percentage is chosen.
    pub token_limit: TokenLimit,
    /// A floor for the token scale (the original monitor's `max_tokens`).
    pub kept_max_tokens: u64,
}

/// The figures at `now`, from `cache` when the windows it was computed from
/// are unchanged; the second value is the new cache when it had to be
/// recomputed.
pub fn figures(
    store: &Store,
    cache: Option<&Cache>,
    s: &FigureSettings<'_>,
    now: Timestamp,
) -> Result<(StoreFigures, Option<Cache>), crate::store::StoreError> {
    let day_start =
        crate::period::local_midnight(s.tz.to_datetime(now).date(), s.tz).unwrap_or(now);
    let rows = store.blocks_ending_after(day_start, s.mode)?;
    let key = CacheKey {
        day_start,
        mode: format!("{:?}", s.mode),
        token_limit: format!("{:?}", s.token_limit),
        scope: store.scope_key(),
        rows: rows
            .iter()
            .map(|r| {
                (
                    r.start.as_millisecond(),
                    r.last_entry.map(|t| t.as_millisecond()),
                    r.entries,
                    r.tokens,
                    r.cost_usd,
                )
            })
            .collect(),
    };
    let block = active_block(&rows, now);
    if let Some(c) = cache.filter(|c| c.key == key) {
        let mut f = c.figures.clone();
        f.block = block;
        return Ok((f, None));
    }
    let today_cost = store.cost_between(day_start, now, s.mode)?;
    let token_limit = match s.token_limit {
        TokenLimit::Fixed(n) => Some(n),
        TokenLimit::Max => {
            // Completed windows only: those before the current one.
            let before = rows
                .iter()
                .rev()
                .find(|r| crate::blocks::span_contains(r.start, r.end, now))
                .map_or(now, |r| r.start);
            Some(
                store
                    .max_block_tokens_before(before)?
                    .max(s.kept_max_tokens),
            )
            .filter(|m| *m > 0)
        }
        TokenLimit::P90 => {
            let blocks = store.blocks(s.mode)?;
            let kept = crate::period::Maxima {
                tokens: s.kept_max_tokens,
                cost_usd: 0.0,
            };
            crate::period::limits(&blocks, kept, TokenLimit::P90, now)
                .1
                .tokens
        }
    };
    let figures = StoreFigures {
        block,
        today_cost,
        token_limit,
    };
    let cache = Cache {
        key,
        figures: figures.clone(),
    };
    Ok((figures, Some(cache)))
}

/// The window whose span contains `now` (`Block::is_current_at`'s rule);
/// a window dated ahead of `now` is never it.
fn active_block(rows: &[BlockRow], now: Timestamp) -> Option<ActiveBlock> {
    let b = rows
        .iter()
        .rev()
        .find(|b| crate::blocks::span_contains(b.start, b.end, now))?;
    Some(ActiveBlock {
        cost_usd: b.cost_usd,
        end: b.end,
        tokens: b.tokens,
    })
}

/// The cache in the base directory, if it exists and parses.
pub fn read_cache(base_dir: &Path) -> Option<Cache> {
    let bytes = std::fs::read(base_dir.join(CACHE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Replaces the cache by rename. No fsync: a cache lost in a crash is
/// recomputed, and one that does not parse is ignored.
pub fn write_cache(base_dir: &Path, c: &Cache) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(c).map_err(std::io::Error::other)?;
    let tmp = base_dir.join(format!(".{CACHE_FILE}.tmp-{}", std::process::id()));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    std::io::Write::write_all(&mut o.open(&tmp)?, &bytes)?;
    std::fs::rename(&tmp, base_dir.join(CACHE_FILE)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Whether the store has not read all of `transcript` yet.
pub fn transcript_ahead(store: &Store, transcript: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(transcript) else {
        return false;
    };
    match store.transcript_read_to(transcript) {
        Ok(Some(read)) => meta.len() > read,
        Ok(None) => meta.len() > 0,
        Err(_) => false,
    }
}

/// How long a background refresh counts as running: no new one is started
/// while the marker is younger.
pub const REFRESH_MARKER: &str = "statusline-refresh.lock";
/// Minimum time between two background refreshes the status line starts.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Claims the right to start a background refresh: false when one was
/// started less than [`REFRESH_EVERY`] ago.
pub fn claim_refresh(base_dir: &Path) -> bool {
    let marker = base_dir.join(REFRESH_MARKER);
    let recent = std::fs::metadata(&marker)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e < REFRESH_EVERY));
    if recent {
        return false;
    }
    if crate::fsutil::touch_private(&marker).is_err() {
        return false;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&marker)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn now() -> Timestamp {
        "2026-11-20T16:40:00Z".parse().unwrap()
    }

    #[test]
    fn active_block_is_judged_at_now() {
        let row = |start: &str, last: &str| BlockRow {
            start: start.parse().unwrap(),
            end: start
                .parse::<Timestamp>()
                .unwrap()
                .checked_add(SignedDuration::from_hours(5))
                .unwrap(),
            last_entry: Some(last.parse().unwrap()),
            entries: 3,
            tokens: 10,
            cost_usd: 1.0,
        };
        let rows = vec![row("2026-11-20T14:00:00Z", "2026-11-20T15:35:00Z")];
        assert!(active_block(&rows, now()).is_some());
        assert!(active_block(&rows, "2026-11-20T19:00:00Z".parse().unwrap()).is_none());
        assert!(active_block(&[], now()).is_none());
    }
}
