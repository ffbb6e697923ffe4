use std::sync::Arc;

use jiff::civil::date;
use jiff::tz::TimeZone;

use super::*;
use crate::domain::Origin;

fn entry(ts: &str, input: u64, model: Option<&str>, session: &str) -> UsageEntry {
    UsageEntry {
        timestamp: ts.parse().unwrap(),
        tokens: TokenCounts {
            input_tokens: input,
            output_tokens: 1,
            ..Default::default()
        },
        cache_creation_1h: 0,
        speed: None,
        cost_usd: None,
        model: model.map(Arc::from),
        message_id: None,
        request_id: None,
        session_key: 0,
        origin: Arc::new(Origin {
            project: Arc::from("proj"),
            session_id: session.into(),
            project_path: "proj".into(),
        }),
        is_sidechain: false,
        usage_limit_reset: None,
        offset: 0,
    }
}

fn cost(usd: f64) -> EntryCost {
    EntryCost {
        usd,
        unpriced: false,
    }
}

#[test]
fn daily_rows_group_by_local_date_and_keep_first_seen_models() {
    let es = [
        entry("2026-11-07T23:30:00Z", 10, Some("b"), "s1"),
        entry("2026-11-07T10:00:00Z", 20, Some("a"), "s1"),
        entry("2026-11-08T01:00:00Z", 30, None, "s2"),
    ];
    let costs = [cost(0.1), cost(0.2), cost(0.3)];
    let utc = period_rows(
        &es,
        &costs,
        &TimeZone::UTC,
        Period::Day,
        &RowFilter::default(),
    );
    assert_eq!(utc.len(), 2);
    assert_eq!(utc[0].usage.models_used, vec!["b", "a"]);
    assert_eq!(
        utc[0].usage.breakdowns[0].model, "a",
        "breakdowns by cost, highest first"
    );
    assert_eq!(utc[1].usage.models_used, Vec::<String>::new());
    assert_eq!(utc[1].usage.tokens.input_tokens, 30);
    let warsaw = TimeZone::get("Europe/Warsaw").unwrap();
    let local = period_rows(&es, &costs, &warsaw, Period::Day, &RowFilter::default());
    assert_eq!(local.len(), 2);
    assert_eq!(local[1].key, date(2026, 11, 8));
    assert_eq!(local[1].usage.tokens.input_tokens, 40);
}

#[test]
fn weeks_months_filters_and_order() {
    let es = [
        entry("2026-11-07T10:00:00Z", 1, Some("a"), "s"), // Saturday
        entry("2026-11-08T10:00:00Z", 2, Some("a"), "s"), // Sunday
        entry("2026-11-09T10:00:00Z", 4, Some("a"), "s"), // Monday
        entry("2026-12-01T10:00:00Z", 8, Some("a"), "s"),
    ];
    let costs = [cost(1.0); 4];
    let tz = TimeZone::UTC;
    let sunday = period_rows(
        &es,
        &costs,
        &tz,
        Period::Week(jiff::civil::Weekday::Sunday),
        &RowFilter::default(),
    );
    let keys: Vec<Date> = sunday.iter().map(|r| r.key).collect();
    assert_eq!(
        keys,
        vec![date(2026, 11, 1), date(2026, 11, 8), date(2026, 11, 29)]
    );
    let monday = period_rows(
        &es,
        &costs,
        &tz,
        Period::Week(jiff::civil::Weekday::Monday),
        &RowFilter::default(),
    );
    assert_eq!(monday[0].key, date(2026, 11, 2));
    assert_eq!(monday[0].usage.tokens.input_tokens, 3);
    let months = period_rows(
        &es,
        &costs,
        &tz,
        Period::Month,
        &RowFilter {
            descending: true,
            ..Default::default()
        },
    );
    assert_eq!(months[0].key, date(2026, 12, 1));
    assert_eq!(months[1].usage.tokens.input_tokens, 7);
    let filtered = period_rows(
        &es,
        &costs,
        &tz,
        Period::Day,
        &RowFilter {
            since: Some(date(2026, 11, 8)),
            until: Some(date(2026, 11, 9)),
            descending: false,
        },
    );
    assert_eq!(filtered.len(), 2);
}

#[test]
fn sum_order_follows_ccusage() {
    // 0.1 + 0.2 + 0.3 in output order: ascending gives 0.6000000000000001.
    let es = [
        entry("2026-11-01T10:00:00Z", 1, Some("a"), "s"),
        entry("2026-11-02T10:00:00Z", 1, Some("a"), "s"),
        entry("2026-11-03T10:00:00Z", 1, Some("a"), "s"),
    ];
    let costs = [cost(0.1), cost(0.2), cost(0.3)];
    let asc = period_rows(
        &es,
        &costs,
        &TimeZone::UTC,
        Period::Day,
        &RowFilter::default(),
    );
    assert_eq!(
        totals(asc.iter().map(|r| &r.usage)).cost,
        0.6000000000000001
    );
    let desc = period_rows(
        &es,
        &costs,
        &TimeZone::UTC,
        Period::Day,
        &RowFilter {
            descending: true,
            ..Default::default()
        },
    );
    assert_eq!(totals(desc.iter().map(|r| &r.usage)).cost, 0.6);
    let empty = totals(std::iter::empty());
    assert!(empty.cost == 0.0 && empty.cost.is_sign_negative());
}

#[test]
fn sessions_sorted_by_cost_without_empty_ones() {
    let mut zero = entry("2026-11-01T10:00:00Z", 0, Some("a"), "empty");
    zero.tokens.output_tokens = 0;
    let es = [
        entry("2026-11-01T10:00:00Z", 1, Some("a"), "cheap"),
        entry("2026-11-01T11:00:00Z", 1, Some("a"), "dear"),
        zero,
        entry("2026-11-02T09:00:00Z", 1, Some("a"), "cheap"),
    ];
    let costs = [cost(0.1), cost(5.0), cost(0.0), cost(0.1)];
    let rows = session_rows(&es, &costs, &TimeZone::UTC, &RowFilter::default());
    let ids: Vec<&str> = rows.iter().map(|r| r.session_id.as_str()).collect();
    assert_eq!(ids, vec!["dear", "cheap"]);
    assert_eq!(rows[1].first_activity.to_string(), "2026-11-01T10:00:00Z");
    assert_eq!(rows[1].last_activity.to_string(), "2026-11-02T09:00:00Z");
}

#[test]
fn unpriced_models_are_flagged_and_listed() {
    let es = [
        entry("2026-11-01T10:00:00Z", 5, Some("zzz"), "s"),
        entry("2026-11-01T10:00:00Z", 5, Some("aaa"), "s"),
    ];
    let costs = [
        EntryCost {
            usd: 0.0,
            unpriced: true,
        },
        EntryCost {
            usd: 0.0,
            unpriced: true,
        },
    ];
    let rows = period_rows(
        &es,
        &costs,
        &TimeZone::UTC,
        Period::Day,
        &RowFilter::default(),
    );
    assert!(rows[0].usage.breakdowns.iter().all(|b| b.missing_pricing));
    assert_eq!(
        totals(rows.iter().map(|r| &r.usage)).unpriced_models,
        vec!["aaa", "zzz"]
    );
}
