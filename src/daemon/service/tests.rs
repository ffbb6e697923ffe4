use std::collections::VecDeque;

use super::*;

/// A system that records every command and keeps a crontab in memory.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    crontab: Option<String>,
    systemd: bool,
    has_crontab_program: bool,
    spawned: Vec<Vec<String>>,
    stopped: Vec<PathBuf>,
    /// Commands that fail, by their first words.
    failing: VecDeque<String>,
}

impl System for Recorder {
    fn run(&mut self, argv: &[String], stdin: Option<&str>) -> io::Result<(bool, String)> {
        let line = argv.join(" ");
        self.calls.push(line.clone());
        if self.failing.iter().any(|f| line.starts_with(f.as_str())) {
            return Ok((false, "failed on purpose".into()));
        }
        match argv.first().map(String::as_str) {
            Some("systemctl") if !self.systemd => {
                Err(io::Error::new(io::ErrorKind::NotFound, "no systemctl"))
            }
            Some("crontab") if !self.has_crontab_program => {
                Err(io::Error::new(io::ErrorKind::NotFound, "no crontab"))
            }
            Some("crontab") if argv.get(1).map(String::as_str) == Some("-l") => {
                Ok(match &self.crontab {
                    Some(t) => (true, t.clone()),
                    None => (false, "no crontab for user".into()),
                })
            }
            Some("crontab") => {
                self.crontab = stdin.map(str::to_string);
                Ok((true, String::new()))
            }
            _ => Ok((true, String::new())),
        }
    }

    fn spawn_detached(&mut self, argv: &[String], _env: &[(String, String)]) -> io::Result<()> {
        self.spawned.push(argv.to_vec());
        Ok(())
    }

    fn stop_daemon(&mut self, base_dir: &Path) -> io::Result<()> {
        self.stopped.push(base_dir.to_path_buf());
        Ok(())
    }
}

fn spec(home: &Path, exe: &Path) -> ServiceSpec {
    ServiceSpec {
        exe: exe.to_path_buf(),
        args: vec![
            "--claude-dir".into(),
            home.join("Claude data/100% mine").into_os_string(),
        ],
        env: vec![(
            "CSM_HOME".into(),
            home.join("csm $HOME's").to_string_lossy().into_owned(),
        )],
        home: home.to_path_buf(),
        xdg_config_home: None,
        base_dir: home.join("csm $HOME's"),
        uid: 501,
    }
}

fn system_tools_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("CSM_REQUIRE_SYSTEM_TOOLS").is_some()
}

#[test]
fn systemd_unit_quotes_paths_and_passes_systemd_analyze() {
    let home = tempfile::tempdir().unwrap();
    // A real executable: systemd-analyze checks that ExecStart exists.
    let exe = std::env::current_exe().unwrap();
    let s = spec(home.path(), &exe);
    let unit = systemd_unit(&s);
    assert!(unit.contains("\"--claude-dir\"") || unit.contains(" --claude-dir "));
    assert!(unit.contains("100%% mine"), "{unit}");
    assert!(unit.contains("csm $$HOME's"), "{unit}");
    assert!(unit.contains(" daemon run\n"), "{unit}");
    assert!(unit.contains("RestartPreventExitStatus=3"));

    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        assert!(
            !system_tools_required(),
            "systemd-analyze is missing (install the systemd package)"
        );
        eprintln!("skipped: systemd-analyze not installed");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(UNIT_NAME);
    std::fs::write(&path, &unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}\n{unit}"
    );
    // No warnings about our unit either (lines naming it).
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("csm.service"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}\n{unit}");

    // The check is real: a broken unit fails it.
    std::fs::write(
        &path,
        unit.replace(&exe.to_string_lossy().into_owned(), "/nonexistent/csm"),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn launchd_plist_round_trips_through_a_plist_parser() {
    let home = tempfile::tempdir().unwrap();
    let s = spec(home.path(), Path::new("/Applications/My Tools/csm"));
    let text = launchd_plist(&s);
    let v: plist::Value = plist::from_bytes(text.as_bytes()).expect("valid plist");
    let d = v.as_dictionary().unwrap();
    assert_eq!(
        d.get("Label").and_then(|l| l.as_string()),
        Some(LAUNCHD_LABEL)
    );
    let args: Vec<&str> = d
        .get("ProgramArguments")
        .and_then(|a| a.as_array())
        .unwrap()
        .iter()
        .map(|x| x.as_string().unwrap())
        .collect();
    let want = s.argv();
    assert_eq!(args, want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(args[0], "/Applications/My Tools/csm");
    assert_eq!(&args[args.len() - 2..], ["daemon", "run"]);
    let env = d
        .get("EnvironmentVariables")
        .and_then(|e| e.as_dictionary())
        .unwrap();
    assert_eq!(
        env.get("CSM_HOME").and_then(|x| x.as_string()),
        Some(s.env[0].1.as_str())
    );
    let keep = d.get("KeepAlive").and_then(|k| k.as_dictionary()).unwrap();
    assert_eq!(
        keep.get("SuccessfulExit").and_then(|b| b.as_boolean()),
        Some(false)
    );
    assert_eq!(d.get("RunAtLoad").and_then(|b| b.as_boolean()), Some(true));
    // Written back, it is the same document.
    let mut again = Vec::new();
    plist::to_writer_xml(&mut again, &v).unwrap();
    assert_eq!(
        String::from_utf8(again).unwrap().trim_end(),
        text.trim_end()
    );
}

#[test]
fn systemd_install_and_uninstall_in_a_temp_home() {
    let home = tempfile::tempdir().unwrap();
    let s = spec(home.path(), Path::new("/usr/local/bin/csm"));
    let mut sys = Recorder {
        systemd: true,
        ..Default::default()
    };
    let plan = plan_install(Manager::Systemd, &s);
    apply(&plan, &mut sys).unwrap();
    let unit = home.path().join(".config/systemd/user/csm.service");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), systemd_unit(&s));
    assert_eq!(
        sys.calls,
        [
            "systemctl --user daemon-reload",
            "systemctl --user enable --now csm.service"
        ]
    );
    assert_eq!(installed(&s, &mut sys), [Manager::Systemd]);

    sys.calls.clear();
    apply(&plan_uninstall(Manager::Systemd, &s), &mut sys).unwrap();
    assert!(!unit.exists());
    assert_eq!(
        sys.calls,
        [
            "systemctl --user disable --now csm.service",
            "systemctl --user daemon-reload"
        ]
    );
}

