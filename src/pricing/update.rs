//! `<base>/pricing.json`: loading it, and `csm pricing update` writing it.
//!
//! This is the only network access in `csm`, and it only happens when the
//! user asks for it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{PriceTable, PricingError};

/// LiteLLM's price list on its main branch: what ccusage refreshes from.
pub const DEFAULT_UPDATE_URL: &str =
    "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json";

/// File name of downloaded prices inside the base directory.
pub const PRICING_FILE_NAME: &str = "pricing.json";

/// The full list is about 1.5 MB; anything far larger is not it.
const MAX_DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// What `update` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateSummary {
    /// The file written.
    pub path: PathBuf,
    /// Size of the downloaded price list.
    pub bytes: u64,
    /// Number of Claude price entries it holds.
    pub claude_models: usize,
    /// True when an earlier `pricing.json` was replaced.
    pub replaced_existing: bool,
}

/// The prices to use: `<base>/pricing.json` when it exists, else the embedded
/// table. A file that exists but cannot be used is an error rather than a
/// silent fallback: the user asked for those prices with `csm pricing update`
/// and would otherwise get different costs without noticing.
pub fn load(base_dir: &Path) -> Result<PriceTable, PricingError> {
    let path = base_dir.join(PRICING_FILE_NAME);
    let json = match fs::read_to_string(&path) {
        Ok(json) => json,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PriceTable::embedded()),
        Err(source) => return Err(PricingError::Read { path, source }),
    };
    match PriceTable::from_litellm_json(&json) {
        Ok(table) => Ok(table.with_source(path.display().to_string())),
        Err(source) => Err(PricingError::InvalidFile {
            path,
            source: Box::new(source),
        }),
    }
}

