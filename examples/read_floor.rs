//! What only reading a history costs, with no parsing and no store: the
//! floor under a cold run's reading stage.
//!
//! Every `.jsonl` under `--dir` is visited on all cores, largest first, and
//! one of these is done to it:
//!
//! - `read`: `read()` it through a 1 MiB buffer and count newlines;
//! - `lines`: csm's line reader, counting the lines it hands out;
//! - `split`: csm's line reader, and for each line the usage pre-filter
//!   (what the reading threads do before parsing);
//! - `parse`: gather the lines holding the marker (not timed), then parse
//!   them all on one thread, with csm's parser and with serde_json alone
//!   (`READ_FLOOR_PARSER=quick` or `serde_only` runs just one).
//!
//! ```text
//! cargo run --release --example read_floor -- --dir /tmp/csm-bench/claude-1GiB --mode split
//! ```
//!
//! It prints the wall time of the pass and what it counted.

fn main() -> anyhow::Result<()> {
    floor::main()
}

mod floor {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use claude_session_monitor::ingest::parse::{LineParser, USAGE_MARKER};
    use claude_session_monitor::ingest::reader::{Line, read_lines};
    use memchr::memmem;
    use rayon::prelude::*;

    pub fn main() -> anyhow::Result<()> {
        let mut dir = None;
        let mut mode = "split".to_string();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--dir" => dir = args.next().map(PathBuf::from),
                "--mode" => mode = args.next().unwrap_or_default(),
                other => anyhow::bail!("unknown argument {other:?}"),
            }
        }
        let dir = dir.ok_or_else(|| anyhow::anyhow!("--dir is required"))?;
        let started = Instant::now();
        let mut files = Vec::new();
        walk(&dir, &mut files)?;
        files.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        let listed = started.elapsed();
        if mode == "parse" {
            return parse_floor(&files);
        }
        let counts: Vec<u64> = files
            .par_iter()
            .map(|(path, _)| visit(path, &mode))
            .collect::<anyhow::Result<_>>()?;
        let total: u64 = counts.iter().sum();
        let bytes: u64 = files.iter().map(|(_, s)| s).sum();
        println!(
            "{mode}: {} files, {} MiB, counted {total}, listing {:.1} ms, total {:.1} ms",
            files.len(),
            bytes >> 20,
            listed.as_secs_f64() * 1e3,
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    }

    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), out)?;
            } else if entry.path().extension().is_some_and(|e| e == "jsonl") {
                out.push((entry.path(), entry.metadata()?.len()));
            }
        }
        Ok(())
    }

    fn visit(path: &Path, mode: &str) -> anyhow::Result<u64> {
        let mut file = std::fs::File::open(path)?;
        if mode == "read" {
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0;
            loop {
                let got = file.read(&mut buf)?;
                if got == 0 {
                    return Ok(n);
                }
                n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
            }
        }
        let parser = LineParser::new();
        let mut n = 0;
        let mut buf = Vec::new();
        read_lines(&mut file, 0, &mut buf, |line| {
            let Line::Held { bytes, .. } = line else {
                return;
            };
            n += match mode {
                "lines" => 1,
                _ => u64::from(parser.prefilter(bytes).is_ok()),
            };
        })?;
        Ok(n)
    }

    /// Per-line parse cost over the history's real usage lines.
    fn parse_floor(files: &[(PathBuf, u64)]) -> anyhow::Result<()> {
        use claude_session_monitor::domain::Origin;
        use std::sync::Arc;

        let finder = memmem::Finder::new(USAGE_MARKER);
        let mut lines = Vec::new();
        for (path, _) in files {
            let data = std::fs::read(path)?;
            lines.extend(
                data.split(|&b| b == b'\n')
                    .filter(|l| finder.find(l).is_some())
                    .map(<[u8]>::to_vec),
            );
        }
        let bytes: usize = lines.iter().map(Vec::len).sum();
        let origin = Arc::new(Origin {
            project: Arc::from("p"),
            session_id: "s".into(),
            project_path: "p".into(),
        });
        for (name, mut parser) in [
            ("quick", LineParser::new()),
            ("serde_only", LineParser::serde_only()),
        ] {
            if std::env::var("READ_FLOOR_PARSER").is_ok_and(|only| only != name) {
                continue;
            }
            let mut best = f64::MAX;
            let mut ok = 0;
            for _ in 0..3 {
                let at = Instant::now();
                ok = lines
                    .iter()
                    .filter(|l| parser.parse_candidate(l, &origin).is_ok())
                    .count();
                best = best.min(at.elapsed().as_secs_f64());
            }
            println!(
                "{name}: {} lines ({} MiB), {ok} entries, best of 3 {:.1} ms, {:.0} ns/line",
                lines.len(),
                bytes >> 20,
                best * 1e3,
                best * 1e9 / lines.len().max(1) as f64
            );
        }
        Ok(())
    }
}
