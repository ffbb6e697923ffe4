//! Five-hour windows ("blocks"): pure computation over entries
//! sorted by time, with the clock passed in. Same algorithm as ccusage 20.0.24.

use jiff::{SignedDuration, Timestamp};

use crate::domain::{TokenCounts, UsageEntry};

/// One usage window, or a gap between windows.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Window start: the first entry's time floored to the UTC hour (for a gap, the last entry's time plus the window length).
    pub start: Timestamp,
    /// Window end: `start` plus the window length (for a gap, the next entry's time).
    pub end: Timestamp,
    /// Time of the first entry (none for gaps).
    pub first_entry: Option<Timestamp>,
    /// Time of the last entry (none for gaps).
    pub actual_end: Option<Timestamp>,
    /// True for an empty stretch between windows rather than a window.
    pub is_gap: bool,
    /// Number of usage entries in the window.
    pub entries: usize,
    /// Token counts summed over the window's entries.
    pub tokens: TokenCounts,
    /// Cost of the window's entries in USD, priced by the run's cost mode.
    pub cost_usd: f64,
    /// Models in first-use order, `<synthetic>` left out, fast mode shown as `-fast`.
    pub models: Vec<String>,
    /// The first usage-limit reset time an entry of this window reported.
    pub usage_limit_reset: Option<Timestamp>,
}

/// ccusage's burn rate of an active window: usage between its first and last entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurnRate {
    /// All four token kinds per minute.
    pub tokens_per_minute: f64,
    /// Input + output only: what ccusage's burn indicator uses.
    pub tokens_per_minute_for_indicator: f64,
    /// USD per hour.
    pub cost_per_hour: f64,
}

/// Where an active window ends up at its burn rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Projection {
    /// Projected tokens at the window's end.
    pub total_tokens: u64,
    /// Projected cost at the window's end, in USD rounded to cents.
    pub total_cost: f64,
    /// Minutes from now to the window's end, rounded.
    pub remaining_minutes: i64,
}

impl Block {
    /// An empty stretch between two windows.
    pub fn gap(start: Timestamp, end: Timestamp) -> Block {
        Block {
            start,
            end,
            first_entry: None,
            actual_end: None,
            is_gap: true,
            entries: 0,
            tokens: TokenCounts::default(),
            cost_usd: 0.0,
            models: Vec::new(),
            usage_limit_reset: None,
        }
    }

    /// All four token kinds of the window, cache reads included.
    pub fn total_tokens(&self) -> u64 {
        self.tokens.total()
    }

    /// The rule every face uses for "the current window": a real window
    /// whose span contains `now`. A window that starts after `now` (an entry
    /// from a device whose clock runs fast) is never current;
    /// [`Block::is_active_at`] is ccusage's own judgement, for `blocks --json`.
    pub fn is_current_at(&self, now: Timestamp) -> bool {
        !self.is_gap && span_contains(self.start, self.end, now)
    }

    /// ccusage's `isActive` at `now`: a real window whose last entry is less
    /// than a window length before `now` and whose end has not come. A window
    /// dated ahead of `now` is active by this rule too, which is why no face
    /// uses it; `blocks --json` and `--token-limit max` keep it for
    /// compatibility.
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        let length = self.end.duration_since(self.start);
        !self.is_gap
            && self
                .actual_end
                .is_some_and(|last| now.duration_since(last) < length && now < self.end)
    }

    /// A real window ccusage calls completed at `now` (not active): what the
    /// maxima, `p90` and `--token-limit max` measure against.
    pub fn is_completed_at(&self, now: Timestamp) -> bool {
        !self.is_gap && !self.is_active_at(now)
    }

    /// A real window that has not started at `now`: its entries are dated in
    /// the future, so no face counts it.
    pub fn is_future_at(&self, now: Timestamp) -> bool {
        !self.is_gap && self.start > now
    }

    /// Usage per minute between the first and last entry of a window active
    /// at `now` (ccusage's burn rate; the faces use [`pace`]).
    pub fn burn_rate(&self, now: Timestamp) -> Option<BurnRate> {
        if !self.is_active_at(now) {
            return None;
        }
        let (first, last) = (self.first_entry?, self.actual_end?);
        let minutes = last.duration_since(first).as_millis() as f64 / 60_000.0;
        if minutes <= 0.0 {
            return None;
        }
        Some(BurnRate {
            tokens_per_minute: self.total_tokens() as f64 / minutes,
            tokens_per_minute_for_indicator: (self.tokens.input_tokens + self.tokens.output_tokens)
                as f64
                / minutes,
            cost_per_hour: self.cost_usd / minutes * 60.0,
        })
    }

    /// Where the window ends up at the current burn rate.
    pub fn projection(&self, now: Timestamp) -> Option<Projection> {
        let rate = self.burn_rate(now)?;
        let remaining = (self.end.duration_since(now).as_millis() as f64 / 60_000.0).round();
        let total_tokens =
            (self.total_tokens() as f64 + rate.tokens_per_minute * remaining).round();
        let total_cost =
            ((self.cost_usd + rate.cost_per_hour / 60.0 * remaining) * 100.0).round() / 100.0;
        Some(Projection {
            total_tokens: total_tokens.max(0.0) as u64,
            total_cost,
            remaining_minutes: remaining as i64,
        })
    }
}

