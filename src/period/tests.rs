use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::domain::TokenCounts;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

/// A real window starting at `start` (5 hours long) with `tokens` output tokens.
fn block(start: &str, tokens: u64, cost: f64) -> Block {
    let start = at(start);
    Block {
        start,
        end: start + SignedDuration::from_hours(5),
        first_entry: Some(start),
        actual_end: Some(start + SignedDuration::from_mins(30)),
        is_gap: false,
        entries: 1,
        tokens: TokenCounts {
            output_tokens: tokens,
            ..Default::default()
        },
        cost_usd: cost,
        models: vec!["claude-opus-4-5".into()],
        usage_limit_reset: None,
    }
}

/// Marks a window the test's `now` falls in (activity is judged at `now`).
fn active(b: Block) -> Block {
    b
}

fn gap(start: &str, end: &str) -> Block {
    Block::gap(at(start), at(end))
}

fn settings(start_day: u8) -> PeriodSettings {
    PeriodSettings {
        start_day,
        sessions_per_period: 50,
        plan_price_usd: None,
    }
}

#[test]
fn start_day_is_clamped_to_short_months() {
    // 31 in February (common and leap years) and in 30-day months.
    assert_eq!(anchor_date(2026, 2, 31).unwrap(), date(2026, 2, 28));
    assert_eq!(anchor_date(2028, 2, 31).unwrap(), date(2028, 2, 29));
    assert_eq!(anchor_date(2026, 2, 29).unwrap(), date(2026, 2, 28));
    assert_eq!(anchor_date(2026, 4, 31).unwrap(), date(2026, 4, 30));
    assert_eq!(anchor_date(2026, 1, 31).unwrap(), date(2026, 1, 31));
    assert_eq!(anchor_date(2026, 5, 1).unwrap(), date(2026, 5, 1));
}

#[test]
fn start_day_31_in_february() {
    let utc = TimeZone::UTC;
    // Before the clamped day: the period began on January 31.
    let p = BillingPeriod::containing(at("2026-02-27T12:00:00Z"), &utc, 31).unwrap();
    assert_eq!(
        (p.start_date, p.end_date),
        (date(2026, 1, 31), date(2026, 2, 28))
    );
    // On February 28 a new period starts and runs to March 31.
    let p = BillingPeriod::containing(at("2026-02-28T00:00:00Z"), &utc, 31).unwrap();
    assert_eq!(
        (p.start_date, p.end_date),
        (date(2026, 2, 28), date(2026, 3, 31))
    );
    assert_eq!(p.start, at("2026-02-28T00:00:00Z"));
    assert_eq!(p.end, at("2026-03-31T00:00:00Z"));
    // Mid-March still belongs to the February period.
    let p = BillingPeriod::containing(at("2026-03-15T00:00:00Z"), &utc, 31).unwrap();
    assert_eq!(p.start_date, date(2026, 2, 28));
    // Leap year: February 29.
    let p = BillingPeriod::containing(at("2028-03-01T00:00:00Z"), &utc, 31).unwrap();
    assert_eq!(
        (p.start_date, p.end_date),
        (date(2028, 2, 29), date(2028, 3, 31))
    );
    // 29 and 30 behave the same way in February.
    let p = BillingPeriod::containing(at("2026-03-10T00:00:00Z"), &utc, 30).unwrap();
    assert_eq!(
        (p.start_date, p.end_date),
        (date(2026, 2, 28), date(2026, 3, 30))
    );
}

#[test]
fn start_day_31_in_april() {
    let utc = TimeZone::UTC;
    let p = BillingPeriod::containing(at("2026-04-29T23:59:59Z"), &utc, 31).unwrap();
    assert_eq!(
        (p.start_date, p.end_date),
        (date(2026, 3, 31), date(2026, 4, 30))
    );
    let p = BillingPeriod::containing(at("2026-04-30T00:00:00Z"), &utc, 31).unwrap();
    assert_eq!(
        (p.start_date, p.end_date),
        (date(2026, 4, 30), date(2026, 5, 31))
    );
    assert_eq!(p.days_left(at("2026-04-30T08:00:00Z"), &utc), 31);
    // The previous period of the April one starts on March 31.
    let prev = p.previous(&utc, 31).unwrap();
    assert_eq!(
        (prev.start_date, prev.end_date),
        (date(2026, 3, 31), date(2026, 4, 30))
    );
    let prev2 = prev.previous(&utc, 31).unwrap();
    assert_eq!(prev2.start_date, date(2026, 2, 28));
}

