//! Claude Code activity from hooks: what each hook event says, and
//! which sessions are working, waiting for the user or idle — a pure
//! function of the recorded events and the clock.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The hook events csm listens to (what `csm setup claude` installs).
pub const EVENTS: [&str; 8] = [
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Notification",
    "Stop",
    "SubagentStop",
    "SessionEnd",
];
/// A working event this recent makes a session ACTIVE.
pub const ACTIVE_WITHIN: SignedDuration = SignedDuration::from_mins(2);
/// No event for this long makes a session IDLE.
pub const IDLE_AFTER: SignedDuration = SignedDuration::from_mins(10);
/// No event for this long ends a session that never sent SessionEnd.
pub const GONE_AFTER: SignedDuration = SignedDuration::from_hours(5);

/// What a live session is doing, from its hook events; ordered waiting first, idle last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivityState {
    /// Claude asked for something (permission, input) or finished its turn.
    WaitingForYou,
    /// Prompt or tool events within the last two minutes, or a tool running.
    Active,
    /// Nothing happening.
    Idle,
}

impl ActivityState {
    /// Upper-case label for the dashboard's activity panel.
    pub fn label(self) -> &'static str {
        match self {
            ActivityState::Active => "ACTIVE",
            ActivityState::WaitingForYou => "WAITING FOR YOU",
            ActivityState::Idle => "IDLE",
        }
    }
}

/// One hook event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityEvent {
    /// When `csm hook` received the event.
    pub ts: Timestamp,
    /// Claude Code's session id (never empty).
    pub session_id: String,
    /// `hook_event_name` as Claude Code sent it.
    pub event: String,
    /// The session's working directory, when the event gave one.
    pub cwd: Option<String>,
    /// Last component of `cwd`.
    pub project: Option<String>,
    /// What the event is about: the tool, the notification text, the
    /// SessionStart source, the SessionEnd reason.
    pub detail: Option<String>,
    /// The session's transcript: the account the event belongs to.
    pub transcript: Option<String>,
}

/// One live Claude Code session (the dashboard's activity panel, the snapshot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveSession {
    /// Claude Code's session id.
    pub session_id: String,
    /// The last component of the latest `cwd`, else the session id's first 8 characters.
    pub project: String,
    /// The latest working directory any event gave.
    pub cwd: Option<String>,
    /// What the session is doing at `now`.
    pub state: ActivityState,
    /// When the session entered `state`.
    pub since: Timestamp,
    /// `hook_event_name` of the latest event.
    pub last_event: String,
    /// When the latest event was received.
    pub last_event_at: Timestamp,
}

/// Why hook input on stdin is not an event.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The input is not valid JSON (or not of the expected field types).
    #[error("hook input is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A required field (`session_id`, `hook_event_name`) is missing or empty.
    #[error("hook input has no {0}")]
    Missing(&'static str),
    /// The input is JSON but not an object.
    #[error("hook input is not a JSON object")]
    NotObject,
}

#[derive(Deserialize)]
struct RawHook {
    session_id: Option<String>,
    hook_event_name: Option<String>,
    cwd: Option<String>,
    transcript_path: Option<String>,
    tool_name: Option<Value>,
    message: Option<Value>,
    source: Option<Value>,
    reason: Option<Value>,
}

/// Longest detail kept: a notification text, a tool name.
const DETAIL_MAX: usize = 200;

/// Reads one hook event from Claude Code's stdin, timed `now`.
pub fn parse_hook(input: &[u8], now: Timestamp) -> Result<ActivityEvent, HookError> {
    // A derived struct also reads a JSON array, field by position: a
    // fuzzer's `["id","Stop"]` was taken for an event.
    if input.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(HookError::NotObject);
    }
    let raw: RawHook = serde_json::from_slice(input)?;
    let session_id = raw
        .session_id
        .filter(|s| !s.is_empty())
        .ok_or(HookError::Missing("session_id"))?;
    let event = raw
        .hook_event_name
        .filter(|s| !s.is_empty())
        .ok_or(HookError::Missing("hook_event_name"))?;
    let detail = [raw.tool_name, raw.message, raw.source, raw.reason]
        .into_iter()
        .flatten()
        .find_map(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.chars().take(DETAIL_MAX).collect()),
            _ => None,
        });
    let project = raw.cwd.as_deref().and_then(project_of);
    Ok(ActivityEvent {
        ts: now,
        session_id,
        event,
        cwd: raw.cwd,
        project,
        detail,
        transcript: raw.transcript_path.filter(|p| !p.is_empty()),
    })
}

/// The project name shown for a working directory: its last component.
pub fn project_of(cwd: &str) -> Option<String> {
    let trimmed = cwd.trim_end_matches(['/', '\\']);
    let name = trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed);
    (!name.is_empty()).then(|| name.to_string())
}

