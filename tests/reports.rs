//! Reports on a small hand-written history (see `support::small_history`):
//! grouping by time zone and week start, ordering, date filters, projects,
//! 5-hour blocks and their token-limit status, and the plain tables.

mod support;

use serde_json::{Value, json};

use support::{Sandbox, column, json_ok, small_history, stdout_ok};

fn history() -> Sandbox {
    let sb = Sandbox::new();
    small_history(&sb);
    sb
}

fn totals_tokens(v: &Value) -> u64 {
    v["totals"]["totalTokens"].as_u64().unwrap()
}

/// The row of `list` whose `key` equals `value`.
fn row<'a>(v: &'a Value, list: &str, key: &str, value: &str) -> &'a Value {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no {list} row with {key} = {value} in {v}"))
}

// ---------------------------------------------------------------------------
// 4. Reports

#[test]
fn timezone_changes_daily_grouping() {
    let sb = history();
    let utc = json_ok(sb.cmd().args(["daily", "--json"]));
    assert_eq!(
        column(&utc, "daily", "date"),
        [
            "2026-11-10",
            "2026-11-15",
            "2026-11-17",
            "2026-11-18",
            "2026-11-20"
        ]
    );
    assert_eq!(row(&utc, "daily", "date", "2026-11-17")["totalTokens"], 260);

    // 2026-11-17T23:30Z is 00:30 on the 18th in Warsaw (UTC+1 in November).
    for args in [
        &["daily", "--json", "--timezone", "Europe/Warsaw"][..],
        &["--timezone=Europe/Warsaw", "daily", "--json"][..],
        &["daily", "-j", "-z", "Europe/Warsaw"][..],
    ] {
        let waw = json_ok(sb.cmd().args(args));
        assert_eq!(
            column(&waw, "daily", "date"),
            ["2026-11-10", "2026-11-15", "2026-11-18", "2026-11-20"],
            "{args:?}"
        );
        let d18 = row(&waw, "daily", "date", "2026-11-18");
        assert_eq!(d18["totalTokens"], 260 + 26);
        assert_eq!(d18["inputTokens"], 55);
        assert_eq!(totals_tokens(&waw), totals_tokens(&utc));
    }

    // A zone west of UTC moves nothing here but must still parse and group.
    let ny = json_ok(sb.cmd().args(["daily", "--json", "-z", "America/New_York"]));
    assert_eq!(column(&ny, "daily", "date").len(), 5);
    // The display zone also decides which month/session day an entry is on.
    let m = json_ok(
        sb.cmd()
            .args(["monthly", "--json", "-z", "Pacific/Kiritimati"]),
    );
    assert_eq!(column(&m, "monthly", "month"), ["2026-11"]);
}

#[test]
fn weekly_keys_follow_start_of_week() {
    let sb = history();
    let sunday = json_ok(sb.cmd().args(["weekly", "--json"]));
    // 2026-11-10 is a Tuesday, 2026-11-15 a Sunday.
    assert_eq!(
        column(&sunday, "weekly", "week"),
        ["2026-11-08", "2026-11-15"]
    );
    assert_eq!(
        row(&sunday, "weekly", "week", "2026-11-08")["totalTokens"],
        1000
    );
    assert_eq!(
        row(&sunday, "weekly", "week", "2026-11-15")["totalTokens"],
        8100 + 260 + 26 + 6000
    );
    let explicit = json_ok(
        sb.cmd()
            .args(["weekly", "--json", "--start-of-week", "sunday"]),
    );
    assert_eq!(explicit, sunday);

    let monday = json_ok(
        sb.cmd()
            .args(["weekly", "--json", "--start-of-week", "monday"]),
    );
    assert_eq!(
        column(&monday, "weekly", "week"),
        ["2026-11-09", "2026-11-16"]
    );
    // Sunday the 15th now closes the week of Monday the 9th.
    assert_eq!(
        row(&monday, "weekly", "week", "2026-11-09")["totalTokens"],
        1000 + 8100
    );
    assert_eq!(monday["totals"], sunday["totals"]);

    let wednesday = json_ok(sb.cmd().args(["weekly", "--json", "-w", "wednesday"]));
    assert_eq!(
        column(&wednesday, "weekly", "week"),
        ["2026-11-04", "2026-11-11", "2026-11-18"]
    );
}

