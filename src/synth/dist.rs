//! File-size distribution fitted to a real `~/.claude/projects` profile:
//! 1239 MiB over 3142 files, p50 105 kB, p90 654 kB, p99 5.4 MB, max 87 MB.
//!
//! Log-normal body (median 105 kB, σ fitted to p90) with a heavier
//! log-normal tail above p90 (fitted to p99), capped at 87 MB. Its mean
//! (≈ 411 kB) matches the profile's 413 kB, so `target / mean` files
//! reproduce both the total and the quantiles.

use super::rng::{Rng, exp, inv_norm_cdf, ln};

pub(crate) const P50: f64 = 105_000.0;
pub(crate) const P90: f64 = 654_000.0;
pub(crate) const P99: f64 = 5_400_000.0;
pub(crate) const MAX_FILE: f64 = 87_000_000.0;
pub(crate) const MIN_FILE: u64 = 700;

const Z90: f64 = 1.281_551_565_544_600_5;
const Z99: f64 = 2.326_347_874_040_840_8;

/// File size (bytes) at cumulative probability `p`.
pub(crate) fn size_quantile(p: f64) -> f64 {
    let z = inv_norm_cdf(p);
    let ln_p50 = ln(P50);
    let ln_p90 = ln(P90);
    let s_body = (ln_p90 - ln_p50) / Z90;
    let s_tail = (ln(P99) - ln_p90) / (Z99 - Z90);
    let v = if z <= Z90 {
        ln_p50 + s_body * z
    } else {
        ln_p90 + s_tail * (z - Z90)
    };
    exp(v).clamp(MIN_FILE as f64, MAX_FILE)
}

/// Mean file size of the distribution (numerical integration over strata).
pub(crate) fn mean_size() -> f64 {
    const N: usize = 20_000;
    let mut sum = 0.0;
    for i in 0..N {
        sum += size_quantile((i as f64 + 0.5) / N as f64);
    }
    sum / N as f64
}

/// Sum of the stratum midpoints of `n` files: the total of an ideal
/// `n`-file sample (the far tail beyond the top stratum is not represented,
/// so small samples need a few more files than `target / mean`).
fn stratified_total(n: usize) -> f64 {
    (0..n)
        .map(|i| size_quantile((i as f64 + 0.5) / n as f64))
        .sum()
}

/// Number of files for a target total size (at least `min_files`): the
/// smallest `n` whose ideal sample reaches the target, so the sizes need
/// almost no scaling and keep the profile's quantiles.
pub(crate) fn file_count(target_bytes: u64, min_files: usize) -> usize {
    let target = target_bytes as f64;
    let guess = ((target / mean_size()).round() as usize).max(1);
    if stratified_total(guess) >= target {
        let (mut lo, mut hi) = (0usize, guess);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if stratified_total(mid) >= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return hi.max(min_files);
    }
    let mut lo = guess;
    let mut hi = guess * 2;
    while stratified_total(hi) < target {
        lo = hi;
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if stratified_total(mid) >= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi.max(min_files)
}

/// `n` file sizes: the stratum midpoints of the distribution with a small
/// log-uniform jitter (±10 %), shuffled, then scaled so they sum to
/// `target_bytes` (the factor stays close to 1, see [`file_count`]).
pub(crate) fn sample_sizes(rng: &mut Rng, n: usize, target_bytes: u64) -> Vec<u64> {
    let mut raw: Vec<f64> = (0..n)
        .map(|i| size_quantile((i as f64 + 0.5) / n as f64) * exp((rng.f64() - 0.5) * 0.2))
        .collect();
    rng.shuffle(&mut raw);
    let sum: f64 = raw.iter().sum();
    let factor = if sum > 0.0 {
        target_bytes as f64 / sum
    } else {
        1.0
    };
    let floor = MIN_FILE.min(target_bytes.max(1));
    raw.iter()
        .map(|&s| ((s * factor).round() as u64).clamp(floor, MAX_FILE as u64))
        .collect()
}
