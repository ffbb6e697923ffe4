use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::domain::Speed;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn entry(ts: &str, out: u64, model: &str) -> UsageEntry {
    UsageEntry {
        model: Some(Arc::from(model)),
        ..crate::domain::sample_entry(at(ts), out)
    }
}

fn run(entries: &[UsageEntry]) -> Vec<Block> {
    identify_blocks(
        entries.iter().map(|e| Timed {
            entry: e,
            cost: 1.0,
        }),
        SignedDuration::from_hours(5),
    )
}

#[test]
fn floors_to_the_utc_hour_and_splits_on_length_and_silence() {
    let es = [
        entry("2026-11-20T10:15:00Z", 1, "a"),
        entry("2026-11-20T15:00:00Z", 1, "b"), // exactly start+5h: same block
        entry("2026-11-20T15:00:01Z", 1, "a"), // past start+5h: new block, no gap
        entry("2026-11-21T02:00:00Z", 1, "a"), // > 5h after previous: gap + block
    ];
    let blocks = run(&es);
    let ids: Vec<(String, bool, usize)> = blocks
        .iter()
        .map(|b| (crate::report::json::block_id(b), b.is_gap, b.entries))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("2026-11-20T10:00:00.000Z".into(), false, 2),
            ("2026-11-20T15:00:00.000Z".into(), false, 1),
            ("gap-2026-11-20T20:00:01.000Z".into(), true, 0),
            ("2026-11-21T02:00:00.000Z".into(), false, 1),
        ]
    );
    assert_eq!(blocks[0].models, vec!["a", "b"]);
    assert_eq!(blocks[2].end, at("2026-11-21T02:00:00Z"));
    assert!(
        blocks
            .iter()
            .all(|b| !b.is_active_at(at("2026-11-25T00:00:00Z")))
    );
}

#[test]
fn active_window_has_burn_rate_and_projection() {
    let es = [
        entry("2026-11-25T18:40:00Z", 200, "a"),
        entry("2026-11-25T19:40:00Z", 1000, "a"),
    ];
    let now = at("2026-11-25T20:00:00Z");
    let blocks = run(&es);
    let b = &blocks[0];
    assert!(b.is_active_at(now));
    let rate = b.burn_rate(now).unwrap();
    assert!((rate.tokens_per_minute - 1400.0 / 60.0).abs() < 1e-9);
    assert!((rate.cost_per_hour - 2.0).abs() < 1e-9);
    let p = b.projection(now).unwrap();
    assert_eq!(p.remaining_minutes, 180); // window 18:00-23:00
    assert_eq!(
        p.total_tokens,
        (1400.0 + 1400.0 / 60.0 * 180.0f64).round() as u64
    );
    assert_eq!(p.total_cost, 8.0);
    // One entry: no rate, no projection.
    let single = run(&es[..1]);
    let at_19 = at("2026-11-25T19:00:00Z");
    assert!(single[0].is_active_at(at_19) && single[0].burn_rate(at_19).is_none());
}

#[test]
fn activity_ends_five_hours_after_the_last_entry_or_at_window_end() {
    let es = [entry("2026-11-25T10:30:00Z", 1, "a")];
    assert!(run(&es)[0].is_active_at(at("2026-11-25T14:59:59Z")));
    assert!(!run(&es)[0].is_active_at(at("2026-11-25T15:00:00Z")));
}

#[test]
fn fast_mode_shows_as_its_own_model_and_synthetic_is_left_out() {
    let mut fast = entry("2026-11-20T10:00:00Z", 1, "claude-opus-4-5");
    fast.speed = Some(Speed::Fast);
    let synthetic = entry("2026-11-20T10:01:00Z", 1, "<synthetic>");
    let blocks = run(&[fast, synthetic]);
    assert_eq!(blocks[0].models, vec!["claude-opus-4-5-fast"]);
    assert_eq!(blocks[0].entries, 2);
}

#[test]
fn filters_apply_in_ccusage_order() {
    let es = [
        entry("2026-11-20T10:00:00Z", 1, "a"),
        entry("2026-11-24T10:00:00Z", 9, "a"),
        entry("2026-11-25T19:00:00Z", 5, "a"),
    ];
    let now = at("2026-11-25T20:00:00Z");
    let all = run(&es);
    let tz = jiff::tz::TimeZone::UTC;
    let recent = BlockFilter {
        recent: true,
        ..Default::default()
    }
    .apply(all.clone(), || &tz, now);
    assert_eq!(
        recent.len(),
        3,
        "two blocks and the gap between them since 2026-11-22T20:00"
    );
    let active = BlockFilter {
        active_only: true,
        ..Default::default()
    }
    .apply(all.clone(), || &tz, now);
    assert_eq!(active.len(), 1);
    let since = BlockFilter {
        since: Some(jiff::civil::date(2026, 11, 24)),
        until: Some(jiff::civil::date(2026, 11, 24)),
        ..Default::default()
    }
    .apply(all.clone(), || &tz, now);
    assert_eq!(
        since.len(),
        2,
        "the 24th's block and the gap starting that day"
    );
    let desc = BlockFilter {
        descending: true,
        ..Default::default()
    }
    .apply(all.clone(), || &tz, now);
    assert_eq!(desc.first().unwrap().start, at("2026-11-25T19:00:00Z"));
    assert_eq!(max_completed_tokens(&all, now), 109);
}

