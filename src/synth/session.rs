//! Writes one transcript file: turns of user prompts, streamed assistant
//! messages, tool results, system/summary lines, API errors and garbage.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::rng::Rng;
use super::text::{
    Pool, b62_id, escape_into, ident, noise_line, prompt, push_iso, push_u64, summary_title,
    tool_name, uuid,
};
use super::timeline::Timeline;
use super::{FilePlan, Kind, Project, SynthSummary, pick_model};

/// Shared, read-only generation context.
pub(crate) struct Ctx<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) timeline: &'a Timeline,
    pub(crate) now_ms: i64,
    pub(crate) garbage: bool,
    pub(crate) projects: &'a [Project],
}

/// Token counts of one assistant line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    input: u64,
    cache_create: u64,
    cache_read: u64,
    c5m: u64,
    c1h: u64,
    output: u64,
    cc_obj: bool,
    fast: bool,
}

impl Usage {
    fn total(&self) -> u64 {
        self.input + self.cache_create + self.cache_read + self.output
    }
}

/// A parent message kept for sidechain replays.
#[derive(Debug, Clone)]
pub(crate) struct MsgRecord {
    id: [u8; 28],
    ts: i64,
    model: &'static str,
    usage: Usage,
}

/// How a written line counts in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Other,
    Usage {
        ts: i64,
        sidechain: bool,
        synthetic: bool,
        api_error: bool,
        limit: bool,
    },
    Malformed {
        null: bool,
    },
}

impl Class {
    fn usage(ts: i64, sidechain: bool) -> Class {
        Class::Usage {
            ts,
            sidechain,
            synthetic: false,
            api_error: false,
            limit: false,
        }
    }
}

/// A line kept so that a resumed session can copy it.
#[derive(Debug, Clone)]
pub(crate) struct CapturedLine {
    bytes: Vec<u8>,
    class: Class,
    uuid: Option<[u8; 36]>,
}

pub(crate) type Capture = Vec<CapturedLine>;

const CAPTURE_MAX_LINES: usize = 80;
const CAPTURE_MAX_BYTES: usize = 512 * 1024;
/// Chance of a garbage line at each insertion point (about 0.5 % of lines).
const GARBAGE_P: f64 = 0.0066;
/// Context size that triggers a compaction.
const COMPACT_AT: u64 = 150_000;

/// Result of writing one file.
pub(crate) struct FileOutput {
    pub(crate) written: u64,
    pub(crate) capture: Option<Capture>,
    pub(crate) records: Option<Vec<MsgRecord>>,
}

#[derive(Debug, Clone, Copy)]
enum Block {
    Thinking,
    Text,
    ToolUse { id: [u8; 30], name: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mangle {
    None,
    ModelNull,
    RequestIdNull,
    CacheReadNull,
    InputString,
    TimestampNumber,
    OutputMissing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synthetic {
    UsageLimit,
    Overloaded,
    PromptTooLong,
    NoResponse,
}

/// One assistant line to render.
struct Asst<'b> {
    msg_id: &'b [u8],
    req: &'b [u8],
    model: &'b str,
    block: Block,
    usage: Usage,
    stop: Option<&'b str>,
    ts: i64,
    uuid: [u8; 36],
    mangle: Mangle,
}

pub(crate) struct FileGen<'a> {
    ctx: &'a Ctx<'a>,
    plan: &'a FilePlan,
    rng: Rng,
    out: BufWriter<File>,
    line: Vec<u8>,
    target: u64,
    written: u64,
    full: bool,
    prev_uuid: Option<[u8; 36]>,
    last_ts: i64,
    wall_end: i64,
    max_ts: i64,
    context: u64,
    first_msg: bool,
    cwd: String,
    sidechain: bool,
    capture: Option<Capture>,
    capture_bytes: usize,
    capture_open: bool,
    records: Option<Vec<MsgRecord>>,
    sum: SynthSummary,
    first_ms: i64,
    last_ms: i64,
}

impl<'a> FileGen<'a> {
    pub(crate) fn new(
        ctx: &'a Ctx<'a>,
        plan: &'a FilePlan,
        target: u64,
        path: &Path,
    ) -> std::io::Result<Self> {
        let file = File::create(path)?;
        let mut rng = Rng::new(plan.seed);
        let tl = ctx.timeline;
        let start = tl.wall(plan.a0);
        let wall_end = tl.wall(plan.a1).min(ctx.now_ms - 1000).max(start);
        let root = ctx.projects[plan.project].cwd;
        let cwd = if rng.chance(0.1) {
            format!("{root}/src")
        } else {
            root.to_string()
        };
        let context = rng.range(10_000, 20_000);
        Ok(FileGen {
            ctx,
            plan,
            rng,
            out: BufWriter::with_capacity(1 << 20, file),
            line: Vec::with_capacity(64 * 1024),
            target: target.max(1),
            written: 0,
            full: false,
            prev_uuid: None,
            last_ts: start,
            wall_end,
            max_ts: start,
            context,
            first_msg: true,
            cwd,
            sidechain: plan.kind != Kind::Main,
            capture: plan.capture_lines.then(Vec::new),
            capture_bytes: 0,
            capture_open: plan.capture_lines,
            records: plan.capture_records.then(Vec::new),
            sum: SynthSummary::default(),
            first_ms: i64::MAX,
            last_ms: i64::MIN,
        })
    }

