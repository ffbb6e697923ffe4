//! The rules on simulated clocks: timelines of entries, a clock stepped one
//! minute at a time, and the sent set carried from step to step as the store
//! would carry it.

use std::collections::HashSet;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::blocks::{Timed, identify_blocks, window_length};
use crate::domain::{UsageEntry, sample_entry};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn settings() -> RuleSettings {
    RuleSettings {
        time_alert_minutes: 30,
        inactivity_alert_minutes: 10,
        limit_thresholds: vec![80, 95],
        reset_alert: true,
        source_alert: true,
        tz: TimeZone::UTC,
    }
}

/// Entries of `tokens` input tokens each at the given times.
fn entries(times: &[Timestamp], tokens: u64) -> Vec<UsageEntry> {
    times
        .iter()
        .map(|ts| {
            let mut e = sample_entry(*ts, 0);
            e.tokens.input_tokens = tokens;
            e
        })
        .collect()
}

/// The input the rules see at `now`: only entries up to `now` exist yet.
fn input_at(all: &[UsageEntry], now: Timestamp, limit: Option<u64>) -> AlertInput {
    let known = all
        .iter()
        .filter(|e| e.timestamp <= now)
        .map(|entry| Timed { entry, cost: 0.0 });
    let blocks = identify_blocks(known, window_length(5.0));
    AlertInput::from_blocks(&blocks, limit, now)
}

/// What fired at which minute.
#[derive(Debug)]
struct Fired {
    at: Timestamp,
    alert: Alert,
}

/// Steps the clock a minute at a time over `[from, to]`, recording each
/// alert's key (and what it covers) as sent, like the store does.
fn simulate(
    all: &[UsageEntry],
    from: Timestamp,
    to: Timestamp,
    limit: Option<u64>,
    s: &RuleSettings,
    sent: &mut HashSet<String>,
) -> Vec<Fired> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= to {
        let input = input_at(all, now, limit);
        for alert in evaluate(sent, &input, s, now) {
            assert!(sent.insert(alert.key.clone()), "repeated {}", alert.key);
            sent.extend(alert.covers.iter().cloned());
            out.push(Fired { at: now, alert });
        }
        now += SignedDuration::from_mins(1);
    }
    out
}

fn of(fired: &[Fired], rule: Rule) -> Vec<(Timestamp, String)> {
    fired
        .iter()
        .filter(|f| f.alert.rule == rule)
        .map(|f| (f.at, f.alert.title.clone()))
        .collect()
}

fn every(from: &str, to: &str, step_min: i64) -> Vec<Timestamp> {
    let (mut at, to) = (t(from), t(to));
    let mut v = Vec::new();
    while at <= to {
        v.push(at);
        at += SignedDuration::from_mins(step_min);
    }
    v
}

#[test]
fn window_ending_fires_once_at_the_right_minute_with_a_message_that_says_what_to_do() {
    // Busy from 12:05 to 16:55: the window is 12:00–17:00.
    let all = entries(
        &every("2026-11-20T12:05:00Z", "2026-11-20T16:55:00Z", 5),
        1000,
    );
    let mut s = settings();
    s.inactivity_alert_minutes = 0;
    s.limit_thresholds.clear();
    let fired = simulate(
        &all,
        t("2026-11-20T12:00:00Z"),
        t("2026-11-20T23:00:00Z"),
        Some(100_000),
        &s,
        &mut HashSet::new(),
    );
    let w = of(&fired, Rule::WindowEnding);
    assert_eq!(w.len(), 1, "{fired:?}");
    assert_eq!(w[0].0, t("2026-11-20T16:30:00Z"));
    // 54 entries of 1,000 tokens by 16:30 against 100,000.
    assert_eq!(w[0].1, "Claude window ends in 30 min (17:00) — 54 % used");
    assert!(fired.iter().all(|f| f.alert.rule == Rule::WindowEnding));
}

#[test]
fn the_message_reads_as_the_example() {
    let all = entries(&[t("2026-11-20T12:10:00Z")], 610);
    let input = input_at(&all, t("2026-11-20T16:32:00Z"), Some(1000));
    let mut s = settings();
    s.inactivity_alert_minutes = 0;
    s.tz = TimeZone::get("Europe/Warsaw").unwrap();
    let alerts = evaluate(&HashSet::new(), &input, &s, t("2026-11-20T16:32:00Z"));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].key, "window_ending:2026-11-20T12:00:00Z");
    assert_eq!(
        alerts[0].title,
        "Claude window ends in 28 min (18:00) — 61 % used"
    );
    assert!(alerts[0].body.contains("resets at 18:00"), "{alerts:?}");
}