#[test]
fn limit_status_thresholds() {
    assert_eq!(LimitStatus::of(100, 100), LimitStatus::Warning);
    assert_eq!(LimitStatus::of(101, 100), LimitStatus::Exceeds);
    assert_eq!(LimitStatus::of(80, 100), LimitStatus::Ok);
    assert_eq!(LimitStatus::of(81, 100), LimitStatus::Warning);
}

fn arb_entries() -> impl Strategy<Value = Vec<(i64, u64)>> {
    // Up to 60 entries within ~4 days, with clusters and long silences.
    prop::collection::vec((0i64..4 * 24 * 3600, 0u64..5000), 0..60)
}

proptest! {
    #[test]
    fn blocks_partition_entries_and_respect_window_rules(raw in arb_entries()) {
        let base = at("2026-11-01T00:00:00Z");
        let mut es: Vec<UsageEntry> = raw
            .iter()
            .map(|(secs, out)| {
                let mut e = entry("2026-11-01T00:00:00Z", *out, "m");
                e.timestamp = base.checked_add(SignedDuration::from_secs(*secs)).unwrap();
                e
            })
            .collect();
        es.sort_by_key(|e| e.timestamp);
        let blocks = run(&es);
        let real: Vec<&Block> = blocks.iter().filter(|b| !b.is_gap).collect();
        // Every entry is in exactly one block and totals are preserved.
        prop_assert_eq!(real.iter().map(|b| b.entries).sum::<usize>(), es.len());
        let total: u64 = es.iter().map(|e| e.tokens.total()).sum();
        prop_assert_eq!(real.iter().map(|b| b.total_tokens()).sum::<u64>(), total);
        for b in &real {
            prop_assert_eq!(b.start.as_second() % 3600, 0);
            prop_assert!(b.actual_end.unwrap() <= b.end);
            prop_assert!(b.first_entry.unwrap() >= b.start);
        }
        // Gaps sit between real blocks and are longer than zero.
        for w in blocks.windows(2) {
            if w[1].is_gap {
                prop_assert!(!w[0].is_gap);
                prop_assert!(w[1].end > w[1].start);
            }
        }
        // Shuffling ties or splitting the input changes nothing: recompute from
        // a reversed-then-sorted copy.
        let mut again = es.clone();
        again.reverse();
        again.sort_by_key(|e| e.timestamp);
        prop_assert_eq!(run(&again).len(), blocks.len());
    }
}

proptest! {
    /// What the history store does on an append: keep the windows up to the
    /// latest one, then extend that one with the entries after it.
    #[test]
    fn extending_the_latest_window_equals_one_pass(
        raw in arb_entries(),
        split in 0usize..60,
        costs in prop::collection::vec(0.0f64..3.0, 60),
    ) {
        let base = at("2026-11-01T00:00:00Z");
        let mut es: Vec<UsageEntry> = raw
            .iter()
            .map(|(secs, out)| {
                let mut e = entry("2026-11-01T00:00:00Z", *out, if out % 2 == 0 { "a" } else { "b" });
                e.timestamp = base.checked_add(SignedDuration::from_secs(*secs)).unwrap();
                e
            })
            .collect();
        es.sort_by_key(|e| e.timestamp);
        let len = SignedDuration::from_hours(5);
        let es = &es;
        let costs = &costs;
        let timed = |from: usize, to: usize| {
            es[from..to].iter().enumerate().map(move |(i, e)| Timed { entry: e, cost: costs[from + i] })
        };
        let whole = identify_blocks(timed(0, es.len()), len);
        // Split after an entry strictly earlier than the next one, as the
        // store requires.
        let cut = split.min(es.len());
        prop_assume!(cut > 0 && (cut == es.len() || es[cut - 1].timestamp < es[cut].timestamp));
        let mut first = identify_blocks(timed(0, cut), len);
        let latest = first.iter().rposition(|b| !b.is_gap).unwrap();
        let tail = first.split_off(latest);
        let extended = extend_window(tail[0].clone(), timed(cut, es.len()), len);
        first.extend(extended);
        prop_assert_eq!(first, whole);
    }
}