    /// Writes the whole file and adds its counts to `summary`.
    pub(crate) fn run(
        mut self,
        source: Option<&Capture>,
        source_session: Option<[u8; 36]>,
        parent_records: Option<&[MsgRecord]>,
        summary: &mut SynthSummary,
    ) -> std::io::Result<FileOutput> {
        if self.plan.kind == Kind::Main && self.plan.resume_of.is_none() && self.rng.chance(0.12) {
            let n = self.rng.range(1, 2);
            for _ in 0..n {
                self.summary_line()?;
            }
        }
        if let Some(src) = source {
            self.copy_resumed(src, source_session)?;
        }
        if let Some(recs) = parent_records {
            self.replay(recs)?;
        }
        if self.sidechain {
            self.user_prompt(true)?;
        }
        let mut turns = 0u64;
        while !self.full {
            self.turn(turns)?;
            turns += 1;
        }
        if self.plan.end_with_limit {
            self.synthetic(Synthetic::UsageLimit, true)?;
        }
        self.finish(summary)
    }

    fn finish(mut self, summary: &mut SynthSummary) -> std::io::Result<FileOutput> {
        self.out.flush()?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_millis(self.max_ts.max(0) as u64);
        file.set_modified(mtime)?;
        self.sum.bytes = self.written;
        merge(summary, &self.sum, self.first_ms, self.last_ms);
        Ok(FileOutput {
            written: self.written,
            capture: self.capture,
            records: self.records,
        })
    }

    // ----- output -------------------------------------------------------

    /// Writes `self.line` (which ends with '\n') unless the file is full.
    fn emit(&mut self, class: Class, uuid: Option<[u8; 36]>, force: bool) -> std::io::Result<bool> {
        let len = self.line.len() as u64;
        if !force
            && (self.full
                || (self.written > 0
                    && (self.written >= self.target || self.written + len > self.target + len / 2)))
        {
            self.full = true;
            return Ok(false);
        }
        self.out.write_all(&self.line)?;
        self.written += len;
        self.count(class);
        if self.capture_open {
            if self.capture_bytes + self.line.len() <= CAPTURE_MAX_BYTES
                && self.capture.as_ref().map_or(0, Vec::len) < CAPTURE_MAX_LINES
            {
                self.capture_bytes += self.line.len();
                if let Some(c) = self.capture.as_mut() {
                    c.push(CapturedLine {
                        bytes: self.line.clone(),
                        class,
                        uuid,
                    });
                }
            } else {
                self.capture_open = false;
            }
        }
        if uuid.is_some() {
            self.prev_uuid = uuid;
        }
        Ok(true)
    }

    fn count(&mut self, class: Class) {
        let s = &mut self.sum;
        s.lines += 1;
        match class {
            Class::Other => {}
            Class::Malformed { null } => {
                s.malformed_lines += 1;
                if null {
                    s.null_field_lines += 1;
                }
            }
            Class::Usage {
                ts,
                sidechain,
                synthetic,
                api_error,
                limit,
            } => {
                s.usage_lines += 1;
                s.sidechain_usage_lines += u64::from(sidechain);
                s.synthetic_lines += u64::from(synthetic);
                s.api_error_lines += u64::from(api_error);
                s.usage_limit_lines += u64::from(limit);
                self.first_ms = self.first_ms.min(ts);
                self.last_ms = self.last_ms.max(ts);
                self.max_ts = self.max_ts.max(ts);
            }
        }
    }

    /// Next timestamp: follows the share of the file already written along
    /// the file's active interval, strictly inside it and before `now`.
    fn next_ts(&mut self, lo: i64, hi: i64) -> i64 {
        let frac = (self.written as f64 / self.target as f64).min(1.0);
        let (a0, a1) = (self.plan.a0, self.plan.a1);
        let a = a0 + ((a1 - a0) as f64 * frac) as i64;
        let w = self.ctx.timeline.wall(a);
        // Never run past the end of the current burst (keeps breaks empty).
        let limit = self.wall_end.min(self.ctx.timeline.burst_end(a));
        let step = self.rng.range_i64(lo, hi);
        let t = w.max(self.last_ts + step).min(limit).max(self.last_ts);
        self.last_ts = t;
        self.max_ts = self.max_ts.max(t);
        t
    }

