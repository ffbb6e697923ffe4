//! `csm statusline`, `csm hook` and `csm setup claude`: the command layer
//! around `crate::claude`.
//!
//! The status line and the hook run inside Claude Code: whatever goes wrong
//! (bad input, bad config, a busy or missing store) they exit 0, the hook
//! silently and the status line with a short line, and say why in
//! `<base>/claude.log`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use jiff::Timestamp;

use super::Context;
use crate::claude::statusline::{self, StatusInput};
use crate::claude::{self as cc, hook, setup};
use crate::cli::{Cli, SetupClaudeArgs, SetupCommand, StatuslineArgs};
use crate::engine::statusline::{self as figures, FigureSettings, StoreFigures};
use crate::env::{self, Env};
use crate::ingest::claude::{OfficialLimits, spool};
use crate::store::Store;

/// How long the status line waits for Claude Code's payload.
const STATUSLINE_STDIN: Duration = Duration::from_millis(150);
/// How long the hook waits for its event.
const HOOK_STDIN: Duration = Duration::from_millis(150);
/// How long the status line's reads wait while the store is locked
/// outright (a WAL reset at the last writer's close). Writes never wait:
/// what the status line cannot import at once stays spooled for the next
/// writer.
const STATUSLINE_BUSY: Duration = Duration::from_millis(300);

/// These never fail: a `CSM_NOW` that is not a time is the system clock here.
fn clock(env: &Env) -> Timestamp {
    env.clock().unwrap_or(crate::engine::Clock::System).now()
}

