//! Daily, weekly, monthly and session summaries (pure), summed in the same
//! order as ccusage 20 so even the last digits of costs agree.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::domain::{EntryCost, TokenCounts, UsageEntry};

/// Per-model share of a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    /// The model's report name (`-fast` appended for fast mode).
    pub model: String,
    /// Its tokens in this row.
    pub tokens: TokenCounts,
    /// Its cost in USD.
    pub cost: f64,
    /// Some entries had to be priced and the model has no price (ccusage's `missingPricing`).
    pub missing_pricing: bool,
}

/// What every summary row has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Tokens summed over the row's entries.
    pub tokens: TokenCounts,
    /// Cost in USD summed over the row's entries.
    pub cost: f64,
    /// Models in first-seen order.
    pub models_used: Vec<String>,
    /// Sorted by cost, highest first (ties keep first-seen order).
    pub breakdowns: Vec<Breakdown>,
}

impl Usage {
    fn add_entry(&mut self, entry: &UsageEntry, cost: EntryCost) {
        self.tokens.add(&entry.tokens);
        self.cost += cost.usd;
        if let Some(model) = entry.display_model() {
            self.merge_model(&model, &entry.tokens, cost.usd, cost.unpriced);
        }
    }

    fn merge_model(&mut self, model: &str, tokens: &TokenCounts, cost: f64, unpriced: bool) {
        if !self.models_used.iter().any(|m| m == model) {
            self.models_used.push(model.to_string());
        }
        match self.breakdowns.iter_mut().find(|b| b.model == model) {
            Some(b) => {
                b.tokens.add(tokens);
                b.cost += cost;
                b.missing_pricing |= unpriced;
            }
            None => self.breakdowns.push(Breakdown {
                model: model.to_string(),
                tokens: *tokens,
                cost,
                missing_pricing: unpriced,
            }),
        }
    }

    fn add_usage(&mut self, other: &Usage) {
        self.tokens.add(&other.tokens);
        self.cost += other.cost;
        for m in &other.models_used {
            if !self.models_used.contains(m) {
                self.models_used.push(m.clone());
            }
        }
        for b in &other.breakdowns {
            match self.breakdowns.iter_mut().find(|x| x.model == b.model) {
                Some(x) => {
                    x.tokens.add(&b.tokens);
                    x.cost += b.cost;
                    x.missing_pricing |= b.missing_pricing;
                }
                None => self.breakdowns.push(b.clone()),
            }
        }
    }

    fn sort_breakdowns(&mut self) {
        // Stable: equal costs keep first-seen order.
        self.breakdowns.sort_by(|a, b| b.cost.total_cmp(&a.cost));
    }
}

/// A row keyed by a calendar period (a day, the first day of a week, a month).
#[derive(Clone, Debug, PartialEq)]
pub struct PeriodRow {
    /// The day, the first day of the week, or the first day of the month.
    pub key: Date,
    /// The usage in it.
    pub usage: Usage,
}

/// One row of `csm session`: a Claude Code session's usage.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    /// The session id (the transcript's file stem or session directory).
    pub session_id: String,
    /// The directories above the session, as the report shows them.
    pub project_path: String,
    /// Time of the session's first entry.
    pub first_activity: Timestamp,
    /// Time of the session's last entry.
    pub last_activity: Timestamp,
    /// The usage in it.
    pub usage: Usage,
}

/// What a period report groups days by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// One row per day.
    Day,
    /// Weeks starting on this weekday.
    Week(jiff::civil::Weekday),
    /// One row per calendar month.
    Month,
}

/// Which entries and in what order rows come out.
#[derive(Clone, Debug, Default)]
pub struct RowFilter {
    /// First day to include (display time zone).
    pub since: Option<Date>,
    /// Last day to include (display time zone).
    pub until: Option<Date>,
    /// Newest first (period rows; session rows keep their cost order).
    pub descending: bool,
}

impl RowFilter {
    fn keeps(&self, day: Date) -> bool {
        self.since.is_none_or(|s| day >= s) && self.until.is_none_or(|u| day <= u)
    }
}

