//! Sending through the store: claims, restarts, failures, two senders.

use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::config::Alerts;
use crate::notify::rules::WindowInput;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Records what it was asked to show; fails while `fail` is set.
#[derive(Clone, Default)]
struct Recorder {
    shown: Arc<Mutex<Vec<String>>>,
    fail: Arc<Mutex<bool>>,
}

impl Backend for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn send(&self, title: &str, _body: &str) -> Result<String, BackendError> {
        if *self.fail.lock().unwrap() {
            return Err(BackendError {
                message: "down".into(),
                hint: None,
            });
        }
        self.shown.lock().unwrap().push(title.to_string());
        Ok("recorded".into())
    }
    fn check(&self) -> Result<String, BackendError> {
        Ok(String::new())
    }
}

fn settings() -> RuleSettings {
    RuleSettings::new(&Alerts::default(), TimeZone::UTC)
}

/// A window 12:00–17:00 whose last entry is at `last`, `tokens` of 1,000.
fn input(last: &str, tokens: u64) -> AlertInput {
    AlertInput {
        window: Some(WindowInput {
            start: t("2026-11-20T12:00:00Z"),
            end: t("2026-11-20T17:00:00Z"),
            tokens,
            limit: Some(1000),
        }),
        last_entry: Some(t(last)),
        ..Default::default()
    }
}

fn minutes(from: &str, to: &str) -> Vec<Timestamp> {
    let (mut at, to) = (t(from), t(to));
    let mut v = Vec::new();
    while at <= to {
        v.push(at);
        at += SignedDuration::from_mins(1);
    }
    v
}

#[test]
fn a_restart_in_the_middle_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let backends: Vec<Box<dyn Backend>> = vec![Box::new(rec.clone())];
    let run = |clock: &[Timestamp]| {
        // A fresh process: a new connection to the same store.
        let mut store = Store::open(dir.path()).unwrap();
        for now in clock {
            evaluate_and_send(
                &mut store,
                &input("2026-11-20T15:00:00Z", 850),
                &settings(),
                &backends,
                *now,
            );
        }
    };
    run(&minutes("2026-11-20T15:00:00Z", "2026-11-20T16:35:00Z"));
    let before = rec.shown.lock().unwrap().clone();
    assert_eq!(
        before,
        vec![
            "Claude window at 85 % of your limit — resets 17:00",
            "Claude idle for 10 min — 1h 50m left in this window",
            "Claude window ends in 30 min (17:00) — 85 % used",
        ]
    );
    // Restarted at 16:35 and again at 16:50: nothing more to say.
    run(&minutes("2026-11-20T16:35:00Z", "2026-11-20T16:50:00Z"));
    run(&minutes("2026-11-20T16:50:00Z", "2026-11-20T18:00:00Z"));
    assert_eq!(*rec.shown.lock().unwrap(), before);
}

#[test]
fn nothing_delivered_gives_the_claim_back_for_a_later_try() {
    let mut store = Store::open_in_memory().unwrap();
    let rec = Recorder::default();
    *rec.fail.lock().unwrap() = true;
    let backends: Vec<Box<dyn Backend>> = vec![Box::new(rec.clone())];
    let i = input("2026-11-20T16:00:00Z", 10);
    let now = t("2026-11-20T16:40:00Z");
    let d = evaluate_and_send(&mut store, &i, &settings(), &backends, now);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.iter().all(|x| !x.delivered()));
    assert!(store.recent_alerts(10).unwrap().is_empty());

    *rec.fail.lock().unwrap() = false;
    let later = now + SignedDuration::from_mins(1);
    let d = evaluate_and_send(&mut store, &i, &settings(), &backends, later);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(Delivery::delivered));
    assert_eq!(store.recent_alerts(10).unwrap().len(), 2);
    assert!(evaluate_and_send(&mut store, &i, &settings(), &backends, later).is_empty());
}

#[test]
fn one_working_backend_is_enough_and_failures_are_reported() {
    let mut store = Store::open_in_memory().unwrap();
    let ok = Recorder::default();
    let bad = Recorder::default();
    *bad.fail.lock().unwrap() = true;
    let backends: Vec<Box<dyn Backend>> = vec![Box::new(bad), Box::new(ok.clone())];
    let d = evaluate_and_send(
        &mut store,
        &input("2026-11-20T16:39:00Z", 10),
        &settings(),
        &backends,
        t("2026-11-20T16:40:00Z"),
    );
    assert_eq!(d.len(), 1);
    assert!(d[0].results[0].1.is_err() && d[0].results[1].1.is_ok());
    assert_eq!(ok.shown.lock().unwrap().len(), 1);
    assert_eq!(store.recent_alerts(10).unwrap().len(), 1);
}