#[test]
fn inactivity_fires_once_per_idle_streak_and_re_arms_after_activity() {
    let mut times = every("2026-11-20T12:05:00Z", "2026-11-20T13:00:00Z", 5);
    // 40 minutes idle, then a burst, then nothing.
    times.extend(every("2026-11-20T13:40:00Z", "2026-11-20T14:00:00Z", 2));
    let all = entries(&times, 1000);
    let mut s = settings();
    s.time_alert_minutes = 0;
    let fired = simulate(
        &all,
        t("2026-11-20T12:00:00Z"),
        t("2026-11-20T23:00:00Z"),
        None,
        &s,
        &mut HashSet::new(),
    );
    let idle = of(&fired, Rule::Inactivity);
    assert_eq!(
        idle.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        vec![t("2026-11-20T13:10:00Z"), t("2026-11-20T14:10:00Z")],
        "{fired:?}"
    );
    assert_eq!(
        idle[0].1,
        "Claude idle for 10 min — 3h 50m left in this window"
    );
    assert!(fired.iter().all(|f| f.alert.rule == Rule::Inactivity));
}

#[test]
fn thresholds_fire_once_per_window_and_again_in_the_next_window() {
    // 50 tokens a minute against 1,000: 80 % at the 16th entry, 95 % at the 19th.
    let mut times = every("2026-11-20T12:00:00Z", "2026-11-20T12:29:00Z", 1);
    // Next window, 6 hours later.
    times.extend(every("2026-11-20T18:00:00Z", "2026-11-20T18:29:00Z", 1));
    let all = entries(&times, 50);
    let mut s = settings();
    s.time_alert_minutes = 0;
    s.inactivity_alert_minutes = 0;
    let fired = simulate(
        &all,
        t("2026-11-20T11:00:00Z"),
        t("2026-11-21T01:00:00Z"),
        Some(1000),
        &s,
        &mut HashSet::new(),
    );
    let l = of(&fired, Rule::Limit);
    let at: Vec<Timestamp> = l.iter().map(|(at, _)| *at).collect();
    assert_eq!(
        at,
        vec![
            t("2026-11-20T12:15:00Z"),
            t("2026-11-20T12:18:00Z"),
            t("2026-11-20T18:15:00Z"),
            t("2026-11-20T18:18:00Z"),
        ],
        "{fired:?}"
    );
    assert_eq!(l[0].1, "Claude window at 80 % of your limit — resets 17:00");
    assert_eq!(l[1].1, "Claude window at 95 % of your limit — resets 17:00");
}

#[test]
fn crossing_two_thresholds_at_once_sends_only_the_higher() {
    let all = entries(&[t("2026-11-20T12:05:00Z")], 970);
    let s = RuleSettings {
        time_alert_minutes: 0,
        inactivity_alert_minutes: 0,
        ..settings()
    };
    let mut sent = HashSet::new();
    let fired = simulate(
        &all,
        t("2026-11-20T12:00:00Z"),
        t("2026-11-20T18:00:00Z"),
        Some(1000),
        &s,
        &mut sent,
    );
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].alert.key, "limit:window:2026-11-20T12:00:00Z:95");
    assert_eq!(
        fired[0].alert.covers,
        vec!["limit:window:2026-11-20T12:00:00Z:80".to_string()]
    );
}

#[test]
fn nothing_fires_for_a_past_window() {
    // A window that went over its limit, idled and ended long ago.
    let all = entries(
        &every("2026-11-20T08:05:00Z", "2026-11-20T09:00:00Z", 5),
        1000,
    );
    let now = t("2026-11-20T16:40:00Z");
    let input = input_at(&all, now, Some(1000));
    assert_eq!(input.window, None);
    assert!(evaluate(&HashSet::new(), &input, &settings(), now).is_empty());
    // Nor at any minute after the window's end.
    let fired = simulate(
        &all,
        t("2026-11-20T13:00:00Z"),
        t("2026-11-21T13:00:00Z"),
        Some(1000),
        &settings(),
        &mut HashSet::new(),
    );
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn a_restarted_evaluator_with_the_same_sent_set_repeats_nothing() {
    let mut times = every("2026-11-20T12:05:00Z", "2026-11-20T13:00:00Z", 1);
    times.extend(every("2026-11-20T14:00:00Z", "2026-11-20T16:45:00Z", 15));
    let all = entries(&times, 20);
    let s = settings();
    let (from, mid, to) = (
        t("2026-11-20T12:00:00Z"),
        t("2026-11-20T14:07:00Z"),
        t("2026-11-20T18:00:00Z"),
    );
    let mut one = HashSet::new();
    let whole = simulate(&all, from, to, Some(1500), &s, &mut one);
    // The same run cut in two: the second half starts from what the first
    // recorded (a daemon restarted at 14:07 reads the store).
    let mut two = HashSet::new();
    let mut halves = simulate(&all, from, mid, Some(1500), &s, &mut two);
    halves.extend(simulate(
        &all,
        mid + SignedDuration::from_mins(1),
        to,
        Some(1500),
        &s,
        &mut two,
    ));
    let keys = |f: &[Fired]| f.iter().map(|x| x.alert.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&whole), keys(&halves));
    // Every rule that can fire here did: idle from 13:10 on, 80 % of the
    // limit during the afternoon, the window's end at 16:30.
    let rules: HashSet<Rule> = whole.iter().map(|f| f.alert.rule).collect();
    assert!(rules.contains(&Rule::Inactivity), "{whole:?}");
    assert!(rules.contains(&Rule::WindowEnding), "{whole:?}");
    assert!(rules.contains(&Rule::Limit), "{whole:?}");
}

