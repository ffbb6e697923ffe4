//! Number and time formatting shared by tables, the status line and the dashboard.

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `$1,234.57`; tiny non-zero amounts keep enough digits to be seen.
pub fn usd(x: f64) -> String {
    if x.abs() < 0.005 && x != 0.0 {
        return format!("${x:.4}");
    }
    let cents = (x.abs() * 100.0).round() as u64;
    let sign = if x < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}${}.{:02}", thousands(cents / 100), cents % 100)
}

/// How full a limit is, as every face colours it: ok below 50 %, warning
/// below 80 %, critical from 80 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Below 50 %.
    Ok,
    /// From 50 % to below 80 %.
    Warning,
    /// 80 % and above.
    Critical,
}

impl Level {
    /// The level of `percent` (0–100; values above 100 are critical).
    pub fn of(percent: f64) -> Level {
        if percent >= 80.0 {
            Level::Critical
        } else if percent >= 50.0 {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// Lower-case name: `ok`, `warning` or `critical` (e.g. the Waybar class).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// `2.0M`, `512.3K`, `950`: compact token counts for narrow places.
pub fn compact(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        // Bounds sit where one decimal would round up to the next unit.
        1_000..=999_949 => format!("{:.1}K", n as f64 / 1e3),
        999_950..=999_949_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}B", n as f64 / 1e9),
    }
}

/// `2h 14m`, `45m`, `3d 2h`.
/// `18:00`: a time of day in `tz`, to the nearest minute (a reset at
/// 18:59:58 reads "19:00").
pub fn hh_mm(t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    tz.to_datetime(nearest_minute(t))
        .strftime("%H:%M")
        .to_string()
}

/// `Mon 08:00`: a day and time in `tz`, to the nearest minute.
pub fn day_hh_mm(t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    tz.to_datetime(nearest_minute(t))
        .strftime("%a %H:%M")
        .to_string()
}

fn nearest_minute(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second((t.as_second() + 30).div_euclid(60) * 60).unwrap_or(t)
}

/// A duration in whole minutes as `45m`, `3h 5m` or `2d 4h`; negative counts as 0.
pub fn duration_minutes(minutes: i64) -> String {
    let m = minutes.max(0);
    match m {
        0..=59 => format!("{m}m"),
        60..=1439 => format!("{}h {}m", m / 60, m % 60),
        _ => format!("{}d {}h", m / 1440, (m % 1440) / 60),
    }
}

/// Model names without the `claude-` prefix and date suffix: `opus-4-5`.
pub fn short_model(name: &str) -> String {
    let n = name.strip_prefix("claude-").unwrap_or(name);
    let trimmed = match n.rsplit_once('-') {
        Some((head, tail)) if tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => n,
    };
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting_table() {
        let rows: Vec<String> = [
            0u64,
            7,
            999,
            1_000,
            12_345,
            999_999,
            1_000_000,
            2_017_000,
            1_234_567_890,
        ]
        .iter()
        .map(|&n| format!("{n} | {} | {}", thousands(n), compact(n)))
        .collect();
        insta::assert_snapshot!(rows.join("\n"));
    }

    #[test]
    fn money_and_durations() {
        let rows: Vec<String> = [
            0.0,
            0.001234,
            0.005,
            1.0,
            12.345,
            1234.5,
            1_234_567.891,
            -3.5,
        ]
        .iter()
        .map(|&x| format!("{x} | {}", usd(x)))
        .chain(
            [0i64, 5, 59, 60, 134, 1439, 1440, 4443, -3]
                .iter()
                .map(|&m| format!("{m} | {}", duration_minutes(m))),
        )
        .collect();
        insta::assert_snapshot!(rows.join("\n"));
    }

    #[test]
    fn model_names() {
        assert_eq!(short_model("claude-opus-4-5-20251101"), "opus-4-5");
        assert_eq!(short_model("claude-sonnet-4-6"), "sonnet-4-6");
        assert_eq!(
            short_model("claude-sonnet-4-5-20250929-fast"),
            "sonnet-4-5-20250929-fast"
        );
        assert_eq!(short_model("gpt-x"), "gpt-x");
    }
}
