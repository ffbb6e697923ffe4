//! `csm daemon run|install|uninstall|status|stop`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum as _;
use jiff::Timestamp;
use serde_json::json;

use super::Context;
use crate::cli::{DaemonCommand, GlobalArgs, ManagerArg, ServiceArgs};
use crate::daemon::instance::{Liveness, probe};
use crate::daemon::service::{self, Manager, RealSystem, ServiceSpec, Stopped};
use crate::engine::Clock;
use crate::engine::Source;
use crate::env::Env;
use crate::report::format::duration_minutes;
use crate::snapshot;
use crate::snapshot::Snapshot;

/// Runs a `csm daemon` subcommand; `status` and `stop` exit 1 when no daemon runs.
pub fn run(
    ctx: Context,
    cmd: &DaemonCommand,
    clock: Clock,
    global: &GlobalArgs,
    env: &Env,
) -> Result<ExitCode> {
    match cmd {
        DaemonCommand::Run => {
            if ctx.source == Source::Ccusage {
                bail!("the daemon reads transcripts; drop --source ccusage");
            }
            if ctx.no_store {
                bail!("the daemon keeps the history store current; drop --no-store");
            }
            let alerts = AlertsHook {
                notifiers: std::collections::HashMap::new(),
            };
            let debug = ctx.debug;
            crate::daemon::run::<Snapshot>(ctx.settings, clock, vec![Box::new(alerts)], debug)
        }
        DaemonCommand::Install(args) => install(&ctx, args, global, env),
        DaemonCommand::Uninstall(args) => uninstall(&ctx, args, global, env),
        DaemonCommand::Status { json } => status(&ctx, *json),
        DaemonCommand::Stop => {
            match service::stop(&ctx.base_dir, std::time::Duration::from_secs(15))
                .with_context(|| format!("cannot stop the daemon of {}", ctx.base_dir.display()))?
            {
                Stopped::Stopped(pid) => {
                    println!("csm daemon stopped (pid {pid})");
                    Ok(ExitCode::SUCCESS)
                }
                Stopped::NotRunning => {
                    println!("no csm daemon running for {}", ctx.base_dir.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// How the service will start the daemon: this executable with the flags
/// and environment that locate the same data and base directory.
fn spec(ctx: &Context, global: &GlobalArgs, env: &Env) -> Result<ServiceSpec> {
    let exe = std::env::current_exe().context("cannot find csm's own path")?;
    let cwd = std::env::current_dir().ok();
    let absolute = |p: &Path| -> PathBuf {
        match &cwd {
            Some(c) if p.is_relative() => c.join(p),
            _ => p.to_path_buf(),
        }
    };
    let mut args: Vec<OsString> = Vec::new();
    for d in &global.claude_dir {
        args.push("--claude-dir".into());
        args.push(absolute(d).into_os_string());
    }
    if let Some(c) = &global.config {
        args.push("--config".into());
        args.push(absolute(c).into_os_string());
    }
    if let Some(tz) = &global.timezone {
        args.push("--timezone".into());
        args.push(tz.into());
    }
    if let Some(d) = global.start_day {
        args.push("--start-day".into());
        args.push(d.to_string().into());
    }
    if let Some(s) = global.sessions {
        args.push("--sessions".into());
        args.push(s.to_string().into());
    }
    if let Some(m) = global.mode.and_then(|m| m.to_possible_value()) {
        args.push("--mode".into());
        args.push(m.get_name().into());
    }
    let mut vars = Vec::new();
    let mut keep = |k: &str, v: &Option<String>| {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            vars.push((k.to_string(), v.to_string()));
        }
    };
    keep("CSM_HOME", &env.csm_home);
    keep("XDG_CONFIG_HOME", &env.xdg_config_home);
    keep("CLAUDE_CONFIG_DIR", &env.claude_config_dir);
    let home = env
        .home
        .clone()
        .context("cannot find the home directory (HOME)")?;
    let uid = crate::sys::user_id();
    Ok(ServiceSpec {
        exe,
        args,
        env: vars,
        xdg_config_home: env
            .xdg_config_home
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        home,
        base_dir: ctx.base_dir.clone(),
        uid,
    })
}

fn manager(args: &ServiceArgs, sys: &mut RealSystem) -> Result<Manager> {
    Ok(match args.manager {
        Some(ManagerArg::Launchd) => Manager::Launchd,
        Some(ManagerArg::Systemd) => Manager::Systemd,
        Some(ManagerArg::Cron) => Manager::Cron,
        None => service::detect(sys).context(
            "no service manager found (no systemd user session, no crontab): start `csm daemon run` from your session's startup instead",
        )?,
    })
}

fn install(ctx: &Context, args: &ServiceArgs, global: &GlobalArgs, env: &Env) -> Result<ExitCode> {
    let spec = spec(ctx, global, env)?;
    let mut sys = RealSystem;
    let m = manager(args, &mut sys)?;
    let plan = service::plan_install(m, &spec);
    if args.dry_run {
        print!("{}", plan.describe());
        return Ok(ExitCode::SUCCESS);
    }
    service::apply(&plan, &mut sys)?;
    println!(
        "csm daemon installed with {} and started; `csm daemon status` shows it",
        m.name()
    );
    Ok(ExitCode::SUCCESS)
}

fn uninstall(
    ctx: &Context,
    args: &ServiceArgs,
    global: &GlobalArgs,
    env: &Env,
) -> Result<ExitCode> {
    let spec = spec(ctx, global, env)?;
    let mut sys = RealSystem;
    let managers = match args.manager {
        Some(_) => vec![manager(args, &mut sys)?],
        None => service::installed(&spec, &mut sys),
    };
    if managers.is_empty() {
        println!("csm daemon is not installed as a service");
        return Ok(ExitCode::SUCCESS);
    }
    for m in managers {
        let plan = service::plan_uninstall(m, &spec);
        if args.dry_run {
            print!("{}", plan.describe());
            continue;
        }
        service::apply(&plan, &mut sys)?;
        println!("csm daemon removed from {}", m.name());
    }
    Ok(ExitCode::SUCCESS)
}

fn status(ctx: &Context, as_json: bool) -> Result<ExitCode> {
    let base = &ctx.base_dir;
    let live = probe(base);
    let snap_path = base.join(snapshot::FILE_NAME);
    let snap = snapshot::read(&snap_path).ok();
    let now = Timestamp::now();
    let pid = match live {
        Liveness::Running { pid } => pid,
        Liveness::Stopped => None,
    };
    // The snapshot's daemon section describes this daemon only if the pids agree.
    let info = snap
        .as_ref()
        .and_then(|s| s.daemon.clone())
        .filter(|d| pid == Some(d.pid));
    let spec_home = ctx.roots.home.clone();
    let mut services = Vec::new();
    if let Some(home) = &spec_home {
        let spec = ServiceSpec {
            exe: PathBuf::new(),
            args: Vec::new(),
            env: Vec::new(),
            home: home.clone(),
            xdg_config_home: ctx.roots.xdg_config_home.clone(),
            base_dir: base.clone(),
            uid: 0,
        };
        if spec.unit_path().exists() {
            services.push(format!("systemd ({})", spec.unit_path().display()));
        }
        if spec.plist_path().exists() {
            services.push(format!("launchd ({})", spec.plist_path().display()));
        }
    }
    let running = matches!(live, Liveness::Running { .. });
    if as_json {
        let v = json!({
            "running": running,
            "pid": pid,
            "baseDir": base,
            "startedAt": info.as_ref().map(|d| snapshot::time_string(d.started_at)),
            "uptimeSeconds": info.as_ref().map(|d| now.duration_since(d.started_at).as_secs().max(0)),
            "lastUpdate": snap.as_ref().map(|s| snapshot::time_string(s.last_update)),
            "lastChange": info.as_ref().and_then(|d| d.last_change).map(snapshot::time_string),
            "consecutiveFailures": info.as_ref().map_or(0, |d| d.consecutive_failures),
            "lastError": info.as_ref().and_then(|d| d.last_error.clone()),
            "snapshot": snap_path,
            "log": base.join(crate::daemon::logfile::FILE_NAME),
            "services": services,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        match (live, &info) {
            (Liveness::Running { pid }, Some(d)) => {
                let up = now.duration_since(d.started_at).as_mins().max(0);
                println!(
                    "csm daemon: running (pid {}, up {})",
                    pid.unwrap_or(d.pid),
                    duration_minutes(up)
                );
            }
            (Liveness::Running { pid }, None) => println!(
                "csm daemon: running (pid {})",
                pid.map_or_else(|| "unknown".into(), |p| p.to_string())
            ),
            (Liveness::Stopped, _) => println!("csm daemon: not running"),
        }
        println!("base dir:    {}", base.display());
        match &snap {
            Some(s) => {
                let age = now.duration_since(s.last_update).as_secs().max(0);
                println!(
                    "snapshot:    {} (updated {} ago)",
                    snap_path.display(),
                    ago(age)
                );
            }
            None => println!("snapshot:    none yet ({})", snap_path.display()),
        }
        if let Some(d) = &info {
            if let Some(t) = d.last_change {
                let age = now.duration_since(t).as_secs().max(0);
                println!("last change: {} ago", ago(age));
            }
            match (&d.last_error, d.consecutive_failures) {
                (Some(e), n) if n > 0 => println!("errors:      {n} in a row, last: {e}"),
                (Some(e), _) => println!("errors:      none now (earlier: {e})"),
                (None, _) => println!("errors:      none"),
            }
        }
        if services.is_empty() {
            println!("service:     not installed (`csm daemon install`)");
        } else {
            println!("service:     {}", services.join(", "));
        }
        println!(
            "log:         {}",
            base.join(crate::daemon::logfile::FILE_NAME).display()
        );
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn ago(secs: i64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else {
        duration_minutes(secs / 60)
    }
}

/// The daemon's share of notifications: the rules are evaluated
/// after every update and what is due is sent; the snapshot lists the
/// alerts sent lately.
struct AlertsHook {
    /// One per account (the key is its name; "" when the daemon watches
    /// one): each account's alerts are its own and name it.
    notifiers: std::collections::HashMap<String, crate::notify::Notifier>,
}

impl crate::daemon::UpdateHook<Snapshot> for AlertsHook {
    fn after_update(&mut self, update: &mut crate::daemon::Update<'_, Snapshot>) {
        let name = update.account.map(|a| a.name.clone()).unwrap_or_default();
        let settings = update.settings;
        // The account's settings name it: its notifier's alerts do too.
        let notifier = self
            .notifiers
            .entry(name)
            .or_insert_with(|| crate::notify::Notifier::for_context(settings, Vec::new()));
        let limit = update.data.and_then(|d| d.limit.tokens);
        let input = crate::notify::AlertInput::from_blocks(update.blocks, limit, update.now)
            .with_official(notifier.official_limits())
            .with_source_failures(
                update.consecutive_failures,
                update.error.map(str::to_string),
            );
        notifier.evaluate_and_send(&input, update.now);
        if let Some(snapshot) = update.snapshot.as_deref_mut() {
            snapshot.alerts = notifier
                .recent_alerts(10)
                .into_iter()
                .map(|a| crate::snapshot::AlertInfo {
                    severity: Some(
                        crate::engine::overview::Severity::of(&a.rule, &a.key)
                            .as_str()
                            .to_string(),
                    ),
                    key: a.key,
                    rule: a.rule,
                    sent_at: a.sent_at,
                    title: a.title,
                    body: a.body,
                })
                .collect();
        }
    }
}

/// The daemon publishes the snapshot: this command is where the two faces meet.
impl crate::daemon::Publication for Snapshot {
    const FILE_NAME: &'static str = crate::snapshot::FILE_NAME;

    fn compute(
        feed: &crate::engine::feed::StoreFeed,
        s: &crate::engine::Settings,
        now: jiff::Timestamp,
    ) -> Result<
        (
            Vec<crate::blocks::Block>,
            crate::engine::overview::DashboardData,
            Snapshot,
        ),
        String,
    > {
        crate::snapshot::from_feed(feed, s, now, "daemon").map_err(|e| e.to_string())
    }

    fn same_figures(&self, other: &Self) -> bool {
        Snapshot::same_figures(self, other)
    }

    fn valid_until(&self) -> Option<jiff::Timestamp> {
        self.valid_until
    }

    fn set_state(&mut self, d: crate::daemon::DaemonState) {
        self.daemon = Some(crate::snapshot::DaemonInfo {
            pid: d.pid,
            started_at: d.started_at,
            last_change: d.last_change,
            consecutive_failures: d.consecutive_failures,
            last_error: d.last_error,
            last_error_at: d.last_error_at,
        });
    }

    fn to_text(&self) -> String {
        crate::snapshot::to_json(self)
    }

    fn summary(&self) -> (u32, Option<u64>) {
        (
            self.total_sessions_this_month,
            self.active_block.as_ref().map(|a| a.total_tokens),
        )
    }

    fn with_accounts(self, accounts: Vec<(&crate::daemon::AccountLabel, Self)>) -> Self {
        let entries = accounts
            .into_iter()
            .map(|(l, s)| crate::snapshot::named(s, &l.name, &l.config_dir))
            .collect();
        crate::snapshot::combine(entries).unwrap_or(self)
    }
}
