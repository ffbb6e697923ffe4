//! Deterministic synthetic Claude Code history.
//!
//! [`generate`] writes a realistic `projects/` tree (sessions, subagent
//! transcripts, resumed sessions, sidechain replays, streamed messages, API
//! error lines and a small share of malformed lines) for tests, benchmarks,
//! `csm demo` and the ccusage conformance script. The same options always
//! produce a byte-identical tree, on every platform: the generator uses its
//! own PRNG and only basic floating-point operations.
//!
//! Layout: `projects/<encoded-cwd>/<session>.jsonl` and
//! `projects/<encoded-cwd>/<session>/subagents/agent-<id>.jsonl`. File sizes
//! follow a heavy-tailed profile measured on a real history (p50 105 kB,
//! p90 654 kB, p99 5.4 MB, max 87 MB); the total is within a few kB of
//! `target_bytes`. Every timestamp is before `now`; each file's mtime is
//! set to its last timestamp.

mod dist;
mod rng;
mod session;
mod text;
mod timeline;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use self::rng::{Rng, derive_seed, exp, ln};
use self::session::{Capture, Ctx, FileGen, MsgRecord};
use self::text::{Pool, hex_id, uuid};
use self::timeline::Timeline;

/// Options for [`generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// PRNG seed: the same options give a byte-identical tree.
    pub seed: u64,
    /// Approximate total size of the generated `*.jsonl` files.
    pub target_bytes: u64,
    /// Reference "now": every timestamp is before it.
    pub now: Timestamp,
    /// Days of history before `now`.
    pub days: u32,
    /// End the history inside a 5-hour window that is still active at `now`
    /// (last entries 1–110 minutes before `now`, after a gap of more than
    /// 5 hours). When false, nothing happens in the last 5.5 hours.
    pub active: bool,
    /// Include ~0.5 % malformed lines (truncated JSON, non-JSON text, blank
    /// lines, `null` in optional fields, wrong types).
    pub garbage: bool,
}