/// A small deterministic generator: bursts of activity with pauses.
fn generated(seed: u64, start: Timestamp, until: Timestamp) -> Vec<Timestamp> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let mut v = Vec::new();
    let mut at = start;
    while at < until {
        v.push(at);
        // Mostly 1–4 minutes apart, sometimes a pause of up to 7 hours.
        let gap = match next(20) {
            0 => 15 + next(400),
            1 | 2 => 8 + next(20),
            _ => 1 + next(4),
        };
        at += SignedDuration::from_mins(gap as i64);
    }
    v
}

#[test]
fn on_generated_timelines_each_alert_fires_once_exactly_when_due() {
    let s = RuleSettings {
        limit_thresholds: Vec::new(),
        ..settings()
    };
    for seed in 1..=6u64 {
        let from = t("2026-11-18T00:00:00Z");
        let to = t("2026-11-20T00:00:00Z");
        let times = generated(seed, from + SignedDuration::from_mins(7), to);
        let all = entries(&times, 500);
        let fired = simulate(&all, from, to, None, &s, &mut HashSet::new());

        // Expected, computed from the windows directly.
        let blocks = identify_blocks(
            all.iter().map(|entry| Timed { entry, cost: 0.0 }),
            window_length(5.0),
        );
        let mut want_end = Vec::new();
        let mut want_idle = Vec::new();
        for b in blocks.iter().filter(|b| !b.is_gap) {
            let due = b.end - SignedDuration::from_mins(30);
            let last = b.actual_end.unwrap();
            if due <= to && last > due - SignedDuration::from_hours(5) {
                want_end.push(due);
            }
            // Each pause of 10 minutes or more inside the window, while it lasts.
            let inside: Vec<Timestamp> = times
                .iter()
                .copied()
                .filter(|x| *x >= b.start && *x < b.end)
                .collect();
            for (i, at) in inside.iter().enumerate() {
                let due = *at + SignedDuration::from_mins(10);
                let next = inside.get(i + 1).copied();
                if due < b.end && next.is_none_or(|n| n > due) && due <= to {
                    want_idle.push(due);
                }
            }
        }
        let got_end: Vec<Timestamp> = of(&fired, Rule::WindowEnding)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        let got_idle: Vec<Timestamp> = of(&fired, Rule::Inactivity)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(got_end, want_end, "seed {seed}");
        assert_eq!(got_idle, want_idle, "seed {seed}");
        assert!(!got_idle.is_empty() && !got_end.is_empty(), "seed {seed}");
    }
}

fn official(five: Option<(f64, &str)>, week: Option<(f64, &str)>, at: &str) -> OfficialInput {
    let bar = |b: Option<(f64, &str)>| {
        b.map(|(p, r)| OfficialLimit {
            used_percent: p,
            resets_at: Some(t(r)),
        })
    };
    OfficialInput {
        captured_at: t(at),
        five_hour: bar(five),
        seven_day: bar(week),
    }
}

