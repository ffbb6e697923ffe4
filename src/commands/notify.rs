//! `csm notify test` (and `--test-alert`), `csm notify check`.

use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cli::NotifyCommand;
use crate::notify::{AlertInput, Backend, Delivery, Notifier, backend};

/// Runs `csm notify test` or `csm notify check`.
pub fn run(ctx: &Context, cmd: &NotifyCommand) -> Result<ExitCode> {
    match cmd {
        NotifyCommand::Test { title, body } => send_test(ctx, title.as_deref(), body.as_deref()),
        NotifyCommand::Check { dry_run } => check(ctx, *dry_run),
    }
}

const NO_BACKEND: &str = "no notification backend is configured: set alerts.desktop = true or alerts.notify_command (`csm config set alerts.desktop true`)";

/// Sends one test notification through every configured backend.
pub fn test(ctx: &Context) -> Result<ExitCode> {
    send_test(ctx, None, None)
}

fn send_test(ctx: &Context, title: Option<&str>, body: Option<&str>) -> Result<ExitCode> {
    let backends = backend::from_config(&ctx.config.alerts);
    if backends.is_empty() {
        eprintln!("csm: {NO_BACKEND}");
        return Ok(ExitCode::from(1));
    }
    let a = &ctx.config.alerts;
    let title = title.unwrap_or("csm test notification");
    let standard = format!(
        "csm alerts arrive here: {} min before a window ends, after {} min without activity, at {} % of your limits.",
        a.time_alert_minutes,
        a.inactivity_alert_minutes,
        a.limit_thresholds
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let body = body.unwrap_or(&standard);
    let mut delivered = 0;
    for b in &backends {
        if report(b.as_ref(), b.send(title, body)) {
            delivered += 1;
        }
    }
    if delivered == 0 {
        eprintln!("csm: no backend delivered the test notification");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one backend's result; true when it delivered.
fn report(b: &dyn Backend, r: Result<String, crate::notify::BackendError>) -> bool {
    match r {
        Ok(how) => {
            println!("{:<8} delivered ({how})", b.name());
            true
        }
        Err(e) => {
            println!("{:<8} FAILED: {}", b.name(), e.message);
            if let Some(h) = &e.hint {
                println!("{:<8} hint: {h}", "");
            }
            false
        }
    }
}

/// Evaluates the rules on the current usage and sends what is due.
fn check(ctx: &Context, dry_run: bool) -> Result<ExitCode> {
    let crate::engine::Windows { blocks, now } =
        super::blocks(ctx, crate::store::STORED_WINDOW_HOURS)?;
    let kept = crate::engine::kept_maxima(&ctx.base_dir);
    let mut notifier = Notifier::for_context(ctx, Vec::new());
    let input = AlertInput::from_history(&blocks, kept, ctx.config.token_limit, now)
        .with_official(notifier.official_limits());
    if dry_run {
        let due = notifier.due(&input, ctx.now);
        if due.is_empty() {
            println!("nothing due");
        }
        for a in due {
            println!("due  {}\n     {}", a.title, a.body);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if notifier.backends().is_empty() {
        eprintln!("csm: {NO_BACKEND}");
        return Ok(ExitCode::from(1));
    }
    let deliveries: Vec<Delivery> = notifier.evaluate_and_send(&input, ctx.now);
    if deliveries.is_empty() {
        println!("nothing due");
    }
    let mut failed = false;
    for d in &deliveries {
        println!("{}", d.alert.title);
        for line in d.alert.body.lines() {
            println!("    {line}");
        }
        for (name, r) in &d.results {
            match r {
                Ok(how) => println!("  {name:<8} delivered ({how})"),
                Err(e) => {
                    println!("  {name:<8} FAILED: {}", e.message);
                    if let Some(h) = &e.hint {
                        println!("  {:<8} hint: {h}", "");
                    }
                }
            }
        }
        failed |= !d.delivered();
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line of `csm doctor`'s notification section.
pub struct BackendStatus {
    /// The backend's name as shown: `desktop`, `command` or `bell`.
    pub name: &'static str,
    /// Whether the configuration turns this backend on.
    pub enabled: bool,
    /// What the backend's check found: `Ok` with a description, or why it is not usable.
    pub status: Result<String, crate::notify::BackendError>,
}

/// Every backend csm knows, whether config turns it on, and whether it
/// looks usable; plus who sends alerts now.
pub fn doctor_status(ctx: &Context) -> (Vec<BackendStatus>, String) {
    let a = &ctx.config.alerts;
    let desktop = backend::Desktop::new();
    let mut rows = vec![BackendStatus {
        name: "desktop",
        enabled: a.desktop,
        status: desktop.check(),
    }];
    rows.push(BackendStatus {
        name: "command",
        enabled: !a.notify_command.is_empty(),
        status: if a.notify_command.is_empty() {
            Err(crate::notify::BackendError {
                message: "alerts.notify_command is not set".into(),
                hint: None,
            })
        } else {
            backend::CommandBackend::new(a.notify_command.clone()).check()
        },
    });
    rows.push(BackendStatus {
        name: "bell",
        enabled: true,
        status: Ok("in the dashboard, while it sends alerts".into()),
    });
    use crate::daemon::instance::{Liveness, probe};
    let sender = match probe(&ctx.base_dir) {
        Liveness::Running { pid: Some(pid) } => format!("the daemon (pid {pid})"),
        Liveness::Running { pid: None } => "the daemon".into(),
        Liveness::Stopped => "an open dashboard (no daemon running)".into(),
    };
    (rows, sender)
}