#[test]
fn order_desc_reverses_every_listing() {
    let sb = history();
    for (cmd, list, key) in [
        ("daily", "daily", "date"),
        ("weekly", "weekly", "week"),
        ("blocks", "blocks", "id"),
    ] {
        let asc = json_ok(sb.cmd().args([cmd, "--json", "--order", "asc"]));
        let desc = json_ok(sb.cmd().args([cmd, "--json", "--order", "desc"]));
        let mut a = column(&asc, list, key);
        let d = column(&desc, list, key);
        assert!(a.len() >= 2, "{cmd}: {a:?}");
        a.reverse();
        assert_eq!(d, a, "{cmd} --order desc");
        if cmd != "blocks" {
            assert_eq!(asc["totals"], desc["totals"], "{cmd}");
        }
    }
    let daily = json_ok(sb.cmd().args(["daily", "--json", "-o", "desc"]));
    assert_eq!(column(&daily, "daily", "date")[0], "2026-11-20");
    // Sessions are listed most expensive first (as ccusage 20's session report).
    let sessions = json_ok(sb.cmd().args(["session", "--json"]));
    assert_eq!(
        column(&sessions, "sessions", "sessionId"),
        ["a2", "a1", "b1"]
    );
}

#[test]
fn since_and_until_accept_both_date_forms() {
    let sb = history();
    let forms = [
        ["--since", "20261115", "--until", "20261118"],
        ["--since", "2026-11-15", "--until", "2026-11-18"],
        ["--since", "2026-11-15", "--until", "20261118"],
        ["-s", "20261115", "-u", "2026-11-18"],
    ];
    let mut first: Option<Value> = None;
    for f in forms {
        let v = json_ok(sb.cmd().arg("daily").arg("--json").args(f));
        assert_eq!(
            column(&v, "daily", "date"),
            ["2026-11-15", "2026-11-17", "2026-11-18"],
            "{f:?}"
        );
        assert_eq!(totals_tokens(&v), 8100 + 260 + 26);
        match &first {
            None => first = Some(v),
            Some(f0) => assert_eq!(&v, f0, "{f:?}"),
        }
    }
    // Bounds are inclusive and apply to each report.
    let since_only = json_ok(sb.cmd().args(["daily", "--json", "--since", "2026-11-18"]));
    assert_eq!(
        column(&since_only, "daily", "date"),
        ["2026-11-18", "2026-11-20"]
    );
    let until_only = json_ok(sb.cmd().args(["monthly", "--json", "--until", "20261109"]));
    assert_eq!(until_only["monthly"], json!([]));
    let blocks = json_ok(sb.cmd().args([
        "blocks",
        "--json",
        "--since",
        "20261115",
        "--until",
        "2026-11-17",
    ]));
    let ids: Vec<String> = column(&blocks, "blocks", "id")
        .into_iter()
        .filter(|id| !id.starts_with("gap-"))
        .collect();
    assert_eq!(
        ids,
        ["2026-11-15T10:00:00.000Z", "2026-11-17T23:00:00.000Z"]
    );
    // The date is taken in the display zone: the 23:30Z entry is on the 18th in Warsaw.
    let waw = json_ok(sb.cmd().args([
        "daily",
        "--json",
        "-z",
        "Europe/Warsaw",
        "--until",
        "20261117",
    ]));
    assert_eq!(column(&waw, "daily", "date"), ["2026-11-10", "2026-11-15"]);
}

