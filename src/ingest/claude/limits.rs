//! Official limits: the `rate_limits` Claude Code hands its status
//! line — the account's own 5-hour and weekly usage, as `/usage` shows it.
//!
//! Pure: parsing and validating a capture, and judging its age against a
//! clock passed in. Storing and loading captures is in `store::claude`.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// After this long without a capture the official figures are marked stale.
pub const STALE_AFTER: SignedDuration = SignedDuration::from_mins(10);

/// Claude Code's `rate_limits` as captured by `csm statusline`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfficialLimits {
    /// The five-hour limit, when the payload had a valid one.
    pub five_hour: Option<OfficialBar>,
    /// The weekly (seven-day) limit, when the payload had a valid one.
    pub seven_day: Option<OfficialBar>,
    /// When `csm statusline` received the payload.
    pub captured_at: Timestamp,
}

/// One official limit: how much of it is used and when it resets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfficialBar {
    /// 0–100.
    pub used_percent: f64,
    /// When the limit resets, when Claude Code said.
    pub resets_at: Option<Timestamp>,
}

impl OfficialLimits {
    /// No capture for [`STALE_AFTER`]: the figures may have moved since.
    pub fn is_stale(&self, now: Timestamp) -> bool {
        is_stale(self.captured_at, now)
    }
}

/// Whether a capture taken at `captured_at` is stale at `now`.
pub fn is_stale(captured_at: Timestamp, now: Timestamp) -> bool {
    now.duration_since(captured_at) > STALE_AFTER
}

/// The latest capture as other parts show it (`csm status`, the snapshot,
/// alerts): the figures, their age and whether they are stale at `now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfficialStatus {
    /// The capture.
    #[serde(flatten)]
    pub limits: OfficialLimits,
    /// Seconds since the capture (0 if it is dated after `now`).
    pub age_seconds: i64,
    /// Whether the capture is older than [`STALE_AFTER`].
    pub stale: bool,
}

impl OfficialStatus {
    /// The status of `limits` as seen at `now`.
    pub fn at(limits: OfficialLimits, now: Timestamp) -> OfficialStatus {
        OfficialStatus {
            age_seconds: now.duration_since(limits.captured_at).as_secs().max(0),
            stale: limits.is_stale(now),
            limits,
        }
    }
}

/// Why a window of `rate_limits` was not taken.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejected {
    /// `used_percentage` is not a number from 0 to 100.
    #[error("{window}.used_percentage {value} is not a percentage (0-100)")]
    Percentage {
        /// `five_hour` or `seven_day`.
        window: &'static str,
        /// The value as JSON text.
        value: String,
    },
    /// The window has no `used_percentage`.
    #[error("{window}.used_percentage is missing")]
    MissingPercentage {
        /// `five_hour` or `seven_day`.
        window: &'static str,
    },
    /// `resets_at` is not a time, is before 2020 or is more than 31 days ahead.
    #[error("{window}.resets_at {value} is not a plausible reset time")]
    ResetsAt {
        /// `five_hour` or `seven_day`.
        window: &'static str,
        /// The value as JSON text.
        value: String,
    },
}

/// What one status-line payload's `rate_limits` gave: the windows that
/// passed validation and the reasons the others were dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    /// The five-hour window, when valid.
    pub five_hour: Option<OfficialBar>,
    /// The seven-day window, when valid.
    pub seven_day: Option<OfficialBar>,
    /// Why the other windows given were dropped.
    pub rejected: Vec<Rejected>,
}

impl Parsed {
    /// The capture to store, when at least one window is valid.
    pub fn capture(&self, now: Timestamp) -> Option<OfficialLimits> {
        (self.five_hour.is_some() || self.seven_day.is_some()).then(|| OfficialLimits {
            five_hour: self.five_hour.clone(),
            seven_day: self.seven_day.clone(),
            captured_at: now,
        })
    }
}

/// Reads `rate_limits` (the value of that key, if any). Windows with
/// impossible values are dropped: a percentage outside 0–100 (an epoch that
/// landed in the percentage field, a negative number), a reset time before
/// 2020 or more than 31 days after `now`. `resets_at` may be epoch seconds,
/// epoch milliseconds or an RFC 3339 string (versions differ).
pub fn parse_rate_limits(v: Option<&Value>, now: Timestamp) -> Parsed {
    let mut out = Parsed::default();
    let Some(Value::Object(m)) = v else {
        return out;
    };
    for (key, window) in [("five_hour", 0), ("seven_day", 1)] {
        let Some(w) = m.get(key).filter(|w| !w.is_null()) else {
            continue;
        };
        match parse_window(key, w, now) {
            Ok(bar) if window == 0 => out.five_hour = Some(bar),
            Ok(bar) => out.seven_day = Some(bar),
            Err(e) => out.rejected.push(e),
        }
    }
    out
}

fn parse_window(window: &'static str, w: &Value, now: Timestamp) -> Result<OfficialBar, Rejected> {
    let pct = match w.get("used_percentage") {
        None | Some(Value::Null) => return Err(Rejected::MissingPercentage { window }),
        Some(v) => {
            let n = number(v).filter(|n| n.is_finite() && (0.0..=100.0).contains(n));
            n.ok_or_else(|| Rejected::Percentage {
                window,
                value: v.to_string(),
            })?
        }
    };
    let resets_at = match w.get("resets_at") {
        None | Some(Value::Null) => None,
        Some(v) => Some(reset_time(v, now).ok_or_else(|| Rejected::ResetsAt {
            window,
            value: v.to_string(),
        })?),
    };
    Ok(OfficialBar {
        used_percent: pct,
        resets_at,
    })
}

