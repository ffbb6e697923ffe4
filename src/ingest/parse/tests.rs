//! Line acceptance cases measured against ccusage 20.0.24 (see
//! tests/fixtures/ccusage for the recorded outputs).

use super::*;

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        project: Arc::from("p"),
        session_id: "s".into(),
        project_path: "p".into(),
    })
}

const BASE: &str = r#"{"timestamp":"2025-06-01T10:00:00.000Z","sessionId":"s1","requestId":"r1","type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-20250514","usage":{"input_tokens":100,"output_tokens":10}}}"#;

fn parse(line: &str) -> Result<UsageEntry, SkipReason> {
    LineParser::new().parse_line(line.as_bytes(), &origin())
}

fn variant(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_line_is_an_entry() {
    let e = parse(BASE).unwrap();
    assert_eq!(e.tokens.input_tokens, 100);
    assert_eq!(e.tokens.output_tokens, 10);
    assert_eq!(e.model.as_deref(), Some("claude-sonnet-4-20250514"));
    assert_eq!(e.message_id, Some(hash_id("m1")));
    assert_eq!(e.request_id, Some(hash_id("r1")));
    assert_eq!(e.timestamp.to_string(), "2025-06-01T10:00:00Z");
}

#[test]
fn accepted_variants() {
    let ok = [
        variant("2025-06-01T10:00:00.000Z", "2025-06-01T12:00:00.000+02:00"),
        variant("2025-06-01T10:00:00.000Z", "2025-06-01T12:00:00+02:00"),
        variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:00Z"),
        variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:00.000-00:00"),
        variant(r#""sessionId":"s1","#, ""),
        variant(r#""requestId":"r1","#, ""),
        variant(r#""model":"claude-sonnet-4-20250514","#, ""),
        variant(r#""type":"assistant""#, r#""type":"user""#),
        variant(r#""type":"assistant","#, r#""version":"2.0.14-beta","cwd":5,"content":null,"isSidechain":null,"#),
        variant(r#""output_tokens":10"#, r#""output_tokens":10,"service_tier":"standard","cache_creation":null"#),
        variant(r#""type":"assistant","#, r#""costUSD":-0.25,"#),
        variant(r#""type":"assistant","#, r#""isApiErrorMessage":false,"stop_reason":null,"#),
        format!("{BASE}  \r"),
        r#"{"timestamp":"2025-06-01T10:00:00Z","message":{"usage":{"input_tokens":0,"output_tokens":0}}}"#.to_string(),
        // Text inside strings is not a key: no null rejection.
        variant(r#""type":"assistant","#, r#""text":"{\"id\":null}","list":["id",null],"#),
    ];
    for line in ok {
        assert!(parse(&line).is_ok(), "should accept: {line}");
    }
}

#[test]
fn rejected_variants_with_reasons() {
    use SkipReason::*;
    let cases: Vec<(String, SkipReason)> = vec![
        ("".into(), Blank),
        ("   ".into(), Blank),
        (
            r#"{"type":"user","message":{"content":"hi"}}"#.into(),
            NoUsage,
        ),
        (BASE.replace(r#""usage":{"#, r#""usage": {"#), NoUsage),
        (format!("{BASE}xyz"), InvalidJson),
        (format!("\u{feff}{BASE}"), InvalidJson),
        (BASE[..BASE.len() - 10].to_string(), InvalidJson),
        (format!("[{BASE}]"), NotUsageEntry),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:00.123456Z"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:00.1Z"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:00"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:00z"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01 10:00:00Z"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:00+0200"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-02-30T10:00:00Z"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01T24:00:00Z"),
            BadTimestamp,
        ),
        (
            variant("2025-06-01T10:00:00.000Z", "2025-06-01T10:00:60Z"),
            BadTimestamp,
        ),
        (
            variant(r#""2025-06-01T10:00:00.000Z""#, "null"),
            BadTimestamp,
        ),
        (
            variant(r#""input_tokens":100"#, r#""input_tokens":100.0"#),
            InvalidFields,
        ),
        (
            variant(r#""input_tokens":100"#, r#""input_tokens":-5"#),
            InvalidFields,
        ),
        (
            variant(r#""input_tokens":100"#, r#""input_tokens":"100""#),
            InvalidFields,
        ),
        (
            variant(r#""input_tokens":100"#, r#""input_tokens":1e2"#),
            InvalidFields,
        ),
        (variant(r#""input_tokens":100,"#, ""), InvalidFields),
        (
            variant(
                r#""output_tokens":10"#,
                r#""output_tokens":10,"speed":"turbo""#,
            ),
            InvalidFields,
        ),
        (
            variant(
                r#""output_tokens":10"#,
                r#""output_tokens":10,"cache_read_input_tokens":null"#,
            ),
            NullField,
        ),
        (
            variant(
                r#""output_tokens":10"#,
                r#""output_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":5.0}"#,
            ),
            InvalidFields,
        ),
        (
            variant(r#""model":"claude-sonnet-4-20250514""#, r#""model":null"#),
            NullField,
        ),
        (
            variant(r#""model":"claude-sonnet-4-20250514""#, r#""model":"""#),
            InvalidFields,
        ),
        (
            variant(r#""requestId":"r1""#, r#""requestId":null"#),
            NullField,
        ),
        (
            variant(r#""sessionId":"s1""#, r#""sessionId":"""#),
            InvalidFields,
        ),
        (
            variant(r#""type":"assistant","#, r#""version":"1.0","#),
            InvalidFields,
        ),
        (
            variant(r#""type":"assistant","#, r#""costUSD":"0.5","#),
            InvalidFields,
        ),
        (
            variant(r#""type":"assistant","#, r#""isSidechain":"yes","#),
            InvalidFields,
        ),
        (
            variant(r#""type":"assistant","#, r#""cwd":null,"#),
            NullField,
        ),
        (
            variant(r#""type":"assistant","#, r#""isApiErrorMessage":null,"#),
            NullField,
        ),
        // A rejecting key deep inside tool input still drops the line.
        (
            variant(
                r#""type":"assistant","#,
                r#""toolUseResult":{"a":[{"model": null}]},"#,
            ),
            NullField,
        ),
        (
            variant(r#""type":"assistant","#, r#""x":{"i\u0064":null},"#),
            NullField,
        ),
        (
            variant(
                r#""input_tokens":100"#,
                r#""input_tokens":100,"input_tokens":5"#,
            ),
            InvalidFields,
        ),
    ];
    for (line, reason) in cases {
        assert_eq!(parse(&line).err(), Some(reason), "line: {line}");
    }
}

#[test]
fn cache_creation_object_replaces_flat_count() {
    let line = variant(
        r#""output_tokens":10"#,
        r#""output_tokens":10,"cache_creation_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":300,"ephemeral_1h_input_tokens":200}"#,
    );
    let e = parse(&line).unwrap();
    assert_eq!(e.tokens.cache_creation_input_tokens, 500);
    assert_eq!(e.cache_creation_1h, 200);
    let empty = variant(
        r#""output_tokens":10"#,
        r#""output_tokens":10,"cache_creation_input_tokens":1000,"cache_creation":{}"#,
    );
    assert_eq!(parse(&empty).unwrap().tokens.cache_creation_input_tokens, 0);
    let flat = variant(
        r#""output_tokens":10"#,
        r#""output_tokens":10,"cache_creation_input_tokens":1000"#,
    );
    assert_eq!(
        parse(&flat).unwrap().tokens.cache_creation_input_tokens,
        1000
    );
}

#[test]
fn speed_and_sidechain() {
    let fast = variant(
        r#""output_tokens":10"#,
        r#""output_tokens":10,"speed":"fast""#,
    );
    let e = parse(&fast).unwrap();
    assert_eq!(e.speed, Some(Speed::Fast));
    assert_eq!(
        e.display_model().as_deref(),
        Some("claude-sonnet-4-20250514-fast")
    );
    let side = variant(r#""type":"assistant","#, r#""isSidechain":true,"#);
    assert!(parse(&side).unwrap().is_sidechain);
    assert_eq!(parse(BASE).unwrap().speed, None);
}

#[test]
fn usage_limit_reset_from_api_error_lines_only() {
    let err = r#"{"type":"assistant","isApiErrorMessage":true,"timestamp":"2025-06-01T11:00:00.000Z","message":{"id":"m9","model":"<synthetic>","content":[{"type":"text","text":"Claude AI usage limit reached. Try later|1748790000"}],"usage":{"input_tokens":0,"output_tokens":0}}}"#;
    let e = parse(err).unwrap();
    assert_eq!(e.usage_limit_reset.unwrap().as_second(), 1_748_790_000);
    assert_eq!(e.reportable_model(), None);
    let not_error = err.replace(
        r#""isApiErrorMessage":true"#,
        r#""isApiErrorMessage":false"#,
    );
    assert_eq!(parse(&not_error).unwrap().usage_limit_reset, None);
    let no_digits = err.replace("|1748790000", "|abc");
    assert_eq!(parse(&no_digits).unwrap().usage_limit_reset, None);
    let lower = err.replace("Claude AI", "claude ai");
    assert_eq!(parse(&lower).unwrap().usage_limit_reset, None);
}

#[test]
fn timestamps() {
    assert_eq!(
        parse_timestamp("2025-06-01T12:00:00.250+02:00")
            .unwrap()
            .to_string(),
        "2025-06-01T10:00:00.25Z"
    );
    assert!(parse_timestamp("2024-02-29T00:00:00Z").is_some());
    assert!(parse_timestamp("2025-02-29T00:00:00Z").is_none());
    assert!(parse_timestamp("2025-06-01T10:00:00+24:00").is_none());
    assert!(parse_timestamp("0001-01-01T00:00:00Z").is_some());
}

#[test]
fn versions() {
    for ok in ["2.0.14", "2.0.14-beta", "10.20.3x", "1.0.0"] {
        assert!(is_version(ok), "{ok}");
    }
    for bad in ["1.0", "abc", "", "1..0", "a.1.2", "1.0."] {
        assert!(!is_version(bad), "{bad}");
    }
}

#[test]
fn oversized_lines_parse_from_a_reader_with_the_same_rules() {
    let mut p = LineParser::new();
    let o = origin();
    let open = || Some(BASE.as_bytes());
    let e = p.parse_reader(BASE.as_bytes(), open, &o).unwrap();
    assert_eq!(e.tokens.input_tokens, 100);
    let nulled = variant(r#""type":"assistant","#, r#""cwd":null,"#);
    let open = || Some(nulled.as_bytes());
    assert_eq!(
        p.parse_reader(nulled.as_bytes(), open, &o).err(),
        Some(SkipReason::NullField)
    );
    let bad = format!("{BASE}x");
    let open = || Some(bad.as_bytes());
    assert_eq!(
        p.parse_reader(bad.as_bytes(), open, &o).err(),
        Some(SkipReason::InvalidJson)
    );
}

/// The prefilter's split search (the last KiB, then the rest) finds the
/// marker wherever it is, across the cut too, and nothing where it is not.
#[test]
fn the_usage_marker_is_found_wherever_it_sits() {
    let parser = LineParser::new();
    for len in [10usize, 2047, 2048, 2049, 3000, 70_000] {
        let cut = len.saturating_sub(1024);
        let mut places: Vec<usize> = (0..8).collect();
        places.extend(cut.saturating_sub(10)..cut + 10);
        places.extend(len.saturating_sub(USAGE_MARKER.len() + 8)..len);
        for at in places {
            let mut line = vec![b'x'; len];
            if at + USAGE_MARKER.len() <= len {
                line[at..at + USAGE_MARKER.len()].copy_from_slice(USAGE_MARKER);
            }
            let expected = line.windows(USAGE_MARKER.len()).any(|w| w == USAGE_MARKER);
            assert_eq!(
                parser.has_usage_marker(&line),
                expected,
                "len {len}, at {at}"
            );
        }
        assert!(!parser.has_usage_marker(&vec![b'x'; len]));
    }
}

proptest::proptest! {
    /// The byte scan accepts what "two all-digit parts, then a part that
    /// starts with a digit" (split on the first two dots) accepts.
    #[test]
    fn versions_read_by_bytes_as_by_parts(v in "[0-9.a-]{0,9}") {
        let mut parts = v.splitn(3, '.');
        let digits = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        let (a, b) = (parts.next(), parts.next());
        let want = digits(a)
            && digits(b)
            && parts
                .next()
                .is_some_and(|c| c.as_bytes().first().is_some_and(u8::is_ascii_digit));
        proptest::prop_assert_eq!(is_version(&v), want, "{}", v);
    }
}
