//! `csm daemon install|uninstall`: the daemon as a service of the platform's
//! manager: a launchd LaunchAgent on macOS, a systemd user unit on
//! Linux, and a cron `@reboot` line where neither is available.
//!
//! [`plan_install`] and [`plan_uninstall`] are pure: they say which files to
//! write or remove and which commands to run. [`apply`] carries a plan out
//! through a [`System`], which tests replace with a recorder, so nothing here
//! needs a real service manager to be tested.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// systemd unit name and launchd label.
pub const UNIT_NAME: &str = "csm.service";
pub const LAUNCHD_LABEL: &str = "claude-session-monitor.daemon";
/// Marks csm's line in a crontab.
pub const CRON_MARK: &str = "# csm daemon (claude-session-monitor)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Launchd,
    Systemd,
    Cron,
}

impl Manager {
    pub fn name(self) -> &'static str {
        match self {
            Manager::Launchd => "launchd",
            Manager::Systemd => "systemd",
            Manager::Cron => "cron",
        }
    }
}

/// How the service starts the daemon: the program, its arguments and the
/// environment variables that locate the user's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub exe: PathBuf,
    /// Global flags (before `daemon run`).
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, where systemd looks for user units.
    pub xdg_config_home: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub uid: u32,
}

impl ServiceSpec {
    fn argv(&self) -> Vec<String> {
        let mut v = vec![self.exe.to_string_lossy().into_owned()];
        v.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        v.push("daemon".into());
        v.push("run".into());
        v
    }

    pub fn unit_path(&self) -> PathBuf {
        self.xdg_config_home
            .clone()
            .unwrap_or_else(|| self.home.join(".config"))
            .join("systemd/user")
            .join(UNIT_NAME)
    }

    pub fn plist_path(&self) -> PathBuf {
        self.home
            .join("Library/LaunchAgents")
            .join(format!("{LAUNCHD_LABEL}.plist"))
    }

    fn launchd_domain(&self) -> String {
        format!("gui/{}", self.uid)
    }
}

/// One change to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Write {
        path: PathBuf,
        contents: String,
        mode: u32,
    },
    Remove {
        path: PathBuf,
    },
    /// A command that must succeed.
    Run(Vec<String>),
    /// A command whose failure is expected at times (unloading what is not
    /// loaded).
    RunMayFail(Vec<String>),
    /// Replace csm's line of the user's crontab (None: remove it).
    Crontab(Option<String>),
    /// Start the daemon now, detached (cron only starts it at the next boot).
    Spawn(Vec<String>, Vec<(String, String)>),
    /// Stop the base directory's running daemon (SIGTERM, then wait for its lock).
    StopDaemon(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub manager: Manager,
    pub steps: Vec<Step>,
}

impl Plan {
    /// What `--dry-run` prints.
    pub fn describe(&self) -> String {
        let mut out = format!("service manager: {}\n", self.manager.name());
        for s in &self.steps {
            match s {
                Step::Write {
                    path,
                    contents,
                    mode,
                } => {
                    let _ = writeln!(out, "\nwrite {} (mode {mode:o}):", path.display());
                    out.push_str(contents);
                    if !contents.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push('\n');
                }
                Step::Remove { path } => {
                    let _ = writeln!(out, "remove {}", path.display());
                }
                Step::Run(argv) | Step::RunMayFail(argv) => {
                    let _ = writeln!(out, "run {}", shell_words(argv));
                }
                Step::Crontab(Some(line)) => {
                    let _ = writeln!(out, "crontab: add or replace csm's line:\n  {line}");
                }
                Step::Crontab(None) => {
                    let _ = writeln!(out, "crontab: remove csm's line");
                }
                Step::Spawn(argv, _) => {
                    let _ = writeln!(out, "start {} (detached)", shell_words(argv));
                }
                Step::StopDaemon(base) => {
                    let _ = writeln!(out, "stop the daemon of {}", base.display());
                }
            }
        }
        out
    }
}