#[test]
fn project_filter_keeps_one_project_and_names_it_in_daily_rows() {
    let sb = history();
    let all = json_ok(sb.cmd().args(["daily", "--json"]));
    for r in all["daily"].as_array().unwrap() {
        assert!(
            r.get("project").is_none(),
            "no project key without --project: {r}"
        );
    }
    for args in [
        &["daily", "--json", "--project=-home-dev-beta"][..],
        &["daily", "--json", "-p=-home-dev-beta"][..],
    ] {
        let beta = json_ok(sb.cmd().args(args));
        assert_eq!(
            column(&beta, "daily", "date"),
            ["2026-11-17", "2026-11-18"],
            "{args:?}"
        );
        for r in beta["daily"].as_array().unwrap() {
            assert_eq!(r["project"], "-home-dev-beta", "{r}");
        }
        assert_eq!(totals_tokens(&beta), 260 + 26);
    }
    let alpha = json_ok(
        sb.cmd()
            .args(["session", "--json", "--project=-home-dev-alpha"]),
    );
    let mut ids = column(&alpha, "sessions", "sessionId");
    ids.sort();
    assert_eq!(ids, ["a1", "a2"]);
    let none = json_ok(
        sb.cmd()
            .args(["daily", "--json", "--project", "no-such-project"]),
    );
    assert_eq!(none["daily"], json!([]));
    assert_eq!(totals_tokens(&none), 0);
}

/// Claude Code names project directories after the encoded working
/// directory, so nearly every project name starts with `-`
/// (`-home-dev-beta`). clap takes such a value for a flag unless the argument
/// allows hyphen values: `--project -home-dev-beta` fails with "a value is
/// required for '--project <NAME>'" (exit 2); only `--project=-home-dev-beta`
/// works.
#[test]
fn project_names_starting_with_a_dash_work_without_equals_sign() {
    let sb = history();
    let v = json_ok(
        sb.cmd()
            .args(["daily", "--json", "--project", "-home-dev-beta"]),
    );
    assert_eq!(column(&v, "daily", "date"), ["2026-11-17", "2026-11-18"]);
    let v = json_ok(
        sb.cmd()
            .args(["session", "--json", "-p", "-home-dev-alpha"]),
    );
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2);
}

const ACTIVE_ID: &str = "2026-11-20T14:00:00.000Z";

fn active_block(v: &Value) -> &Value {
    let active: Vec<&Value> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["isActive"] == true)
        .collect();
    assert_eq!(active.len(), 1, "one active block in {v}");
    active[0]
}

