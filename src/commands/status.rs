//! `csm status`: one snapshot for scripts, status bars and prompts, read from
//! the daemon's `monitor_data.json` when a daemon runs (or `--data-file`),
//! else computed in this process.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::json;

use super::Context;
use crate::cli::{StatusArgs, StatusFormat};
use crate::daemon::instance::{Liveness, probe};
use crate::engine::Clock;
use crate::engine::feed::{StoreFeed, TranscriptFeed, UsageFeed};
use crate::report::format::{day_hh_mm, duration_minutes, hh_mm, usd};
use crate::snapshot::{self, Snapshot};

/// A daemon snapshot older than this is flagged (the daemon rewrites it
/// every minute).
pub const STALE_AFTER_SECS: i64 = 5 * 60;

/// Runs `csm status`: prints one snapshot in the chosen format; exit 1 when no Claude Code data folder exists (and no `--data-file`).
pub fn run(ctx: Context, args: &StatusArgs, clock: Clock) -> Result<ExitCode> {
    let now = clock.now();
    let tz = ctx.tz().clone();
    // No data folder at all: say where csm looked, print what the store
    // still knows, and fail so scripts notice.
    let roots = ctx.roots.resolve();
    // With several accounts covered, theirs are the data folders.
    let none_on_disk = if crate::engine::accounts::covers_several(&ctx.settings) {
        ctx.config
            .accounts
            .iter()
            .all(|a| !crate::engine::accounts::configured_projects_dir(a, &ctx.roots).is_dir())
    } else {
        roots.projects_dirs.is_empty()
    };
    let missing = args.data_file.is_none() && none_on_disk;
    let snap = load(ctx, args, now)?;
    if missing {
        // The engine's words, as the dashboard shows them.
        let why = snap
            .notice
            .clone()
            .or_else(|| crate::engine::feed::no_data_notice(&roots, false));
        if let Some(why) = why {
            eprintln!("csm: {why}");
        }
    }
    // One line per account when several are covered.
    let each = |f: &dyn Fn(&Snapshot) -> String, sep: &str| match snap.accounts.as_slice() {
        [] => f(&snap),
        all => all
            .iter()
            .map(|a| format!("{}: {}", account_name(a), f(a)))
            .collect::<Vec<_>>()
            .join(sep),
    };
    let out = match args.format {
        StatusFormat::Json => snapshot::to_json(&snap),
        StatusFormat::Text => format!("{}\n", each(&|s| text(s, now, &tz), "\n")),
        StatusFormat::Tmux => format!("{}\n", each(&|s| tmux(s, now), " │ ")),
        StatusFormat::Waybar => format!("{}\n", waybar(&snap, now, &tz)),
    };
    print!("{out}");
    Ok(if missing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The daemon's snapshot when it is live (or the file named), else one
/// computed now.
pub fn load(ctx: Context, args: &StatusArgs, now: Timestamp) -> Result<Snapshot> {
    if let Some(path) = &args.data_file {
        return Ok(snapshot::read(path)?);
    }
    if let Liveness::Running { .. } = probe(&ctx.base_dir) {
        match snapshot::read(&ctx.base_dir.join(snapshot::FILE_NAME)) {
            Ok(s) => return Ok(s),
            // Starting up, or an incompatible daemon: compute here instead.
            Err(e) => tracing::debug!("daemon snapshot unusable: {e}"),
        }
    }
    in_process(ctx, now)
}

/// The snapshot computed in this process (no daemon): with several
/// accounts configured, one entry per account.
pub fn in_process(ctx: Context, now: Timestamp) -> Result<Snapshot> {
    let watched = crate::engine::accounts::watched(&ctx.settings);
    if watched.is_empty() {
        return one_account(ctx.settings, now);
    }
    let mut entries = Vec::with_capacity(watched.len());
    for w in watched {
        let snap = one_account(w.settings, now).with_context(|| format!("account {}", w.name))?;
        entries.push(snapshot::named(snap, &w.name, &w.config_dir));
    }
    snapshot::combine(entries).context("no account to report on")
}

fn one_account(settings: crate::engine::Settings, now: Timestamp) -> Result<Snapshot> {
    let kept = crate::engine::kept_maxima(&settings.base_dir);
    let ctx = Arc::new(settings);
    let mut feed: Box<dyn UsageFeed> = if ctx.no_store {
        Box::new(TranscriptFeed::new(Arc::clone(&ctx), kept))
    } else {
        Box::new(StoreFeed::new(Arc::clone(&ctx), kept))
    };
    feed.update(true, now)?;
    let (_, _, snap) = snapshot::from_feed(feed.as_ref(), &ctx, now, "in-process")
        .context("cannot compute the billing period")?;
    Ok(snap)
}

fn account_name(s: &Snapshot) -> &str {
    s.account.as_ref().map_or("", |a| a.name.as_str())
}

/// Seconds since the daemon computed the snapshot, when that is too long ago.
fn stale_for(s: &Snapshot, now: Timestamp) -> Option<i64> {
    let age = now.duration_since(s.last_update).as_secs();
    (s.source == "daemon" && age > STALE_AFTER_SECS).then_some(age)
}

fn percent(s: &Snapshot) -> Option<f64> {
    s.active_block.as_ref().and_then(|a| a.percent_of_limit)
}

fn minutes_left(s: &Snapshot, now: Timestamp) -> Option<i64> {
    s.active_block
        .as_ref()
        .map(|a| a.end_time.duration_since(now).as_secs().max(0) / 60)
}

fn level(pct: f64) -> &'static str {
    crate::report::format::Level::of(pct).as_str()
}

fn sessions(s: &Snapshot) -> String {
    if s.period.sessions_over > 0 {
        format!(
            "sessions {}/{} (over by {})",
            s.period.sessions_used, s.sessions_limit, s.period.sessions_over
        )
    } else {
        format!(
            "sessions {}/{} ({} left)",
            s.period.sessions_used, s.sessions_limit, s.sessions_left
        )
    }
}

/// Claude Code's own figures: `5h 42% (resets 19:00) · wk 63% (resets Mon 08:00)`,
/// `· stale 11m` when no capture came for 10 minutes.
fn official(s: &Snapshot, now: Timestamp, tz: &TimeZone) -> Option<String> {
    let o = s.official_limits.as_ref()?;
    let bar = |name: &str, b: &Option<snapshot::OfficialBarInfo>, day: bool| {
        b.as_ref().map(|b| {
            let reset = b.resets_at.map_or_else(String::new, |r| {
                let at = if day { day_hh_mm(r, tz) } else { hh_mm(r, tz) };
                format!(" (resets {at})")
            });
            format!("{name} {:.0}%{reset}", b.used_percent)
        })
    };
    let mut parts: Vec<String> = [
        bar("5h", &o.five_hour, false),
        bar("wk", &o.seven_day, true),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return None;
    }
    if o.stale || crate::ingest::claude::limits::is_stale(o.captured_at, now) {
        let age = now.duration_since(o.captured_at).as_secs().max(0) / 60;
        parts.push(format!("stale {}", duration_minutes(age)));
    }
    Some(parts.join(" · "))
}

/// `window 42% · 2h 14m left · $12.30 | 5h 40% (resets 19:00) · wk 63% (resets Mon 08:00) | sessions 12/50 (38 left) · 9d left · period $456.78`
pub fn text(s: &Snapshot, now: Timestamp, tz: &TimeZone) -> String {
    let mut parts = Vec::new();
    if let Some(age) = stale_for(s, now) {
        parts.push(format!("[stale {}]", duration_minutes(age / 60)));
    }
    let window = match &s.active_block {
        Some(a) => {
            let pct = percent(s).map_or_else(String::new, |p| format!(" {p:.0}%"));
            format!(
                "window{pct} · {} left · {}",
                duration_minutes(minutes_left(s, now).unwrap_or(0)),
                usd(a.cost_usd)
            )
        }
        None => "no active window".into(),
    };
    parts.push(window);
    if let Some(o) = official(s, now, tz) {
        parts.push("|".into());
        parts.push(o);
    }
    parts.push("|".into());
    parts.push(format!(
        "{} · {}d left · period {}",
        sessions(s),
        s.period.days_left,
        usd(s.period.cost_usd)
    ));
    parts.join(" ")
}

/// A tmux status-line segment with tmux colour markup.
pub fn tmux(s: &Snapshot, now: Timestamp) -> String {
    let colour = |pct: f64| match level(pct) {
        "critical" => "red",
        "warning" => "yellow",
        _ => "green",
    };
    let mut out = String::new();
    if stale_for(s, now).is_some() {
        out.push_str("#[fg=colour244]stale#[default] ");
    }
    match (&s.active_block, percent(s)) {
        (Some(_), Some(p)) => out.push_str(&format!(
            "#[fg={}]{p:.0}%#[default] {}",
            colour(p),
            duration_minutes(minutes_left(s, now).unwrap_or(0)).replace(' ', "")
        )),
        (Some(_), None) => out.push_str(&duration_minutes(minutes_left(s, now).unwrap_or(0))),
        (None, _) => out.push_str("idle"),
    }
    out.push_str(&format!(
        " · {} left · {}",
        s.sessions_left,
        usd(s.period.cost_usd)
    ));
    out
}

/// A Waybar custom module's JSON (`return-type: json`).
pub fn waybar(s: &Snapshot, now: Timestamp, tz: &TimeZone) -> String {
    let pct = percent(s);
    let text = match &s.active_block {
        Some(_) => format!(
            "{}{}",
            pct.map_or_else(String::new, |p| format!("{p:.0}% · ")),
            duration_minutes(minutes_left(s, now).unwrap_or(0))
        ),
        None => format!("{} left", s.sessions_left),
    };
    let class = if stale_for(s, now).is_some() {
        "stale"
    } else if s.active_block.is_none() {
        "idle"
    } else {
        level(pct.unwrap_or(0.0))
    };
    let v = json!({
        "text": text,
        "alt": class,
        "class": class,
        "percentage": pct.map_or(0, |p| p.round().clamp(0.0, 100.0) as u64),
        "tooltip": match s.accounts.as_slice() {
            [] => self::text(s, now, tz).replace(" | ", "\n"),
            all => all
                .iter()
                .map(|a| format!("{}\n{}", account_name(a), self::text(a, now, tz).replace(" | ", "\n")))
                .collect::<Vec<_>>()
                .join("\n\n"),
        },
    });
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn one_line_formats() {
        let (_, _, s) = crate::snapshot::tests::sample();
        let now = t("2026-11-20T16:40:00Z");
        assert_eq!(
            text(&s, now, &TimeZone::UTC),
            "window 3% · 2h 20m left · $0.75 | sessions 3/50 (47 left) · 11d left · period $2.50"
        );
        assert_eq!(
            tmux(&s, now),
            "#[fg=green]3%#[default] 2h20m · 47 left · $2.50"
        );
        let w: serde_json::Value = serde_json::from_str(&waybar(&s, now, &TimeZone::UTC)).unwrap();
        assert_eq!(w["text"], "3% · 2h 20m");
        assert_eq!(w["class"], "ok");
        assert_eq!(w["percentage"], 3);
        assert!(w["tooltip"].as_str().unwrap().contains('\n'));
    }

    #[test]
    fn an_old_daemon_snapshot_is_flagged_stale() {
        let (_, _, s) = crate::snapshot::tests::sample();
        let later = t("2026-11-20T16:47:00Z");
        assert!(text(&s, later, &TimeZone::UTC).starts_with("[stale 7m] window 3% · 2h 13m left"));
        assert!(tmux(&s, later).starts_with("#[fg=colour244]stale"));
        let w: serde_json::Value =
            serde_json::from_str(&waybar(&s, later, &TimeZone::UTC)).unwrap();
        assert_eq!(w["class"], "stale");
        // Computed in-process, it is as fresh as the command.
        let mut own = s.clone();
        own.source = "in-process".into();
        assert!(!text(&own, later, &TimeZone::UTC).contains("stale"));
    }
}
