use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;
use crate::config::TokenLimit;
use crate::engine::overview::DashboardSettings;
use crate::period::PeriodSettings;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn block(start: &str, first: &str, last: &str, tokens: [u64; 4], cost: f64) -> Block {
    let start = t(start);
    Block {
        start,
        end: start
            .checked_add(jiff::SignedDuration::from_hours(5))
            .unwrap(),
        first_entry: Some(t(first)),
        actual_end: Some(t(last)),
        is_gap: false,
        entries: 3,
        tokens: TokenCounts {
            input_tokens: tokens[0],
            output_tokens: tokens[1],
            cache_creation_input_tokens: tokens[2],
            cache_read_input_tokens: tokens[3],
        },
        cost_usd: cost,
        models: vec!["claude-sonnet-4-5-20250929".into()],
        usage_limit_reset: None,
    }
}

const NOW: &str = "2026-11-20T16:40:00Z";

/// Four windows: one in the previous period (October), two completed this
/// period, one active at [`NOW`]; a gap between the last two.
fn blocks() -> Vec<Block> {
    let v = vec![
        block(
            "2026-10-30T08:00:00Z",
            "2026-10-30T08:05:00Z",
            "2026-10-30T09:00:00Z",
            [9000, 9000, 0, 90000],
            9.0,
        ),
        block(
            "2026-11-10T09:00:00Z",
            "2026-11-10T09:10:00Z",
            "2026-11-10T11:00:00Z",
            [100, 200, 300, 400],
            0.25,
        ),
        block(
            "2026-11-15T10:00:00Z",
            "2026-11-15T10:20:00Z",
            "2026-11-15T12:20:00Z",
            [1000, 2000, 0, 5000],
            1.5,
        ),
        Block::gap(t("2026-11-15T17:20:00Z"), t("2026-11-20T14:05:00Z")),
        block(
            "2026-11-20T14:00:00Z",
            "2026-11-20T14:05:00Z",
            "2026-11-20T15:35:00Z",
            [1000, 2000, 0, 0],
            0.75,
        ),
    ];
    v
}

fn settings() -> DashboardSettings {
    DashboardSettings {
        period: PeriodSettings {
            start_day: 1,
            sessions_per_period: 50,
            plan_price_usd: Some(100.0),
        },
        token_limit: TokenLimit::Max,
        idle_after: jiff::SignedDuration::from_mins(10),
    }
}

fn dashboard(blocks: &[Block], tz: &TimeZone) -> DashboardData {
    crate::engine::overview::build(crate::engine::overview::Inputs {
        blocks,
        detail: crate::engine::overview::CurrentDetail {
            models: vec![ModelShare {
                model: "claude-sonnet-4-5-20250929".into(),
                tokens: 3000,
                cost_usd: 0.75,
                share: 1.0,
            }],
            pace: Some(crate::blocks::Pace {
                tokens_per_minute: 100.0,
                input_output_per_minute: 100.0,
                cost_per_hour: 1.5,
                basis: crate::blocks::PaceBasis::Recent,
            }),
            future: None,
        },
        kept: Maxima::default(),
        window_length: crate::blocks::window_length(5.0),
        now: t(NOW),
        tz,
        settings: settings(),
    })
    .unwrap()
}