    // ----- line pieces --------------------------------------------------

    fn push(&mut self, s: &str) {
        self.line.extend_from_slice(s.as_bytes());
    }

    fn push_quoted(&mut self, s: &[u8]) {
        self.line.push(b'"');
        self.line.extend_from_slice(s);
        self.line.push(b'"');
    }

    fn push_text(&mut self, len: usize) {
        self.ctx.pool.text(&mut self.rng, &mut self.line, len);
    }

    /// `{"parentUuid":…,"isSidechain":…,…,"gitBranch":"…"` (no closing brace).
    fn header(&mut self) {
        self.line.clear();
        self.push("{\"parentUuid\":");
        match self.prev_uuid {
            Some(u) => self.push_quoted(&u),
            None => self.push("null"),
        }
        self.push(if self.sidechain {
            ",\"isSidechain\":true"
        } else {
            ",\"isSidechain\":false"
        });
        self.push(",\"userType\":\"external\",\"cwd\":\"");
        self.line.extend_from_slice(self.cwd.as_bytes());
        self.push("\",\"sessionId\":\"");
        self.line.extend_from_slice(&self.plan.session);
        self.push("\",\"version\":\"");
        self.line.extend_from_slice(self.plan.version.as_bytes());
        self.push("\",\"gitBranch\":\"");
        self.line.extend_from_slice(self.plan.branch.as_bytes());
        self.push("\"");
        if self.sidechain {
            self.push(",\"agentId\":\"");
            self.line.extend_from_slice(self.plan.agent_id.as_bytes());
            self.push("\"");
        }
    }

    fn push_ts(&mut self, ts: i64) {
        self.push(",\"timestamp\":\"");
        push_iso(&mut self.line, ts);
        self.push("\"");
    }

    fn push_uuid_ts(&mut self, id: &[u8; 36], ts: i64) {
        self.push(",\"uuid\":");
        self.push_quoted(id);
        self.push_ts(ts);
    }

    // ----- line kinds ---------------------------------------------------

    fn summary_line(&mut self) -> std::io::Result<bool> {
        self.line.clear();
        self.push("{\"type\":\"summary\",\"summary\":\"");
        let title = summary_title(&mut self.rng);
        escape_into(&mut self.line, title);
        self.push("\",\"leafUuid\":");
        let leaf = uuid(&mut self.rng);
        self.push_quoted(&leaf);
        self.push("}\n");
        self.emit(Class::Other, None, false)
    }

    fn snapshot_line(&mut self) -> std::io::Result<bool> {
        let id = uuid(&mut self.rng);
        let ts = self.next_ts(10, 200);
        self.line.clear();
        self.push("{\"type\":\"file-history-snapshot\",\"messageId\":");
        self.push_quoted(&id);
        self.push(",\"snapshot\":{\"messageId\":");
        self.push_quoted(&id);
        self.push(",\"trackedFileBackups\":{");
        if self.rng.chance(0.5) {
            self.push("\"src/");
            let f = ident(&mut self.rng);
            self.push(f);
            self.push(".rs\":{\"backupFileName\":\"");
            let h = b62_id::<16>(&mut self.rng, b"");
            self.line.extend_from_slice(&h);
            self.push("@v2\",\"version\":2,\"backupTime\":\"");
            push_iso(&mut self.line, ts);
            self.push("\"}");
        }
        self.push("}");
        self.push_ts(ts);
        self.push("},\"isSnapshotUpdate\":false}\n");
        self.emit(Class::Other, None, false)
    }

    fn system_line(&mut self, compact: bool) -> std::io::Result<bool> {
        let ts = self.next_ts(100, 3000);
        let id = uuid(&mut self.rng);
        self.header();
        self.push(",\"type\":\"system\"");
        if compact {
            self.push(",\"subtype\":\"compact_boundary\",\"content\":\"Conversation compacted\",\"isMeta\":false");
        } else {
            self.push(
                ",\"subtype\":\"informational\",\"content\":\"Context left until auto-compact: ",
            );
            let pct = self.rng.range(3, 15);
            push_u64(&mut self.line, pct);
            self.push("%\",\"isMeta\":false");
        }
        self.push_ts(ts);
        self.push(",\"uuid\":");
        self.push_quoted(&id);
        if compact {
            self.push(
                ",\"level\":\"info\",\"compactMetadata\":{\"trigger\":\"auto\",\"preTokens\":",
            );
            push_u64(&mut self.line, self.context);
            self.push("}}\n");
        } else {
            self.push(",\"level\":\"warning\"}\n");
        }
        self.emit(Class::Other, Some(id), false)
    }