/// Whether `[start, end)` contains `now`: the one span test behind
/// [`Block::is_current_at`], also used on stored window rows.
pub fn span_contains(start: Timestamp, end: Timestamp, now: Timestamp) -> bool {
    start <= now && now < end
}

/// The current window at `now` ([`Block::is_current_at`]) among blocks sorted by start.
pub fn current(blocks: &[Block], now: Timestamp) -> Option<&Block> {
    blocks.iter().rev().find(|b| b.is_current_at(now))
}

/// The newest real window that has started by `now` (current or over).
pub fn latest_started(blocks: &[Block], now: Timestamp) -> Option<&Block> {
    blocks.iter().rev().find(|b| !b.is_gap && b.start <= now)
}

/// Entries dated after `now`: how many, and the newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FutureEntries {
    /// How many entries are dated after `now`.
    pub entries: usize,
    /// The newest of them.
    pub newest: Timestamp,
}

impl FutureEntries {
    /// Adds entries at `times` that lie after `now`.
    pub fn count(
        times: impl IntoIterator<Item = Timestamp>,
        now: Timestamp,
    ) -> Option<FutureEntries> {
        let mut out: Option<FutureEntries> = None;
        for t in times.into_iter().filter(|t| *t > now) {
            let f = out.get_or_insert(FutureEntries {
                entries: 0,
                newest: t,
            });
            f.entries += 1;
            f.newest = f.newest.max(t);
        }
        out
    }
}

/// Pace of the current window: usage over the last [`PACE_SPAN`] of
/// activity, as a rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// All four token kinds, cache reads included (as the token bar counts them).
    pub tokens_per_minute: f64,
    /// Input and output tokens only (no cache reads or writes).
    pub input_output_per_minute: f64,
    /// USD per hour.
    pub cost_per_hour: f64,
    /// What the rate is measured over.
    pub basis: PaceBasis,
}

/// What a [`Pace`] is measured over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaceBasis {
    /// The last 30 minutes.
    Recent,
    /// The window so far (it is younger than 30 minutes).
    Window,
}

/// How far back the pace looks.
pub const PACE_SPAN: SignedDuration = SignedDuration::from_mins(30);

/// The pace at `now` of a window whose entries (time, tokens, cost) are
/// given: usage of the last 30 minutes over 30 minutes, so it decays while
/// the user is idle; while the window's first entry is less than 30 minutes
/// old, usage over the time since that entry (at least a minute). Entries
/// dated after `now` are left out. None without usage in the span.
pub fn pace(
    entries: impl IntoIterator<Item = (Timestamp, TokenCounts, f64)>,
    first_entry: Timestamp,
    now: Timestamp,
) -> Option<Pace> {
    let since = now.saturating_sub(PACE_SPAN).unwrap_or(now);
    let (span, basis) = if first_entry > since {
        let age = now
            .duration_since(first_entry)
            .max(SignedDuration::from_mins(1));
        (age, PaceBasis::Window)
    } else {
        (PACE_SPAN, PaceBasis::Recent)
    };
    let (mut tokens, mut cost) = (TokenCounts::default(), 0.0f64);
    for (t, n, c) in entries {
        if t > since && t <= now {
            tokens.add(&n);
            cost += c;
        }
    }
    if tokens.total() == 0 && cost == 0.0 {
        return None;
    }
    let minutes = span.as_secs_f64() / 60.0;
    Some(Pace {
        tokens_per_minute: tokens.total() as f64 / minutes,
        input_output_per_minute: tokens.input_tokens.saturating_add(tokens.output_tokens) as f64
            / minutes,
        cost_per_hour: cost / minutes * 60.0,
        basis,
    })
}

