//! What notifications need from the store: the set of alerts already sent
//! (so no process, and no restart, sends one twice) and the last official
//! limits Claude Code reported.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, ms};

/// Rows older than this are dropped when a new alert is claimed: every rule
/// key names a window, streak or hour that is over long before (the weekly
/// limit's keys live 7 days).
const KEEP_SENT: SignedDuration = SignedDuration::from_hours(35 * 24);

/// One alert as remembered in `alerts_sent`.
#[derive(Clone, Debug, PartialEq)]
pub struct SentAlert {
    /// The alert's key, naming its rule and the window, streak or hour it is about.
    pub key: String,
    /// The rule that raised it (`window_ending`, `limit`, …).
    pub rule: String,
    /// When it was claimed for sending.
    pub sent_at: Timestamp,
    /// Notification title; empty for a threshold it covered.
    pub title: String,
    /// Notification body; empty for a threshold it covered.
    pub body: String,
}

/// The most recent `rate_limits` capture.
#[derive(Clone, Debug, PartialEq)]
pub struct OfficialCapture {
    /// When the status line captured it.
    pub captured_at: Timestamp,
    /// Five-hour limit used, percent 0–100.
    pub five_hour_pct: Option<f64>,
    /// When the five-hour limit resets.
    pub five_hour_reset: Option<Timestamp>,
    /// Weekly (seven-day) limit used, percent 0–100.
    pub seven_day_pct: Option<f64>,
    /// When the weekly limit resets.
    pub seven_day_reset: Option<Timestamp>,
}

impl Store {
    /// Claims `key` (and, with it, `covers`: lower thresholds the same alert
    /// makes moot) for this process. True when this call inserted the key:
    /// the caller then owns the alert and sends it. False when any process
    /// claimed it before. One transaction, so two senders racing for the
    /// same key cannot both win.
    pub fn claim_alert(
        &mut self,
        key: &str,
        covers: &[String],
        rule: &str,
        now: Timestamp,
        title: &str,
        body: &str,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO alerts_sent (key, rule, sent_ms, title, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key, rule, now.as_millisecond(), title, body],
        )? == 1;
        if inserted {
            for k in covers {
                tx.execute(
                    "INSERT OR IGNORE INTO alerts_sent (key, rule, sent_ms, title, body)
                     VALUES (?1, ?2, ?3, '', '')",
                    params![k, rule, now.as_millisecond()],
                )?;
            }
            let cutoff = now.saturating_sub(KEEP_SENT).unwrap_or(now);
            tx.execute(
                "DELETE FROM alerts_sent WHERE sent_ms < ?1",
                [cutoff.as_millisecond()],
            )?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    /// Gives a claim back (nothing could be delivered): a later evaluation
    /// may try again while the rule still holds.
    pub fn release_alert(&mut self, key: &str, covers: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM alerts_sent WHERE key = ?1", [key])?;
        for k in covers {
            tx.execute("DELETE FROM alerts_sent WHERE key = ?1", [k])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Keys of alerts sent since `since`.
    pub fn sent_alert_keys(&self, since: Timestamp) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key FROM alerts_sent WHERE sent_ms >= ?1")?;
        let keys = stmt
            .query_map([since.as_millisecond()], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    /// The last `n` alerts actually shown (not the thresholds they covered),
    /// newest first.
    pub fn recent_alerts(&self, n: usize) -> Result<Vec<SentAlert>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, rule, sent_ms, title, body FROM alerts_sent
             WHERE title != '' ORDER BY sent_ms DESC, key LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([n as i64], |r| {
                Ok(SentAlert {
                    key: r.get(0)?,
                    rule: r.get(1)?,
                    sent_at: ms(r.get(2)?),
                    title: r.get(3)?,
                    body: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The newest official limits capture, if the status line ever stored one.
    pub fn latest_official_limits(&self) -> Result<Option<OfficialCapture>, StoreError> {
        let secs = |v: Option<i64>| v.and_then(|s| Timestamp::from_second(s).ok());
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT captured_ms, five_hour_pct, five_hour_reset_s, seven_day_pct, seven_day_reset_s
                     FROM official_limits WHERE {} ORDER BY captured_ms DESC LIMIT 1",
                    self.told_filter()
                ),
                [],
                |r| {
                    Ok(OfficialCapture {
                        captured_at: ms(r.get(0)?),
                        five_hour_pct: r.get(1)?,
                        five_hour_reset: secs(r.get(2)?),
                        seven_day_pct: r.get(3)?,
                        seven_day_reset: secs(r.get(4)?),
                    })
                },
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_key_is_claimed_once_across_connections() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::open(dir.path()).unwrap();
        let mut b = Store::open(dir.path()).unwrap();
        let now = t("2026-11-20T16:40:00Z");
        let covers = vec!["limit:x:80".to_string()];
        assert!(
            a.claim_alert("limit:x:95", &covers, "limits", now, "T", "B")
                .unwrap()
        );
        assert!(
            !b.claim_alert("limit:x:95", &[], "limits", now, "T", "B")
                .unwrap()
        );
        // The covered threshold counts as sent too.
        assert!(
            !b.claim_alert("limit:x:80", &[], "limits", now, "T", "B")
                .unwrap()
        );
        let keys = b.sent_alert_keys(Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(keys.len(), 2);
        // Only the shown alert is listed.
        let recent = b.recent_alerts(10).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].title, "T");
        assert_eq!(recent[0].sent_at, now);

        a.release_alert("limit:x:95", &covers).unwrap();
        assert!(b.sent_alert_keys(Timestamp::UNIX_EPOCH).unwrap().is_empty());
        assert!(
            b.claim_alert("limit:x:95", &[], "limits", now, "T", "B")
                .unwrap()
        );
    }

    #[test]
    fn old_rows_are_pruned_on_claim() {
        let mut s = Store::open_in_memory().unwrap();
        let old = t("2026-09-01T00:00:00Z");
        assert!(s.claim_alert("old", &[], "r", old, "T", "B").unwrap());
        let now = t("2026-11-20T16:40:00Z");
        assert!(s.claim_alert("new", &[], "r", now, "T", "B").unwrap());
        let keys = s.sent_alert_keys(Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(keys, HashSet::from(["new".to_string()]));
    }

    #[test]
    fn latest_official_capture() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.latest_official_limits().unwrap(), None);
        s.conn
            .execute_batch(
                "INSERT INTO official_limits VALUES (1000, 's', 10.0, 1764106800, 20.0, NULL, NULL);
                 INSERT INTO official_limits VALUES (3000, 's', 85.5, 1764106800, 41.2, 1764540000, NULL);
                 INSERT INTO official_limits VALUES (2000, 's', 50.0, NULL, NULL, NULL, NULL);",
            )
            .unwrap();
        let c = s.latest_official_limits().unwrap().unwrap();
        assert_eq!(c.captured_at, ms(3000));
        assert_eq!(c.five_hour_pct, Some(85.5));
        assert_eq!(
            c.five_hour_reset,
            Some(Timestamp::from_second(1764106800).unwrap())
        );
        assert_eq!(
            c.seven_day_reset,
            Some(Timestamp::from_second(1764540000).unwrap())
        );
    }
}
