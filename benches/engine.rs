//! Micro-benchmarks of the hot paths: line parsing, de-duplication and the
//! window computation. `cargo bench --bench engine`.

use std::sync::Arc;

use claude_session_monitor::blocks::{Timed, identify_blocks, window_length};
use claude_session_monitor::dedup::dedup;
use claude_session_monitor::domain::{Origin, UsageEntry};
use claude_session_monitor::ingest::parse::LineParser;
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

const USAGE_LINE: &str = r#"{"parentUuid":"7f1c","isSidechain":false,"userType":"external","cwd":"/home/dev/code/api","sessionId":"6f1c2b0e-3a4d-4e5f-8a9b-0c1d2e3f4a5b","version":"2.1.97","gitBranch":"main","type":"assistant","uuid":"a1b2","timestamp":"2026-11-20T10:15:30.123Z","requestId":"req_011CXYZ","message":{"id":"msg_01ABC","type":"message","role":"assistant","model":"claude-opus-4-5-20251101","content":[{"type":"text","text":"Here is the change to the orders endpoint, with pagination and tests."},{"type":"tool_use","id":"toolu_1","name":"Edit","input":{"file_path":"/home/dev/code/api/src/orders.rs","old_string":"fn list()","new_string":"fn list(page: u32)"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":4,"cache_creation_input_tokens":2210,"cache_read_input_tokens":81994,"cache_creation":{"ephemeral_5m_input_tokens":2210,"ephemeral_1h_input_tokens":0},"output_tokens":812,"service_tier":"standard"}}}"#;

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        project: Arc::from("-home-dev-code-api"),
        session_id: "6f1c2b0e".into(),
        project_path: "-home-dev-code-api".into(),
    })
}

#[divan::bench]
fn parse_usage_line(b: Bencher) {
    bench_parse(b, LineParser::new());
}

/// The reference the quick reader is measured against.
#[divan::bench]
fn parse_usage_line_serde_only(b: Bencher) {
    bench_parse(b, LineParser::serde_only());
}

/// A usage line whose message carries 5 KiB of code, as JSON escapes it
/// (newlines, quotes, backslashes, tabs, a colour code): the long tail of a
/// real history, where skipping strings is most of the work.
#[divan::bench]
fn parse_code_heavy_usage_line(b: Bencher) {
    bench_parse_line(b, LineParser::new(), &code_heavy_line());
}

#[divan::bench]
fn parse_code_heavy_usage_line_serde_only(b: Bencher) {
    bench_parse_line(b, LineParser::serde_only(), &code_heavy_line());
}

fn code_heavy_line() -> String {
    let code = r#"    println!(\"{}\\n\", path.display()); // C:\\Users\\dev\n\tlet x = \u001b[32mok\u001b[0m;\n"#;
    let text = code.repeat(5 * 1024 / code.len());
    USAGE_LINE.replace(
        "Here is the change to the orders endpoint, with pagination and tests.",
        &text,
    )
}

fn bench_parse(b: Bencher, parser: LineParser) {
    bench_parse_line(b, parser, USAGE_LINE);
}

fn bench_parse_line(b: Bencher, mut parser: LineParser, line: &str) {
    let o = origin();
    assert!(parser.parse_line(line.as_bytes(), &o).is_ok(), "{line}");
    b.bench_local(|| parser.parse_line(black_box(line.as_bytes()), &o).is_ok());
}

#[divan::bench]
fn skip_tool_result_line(b: Bencher) {
    let line = format!(
        r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"tool_result","content":"{}"}}]}}}}"#,
        "x".repeat(64 * 1024)
    );
    let mut parser = LineParser::new();
    let o = origin();
    b.bench_local(|| parser.parse_line(black_box(line.as_bytes()), &o).is_err());
}

/// 100,000 entries over a month: streamed copies (every third a copy of the
/// one before), bursts and gaps.
fn entries() -> Vec<UsageEntry> {
    let mut parser = LineParser::new();
    let o = origin();
    let base = parser
        .parse_line(USAGE_LINE.as_bytes(), &o)
        .expect("sample line parses");
    let start = base.timestamp;
    (0..100_000u64)
        .map(|i| {
            let mut e = base.clone();
            let id = if i % 3 == 2 { i - 1 } else { i };
            e.message_id = Some(id);
            e.request_id = Some(id);
            e.tokens.output_tokens = 100 + i % 7;
            // ~40 s apart with a 6-hour pause every 300 entries.
            let secs = (i * 40 + (i / 300) * 6 * 3600) as i64;
            e.timestamp = start
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .expect("in range");
            e
        })
        .collect()
}

#[divan::bench]
fn dedup_100k(b: Bencher) {
    let input = entries();
    b.with_inputs(|| input.clone())
        .bench_values(|v| dedup(v).len());
}

#[divan::bench]
fn blocks_100k(b: Bencher) {
    let input = dedup(entries());
    b.bench_local(|| {
        let timed = input.iter().map(|e| Timed {
            entry: e,
            cost: 0.01,
        });
        identify_blocks(timed, window_length(5.0)).len()
    });
}
