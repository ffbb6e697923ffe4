//! JSON output in ccusage 20's exact shape: keys sorted (serde_json's default
//! map), serde_json's float formatting, ISO times with milliseconds.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::aggregate::{PeriodRow, SessionRow, Totals, Usage};
use crate::blocks::{Block, LimitStatus};
use crate::domain::TokenCounts;

/// `2026-11-20T10:15:30.123Z`.
pub fn iso_ms(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Whole numbers print as integers (blocks' `costUSD`), others as floats.
pub fn json_float(x: f64) -> Value {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.2e18 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The `--token-limit` value a listing is checked against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LimitRequest {
    /// No `--token-limit`: blocks get no limit status.
    None,
    /// `max`: the largest token total of any completed window (none when it is 0).
    Max,
    /// An explicit limit in tokens.
    Tokens(u64),
}

/// `csm blocks --json`: `{"blocks": [...]}`, each block checked against the resolved limit.
pub fn blocks_json(blocks: &[Block], now: Timestamp, limit: LimitRequest) -> Value {
    let limit = match limit {
        LimitRequest::None => None,
        LimitRequest::Max => {
            Some(crate::blocks::max_completed_tokens(blocks, now)).filter(|m| *m > 0)
        }
        LimitRequest::Tokens(n) => Some(n),
    };
    let list: Vec<Value> = blocks.iter().map(|b| block_json(b, now, limit)).collect();
    json!({ "blocks": list })
}

fn block_json(b: &Block, now: Timestamp, limit: Option<u64>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(block_id(b)));
    m.insert("startTime".into(), json!(iso_ms(b.start)));
    m.insert("endTime".into(), json!(iso_ms(b.end)));
    m.insert(
        "actualEndTime".into(),
        b.actual_end.map(iso_ms).map_or(Value::Null, Value::from),
    );
    m.insert("isActive".into(), json!(b.is_active_at(now)));
    m.insert("isGap".into(), json!(b.is_gap));
    m.insert("entries".into(), json!(b.entries));
    m.insert("tokenCounts".into(), block_tokens(&b.tokens));
    m.insert("totalTokens".into(), json!(b.total_tokens()));
    m.insert("costUSD".into(), json_float(b.cost_usd));
    m.insert("models".into(), json!(b.models));
    let rate = b.burn_rate(now);
    m.insert(
        "burnRate".into(),
        rate.map_or(Value::Null, |r| {
            json!({
                "tokensPerMinute": r.tokens_per_minute,
                "tokensPerMinuteForIndicator": r.tokens_per_minute_for_indicator,
                "costPerHour": r.cost_per_hour,
            })
        }),
    );
    let projection = b.projection(now);
    m.insert(
        "projection".into(),
        projection.map_or(Value::Null, |p| {
            json!({
                "totalTokens": p.total_tokens,
                "totalCost": p.total_cost,
                "remainingMinutes": p.remaining_minutes,
            })
        }),
    );
    if let (Some(limit), Some(p)) = (limit, projection) {
        let percent = if limit == 0 {
            Value::Null
        } else {
            json!(p.total_tokens as f64 / limit as f64 * 100.0)
        };
        m.insert(
            "tokenLimitStatus".into(),
            json!({
                "limit": limit,
                "percentUsed": percent,
                "projectedUsage": p.total_tokens,
                "status": LimitStatus::of(p.total_tokens, limit).as_str(),
            }),
        );
    }
    if let Some(reset) = b.usage_limit_reset {
        m.insert("usageLimitResetTime".into(), json!(iso_ms(reset)));
    }
    Value::Object(m)
}

/// The block's id: its start in UTC with milliseconds (`iso_ms`), prefixed `gap-` for a gap.
pub fn block_id(b: &Block) -> String {
    if b.is_gap {
        format!("gap-{}", iso_ms(b.start))
    } else {
        iso_ms(b.start)
    }
}

fn block_tokens(t: &TokenCounts) -> Value {
    json!({
        "inputTokens": t.input_tokens,
        "outputTokens": t.output_tokens,
        "cacheCreationInputTokens": t.cache_creation_input_tokens,
        "cacheReadInputTokens": t.cache_read_input_tokens,
    })
}

fn usage_fields(m: &mut Map<String, Value>, u: &Usage) {
    m.insert("inputTokens".into(), json!(u.tokens.input_tokens));
    m.insert("outputTokens".into(), json!(u.tokens.output_tokens));
    m.insert(
        "cacheCreationTokens".into(),
        json!(u.tokens.cache_creation_input_tokens),
    );
    m.insert(
        "cacheReadTokens".into(),
        json!(u.tokens.cache_read_input_tokens),
    );
    m.insert("totalTokens".into(), json!(u.tokens.total()));
    m.insert("totalCost".into(), json!(u.cost));
    m.insert("modelsUsed".into(), json!(u.models_used));
    let breakdowns: Vec<Value> = u
        .breakdowns
        .iter()
        .map(|b| {
            let mut x = Map::new();
            x.insert("modelName".into(), json!(b.model));
            x.insert("inputTokens".into(), json!(b.tokens.input_tokens));
            x.insert("outputTokens".into(), json!(b.tokens.output_tokens));
            x.insert(
                "cacheCreationTokens".into(),
                json!(b.tokens.cache_creation_input_tokens),
            );
            x.insert(
                "cacheReadTokens".into(),
                json!(b.tokens.cache_read_input_tokens),
            );
            x.insert("cost".into(), json!(b.cost));
            if b.missing_pricing {
                x.insert("missingPricing".into(), json!(true));
            }
            Value::Object(x)
        })
        .collect();
    m.insert("modelBreakdowns".into(), Value::Array(breakdowns));
}

/// The `totals` object of a JSON report: token counts, total tokens, cost in USD and any unpriced models.
pub fn totals_json(t: &Totals) -> Value {
    let mut m = Map::new();
    m.insert("inputTokens".into(), json!(t.tokens.input_tokens));
    m.insert("outputTokens".into(), json!(t.tokens.output_tokens));
    m.insert(
        "cacheCreationTokens".into(),
        json!(t.tokens.cache_creation_input_tokens),
    );
    m.insert(
        "cacheReadTokens".into(),
        json!(t.tokens.cache_read_input_tokens),
    );
    m.insert("totalTokens".into(), json!(t.tokens.total()));
    m.insert("totalCost".into(), json!(t.cost));
    if !t.unpriced_models.is_empty() {
        m.insert("unpricedModels".into(), json!(t.unpriced_models));
    }
    Value::Object(m)
}

/// `daily` / `weekly` / `monthly` listing: `key` names the array and the
/// row field (`date`, `week`, `month`).
pub fn period_json(
    list_key: &str,
    rows: &[PeriodRow],
    totals: &Totals,
    project: Option<&str>,
) -> Value {
    let (field, fmt) = match list_key {
        "monthly" => ("month", "%Y-%m"),
        "weekly" => ("week", "%Y-%m-%d"),
        _ => ("date", "%Y-%m-%d"),
    };
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert(field.into(), json!(r.key.strftime(fmt).to_string()));
            usage_fields(&mut m, &r.usage);
            if let Some(p) = project {
                m.insert("project".into(), json!(p));
            }
            Value::Object(m)
        })
        .collect();
    let mut top = Map::new();
    top.insert(list_key.into(), Value::Array(list));
    top.insert("totals".into(), totals_json(totals));
    Value::Object(top)
}

/// `csm session --json`: one object per session plus the totals.
pub fn sessions_json(rows: &[SessionRow], totals: &Totals) -> Value {
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("sessionId".into(), json!(r.session_id));
            m.insert("projectPath".into(), json!(r.project_path));
            m.insert("firstActivity".into(), json!(iso_ms(r.first_activity)));
            m.insert("lastActivity".into(), json!(iso_ms(r.last_activity)));
            usage_fields(&mut m, &r.usage);
            Value::Object(m)
        })
        .collect();
    json!({ "sessions": list, "totals": totals_json(totals) })
}

/// Pretty-printed like ccusage: two-space indent and a final newline.
pub fn to_pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}
