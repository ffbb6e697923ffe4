//! `csm pricing show` and `csm pricing update` against a local HTTP server.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::{Value, json};

use support::{OPUS, SONNET, Sandbox, json_ok, stdout_ok, usage_line};

/// Serves one HTTP request on 127.0.0.1 with `status` and `body`; the
/// handle returns the request head. Gives up after 30 s without a client.
fn serve_once(status: &'static str, body: Vec<u8>) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no client connected");
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let response_head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(response_head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        stream.flush().unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    (format!("http://127.0.0.1:{port}/prices.json"), handle)
}

/// A minimal LiteLLM price list: two Claude entries (one with made-up
/// prices for a real model name), the spec entry and a non-Claude model.
fn litellm_body() -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "sample_spec": {
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
            "mode": "chat"
        },
        SONNET: {
            "input_cost_per_token": 1e-5,
            "output_cost_per_token": 2e-5,
            "cache_creation_input_token_cost": 3e-5,
            "cache_read_input_token_cost": 4e-6,
            "litellm_provider": "anthropic",
            "mode": "chat"
        },
        "claude-test-model-1": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 5e-6,
            "litellm_provider": "anthropic",
            "mode": "chat"
        },
        "gpt-4o": {
            "input_cost_per_token": 2.5e-6,
            "output_cost_per_token": 1e-5,
            "litellm_provider": "openai",
            "mode": "chat"
        }
    }))
    .unwrap()
}

/// The atomic write leaves no temporary file behind in CSM_HOME.
fn assert_no_temp_files(sb: &Sandbox) {
    let names: Vec<String> = fs::read_dir(sb.csm_home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".tmp") && !n.starts_with(".pricing")),
        "temporary files left: {names:?}"
    );
}

