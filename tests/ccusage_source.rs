//! `--source ccusage`: windows from `ccusage blocks -j` (a stand-in script
//! named by `CSM_CCUSAGE`) instead of transcripts.
//!
//! One test function on purpose: it writes executable scripts and runs them,
//! and doing that from several threads at once can fail with ETXTBSY (a
//! script still open for writing in a child forked by another thread).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use predicates::prelude::*;

use support::{SONNET, Sandbox, json_ok, stdout_ok, usage_line};

#[derive(serde::Deserialize)]
struct Recorded {
    exit: i32,
    stdout: String,
}

fn recorded_blocks(case: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ccusage")
        .join(case)
        .join("ccusage.json");
    let rec: BTreeMap<String, Recorded> =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let blocks = &rec["blocks"];
    assert_eq!(blocks.exit, 0);
    blocks.stdout.clone()
}

/// Writes an executable shell script; `body` runs after an argument check
/// (csm must call `<program> blocks -j …`).
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "#!/bin/sh\n[ \"$1\" = blocks ] && [ \"$2\" = -j ] || {{ echo \"unexpected arguments: $*\" >&2; exit 64; }}\n{body}\n"
    );
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A script printing `stdout` verbatim.
fn printing(dir: &Path, name: &str, stdout: &str) -> PathBuf {
    let data = dir.join(format!("{name}.out"));
    fs::write(&data, stdout).unwrap();
    script(dir, name, &format!("cat '{}'", data.display()))
}

#[test]
fn source_ccusage() {
    let sb = Sandbox::new();
    let bin = sb.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    // Transcripts that would give other numbers, to prove they are not read.
    sb.write_session(
        "p",
        "s",
        &[usage_line(
            "2026-11-20T15:00:00.000Z",
            "s",
            1,
            SONNET,
            [7, 7, 7, 7],
        )],
    );

    // Missing program: a clear error naming it and how to fix it.
    let out = sb
        .cmd()
        .env("CSM_CCUSAGE", "/nonexistent/ccusage")
        .args(["blocks", "--json", "--source", "ccusage"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no report on failure");
    for needle in [
        "/nonexistent/ccusage",
        "CSM_CCUSAGE",
        "npm install -g ccusage",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
    }
    assert!(!stderr.contains("0 sessions"));

    // Without CSM_CCUSAGE, `ccusage` is looked up on PATH (empty here).
    sb.cmd()
        .env("PATH", &bin)
        .args(["blocks", "--source", "ccusage"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("`ccusage`"))
        .stderr(predicate::str::contains("CSM_CCUSAGE"));

    // Recorded `ccusage blocks -j` output comes back unchanged.
    for case in ["blocks-basic", "blocks-filter"] {
        let recorded = recorded_blocks(case);
        let fake = printing(&bin, &format!("ccusage-{case}"), &recorded);
        let got = stdout_ok(
            sb.cmd()
                .env("CSM_CCUSAGE", &fake)
                .args(["blocks", "--json", "--source", "ccusage"]),
        );
        assert_eq!(got, recorded, "{case}");
        // `--source` is global: before the command works too.
        let got = stdout_ok(
            sb.cmd()
                .env("CSM_CCUSAGE", &fake)
                .args(["--source", "ccusage", "blocks", "--json"]),
        );
        assert_eq!(got, recorded, "{case}");
        // The table is drawn from the same windows.
        let table = stdout_ok(
            sb.cmd()
                .env("CSM_CCUSAGE", &fake)
                .args(["blocks", "--source", "ccusage"]),
        );
        assert!(table.contains("Window Start"), "{table}");
    }
    // Listing filters apply to ccusage's windows.
    let fake = bin.join("ccusage-blocks-basic");
    let desc = json_ok(
        sb.cmd()
            .env("CSM_CCUSAGE", &fake)
            .args(["blocks", "--json", "--source", "ccusage", "--order", "desc"]),
    );
    let asc: serde_json::Value = serde_json::from_str(&recorded_blocks("blocks-basic")).unwrap();
    let mut ids = support::column(&asc, "blocks", "id");
    ids.reverse();
    assert_eq!(support::column(&desc, "blocks", "id"), ids);

    // A failing ccusage: exit status and its stderr in the message.
    let failing = script(&bin, "ccusage-fails", "echo 'ccusage exploded' >&2\nexit 1");
    let out = sb
        .cmd()
        .env("CSM_CCUSAGE", &failing)
        .args(["blocks", "--json", "--source", "ccusage"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("ccusage-fails"), "{stderr}");
    assert!(stderr.contains("ccusage exploded"), "{stderr}");
    assert!(stderr.contains("exit status: 1"), "{stderr}");

    // Output that is not ccusage's JSON: a clear error, not an empty report.
    for (name, text) in [
        (
            "ccusage-garbage",
            "Need to install the following packages:\nccusage@20\nOk to proceed? (y)\n",
        ),
        ("ccusage-empty", ""),
        ("ccusage-shape", "{\"blocks\": [{\"id\": 1}]}\n"),
        (
            "ccusage-badtime",
            &recorded_blocks("blocks-basic").replace("2026-11-20T10:00:00.000Z", "yesterday"),
        ),
    ] {
        let fake = printing(&bin, name, text);
        let out = sb
            .cmd()
            .env("CSM_CCUSAGE", &fake)
            .args(["blocks", "--json", "--source", "ccusage"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(stderr.contains("cannot read"), "{name}: {stderr}");
    }

    // Reports other than blocks need transcripts.
    sb.cmd()
        .env("CSM_CCUSAGE", &fake)
        .args(["daily", "--json", "--source", "ccusage"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("--source ccusage"));
}

/// csm's own `blocks --json` equals ccusage's, so feeding it back through
/// `--source ccusage` must print it unchanged. For an active window it does
/// not: `source::ccusage::parse_blocks` sets `first_entry` to the window
/// start and drops ccusage's `burnRate`/`projection`, which csm then
/// recomputes from the wrong start (63.16 instead of 66.67 tokens/min here).
#[test]
fn source_ccusage_keeps_active_window_rates() {
    let sb = Sandbox::new();
    support::small_history(&sb);
    let native = stdout_ok(sb.cmd().args(["blocks", "--json", "--active"]));
    assert!(native.contains("\"isActive\": true"));
    let bin = sb.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let fake = printing(&bin, "ccusage-active", &native);
    let got = stdout_ok(
        sb.cmd()
            .env("CSM_CCUSAGE", &fake)
            .args(["blocks", "--json", "--active", "--source", "ccusage"]),
    );
    assert_eq!(got, native);
}

/// The missing-program message repeats the OS error: thiserror's
/// `#[error("cannot run `{program}`: {source}. …")]` on a field named
/// `source` makes it both part of the message and the error's source, and
/// `csm: {e:#}` prints the chain, so "No such file or directory (os error
/// 2)" appears twice.
#[test]
fn missing_ccusage_message_names_the_os_error_once() {
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .env("CSM_CCUSAGE", "/nonexistent/ccusage")
        .args(["blocks", "--source", "ccusage"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}
