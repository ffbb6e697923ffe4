//! `csm pricing show|update`.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::Context;
use crate::cli::PricingCommand;
use crate::pricing::{self, ModelPrice, TokenKind};

/// Runs `csm pricing show` or `csm pricing update`; `show` exits 1 when no model matches the filter.
pub fn run(ctx: &Context, cmd: PricingCommand) -> Result<ExitCode> {
    match cmd {
        PricingCommand::Show { model, json } => show(ctx, model.as_deref(), json),
        PricingCommand::Update { url } => {
            let url = url.as_deref().unwrap_or(pricing::DEFAULT_UPDATE_URL);
            let s = pricing::update(url, &ctx.base_dir)?;
            println!(
                "Saved {} Claude prices ({} bytes) to {}{}",
                s.claude_models,
                s.bytes,
                s.path.display(),
                if s.replaced_existing {
                    ", replacing the previous file"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

const KINDS: [(TokenKind, &str); 5] = [
    (TokenKind::Input, "input"),
    (TokenKind::Output, "output"),
    (TokenKind::CacheWrite5m, "cacheWrite5m"),
    (TokenKind::CacheWrite1h, "cacheWrite1h"),
    (TokenKind::CacheRead, "cacheRead"),
];

/// Dollars per million tokens: two decimals, more only where the price has them.
fn per_million(x: f64) -> String {
    let v = x * 1e6;
    let four = format!("{v:.4}");
    let (whole, frac) = four.split_once('.').unwrap_or((&four, ""));
    let frac = frac.trim_end_matches('0');
    format!("${whole}.{frac:0<2}")
}

fn show(ctx: &Context, filter: Option<&str>, as_json: bool) -> Result<ExitCode> {
    let table = crate::engine::load::price_table(&ctx.base_dir)?;
    // A model name as it appears in transcripts resolves like it would in a report.
    let resolved = filter.and_then(|f| table.resolve(f));
    let chosen: Vec<&ModelPrice> = match (filter, resolved) {
        (None, _) => table.models().collect(),
        (Some(_), Some(p)) => vec![p],
        (Some(f), None) => table.models().filter(|m| m.key().contains(f)).collect(),
    };
    if as_json {
        let models: Vec<Value> = chosen
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("model".into(), json!(m.key()));
                for (kind, name) in KINDS {
                    let rate = m.rate(kind);
                    o.insert(format!("{name}PerToken"), json!(rate.base()));
                    let tiers: Vec<Value> = rate
                        .tiers()
                        .iter()
                        .map(|t| json!({"aboveTokens": t.above, "perToken": t.price}))
                        .collect();
                    if !tiers.is_empty() {
                        o.insert(format!("{name}Tiers"), Value::Array(tiers));
                    }
                }
                o.insert("fastMultiplier".into(), json!(m.fast_multiplier()));
                Value::Object(o)
            })
            .collect();
        let v = json!({"source": table.source(), "models": models});
        print!("{}", crate::report::json::to_pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    println!("Prices from {} — USD per million tokens", table.source());
    if let (Some(f), Some(p)) = (filter, resolved) {
        println!("{f} → {}", p.key());
    }
    if chosen.is_empty() {
        println!(
            "No model matches {:?}; its usage is priced at $0.",
            filter.unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    let st = crate::report::table::Style {
        color: ctx.color,
        width: comfy_table::Table::new().width().unwrap_or(120).max(60),
    };
    let mut t = crate::report::table::new_table(
        st,
        &[
            "Model",
            "Input",
            "Output",
            "Cache write 5m",
            "Cache write 1h",
            "Cache read",
            "Fast ×",
        ],
    );
    for m in chosen {
        let mut row = vec![m.key().to_string()];
        for (kind, _) in KINDS {
            let rate = m.rate(kind);
            let mut cell = per_million(rate.base());
            for tier in rate.tiers() {
                cell.push_str(&format!(
                    "\n>{}k: {}",
                    tier.above / 1000,
                    per_million(tier.price)
                ));
            }
            row.push(cell);
        }
        row.push(format!("{}", m.fast_multiplier()));
        t.add_row(row);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn prices_per_million_have_at_least_two_decimals() {
        assert_eq!(super::per_million(0.8e-6), "$0.80");
        assert_eq!(super::per_million(4e-6), "$4.00");
        assert_eq!(super::per_million(0.0375e-6), "$0.0375");
        assert_eq!(super::per_million(3.75e-6), "$3.75");
    }
}
