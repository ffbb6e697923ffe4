//! `blocks`, `daily`, `weekly`, `monthly`, `session`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use comfy_table::{Cell, Color};
use jiff::Timestamp;

use super::Context;
use crate::blocks::{self, Block, BlockFilter};
use crate::cli::{BlocksArgs, Order, ReportArgs, TokenLimitArg, Weekday};
use crate::domain::EntryCost;
use crate::engine::Source;
use crate::pricing::PriceResolver;
use crate::report::aggregate::{self, Period, RowFilter, Usage};
use crate::report::format::{duration_minutes, short_model, thousands, usd};
use crate::report::json::{self, LimitRequest};
use crate::report::table::{self, Style};

/// Which calendar period `csm daily`, `weekly` or `monthly` groups by.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// One row per day in the display time zone.
    Daily,
    /// One row per week, starting on the given weekday.
    Weekly(Weekday),
    /// One row per calendar month.
    Monthly,
}

fn style(ctx: &Context) -> Style {
    let width = comfy_table::Table::new().width().unwrap_or(120).max(60);
    Style {
        color: ctx.color,
        width,
    }
}

/// Runs `csm blocks`: the five-hour windows (or `--session-length` hours) as a table or JSON.
pub fn blocks(ctx: &Context, args: &BlocksArgs) -> Result<ExitCode> {
    let hours = if args.session_length > 0.0 {
        args.session_length
    } else {
        5.0
    };
    let crate::engine::Windows { blocks: all, now } = super::blocks(ctx, hours)?;
    let filter = BlockFilter {
        since: args.filter.since,
        until: args.filter.until,
        descending: args.filter.order == Some(Order::Desc),
        recent: args.recent,
        active_only: args.active,
    };
    let shown = filter.apply(all, || ctx.tz(), now);
    let limit = match args.token_limit {
        None => LimitRequest::None,
        Some(TokenLimitArg::Max) => LimitRequest::Max,
        Some(TokenLimitArg::Tokens(n)) => LimitRequest::Tokens(n),
    };
    if args.filter.json {
        print!(
            "{}",
            json::to_pretty(&json::blocks_json(&shown, now, limit))
        );
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        eprintln!("No Claude usage data found.");
        return Ok(ExitCode::SUCCESS);
    }
    let limit_tokens = match limit {
        LimitRequest::None => None,
        LimitRequest::Max => Some(blocks::max_completed_tokens(&shown, now)).filter(|m| *m > 0),
        LimitRequest::Tokens(n) => Some(n),
    };
    print_blocks_table(ctx, &shown, limit_tokens, now);
    Ok(ExitCode::SUCCESS)
}

fn print_blocks_table(ctx: &Context, shown: &[Block], limit: Option<u64>, now: Timestamp) {
    let st = style(ctx);
    let mut headers = vec!["Window Start", "Duration/Status", "Models", "Tokens"];
    if limit.is_some() {
        headers.push("% of Limit");
    }
    headers.push("Cost (USD)");
    let mut t = table::new_table(st, &headers);
    for b in shown {
        let start = ctx
            .tz()
            .to_datetime(b.start)
            .strftime("%Y-%m-%d %H:%M")
            .to_string();
        let (status, models, tokens, pct, cost) = if b.is_gap {
            let mins = b.end.duration_since(b.start).as_mins();
            (
                format!("gap ({})", duration_minutes(mins)),
                String::new(),
                "-".to_string(),
                "-".to_string(),
                "-".to_string(),
            )
        } else {
            let status = if b.is_current_at(now) {
                let left = b.end.duration_since(now).as_mins();
                format!("ACTIVE ({} left)", duration_minutes(left))
            } else {
                let used = b
                    .actual_end
                    .unwrap_or(b.start)
                    .duration_since(b.start)
                    .as_mins();
                duration_minutes(used)
            };
            let models = b
                .models
                .iter()
                .map(|m| format!("- {}", short_model(m)))
                .collect::<Vec<_>>()
                .join("\n");
            let pct = limit
                .map(|l| format!("{:.1}%", b.total_tokens() as f64 / l.max(1) as f64 * 100.0))
                .unwrap_or_default();
            (
                status,
                models,
                thousands(b.total_tokens()),
                pct,
                usd(b.cost_usd),
            )
        };
        let mut row = vec![
            Cell::new(start),
            Cell::new(&status),
            Cell::new(models),
            Cell::new(tokens),
        ];
        if limit.is_some() {
            row.push(Cell::new(pct));
        }
        row.push(Cell::new(cost));
        if b.is_current_at(now) && st.color {
            row = row.into_iter().map(|c| c.fg(Color::Green)).collect();
        } else if b.is_gap && st.color {
            row = row.into_iter().map(|c| c.fg(Color::DarkGrey)).collect();
        }
        t.add_row(row);
    }
    println!("{t}");
    if let Some(b) = shown.iter().find(|b| b.is_current_at(now))
        && let Some(p) = b.projection(now)
    {
        let rate = b.burn_rate(now).map(|r| r.tokens_per_minute).unwrap_or(0.0);
        println!(
            "Active window: {} tokens, {} so far; {} tokens/min (window average, all kinds);\nprojected {} tokens, {} by {}",
            thousands(b.total_tokens()),
            usd(b.cost_usd),
            thousands(rate.round().max(0.0) as u64),
            thousands(p.total_tokens),
            usd(p.total_cost),
            ctx.tz().to_datetime(b.end).strftime("%H:%M"),
        );
    }
}