#[test]
fn blocks_active_recent_and_token_limits() {
    let sb = history();
    let all = json_ok(sb.cmd().args(["blocks", "--json"]));
    let ids = column(&all, "blocks", "id");
    assert_eq!(
        ids,
        [
            "2026-11-10T09:00:00.000Z",
            "gap-2026-11-10T14:10:00.000Z",
            "2026-11-15T10:00:00.000Z",
            "gap-2026-11-15T15:25:30.500Z",
            "2026-11-17T23:00:00.000Z",
            "gap-2026-11-18T04:30:00.000Z",
            "2026-11-18T08:00:00.000Z",
            "gap-2026-11-18T13:00:00.000Z",
            ACTIVE_ID,
        ]
    );
    let a = active_block(&all);
    assert_eq!(a["id"], ACTIVE_ID);
    assert_eq!(a["endTime"], "2026-11-20T19:00:00.000Z");
    assert_eq!(a["totalTokens"], 6000);
    assert!(
        a["burnRate"].is_object() && a["projection"].is_object(),
        "{a}"
    );
    // 6,000 tokens over 90 minutes, 140 minutes left: 6000 + 140 * 66.67.
    assert_eq!(a["projection"]["totalTokens"], 15333);
    assert_eq!(a["projection"]["remainingMinutes"], 140);
    assert!(a.get("tokenLimitStatus").is_none(), "only with -t: {a}");
    for b in all["blocks"].as_array().unwrap() {
        if b["isActive"] == false {
            assert!(b["burnRate"].is_null() && b["projection"].is_null(), "{b}");
        }
    }

    let active = json_ok(sb.cmd().args(["blocks", "--json", "--active"]));
    assert_eq!(column(&active, "blocks", "id"), [ACTIVE_ID]);
    assert_eq!(&active["blocks"][0], a);

    // Last 3 days before 2026-11-20T16:40Z: windows from 2026-11-17T16:40 on.
    let recent = json_ok(sb.cmd().args(["blocks", "--json", "--recent"]));
    assert_eq!(
        column(&recent, "blocks", "id"),
        [
            "2026-11-17T23:00:00.000Z",
            "gap-2026-11-18T04:30:00.000Z",
            "2026-11-18T08:00:00.000Z",
            "gap-2026-11-18T13:00:00.000Z",
            ACTIVE_ID,
        ]
    );

    // max = the largest completed window (2026-11-15, 8,100 tokens).
    let max = json_ok(sb.cmd().args(["blocks", "--json", "--token-limit", "max"]));
    assert_eq!(
        active_block(&max)["tokenLimitStatus"],
        json!({"limit": 8100, "percentUsed": 15333.0 / 8100.0 * 100.0,
               "projectedUsage": 15333, "status": "exceeds"})
    );
    for b in max["blocks"].as_array().unwrap() {
        if b["isActive"] == false {
            assert!(b.get("tokenLimitStatus").is_none(), "{b}");
        }
    }
    let max_upper = json_ok(sb.cmd().args(["blocks", "--json", "-t", "MAX"]));
    assert_eq!(max_upper, max);

    // Fixed limits: exceeds (> 100 %), warning (> 80 %), ok.
    for (limit, status) in [("1000", "exceeds"), ("18000", "warning"), ("20000", "ok")] {
        for extra in [&[][..], &["--active"][..], &["--recent"][..]] {
            let v = json_ok(sb.cmd().args(["blocks", "--json", "-t", limit]).args(extra));
            let s = &active_block(&v)["tokenLimitStatus"];
            assert_eq!(s["limit"], limit.parse::<u64>().unwrap(), "{extra:?}");
            assert_eq!(s["projectedUsage"], 15333);
            assert_eq!(s["status"], status, "-t {limit} {extra:?}: {s}");
        }
    }

    // Outside any window nothing is active.
    let later = json_ok(
        sb.cmd()
            .env("CSM_NOW", "2026-11-21T12:00:00Z")
            .args(["blocks", "--json", "--active", "-t", "1000"]),
    );
    assert_eq!(later["blocks"], json!([]));
    let later_all = json_ok(
        sb.cmd()
            .env("CSM_NOW", "2026-11-21T12:00:00Z")
            .args(["blocks", "--json"]),
    );
    assert!(
        later_all["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["isActive"] == false)
    );
}

/// ccusage 20.0.24's binary takes `max` from the windows left after
/// `--active`/`--recent` (measured: with `--active` no completed window is left,
/// so the active one gets no tokenLimitStatus), and so does csm.
#[test]
fn token_limit_max_comes_from_the_windows_shown() {
    let sb = history();
    let v = json_ok(sb.cmd().args(["blocks", "--json", "-t", "max", "--active"]));
    assert!(active_block(&v).get("tokenLimitStatus").is_none(), "{v}");
    let all = json_ok(sb.cmd().args(["blocks", "--json", "-t", "max"]));
    assert_eq!(
        active_block(&all)["tokenLimitStatus"]["limit"],
        8100,
        "{all}"
    );
}

#[test]
fn session_length_sets_window_size() {
    let sb = history();
    let v = json_ok(sb.cmd().args(["blocks", "--json", "--session-length", "1"]));
    let real: Vec<&Value> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["isGap"] == false)
        .collect();
    // 14:05 and 15:35 are more than an hour apart: two windows instead of one.
    let starts: Vec<&str> = real
        .iter()
        .map(|b| b["startTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-11-10T09:00:00.000Z",
            "2026-11-15T10:00:00.000Z",
            "2026-11-17T23:00:00.000Z",
            "2026-11-18T08:00:00.000Z",
            "2026-11-20T14:00:00.000Z",
            "2026-11-20T15:00:00.000Z",
        ]
    );
    for b in &real {
        let start: jiff::Timestamp = b["startTime"].as_str().unwrap().parse().unwrap();
        let end: jiff::Timestamp = b["endTime"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            end.duration_since(start),
            jiff::SignedDuration::from_hours(1)
        );
    }
    // Last entry 15:35, now 16:40: more than an hour ago, nothing active.
    assert!(real.iter().all(|b| b["isActive"] == false));
    let gaps = column(&v, "blocks", "id")
        .into_iter()
        .filter(|id| id.starts_with("gap-"))
        .count();
    assert_eq!(gaps, 5);

    // Inside the second one-hour window it is the active one.
    let at = json_ok(
        sb.cmd()
            .env("CSM_NOW", "2026-11-20T15:50:00Z")
            .args(["blocks", "--json", "--active", "-n", "1"]),
    );
    assert_eq!(column(&at, "blocks", "id"), ["2026-11-20T15:00:00.000Z"]);
    assert_eq!(at["blocks"][0]["totalTokens"], 3000);
    // Fractional hours work too.
    let half = json_ok(sb.cmd().args(["blocks", "--json", "-n", "0.5"]));
    let first = &half["blocks"][0];
    assert_eq!(first["endTime"], "2026-11-10T09:30:00.000Z");
}

