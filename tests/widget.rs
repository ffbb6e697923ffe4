//! The Scriptable widget's logic under node (`node --test`), on its fixtures
//! and on a snapshot the real csm writes now, so a change to the snapshot
//! that breaks the widget fails here.

mod support;

use std::path::Path;
use std::process::Command;

use support::{NOW, Sandbox};

#[test]
fn scriptable_widget_logic_passes_under_node() {
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok {
        let required = std::env::var_os("CI").is_some()
            || std::env::var_os("CSM_REQUIRE_SYSTEM_TOOLS").is_some();
        assert!(
            !required,
            "node is missing (install nodejs): the widget is untested"
        );
        eprintln!("skipped: node not installed");
        return;
    }
    let sb = Sandbox::new();
    support::small_history(&sb);
    let snapshot = support::stdout_ok(sb.cmd().args(["status", "--format", "json"]));
    let sample = sb.path().join("monitor_data.json");
    std::fs::write(&sample, snapshot).unwrap();
    run_widget_tests(&sample);

    // Several accounts: the widget reads the top level, the first account's.
    let config = sb.path().join("accounts.toml");
    std::fs::write(
        &config,
        format!(
            "[[accounts]]\nname = \"main\"\nclaude_dir = \"{}\"\n\
             [[accounts]]\nname = \"other\"\nclaude_dir = \"{}\"\n",
            sb.claude().display(),
            sb.path().join("no-such-dir").display()
        ),
    )
    .unwrap();
    let several = support::stdout_ok(
        sb.bare_cmd()
            .arg("--config")
            .arg(&config)
            .args(["status", "--format", "json"]),
    );
    let v: serde_json::Value = serde_json::from_str(&several).unwrap();
    assert_eq!(v["accounts"].as_array().map(Vec::len), Some(2));
    std::fs::write(&sample, several).unwrap();
    run_widget_tests(&sample);
}

/// The widget's node tests, the last one on the snapshot at `sample`.
fn run_widget_tests(sample: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("node")
        // One file named (directory arguments changed meaning across node
        // versions) and the TAP reporter, whose summary is checked below.
        .args(["--test", "--test-reporter=tap"])
        .arg(root.join("widgets/scriptable/test/widget.test.js"))
        .env("CSM_SAMPLE_SNAPSHOT", sample)
        .env("CSM_SAMPLE_NOW", NOW)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every test ran, the one on csm's own output included.
    assert!(stdout.contains("# skipped 0"), "{stdout}");
    assert!(stdout.contains("# fail 0"), "{stdout}");
}