fn tokens(n: u64) -> TokenCounts {
    TokenCounts {
        input_tokens: n,
        ..TokenCounts::default()
    }
}

#[test]
fn pace_is_the_last_30_minutes_and_decays_while_idle() {
    let now = at("2026-11-20T16:40:00Z");
    let first = at("2026-11-20T14:05:00Z");
    // An early hour of heavy use, then a burst in the last ten minutes.
    let mut entries = vec![(at("2026-11-20T14:10:00Z"), tokens(9_000_000), 90.0)];
    for m in 0..10 {
        let t = now.checked_sub(SignedDuration::from_mins(m)).unwrap();
        entries.push((t, tokens(3_000), 0.3));
    }
    let p = pace(entries.iter().copied(), first, now).unwrap();
    assert_eq!(p.basis, PaceBasis::Recent);
    // 30,000 tokens in the last 30 minutes, not the window's average.
    assert!((p.tokens_per_minute - 1_000.0).abs() < 1e-9, "{p:?}");
    assert!((p.cost_per_hour - 6.0).abs() < 1e-9, "{p:?}");
    // Twenty minutes later half the burst has slid out.
    let later = now.checked_add(SignedDuration::from_mins(25)).unwrap();
    let p = pace(entries.iter().copied(), first, later).unwrap();
    assert!((p.tokens_per_minute - 500.0).abs() < 1e-9, "{p:?}");
    // After 45 minutes without a new entry there is no pace at all.
    let idle = now.checked_add(SignedDuration::from_mins(45)).unwrap();
    assert_eq!(pace(entries.iter().copied(), first, idle), None);
    // An entry dated after now is not part of it.
    entries.push((at("2026-11-20T22:00:00Z"), tokens(1 << 40), 1e6));
    let p = pace(entries.iter().copied(), first, now).unwrap();
    assert!((p.tokens_per_minute - 1_000.0).abs() < 1e-9, "{p:?}");
}

#[test]
fn a_young_window_is_paced_over_its_own_age() {
    let first = at("2026-11-20T16:30:00Z");
    let now = at("2026-11-20T16:40:00Z");
    let entries = [(first, tokens(5_000), 1.0), (now, tokens(5_000), 1.0)];
    let p = pace(entries.iter().copied(), first, now).unwrap();
    assert_eq!(p.basis, PaceBasis::Window);
    assert!((p.tokens_per_minute - 1_000.0).abs() < 1e-9, "{p:?}");
}

#[test]
fn a_window_dated_ahead_is_never_current() {
    let es = [
        entry("2026-11-20T14:05:00Z", 10, "a"),
        entry("2026-11-20T16:30:00Z", 10, "a"),
        // A device whose clock runs 6 hours fast.
        entry("2026-11-20T22:40:00Z", 1_000, "a"),
    ];
    let now = at("2026-11-20T16:40:00Z");
    let blocks = run(&es);
    // ccusage calls both active; only the one containing now is current.
    assert_eq!(blocks.iter().filter(|b| b.is_active_at(now)).count(), 2);
    let cur = current(&blocks, now).unwrap();
    assert_eq!(cur.start, at("2026-11-20T14:00:00Z"));
    assert_eq!(latest_started(&blocks, now).unwrap().start, cur.start);
    let ahead: Vec<&Block> = blocks.iter().filter(|b| b.is_future_at(now)).collect();
    assert_eq!(ahead.len(), 1);
    assert_eq!(ahead[0].tokens.output_tokens, 1_000);
    let f = FutureEntries::count(es.iter().map(|e| e.timestamp), now).unwrap();
    assert_eq!((f.entries, f.newest), (1, at("2026-11-20T22:40:00Z")));
    // `blocks --active` keeps the same window the faces use.
    let utc = jiff::tz::TimeZone::UTC;
    let shown = BlockFilter {
        active_only: true,
        ..Default::default()
    }
    .apply(blocks.clone(), || &utc, now);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].start, cur.start);
}

#[test]
fn limit_is_reached_at_the_pace_only_before_the_end() {
    let now = at("2026-11-20T16:00:00Z");
    let end = at("2026-11-20T19:00:00Z");
    assert_eq!(
        limit_reached_at(1_000, 7_000, 100.0, now, end),
        Some(at("2026-11-20T17:00:00Z"))
    );
    assert_eq!(limit_reached_at(1_000, 7_000, 10.0, now, end), None);
    assert_eq!(limit_reached_at(8_000, 7_000, 100.0, now, end), None);
    assert_eq!(limit_reached_at(1_000, 7_000, 0.0, now, end), None);
}