/// Daily rows, then (for weeks and months) those rows merged in output order,
/// as ccusage builds them.
pub fn period_rows(
    entries: &[UsageEntry],
    costs: &[EntryCost],
    tz: &TimeZone,
    period: Period,
    filter: &RowFilter,
) -> Vec<PeriodRow> {
    let mut days: BTreeMap<Date, Usage> = BTreeMap::new();
    for (entry, cost) in entries.iter().zip(costs) {
        let day = tz.to_datetime(entry.timestamp).date();
        days.entry(day).or_default().add_entry(entry, *cost);
    }
    let mut daily: Vec<PeriodRow> = days
        .into_iter()
        .filter(|(day, _)| filter.keeps(*day))
        .map(|(key, mut usage)| {
            usage.sort_breakdowns();
            PeriodRow { key, usage }
        })
        .collect();
    if filter.descending {
        daily.reverse();
    }
    let bucket = |d: Date| -> Date {
        match period {
            Period::Day => d,
            Period::Week(start) => {
                let back =
                    (d.weekday().to_sunday_zero_offset() - start.to_sunday_zero_offset() + 7) % 7;
                d.checked_sub(jiff::Span::new().days(i64::from(back)))
                    .unwrap_or(d)
            }
            Period::Month => d.first_of_month(),
        }
    };
    if period == Period::Day {
        return daily;
    }
    let mut merged: Vec<PeriodRow> = Vec::new();
    let mut index: BTreeMap<Date, usize> = BTreeMap::new();
    for row in &daily {
        let key = bucket(row.key);
        let i = *index.entry(key).or_insert_with(|| {
            merged.push(PeriodRow {
                key,
                usage: Usage::default(),
            });
            merged.len() - 1
        });
        merged[i].usage.add_usage(&row.usage);
    }
    for row in &mut merged {
        row.usage.sort_breakdowns();
    }
    merged.sort_by_key(|r| r.key);
    if filter.descending {
        merged.reverse();
    }
    merged
}

/// One row per Claude Code session (project path + session id), most
/// expensive first. Sessions without tokens are left out.
pub fn session_rows(
    entries: &[UsageEntry],
    costs: &[EntryCost],
    tz: &TimeZone,
    filter: &RowFilter,
) -> Vec<SessionRow> {
    let mut rows: Vec<SessionRow> = Vec::new();
    let mut index: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (entry, cost) in entries.iter().zip(costs) {
        if !filter.keeps(tz.to_datetime(entry.timestamp).date()) {
            continue;
        }
        let key = (
            entry.origin.project_path.as_str(),
            entry.origin.session_id.as_str(),
        );
        let i = *index.entry(key).or_insert_with(|| {
            rows.push(SessionRow {
                session_id: entry.origin.session_id.clone(),
                project_path: entry.origin.project_path.clone(),
                first_activity: entry.timestamp,
                last_activity: entry.timestamp,
                usage: Usage::default(),
            });
            rows.len() - 1
        });
        let row = &mut rows[i];
        row.first_activity = row.first_activity.min(entry.timestamp);
        row.last_activity = row.last_activity.max(entry.timestamp);
        row.usage.add_entry(entry, *cost);
    }
    rows.retain(|r| r.usage.tokens.total() > 0);
    for row in &mut rows {
        row.usage.sort_breakdowns();
    }
    rows.sort_by(|a, b| b.usage.cost.total_cmp(&a.usage.cost));
    rows
}

/// Column sums over the rows as shown, plus the models that lacked prices.
#[derive(Clone, Debug, PartialEq)]
pub struct Totals {
    /// Tokens summed over the rows.
    pub tokens: TokenCounts,
    /// Cost in USD summed over the rows.
    pub cost: f64,
    /// Models without a price that some row needed, sorted and without duplicates.
    pub unpriced_models: Vec<String>,
}

/// The totals of `rows`.
pub fn totals<'a>(rows: impl IntoIterator<Item = &'a Usage>) -> Totals {
    let mut tokens = TokenCounts::default();
    // Starts at -0.0 like an empty f64 sum in ccusage, which prints "-0.0".
    let mut cost = -0.0;
    let mut unpriced = std::collections::BTreeSet::new();
    for u in rows {
        tokens.add(&u.tokens);
        cost += u.cost;
        for b in u.breakdowns.iter().filter(|b| b.missing_pricing) {
            unpriced.insert(b.model.clone());
        }
    }
    Totals {
        tokens,
        cost,
        unpriced_models: unpriced.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests;