pub(crate) fn sample() -> (Vec<Block>, DashboardData, Snapshot) {
    let tz = TimeZone::get("Europe/Warsaw").unwrap();
    let blocks = blocks();
    let d = dashboard(&blocks, &tz);
    let s = build(&Inputs {
        blocks: &blocks,
        data: &d,
        now: t(NOW),
        timezone: Some("Europe/Warsaw"),
        start_day: 1,
        plan_price_usd: Some(100.0),
        source: "daemon",
    });
    (blocks, d, s)
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/monitor_data.schema.json")).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Every schema violation of `v`, as text.
pub(crate) fn schema_errors(v: &serde_json::Value) -> Vec<String> {
    validator()
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn original_keys_describe_the_billing_period() {
    let (_, d, s) = sample();
    // Two windows started in November; October's belongs to the last period.
    assert_eq!(s.total_sessions_this_month, 3);
    assert_eq!(s.total_sessions_this_month, d.period.sessions.used);
    assert_eq!(s.sessions_left, 47);
    assert!((s.total_cost_this_month - 2.5).abs() < 1e-9);
    // The largest completed window is October's.
    assert_eq!(s.max_tokens_per_session, 108_000);
    assert_eq!(
        s.current_sessions
            .iter()
            .map(|r| r.session_id.as_str())
            .collect::<Vec<_>>(),
        [
            "2026-11-10T09:00:00.000Z",
            "2026-11-15T10:00:00.000Z",
            "2026-11-20T14:00:00.000Z"
        ]
    );
    assert_eq!(
        s.current_sessions
            .iter()
            .filter(|r| r.is_active)
            .map(|r| r.total_tokens)
            .collect::<Vec<_>>(),
        [3000]
    );
    // The period starts at local midnight in Warsaw (UTC+1 in November).
    assert_eq!(s.billing_period_start, t("2026-10-31T23:00:00Z"));
    assert_eq!(s.billing_period_end, t("2026-11-30T23:00:00Z"));
    let a = s.active_block.as_ref().unwrap();
    assert_eq!(a.minutes_left, 140);
    assert!((a.percent_of_limit.unwrap() - 3000.0 * 100.0 / 108_000.0).abs() < 1e-9);
}

#[test]
fn the_file_matches_its_json_schema() {
    let (_, _, s) = sample();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(schema_errors(&v), Vec::<String>::new());

    // The validator does reject what the schema forbids.
    let mut missing = v.clone();
    missing.as_object_mut().unwrap().remove("current_sessions");
    assert!(!schema_errors(&missing).is_empty());
    let mut wrong = v.clone();
    wrong["active_block"]["minutes_left"] = serde_json::json!(-3);
    assert!(!schema_errors(&wrong).is_empty());
    let mut bad_time = v;
    bad_time["last_update"] = serde_json::json!("yesterday");
    assert!(!schema_errors(&bad_time).is_empty());
}

#[test]
fn an_idle_history_has_no_active_block_and_still_validates() {
    let tz = TimeZone::get("Europe/Warsaw").unwrap();
    let mut blocks = blocks();
    blocks.pop();
    blocks.pop();
    let d = dashboard(&blocks, &tz);
    let s = build(&Inputs {
        blocks: &blocks,
        data: &d,
        now: t(NOW),
        timezone: None,
        start_day: 1,
        plan_price_usd: None,
        source: "in-process",
    });
    assert!(s.active_block.is_none());
    assert!(s.current_sessions.iter().all(|r| !r.is_active));
    assert_eq!(s.last_window_end, Some(t("2026-11-15T15:00:00Z")));
    assert_eq!(
        schema_errors(&serde_json::to_value(&s).unwrap()),
        Vec::<String>::new()
    );
}

#[test]
fn the_dashboard_reads_back_what_the_daemon_wrote() {
    let (_, d, s) = sample();
    let text = to_json(&s);
    let back = parse(&text, Path::new("monitor_data.json")).unwrap();
    assert_eq!(back.to_dashboard(), d);
    assert!(back.same_figures(&s));
}

#[test]
fn same_figures_ignores_the_clock_only() {
    let (_, _, s) = sample();
    let mut later = s.clone();
    later.last_update = t("2026-11-20T16:41:00Z");
    // A minute later the pace has slid and the next recompute moved on.
    later.valid_until = Some(t("2026-11-20T16:42:00Z"));
    if let Some(a) = later.active_block.as_mut() {
        a.minutes_left -= 1;
        if let Some(r) = a.burn_rate.as_mut() {
            r.tokens_per_minute /= 2.0;
        }
    }
    assert!(later.same_figures(&s));
    // New usage is a change.
    if let Some(a) = later.active_block.as_mut() {
        a.total_tokens += 1;
    }
    assert!(!later.same_figures(&s));
    let mut later = s.clone();
    later.total_sessions_this_month += 1;
    assert!(!later.same_figures(&s));
}

#[test]
fn other_schema_versions_and_garbage_are_refused_by_name() {
    let (_, _, s) = sample();
    let mut v = serde_json::to_value(&s).unwrap();
    v["schema_version"] = serde_json::json!(2);
    let err = parse(&v.to_string(), Path::new("/x/monitor_data.json")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("schema version 2") && msg.contains("/x/monitor_data.json"),
        "{msg}"
    );
    let err = parse("{\"current", Path::new("/x/m.json")).unwrap_err();
    assert!(err.to_string().contains("/x/m.json"));
}

#[test]
fn json_shape() {
    let (_, _, s) = sample();
    insta::assert_json_snapshot!(s);
}

/// Files written before token_counts went snake case still read the same.
#[test]
fn token_counts_in_camel_case_from_older_files_still_read() {
    let (_, _, s) = sample();
    let mut v: serde_json::Value = serde_json::from_str(&to_json(&s)).unwrap();
    let tc = &mut v["active_block"]["token_counts"];
    let n = |k: &str| tc[k].clone();
    *tc = serde_json::json!({
        "inputTokens": n("input_tokens"),
        "outputTokens": n("output_tokens"),
        "cacheCreationInputTokens": n("cache_creation_tokens"),
        "cacheReadInputTokens": n("cache_read_tokens"),
    });
    let old = serde_json::to_string(&v).unwrap();
    let parsed = parse(&old, std::path::Path::new("monitor_data.json")).unwrap();
    assert_eq!(parsed, s);
}