/// The commands and files outside csm: a real system, or a recorder in tests.
pub trait System {
    /// Runs a program to completion: Ok(status success, output) or an error
    /// when it cannot be started (not installed).
    fn run(&mut self, argv: &[String], stdin: Option<&str>) -> io::Result<(bool, String)>;
    fn spawn_detached(&mut self, argv: &[String], env: &[(String, String)]) -> io::Result<()>;
    fn stop_daemon(&mut self, base_dir: &Path) -> io::Result<()>;
}

/// Which manager to use when the user did not say: launchd on macOS; on other
/// systems a reachable systemd user manager, else cron.
pub fn detect(sys: &mut dyn System) -> Option<Manager> {
    if cfg!(target_os = "macos") {
        return Some(Manager::Launchd);
    }
    let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if matches!(
        sys.run(&argv(&["systemctl", "--user", "show-environment"]), None),
        Ok((true, _))
    ) {
        return Some(Manager::Systemd);
    }
    // `crontab -l` fails without a crontab, but then the program exists.
    if sys.run(&argv(&["crontab", "-l"]), None).is_ok() {
        return Some(Manager::Cron);
    }
    None
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn plan_install(m: Manager, spec: &ServiceSpec) -> Plan {
    let steps = match m {
        Manager::Systemd => vec![
            Step::Write {
                path: spec.unit_path(),
                contents: systemd_unit(spec),
                mode: 0o644,
            },
            Step::Run(strings(&["systemctl", "--user", "daemon-reload"])),
            Step::Run(strings(&[
                "systemctl",
                "--user",
                "enable",
                "--now",
                UNIT_NAME,
            ])),
        ],
        Manager::Launchd => {
            let plist = spec.plist_path();
            vec![
                Step::Write {
                    path: plist.clone(),
                    contents: launchd_plist(spec),
                    mode: 0o644,
                },
                // A reinstall replaces the loaded job.
                Step::RunMayFail(vec![
                    "launchctl".into(),
                    "bootout".into(),
                    format!("{}/{LAUNCHD_LABEL}", spec.launchd_domain()),
                ]),
                Step::Run(vec![
                    "launchctl".into(),
                    "bootstrap".into(),
                    spec.launchd_domain(),
                    plist.to_string_lossy().into_owned(),
                ]),
            ]
        }
        Manager::Cron => vec![
            Step::Crontab(Some(cron_line(spec))),
            Step::Spawn(spec.argv(), spec.env.clone()),
        ],
    };
    Plan { manager: m, steps }
}

/// Undoes what [`plan_install`] did for `m`.
pub fn plan_uninstall(m: Manager, spec: &ServiceSpec) -> Plan {
    let steps = match m {
        Manager::Systemd => vec![
            Step::RunMayFail(strings(&[
                "systemctl",
                "--user",
                "disable",
                "--now",
                UNIT_NAME,
            ])),
            Step::Remove {
                path: spec.unit_path(),
            },
            Step::RunMayFail(strings(&["systemctl", "--user", "daemon-reload"])),
        ],
        Manager::Launchd => vec![
            Step::RunMayFail(vec![
                "launchctl".into(),
                "bootout".into(),
                format!("{}/{LAUNCHD_LABEL}", spec.launchd_domain()),
            ]),
            Step::Remove {
                path: spec.plist_path(),
            },
        ],
        Manager::Cron => vec![Step::Crontab(None), Step::StopDaemon(spec.base_dir.clone())],
    };
    Plan { manager: m, steps }
}

/// Which managers have csm installed (by their files, and csm's crontab line).
pub fn installed(spec: &ServiceSpec, sys: &mut dyn System) -> Vec<Manager> {
    let mut v = Vec::new();
    if spec.unit_path().exists() {
        v.push(Manager::Systemd);
    }
    if spec.plist_path().exists() {
        v.push(Manager::Launchd);
    }
    if let Ok((true, text)) = sys.run(&strings(&["crontab", "-l"]), None)
        && text.lines().any(|l| l.contains(CRON_MARK))
    {
        v.push(Manager::Cron);
    }
    v
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
}

/// Carries a plan out, stopping at the first step that fails.
pub fn apply(plan: &Plan, sys: &mut dyn System) -> Result<(), ServiceError> {
    for s in &plan.steps {
        match s {
            Step::Write {
                path,
                contents,
                mode,
            } => {
                let err = |source| ServiceError::Write {
                    path: path.clone(),
                    source,
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                crate::fsutil::write_atomic(path, contents.as_bytes(), *mode).map_err(err)?;
            }
            Step::Remove { path } => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ServiceError::Remove {
                        path: path.clone(),
                        source,
                    });
                }
            },
            Step::Run(argv) => run_checked(sys, argv, None)?,
            Step::RunMayFail(argv) => {
                let _ = sys.run(argv, None);
            }
            Step::Crontab(line) => {
                let current = match sys.run(&strings(&["crontab", "-l"]), None) {
                    Ok((true, text)) => text,
                    // No crontab yet.
                    Ok((false, _)) => String::new(),
                    Err(e) => {
                        return Err(ServiceError::Command {
                            command: "crontab -l".into(),
                            detail: e.to_string(),
                        });
                    }
                };
                let new = edit_crontab(&current, line.as_deref());
                if new != current {
                    run_checked(sys, &strings(&["crontab", "-"]), Some(&new))?;
                }
            }
            Step::Spawn(argv, env) => {
                sys.spawn_detached(argv, env)
                    .map_err(|e| ServiceError::Command {
                        command: shell_words(argv),
                        detail: e.to_string(),
                    })?;
            }
            Step::StopDaemon(base) => {
                sys.stop_daemon(base).map_err(|e| ServiceError::Command {
                    command: "stop the daemon".into(),
                    detail: e.to_string(),
                })?;
            }
        }
    }
    Ok(())
}

