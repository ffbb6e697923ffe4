//! Claude Code integration (SPEC 8): the status line, official limits from
//! its payload, activity from hooks, and installing both into Claude Code's
//! settings.
//!
//! The two functions at the bottom are what other parts (the dashboard,
//! `csm status`, the daemon snapshot, alerts) read.

pub mod activity;
pub mod hook;
pub mod limits;
pub mod setup;
pub mod spool;
pub mod statusline;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::store::{Store, StoreError};

pub use activity::{ActivityState, LiveSession};
pub use limits::{OfficialBar, OfficialLimits, OfficialStatus};

/// Captures older than this are not shown at all (not even as stale): the
/// weekly window they describe has reset since.
pub const SHOW_LIMITS_FOR: SignedDuration = SignedDuration::from_hours(24 * 7);

/// The latest official-limits capture at `now` with its age and staleness;
/// `None` when there is none from the last week.
pub fn latest_official_limits(
    store: &Store,
    now: Timestamp,
) -> Result<Option<OfficialStatus>, StoreError> {
    Ok(store
        .latest_limits()?
        .filter(|l| now.duration_since(l.captured_at) <= SHOW_LIMITS_FOR)
        .map(|l| OfficialStatus::at(l, now)))
}

/// The Claude Code sessions live at `now` (SPEC 8 states), waiting ones first.
pub fn live_sessions(store: &Store, now: Timestamp) -> Result<Vec<LiveSession>, StoreError> {
    let since = now
        .checked_sub(activity::GONE_AFTER)
        .unwrap_or(Timestamp::MIN);
    let events = store.activity_since(since)?;
    Ok(activity::live_sessions_from(&events, now))
}

/// Most Claude Code sends on stdin; more is not a payload of ours.
pub const STDIN_MAX: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StdinError {
    #[error("no input within {0:?}")]
    Timeout(Duration),
    #[error("input larger than {STDIN_MAX} bytes")]
    TooLarge,
    #[error("cannot read input: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads stdin to its end, at most [`STDIN_MAX`] bytes and for at most
/// `timeout`: a stdin that never closes (a terminal, a stuck pipe) must not
/// hang Claude Code. The reader thread is left behind on timeout; the process
/// exits soon after.
pub fn read_stdin_bounded(timeout: Duration) -> Result<Vec<u8>, StdinError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("csm-stdin".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(16 << 10);
            let r = std::io::stdin()
                .lock()
                .take(STDIN_MAX as u64 + 1)
                .read_to_end(&mut buf)
                .map(|_| buf);
            let _ = tx.send(r);
        })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(buf)) if buf.len() > STDIN_MAX => Err(StdinError::TooLarge),
        Ok(Ok(buf)) => Ok(buf),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(StdinError::Timeout(timeout)),
    }
}

/// File the status line and hooks log to: they may print nothing else.
pub const LOG_FILE: &str = "claude.log";

/// Appends one line to `<base>/claude.log` (0600, rotated once past 1 MiB).
/// A plain append rather than a tracing subscriber: these processes live a
/// few milliseconds and log only when something went wrong.
pub fn log(base_dir: &Path, now: Timestamp, what: &str, msg: &str) {
    use std::io::Write as _;
    if crate::fsutil::create_private_dir(base_dir).is_err() {
        return;
    }
    let path = base_dir.join(LOG_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > 1 << 20) {
        let _ = std::fs::rename(&path, base_dir.join(format!("{LOG_FILE}.1")));
    }
    if let Ok(mut f) = crate::fsutil::open_private_append(&path) {
        let line = format!("{now} {what}: {}\n", msg.replace('\n', " "));
        let _ = f.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn what_the_snapshot_and_status_read() {
        let mut store = Store::open_in_memory().unwrap();
        let now = t("2026-11-20T16:40:00Z");
        assert_eq!(latest_official_limits(&store, now).unwrap(), None);
        assert_eq!(live_sessions(&store, now).unwrap(), vec![]);
        let capture = OfficialLimits {
            five_hour: Some(OfficialBar {
                used_percent: 42.0,
                resets_at: Some(t("2026-11-20T19:00:00Z")),
            }),
            seven_day: Some(OfficialBar {
                used_percent: 63.0,
                resets_at: Some(t("2026-11-23T08:00:00Z")),
            }),
            captured_at: now,
        };
        store.record_limits(&capture, Some("s")).unwrap();
        let s = latest_official_limits(&store, t("2026-11-20T16:51:00Z"))
            .unwrap()
            .unwrap();
        assert!(s.stale);
        assert_eq!(s.age_seconds, 660);
        insta::assert_json_snapshot!(s, @r#"
        {
          "five_hour": {
            "used_percent": 42.0,
            "resets_at": "2026-11-20T19:00:00Z"
          },
          "seven_day": {
            "used_percent": 63.0,
            "resets_at": "2026-11-23T08:00:00Z"
          },
          "captured_at": "2026-11-20T16:40:00Z",
          "age_seconds": 660,
          "stale": true
        }
        "#);
        // A week on, the capture describes windows that have reset.
        assert_eq!(
            latest_official_limits(&store, t("2026-11-27T16:41:00Z")).unwrap(),
            None
        );

        let input = br#"{"session_id":"s1","hook_event_name":"Stop","cwd":"/w/api"}"#;
        let e = activity::parse_hook(input, t("2026-11-20T16:38:00Z")).unwrap();
        store.record_activity(&e).unwrap();
        let live = live_sessions(&store, now).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].project, "api");
        assert_eq!(live[0].state, ActivityState::WaitingForYou);
        // Five hours later the session has gone.
        assert!(
            live_sessions(&store, t("2026-11-20T21:39:00Z"))
                .unwrap()
                .is_empty()
        );
    }
}
