//! Typed domain values shared by every stage: what a usage entry is once the
//! wire format has been left behind.

use std::borrow::Cow;
use std::sync::Arc;

use jiff::Timestamp;

/// The four token kinds Claude Code reports for one API response. Wire
/// formats have their own shapes of it (the snapshot's, ccusage's JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
}

impl TokenCounts {
    /// Sums saturate: a corrupt count near `u64::MAX` must not crash a report
    /// (ccusage prints the saturated value too).
    pub fn total(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_creation_input_tokens)
            .saturating_add(self.cache_read_input_tokens)
    }

    /// Adds `other`'s counts to these, saturating.
    pub fn add(&mut self, other: &TokenCounts) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .saturating_add(other.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .saturating_add(other.cache_read_input_tokens);
    }
}

/// `usage.speed`: fast mode is billed with a per-model multiplier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Speed {
    /// Normal speed (also when the line gives none).
    #[default]
    Standard,
    /// Fast mode.
    Fast,
}

/// Tokens of one entry as pricing needs them: cache writes split by lifetime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BillableTokens {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Cache writes billed at the 5-minute price (all writes when no split is known).
    pub cache_write_5m: u64,
    /// Cache writes billed at the 1-hour price.
    pub cache_write_1h: u64,
    /// Cache reads.
    pub cache_read: u64,
}

/// One API response's usage, as read from a transcript line.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageEntry {
    /// When the response was recorded (the line's `timestamp`).
    pub timestamp: Timestamp,
    /// The response's token counts.
    pub tokens: TokenCounts,
    /// The part of `tokens.cache_creation_input_tokens` written to the 1-hour cache.
    pub cache_creation_1h: u64,
    /// `usage.speed` when the line gives one (its presence matters to de-duplication).
    pub speed: Option<Speed>,
    /// `costUSD` as written by Claude Code (older versions only).
    pub cost_usd: Option<f64>,
    /// `message.model`, shared between entries with the same name.
    pub model: Option<Arc<str>>,
    /// Hash of `message.id`, when present: the identity of a streamed response.
    pub message_id: Option<u64>,
    /// Hash of `requestId`, when present.
    pub request_id: Option<u64>,
    /// Hash of the line's `sessionId`, or of the session named by the file's
    /// path when the line has none: streamed copies without a request id are
    /// the same response only within one session.
    pub session_key: u64,
    /// Where the entry was read: project and session follow from the path.
    pub origin: Arc<Origin>,
    /// Byte offset of the line in its file: with the file's path, the entry's
    /// place in reading order and its identity in the history store.
    pub offset: u64,
    /// `isSidechain`: the line belongs to a sidechain (subagent) conversation.
    pub is_sidechain: bool,
    /// From an API error line "Claude AI usage limit reached|<unix seconds>".
    pub usage_limit_reset: Option<Timestamp>,
}

impl UsageEntry {
    /// The tokens split the way prices are: cache writes by cache lifetime.
    pub fn billable(&self) -> BillableTokens {
        let cache_1h = self
            .cache_creation_1h
            .min(self.tokens.cache_creation_input_tokens);
        BillableTokens {
            input: self.tokens.input_tokens,
            output: self.tokens.output_tokens,
            cache_write_5m: self.tokens.cache_creation_input_tokens - cache_1h,
            cache_write_1h: cache_1h,
            cache_read: self.tokens.cache_read_input_tokens,
        }
    }

    /// Model name for reports, with `-fast` for fast-mode entries as ccusage shows them.
    pub fn display_model(&self) -> Option<Cow<'_, str>> {
        let m = self.reportable_model()?;
        Some(match self.speed {
            Some(Speed::Fast) => Cow::Owned(format!("{m}-fast")),
            _ => Cow::Borrowed(m),
        })
    }

    /// The speed, standard when the line gives none.
    pub fn speed_or_standard(&self) -> Speed {
        self.speed.unwrap_or_default()
    }

    /// Model name for reports: `<synthetic>` and missing models are not models.
    pub fn reportable_model(&self) -> Option<&str> {
        self.model.as_deref().filter(|m| *m != SYNTHETIC_MODEL)
    }
}

/// The model name Claude Code gives to entries it made up itself (API errors).
pub const SYNTHETIC_MODEL: &str = "<synthetic>";

/// The transcript file an entry came from, as reports group it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// First directory below `projects/` (`unknown` when there is none).
    pub project: Arc<str>,
    /// Session the file belongs to (file stem, or the session directory for
    /// `subagents/` and nested files).
    pub session_id: String,
    /// The directories above the session, as the session report shows them.
    pub project_path: String,
}

/// An entry's price under the chosen cost mode.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EntryCost {
    /// The cost in USD.
    pub usd: f64,
    /// The cost had to be calculated, the model has no price and the entry has
    /// tokens: the figure is short by this entry (ccusage's `missingPricing`).
    pub unpriced: bool,
}

/// A plain entry for tests to adjust with struct-update syntax: 100 input and
/// `output` tokens at `timestamp`, no ids, no model, project `p`, session `s`.
#[cfg(test)]
pub(crate) fn sample_entry(timestamp: Timestamp, output: u64) -> UsageEntry {
    UsageEntry {
        timestamp,
        tokens: TokenCounts {
            input_tokens: 100,
            output_tokens: output,
            ..Default::default()
        },
        cache_creation_1h: 0,
        speed: None,
        cost_usd: None,
        model: None,
        message_id: None,
        request_id: None,
        session_key: 0,
        origin: Arc::new(Origin {
            project: Arc::from("p"),
            session_id: "s".into(),
            project_path: "p".into(),
        }),
        offset: 0,
        is_sidechain: false,
        usage_limit_reset: None,
    }
}
