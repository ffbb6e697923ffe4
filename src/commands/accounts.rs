//! `csm accounts`: the accounts the history store holds, and transcripts
//! under none.

use std::process::ExitCode;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::Context;
use crate::cli::AccountsArgs;
use crate::engine::accounts::{self, Account};
use crate::period::BillingPeriod;
use crate::report::format::thousands;
use crate::report::json::{iso_ms, to_pretty};
use crate::store::Store;

/// Unattributed transcripts listed by path in the table (all in JSON).
const LIST_UNATTRIBUTED: usize = 10;

/// Lists every account: the run's roots are brought up to date first, so
/// their figures are current; other accounts show what the store holds.
pub fn run(ctx: &Context, args: &AccountsArgs) -> Result<ExitCode> {
    if ctx.no_store {
        bail!("`csm accounts` lists what the history store holds; drop --no-store");
    }
    let store = if ctx.roots.resolve().projects_dirs.is_empty() {
        Store::open(&ctx.base_dir)?
    } else {
        match super::open(ctx)?.store {
            Some(s) => s,
            None => Store::open(&ctx.base_dir)?,
        }
    };
    let known = accounts::known(Some(&store), &ctx.config, &ctx.roots)?;
    let unattributed = store.unattributed_files()?;
    if args.json {
        let list: Vec<Value> = known.iter().map(|a| account_json(ctx, a)).collect();
        let v = json!({
            "accounts": list,
            "unattributed": unattributed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        print!("{}", to_pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    if known.is_empty() {
        println!(
            "The history store holds no account yet: run any report (e.g. `csm daily`) to read one."
        );
    }
    let rows: Vec<[String; 8]> = known.iter().map(|a| row(ctx, a)).collect();
    let header = [
        "Account",
        "Config dir",
        "State",
        "Entries",
        "First",
        "Last",
        "Plan",
        "Billing period",
    ]
    .map(String::from);
    if !rows.is_empty() {
        let mut widths = header.clone().map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        for r in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("{}", cells.join("  ").trim_end());
        }
    }
    if !unattributed.is_empty() {
        println!(
            "\n{} transcript(s) under no known account (not counted; name their dir with --claude-dir to count them):",
            unattributed.len()
        );
        for p in unattributed.iter().take(LIST_UNATTRIBUTED) {
            println!("  {}", p.display());
        }
        if unattributed.len() > LIST_UNATTRIBUTED {
            println!("  … and {} more", unattributed.len() - LIST_UNATTRIBUTED);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn period(ctx: &Context, a: &Account) -> Option<BillingPeriod> {
    BillingPeriod::containing(ctx.now, ctx.tz(), a.config(&ctx.config).start_day).ok()
}

fn row(ctx: &Context, a: &Account) -> [String; 8] {
    let date = |t: Option<jiff::Timestamp>| {
        t.map_or_else(
            || "-".into(),
            |t| ctx.tz().to_datetime(t).date().to_string(),
        )
    };
    let stored = a.stored.as_ref();
    [
        a.name.clone(),
        home_relative(ctx, &a.config_dir),
        if a.present { "present" } else { "gone" }.into(),
        stored.map_or_else(|| "-".into(), |s| thousands(s.entries)),
        date(stored.and_then(|s| s.first_entry)),
        date(stored.and_then(|s| s.last_entry)),
        a.identity
            .as_ref()
            .and_then(|i| i.plan.clone())
            .unwrap_or_else(|| "-".into()),
        period(ctx, a).map_or_else(|| "-".into(), |p| p.range_label()),
    ]
}

fn account_json(ctx: &Context, a: &Account) -> Value {
    let stored = a.stored.as_ref();
    let config = a.config(&ctx.config);
    let p = period(ctx, a);
    json!({
        "name": a.name,
        "configDir": a.config_dir.display().to_string(),
        "projectsDir": a.projects_dir.display().to_string(),
        "present": a.present,
        "configured": a.configured.as_ref().map(|c| c.name.clone()),
        "email": a.identity.as_ref().and_then(|i| i.email.clone()),
        "organization": a.identity.as_ref().and_then(|i| i.organization.clone()),
        "plan": a.identity.as_ref().and_then(|i| i.plan.clone()),
        "identityError": a.identity_error,
        "transcripts": stored.map_or(0, |s| s.files),
        "transcriptsPresent": stored.map_or(0, |s| s.files_present),
        "entries": stored.map_or(0, |s| s.entries),
        "firstEntry": stored.and_then(|s| s.first_entry).map(iso_ms),
        "lastEntry": stored.and_then(|s| s.last_entry).map(iso_ms),
        "startDay": config.start_day,
        "sessionsPerPeriod": config.sessions_per_period,
        "planPriceUSD": config.plan_price_usd,
        "periodStart": p.as_ref().map(|p| p.start_date.to_string()),
        "periodEnd": p.as_ref().map(|p| p.last_date().to_string()),
    })
}

/// `~/…` for paths inside the home directory.
fn home_relative(ctx: &Context, p: &std::path::Path) -> String {
    match ctx
        .roots
        .home
        .as_deref()
        .and_then(|h| p.strip_prefix(h).ok())
    {
        Some(rest) => format!("~/{}", rest.display()),
        None => p.display().to_string(),
    }
}