impl SynthOptions {
    /// Defaults: 30 days, active window, garbage on.
    pub fn new(seed: u64, target_bytes: u64, now: Timestamp) -> Self {
        SynthOptions {
            seed,
            target_bytes,
            now,
            days: 30,
            active: true,
            garbage: true,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// `*.jsonl` files written (sessions and subagent transcripts).
    pub files: usize,
    /// Of those, files under `<session>/subagents/`.
    pub subagent_files: usize,
    /// Project directories under `projects/`.
    pub projects: usize,
    /// Session files that start with lines copied from an earlier session.
    pub resumed_files: usize,
    /// Total bytes of all files.
    pub bytes: u64,
    /// Total lines (every file ends with a newline).
    pub lines: u64,
    /// Well-formed usage lines (valid JSON object, ISO `timestamp`, numeric
    /// `message.usage.input_tokens`/`output_tokens`, no `null` or wrongly
    /// typed field), including zero-usage `<synthetic>` lines, streamed
    /// chunks, copies and replays: the entries before de-duplication.
    pub usage_lines: u64,
    /// Deliberately malformed lines (only with `garbage`): truncated JSON,
    /// non-JSON text, blank lines, `null` in optional fields, wrong types,
    /// usage without `output_tokens`.
    pub malformed_lines: u64,
    /// Of `malformed_lines`, valid JSON usage lines that only have a `null`
    /// in an optional field (`model`, `requestId`, `cache_read_input_tokens`).
    pub null_field_lines: u64,
    /// Distinct real API messages: distinct `message.id` + `requestId` keys
    /// written fresh (not `<synthetic>`, not malformed, sidechain replays
    /// excluded). What de-duplication must keep.
    pub messages: u64,
    /// Sum of the total tokens (input + output + cache creation + cache read)
    /// of those messages, each counted once at its largest line. ccusage
    /// 20.0.24 reports exactly this total, and `messages` + `synthetic_lines`
    /// entries less the copies of `<synthetic>` lines that resumed sessions
    /// repeat without rewriting `sessionId` (ccusage collapses lines that
    /// share `message.id` and `sessionId` when `requestId` is missing).
    pub message_tokens: u64,
    /// Usage lines that repeat a message already written (earlier streaming
    /// chunks of the same message.id/requestId).
    pub streamed_extra_lines: u64,
    /// Lines copied verbatim (or with the new sessionId) into resumed sessions.
    pub copied_lines: u64,
    /// Sidechain lines replaying a parent message (same message.id and
    /// timestamp, new requestId, `isSidechain: true`).
    pub replayed_lines: u64,
    /// Usage lines with `isSidechain: true` (subagent transcripts, replays included).
    pub sidechain_usage_lines: u64,
    /// Lines with `isApiErrorMessage: true` (usage limit and other API errors).
    pub api_error_lines: u64,
    /// Of those, `Claude AI usage limit reached|<epoch>` lines.
    pub usage_limit_lines: u64,
    /// Usage lines with model `<synthetic>` (API errors included).
    pub synthetic_lines: u64,
    /// Earliest usage-line timestamp.
    pub first_timestamp: Option<Timestamp>,
    /// Latest usage-line timestamp (always before `now`).
    pub last_timestamp: Option<Timestamp>,
}

/// The fixed default reference time of the example CLI and `csm demo`
/// (2026-11-20T16:40:00Z), so runs are reproducible without `--now`.
pub fn default_now() -> Timestamp {
    Timestamp::from_second(1_795_192_800).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Parses a size such as `64MiB`, `1GiB`, `500MB`, `1.5GiB`, `4096` (bytes).
/// `k`/`KB`, `M`/`MB`, `G`/`GB` are decimal; `KiB`, `MiB`, `GiB` binary.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some((value * mult as f64).round() as u64)
}

/// A project: its working directory and git branches.
pub(crate) struct Project {
    pub(crate) cwd: &'static str,
    pub(crate) weight: u32,
    pub(crate) branches: &'static [&'static str],
}

const PROJECTS: &[Project] = &[
    Project {
        cwd: "/home/dev/code/api",
        weight: 24,
        branches: &["main", "feature/rate-limits", "fix/auth-timeout"],
    },
    Project {
        cwd: "/home/dev/code/claude-session-monitor",
        weight: 24,
        branches: &["main", "feat/daemon", "perf/ingest"],
    },
    Project {
        cwd: "/home/dev/code/web-frontend",
        weight: 17,
        branches: &["main", "redesign-2026"],
    },
    Project {
        cwd: "/home/dev/code/ml_pipeline",
        weight: 10,
        branches: &["main", "exp/tokenizer"],
    },
    Project {
        cwd: "/home/dev/code/infra.tf",
        weight: 9,
        branches: &["main"],
    },
    Project {
        cwd: "/home/dev/notes",
        weight: 6,
        branches: &[""],
    },
    Project {
        cwd: "/tmp/scratch",
        weight: 5,
        branches: &[""],
    },
    Project {
        cwd: "/home/dev/.dotfiles",
        weight: 5,
        branches: &["master"],
    },
];

/// Claude Code's project directory name: every non-alphanumeric
/// character of the cwd becomes `-` (`/home/dev/.x` → `-home-dev--x`).
pub(crate) fn encode_cwd(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Models with their weights in the mix.
pub(crate) const MODELS: &[(&str, u32)] = &[
    ("claude-opus-4-7", 26),
    ("claude-sonnet-4-6", 20),
    ("claude-opus-5", 14),
    ("claude-haiku-4-5-20251001", 12),
    ("claude-sonnet-5", 10),
    ("claude-opus-4-5-20251101", 10),
    ("claude-sonnet-4-5-20250929", 8),
];

pub(crate) fn pick_model(rng: &mut Rng) -> &'static str {
    let weights: Vec<u32> = MODELS.iter().map(|m| m.1).collect();
    MODELS[rng.weighted(&weights)].0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Sub { parent: usize },
}

/// Everything decided about one file before it is written.
#[derive(Debug, Clone)]
pub(crate) struct FilePlan {
    pub(crate) kind: Kind,
    pub(crate) project: usize,
    pub(crate) session: [u8; 36],
    pub(crate) agent_id: String,
    pub(crate) rel_path: PathBuf,
    pub(crate) target: u64,
    /// Active-time interval (ms on the timeline's active axis).
    pub(crate) a0: i64,
    pub(crate) a1: i64,
    pub(crate) seed: u64,
    pub(crate) resume_of: Option<usize>,
    pub(crate) resume_rewrites_session: bool,
    pub(crate) replay: bool,
    pub(crate) capture_lines: bool,
    pub(crate) capture_records: bool,
    pub(crate) model: &'static str,
    pub(crate) fast: bool,
    pub(crate) cost_usd: bool,
    pub(crate) cache_obj: bool,
    pub(crate) one_hour: bool,
    pub(crate) branch: &'static str,
    pub(crate) version: String,
    pub(crate) end_with_limit: bool,
    pub(crate) designated_active: bool,
}

const MIN: i64 = 60_000;
const SUB_SHARE: f64 = 0.33;

fn plan_files(rng: &mut Rng, sizes: &[u64], tl: &Timeline, opts: &SynthOptions) -> Vec<FilePlan> {
    let n = sizes.len();
    let total = tl.total.max(MIN);
    let begin = tl.bursts.first().map_or(0, |b| b.0);
    let span = (tl.bursts.last().map_or(1, |b| b.1) - begin).max(1);
    let project_weights: Vec<u32> = PROJECTS.iter().map(|p| p.weight).collect();
    let mut plans: Vec<FilePlan> = Vec::with_capacity(n);
    let mut mains: Vec<usize> = Vec::new();

    for (i, &size) in sizes.iter().enumerate() {
        let is_main = mains.is_empty() || !rng.chance(SUB_SHARE);
        let seed = derive_seed(opts.seed, 1000 + i as u64);
        if is_main {
            let project = rng.weighted(&project_weights);
            let session = uuid(rng);
            let model = pick_model(rng);
            let fast = model.contains("opus") && rng.chance(0.08);
            let p = &PROJECTS[project];
            // Longer sessions for bigger files, with a wide jitter.
            let scale = exp(0.35 * ln(size as f64 / 105_000.0) + 0.6 * (rng.f64() - 0.5) * 2.0);
            let d = ((25.0 * MIN as f64 * scale) as i64)
                .clamp(4 * MIN, 5 * 60 * MIN)
                .min(total);
            let a0 = rng.range_i64(0, total - d);
            let rel_path = PathBuf::from("projects")
                .join(encode_cwd(p.cwd))
                .join(format!("{}.jsonl", as_str(&session)));
            plans.push(FilePlan {
                kind: Kind::Main,
                project,
                session,
                agent_id: String::new(),
                rel_path,
                target: size,
                a0,
                a1: a0 + d,
                seed,
                resume_of: None,
                resume_rewrites_session: rng.chance(0.5),
                replay: false,
                capture_lines: false,
                capture_records: false,
                model,
                fast,
                cost_usd: rng.chance(0.05),
                cache_obj: rng.chance(0.8),
                one_hour: rng.chance(0.15),
                branch: rng.pick_str(p.branches),
                version: String::new(),
                end_with_limit: rng.chance(0.04),
                designated_active: false,
            });
            mains.push(i);
        } else {
            let recent = &mains[mains.len().saturating_sub(6)..];
            let parent = *rng.pick(recent);
            let pp = &plans[parent];
            let model = match rng.weighted(&[50, 25, 25]) {
                0 => "claude-haiku-4-5-20251001",
                1 => "claude-sonnet-4-6",
                _ => pp.model,
            };
            let agent_id = hex_id(rng, 8);
            let rel_path = pp
                .rel_path
                .with_extension("")
                .join("subagents")
                .join(format!("agent-{agent_id}.jsonl"));
            plans.push(FilePlan {
                kind: Kind::Sub { parent },
                project: pp.project,
                session: pp.session,
                agent_id,
                rel_path,
                target: size,
                a0: 0,
                a1: 0,
                seed,
                resume_of: None,
                resume_rewrites_session: false,
                replay: false,
                capture_lines: false,
                capture_records: false,
                model,
                fast: pp.fast && model == pp.model,
                cost_usd: pp.cost_usd,
                cache_obj: pp.cache_obj,
                one_hour: pp.one_hour,
                branch: pp.branch,
                version: String::new(),
                end_with_limit: false,
                designated_active: false,
            });
        }
    }

    // The history ends inside an active window: one session (a big one when
    // possible) runs in the final burst up to its end.
    if tl.active_start.is_some() {
        let pick = mains
            .iter()
            .rev()
            .copied()
            .find(|&i| plans[i].target >= 20_000)
            .or_else(|| mains.last().copied());
        if let Some(i) = pick {
            let burst = (tl.total - tl.last_burst_start()).max(MIN);
            let d = (plans[i].a1 - plans[i].a0).clamp(MIN, burst);
            plans[i].a0 = tl.total - d;
            plans[i].a1 = tl.total;
            plans[i].designated_active = true;
            plans[i].end_with_limit = false;
        }
    }

    // Resumed sessions: a later session of the same project that starts with
    // a copy of an earlier one.
    let mut by_start = mains.clone();
    by_start.sort_by_key(|&i| (plans[i].a0, i));
    for (k, &i) in by_start.iter().enumerate() {
        if plans[i].designated_active || !rng.chance(0.1) {
            continue;
        }
        let src = by_start[..k]
            .iter()
            .copied()
            .filter(|&j| {
                plans[j].project == plans[i].project
                    && plans[j].resume_of.is_none()
                    && plans[j].a1 < plans[i].a0
            })
            .max_by_key(|&j| (plans[j].a1, j));
        if let Some(j) = src {
            plans[i].resume_of = Some(j);
            plans[j].capture_lines = true;
        }
    }

    // Subagents run inside their parent's interval; some replay parent messages.
    for i in 0..n {
        if let Kind::Sub { parent } = plans[i].kind {
            let (pa0, pa1) = (plans[parent].a0, plans[parent].a1);
            let pd = (pa1 - pa0).max(MIN);
            let d = rng.range_i64(MIN, 20 * MIN).min(pd);
            let a0 = pa0 + rng.range_i64(0, pd - d);
            plans[i].a0 = a0;
            plans[i].a1 = a0 + d;
            if plans[parent].resume_of.is_none() && rng.chance(0.3) {
                plans[i].replay = true;
                plans[parent].capture_records = true;
            }
        }
    }

    // Claude Code version drifts over the month: 2.1.2 … 2.1.40.
    for p in &mut plans {
        let t = tl.wall(p.a0) - begin;
        let minor = 2 + (t as i128 * 38 / span as i128) as i64;
        p.version = format!("2.1.{minor}");
    }
    plans
}

pub(crate) fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// Writes a synthetic history under `claude_dir/projects/` (created if
/// missing; existing files with the same names are overwritten).
pub fn generate(claude_dir: &Path, opts: &SynthOptions) -> std::io::Result<SynthSummary> {
    let now_ms = opts.now.as_millisecond();
    let mut rng = Rng::new(derive_seed(opts.seed, 0));
    let pool = Pool::new(&mut Rng::new(derive_seed(opts.seed, 1)));
    let timeline = Timeline::build(
        &mut Rng::new(derive_seed(opts.seed, 2)),
        now_ms,
        opts.days,
        opts.active,
    );
    let n = dist::file_count(opts.target_bytes, 3);
    let sizes = dist::sample_sizes(&mut rng, n, opts.target_bytes);
    let plans = plan_files(&mut rng, &sizes, &timeline, opts);

    std::fs::create_dir_all(claude_dir.join("projects"))?;
    let ctx = Ctx {
        pool: &pool,
        timeline: &timeline,
        now_ms,
        garbage: opts.garbage,
        projects: PROJECTS,
    };

    // Each session right before its subagents and the sessions resumed from
    // it, so captured lines and parent messages are freed group by group.
    let mut subs_of: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut resumers_of: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in plans.iter().enumerate() {
        match (p.kind, p.resume_of) {
            (Kind::Sub { parent }, _) => subs_of[parent].push(i),
            (Kind::Main, Some(src)) => resumers_of[src].push(i),
            (Kind::Main, None) => {}
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if p.kind == Kind::Main && p.resume_of.is_none() {
            let mut g = vec![i];
            g.extend(&subs_of[i]);
            for &r in &resumers_of[i] {
                g.push(r);
                g.extend(&subs_of[r]);
            }
            groups.push(g);
        }
    }

    let mut captures: Vec<Option<Capture>> = vec![None; n];
    let mut records: Vec<Option<Vec<MsgRecord>>> = vec![None; n];
    let mut summary = SynthSummary::default();
    let mut debt: i64 = 0;
    let mut projects_used = std::collections::BTreeSet::new();
    for group in &groups {
        for &i in group {
            let plan = &plans[i];
            // Carry the running size error into the next file's target.
            let target = (plan.target as i64 - debt).max(dist::MIN_FILE as i64 / 2) as u64;
            let path = claude_dir.join(&plan.rel_path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let source = plan.resume_of.and_then(|j| captures[j].as_ref());
            let parent_records = match plan.kind {
                Kind::Sub { parent } if plan.replay => records[parent].as_deref(),
                _ => None,
            };
            let source_session = plan.resume_of.map(|j| plans[j].session);
            let file_gen = FileGen::new(&ctx, plan, target, &path)?;
            let out = file_gen.run(source, source_session, parent_records, &mut summary)?;
            debt += out.written as i64 - plan.target as i64;
            if plan.capture_lines {
                captures[i] = out.capture;
            }
            if plan.capture_records {
                records[i] = out.records;
            }
            summary.files += 1;
            if plan.kind != Kind::Main {
                summary.subagent_files += 1;
            }
            if plan.resume_of.is_some() {
                summary.resumed_files += 1;
            }
            projects_used.insert(plan.project);
        }
        for &i in group {
            captures[i] = None;
            records[i] = None;
        }
    }
    summary.projects = projects_used.len();
    settle_dir_times(&claude_dir.join("projects"))?;
    Ok(summary)
}

/// Gives every directory the time of its newest entry, as a real history
/// has (a session's directory stops changing when the session ends), so
/// tools that skip quiet directories see a realistic tree. Returns that time.
fn settle_dir_times(dir: &Path) -> std::io::Result<Option<std::time::SystemTime>> {
    let mut newest: Option<std::time::SystemTime> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let t = if ft.is_dir() {
            settle_dir_times(&entry.path())?
        } else {
            entry.metadata()?.modified().ok()
        };
        newest = newest.max(t);
    }
    if let Some(t) = newest {
        std::fs::File::open(dir)?.set_modified(t)?;
    }
    Ok(newest)
}