/// A number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn reset_time(v: &Value, now: Timestamp) -> Option<Timestamp> {
    let t = match v {
        Value::String(s) if s.parse::<f64>().is_err() => s.trim().parse::<Timestamp>().ok()?,
        other => {
            let n = number(other)?;
            if !n.is_finite() {
                return None;
            }
            // Milliseconds from versions that send them: seconds would be
            // tens of thousands of years away.
            if n.abs() >= 1e12 {
                Timestamp::from_millisecond(n as i64).ok()?
            } else {
                Timestamp::from_second(n as i64).ok()?
            }
        }
    };
    let earliest = Timestamp::from_second(1_577_836_800).ok()?; // 2020-01-01
    let latest = now.checked_add(SignedDuration::from_hours(24 * 31)).ok()?;
    (t >= earliest && t <= latest).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-20T16:40:00Z".parse().unwrap()
    }

    #[test]
    fn documented_shape_is_taken() {
        let v = json!({
            "five_hour": {"used_percentage": 42, "resets_at": 1_763_665_200},
            "seven_day": {"used_percentage": 63.5, "resets_at": 1_764_000_000}
        });
        let p = parse_rate_limits(Some(&v), now());
        assert!(p.rejected.is_empty());
        let c = p.capture(now()).unwrap();
        assert_eq!(c.five_hour.as_ref().unwrap().used_percent, 42.0);
        assert_eq!(
            c.five_hour.unwrap().resets_at.unwrap(),
            Timestamp::from_second(1_763_665_200).unwrap()
        );
        assert_eq!(c.seven_day.unwrap().used_percent, 63.5);
        assert_eq!(c.captured_at, now());
    }

    #[test]
    fn iso_strings_and_milliseconds_are_read() {
        let v = json!({
            "five_hour": {"used_percentage": "12.5", "resets_at": "2026-11-20T19:00:00Z"},
            "seven_day": {"used_percentage": 1, "resets_at": 1_764_000_000_000i64}
        });
        let p = parse_rate_limits(Some(&v), now());
        assert_eq!(p.rejected, vec![]);
        assert_eq!(
            p.five_hour.unwrap().resets_at.unwrap(),
            "2026-11-20T19:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            p.seven_day.unwrap().resets_at.unwrap(),
            Timestamp::from_second(1_764_000_000).unwrap()
        );
    }

    #[test]
    fn impossible_values_are_rejected_naming_the_value() {
        let v = json!({
            "five_hour": {"used_percentage": 1_764_000_000, "resets_at": 1_763_665_200},
            "seven_day": {"used_percentage": -3}
        });
        let p = parse_rate_limits(Some(&v), now());
        assert!(p.capture(now()).is_none());
        assert_eq!(p.rejected.len(), 2);
        assert!(
            p.rejected[0].to_string().contains("1764000000"),
            "{:?}",
            p.rejected
        );
        assert!(p.rejected[1].to_string().contains("-3"));

        for bad in [json!(100.01), json!("lots"), json!(true), json!([1])] {
            let v = json!({"five_hour": {"used_percentage": bad}});
            assert!(
                parse_rate_limits(Some(&v), now()).five_hour.is_none(),
                "{v}"
            );
        }
        // Reset times before 2020 or over a month ahead are not believable.
        for bad in [
            json!(0),
            json!(4_102_444_800i64),
            json!("soon"),
            json!(1e300),
        ] {
            let v = json!({"five_hour": {"used_percentage": 5, "resets_at": bad}});
            let p = parse_rate_limits(Some(&v), now());
            assert!(p.five_hour.is_none(), "{v}");
            assert!(matches!(p.rejected[0], Rejected::ResetsAt { .. }));
        }
        // One bad window does not lose the other.
        let v = json!({
            "five_hour": {"used_percentage": 500},
            "seven_day": {"used_percentage": 7}
        });
        let c = parse_rate_limits(Some(&v), now()).capture(now()).unwrap();
        assert!(c.five_hour.is_none());
        assert_eq!(c.seven_day.unwrap().used_percent, 7.0);
    }

    #[test]
    fn missing_or_odd_rate_limits_give_nothing() {
        for v in [None, Some(json!(null)), Some(json!("x")), Some(json!({}))] {
            let p = parse_rate_limits(v.as_ref(), now());
            assert_eq!(p, Parsed::default());
        }
        let v = json!({"five_hour": {"resets_at": 1_763_665_200}});
        let p = parse_rate_limits(Some(&v), now());
        assert_eq!(
            p.rejected,
            vec![Rejected::MissingPercentage {
                window: "five_hour"
            }]
        );
    }

    #[test]
    fn stale_after_ten_minutes() {
        let c: Timestamp = "2026-11-20T16:30:00Z".parse().unwrap();
        assert!(!is_stale(c, c));
        assert!(!is_stale(c, "2026-11-20T16:40:00Z".parse().unwrap()));
        assert!(is_stale(c, "2026-11-20T16:40:01Z".parse().unwrap()));
        let limits = OfficialLimits {
            five_hour: None,
            seven_day: None,
            captured_at: c,
        };
        let s = OfficialStatus::at(limits, "2026-11-20T16:41:00Z".parse().unwrap());
        assert!(s.stale);
        assert_eq!(s.age_seconds, 660);
        insta::assert_json_snapshot!(s, @r#"
        {
          "five_hour": null,
          "seven_day": null,
          "captured_at": "2026-11-20T16:30:00Z",
          "age_seconds": 660,
          "stale": true
        }
        "#);
    }
}