/// Downloads LiteLLM's price list from `url` and, if it holds usable Claude
/// prices, stores it verbatim as `<base>/pricing.json` (atomically, mode
/// 0600). On any failure the existing file is left as it was.
pub fn update(url: &str, base_dir: &Path) -> Result<UpdateSummary, PricingError> {
    let path = base_dir.join(PRICING_FILE_NAME);
    let body = download(url)?;
    let table =
        PriceTable::from_litellm_json(&body).map_err(|source| PricingError::InvalidDownload {
            url: url.to_owned(),
            path: path.clone(),
            source: Box::new(source),
        })?;
    let replaced_existing = path.exists();
    create_private_dir(base_dir).map_err(|source| PricingError::Write {
        path: base_dir.to_path_buf(),
        source,
    })?;
    write_atomic(&path, body.as_bytes()).map_err(|source| PricingError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(UpdateSummary {
        path,
        bytes: body.len() as u64,
        claude_models: table.len(),
        replaced_existing,
    })
}

fn download(url: &str) -> Result<String, PricingError> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(DOWNLOAD_TIMEOUT))
        .user_agent(concat!(
            "claude-session-monitor/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .new_agent();
    let download_error = |source: ureq::Error| match source {
        ureq::Error::StatusCode(status) => PricingError::HttpStatus {
            url: url.to_owned(),
            status,
        },
        source => PricingError::Download {
            url: url.to_owned(),
            source: Box::new(source),
        },
    };
    let mut response = agent.get(url).call().map_err(download_error)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .read_to_string()
        .map_err(download_error)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Readers (other `csm` processes, the daemon) must see either the old or
/// the new file, never a partial one, also across a crash: write a temporary
/// file in the same directory, fsync it, rename it over the target, fsync
/// the directory so the rename itself is durable.
fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(
        || PRICING_FILE_NAME.into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file to flush it; the rename there is
/// as durable as the platform offers.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BillableTokens, Speed};
    use crate::pricing::TokenKind;
    use std::io::{BufRead, BufReader};
    use std::net::{SocketAddr, TcpListener};
    use std::thread::JoinHandle;

    const PRICES: &str = r#"{
        "sample_spec": {"max_input_tokens": "max input tokens"},
        "gpt-5": {"input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5},
        "claude-test-1": {"input_cost_per_token": 7e-6, "output_cost_per_token": 9e-6}
    }"#;

    /// A directory under the system temp dir, removed on drop; tests never
    /// touch the real base directory.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "csm-pricing-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Serves one canned HTTP response per connection on 127.0.0.1, then
    /// stops. Returns the URL and the thread (which yields the request lines).
    fn serve(responses: Vec<(u16, &'static str)>) -> (String, JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let handle = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for (status, body) in responses {
                let Ok((stream, _)) = listener.accept() else {
                    break;
                };
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                requests.push(request_line.trim_end().to_owned());
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let reason = if status == 200 { "OK" } else { "Not Found" };
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = (&stream).write_all(response.as_bytes());
            }
            requests
        });
        (
            format!("http://{addr}/model_prices_and_context_window.json"),
            handle,
        )
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn load_without_file_uses_embedded_prices() {
        let base = TempDir::new();
        let table = load(&base.0).expect("embedded prices");
        assert!(table.source().starts_with("embedded (litellm "));
        // A base directory that does not exist yet is no error either.
        let table = load(&base.0.join("missing")).expect("embedded prices");
        assert!(table.source().starts_with("embedded"));
    }

    #[test]
    fn load_uses_a_valid_pricing_file() {
        let base = TempDir::new();
        let path = base.0.join(PRICING_FILE_NAME);
        fs::write(&path, PRICES).expect("write prices");
        let table = load(&base.0).expect("file prices");
        assert_eq!(table.source(), path.display().to_string());
        assert_eq!(table.len(), 1);
        let price = table.resolve("claude-test-1-20991231").expect("priced");
        let t = BillableTokens {
            input: 1,
            output: 1,
            ..BillableTokens::default()
        };
        assert_eq!(price.cost(&t, Speed::Standard), 7e-6 + 9e-6);
        assert!(
            table.resolve("claude-opus-4-5").is_none(),
            "file replaces embedded prices"
        );
    }

    #[test]
    fn load_rejects_an_unusable_file_and_names_it() {
        let base = TempDir::new();
        let path = base.0.join(PRICING_FILE_NAME);
        for contents in [
            "<html>oops</html>",
            "{}",
            r#"{"gpt-5": {"input_cost_per_token": 1}}"#,
        ] {
            fs::write(&path, contents).expect("write prices");
            let err = load(&base.0).expect_err("unusable file");
            assert!(matches!(&err, PricingError::InvalidFile { path: p, .. } if *p == path));
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn load_reports_an_unreadable_file() {
        let base = TempDir::new();
        fs::create_dir(base.0.join(PRICING_FILE_NAME)).expect("dir in the way");
        let err = load(&base.0).expect_err("not a file");
        assert!(matches!(err, PricingError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains(PRICING_FILE_NAME));
    }

    #[test]
    fn update_downloads_validates_and_stores_the_file() {
        let base = TempDir::new();
        let (url, server) = serve(vec![(200, PRICES)]);
        let summary = update(&url, &base.0).expect("update succeeds");
        let path = base.0.join(PRICING_FILE_NAME);
        assert_eq!(
            summary,
            UpdateSummary {
                path: path.clone(),
                bytes: PRICES.len() as u64,
                claude_models: 1,
                replaced_existing: false,
            }
        );
        assert_eq!(fs::read_to_string(&path).expect("stored"), PRICES);
        assert_eq!(files_in(&base.0), [PRICING_FILE_NAME]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let requests = server.join().expect("server thread");
        assert_eq!(
            requests,
            ["GET /model_prices_and_context_window.json HTTP/1.1"]
        );
        let table = load(&base.0).expect("stored prices load");
        let rate = table
            .resolve("claude-test-1")
            .map(|p| p.rate(TokenKind::Input).base());
        assert_eq!(rate, Some(7e-6));
    }

    #[test]
    fn update_replaces_an_existing_file() {
        let base = TempDir::new();
        let path = base.0.join(PRICING_FILE_NAME);
        fs::write(&path, "old").expect("old file");
        let (url, server) = serve(vec![(200, PRICES)]);
        let summary = update(&url, &base.0).expect("update succeeds");
        assert!(summary.replaced_existing);
        assert_eq!(fs::read_to_string(&path).expect("stored"), PRICES);
        server.join().expect("server thread");
    }

    #[test]
    fn update_creates_a_private_base_directory() {
        let base = TempDir::new();
        let dir = base.0.join("claude-monitor");
        let (url, server) = serve(vec![(200, PRICES)]);
        update(&url, &dir).expect("update succeeds");
        assert!(dir.join(PRICING_FILE_NAME).is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&dir).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        server.join().expect("server thread");
    }

    #[test]
    fn update_keeps_the_old_file_when_the_download_is_garbage() {
        let base = TempDir::new();
        let path = base.0.join(PRICING_FILE_NAME);
        fs::write(&path, PRICES).expect("old file");
        let (url, server) = serve(vec![
            (200, "<html><body>Rate limited</body></html>"),
            (
                200,
                r#"{"gpt-5": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5}}"#,
            ),
            (200, r#"{"claude-test-1": {"input_cost_per_token": 7e-6,"#),
        ]);
        for _ in 0..3 {
            let err = update(&url, &base.0).expect_err("garbage is rejected");
            assert!(
                matches!(&err, PricingError::InvalidDownload { path: p, .. } if *p == path),
                "{err:?}"
            );
            assert!(err.to_string().contains("left unchanged"), "{err}");
        }
        assert_eq!(fs::read_to_string(&path).expect("old file"), PRICES);
        assert_eq!(files_in(&base.0), [PRICING_FILE_NAME]);
        server.join().expect("server thread");
    }

    #[test]
    fn update_reports_http_errors_and_keeps_the_old_file() {
        let base = TempDir::new();
        let path = base.0.join(PRICING_FILE_NAME);
        fs::write(&path, PRICES).expect("old file");
        let (url, server) = serve(vec![(404, "404: Not Found")]);
        let err = update(&url, &base.0).expect_err("404");
        assert!(
            matches!(err, PricingError::HttpStatus { status: 404, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("404"));
        assert_eq!(fs::read_to_string(&path).expect("old file"), PRICES);
        server.join().expect("server thread");
    }

    #[test]
    fn update_reports_connection_failures() {
        let base = TempDir::new();
        // Bind and drop to get a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("http://127.0.0.1:{port}/prices.json");
        let err = update(&url, &base.0).expect_err("nothing listens");
        assert!(matches!(err, PricingError::Download { .. }), "{err:?}");
        assert!(err.to_string().contains(&url));
        assert!(files_in(&base.0).is_empty());
    }

    #[test]
    fn default_url_is_litellms_raw_github_file() {
        assert!(
            DEFAULT_UPDATE_URL.starts_with("https://raw.githubusercontent.com/BerriAI/litellm/")
        );
        assert!(DEFAULT_UPDATE_URL.ends_with("/model_prices_and_context_window.json"));
    }
}