/// When `tokens` reach `limit` at `per_minute` from `now`, if before `end`:
/// the one limit-reached projection every face shows.
pub fn limit_reached_at(
    tokens: u64,
    limit: u64,
    per_minute: f64,
    now: Timestamp,
    end: Timestamp,
) -> Option<Timestamp> {
    if tokens >= limit || per_minute <= 0.0 || !per_minute.is_finite() {
        return None;
    }
    let minutes = (limit - tokens) as f64 / per_minute;
    now.checked_add(SignedDuration::from_secs((minutes * 60.0).min(1e12) as i64))
        .ok()
        .filter(|t| *t < end)
}

/// Window length from hours, truncated to milliseconds as ccusage does.
pub fn window_length(hours: f64) -> SignedDuration {
    SignedDuration::from_millis((hours * 3_600_000.0) as i64)
}

/// One entry as blocks need it.
pub struct Timed<'a> {
    /// The usage entry.
    pub entry: &'a UsageEntry,
    /// Its cost in USD.
    pub cost: f64,
}

/// Groups entries (sorted by time) into windows: a window starts at its first
/// entry's time floored to the UTC hour and lasts `length`; an entry more than
/// `length` after the window start or after the previous entry opens a new one,
/// and a silence longer than `length` is shown as a gap block.
pub fn identify_blocks<'a>(
    entries: impl IntoIterator<Item = Timed<'a>>,
    length: SignedDuration,
) -> Vec<Block> {
    identify_blocks_after(None, entries, length)
}

/// The same, continuing after an entry at `previous` (the last one before the
/// first given entry, which must start a window): lets the history store
/// recompute only the windows a change can affect.
pub fn identify_blocks_after<'a>(
    previous: Option<Timestamp>,
    entries: impl IntoIterator<Item = Timed<'a>>,
    length: SignedDuration,
) -> Vec<Block> {
    continue_blocks(None, previous, entries, length)
}

/// The same, continuing the window `last` (the latest real window, as
/// computed so far) with entries that all come after its last entry: the
/// result starts with `last` extended. Sums continue in the same order, so
/// appending this way gives exactly what one pass gives.
pub fn extend_window<'a>(
    last: Block,
    entries: impl IntoIterator<Item = Timed<'a>>,
    length: SignedDuration,
) -> Vec<Block> {
    continue_blocks(Some(last), None, entries, length)
}

fn continue_blocks<'a>(
    current: Option<Block>,
    previous: Option<Timestamp>,
    entries: impl IntoIterator<Item = Timed<'a>>,
    length: SignedDuration,
) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current = current;
    let mut previous = previous;
    for Timed { entry, cost } in entries {
        let t = entry.timestamp;
        if let Some(p) = previous.take()
            && t.duration_since(p) > length
        {
            blocks.push(gap(p, t, length));
        }
        if let Some(block) = current.as_mut() {
            let last = block.actual_end.unwrap_or(block.start);
            let since_start = t.duration_since(block.start);
            let since_last = t.duration_since(last);
            if since_start > length || since_last > length {
                blocks.extend(current.take());
                if since_last > length {
                    blocks.push(gap(last, t, length));
                }
            }
        }
        let block = current.get_or_insert_with(|| open(t, length));
        add(block, entry, cost);
    }
    blocks.extend(current);
    blocks
}

fn floor_to_hour(t: Timestamp) -> Timestamp {
    let secs = t.as_second().div_euclid(3600) * 3600;
    Timestamp::from_second(secs).unwrap_or(t)
}