// ---------------------------------------------------------------------------
// 5. Tables

fn assert_plain(name: &str, text: &str) {
    assert!(
        !text.contains('\u{1b}'),
        "{name}: escape codes in non-terminal output:\n{text:?}"
    );
    for line in text.lines() {
        assert!(
            line.chars().count() <= 120,
            "{name}: line wider than the 120-column default: {line:?}"
        );
    }
}

#[test]
fn plain_tables() {
    let sb = history();
    let cases: [(&str, &[&str]); 5] = [
        ("daily_breakdown", &["daily", "--breakdown"]),
        ("blocks", &["blocks"]),
        ("blocks_token_limit", &["blocks", "-t", "max"]),
        ("session", &["session"]),
        ("monthly", &["monthly"]),
    ];
    for (name, args) in cases {
        let plain = stdout_ok(sb.cmd().arg("--no-color").args(args));
        assert_plain(name, &plain);
        insta::assert_snapshot!(name, plain);
        // Output that is not a terminal never has colour, flag or not, and
        // NO_COLOR gives the same.
        let piped = stdout_ok(sb.cmd().args(args));
        assert_eq!(piped, plain, "{name} without --no-color");
        let no_color = stdout_ok(sb.cmd().env("NO_COLOR", "1").args(args));
        assert_eq!(no_color, plain, "{name} with NO_COLOR");
        // Neither COLUMNS nor a narrow-terminal hint changes piped output.
        let narrow = stdout_ok(sb.cmd().env("COLUMNS", "60").args(args));
        assert_eq!(narrow, plain, "{name} with COLUMNS=60");
    }
}

#[test]
fn tables_name_totals_and_warn_about_unknown_models() {
    let sb = history();
    sb.write_session(
        "-home-dev-gamma",
        "g1",
        &[support::usage_line(
            "2026-11-19T12:00:00.000Z",
            "g1",
            1,
            "claude-imaginary-7",
            [1, 1, 0, 0],
        )],
    );
    let out = sb.cmd().args(["daily"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Total"), "{stdout}");
    assert!(stdout.contains("15,388"), "grand total: {stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("claude-imaginary-7"), "{stderr}");
    // JSON output stays clean of notes: stdout is exactly one JSON document.
    let v = json_ok(sb.cmd().args(["daily", "--json"]));
    assert_eq!(totals_tokens(&v), 15388);
}