fn row_filter(ctx: &Context, args: &ReportArgs) -> RowFilter {
    let _ = ctx;
    RowFilter {
        since: args.filter.since,
        until: args.filter.until,
        descending: args.filter.order == Some(Order::Desc),
    }
}

fn ensure_native_source(ctx: &Context, what: &str) -> Result<()> {
    if ctx.source == Source::Ccusage {
        bail!(
            "--source ccusage gives 5-hour windows only; `csm {what}` reads transcripts (drop --source)"
        );
    }
    Ok(())
}

/// Runs `csm daily`, `weekly` or `monthly`: usage grouped by `kind`, as a table or JSON.
pub fn periods(ctx: &Context, args: &ReportArgs, kind: Kind) -> Result<ExitCode> {
    let (list_key, period, first_header) = match kind {
        Kind::Daily => ("daily", Period::Day, "Date"),
        Kind::Weekly(w) => ("weekly", Period::Week(weekday(w)), "Week"),
        Kind::Monthly => ("monthly", Period::Month, "Month"),
    };
    ensure_native_source(ctx, list_key)?;
    let (loaded, costs) = priced_entries(ctx, args)?;
    let rows = aggregate::period_rows(
        &loaded.entries,
        &costs,
        ctx.tz(),
        period,
        &row_filter(ctx, args),
    );
    let totals = aggregate::totals(rows.iter().map(|r| &r.usage));
    if args.filter.json {
        let project = if list_key == "daily" {
            args.project.as_deref()
        } else {
            None
        };
        print!(
            "{}",
            json::to_pretty(&json::period_json(list_key, &rows, &totals, project))
        );
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("No usage data found.");
        return Ok(ExitCode::SUCCESS);
    }
    let st = style(ctx);
    let mut t = table::new_table(st, &table::usage_headers(first_header, st));
    let fmt = if matches!(kind, Kind::Monthly) {
        "%Y-%m"
    } else {
        "%Y-%m-%d"
    };
    for r in &rows {
        add_usage_rows(
            &mut t,
            r.key.strftime(fmt).to_string(),
            &r.usage,
            args.breakdown,
            st,
        );
    }
    finish_table(t, &totals, st)
}

/// Runs `csm session`: usage grouped by Claude Code session, as a table or JSON.
pub fn sessions(ctx: &Context, args: &ReportArgs) -> Result<ExitCode> {
    ensure_native_source(ctx, "session")?;
    let (loaded, costs) = priced_entries(ctx, args)?;
    let rows = aggregate::session_rows(&loaded.entries, &costs, ctx.tz(), &row_filter(ctx, args));
    let totals = aggregate::totals(rows.iter().map(|r| &r.usage));
    if args.filter.json {
        print!("{}", json::to_pretty(&json::sessions_json(&rows, &totals)));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("No usage data found.");
        return Ok(ExitCode::SUCCESS);
    }
    let st = style(ctx);
    let mut t = table::new_table(st, &table::usage_headers("Session", st));
    for r in &rows {
        let last = ctx
            .tz()
            .to_datetime(r.last_activity)
            .strftime("%Y-%m-%d %H:%M");
        let short_id: String = r.session_id.chars().take(8).collect();
        let more = if r.session_id.chars().count() > 8 {
            "…"
        } else {
            ""
        };
        let label = format!("{}\n{short_id}{more}  {last}", r.project_path);
        add_usage_rows(&mut t, label, &r.usage, args.breakdown, st);
    }
    finish_table(t, &totals, st)
}

/// The run's entries (through the store unless `--no-store`) with their
/// costs under the chosen mode.
fn priced_entries(
    ctx: &Context,
    args: &ReportArgs,
) -> Result<(crate::engine::load::Loaded, Vec<EntryCost>)> {
    let loaded = super::load(ctx, args.project.as_deref())?;
    let table = crate::engine::load::price_table(&ctx.base_dir)?;
    let mut resolver = PriceResolver::new(&table);
    let costs = crate::pricing::costs(&loaded.entries, ctx.mode, &mut resolver);
    if ctx.debug {
        super::report_unknown_models(&resolver);
    }
    Ok((loaded, costs))
}

/// One row of a usage table, with its per-model rows under `--breakdown`.
fn add_usage_rows(
    t: &mut comfy_table::Table,
    label: String,
    u: &Usage,
    breakdown: bool,
    st: Style,
) {
    t.add_row(table::usage_cells(label, u, st));
    if breakdown {
        for b in table::breakdown_rows(u, st) {
            t.add_row(b);
        }
    }
}

/// Totals row, the table itself, and a note about models without prices.
fn finish_table(
    mut t: comfy_table::Table,
    totals: &aggregate::Totals,
    st: Style,
) -> Result<ExitCode> {
    t.add_row(table::totals_cells(totals, st));
    println!("{t}");
    warn_unpriced(&totals.unpriced_models);
    Ok(ExitCode::SUCCESS)
}

fn warn_unpriced(models: &[String]) {
    if !models.is_empty() {
        eprintln!(
            "note: no price known for {}; their cost is counted as $0 (try `csm pricing update`)",
            models.join(", ")
        );
    }
}

fn weekday(w: Weekday) -> jiff::civil::Weekday {
    use jiff::civil::Weekday as J;
    match w {
        Weekday::Sunday => J::Sunday,
        Weekday::Monday => J::Monday,
        Weekday::Tuesday => J::Tuesday,
        Weekday::Wednesday => J::Wednesday,
        Weekday::Thursday => J::Thursday,
        Weekday::Friday => J::Friday,
        Weekday::Saturday => J::Saturday,
    }
}