fn open(t: Timestamp, length: SignedDuration) -> Block {
    let start = floor_to_hour(t);
    Block {
        start,
        end: start.saturating_add(length).unwrap_or(start),
        first_entry: None,
        actual_end: None,
        is_gap: false,
        entries: 0,
        tokens: TokenCounts::default(),
        cost_usd: 0.0,
        models: Vec::new(),
        usage_limit_reset: None,
    }
}

fn add(block: &mut Block, entry: &UsageEntry, cost: f64) {
    block.first_entry.get_or_insert(entry.timestamp);
    block.actual_end = Some(entry.timestamp);
    block.entries += 1;
    block.tokens.add(&entry.tokens);
    block.cost_usd += cost;
    if let Some(m) = entry.display_model()
        && !block.models.iter().any(|x| *x == m)
    {
        block.models.push(m.into_owned());
    }
    if block.usage_limit_reset.is_none() {
        block.usage_limit_reset = entry.usage_limit_reset;
    }
}

fn gap(last: Timestamp, next: Timestamp, length: SignedDuration) -> Block {
    Block::gap(last.saturating_add(length).unwrap_or(last), next)
}

/// Which blocks a listing shows, applied in ccusage's order.
#[derive(Clone, Debug, Default)]
pub struct BlockFilter {
    /// Only windows starting on or after this day (display time zone).
    pub since: Option<jiff::civil::Date>,
    /// Only windows starting on or before this day (display time zone).
    pub until: Option<jiff::civil::Date>,
    /// Newest first.
    pub descending: bool,
    /// Only windows of the last 72 hours, plus the active one.
    pub recent: bool,
    /// Only the current window.
    pub active_only: bool,
}

impl BlockFilter {
    /// `tz` is asked for only when days matter (loading a zone can mean
    /// reading the system's zone database).
    pub fn apply<'z>(
        &self,
        mut blocks: Vec<Block>,
        tz: impl FnOnce() -> &'z jiff::tz::TimeZone,
        now: Timestamp,
    ) -> Vec<Block> {
        if self.since.is_some() || self.until.is_some() {
            let tz = tz();
            blocks.retain(|b| {
                let day = tz.to_datetime(b.start).date();
                self.since.is_none_or(|s| day >= s) && self.until.is_none_or(|u| day <= u)
            });
        }
        blocks.sort_by_key(|b| b.start);
        if self.descending {
            blocks.reverse();
        }
        if self.recent {
            let cutoff = now
                .saturating_sub(SignedDuration::from_hours(72))
                .unwrap_or(now);
            blocks.retain(|b| b.start >= cutoff || b.is_active_at(now));
        }
        if self.active_only {
            // The window the other faces call current, not ccusage's flag
            // (which a window dated in the future also carries).
            blocks.retain(|b| b.is_current_at(now));
        }
        blocks
    }
}

/// The largest total of real windows not active at `now` (ccusage's
/// "completed"): what `--token-limit max` means.
pub fn max_completed_tokens(blocks: &[Block], now: Timestamp) -> u64 {
    blocks
        .iter()
        .filter(|b| b.is_completed_at(now))
        .map(Block::total_tokens)
        .max()
        .unwrap_or(0)
}

/// A projected window total against a token limit (`blocks --json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitStatus {
    /// At most 80 % of the limit.
    Ok,
    /// Above 80 % of the limit, but not over it.
    Warning,
    /// Over the limit.
    Exceeds,
}

impl LimitStatus {
    /// Lower-case name as in ccusage's JSON: `ok`, `warning` or `exceeds`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitStatus::Ok => "ok",
            LimitStatus::Warning => "warning",
            LimitStatus::Exceeds => "exceeds",
        }
    }

    /// Projected usage against a limit: over it exceeds, above 80 % warns.
    pub fn of(projected: u64, limit: u64) -> LimitStatus {
        if projected > limit {
            LimitStatus::Exceeds
        } else if projected as f64 > 0.8 * limit as f64 {
            LimitStatus::Warning
        } else {
            LimitStatus::Ok
        }
    }
}

#[cfg(test)]
mod tests;