    fn user_prompt(&mut self, long: bool) -> std::io::Result<bool> {
        let ts = self.next_ts(20_000, 240_000);
        let id = uuid(&mut self.rng);
        self.header();
        self.push(",\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"");
        if long || self.rng.chance(0.2) {
            let n = self.rng.log_uniform(200, 6000) as usize;
            let p = prompt(&mut self.rng);
            escape_into(&mut self.line, p);
            self.push("\\n\\n");
            self.push_text(n);
        } else {
            let p = prompt(&mut self.rng);
            escape_into(&mut self.line, p);
        }
        self.push("\"}");
        self.push_uuid_ts(&id, ts);
        if !self.sidechain && self.rng.chance(0.3) {
            self.push(
                ",\"thinkingMetadata\":{\"level\":\"high\",\"disabled\":false,\"triggers\":[]}",
            );
        }
        self.push("}\n");
        self.emit(Class::Other, Some(id), false)
    }

    fn interrupted(&mut self) -> std::io::Result<bool> {
        let ts = self.next_ts(500, 5000);
        let id = uuid(&mut self.rng);
        self.header();
        self.push(",\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"[Request interrupted by user]\"}]}");
        self.push_uuid_ts(&id, ts);
        self.push("}\n");
        self.emit(Class::Other, Some(id), false)
    }

    fn tool_result(&mut self, tool_id: &[u8], name: &'static str) -> std::io::Result<bool> {
        let remaining = self.target.saturating_sub(self.written);
        let r = self.rng.f64();
        let size = if r < 0.87 {
            self.rng.log_uniform(60, 4_000)
        } else if r < 0.99 {
            self.rng.log_uniform(4_000, 50_000)
        } else if self.rng.chance(0.1) {
            self.rng.log_uniform(4_000_000, 12_000_000)
        } else {
            self.rng.log_uniform(50_000, 4_000_000)
        };
        let size = size.min(remaining.saturating_sub(700).max(60)) as usize;
        let image = size >= 50_000 && self.rng.chance(0.25);
        let is_error = !image && self.rng.chance(0.03);
        let ts = self.next_ts(300, 20_000);
        let id = uuid(&mut self.rng);
        self.header();
        self.push(
            ",\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"tool_use_id\":",
        );
        self.push_quoted(tool_id);
        self.push(",\"type\":\"tool_result\",\"content\":");
        if image {
            self.push("[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo");
            self.ctx.pool.base64(&mut self.rng, &mut self.line, size);
            self.push("\"}}]");
        } else {
            self.push("\"");
            self.push_text(size);
            self.push("\"");
        }
        self.push(if is_error {
            ",\"is_error\":true}]}"
        } else {
            ",\"is_error\":false}]}"
        });
        self.push_uuid_ts(&id, ts);
        match name {
            "Bash" => self.push(
                ",\"toolUseResult\":{\"stdout\":\"\",\"stderr\":\"\",\"interrupted\":false,\"isImage\":false}",
            ),
            "Read" => {
                self.push(",\"toolUseResult\":{\"type\":\"text\",\"file\":{\"filePath\":\"");
                self.line.extend_from_slice(self.cwd.as_bytes());
                self.push("/src/");
                let f = ident(&mut self.rng);
                self.push(f);
                self.push(".rs\",\"numLines\":");
                let n = self.rng.range(10, 2000);
                push_u64(&mut self.line, n);
                self.push(",\"startLine\":1,\"totalLines\":");
                push_u64(&mut self.line, n);
                self.push("}}");
            }
            _ => {}
        }
        self.push("}\n");
        self.emit(Class::Other, Some(id), false)
    }

    fn new_usage(&mut self) -> Usage {
        let rng = &mut self.rng;
        let input = if rng.chance(0.003) {
            rng.range(200_001, 380_000)
        } else {
            rng.log_uniform(1, 5_000)
        };
        let cache_create = if self.first_msg {
            rng.range(10_000, 30_000)
        } else if rng.chance(0.12) {
            0
        } else {
            rng.log_uniform(50, 30_000)
        };
        let mut cache_read = if (self.first_msg && rng.chance(0.5)) || rng.chance(0.02) {
            0
        } else {
            self.context
        };
        if rng.chance(0.003) {
            cache_read = rng.range(200_001, 600_000);
        }
        self.context += cache_create / 2 + rng.range(200, 3_000);
        let output = rng.log_uniform(10, 4_000);
        let (c5m, c1h) = if self.plan.one_hour {
            if rng.chance(0.7) {
                (0, cache_create)
            } else {
                let h = rng.range(0, cache_create);
                (cache_create - h, h)
            }
        } else {
            (cache_create, 0)
        };
        self.first_msg = false;
        Usage {
            input,
            cache_create,
            cache_read,
            c5m,
            c1h,
            output,
            cc_obj: self.plan.cache_obj,
            fast: self.plan.fast,
        }
    }

    fn push_usage(&mut self, u: &Usage, mangle: Mangle) {
        self.push(",\"usage\":{\"input_tokens\":");
        if mangle == Mangle::InputString {
            self.push("\"");
            push_u64(&mut self.line, u.input);
            self.push("\"");
        } else {
            push_u64(&mut self.line, u.input);
        }
        self.push(",\"cache_creation_input_tokens\":");
        push_u64(&mut self.line, u.cache_create);
        self.push(",\"cache_read_input_tokens\":");
        if mangle == Mangle::CacheReadNull {
            self.push("null");
        } else {
            push_u64(&mut self.line, u.cache_read);
        }
        if u.cc_obj {
            self.push(",\"cache_creation\":{\"ephemeral_5m_input_tokens\":");
            push_u64(&mut self.line, u.c5m);
            self.push(",\"ephemeral_1h_input_tokens\":");
            push_u64(&mut self.line, u.c1h);
            self.push("}");
        }
        if mangle != Mangle::OutputMissing {
            self.push(",\"output_tokens\":");
            push_u64(&mut self.line, u.output);
        }
        self.push(",\"service_tier\":\"standard\"");
        if u.fast {
            self.push(",\"speed\":\"fast\"");
        }
        self.push("}");
    }

    fn push_tool_input(&mut self, name: &str) {
        match name {
            "Bash" => {
                let cmd = *self.rng.pick(&[
                    "cargo test --all-targets",
                    "cargo clippy --all-targets -- -D warnings",
                    "git status --short",
                    "git diff HEAD~1 --stat",
                    "rg -n \\\"fn parse\\\" src/",
                    "ls -la ~/.claude/projects | head -50",
                ]);
                self.push("{\"command\":\"");
                self.push(cmd);
                self.push("\",\"description\":\"Run ");
                let w = ident(&mut self.rng);
                self.push(w);
                self.push(" check\"}");
            }
            "Read" | "Write" | "Edit" => {
                self.push("{\"file_path\":\"");
                self.line.extend_from_slice(self.cwd.as_bytes());
                self.push("/src/");
                let f = ident(&mut self.rng);
                self.push(f);
                self.push(".rs\"");
                if name == "Edit" {
                    self.push(",\"old_string\":\"");
                    let n = self.rng.log_uniform(40, 2_000) as usize;
                    self.push_text(n);
                    self.push("\",\"new_string\":\"");
                    let n = self.rng.log_uniform(40, 2_500) as usize;
                    self.push_text(n);
                    self.push("\"");
                } else if name == "Write" {
                    self.push(",\"content\":\"");
                    let n = self.rng.log_uniform(200, 8_000) as usize;
                    self.push_text(n);
                    self.push("\"");
                }
                self.push("}");
            }
            "Grep" => {
                self.push("{\"pattern\":\"fn ");
                let f = ident(&mut self.rng);
                self.push(f);
                self.push("\",\"path\":\"");
                self.line.extend_from_slice(self.cwd.as_bytes());
                self.push("\",\"output_mode\":\"content\",\"-n\":true}");
            }
            "Glob" => self.push("{\"pattern\":\"**/*.rs\"}"),
            "Task" => {
                self.push("{\"description\":\"Explore ");
                let f = ident(&mut self.rng);
                self.push(f);
                self.push(" code\",\"prompt\":\"");
                let n = self.rng.log_uniform(200, 3_000) as usize;
                self.push_text(n);
                self.push("\",\"subagent_type\":\"general-purpose\"}");
            }
            "TodoWrite" => self.push(
                "{\"todos\":[{\"content\":\"Fix de-duplication of resumed sessions\",\"status\":\"in_progress\",\"activeForm\":\"Fixing de-duplication\"},{\"content\":\"Run clippy\",\"status\":\"pending\",\"activeForm\":\"Running clippy\"}]}",
            ),
            _ => self.push(
                "{\"url\":\"https://docs.rs/jiff/latest/jiff/struct.Timestamp.html\",\"prompt\":\"How do I parse RFC 3339 timestamps?\"}",
            ),
        }
    }

    fn push_block(&mut self, block: Block) {
        match block {
            Block::Thinking => {
                self.push("[{\"type\":\"thinking\",\"thinking\":\"");
                let n = self.rng.log_uniform(100, 4_000) as usize;
                self.push_text(n);
                self.push("\",\"signature\":\"");
                let n = self.rng.range(300, 1_600) as usize;
                self.ctx.pool.base64(&mut self.rng, &mut self.line, n);
                self.push("\"}]");
            }
            Block::Text => {
                self.push("[{\"type\":\"text\",\"text\":\"");
                let n = self.rng.log_uniform(30, 3_000) as usize;
                self.push_text(n);
                self.push("\"}]");
            }
            Block::ToolUse { id, name } => {
                self.push("[{\"type\":\"tool_use\",\"id\":");
                self.push_quoted(&id);
                self.push(",\"name\":\"");
                self.push(name);
                self.push("\",\"input\":");
                self.push_tool_input(name);
                self.push("}]");
            }
        }
    }

    /// Renders a full assistant line into `self.line`.
    fn assistant(&mut self, a: &Asst<'_>) {
        self.header();
        self.push(",\"message\":{\"id\":");
        self.push_quoted(a.msg_id);
        self.push(",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        if a.mangle == Mangle::ModelNull {
            self.push("null");
        } else {
            self.push_quoted(a.model.as_bytes());
        }
        self.push(",\"content\":");
        self.push_block(a.block);
        self.push(",\"stop_reason\":");
        match a.stop {
            Some(s) => self.push_quoted(s.as_bytes()),
            None => self.push("null"),
        }
        self.push(",\"stop_sequence\":null");
        self.push_usage(&a.usage, a.mangle);
        self.push("},\"requestId\":");
        if a.mangle == Mangle::RequestIdNull {
            self.push("null");
        } else {
            self.push_quoted(a.req);
        }
        self.push(",\"type\":\"assistant\",\"uuid\":");
        self.push_quoted(&a.uuid);
        if a.mangle == Mangle::TimestampNumber {
            self.push(",\"timestamp\":");
            push_u64(&mut self.line, (a.ts / 1000).max(0) as u64);
        } else {
            self.push_ts(a.ts);
        }
        if self.plan.cost_usd {
            let cost = cost_usd(a.model, &a.usage);
            let s = format!(
                ",\"costUSD\":{},\"durationMs\":",
                (cost * 1e7).round() / 1e7
            );
            self.push(&s);
            let d = self.rng.range(900, 90_000);
            push_u64(&mut self.line, d);
        }
        self.push("}\n");
    }

    fn message_model(&mut self) -> &'static str {
        if self.rng.chance(0.85) {
            self.plan.model
        } else {
            pick_model(&mut self.rng)
        }
    }