/// Events after which the next move is the user's.
fn is_waiting(event: &str) -> bool {
    matches!(
        event,
        "Notification" | "Stop" | "SessionStart" | "PermissionRequest"
    )
}

/// The live sessions at `now` from their recorded events (any order, any
/// number of sessions), waiting ones first.
///
/// Rules, from each session's latest event:
/// - SessionEnd, or no event for 5 h: the session is gone;
/// - no event for 10 min: IDLE;
/// - Notification, Stop (or a fresh SessionStart): WAITING FOR YOU, since the
///   first of those events in a row;
/// - a prompt or tool event within 2 min, or a tool started and not finished
///   (a long build): ACTIVE, since the turn began;
/// - a prompt or tool event 2–10 min ago and no tool running: IDLE (an
///   interrupted turn sends no Stop).
pub fn live_sessions_from(events: &[ActivityEvent], now: Timestamp) -> Vec<LiveSession> {
    let mut by_session: std::collections::BTreeMap<&str, Vec<&ActivityEvent>> = Default::default();
    for e in events {
        by_session.entry(&e.session_id).or_default().push(e);
    }
    let mut out: Vec<LiveSession> = by_session
        .into_values()
        .filter_map(|mut evs| {
            evs.sort_by_key(|e| e.ts);
            session_state(&evs, now)
        })
        .collect();
    out.sort_by(|a, b| {
        (a.state, &a.project, &a.session_id).cmp(&(b.state, &b.project, &b.session_id))
    });
    out
}