#[test]
fn every_start_day_and_day_of_year_is_consistent() {
    // Never a crash for 29-31; today is always inside; periods tile the year.
    let utc = TimeZone::UTC;
    for start_day in 1..=31u8 {
        let mut d = date(2027, 12, 1);
        while d < date(2029, 3, 1) {
            let now = local_midnight(d, &utc).unwrap() + SignedDuration::from_hours(12);
            let p = BillingPeriod::containing(now, &utc, start_day).unwrap();
            assert!(p.contains(now), "{start_day} {d}");
            assert!(p.start_date <= d && d < p.end_date);
            let span = p.start_date.duration_until(p.end_date).as_hours() / 24;
            assert!((28..=31).contains(&span), "{start_day} {d} {span}");
            let prev = p.previous(&utc, start_day).unwrap();
            assert_eq!(prev.end_date, p.start_date, "{start_day} {d}");
            d = d.tomorrow().unwrap();
        }
    }
}

#[test]
fn dst_spring_forward_in_warsaw() {
    // 2026-03-29: clocks jump 02:00 → 03:00 (CET → CEST).
    let waw = tz("Europe/Warsaw");
    let now = at("2026-03-29T10:00:00Z");
    let p = BillingPeriod::containing(now, &waw, 29).unwrap();
    assert_eq!(p.start_date, date(2026, 3, 29));
    assert_eq!(p.start, at("2026-03-28T23:00:00Z")); // midnight CET (+01:00)
    assert_eq!(p.end, at("2026-04-28T22:00:00Z")); // midnight CEST (+02:00)
    assert_eq!(
        p.end.duration_since(p.start),
        SignedDuration::from_hours(31 * 24 - 1)
    );
    assert_eq!(p.days_left(now, &waw), 31);
    // One second before local midnight still belongs to the old period.
    let before = at("2026-03-28T22:59:59Z");
    let old = BillingPeriod::containing(before, &waw, 29).unwrap();
    assert_eq!(old.start_date, date(2026, 2, 28));
    assert_eq!(old.end, p.start);
}

#[test]
fn dst_fall_back_in_warsaw() {
    // 2026-10-25: 03:00 CEST → 02:00 CET; the day has 25 hours.
    let waw = tz("Europe/Warsaw");
    let p = BillingPeriod::containing(at("2026-10-25T12:00:00Z"), &waw, 25).unwrap();
    assert_eq!(p.start, at("2026-10-24T22:00:00Z"));
    assert_eq!(p.end, at("2026-11-24T23:00:00Z"));
    assert_eq!(
        p.end.duration_since(p.start),
        SignedDuration::from_hours(31 * 24 + 1)
    );
    // A window at 23:30 UTC on the 24th is 01:30 local on the 25th: inside.
    let blocks = [block("2026-10-24T23:00:00Z", 10, 1.0)];
    let s = summarize(&blocks, &p, at("2026-10-25T12:00:00Z"), &waw, &settings(25));
    assert_eq!(s.sessions.used, 1);
    // Days left count calendar days, whatever their length.
    assert_eq!(p.days_left(at("2026-11-24T22:59:59Z"), &waw), 1);
}

#[test]
fn dst_changes_in_new_york() {
    let ny = tz("America/New_York");
    // 2026-03-08: 02:00 EST → 03:00 EDT.
    let p = BillingPeriod::containing(at("2026-03-08T12:00:00Z"), &ny, 8).unwrap();
    assert_eq!(p.start, at("2026-03-08T05:00:00Z")); // midnight EST (-05:00)
    assert_eq!(p.end, at("2026-04-08T04:00:00Z")); // midnight EDT (-04:00)
    // 2026-11-01: 02:00 EDT → 01:00 EST.
    let p = BillingPeriod::containing(at("2026-11-01T12:00:00Z"), &ny, 1).unwrap();
    assert_eq!(p.start, at("2026-11-01T04:00:00Z"));
    assert_eq!(p.end, at("2026-12-01T05:00:00Z"));
    // 00:30 on Nov 1 local (04:30Z) is in the November period, 23:30 on
    // Oct 31 local (03:30Z) in October's.
    assert!(p.contains(at("2026-11-01T04:30:00Z")));
    assert!(!p.contains(at("2026-11-01T03:30:00Z")));
}

#[test]
fn midnight_inside_a_dst_gap_starts_the_period_after_the_gap() {
    // São Paulo moved clocks from 00:00 to 01:00 on 2018-11-04.
    let sp = tz("America/Sao_Paulo");
    let p = BillingPeriod::containing(at("2018-11-10T12:00:00Z"), &sp, 4).unwrap();
    assert_eq!(p.start_date, date(2018, 11, 4));
    assert_eq!(p.start, at("2018-11-04T03:00:00Z")); // 01:00 -02:00
}

