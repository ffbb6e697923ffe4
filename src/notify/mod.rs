//! Notifications: the rules decide what is due ([`rules`]), the
//! backends show it ([`backend`]), and the store's `alerts_sent` table makes
//! each alert happen once, whichever process sends it and however often it
//! restarts.
//!
//! ## Exactly once, or at most once?
//! An alert's key is claimed in the store (`INSERT OR IGNORE`, one
//! transaction) *before* anything is shown, and only the process whose insert
//! went in sends. So a daemon and a dashboard evaluating at the same moment
//! cannot both send, and a restart never repeats: the key is on disk before
//! the notification exists. The price is a crash in the milliseconds between
//! claim and delivery, which loses that one alert — chosen over the opposite
//! order (send, then record), whose crash window repeats an alert, the one
//! thing the product promises never to do. When every backend fails, the
//! claim is given back, so the next update tries again while the rule still
//! holds (a daemon started before the desktop's notification server).
//!
//! ## Who sends
//! The daemon after every update; the dashboard, in-process, only while no
//! daemon runs (`csm monitor --check-daemon`'s test). Even if both ever did,
//! the claim above lets only one of them show a given alert.
//!
//! A daemon keeps one [`Notifier`] and, after each update:
//!
//! ```ignore
//! let mut notifier = Notifier::for_context(&ctx, Vec::new());
//! // ... after every update, with `failures` consecutive failed updates:
//! let input = AlertInput::from_history(&blocks, kept, ctx.config.token_limit, now)
//!     .with_official(notifier.official_limits())
//!     .with_source_failures(failures, last_error);
//! for d in notifier.evaluate_and_send(&input, now) { /* d.alert, d.results */ }
//! ```

pub mod backend;
pub mod hook;
pub mod rules;

use std::collections::HashSet;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};

pub use self::backend::{Backend, BackendError};
pub use self::rules::{Alert, AlertInput, OfficialInput, RuleSettings};
use crate::engine::accounts::{alert_is_of, alert_key_prefix};
use crate::store::Store;

/// How far back the sent set is read: the longest-lived key (a weekly limit)
/// names something at most 7 days old.
const SENT_LOOKBACK: SignedDuration = SignedDuration::from_hours(8 * 24);

/// What happened to one alert.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub alert: Alert,
    /// Each backend's result, in order.
    pub results: Vec<(&'static str, Result<String, BackendError>)>,
}

impl Delivery {
    pub fn delivered(&self) -> bool {
        self.results.iter().any(|(_, r)| r.is_ok())
    }
}

/// Evaluates the rules at `now` and sends what is due through `backends`,
/// claiming each alert in `store` first. Never fails: store and backend
/// errors are logged and the alert is left for a later update.
#[cfg(test)]
pub fn evaluate_and_send(
    store: &mut Store,
    input: &AlertInput,
    settings: &RuleSettings,
    backends: &[Box<dyn Backend>],
    now: Timestamp,
) -> Vec<Delivery> {
    evaluate_and_send_for(store, input, settings, backends, None, now)
}

