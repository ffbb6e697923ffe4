//! `csm period`: the billing period.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use super::Context;
use crate::cli::PeriodArgs;
use crate::config::TokenLimit;
use crate::period::{self, PeriodSettings, PeriodSummary};
use crate::report::format::{thousands, usd};
use crate::report::json::{iso_ms, json_float, to_pretty};
use crate::report::table;

/// Runs `csm period`: the current billing period (and `--history` past ones) as text or JSON.
pub fn run(ctx: &Context, args: &PeriodArgs) -> Result<ExitCode> {
    // Past periods come from the history store, which keeps windows whose
    // transcripts Claude Code has deleted (with --no-store, only what is on disk).
    let crate::engine::Windows { blocks, now } =
        super::blocks(ctx, crate::store::STORED_WINDOW_HOURS)?;
    let settings = PeriodSettings::from_config(&ctx.config);
    let n = args.history.map_or(0, usize::from);
    let summaries = period::history(&blocks, ctx.now, ctx.tz(), &settings, n)
        .map_err(|e| anyhow!("cannot compute the billing period: {e}"))?;
    let kept = crate::engine::kept_maxima(&ctx.base_dir);
    let (maxima, limit) = period::limits(&blocks, kept, ctx.config.token_limit, now);
    let active = crate::blocks::current(&blocks, now);
    let Some((current, past)) = summaries.split_first() else {
        return Err(anyhow!("no billing period"));
    };
    if args.json {
        let mut v = json!({
            "period": summary_json(current),
            "timezone": ctx.tz().iana_name().unwrap_or("local"),
            "startDay": settings.start_day,
            "planPriceUSD": settings.plan_price_usd,
            "maxTokens": maxima.tokens,
            "maxBlockCostUSD": json_float(maxima.cost_usd),
            "tokenLimit": {
                "setting": match ctx.config.token_limit {
                    TokenLimit::Max => json!("max"),
                    TokenLimit::P90 => json!("p90"),
                    TokenLimit::Fixed(n) => json!(n),
                },
                "tokens": limit.tokens,
                "source": limit.source.label(),
            },
            "activeBlock": active.map_or(Value::Null, |b| json!({
                "id": iso_ms(b.start),
                "startTime": iso_ms(b.start),
                "endTime": iso_ms(b.end),
                "totalTokens": b.total_tokens(),
                "costUSD": json_float(b.cost_usd),
            })),
        });
        if args.history.is_some()
            && let Some(m) = v.as_object_mut()
        {
            m.insert(
                "history".into(),
                Value::Array(past.iter().map(summary_json).collect()),
            );
        }
        print!("{}", to_pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    let p = current;
    let tz_name = ctx.tz().iana_name().unwrap_or("local time");
    println!(
        "Billing period  {} ({tz_name}, starts on day {})",
        p.period.range_label(),
        settings.start_day
    );
    let s = &p.sessions;
    let sessions = if s.over > 0 {
        format!("{} used · over by {} (limit {})", s.used, s.over, s.limit)
    } else {
        format!("{} used · {} left of {}", s.used, s.left, s.limit)
    };
    println!("Sessions        {sessions}");
    println!(
        "Days left       {} ({:.1} sessions/day)",
        p.days_left, p.avg_sessions_per_day
    );
    let mut cost = format!("{} at API prices", usd(p.cost_usd));
    if let (Some(r), Some(price)) = (p.value_ratio, settings.plan_price_usd) {
        cost.push_str(&format!(" ({r:.1}× the {} plan)", usd(price)));
    }
    println!("Cost            {cost}");
    println!("Tokens          {}", thousands(p.total_tokens));
    println!(
        "Max window      {} tokens · {} (largest cost)",
        thousands(maxima.tokens),
        usd(maxima.cost_usd)
    );
    match limit.tokens {
        Some(t) => println!(
            "Token limit     {} ({})",
            thousands(t),
            limit.source.describe()
        ),
        None => println!("Token limit     none yet (no completed window)"),
    }
    if let Some(b) = active {
        println!(
            "Active window   {} tokens · {} · resets {}",
            thousands(b.total_tokens()),
            usd(b.cost_usd),
            ctx.tz().to_datetime(b.end).strftime("%H:%M")
        );
    }
    if !past.is_empty() {
        let width = comfy_table::Table::new().width().unwrap_or(120).max(60);
        let st = table::Style {
            color: ctx.color,
            width,
        };
        let mut t = table::new_table(st, &["Period", "Sessions", "Tokens", "Cost (USD)"]);
        for h in summaries.iter() {
            let s = &h.sessions;
            let sessions = if s.over > 0 {
                format!("{} of {} (over by {})", s.used, s.limit, s.over)
            } else {
                format!("{} of {}", s.used, s.limit)
            };
            t.add_row(vec![
                h.period.range_label(),
                sessions,
                thousands(h.total_tokens),
                usd(h.cost_usd),
            ]);
        }
        println!();
        println!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_json(s: &PeriodSummary) -> Value {
    json!({
        "start": iso_ms(s.period.start),
        "end": iso_ms(s.period.end),
        "startDate": s.period.start_date.to_string(),
        "endDate": s.period.end_date.to_string(),
        "lastDate": s.period.last_date().to_string(),
        "sessions": {
            "used": s.sessions.used,
            "limit": s.sessions.limit,
            "left": s.sessions.left,
            "over": s.sessions.over,
        },
        "daysLeft": s.days_left,
        "avgSessionsPerDay": s.avg_sessions_per_day,
        "costUSD": json_float(s.cost_usd),
        "totalTokens": s.total_tokens,
        "valueRatio": s.value_ratio,
    })
}