#[test]
fn window_that_starts_before_the_boundary_belongs_to_the_previous_period() {
    let utc = TimeZone::UTC;
    let now = at("2026-11-01T02:00:00Z");
    let p = BillingPeriod::containing(now, &utc, 1).unwrap();
    // Started 22:00 on Oct 31 and still active past midnight.
    let straddling = active(block("2026-10-31T22:00:00Z", 500, 5.0));
    let blocks = [block("2026-10-30T10:00:00Z", 100, 1.0), straddling];
    let s = summarize(&blocks, &p, now, &utc, &settings(1));
    assert_eq!(s.sessions.used, 0);
    assert_eq!(s.cost_usd, 0.0);
    let prev = p.previous(&utc, 1).unwrap();
    let s = summarize(&blocks, &prev, now, &utc, &settings(1));
    assert_eq!(s.sessions.used, 2);
    assert_eq!(s.cost_usd, 6.0);
    assert_eq!(s.total_tokens, 600);
    // A past period has nothing left.
    assert_eq!((s.days_left, s.avg_sessions_per_day), (0, 0.0));
    // A window starting exactly at the boundary is in the new period.
    let blocks = [block("2026-11-01T00:00:00Z", 1, 1.0)];
    assert_eq!(
        summarize(&blocks, &p, now, &utc, &settings(1))
            .sessions
            .used,
        1
    );
}

#[test]
fn sessions_left_and_over_the_limit() {
    assert_eq!(
        Sessions::new(12, 50),
        Sessions {
            used: 12,
            limit: 50,
            left: 38,
            over: 0
        }
    );
    assert_eq!(
        Sessions::new(50, 50),
        Sessions {
            used: 50,
            limit: 50,
            left: 0,
            over: 0
        }
    );
    assert_eq!(
        Sessions::new(51, 50),
        Sessions {
            used: 51,
            limit: 50,
            left: 0,
            over: 1
        }
    );
    assert_eq!(Sessions::new(57, 50).over, 7);
}

#[test]
fn fiftieth_and_later_sessions_with_the_active_one_counted() {
    let utc = TimeZone::UTC;
    let now = at("2026-11-20T16:00:00Z");
    let p = BillingPeriod::containing(now, &utc, 1).unwrap();
    let mut blocks = Vec::new();
    let mut t = at("2026-11-01T00:00:00Z");
    for _ in 0..49 {
        blocks.push(block(&t.to_string(), 1000, 2.0));
        blocks.push(gap(
            &(t + SignedDuration::from_hours(5)).to_string(),
            &(t + SignedDuration::from_hours(6)).to_string(),
        ));
        t += SignedDuration::from_hours(6);
    }
    // The 50th window is the active one.
    blocks.push(active(block("2026-11-20T15:00:00Z", 1000, 2.0)));
    let s = summarize(&blocks, &p, now, &utc, &settings(1));
    assert_eq!(s.sessions, Sessions::new(50, 50));
    assert_eq!((s.sessions.left, s.sessions.over), (0, 0));
    assert_eq!(s.avg_sessions_per_day, 0.0);
    // The 51st: over by one.
    blocks.push(active(block("2026-11-20T21:00:00Z", 10, 0.5)));
    let s = summarize(&blocks, &p, at("2026-11-20T21:30:00Z"), &utc, &settings(1));
    assert_eq!(
        (s.sessions.used, s.sessions.left, s.sessions.over),
        (51, 0, 1)
    );
    assert!((s.cost_usd - 100.5).abs() < 1e-9);
}

#[test]
fn days_left_and_average_per_day() {
    let waw = tz("Europe/Warsaw");
    // 22:30 UTC on Nov 20 is already Nov 21 in Warsaw.
    let now = at("2026-11-20T23:30:00Z");
    let p = BillingPeriod::containing(now, &waw, 1).unwrap();
    assert_eq!(p.end_date, date(2026, 12, 1));
    let blocks: Vec<Block> = (0..12)
        .map(|i| block(&format!("2026-11-{:02}T10:00:00Z", i + 2), 10, 1.0))
        .collect();
    let s = summarize(&blocks, &p, now, &waw, &settings(1));
    assert_eq!(s.days_left, 10); // Nov 21..=30
    assert_eq!(s.sessions.left, 38);
    assert!((s.avg_sessions_per_day - 3.8).abs() < 1e-9);
    assert_eq!(s.value_ratio, None);
    let with_plan = PeriodSettings {
        plan_price_usd: Some(200.0),
        ..settings(1)
    };
    let s = summarize(&blocks, &p, now, &waw, &with_plan);
    assert_eq!(s.value_ratio, Some(12.0 / 200.0));
}

