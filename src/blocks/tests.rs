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

fn run(entries: &[UsageEntry], now: &str) -> Vec<Block> {
    identify_blocks(
        entries.iter().map(|e| Timed {
            entry: e,
            cost: 1.0,
        }),
        at(now),
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
    let blocks = run(&es, "2026-11-25T00:00:00Z");
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
    assert!(blocks.iter().all(|b| !b.is_active));
}

#[test]
fn active_window_has_burn_rate_and_projection() {
    let es = [
        entry("2026-11-25T18:40:00Z", 200, "a"),
        entry("2026-11-25T19:40:00Z", 1000, "a"),
    ];
    let now = at("2026-11-25T20:00:00Z");
    let blocks = run(&es, "2026-11-25T20:00:00Z");
    let b = &blocks[0];
    assert!(b.is_active);
    let rate = b.burn_rate().unwrap();
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
    let single = run(&es[..1], "2026-11-25T19:00:00Z");
    assert!(single[0].is_active && single[0].burn_rate().is_none());
}

#[test]
fn activity_ends_five_hours_after_the_last_entry_or_at_window_end() {
    let es = [entry("2026-11-25T10:30:00Z", 1, "a")];
    assert!(run(&es, "2026-11-25T14:59:59Z")[0].is_active);
    assert!(!run(&es, "2026-11-25T15:00:00Z")[0].is_active);
}

#[test]
fn fast_mode_shows_as_its_own_model_and_synthetic_is_left_out() {
    let mut fast = entry("2026-11-20T10:00:00Z", 1, "claude-opus-4-5");
    fast.speed = Some(Speed::Fast);
    let synthetic = entry("2026-11-20T10:01:00Z", 1, "<synthetic>");
    let blocks = run(&[fast, synthetic], "2026-11-25T00:00:00Z");
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
    let all = run(&es, "2026-11-25T20:00:00Z");
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
    assert_eq!(max_completed_tokens(&all), 109);
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
        let blocks = run(&es, "2026-12-01T00:00:00Z");
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
        prop_assert_eq!(run(&again, "2026-12-01T00:00:00Z").len(), blocks.len());
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
        let now = at("2026-11-03T00:00:00Z");
        let es = &es;
        let costs = &costs;
        let timed = |from: usize, to: usize| {
            es[from..to].iter().enumerate().map(move |(i, e)| Timed { entry: e, cost: costs[from + i] })
        };
        let whole = identify_blocks(timed(0, es.len()), now, len);
        // Split after an entry strictly earlier than the next one, as the
        // store requires.
        let cut = split.min(es.len());
        prop_assume!(cut > 0 && (cut == es.len() || es[cut - 1].timestamp < es[cut].timestamp));
        let mut first = identify_blocks(timed(0, cut), now, len);
        let latest = first.iter().rposition(|b| !b.is_gap).unwrap();
        let tail = first.split_off(latest);
        let extended = extend_window(tail[0].clone(), timed(cut, es.len()), now, len);
        first.extend(extended);
        prop_assert_eq!(first, whole);
    }
}