/// [`evaluate_and_send`] for one of several accounts: its alerts' keys
/// carry the account's name (each account's window alerts are its own) and
/// their titles name it.
fn evaluate_and_send_for(
    store: &mut Store,
    input: &AlertInput,
    settings: &RuleSettings,
    backends: &[Box<dyn Backend>],
    account: Option<&str>,
    now: Timestamp,
) -> Vec<Delivery> {
    if backends.is_empty() {
        return Vec::new();
    }
    let since = now.saturating_sub(SENT_LOOKBACK).unwrap_or(now);
    let sent = match store.sent_alert_keys(since) {
        Ok(s) => of_account(s, account),
        Err(e) => {
            tracing::warn!("alerts: cannot read what was sent: {e}");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for alert in rules::evaluate(&sent, input, settings, now) {
        let alert = for_account(alert, account);
        match store.claim_alert(
            &alert.key,
            &alert.covers,
            alert.rule.as_str(),
            now,
            &alert.title,
            &alert.body,
        ) {
            Ok(true) => {}
            // Another process claimed it since the sent set was read.
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(key = alert.key, "alerts: cannot record: {e}");
                continue;
            }
        }
        let results: Vec<_> = backends
            .iter()
            .map(|b| (b.name(), b.send(&alert.title, &alert.body)))
            .collect();
        for (name, r) in &results {
            match r {
                Ok(how) => tracing::info!(key = alert.key, backend = name, how, "alert sent"),
                Err(e) => tracing::warn!(key = alert.key, backend = name, "alert not sent: {e}"),
            }
        }
        let delivery = Delivery { alert, results };
        if !delivery.delivered()
            && let Err(e) = store.release_alert(&delivery.alert.key, &delivery.alert.covers)
        {
            tracing::warn!(key = delivery.alert.key, "alerts: cannot release: {e}");
        }
        out.push(delivery);
    }
    out
}

/// The alerts due now without sending or recording anything (`--dry-run`).
fn due_for(
    store: &Store,
    input: &AlertInput,
    settings: &RuleSettings,
    account: Option<&str>,
    now: Timestamp,
) -> Vec<Alert> {
    let since = now.saturating_sub(SENT_LOOKBACK).unwrap_or(now);
    let sent = of_account(store.sent_alert_keys(since).unwrap_or_default(), account);
    rules::evaluate(&sent, input, settings, now)
        .into_iter()
        .map(|a| for_account(a, account))
        .collect()
}

/// The sent keys of `account` as the rules know them (without the
/// account's prefix); with no account, those of no account.
fn of_account(sent: HashSet<String>, account: Option<&str>) -> HashSet<String> {
    let prefix = account.map(alert_key_prefix).unwrap_or_default();
    sent.into_iter()
        .filter(|k| alert_is_of(k, account))
        .map(|k| k[prefix.len()..].to_string())
        .collect()
}

/// `alert` as one of `account`'s: its keys prefixed, its title naming it.
fn for_account(mut alert: Alert, account: Option<&str>) -> Alert {
    if let Some(a) = account {
        let prefix = alert_key_prefix(a);
        alert.key = format!("{prefix}{}", alert.key);
        for c in &mut alert.covers {
            *c = format!("{prefix}{c}");
        }
        alert.title = format!("{a}: {}", alert.title);
    }
    alert
}

/// Rules, backends and a store connection kept together: what the daemon
/// and the dashboard hold between updates.
pub struct Notifier {
    pub settings: RuleSettings,
    backends: Vec<Box<dyn Backend>>,
    /// `None` keeps the sent set in memory only (`--no-store`).
    base_dir: Option<PathBuf>,
    store: Option<Store>,
    /// The data roots whose official limits count (the run's account).
    roots: Vec<PathBuf>,
    /// With several accounts covered: the one this notifier speaks for.
    account: Option<String>,
}

impl Notifier {
    /// `base_dir` is where the history store is; `None` for `--no-store`.
    pub fn new(
        settings: RuleSettings,
        backends: Vec<Box<dyn Backend>>,
        base_dir: Option<PathBuf>,
    ) -> Notifier {
        Notifier {
            settings,
            backends,
            base_dir,
            store: None,
            roots: Vec::new(),
            account: None,
        }
    }

    /// This notifier speaks for the account `name` of several: its alerts
    /// name it and are remembered apart from the other accounts'.
    #[cfg(test)]
    pub fn for_account(mut self, name: &str) -> Notifier {
        self.account = Some(name.to_string());
        self
    }

    /// For a command's context: `[alerts]` settings, display zone, backends
    /// from config plus `extra` (the dashboard's bell).
    pub fn for_context(ctx: &crate::engine::Settings, extra: Vec<Box<dyn Backend>>) -> Notifier {
        let mut backends = backend::from_config(&ctx.config.alerts);
        backends.extend(extra);
        let mut n = Notifier::new(
            RuleSettings::new(&ctx.config.alerts, ctx.tz().clone()),
            backends,
            (!ctx.no_store).then(|| ctx.base_dir.clone()),
        );
        n.roots = ctx.roots.history_dirs();
        n.account = ctx.account.clone();
        n
    }

    pub fn backends(&self) -> &[Box<dyn Backend>] {
        &self.backends
    }

    fn store(&mut self) -> Option<&mut Store> {
        if self.store.is_none() {
            let opened = match &self.base_dir {
                Some(dir) => Store::open(dir),
                None => Store::open_in_memory(),
            };
            match opened {
                Ok(mut s) => {
                    // Official limits of this account only.
                    if !self.roots.is_empty()
                        && let Err(e) = s.set_scope(&self.roots)
                    {
                        tracing::warn!("alerts: cannot scope to the account: {e}");
                    }
                    self.store = Some(s);
                }
                Err(e) => tracing::warn!("alerts: cannot open the history store: {e}"),
            }
        }
        self.store.as_mut()
    }

    /// The newest official limits capture, for [`AlertInput::with_official`].
    pub fn official_limits(&mut self) -> Option<OfficialInput> {
        let store = self.store()?;
        match store.latest_official_limits() {
            Ok(c) => c.as_ref().map(OfficialInput::from),
            Err(e) => {
                tracing::warn!("alerts: cannot read official limits: {e}");
                None
            }
        }
    }

    /// The alerts sent most recently (newest first), for the snapshot.
    pub fn recent_alerts(&mut self, n: usize) -> Vec<crate::store::SentAlert> {
        let account = self.account.clone();
        let Some(store) = self.store() else {
            return Vec::new();
        };
        let all = store.recent_alerts(n * 4).unwrap_or_else(|e| {
            tracing::warn!("alerts: cannot read the alerts sent: {e}");
            Vec::new()
        });
        all.into_iter()
            .filter(|a| alert_is_of(&a.key, account.as_deref()))
            .take(n)
            .collect()
    }

    pub fn evaluate_and_send(&mut self, input: &AlertInput, now: Timestamp) -> Vec<Delivery> {
        if self.backends.is_empty() {
            return Vec::new();
        }
        if self.store().is_none() {
            return Vec::new();
        }
        let Notifier {
            settings,
            backends,
            store,
            account,
            ..
        } = self;
        match store.as_mut() {
            Some(store) => {
                evaluate_and_send_for(store, input, settings, backends, account.as_deref(), now)
            }
            None => Vec::new(),
        }
    }

    /// The alerts due now, sending and recording nothing.
    pub fn due(&mut self, input: &AlertInput, now: Timestamp) -> Vec<Alert> {
        let settings = self.settings.clone();
        let account = self.account.clone();
        match self.store() {
            Some(store) => due_for(store, input, &settings, account.as_deref(), now),
            None => rules::evaluate(&HashSet::<String>::new(), input, &settings, now),
        }
    }
}

#[cfg(test)]
mod tests;