#[test]
fn history_walks_back_through_periods() {
    let utc = TimeZone::UTC;
    let now = at("2026-11-20T12:00:00Z");
    let blocks = [
        block("2026-09-20T10:00:00Z", 1, 1.0),
        block("2026-10-20T10:00:00Z", 2, 2.0),
        block("2026-10-21T10:00:00Z", 3, 3.0),
        block("2026-11-16T10:00:00Z", 4, 4.0),
    ];
    let h = history(&blocks, now, &utc, &settings(15), 2).unwrap();
    let rows: Vec<(Date, u32, f64)> = h
        .iter()
        .map(|s| (s.period.start_date, s.sessions.used, s.cost_usd))
        .collect();
    assert_eq!(
        rows,
        vec![
            (date(2026, 11, 15), 1, 4.0),
            (date(2026, 10, 15), 2, 5.0),
            (date(2026, 9, 15), 1, 1.0),
        ]
    );
}

#[test]
fn maxima_leave_out_gaps_and_the_active_window() {
    let blocks = [
        block("2026-11-01T00:00:00Z", 300, 9.0),
        block("2026-11-02T00:00:00Z", 500, 4.0),
        gap("2026-11-02T05:00:00Z", "2026-11-03T00:00:00Z"),
        active(block("2026-11-03T00:00:00Z", 900, 20.0)),
    ];
    let m = completed_maxima(&blocks, at("2026-11-03T01:00:00Z"));
    assert_eq!(
        m,
        Maxima {
            tokens: 500,
            cost_usd: 9.0
        }
    );
    let kept = Maxima {
        tokens: 700,
        cost_usd: 1.0,
    };
    assert_eq!(
        m.merge(kept),
        Maxima {
            tokens: 700,
            cost_usd: 9.0
        }
    );
}

#[test]
fn token_limit_resolution() {
    let now = at("2026-11-20T12:00:00Z");
    let mut blocks: Vec<Block> = (1..=10)
        .map(|i| {
            block(
                &format!("2026-11-{:02}T10:00:00Z", 10 + i % 10),
                i * 100,
                1.0,
            )
        })
        .collect();
    // An old, larger window is outside p90's 8 days but is the all-time max.
    blocks.push(block("2026-10-01T10:00:00Z", 5000, 1.0));
    blocks.push(active(block("2026-11-20T10:00:00Z", 9999, 1.0)));
    let max = completed_maxima(&blocks, now).tokens;
    assert_eq!(max, 5000);
    let r = resolve_token_limit(TokenLimit::Max, &blocks, now, max);
    assert_eq!(
        r,
        ResolvedLimit {
            tokens: Some(5000),
            source: LimitSource::Max
        }
    );
    let r = resolve_token_limit(TokenLimit::Fixed(1234), &blocks, now, max);
    assert_eq!(
        r,
        ResolvedLimit {
            tokens: Some(1234),
            source: LimitSource::Fixed
        }
    );
    // p90 looks at completed windows of the last 8 days only; the expected
    // value is recomputed here independently (nearest rank).
    let since = now - P90_LOOKBACK;
    let mut recent: Vec<u64> = blocks
        .iter()
        .filter(|b| !b.is_active_at(now) && b.start >= since)
        .map(|b| b.total_tokens())
        .collect();
    recent.sort();
    let want = recent[(recent.len() * 9).div_ceil(10) - 1];
    let r = resolve_token_limit(TokenLimit::P90, &blocks, now, max);
    assert_eq!(
        r,
        ResolvedLimit {
            tokens: Some(want),
            source: LimitSource::P90
        }
    );
}

#[test]
fn p90_nearest_rank_and_floor_of_one_block() {
    let now = at("2026-11-20T12:00:00Z");
    let ten: Vec<Block> = (1..=10)
        .map(|i| block(&format!("2026-11-19T{:02}:00:00Z", i), i * 10, 1.0))
        .collect();
    assert_eq!(p90_tokens(&ten, now), Some(90));
    let one = [block("2026-11-19T01:00:00Z", 42, 1.0)];
    assert_eq!(p90_tokens(&one, now), Some(42));
    // Only the active window: no completed one, p90 falls back to max.
    let only_active = [active(block("2026-11-20T10:00:00Z", 7, 1.0))];
    assert_eq!(p90_tokens(&only_active, now), None);
    let r = resolve_token_limit(TokenLimit::P90, &only_active, now, 300);
    assert_eq!(
        r,
        ResolvedLimit {
            tokens: Some(300),
            source: LimitSource::Max
        }
    );
    // Nothing at all: no scale yet.
    let r = resolve_token_limit(TokenLimit::Max, &[], now, 0);
    assert_eq!(r.tokens, None);
}