#[test]
fn two_senders_racing_show_each_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap();
    let rec = Recorder::default();
    let clock = minutes("2026-11-20T15:00:00Z", "2026-11-20T17:00:00Z");
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let rec = rec.clone();
            let clock = clock.clone();
            let dir = dir.path().to_path_buf();
            scope.spawn(move || {
                let mut store = Store::open(&dir).unwrap();
                let backends: Vec<Box<dyn Backend>> = vec![Box::new(rec)];
                for now in clock {
                    evaluate_and_send(
                        &mut store,
                        &input("2026-11-20T15:00:00Z", 990),
                        &settings(),
                        &backends,
                        now,
                    );
                }
            });
        }
    });
    let mut shown = rec.shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 3, "{shown:?}");
    shown.sort();
    shown.dedup();
    assert_eq!(shown.len(), 3, "an alert was shown twice");
}

#[test]
fn without_backends_nothing_is_claimed() {
    let mut store = Store::open_in_memory().unwrap();
    let d = evaluate_and_send(
        &mut store,
        &input("2026-11-20T16:00:00Z", 990),
        &settings(),
        &[],
        t("2026-11-20T16:40:00Z"),
    );
    assert!(d.is_empty());
    assert!(
        store
            .sent_alert_keys(Timestamp::UNIX_EPOCH)
            .unwrap()
            .is_empty()
    );
}

/// By hand: `cargo test --release --lib notify::tests::evaluation_cost -- --ignored --nocapture`.
/// What the dashboard adds to each tick when nothing is due: the sent set
/// and the official limits read from a file store.
#[test]
#[ignore]
fn evaluation_cost() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Notifier::new(
        settings(),
        vec![Box::new(Recorder::default())],
        Some(dir.path().to_path_buf()),
    );
    let i = input("2026-11-20T15:00:00Z", 10);
    let now = t("2026-11-20T15:05:00Z");
    n.evaluate_and_send(&i, now);
    let rounds = 2000;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let input = i.clone().with_official(n.official_limits());
        assert!(n.evaluate_and_send(&input, now).is_empty());
    }
    let per = started.elapsed() / rounds;
    println!("one evaluation with nothing due: {per:?}");
}

/// Two accounts in one store each get their own alert for the same rule
/// and window, named in the title; neither sees the other's as sent.
#[test]
fn each_account_is_alerted_on_its_own_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let notifier = |name: Option<&str>| {
        let n = Notifier::new(
            settings(),
            vec![Box::new(Recorder {
                shown: Arc::clone(&shown),
                fail: Arc::default(),
            })],
            Some(dir.path().to_path_buf()),
        );
        match name {
            Some(a) => n.for_account(a),
            None => n,
        }
    };
    let (mut work, mut personal, mut plain) = (
        notifier(Some("work")),
        notifier(Some("personal")),
        notifier(None),
    );
    let i = input("2026-11-20T16:35:00Z", 900);
    let now = t("2026-11-20T16:40:00Z");
    let w = work.evaluate_and_send(&i, now);
    assert!(!w.is_empty());
    assert!(w.iter().all(|d| d.alert.title.starts_with("work: ")));
    assert!(work.evaluate_and_send(&i, now).is_empty(), "sent once");
    let p = personal.evaluate_and_send(&i, now);
    assert_eq!(p.len(), w.len(), "the other account's alerts are its own");
    assert!(p.iter().all(|d| d.alert.title.starts_with("personal: ")));
    // A run that covers one account (no name) keeps its own keys too.
    assert_eq!(plain.evaluate_and_send(&i, now).len(), w.len());
    assert!(
        work.recent_alerts(10)
            .iter()
            .all(|a| a.title.starts_with("work: "))
    );
    assert!(
        plain
            .recent_alerts(10)
            .iter()
            .all(|a| !a.title.contains(": ") || !a.key.starts_with("account["))
    );
    assert_eq!(shown.lock().unwrap().len(), 3 * w.len());
}