fn run_checked(
    sys: &mut dyn System,
    argv: &[String],
    stdin: Option<&str>,
) -> Result<(), ServiceError> {
    match sys.run(argv, stdin) {
        Ok((true, _)) => Ok(()),
        Ok((false, out)) => Err(ServiceError::Command {
            command: shell_words(argv),
            detail: out.trim().to_string(),
        }),
        Err(e) => Err(ServiceError::Command {
            command: shell_words(argv),
            detail: e.to_string(),
        }),
    }
}

/// The crontab with csm's line replaced, added or (None) removed; every
/// other line kept as it was.
pub fn edit_crontab(current: &str, line: Option<&str>) -> String {
    let mut out: Vec<&str> = current.lines().filter(|l| !l.contains(CRON_MARK)).collect();
    if let Some(l) = line {
        out.push(l);
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// The systemd user unit.
pub fn systemd_unit(spec: &ServiceSpec) -> String {
    let exec: Vec<String> = spec.argv().iter().map(|a| systemd_quote(a)).collect();
    let mut u = String::new();
    u.push_str("[Unit]\n");
    u.push_str("Description=csm: Claude Code usage collector (claude-session-monitor)\n");
    u.push('\n');
    u.push_str("[Service]\n");
    u.push_str("Type=simple\n");
    let _ = writeln!(u, "ExecStart={}", exec.join(" "));
    for (k, v) in &spec.env {
        let _ = writeln!(u, "Environment={}", systemd_quote(&format!("{k}={v}")));
    }
    u.push_str("Restart=on-failure\n");
    u.push_str("RestartSec=10\n");
    // Another daemon already owns the base directory: restarting cannot help.
    let _ = writeln!(
        u,
        "RestartPreventExitStatus={}",
        super::EXIT_ALREADY_RUNNING
    );
    u.push_str("Nice=5\n");
    u.push('\n');
    u.push_str("[Install]\n");
    u.push_str("WantedBy=default.target\n");
    u
}

/// One word of a unit file command line or assignment: quoted when needed,
/// with systemd's specifiers (`%`) and variables (`$`) escaped.
fn systemd_quote(s: &str) -> String {
    let escaped = s.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '\\' | ';'));
    if plain {
        return escaped;
    }
    let mut q = String::from("\"");
    for c in escaped.chars() {
        if matches!(c, '"' | '\\') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The launchd LaunchAgent: starts at login, restarted unless it exited
/// cleanly (so `csm daemon stop` is not undone).
pub fn launchd_plist(spec: &ServiceSpec) -> String {
    use plist::{Dictionary, Value};
    let mut d = Dictionary::new();
    d.insert("Label".into(), Value::String(LAUNCHD_LABEL.into()));
    d.insert(
        "ProgramArguments".into(),
        Value::Array(spec.argv().into_iter().map(Value::String).collect()),
    );
    if !spec.env.is_empty() {
        let mut env = Dictionary::new();
        for (k, v) in &spec.env {
            env.insert(k.clone(), Value::String(v.clone()));
        }
        d.insert("EnvironmentVariables".into(), Value::Dictionary(env));
    }
    d.insert("RunAtLoad".into(), Value::Boolean(true));
    let mut keep = Dictionary::new();
    keep.insert("SuccessfulExit".into(), Value::Boolean(false));
    d.insert("KeepAlive".into(), Value::Dictionary(keep));
    d.insert("ProcessType".into(), Value::String("Background".into()));
    d.insert("ThrottleInterval".into(), Value::Integer(10.into()));
    // The daemon logs to daemon.log; anything else (a crash) lands here.
    let err = spec.base_dir.join("daemon.stderr.log");
    d.insert(
        "StandardErrorPath".into(),
        Value::String(err.to_string_lossy().into_owned()),
    );
    let mut buf = Vec::new();
    if plist::to_writer_xml(&mut buf, &Value::Dictionary(d)).is_err() {
        return String::new();
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// csm's crontab line: start the daemon at boot.
pub fn cron_line(spec: &ServiceSpec) -> String {
    let mut words: Vec<String> = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", sh_quote(v)))
        .collect();
    words.extend(spec.argv().iter().map(|a| sh_quote(a)));
    // `%` is a newline in crontab commands.
    let cmd = words.join(" ").replace('%', "\\%");
    format!("@reboot {cmd} >/dev/null 2>&1 {CRON_MARK}")
}

fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The real system: runs programs, spawns the daemon, signals it.
pub struct RealSystem;

impl System for RealSystem {
    fn run(&mut self, argv: &[String], stdin: Option<&str>) -> io::Result<(bool, String)> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut child = Command::new(prog)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            text.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        Ok((out.status.success(), text))
    }

    fn spawn_detached(&mut self, argv: &[String], env: &[(String, String)]) -> io::Result<()> {
        use std::process::{Command, Stdio};
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut c = Command::new(prog);
        c.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        crate::sys::own_session(&mut c);
        c.spawn().map(drop)
    }

    fn stop_daemon(&mut self, base_dir: &Path) -> io::Result<()> {
        stop(base_dir, std::time::Duration::from_secs(10)).map(drop)
    }
}

/// Outcome of [`stop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It was running (this pid) and has released its lock.
    Stopped(u32),
    NotRunning,
}

/// Sends SIGTERM to the base directory's daemon and waits until it released
/// its lock.
pub fn stop(base_dir: &Path, wait: std::time::Duration) -> io::Result<Stopped> {
    use super::instance::{Liveness, probe};
    let pid = match probe(base_dir) {
        Liveness::Stopped => return Ok(Stopped::NotRunning),
        Liveness::Running { pid: Some(p) } => p,
        Liveness::Running { pid: None } => {
            return Err(io::Error::other(
                "a daemon holds the lock but daemon.pid is missing",
            ));
        }
    };
    terminate(pid)?;
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if probe(base_dir) == Liveness::Stopped {
            return Ok(Stopped::Stopped(pid));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(io::Error::other(format!(
        "daemon (pid {pid}) did not stop within {}s",
        wait.as_secs()
    )))
}

#[cfg(unix)]
fn terminate(pid: u32) -> io::Result<()> {
    // The pid comes from the daemon's pid file.
    crate::sys::terminate(pid)
}

#[cfg(not(unix))]
fn terminate(_pid: u32) -> io::Result<()> {
    Err(io::Error::other(
        "stopping the daemon is supported on Unix only",
    ))
}

#[cfg(test)]
mod tests;
