//! Where notifications go: the desktop (D-Bus on Linux/BSD, the notification
//! centre on macOS), a command of the user's, the dashboard's terminal bell.
//! Each backend reports success or a reason; none of them can stop csm.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one delivery may take before it counts as failed: a hung
/// notification server or command must not stall the daemon.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub message: String,
    /// What the user can do about it, when known.
    pub hint: Option<String>,
}

impl BackendError {
    fn new(message: impl Into<String>) -> Self {
        BackendError {
            message: message.into(),
            hint: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A way to show a notification.
pub trait Backend: Send {
    /// Short name for reports: `desktop`, `command`, `bell`.
    fn name(&self) -> &'static str;

    /// Shows one notification; on success, a short description of where it went.
    fn send(&self, title: &str, body: &str) -> Result<String, BackendError>;

    /// Whether the backend looks usable now, without showing anything (doctor).
    fn check(&self) -> Result<String, BackendError>;
}

/// The backends `[alerts]` turns on (the bell is the dashboard's own).
pub fn from_config(alerts: &crate::config::Alerts) -> Vec<Box<dyn Backend>> {
    let mut v: Vec<Box<dyn Backend>> = Vec::new();
    if alerts.desktop {
        v.push(Box::new(Desktop::new()));
    }
    if !alerts.notify_command.is_empty() {
        v.push(Box::new(CommandBackend::new(alerts.notify_command.clone())));
    }
    v
}

/// Runs `f` on its own thread and gives up waiting after `timeout` (the
/// thread is left to finish on its own: there is no way to cancel a call
/// blocked in a library).
fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    what: &str,
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("csm-notify".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if let Err(e) = spawned {
        return Err(BackendError::new(format!("cannot start a thread: {e}")));
    }
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(BackendError::new(format!(
            "{what} did not answer within {} s",
            timeout.as_secs()
        ))),
    }
}

// ---------------------------------------------------------------------------
// Desktop

/// The desktop's notifications through notify-rust; on macOS with
/// `terminal-notifier` and then `osascript` as fallbacks.
pub struct Desktop {
    timeout: Duration,
}

impl Default for Desktop {
    fn default() -> Self {
        Self::new()
    }
}

impl Desktop {
    pub fn new() -> Desktop {
        Desktop {
            timeout: DELIVERY_TIMEOUT,
        }
    }
}

impl Backend for Desktop {
    fn name(&self) -> &'static str {
        "desktop"
    }

    fn send(&self, title: &str, body: &str) -> Result<String, BackendError> {
        let (t, b) = (title.to_string(), body.to_string());
        let native = with_timeout(self.timeout, "the notification server", move || {
            native::show(&t, &b)
        });
        if cfg!(target_os = "macos") {
            return mac_fallback_chain(native, title, body, |program, args, stdin| {
                run_program(program, args, stdin, &[], self.timeout)
            });
        }
        native
    }

    fn check(&self) -> Result<String, BackendError> {
        with_timeout(self.timeout, "the notification server", native::check)
    }
}

/// After the native centre failed: `terminal-notifier`, then `osascript`.
/// `run` starts a program (arguments, stdin); the error names every failure.
fn mac_fallback_chain(
    native: Result<String, BackendError>,
    title: &str,
    body: &str,
    run: impl Fn(&str, &[String], Option<&str>) -> Result<String, BackendError>,
) -> Result<String, BackendError> {
    let first = match native {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    let (args, stdin) = terminal_notifier_args(title, body);
    let tn = match run("terminal-notifier", &args, Some(&stdin)) {
        Ok(_) => return Ok("terminal-notifier".into()),
        Err(e) => e,
    };
    match run("osascript", &osascript_args(title, body), None) {
        Ok(_) => Ok("osascript".into()),
        Err(osa) => Err(BackendError::new(format!(
            "notification centre: {first}; terminal-notifier: {tn}; osascript: {osa}"
        ))
        .with_hint("allow notifications for your terminal in System Settings, or set alerts.notify_command")),
    }
}

/// Arguments for `terminal-notifier`: the title as an option value (escaped:
/// it treats a value starting with `-`, `[`, `(`, `{`, `<`, `"` or `\` as
/// something else), the message on stdin.
pub fn terminal_notifier_args(title: &str, body: &str) -> (Vec<String>, String) {
    (
        vec![
            "-title".into(),
            terminal_notifier_value(title),
            "-group".into(),
            "csm".into(),
        ],
        body.to_string(),
    )
}

fn terminal_notifier_value(s: &str) -> String {
    match s.chars().next() {
        Some('-' | '[' | '(' | '{' | '<' | '"' | '\\' | '\'') => format!("\\{s}"),
        _ => s.to_string(),
    }
}

/// Arguments for `osascript`: a fixed script that takes the title and body
/// from its argument list, so no text of the notification is ever parsed as
/// AppleScript (nothing to escape, nothing to inject). `--` ends osascript's
/// options (a title may start with `-`); the script reads the last two
/// items, so they are right whether or not `--` reaches the list.
pub fn osascript_args(title: &str, body: &str) -> Vec<String> {
    vec![
        "-e".into(),
        "on run argv".into(),
        "-e".into(),
        "display notification (item -1 of argv) with title (item -2 of argv)".into(),
        "-e".into(),
        "end run".into(),
        "--".into(),
        title.into(),
        body.into(),
    ]
}

#[cfg(all(unix, not(target_os = "macos")))]
mod native {
    use super::BackendError;

    pub fn show(title: &str, body: &str) -> Result<String, BackendError> {
        // A server that renders markup in bodies would read `<` or `&` in
        // ours (an error message, a path) as markup: escape them for it.
        let markup = notify_rust::get_capabilities()
            .map_err(classify)?
            .iter()
            .any(|c| c == "body-markup");
        let body = if markup {
            super::markup_escape(body)
        } else {
            body.to_string()
        };
        let handle = notify_rust::Notification::new()
            .appname("csm")
            .summary(title)
            .body(&body)
            .show()
            .map_err(classify)?;
        Ok(format!("notification id {}", handle.id()))
    }

    pub fn check() -> Result<String, BackendError> {
        let info = notify_rust::get_server_information().map_err(classify)?;
        Ok(format!("{} {} on the session bus", info.name, info.version))
    }

    /// The D-Bus error, with the advice that fits it.
    fn classify(e: notify_rust::error::Error) -> BackendError {
        let text = e.to_string();
        let address = std::env::var("DBUS_SESSION_BUS_ADDRESS")
            .ok()
            .filter(|v| !v.is_empty());
        let no_server = text.contains("ServiceUnknown")
            || text.contains("NameHasNoOwner")
            || text.contains("was not provided by any .service files");
        let unreachable = text.contains("failed to connect")
            || text.contains("Connection refused")
            || text.contains("No such file or directory");
        match address {
            None => BackendError::new(format!(
                "no notification server on the session bus: DBUS_SESSION_BUS_ADDRESS is not set ({text})"
            ))
            .with_hint(
                "csm runs outside a desktop session: start it from one (for a systemd user \
                 service: `systemctl --user import-environment DBUS_SESSION_BUS_ADDRESS`), \
                 or set alerts.notify_command",
            ),
            Some(_) if no_server => BackendError::new(
                "no notification server on the session bus (nothing owns org.freedesktop.Notifications)",
            )
            .with_hint(
                "start a notification server (your desktop's, dunst or mako), or set alerts.notify_command",
            ),
            Some(addr) if unreachable => BackendError::new(format!(
                "no notification server on the session bus: cannot reach the bus at {addr} ({text})"
            ))
            .with_hint(
                "the desktop session that address belongs to is gone: start csm from a running \
                 session, or set alerts.notify_command",
            ),
            Some(_) => BackendError::new(text)
                .with_hint("check the desktop session's D-Bus, or set alerts.notify_command"),
        }
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
mod native {
    use super::BackendError;

    pub fn show(title: &str, body: &str) -> Result<String, BackendError> {
        notify_rust::Notification::new()
            .appname("csm")
            .summary(title)
            .body(body)
            .show()
            .map(|_| "notification centre".to_string())
            .map_err(|e| BackendError::new(e.to_string()))
    }

    pub fn check() -> Result<String, BackendError> {
        let fallbacks: Vec<&str> = ["terminal-notifier", "osascript"]
            .into_iter()
            .filter(|p| super::find_program(p).is_some())
            .collect();
        Ok(if fallbacks.is_empty() {
            "the system's notification centre".into()
        } else {
            format!(
                "the system's notification centre (fallbacks: {})",
                fallbacks.join(", ")
            )
        })
    }
}

/// The body as text for a server that parses markup in bodies.
pub fn markup_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// notify_command

/// The user's `notify_command`: run directly (never through a shell) with the
/// title and body as arguments and in `CSM_TITLE` / `CSM_BODY`.
pub struct CommandBackend {
    argv: Vec<String>,
    timeout: Duration,
}

impl CommandBackend {
    pub fn new(argv: Vec<String>) -> CommandBackend {
        CommandBackend {
            argv,
            timeout: DELIVERY_TIMEOUT,
        }
    }
}

impl Backend for CommandBackend {
    fn name(&self) -> &'static str {
        "command"
    }

    fn send(&self, title: &str, body: &str) -> Result<String, BackendError> {
        let Some((program, args)) = command_line(&self.argv, title, body) else {
            return Err(BackendError::new("notify_command is empty"));
        };
        run_program(
            &program,
            &args,
            None,
            &[("CSM_TITLE", title), ("CSM_BODY", body)],
            self.timeout,
        )
        .map(|_| format!("ran {program}"))
    }

    fn check(&self) -> Result<String, BackendError> {
        let Some(program) = self.argv.first() else {
            return Err(BackendError::new("notify_command is empty"));
        };
        match find_program(program) {
            Some(p) => Ok(format!("{}", p.display())),
            None => Err(
                BackendError::new(format!("{program}: not found")).with_hint(
                    "fix alerts.notify_command (`csm config set alerts.notify_command '[...]'`)",
                ),
            ),
        }
    }
}

/// The program and its arguments: `{title}` and `{body}` in an element are
/// replaced by the texts; without either anywhere, title and body are
/// appended as the last two arguments. Substituted text is never scanned
/// again, so a title containing `{body}` stays as it is.
pub fn command_line(argv: &[String], title: &str, body: &str) -> Option<(String, Vec<String>)> {
    let (program, rest) = argv.split_first()?;
    let templated = rest
        .iter()
        .any(|a| a.contains("{title}") || a.contains("{body}"));
    let mut args: Vec<String> = rest.iter().map(|a| expand(a, title, body)).collect();
    if !templated {
        args.push(title.to_string());
        args.push(body.to_string());
    }
    Some((program.clone(), args))
}

fn expand(template: &str, title: &str, body: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{title}") {
            out.push_str(title);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{body}") {
            out.push_str(body);
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `program` as the system would find it: a path as given, else the first
/// match in `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|c| c.is_file())
}

/// Runs a program without a shell, stdin from `stdin` (or nothing), stdout
/// discarded, stderr kept for the error; killed after `timeout`.
fn run_program(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<String, BackendError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| BackendError::new(format!("cannot run {program}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write as _;
        // A program that does not read its input is not an error.
        let _ = pipe.write_all(text.as_bytes());
    }
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut pipe).take(4096).read_to_end(&mut buf);
            // Drain the rest so the program never blocks on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            buf
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BackendError::new(format!(
                    "{program} did not finish within {} s and was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(BackendError::new(format!("waiting for {program}: {e}"))),
        }
    };
    let err_text = stderr
        .and_then(|h| h.join().ok())
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    if status.success() {
        Ok(program.to_string())
    } else {
        let detail = if err_text.is_empty() {
            String::new()
        } else {
            format!(": {}", err_text.lines().next().unwrap_or(""))
        };
        Err(BackendError::new(format!(
            "{program} failed ({status}){detail}"
        )))
    }
}

// ---------------------------------------------------------------------------
// Terminal bell

/// The dashboard's bell: rings through whatever owns the terminal.
pub struct Bell {
    ring: Box<dyn Fn(&str) -> bool + Send>,
}

impl Bell {
    /// `ring` gets the title; it returns false when the bell could not be
    /// rung (the dashboard is gone).
    pub fn new(ring: impl Fn(&str) -> bool + Send + 'static) -> Bell {
        Bell {
            ring: Box::new(ring),
        }
    }
}

impl Backend for Bell {
    fn name(&self) -> &'static str {
        "bell"
    }

    fn send(&self, title: &str, _body: &str) -> Result<String, BackendError> {
        if (self.ring)(title) {
            Ok("terminal bell".into())
        } else {
            Err(BackendError::new("the dashboard is gone"))
        }
    }

    fn check(&self) -> Result<String, BackendError> {
        Ok("in the dashboard".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_line_appends_or_substitutes_without_rescanning() {
        let (p, a) = command_line(&s(&["ntfy", "publish", "topic"]), "T", "B").unwrap();
        assert_eq!(p, "ntfy");
        assert_eq!(a, s(&["publish", "topic", "T", "B"]));

        let argv = s(&[
            "ntfy",
            "publish",
            "--title={title}",
            "topic",
            "{body} ({title})",
        ]);
        let (_, a) = command_line(&argv, "a {body} $(x)", "b\n{title}").unwrap();
        assert_eq!(
            a,
            s(&[
                "publish",
                "--title=a {body} $(x)",
                "topic",
                "b\n{title} (a {body} $(x))"
            ])
        );
        assert_eq!(expand("{x} {", "T", "B"), "{x} {");
        assert!(command_line(&[], "T", "B").is_none());
    }

    #[test]
    fn osascript_gets_the_text_as_arguments_never_as_script() {
        let title = "Claude \"window\" $(rm -rf ~) \\";
        let body = "line 1\nend tell";
        let a = osascript_args(title, body);
        let script: Vec<&str> = a
            .iter()
            .zip(a.iter().skip(1))
            .filter(|(flag, _)| *flag == "-e")
            .map(|(_, s)| s.as_str())
            .collect();
        assert!(
            script
                .iter()
                .all(|s| !s.contains("Claude") && !s.contains("line 1"))
        );
        assert_eq!(&a[a.len() - 3..], &s(&["--", title, body])[..]);
    }

    #[test]
    fn markup_is_escaped_for_servers_that_render_it() {
        assert_eq!(
            markup_escape("<b>5 & 6</b> \"ok\""),
            "&lt;b&gt;5 &amp; 6&lt;/b&gt; \"ok\""
        );
    }

    #[test]
    fn terminal_notifier_escapes_a_leading_special_character() {
        let (a, stdin) = terminal_notifier_args("-5 % left", "[body]");
        assert_eq!(a[1], "\\-5 % left");
        assert_eq!(stdin, "[body]");
        assert_eq!(terminal_notifier_args("Claude", "b").0[1], "Claude");
    }

    #[test]
    fn a_failing_or_hanging_command_is_an_error_not_a_crash() {
        let b = CommandBackend::new(s(&["/nonexistent/csm-notify"]));
        let e = b.send("T", "B").unwrap_err();
        assert!(e.message.contains("/nonexistent/csm-notify"), "{e}");
        assert!(b.check().is_err());

        let b = CommandBackend::new(s(&["sh", "-c", "echo boom >&2; exit 3", "sh"]));
        let e = b.send("T", "B").unwrap_err();
        assert!(e.message.contains("boom"), "{e}");

        let mut b = CommandBackend::new(s(&["sh", "-c", "exec sleep 30", "sh"]));
        b.timeout = Duration::from_millis(200);
        let e = b.send("T", "B").unwrap_err();
        assert!(e.message.contains("did not finish"), "{e}");
    }

    #[test]
    fn mac_fallbacks_go_in_order_and_report_every_reason() {
        let calls = std::cell::RefCell::new(Vec::new());
        let r = mac_fallback_chain(
            Err(BackendError::new("no bundle")),
            "T",
            "B",
            |program, args, stdin| {
                calls.borrow_mut().push((
                    program.to_string(),
                    args.to_vec(),
                    stdin.map(String::from),
                ));
                if program == "osascript" {
                    Ok("ok".into())
                } else {
                    Err(BackendError::new("not found"))
                }
            },
        );
        assert_eq!(r.unwrap(), "osascript");
        let calls = calls.into_inner();
        assert_eq!(calls[0].0, "terminal-notifier");
        assert_eq!(calls[0].2.as_deref(), Some("B"));
        assert_eq!(calls[1].1, osascript_args("T", "B"));

        let r = mac_fallback_chain(Err(BackendError::new("no bundle")), "T", "B", |_, _, _| {
            Err(BackendError::new("not found"))
        });
        let e = r.unwrap_err();
        assert!(
            e.message.contains("no bundle")
                && e.message.contains("terminal-notifier: not found")
                && e.message.contains("osascript: not found"),
            "{e}"
        );
    }
}