    /// One API response, streamed as one line per content block.
    /// Returns the tool_use blocks whose results must follow (none if the
    /// file filled up mid-message).
    fn message(
        &mut self,
        last: bool,
        tools: &mut Vec<([u8; 30], &'static str)>,
    ) -> std::io::Result<()> {
        tools.clear();
        let model = self.message_model();
        let usage = self.new_usage();
        let msg_id: [u8; 28] = b62_id(&mut self.rng, b"msg_01");
        let req: [u8; 28] = b62_id(&mut self.rng, b"req_011C");
        let mut blocks = [Block::Text; 4];
        let mut n = 0;
        if !model.contains("haiku") && self.rng.chance(0.45) {
            blocks[n] = Block::Thinking;
            n += 1;
        }
        if last {
            blocks[n] = Block::Text;
            n += 1;
        } else {
            if self.rng.chance(0.5) {
                blocks[n] = Block::Text;
                n += 1;
            }
            let k = if self.rng.chance(0.15) { 2 } else { 1 };
            for _ in 0..k.min(4 - n) {
                let id: [u8; 30] = b62_id(&mut self.rng, b"toolu_01");
                let name = tool_name(&mut self.rng);
                blocks[n] = Block::ToolUse { id, name };
                n += 1;
            }
        }
        let final_out = usage.output.max(n as u64);
        let mut emitted = 0u64;
        let mut last_usage = usage;
        let mut last_ts = 0;
        let mut prev_out = 0;
        for (j, &block) in blocks[..n].iter().enumerate() {
            let ts = if j == 0 {
                self.next_ts(1_500, 40_000)
            } else {
                self.next_ts(80, 2_500)
            };
            let out = if j + 1 == n {
                final_out
            } else {
                (final_out * (j as u64 + 1) / n as u64).max(prev_out + 1)
            };
            prev_out = out;
            let stop = if j + 1 < n {
                None
            } else if !last {
                Some("tool_use")
            } else if self.rng.chance(0.01) {
                Some("max_tokens")
            } else {
                Some("end_turn")
            };
            let mut u = usage;
            u.output = out;
            let id = uuid(&mut self.rng);
            self.assistant(&Asst {
                msg_id: &msg_id,
                req: &req,
                model,
                block,
                usage: u,
                stop,
                ts,
                uuid: id,
                mangle: Mangle::None,
            });
            if !self.emit(Class::usage(ts, self.sidechain), Some(id), false)? {
                break;
            }
            emitted += 1;
            last_usage = u;
            last_ts = ts;
        }
        if emitted > 0 {
            self.sum.messages += 1;
            self.sum.message_tokens += last_usage.total();
            self.sum.streamed_extra_lines += emitted - 1;
            if let Some(r) = self.records.as_mut() {
                r.push(MsgRecord {
                    id: msg_id,
                    ts: last_ts,
                    model,
                    usage: last_usage,
                });
            }
        }
        if emitted == n as u64 {
            for b in &blocks[..n] {
                if let Block::ToolUse { id, name } = *b {
                    tools.push((id, name));
                }
            }
        }
        Ok(())
    }

    fn synthetic(&mut self, kind: Synthetic, force: bool) -> std::io::Result<bool> {
        let ts = self.next_ts(200, 3_000);
        let id = uuid(&mut self.rng);
        let msg_id = uuid(&mut self.rng);
        self.header();
        self.push(",\"type\":\"assistant\"");
        self.push_uuid_ts(&id, ts);
        self.push(",\"message\":{\"id\":");
        self.push_quoted(&msg_id);
        self.push(",\"model\":\"<synthetic>\",\"role\":\"assistant\",\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"\",\"type\":\"message\",\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"server_tool_use\":{\"web_search_requests\":0,\"web_fetch_requests\":0},\"service_tier\":null,\"cache_creation\":{\"ephemeral_1h_input_tokens\":0,\"ephemeral_5m_input_tokens\":0}},\"content\":[{\"type\":\"text\",\"text\":\"");
        match kind {
            Synthetic::UsageLimit => {
                // The reset is the next full hour, some hours later.
                let hours = self.rng.range(1, 4) as i64;
                let reset = (ts.div_euclid(3_600_000) + hours) * 3600;
                self.push("Claude AI usage limit reached|");
                push_u64(&mut self.line, reset.max(0) as u64);
            }
            Synthetic::Overloaded => self.push(
                "API Error: 529 {\\\"type\\\":\\\"error\\\",\\\"error\\\":{\\\"type\\\":\\\"overloaded_error\\\",\\\"message\\\":\\\"Overloaded\\\"}}",
            ),
            Synthetic::PromptTooLong => self.push("Prompt is too long"),
            Synthetic::NoResponse => self.push("No response requested."),
        }
        self.push("\"}]}");
        let api_error = kind != Synthetic::NoResponse;
        if api_error {
            self.push(",\"isApiErrorMessage\":true");
        }
        self.push("}\n");
        let class = Class::Usage {
            ts,
            sidechain: self.sidechain,
            synthetic: true,
            api_error,
            limit: kind == Synthetic::UsageLimit,
        };
        self.emit(class, Some(id), force)
    }

    fn maybe_garbage(&mut self) -> std::io::Result<()> {
        if !self.ctx.garbage || !self.rng.chance(GARBAGE_P) {
            return Ok(());
        }
        let kind = self.rng.weighted(&[25, 15, 15, 25, 20]);
        let mut class = Class::Malformed { null: false };
        match kind {
            1 => {
                self.line.clear();
                let s = noise_line(&mut self.rng);
                self.push(s);
                self.push("\n");
            }
            2 => {
                self.line.clear();
                let blank = if self.rng.chance(0.7) { "\n" } else { "   \n" };
                self.push(blank);
            }
            _ => {
                let mangle = match kind {
                    0 => Mangle::None,
                    3 => {
                        class = Class::Malformed { null: true };
                        *self.rng.pick(&[
                            Mangle::ModelNull,
                            Mangle::RequestIdNull,
                            Mangle::CacheReadNull,
                        ])
                    }
                    _ => *self.rng.pick(&[
                        Mangle::InputString,
                        Mangle::TimestampNumber,
                        Mangle::OutputMissing,
                    ]),
                };
                let model = self.message_model();
                let usage = self.new_usage();
                let msg_id: [u8; 28] = b62_id(&mut self.rng, b"msg_01");
                let req: [u8; 28] = b62_id(&mut self.rng, b"req_011C");
                let ts = self.next_ts(1_000, 20_000);
                let id = uuid(&mut self.rng);
                self.assistant(&Asst {
                    msg_id: &msg_id,
                    req: &req,
                    model,
                    block: Block::Text,
                    usage,
                    stop: Some("end_turn"),
                    ts,
                    uuid: id,
                    mangle,
                });
                if kind == 0 {
                    // Truncated write: cut at a character boundary, keep the newline.
                    let len = self.line.len();
                    let mut cut = len / 5 + self.rng.below((len * 7 / 10) as u64) as usize;
                    while cut > 1 && (self.line[cut] & 0xC0) == 0x80 {
                        cut -= 1;
                    }
                    self.line.truncate(cut);
                    self.line.push(b'\n');
                }
            }
        }
        self.emit(class, None, false)?;
        Ok(())
    }

    // ----- structure ----------------------------------------------------

    fn turn(&mut self, index: u64) -> std::io::Result<()> {
        if !self.sidechain {
            if self.rng.chance(0.08) {
                self.snapshot_line()?;
            }
            self.maybe_garbage()?;
            let long = index == 0 && self.rng.chance(0.3);
            self.user_prompt(long)?;
        }
        if self.rng.chance(0.01) {
            self.system_line(false)?;
        }
        let mut steps = 1;
        while steps < 30 && self.rng.chance(0.78) {
            steps += 1;
        }
        let mut tools = Vec::with_capacity(4);
        for s in 0..steps {
            if self.full {
                break;
            }
            self.maybe_garbage()?;
            if self.context > COMPACT_AT {
                self.system_line(true)?;
                self.context = self.rng.range(12_000, 30_000);
            }
            if self.rng.chance(0.002) {
                let kind = if self.rng.chance(0.8) {
                    Synthetic::Overloaded
                } else {
                    Synthetic::PromptTooLong
                };
                self.synthetic(kind, false)?;
            }
            let last = s + 1 == steps;
            self.message(last, &mut tools)?;
            for &(id, name) in &tools {
                self.maybe_garbage()?;
                self.tool_result(&id, name)?;
            }
            if !last && self.rng.chance(0.004) {
                self.interrupted()?;
                self.synthetic(Synthetic::NoResponse, false)?;
                break;
            }
        }
        if !self.sidechain && index > 0 && self.rng.chance(0.0015) {
            self.synthetic(Synthetic::UsageLimit, false)?;
        }
        Ok(())
    }

    fn copy_resumed(
        &mut self,
        src: &Capture,
        source_session: Option<[u8; 36]>,
    ) -> std::io::Result<()> {
        if src.is_empty() {
            return Ok(());
        }
        let max_bytes = (self.target * 2 / 5) as usize;
        let k = self.rng.range(src.len().min(4) as u64, src.len() as u64) as usize;
        let rewrite = self.plan.resume_rewrites_session;
        let mut used = 0;
        for cl in src.iter().take(k) {
            if used > 0 && used + cl.bytes.len() > max_bytes {
                break;
            }
            self.line.clear();
            self.line.extend_from_slice(&cl.bytes);
            if rewrite && let Some(old) = source_session {
                let hits: Vec<usize> = memchr::memmem::find_iter(&self.line, &old).collect();
                for h in hits {
                    self.line[h..h + 36].copy_from_slice(&self.plan.session);
                }
            }
            if !self.emit(cl.class, cl.uuid, false)? {
                break;
            }
            used += cl.bytes.len();
            self.sum.copied_lines += 1;
        }
        Ok(())
    }

    fn replay(&mut self, recs: &[MsgRecord]) -> std::io::Result<()> {
        let start = self.ctx.timeline.wall(self.plan.a0);
        let upto = recs.partition_point(|r| r.ts <= start);
        if upto == 0 {
            return Ok(());
        }
        let k = self.rng.range(1, 6).min(upto as u64) as usize;
        for r in &recs[upto - k..upto] {
            let req: [u8; 28] = b62_id(&mut self.rng, b"req_011C");
            let id = uuid(&mut self.rng);
            self.assistant(&Asst {
                msg_id: &r.id,
                req: &req,
                model: r.model,
                block: Block::Text,
                usage: r.usage,
                stop: Some("end_turn"),
                ts: r.ts,
                uuid: id,
                mangle: Mangle::None,
            });
            if !self.emit(Class::usage(r.ts, true), Some(id), false)? {
                break;
            }
            self.sum.replayed_lines += 1;
        }
        Ok(())
    }
}

/// Rough API price (USD) for `costUSD` fields of old-style entries.
fn cost_usd(model: &str, u: &Usage) -> f64 {
    let (inp, out) = if model.contains("opus") {
        (5.0, 25.0)
    } else if model.contains("haiku") {
        (1.0, 5.0)
    } else {
        (3.0, 15.0)
    };
    (u.input as f64 * inp
        + u.output as f64 * out
        + u.c5m as f64 * inp * 1.25
        + u.c1h as f64 * inp * 2.0
        + u.cache_read as f64 * inp * 0.1)
        / 1e6
}

fn merge(total: &mut SynthSummary, s: &SynthSummary, first_ms: i64, last_ms: i64) {
    total.bytes += s.bytes;
    total.lines += s.lines;
    total.usage_lines += s.usage_lines;
    total.malformed_lines += s.malformed_lines;
    total.null_field_lines += s.null_field_lines;
    total.messages += s.messages;
    total.message_tokens += s.message_tokens;
    total.streamed_extra_lines += s.streamed_extra_lines;
    total.copied_lines += s.copied_lines;
    total.replayed_lines += s.replayed_lines;
    total.sidechain_usage_lines += s.sidechain_usage_lines;
    total.api_error_lines += s.api_error_lines;
    total.usage_limit_lines += s.usage_limit_lines;
    total.synthetic_lines += s.synthetic_lines;
    if first_ms <= last_ms {
        let first = jiff::Timestamp::from_millisecond(first_ms).ok();
        let last = jiff::Timestamp::from_millisecond(last_ms).ok();
        total.first_timestamp = match (total.first_timestamp, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        total.last_timestamp = match (total.last_timestamp, last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}
