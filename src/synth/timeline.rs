//! When the synthetic user works: bursts of activity over `days` days.
//!
//! Times are Unix milliseconds. Files are placed on the "active time" axis
//! (the bursts laid end to end) and mapped back to wall time, so a session
//! that spans a break simply continues after it.

use super::rng::Rng;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    /// Non-overlapping `[start, end)` bursts in ascending order.
    pub(crate) bursts: Vec<(i64, i64)>,
    /// Active milliseconds before each burst.
    cum: Vec<i64>,
    /// Total active milliseconds.
    pub(crate) total: i64,
    /// Start of the final burst when the history ends in an active window.
    pub(crate) active_start: Option<i64>,
}

impl Timeline {
    /// Builds the bursts between `now - days` and `now`.
    ///
    /// Without `active`, nothing happens in the last 5.5 hours (no active
    /// 5-hour window at `now`). With `active`, nothing happens between
    /// `now - 7h` and a final burst that starts 60–110 minutes before `now`
    /// and ends 1–10 minutes before it, so the last window starts inside that
    /// burst and is still active at `now`.
    pub(crate) fn build(rng: &mut Rng, now: i64, days: u32, active: bool) -> Timeline {
        let days = i64::from(days.max(1));
        let begin = now - days * DAY;
        let cutoff = if active {
            now - 7 * HOUR
        } else {
            now - 5 * HOUR - 30 * MIN
        };
        // The user's UTC offset (whole hours), fixed per seed.
        let offset = *rng.pick(&[1i64, 2, 0, -5, -8, 9, 1, 2]) * HOUR;

        let mut bursts: Vec<(i64, i64)> = Vec::new();
        let first_day = (begin + offset).div_euclid(DAY) - 1;
        let last_day = (now + offset).div_euclid(DAY);
        for day in first_day..=last_day {
            let day_start = day * DAY - offset; // local midnight in UTC ms
            // 1970-01-01 was a Thursday: 0 = Sunday, 6 = Saturday.
            let dow = (day + 4).rem_euclid(7);
            let weekend = dow == 0 || dow == 6;
            let off = if weekend {
                rng.chance(0.6)
            } else {
                rng.chance(0.07)
            };
            let mut local: Vec<(i64, i64)> = Vec::new();
            if off {
                if weekend && rng.chance(0.35) {
                    let s = day_start + rng.range_i64(11 * HOUR, 16 * HOUR);
                    local.push((s, s + rng.range_i64(40 * MIN, 150 * MIN)));
                }
            } else {
                let mut t = day_start + rng.range_i64(7 * HOUR + 30 * MIN, 10 * HOUR + 30 * MIN);
                let n = rng.range(2, 4);
                let mut long_break_taken = false;
                for k in 0..n {
                    let dur = if rng.chance(0.6) {
                        rng.range_i64(80 * MIN, 170 * MIN)
                    } else {
                        rng.range_i64(55 * MIN, 240 * MIN)
                    };
                    local.push((t, t + dur));
                    t += dur;
                    if k + 1 < n {
                        if !long_break_taken && rng.chance(0.22) {
                            // Long break: the evening session gets a gap block.
                            t += rng.range_i64(5 * HOUR + 10 * MIN, 7 * HOUR);
                            long_break_taken = true;
                        } else {
                            t += rng.range_i64(15 * MIN, 100 * MIN);
                        }
                    }
                    if t > day_start + 23 * HOUR {
                        break;
                    }
                }
                let last_end = local.last().map_or(day_start, |b| b.1);
                if rng.chance(0.12) {
                    let s = day_start + rng.range_i64(22 * HOUR, 23 * HOUR + 30 * MIN);
                    if s > last_end + 20 * MIN {
                        local.push((s, s + rng.range_i64(50 * MIN, 150 * MIN)));
                    }
                }
            }
            for (s, e) in local {
                let s = s.max(begin);
                let e = e.min(cutoff);
                let prev_end = bursts.last().map_or(i64::MIN, |b| b.1);
                let s = s.max(prev_end + 10 * MIN);
                if e - s >= 5 * MIN {
                    bursts.push((s, e));
                }
            }
        }
        let mut active_start = None;
        if active {
            let s = now - rng.range_i64(60 * MIN, 110 * MIN);
            let e = now - rng.range_i64(MIN, 10 * MIN);
            bursts.push((s, e));
            active_start = Some(s);
        }
        if bursts.is_empty() {
            bursts.push((cutoff - 2 * HOUR, cutoff - HOUR));
        }
        let mut cum = Vec::with_capacity(bursts.len());
        let mut total = 0;
        for &(s, e) in &bursts {
            cum.push(total);
            total += e - s;
        }
        Timeline {
            bursts,
            cum,
            total,
            active_start,
        }
    }

    /// Wall time (ms) of a point on the active-time axis.
    pub(crate) fn wall(&self, a: i64) -> i64 {
        let a = a.clamp(0, self.total);
        let i = self.cum.partition_point(|&c| c <= a).saturating_sub(1);
        let (s, e) = self.bursts[i];
        (s + (a - self.cum[i])).min(e)
    }

    /// End (wall ms) of the burst that contains active-time position `a`.
    pub(crate) fn burst_end(&self, a: i64) -> i64 {
        let a = a.clamp(0, self.total);
        let i = self.cum.partition_point(|&c| c <= a).saturating_sub(1);
        self.bursts[i].1
    }

    /// Active-time position where the final burst starts.
    pub(crate) fn last_burst_start(&self) -> i64 {
        self.cum.last().copied().unwrap_or(0)
    }
}