#[test]
fn show_prints_embedded_prices_and_their_source() {
    let sb = Sandbox::new();
    let text = stdout_ok(sb.bare_cmd().args(["pricing", "show", OPUS]));
    assert!(text.contains("Prices from embedded"), "{text}");
    assert!(text.contains(OPUS), "{text}");
    // Opus 4.5: $5 in, $25 out, $6.25 5-minute cache write, $10 1-hour, $0.50 read.
    let row = text
        .lines()
        .find(|l| l.contains(OPUS) && l.contains('$'))
        .unwrap_or_else(|| panic!("no price row for {OPUS}:\n{text}"));
    for price in ["$5.00", "$25.00", "$6.25", "$10.00", "$0.5"] {
        assert!(row.contains(price), "no {price} in {row}");
    }
    assert!(!text.contains('\u{1b}'), "escape codes in piped output");

    // A name as transcripts spell it resolves to its price entry.
    let text =
        stdout_ok(
            sb.bare_cmd()
                .args(["pricing", "show", "anthropic/claude-opus-4-5-20251101"]),
        );
    assert!(text.contains(&format!("→ {OPUS}")), "{text}");

    let v = json_ok(sb.bare_cmd().args(["pricing", "show", "--json"]));
    let source = v["source"].as_str().expect("source string");
    assert!(source.starts_with("embedded"), "{source}");
    let models = v["models"].as_array().unwrap();
    assert!(models.len() > 20, "{} models", models.len());
    let opus = models
        .iter()
        .find(|m| m["model"] == OPUS)
        .expect("opus 4.5 in the table");
    assert_eq!(opus["inputPerToken"], json!(5e-6));
    assert_eq!(opus["outputPerToken"], json!(2.5e-5));
    assert_eq!(opus["cacheReadPerToken"], json!(5e-7));

    let one = json_ok(sb.bare_cmd().args(["pricing", "show", OPUS, "-j"]));
    assert_eq!(one["models"].as_array().unwrap().len(), 1);
    assert_eq!(one["models"][0]["model"], OPUS);

    // No match: exit 1 and a plain explanation.
    sb.bare_cmd()
        .args(["pricing", "show", "gpt-4o"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("No model matches"));
}

#[test]
fn update_downloads_validates_and_is_used_from_then_on() {
    let sb = Sandbox::new();
    sb.write_session(
        "p",
        "s",
        &[usage_line(
            "2026-11-20T10:00:00.000Z",
            "s",
            1,
            SONNET,
            [10, 20, 30, 40],
        )],
    );
    let before = json_ok(sb.cmd().args(["daily", "--json", "--mode", "calculate"]));
    let pricing_file = sb.csm_home().join("pricing.json");
    assert!(!pricing_file.exists());

    let body = litellm_body();
    let (url, server) = serve_once("200 OK", body.clone());
    let out = sb
        .cmd()
        .args(["pricing", "update", "--url", &url])
        .output()
        .unwrap();
    let request = server.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        request.starts_with("GET /prices.json HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(stdout.contains("Saved 2 Claude prices"), "{stdout}");
    assert!(
        stdout.contains(&pricing_file.display().to_string()),
        "{stdout}"
    );

    // Stored verbatim, private, in a private directory.
    assert_eq!(fs::read(&pricing_file).unwrap(), body);
    let mode = fs::metadata(&pricing_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "pricing.json mode {mode:o}");
    let dir_mode = fs::metadata(sb.csm_home()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "CSM_HOME mode {dir_mode:o}");
    assert_no_temp_files(&sb);

    // `pricing show` now names the file and shows its prices.
    let text = stdout_ok(sb.cmd().args(["pricing", "show"]));
    assert!(
        text.contains(&format!("Prices from {}", pricing_file.display())),
        "{text}"
    );
    assert!(text.contains("claude-test-model-1"), "{text}");
    assert!(
        !text.contains("gpt-4o"),
        "only Claude entries are kept: {text}"
    );
    let v = json_ok(sb.cmd().args(["pricing", "show", "--json"]));
    assert_eq!(v["source"], pricing_file.display().to_string());
    let keys: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["claude-sonnet-4-5-20250929", "claude-test-model-1"]);
    let test_model = &v["models"][1];
    assert_eq!(test_model["inputPerToken"], json!(1e-6));
    // Missing cache prices default to 1.25x (write) and 0.1x (read) of input.
    let write = test_model["cacheWrite5mPerToken"].as_f64().unwrap();
    let read = test_model["cacheReadPerToken"].as_f64().unwrap();
    assert!((write - 1.25e-6).abs() < 1e-15, "{write}");
    assert!((read - 1e-7).abs() < 1e-15, "{read}");

    // Reports use the downloaded prices.
    let after = json_ok(sb.cmd().args(["daily", "--json", "--mode", "calculate"]));
    let cost = after["totals"]["totalCost"].as_f64().unwrap();
    let expected = 10.0 * 1e-5 + 20.0 * 2e-5 + 30.0 * 3e-5 + 40.0 * 4e-6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    assert_ne!(after["totals"]["totalCost"], before["totals"]["totalCost"]);
    let doctor = json_ok(sb.cmd().args(["doctor", "--json"]));
    assert_eq!(doctor["pricing"], pricing_file.display().to_string());

    // A second update replaces the file and says so.
    let (url, server) = serve_once("200 OK", body.clone());
    sb.cmd()
        .args(["pricing", "update", "--url", &url])
        .assert()
        .success()
        .stdout(predicate::str::contains("replacing the previous file"));
    server.join().unwrap();

    // A failed update leaves the stored file exactly as it was.
    let (url, server) = serve_once("200 OK", b"<html>rate limited</html>".to_vec());
    sb.cmd()
        .args(["pricing", "update", "--url", &url])
        .assert()
        .failure()
        .stderr(predicate::str::contains(url.as_str()))
        .stderr(predicate::str::contains("left unchanged"));
    server.join().unwrap();
    assert_eq!(fs::read(&pricing_file).unwrap(), body);
    assert_no_temp_files(&sb);
}

#[test]
fn failed_downloads_write_nothing() {
    let sb = Sandbox::new();
    let pricing_file = sb.csm_home().join("pricing.json");
    let cases: [(&str, &'static str, Vec<u8>); 4] = [
        ("garbage", "200 OK", b"this is not JSON \x00\xff".to_vec()),
        (
            "no Claude models",
            "200 OK",
            serde_json::to_vec(
                &json!({"gpt-4o": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}),
            )
            .unwrap(),
        ),
        ("JSON array", "200 OK", b"[1, 2, 3]".to_vec()),
        ("HTTP 404", "404 Not Found", b"{}".to_vec()),
    ];
    for (what, status, body) in cases {
        let (url, server) = serve_once(status, body);
        let out = sb
            .cmd()
            .args(["pricing", "update", "--url", &url])
            .output()
            .unwrap();
        server.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: succeeded");
        assert!(stderr.contains(&url), "{what}: {stderr}");
        assert!(!pricing_file.exists(), "{what}: pricing.json written");
        if what == "HTTP 404" {
            assert!(stderr.contains("404"), "{stderr}");
        }
    }
    // Nobody listening.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    sb.cmd()
        .args(["pricing", "update", "--url"])
        .arg(format!("http://127.0.0.1:{port}/prices.json"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!("127.0.0.1:{port}")));
    assert!(!pricing_file.exists());
    // The embedded prices are still in use.
    let v: Value = json_ok(sb.cmd().args(["pricing", "show", "--json"]));
    assert!(v["source"].as_str().unwrap().starts_with("embedded"));
}

#[test]
fn unusable_stored_prices_are_an_error_not_a_silent_fallback() {
    let sb = Sandbox::new();
    sb.write_session(
        "p",
        "s",
        &[usage_line(
            "2026-11-20T10:00:00.000Z",
            "s",
            1,
            SONNET,
            [1, 2, 3, 4],
        )],
    );
    fs::create_dir_all(sb.csm_home()).unwrap();
    let file = sb.csm_home().join("pricing.json");
    fs::write(&file, "{ truncated").unwrap();
    for args in [&["pricing", "show"][..], &["daily", "--json"][..]] {
        sb.cmd()
            .args(args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains(file.display().to_string()))
            .stderr(predicate::str::contains("csm pricing update"));
    }
}