#[test]
fn a_failing_enable_is_reported_with_its_output() {
    let home = tempfile::tempdir().unwrap();
    let s = spec(home.path(), Path::new("/usr/local/bin/csm"));
    let mut sys = Recorder {
        systemd: true,
        failing: ["systemctl --user enable".to_string()].into(),
        ..Default::default()
    };
    let err = apply(&plan_install(Manager::Systemd, &s), &mut sys).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("systemctl --user enable --now csm.service"),
        "{msg}"
    );
    assert!(msg.contains("failed on purpose"), "{msg}");
}

#[test]
fn launchd_install_writes_the_agent_and_bootstraps_it() {
    let home = tempfile::tempdir().unwrap();
    let s = spec(home.path(), Path::new("/usr/local/bin/csm"));
    let mut sys = Recorder::default();
    apply(&plan_install(Manager::Launchd, &s), &mut sys).unwrap();
    let plist_path = home
        .path()
        .join("Library/LaunchAgents/claude-session-monitor.daemon.plist");
    plist::from_file::<_, plist::Value>(&plist_path).unwrap();
    assert_eq!(
        sys.calls,
        [
            "launchctl bootout gui/501/claude-session-monitor.daemon".to_string(),
            format!("launchctl bootstrap gui/501 {}", plist_path.display()),
        ]
    );
    apply(&plan_uninstall(Manager::Launchd, &s), &mut sys).unwrap();
    assert!(!plist_path.exists());
}

#[test]
fn cron_fallback_keeps_other_lines_and_is_idempotent() {
    let home = tempfile::tempdir().unwrap();
    let s = spec(home.path(), Path::new("/opt/csm bin/csm"));
    let mine = "0 * * * * backup.sh\n@daily cleanup % x\n".to_string();
    let mut sys = Recorder {
        has_crontab_program: true,
        crontab: Some(mine.clone()),
        ..Default::default()
    };
    assert_eq!(detect(&mut sys), Some(Manager::Cron));
    let plan = plan_install(Manager::Cron, &s);
    apply(&plan, &mut sys).unwrap();
    apply(&plan, &mut sys).unwrap();
    let tab = sys.crontab.clone().unwrap();
    assert!(tab.starts_with(&mine), "{tab}");
    let ours: Vec<&str> = tab.lines().filter(|l| l.contains(CRON_MARK)).collect();
    assert_eq!(ours.len(), 1, "{tab}");
    assert!(ours[0].starts_with("@reboot CSM_HOME='"), "{}", ours[0]);
    assert!(ours[0].contains("'/opt/csm bin/csm'"), "{}", ours[0]);
    assert!(ours[0].contains("100\\% mine"), "{}", ours[0]);
    // Started now as well (cron would only start it at the next boot).
    assert_eq!(sys.spawned.len(), 2);
    assert_eq!(installed(&s, &mut sys), [Manager::Cron]);

    apply(&plan_uninstall(Manager::Cron, &s), &mut sys).unwrap();
    assert_eq!(sys.crontab.as_deref(), Some(mine.as_str()));
    assert_eq!(sys.stopped, std::slice::from_ref(&s.base_dir));
}

#[test]
fn detection_prefers_systemd_and_knows_when_nothing_is_there() {
    if cfg!(target_os = "macos") {
        return;
    }
    let mut sys = Recorder {
        systemd: true,
        has_crontab_program: true,
        ..Default::default()
    };
    assert_eq!(detect(&mut sys), Some(Manager::Systemd));
    // systemctl present but no user manager (a container, an ssh session
    // without lingering): cron.
    let mut sys = Recorder {
        systemd: true,
        has_crontab_program: true,
        failing: ["systemctl --user show-environment".to_string()].into(),
        ..Default::default()
    };
    assert_eq!(detect(&mut sys), Some(Manager::Cron));
    let mut sys = Recorder::default();
    assert_eq!(detect(&mut sys), None);
}

#[test]
fn dry_run_describes_files_and_commands() {
    let home = tempfile::tempdir().unwrap();
    let s = spec(home.path(), Path::new("/usr/local/bin/csm"));
    let text = plan_install(Manager::Systemd, &s).describe();
    assert!(text.starts_with("service manager: systemd\n"), "{text}");
    assert!(text.contains("[Service]"));
    assert!(text.contains("run systemctl --user enable --now csm.service"));
}