#[test]
fn official_limits_take_over_from_the_estimate() {
    let all = entries(&[t("2026-11-20T14:05:00Z")], 990);
    let now = t("2026-11-20T15:00:00Z");
    let s = RuleSettings {
        time_alert_minutes: 0,
        inactivity_alert_minutes: 0,
        ..settings()
    };
    // The estimate alone says 99 %.
    let est = input_at(&all, now, Some(1000));
    let a = evaluate(&HashSet::new(), &est, &s, now);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].key, "limit:window:2026-11-20T14:00:00Z:95");

    // Claude Code says 85 % of the 5-hour limit and 96 % of the week.
    let input = est.with_official(Some(official(
        Some((85.4, "2026-11-20T18:59:58Z")),
        Some((96.0, "2026-11-24T09:00:00Z")),
        "2026-11-20T14:58:00Z",
    )));
    let a = evaluate(&HashSet::new(), &input, &s, now);
    let titles: Vec<&str> = a.iter().map(|x| x.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "Claude 5-hour limit 85 % used — resets 19:00",
            "Claude weekly limit 96 % used — resets Tue 09:00",
        ]
    );
    assert_eq!(a[0].key, "limit:5h:2026-11-20T19:00:00Z:80");
    assert_eq!(a[1].key, "limit:7d:2026-11-24T09:00:00Z:95");
    assert_eq!(a[1].covers, vec!["limit:7d:2026-11-24T09:00:00Z:80"]);

    // Once the official window has reset, its figure no longer counts.
    let later = t("2026-11-20T19:01:00Z");
    let after = input_at(&all, later, Some(1000)).with_official(input.official.clone());
    assert!(
        evaluate(&HashSet::new(), &after, &s, later)
            .iter()
            .all(|x| !x.key.starts_with("limit:5h")),
    );
}

#[test]
fn reset_fires_once_when_the_limit_passes_and_nothing_was_used_since() {
    let mut all = entries(&[t("2026-11-20T12:05:00Z"), t("2026-11-20T14:30:00Z")], 500);
    all[1].usage_limit_reset = Some(t("2026-11-20T17:00:00Z"));
    let s = RuleSettings {
        time_alert_minutes: 0,
        inactivity_alert_minutes: 0,
        limit_thresholds: Vec::new(),
        ..settings()
    };
    let fired = simulate(
        &all,
        t("2026-11-20T14:00:00Z"),
        t("2026-11-21T02:00:00Z"),
        None,
        &s,
        &mut HashSet::new(),
    );
    let r = of(&fired, Rule::Reset);
    assert_eq!(r.len(), 1, "{fired:?}");
    assert_eq!(r[0].0, t("2026-11-20T17:00:00Z"));
    assert_eq!(r[0].1, "Claude usage limit has reset — you can continue");

    // Used again after the reset: nothing to tell.
    all.push(sample_entry(t("2026-11-20T17:00:30Z"), 10));
    let fired = simulate(
        &all,
        t("2026-11-20T17:01:00Z"),
        t("2026-11-21T02:00:00Z"),
        None,
        &s,
        &mut HashSet::new(),
    );
    assert!(of(&fired, Rule::Reset).is_empty(), "{fired:?}");

    // Switched off.
    let off = RuleSettings {
        reset_alert: false,
        ..s
    };
    let input = input_at(&all[..2], t("2026-11-20T17:05:00Z"), None);
    assert!(evaluate(&HashSet::new(), &input, &off, t("2026-11-20T17:05:00Z")).is_empty());
}

#[test]
fn source_failing_fires_after_five_failures_at_most_once_an_hour() {
    let s = settings();
    let mut sent = HashSet::new();
    let mut fired = Vec::new();
    let mut now = t("2026-11-20T10:00:00Z");
    for poll in 1..=400u32 {
        // Every poll fails; each is 10 s apart.
        let input = AlertInput::default().with_source_failures(poll, Some("disk on fire".into()));
        for a in evaluate(&sent, &input, &s, now) {
            sent.insert(a.key.clone());
            fired.push((now, a));
        }
        now += SignedDuration::from_secs(10);
    }
    // Polls 1–4 say nothing; the 5th fires at 10:00:40; then 11:00:00 is a new hour.
    let at: Vec<Timestamp> = fired.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        at,
        vec![t("2026-11-20T10:00:40Z"), t("2026-11-20T11:00:00Z")]
    );
    assert_eq!(
        fired[0].1.body,
        "The last 5 updates failed: disk on fire. Run `csm doctor` to see why."
    );
}

#[test]
fn rules_switch_off() {
    let all = entries(&[t("2026-11-20T12:05:00Z")], 990);
    let now = t("2026-11-20T16:45:00Z");
    let input = input_at(&all, now, Some(1000)).with_source_failures(9, None);
    let off = RuleSettings {
        time_alert_minutes: 0,
        inactivity_alert_minutes: 0,
        limit_thresholds: Vec::new(),
        reset_alert: false,
        source_alert: false,
        tz: TimeZone::UTC,
    };
    assert!(evaluate(&HashSet::new(), &input, &off, now).is_empty());
    assert_eq!(evaluate(&HashSet::new(), &input, &settings(), now).len(), 4);
}