fn session_state(evs: &[&ActivityEvent], now: Timestamp) -> Option<LiveSession> {
    let last = *evs.last()?;
    let age = now.duration_since(last.ts).max(SignedDuration::ZERO);
    if last.event == "SessionEnd" || age > GONE_AFTER {
        return None;
    }
    // The start of the trailing run of events of the same kind, with no
    // silence long enough to have made the session idle in between.
    let run_start = |waiting: bool| {
        let mut start = last.ts;
        for pair in evs.windows(2).rev() {
            let (prev, next) = (pair[0], pair[1]);
            if is_waiting(prev.event.as_str()) != waiting
                || next.ts.duration_since(prev.ts) >= IDLE_AFTER
                || prev.event == "SessionEnd"
            {
                break;
            }
            start = prev.ts;
        }
        start
    };
    let (state, since) = if age >= IDLE_AFTER {
        (ActivityState::Idle, last.ts)
    } else if is_waiting(&last.event) {
        (ActivityState::WaitingForYou, run_start(true))
    } else if age <= ACTIVE_WITHIN || last.event == "PreToolUse" {
        (ActivityState::Active, run_start(false))
    } else {
        (ActivityState::Idle, last.ts)
    };
    let project = evs
        .iter()
        .rev()
        .find_map(|e| e.project.clone())
        .unwrap_or_else(|| last.session_id.chars().take(8).collect());
    let cwd = evs.iter().rev().find_map(|e| e.cwd.clone());
    Some(LiveSession {
        session_id: last.session_id.clone(),
        project,
        cwd,
        state,
        since,
        last_event: last.event.clone(),
        last_event_at: last.ts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hm: &str) -> Timestamp {
        format!("2026-11-20T{hm}:00Z").parse().unwrap()
    }

    fn ev(session: &str, hm: &str, event: &str) -> ActivityEvent {
        ActivityEvent {
            ts: t(hm),
            session_id: session.into(),
            event: event.into(),
            cwd: Some(format!("/home/dev/{session}")),
            project: Some(session.into()),
            detail: None,
            transcript: None,
        }
    }

    fn state_at(events: &[ActivityEvent], hm: &str) -> Option<(ActivityState, Timestamp)> {
        let v = live_sessions_from(events, t(hm));
        assert!(v.len() <= 1);
        v.first().map(|s| (s.state, s.since))
    }

    #[test]
    fn a_turn_is_active_then_waits_then_idles_then_ends() {
        let mut evs = vec![
            ev("api", "10:00", "SessionStart"),
            ev("api", "10:01", "UserPromptSubmit"),
            ev("api", "10:02", "PreToolUse"),
        ];
        assert_eq!(
            state_at(&evs[..1], "10:00"),
            Some((ActivityState::WaitingForYou, t("10:00")))
        );
        // The turn began with the prompt.
        assert_eq!(
            state_at(&evs, "10:03"),
            Some((ActivityState::Active, t("10:01")))
        );
        // A tool still running after 2 minutes (a long build) stays active.
        assert_eq!(
            state_at(&evs, "10:09"),
            Some((ActivityState::Active, t("10:01")))
        );
        evs.push(ev("api", "10:09", "PostToolUse"));
        evs.push(ev("api", "10:10", "Stop"));
        evs.push(ev("api", "10:11", "Notification"));
        assert_eq!(
            state_at(&evs, "10:15"),
            Some((ActivityState::WaitingForYou, t("10:10")))
        );
        // Ten minutes without an event: idle, counted from the last event.
        assert_eq!(
            state_at(&evs, "10:21"),
            Some((ActivityState::Idle, t("10:11")))
        );
        // Five hours without an event: gone.
        assert_eq!(
            state_at(&evs, "15:11"),
            Some((ActivityState::Idle, t("10:11")))
        );
        assert_eq!(state_at(&evs, "15:12"), None);
        evs.push(ev("api", "10:30", "SessionEnd"));
        assert_eq!(state_at(&evs, "10:30"), None);
    }

    #[test]
    fn a_turn_without_events_for_two_minutes_and_no_tool_running_is_idle() {
        // Esc interrupts a turn without a Stop.
        let evs = vec![
            ev("web", "10:00", "UserPromptSubmit"),
            ev("web", "10:01", "PostToolUse"),
        ];
        assert_eq!(
            state_at(&evs, "10:03"),
            Some((ActivityState::Active, t("10:00")))
        );
        assert_eq!(
            state_at(&evs, "10:04"),
            Some((ActivityState::Idle, t("10:01")))
        );
    }

    #[test]
    fn a_new_prompt_after_a_long_pause_starts_a_new_turn() {
        let evs = vec![
            ev("api", "09:00", "UserPromptSubmit"),
            ev("api", "09:30", "PreToolUse"),
            ev("api", "09:31", "PostToolUse"),
        ];
        assert_eq!(
            state_at(&evs, "09:32"),
            Some((ActivityState::Active, t("09:30")))
        );
    }

    #[test]
    fn sessions_sort_waiting_first_and_events_may_come_unordered() {
        let evs = vec![
            ev("zeta", "10:00", "UserPromptSubmit"),
            ev("alpha", "09:00", "UserPromptSubmit"),
            ev("beta", "10:00", "Stop"),
            ev("beta", "09:59", "PostToolUse"),
            ev("gone", "10:00", "SessionEnd"),
        ];
        let v = live_sessions_from(&evs, t("10:01"));
        let got: Vec<(&str, ActivityState)> =
            v.iter().map(|s| (s.project.as_str(), s.state)).collect();
        assert_eq!(
            got,
            vec![
                ("beta", ActivityState::WaitingForYou),
                ("zeta", ActivityState::Active),
                ("alpha", ActivityState::Idle),
            ]
        );
        insta::assert_json_snapshot!(v[0], @r#"
        {
          "session_id": "beta",
          "project": "beta",
          "cwd": "/home/dev/beta",
          "state": "WAITING_FOR_YOU",
          "since": "2026-11-20T10:00:00Z",
          "last_event": "Stop",
          "last_event_at": "2026-11-20T10:00:00Z"
        }
        "#);
    }

    #[test]
    fn every_sample_hook_event_parses() {
        let now = t("10:00");
        let text = include_str!("../../../tests/fixtures/claude/hook-events.jsonl");
        let events: Vec<ActivityEvent> = text
            .lines()
            .map(|l| parse_hook(l.as_bytes(), now).unwrap())
            .collect();
        let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, EVENTS);
        assert!(events.iter().all(|e| e.project.as_deref() == Some("api")));
        assert_eq!(events[2].detail.as_deref(), Some("Bash"));
        assert_eq!(
            events[4].detail.as_deref(),
            Some("Claude needs your permission to use Bash")
        );
        assert_eq!(events[0].detail.as_deref(), Some("startup"));
    }

    #[test]
    fn bad_hook_input_is_an_error() {
        let now = t("10:00");
        assert!(parse_hook(b"", now).is_err());
        assert!(parse_hook(b"\xff\xfe", now).is_err());
        assert!(parse_hook(br#"{"session_id":"x"}"#, now).is_err());
        assert!(parse_hook(br#"{"hook_event_name":"Stop"}"#, now).is_err());
        assert!(parse_hook(br#"[1,2]"#, now).is_err());
        let e = parse_hook(
            br#"{"hook_event_name":"Stop","session_id":"s","cwd":7}"#,
            now,
        );
        assert!(e.is_err());
        let e = parse_hook(
            br#"{"hook_event_name":"Stop","session_id":"s","cwd":"/","message":5}"#,
            now,
        )
        .unwrap();
        assert_eq!((e.project, e.detail), (None, None));
    }

    #[test]
    fn project_is_the_last_path_component() {
        assert_eq!(project_of("/home/dev/code/api/").as_deref(), Some("api"));
        assert_eq!(project_of(r"C:\Users\dev\web").as_deref(), Some("web"));
        assert_eq!(project_of("/"), None);
    }
}