/// `csm statusline`.
pub fn statusline(cli: &Cli, env: &Env, args: &StatuslineArgs) -> ExitCode {
    if args.ingest {
        ingest(cli, env);
        return ExitCode::SUCCESS;
    }
    let bytes = cc::read_stdin_bounded(STATUSLINE_STDIN);
    let now = clock(env);
    let color = !(cli.global.no_color || env.no_color);
    let line = match Context::new(cli, env, now) {
        Ok(ctx) => status_line(cli, &ctx, bytes, now, color),
        Err(e) => {
            if let Ok((base, _)) = env::paths(cli, env) {
                cc::log(&base, now, "statusline", &format!("{e:#}"));
            }
            "csm: config error (see csm config show)".to_string()
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn status_line(
    cli: &Cli,
    ctx: &Context,
    bytes: Result<Vec<u8>, cc::StdinError>,
    now: Timestamp,
    color: bool,
) -> String {
    let base = ctx.base_dir.as_path();
    let log = |msg: &str| cc::log(base, now, "statusline", msg);
    let input = match bytes
        .map_err(|e| e.to_string())
        .and_then(|b| statusline::parse_input(&b, now).map_err(|e| e.to_string()))
    {
        Ok(i) => i,
        Err(e) => {
            log(&format!("payload ignored: {e}"));
            StatusInput::default()
        }
    };
    for r in &input.rate_limits.rejected {
        log(&format!("rate_limits: {r}"));
    }
    let daemon = matches!(
        crate::daemon::instance::probe(base),
        crate::daemon::instance::Liveness::Running { .. }
    );
    // The figures of the session's account only.
    let cached = |scope: Option<&str>| {
        figures::read_cache(base)
            .filter(|c| scope.is_none_or(|s| c.key.scope == s))
            .map(|c| {
                let mut f = c.figures;
                f.block = f.block.filter(|b| b.end > now);
                f
            })
    };
    let spool_capture = |c: OfficialLimits| {
        let record = spool::Record::Limits {
            capture: c,
            session_id: input.session_id.clone(),
            transcript: input
                .transcript_path
                .as_ref()
                .map(|p| p.display().to_string()),
        };
        if let Err(e) = spool::append(base, &record) {
            log(&format!("capture not stored: {e}"));
        }
    };
    let capture = input.rate_limits.capture(now);
    let figures: Option<StoreFigures>;
    let mut stored = None;
    match Store::open_existing(base, STATUSLINE_BUSY) {
        Ok(Some(mut store)) => {
            // The account of the session's transcript, else of the
            // status line's CLAUDE_CONFIG_DIR (or the default dirs).
            let root = input
                .transcript_path
                .as_deref()
                .and_then(|p| store.root_of_transcript(p).ok().flatten());
            match root {
                Some(id) => store.scope_to_root(id),
                None => {
                    if let Err(e) = store.set_scope(&ctx.roots.history_dirs()) {
                        log(&format!("account not known: {e}"));
                    }
                }
            }
            let scope = store.scope_key();
            if let Some(c) = capture
                && store.capture_due(&c).unwrap_or(true)
            {
                spool_capture(c);
            }
            // Busy: another writer is at work and imports it soon.
            let imported = store
                .set_busy_timeout(Duration::ZERO)
                .and_then(|()| store.import_spool(base));
            match imported {
                Err(e) if !e.is_busy() => log(&format!("spool not imported: {e}")),
                _ => {}
            }
            if let Err(e) = store.set_busy_timeout(STATUSLINE_BUSY) {
                log(&e.to_string());
            }
            stored = store.latest_limits().unwrap_or_else(|e| {
                log(&e.to_string());
                None
            });
            let settings = FigureSettings {
                mode: ctx.mode,
                tz: ctx.tz(),
                token_limit: ctx.config.token_limit,
                kept_max_tokens: crate::engine::kept_maxima(base).tokens,
            };
            let cache = figures::read_cache(base);
            match figures::figures(&store, cache.as_ref(), &settings, now) {
                Ok((f, fresh)) => {
                    if let Some(c) = fresh
                        && let Err(e) = figures::write_cache(base, &c)
                    {
                        log(&format!("cache not written: {e}"));
                    }
                    figures = Some(f);
                }
                Err(e) => {
                    log(&format!("store busy, cached figures shown: {e}"));
                    figures = cached(Some(&scope));
                }
            }
            let behind = input
                .transcript_path
                .as_deref()
                .is_some_and(|p| figures::transcript_ahead(&store, p));
            if behind && !daemon && figures::claim_refresh(base) {
                spawn_ingest(cli, base, now);
            }
        }
        Ok(None) => {
            if let Some(c) = capture {
                spool_capture(c);
            }
            figures = cached(None);
            // No store yet (or an older schema): build it in the background,
            // when there are transcripts to build it from.
            let has_data = || ctx.roots.resolve_required().is_ok();
            if !daemon && !ctx.no_store && has_data() && figures::claim_refresh(base) {
                spawn_ingest(cli, base, now);
            }
        }
        Err(e) => {
            log(&format!("store unavailable, cached figures shown: {e}"));
            if let Some(c) = capture {
                spool_capture(c);
            }
            figures = cached(None);
        }
    }
    let shown = statusline::limits_shown(&input, stored, figures.as_ref(), now);
    statusline::render(&input, figures.as_ref(), &shown, now, color)
}

/// Starts `csm statusline --ingest` detached: its own process group and no
/// inherited pipes, so Claude Code neither waits for it nor kills it.
fn spawn_ingest(cli: &Cli, base: &Path, now: Timestamp) {
    let started = (|| -> std::io::Result<()> {
        let mut c = std::process::Command::new(std::env::current_exe()?);
        for d in &cli.global.claude_dir {
            c.arg("--claude-dir").arg(d);
        }
        if let Some(cfg) = &cli.global.config {
            c.arg("--config").arg(cfg);
        }
        c.args(["statusline", "--ingest"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            c.process_group(0);
        }
        // Not waited for: it outlives this process, which exits at once.
        #[allow(clippy::zombie_processes)]
        c.spawn()?;
        Ok(())
    })();
    if let Err(e) = started {
        cc::log(
            base,
            now,
            "statusline",
            &format!("cannot start a refresh: {e}"),
        );
    }
}

/// `csm statusline --ingest`: one incremental ingest, unless another is
/// already running.
fn ingest(cli: &Cli, env: &Env) {
    let now = clock(env);
    let Ok(ctx) = Context::new(cli, env, now) else {
        return;
    };
    let base = ctx.base_dir.clone();
    let marker = base.join(figures::REFRESH_MARKER);
    if crate::fsutil::create_private_dir(&base).is_err()
        || crate::fsutil::touch_private(&marker).is_err()
    {
        return;
    }
    let Ok(f) = std::fs::OpenOptions::new().append(true).open(&marker) else {
        return;
    };
    if f.try_lock().is_err() {
        return;
    }
    if let Err(e) = crate::engine::load::open(&ctx) {
        cc::log(&base, now, "statusline --ingest", &format!("{e:#}"));
    }
}

/// `csm hook`: prints nothing, exits 0.
pub fn hook(cli: &Cli, env: &Env) -> ExitCode {
    let bytes = cc::read_stdin_bounded(HOOK_STDIN);
    let now = clock(env);
    let Ok((base, _)) = env::paths(cli, env) else {
        return ExitCode::SUCCESS;
    };
    let result = bytes
        .map_err(|e| e.to_string())
        .and_then(|b| hook::record(&base, &b, now).map_err(|e| e.to_string()));
    if let Err(e) = result {
        cc::log(&base, now, "hook", &e);
    }
    ExitCode::SUCCESS
}

/// `csm setup ...`.
pub fn setup(ctx: &Context, cmd: &SetupCommand) -> Result<ExitCode> {
    match cmd {
        SetupCommand::Claude(args) => setup_claude(ctx, args),
    }
}

/// The Claude config dir settings go to: the first `--claude-dir`, else the
/// first entry of `CLAUDE_CONFIG_DIR`, else `~/.claude`.
fn claude_dir(ctx: &Context) -> Result<PathBuf> {
    if let Some(d) = ctx.roots.explicit.first() {
        return Ok(d.clone());
    }
    if let Some(d) = ctx
        .roots
        .env_value
        .as_deref()
        .and_then(|v| v.split(',').map(str::trim).find(|s| !s.is_empty()))
    {
        return Ok(PathBuf::from(d));
    }
    ctx.roots
        .home
        .as_ref()
        .map(|h| h.join(".claude"))
        .context("cannot find a home directory: use --claude-dir DIR")
}

fn setup_claude(ctx: &Context, args: &SetupClaudeArgs) -> Result<ExitCode> {
    let dir = claude_dir(ctx)?;
    let path = dir.join("settings.json");
    // A settings.json that links elsewhere (dotfiles) is updated where it lives.
    let target = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let original = match std::fs::read(&target) {
        Ok(b) => Some(String::from_utf8(b).map_err(|_| {
            env::UsageError(format!(
                "{}: not UTF-8 text; nothing changed",
                path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let plan = if args.uninstall {
        setup::plan_uninstall(original.as_deref())
    } else {
        let exe = std::env::current_exe().context("cannot find the csm executable")?;
        let cmds = setup::Commands::for_exe(&exe.to_string_lossy());
        setup::plan_install(original.as_deref(), &cmds, args.force)
    }
    .map_err(|e| env::UsageError(format!("{}: {e}; nothing changed", path.display())))?;
    let mut out = std::io::stdout().lock();
    for n in &plan.notes {
        writeln!(out, "note: {n}")?;
    }
    if !plan.changed {
        let what = if args.uninstall {
            "csm is not set up there"
        } else {
            "csm is already set up there"
        };
        writeln!(out, "{}: {what}; nothing changed", path.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    let meta = std::fs::metadata(&target).ok();
    let read_only = meta.as_ref().is_some_and(|m| m.permissions().readonly());
    if args.dry_run {
        let name = path.display().to_string();
        let old = original.as_deref().unwrap_or("");
        let new_name = format!("{name} (after csm setup claude)");
        write!(out, "{}", setup::diff(old, &plan.text, &name, &new_name))?;
        if read_only {
            writeln!(out, "note: {name} is read-only: a real run would stop here")?;
        }
        writeln!(out, "dry run: nothing written")?;
        return Ok(ExitCode::SUCCESS);
    }
    if read_only {
        bail!(
            "{} is read-only: nothing changed (make it writable, e.g. `chmod u+w {}`, then run again)",
            path.display(),
            target.display()
        );
    }
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt as _;
        meta.as_ref()
            .map_or(0o600, |m| m.permissions().mode() & 0o777)
    };
    #[cfg(not(unix))]
    let mode = 0o600;
    let backup = match &original {
        Some(text) => Some(write_backup(&target, text, ctx.now)?),
        None => None,
    };
    crate::fsutil::write_atomic(&target, plan.text.as_bytes(), mode)
        .with_context(|| format!("cannot write {}; nothing changed", path.display()))?;
    writeln!(out, "updated {}", path.display())?;
    for c in &plan.changes {
        writeln!(out, "  {c}")?;
    }
    if let Some(b) = backup {
        writeln!(out, "backup of the previous file: {}", b.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `settings.json.csm-backup-<time>` next to the file, never overwriting one.
fn write_backup(target: &Path, text: &str, now: Timestamp) -> Result<PathBuf> {
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "settings.json".into());
    let dir = target.parent().unwrap_or(Path::new("."));
    for n in 0..100 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let p = dir.join(format!("{name}.csm-backup-{stamp}{suffix}"));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        match o.open(&p) {
            Ok(mut f) => {
                f.write_all(text.as_bytes())
                    .and_then(|_| f.sync_all())
                    .with_context(|| format!("cannot write the backup {}", p.display()))?;
                return Ok(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot write the backup {}; nothing changed", p.display())
                });
            }
        }
    }
    bail!("too many backups next to {}", target.display())
}
