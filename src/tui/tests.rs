//! Dashboard snapshots: generated histories, a fixed clock, ratatui's
//! TestBackend. Each snapshot holds the screen text and the colour runs.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use clap::Parser as _;
use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::style::{Color, Modifier};

use super::source::{DataSource, InProcessSource};
use super::view::{self, ViewState};
use super::{Action, App};
use crate::app::{Context, Env};
use crate::cli::Cli;
use crate::config::TokenLimit;
use crate::engine::Settings;
use crate::engine::feed::TranscriptFeed;
use crate::engine::overview::{
    ActivityRow, ActivityState, DashboardData, OfficialBar, OfficialLimits,
};
use crate::period::Maxima;
use crate::synth::{SynthOptions, default_now, generate};

const TZ: &str = "Europe/Warsaw";

fn now() -> Timestamp {
    default_now()
}

struct Fixture {
    _dir: tempfile::TempDir,
    data: DashboardData,
}

fn context(claude: &Path, home: &Path, token_limit: Option<TokenLimit>) -> Settings {
    let cli = Cli::parse_from([
        "csm".as_ref(),
        "--claude-dir".as_ref(),
        claude.as_os_str(),
        "--timezone".as_ref(),
        TZ.as_ref(),
    ]);
    let env = Env {
        csm_home: Some(home.to_string_lossy().into_owned()),
        stdout_is_terminal: true,
        ..Env::default()
    };
    let mut ctx = Context::new(&cli, &env, now()).unwrap().settings;
    if let Some(l) = token_limit {
        ctx.config.token_limit = l;
    }
    ctx
}

/// A generated history (2 MiB, seed 4: its active window is a quarter of the
/// largest one) read through the in-process source.
fn fixture(active: bool, token_limit: Option<TokenLimit>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let claude = dir.path().join("claude");
    let home = dir.path().join("home");
    let mut opts = SynthOptions::new(4, 2 << 20, now());
    opts.active = active;
    generate(&claude, &opts).unwrap();
    let ctx = Arc::new(context(&claude, &home, token_limit));
    let feed = TranscriptFeed::new(Arc::clone(&ctx), Maxima::default());
    let mut source = InProcessSource::new(feed, ctx);
    let data = source.refresh(now()).unwrap().unwrap();
    // Nothing changed: the source says so.
    assert!(source.refresh(now()).unwrap().is_none());
    Fixture { _dir: dir, data }
}

fn active_data() -> &'static DashboardData {
    static F: OnceLock<Fixture> = OnceLock::new();
    &F.get_or_init(|| fixture(true, None)).data
}

fn waiting_data() -> &'static DashboardData {
    static F: OnceLock<Fixture> = OnceLock::new();
    &F.get_or_init(|| fixture(false, None)).data
}

fn over_limit_data() -> &'static DashboardData {
    static F: OnceLock<Fixture> = OnceLock::new();
    &F.get_or_init(|| fixture(true, Some(TokenLimit::Fixed(2_000_000))))
        .data
}

fn tz() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(TZ).unwrap()
}

fn draw(data: Option<&DashboardData>, w: u16, h: u16, color: bool, help: bool) -> Buffer {
    let tz = tz();
    let vs = ViewState {
        account: None,
        data,
        now: now(),
        tz: &tz,
        source_label: "in-process",
        color,
        help,
        status: None,
    };
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::render(f.area(), f.buffer_mut(), &vs))
        .unwrap();
    term.backend().buffer().clone()
}

/// Screen text, then each line's runs of non-default foreground colour or bold.
fn screen(buf: &Buffer) -> String {
    let mut out = view::buffer_to_text(buf, false);
    out.push_str("--- colours ---\n");
    for y in 0..buf.area.height {
        let mut runs: Vec<String> = Vec::new();
        let mut x = 0;
        while x < buf.area.width {
            let c = &buf[(x, y)];
            let key = (c.fg, c.modifier.contains(Modifier::BOLD));
            let start = x;
            while x < buf.area.width {
                let d = &buf[(x, y)];
                if (d.fg, d.modifier.contains(Modifier::BOLD)) != key {
                    break;
                }
                x += 1;
            }
            if key != (Color::Reset, false) {
                let bold = if key.1 { " bold" } else { "" };
                runs.push(format!("{start}-{} {:?}{bold}", x - 1, key.0));
            }
        }
        if !runs.is_empty() {
            out.push_str(&format!("{y:>2}: {}\n", runs.join(", ")));
        }
    }
    out
}

fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let text = view::buffer_to_text(buf, false);
    text.lines().enumerate().find_map(|(y, l)| {
        l.find(needle)
            .map(|bx| (l[..bx].chars().count() as u16, y as u16))
    })
}

#[test]
fn active_window_100x30() {
    let d = active_data();
    let a = d
        .active
        .as_ref()
        .expect("generated history ends in an active window");
    let buf = draw(Some(d), 100, 30, true, false);
    let text = view::buffer_to_text(&buf, false);
    // The numbers come from the same blocks `csm blocks --json --active` prints.
    let tokens = crate::report::format::thousands(a.block.total_tokens());
    assert!(text.contains(&tokens), "{text}");
    assert!(text.contains("left · resets"), "{text}");
    assert!(text.contains("Sessions "), "{text}");
    insta::assert_snapshot!(screen(&buf));
}

#[test]
fn active_window_60x15() {
    let buf = draw(Some(active_data()), 60, 15, true, false);
    let text = view::buffer_to_text(&buf, false);
    for must in ["Tokens", "Reset", "Sessions", "q quit"] {
        assert!(text.contains(must), "{must} missing at 60x15:\n{text}");
    }
    insta::assert_snapshot!(screen(&buf));
}

#[test]
fn waiting_screen() {
    let d = waiting_data();
    assert!(d.active.is_none());
    let buf = draw(Some(d), 100, 30, true, false);
    let text = view::buffer_to_text(&buf, false);
    assert!(text.contains("Waiting for a new session"), "{text}");
    insta::assert_snapshot!(screen(&buf));
}

#[test]
fn over_limit_is_red() {
    let d = over_limit_data();
    let a = d.active.as_ref().unwrap();
    assert!(
        a.block.total_tokens() > 2_000_000,
        "fixture must exceed the limit"
    );
    let buf = draw(Some(d), 100, 30, true, false);
    // The token bar (the row under the Tokens line) is filled in red.
    let (_, y) = find(&buf, "Tokens").unwrap();
    // Column 2: after the border and one column of padding.
    let x = 2;
    assert_eq!(buf[(x, y + 1)].symbol(), "█");
    assert_eq!(buf[(x, y + 1)].fg, Color::Red);
    let (ox, oy) = find(&buf, "OVER").unwrap();
    assert_eq!(buf[(ox, oy)].fg, Color::Red);
    insta::assert_snapshot!(screen(&buf));
}

#[test]
fn no_color_has_no_colours() {
    let buf = draw(Some(over_limit_data()), 100, 30, false, false);
    for c in buf.content() {
        assert_eq!((c.fg, c.bg), (Color::Reset, Color::Reset));
        assert!(c.modifier.is_empty());
    }
    insta::assert_snapshot!(screen(&buf));
}

fn activity_row(project: &str, state: ActivityState, since: &str) -> ActivityRow {
    ActivityRow {
        session_id: format!("{project}-session"),
        project: project.into(),
        cwd: Some(format!("/home/dev/{project}")),
        state,
        since: since.parse().unwrap(),
        last_event: "Stop".into(),
        last_event_at: since.parse().unwrap(),
    }
}

#[test]
fn official_limits_and_activity_panes() {
    let mut d = active_data().clone();
    // A fixed limit that puts the window in the yellow band.
    d.limit = crate::period::ResolvedLimit {
        tokens: Some(4_000_000),
        source: crate::period::LimitSource::Fixed,
    };
    d.official = Some(OfficialLimits {
        five_hour: Some(OfficialBar {
            used_percent: 42.0,
            resets_at: d.active.as_ref().map(|a| a.block.end),
        }),
        seven_day: Some(OfficialBar {
            used_percent: 86.5,
            resets_at: Some("2026-11-23T08:00:00Z".parse().unwrap()),
        }),
        captured_at: "2026-11-20T16:38:00Z".parse().unwrap(),
    });
    d.activity = Some(vec![
        activity_row(
            "claude-session-monitor",
            ActivityState::Active,
            "2026-11-20T16:37:00Z",
        ),
        activity_row(
            "website",
            ActivityState::WaitingForYou,
            "2026-11-20T16:28:00Z",
        ),
        activity_row(
            "old-experiment",
            ActivityState::Idle,
            "2026-11-20T15:10:00Z",
        ),
    ]);
    let big = draw(Some(&d), 100, 30, true, false);
    insta::assert_snapshot!("panes_100x30", screen(&big));
    // At 60x15 the panes give way to the essentials.
    let small = draw(Some(&d), 60, 15, true, false);
    let text = view::buffer_to_text(&small, false);
    for must in ["Tokens", "Reset", "Sessions"] {
        assert!(text.contains(must), "{text}");
    }
    // Stale after 10 minutes without a capture.
    if let Some(o) = d.official.as_mut() {
        o.captured_at = "2026-11-20T16:20:00Z".parse().unwrap();
    }
    let stale_buf = draw(Some(&d), 100, 30, true, false);
    let stale = view::buffer_to_text(&stale_buf, false);
    assert!(stale.contains("stale"), "{stale}");
    insta::assert_snapshot!("panes_stale_100x30", screen(&stale_buf));
    // Two sessions of one project are told apart; the waiting screen shows
    // the panes too.
    let mut w = waiting_data().clone();
    w.official = d.official.clone();
    let mut twin = activity_row("website", ActivityState::Active, "2026-11-20T16:39:00Z");
    twin.session_id = "0b7e9d1c-2f3a".into();
    w.activity = d.activity.clone().map(|mut v| {
        v.push(twin);
        v
    });
    let waiting = draw(Some(&w), 100, 30, false, false);
    let text = view::buffer_to_text(&waiting, false);
    assert!(text.contains("website (0b7e9d1c)"), "{text}");
    insta::assert_snapshot!("panes_waiting_100x30", text);
}

#[test]
fn help_and_loading_screens() {
    let help = draw(Some(active_data()), 60, 15, false, true);
    insta::assert_snapshot!("help_60x15", view::buffer_to_text(&help, false));
    let loading = draw(None, 60, 15, false, false);
    assert!(view::buffer_to_text(&loading, false).contains("Reading Claude Code transcripts"));
}

#[test]
fn tiny_and_huge_terminals_do_not_panic() {
    for (w, h) in [(1, 1), (10, 3), (30, 8), (59, 14), (300, 100)] {
        draw(Some(active_data()), w, h, true, true);
        draw(Some(waiting_data()), w, h, true, false);
    }
}

#[test]
fn once_frame_is_plain_text_without_escape_codes() {
    let d = active_data();
    let tz = tz();
    let vs = ViewState {
        account: None,
        data: Some(d),
        now: now(),
        tz: &tz,
        source_label: "in-process",
        color: false,
        help: false,
        status: None,
    };
    let h = view::natural_height(&vs, 100);
    let area = ratatui::layout::Rect::new(0, 0, 100, h);
    let mut buf = Buffer::empty(area);
    view::render(area, &mut buf, &vs);
    let text = view::buffer_to_text(&buf, false);
    assert!(!text.contains('\x1b'));
    assert!(text.lines().last().unwrap().contains("q quit"));
    let colored = view::buffer_to_text(&buf, true);
    assert!(colored.contains("\x1b["));
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent {
        code,
        modifiers,
        kind: KeyEventKind::Press,
        state: ratatui::crossterm::event::KeyEventState::NONE,
    }
}

#[test]
fn keys() {
    let mut app = App::new("in-process".into());
    let none = KeyModifiers::NONE;
    assert_eq!(app.on_key(key(KeyCode::Char('q'), none)), Action::Quit);
    assert_eq!(
        app.on_key(key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Action::Quit
    );
    assert_eq!(app.on_key(key(KeyCode::Char('?'), none)), Action::Redraw);
    assert!(app.help);
    // Esc closes the help first, then quits.
    assert_eq!(app.on_key(key(KeyCode::Esc, none)), Action::Redraw);
    assert!(!app.help);
    assert_eq!(app.on_key(key(KeyCode::Esc, none)), Action::Quit);
    assert_eq!(
        app.on_key(key(KeyCode::Char('r'), none)),
        Action::Recalculate
    );
    assert!(app.status.is_some());
    assert_eq!(app.on_key(key(KeyCode::Char('x'), none)), Action::None);
    let mut release = key(KeyCode::Char('q'), none);
    release.kind = KeyEventKind::Release;
    assert_eq!(app.on_key(release), Action::None);
}

#[test]
fn source_recomputes_when_the_window_ends_without_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let claude = dir.path().join("claude");
    let mut opts = SynthOptions::new(3, 1 << 20, now());
    opts.garbage = false;
    generate(&claude, &opts).unwrap();
    let ctx = Arc::new(context(&claude, &dir.path().join("home"), None));
    let feed = TranscriptFeed::new(Arc::clone(&ctx), Maxima::default());
    let mut source = InProcessSource::new(feed, ctx);
    let first = source.refresh(now()).unwrap().unwrap();
    let a = first.active.as_ref().expect("a current window");
    // While the window runs the figures are recomputed every minute (the
    // pace slides); then at its end.
    let tick = first.valid_until.unwrap();
    assert_eq!(
        tick,
        now()
            .checked_add(crate::engine::overview::PACE_REFRESH)
            .unwrap()
    );
    assert!(source.refresh(now()).unwrap().is_none());
    let until = crate::engine::overview::window_end(&a.block, crate::blocks::window_length(5.0));
    let later = source.refresh(until).unwrap().unwrap();
    assert!(later.active.is_none(), "the window is over at {until}");
    assert_eq!(later.period.sessions.used, first.period.sessions.used);
    // `r` forces a full re-read even when nothing changed.
    assert!(source.refresh(until).unwrap().is_none());
    source.recalculate();
    assert!(source.refresh(until).unwrap().is_some());
}

#[test]
fn model_shares_add_up() {
    let a = active_data().active.as_ref().unwrap();
    assert!(!a.models.is_empty());
    let sum: f64 = a.models.iter().map(|m| m.share).sum();
    assert!((sum - 1.0).abs() < 1e-9);
    let tokens: u64 = a.models.iter().map(|m| m.tokens).sum();
    assert!(tokens <= a.block.total_tokens());
}

mod alerts {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use jiff::Timestamp;

    use super::context;
    use crate::blocks::Block;
    use crate::domain::TokenCounts;
    use crate::engine::feed::UsageFeed;
    use crate::notify::hook::AlertHook;
    use crate::notify::{Backend, BackendError, Notifier, RuleSettings};
    use crate::period::Maxima;
    use crate::tui::source::{DataSource, InProcessSource};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// One window 12:00–17:00Z, last entry 16:00Z; fails while `failing` > 0.
    struct Feed {
        failing: Arc<AtomicU32>,
    }

    impl UsageFeed for Feed {
        fn update(&mut self, _force: bool, _now: Timestamp) -> anyhow::Result<bool> {
            if self.failing.load(Ordering::SeqCst) > 0 {
                self.failing.fetch_sub(1, Ordering::SeqCst);
                anyhow::bail!("transcripts unreadable");
            }
            Ok(true)
        }
        fn blocks(&self, _now: Timestamp) -> (Vec<Block>, crate::engine::overview::CurrentDetail) {
            let mut b = Block::gap(t("2026-11-20T12:00:00Z"), t("2026-11-20T17:00:00Z"));
            b.is_gap = false;
            b.first_entry = Some(t("2026-11-20T12:05:00Z"));
            b.actual_end = Some(t("2026-11-20T16:00:00Z"));
            b.entries = 2;
            b.tokens = TokenCounts {
                input_tokens: 500,
                ..Default::default()
            };
            (vec![b], Default::default())
        }
        fn kept_maxima(&self) -> Maxima {
            Maxima {
                tokens: 1000,
                cost_usd: 0.0,
            }
        }
    }

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Backend for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn send(&self, title: &str, _body: &str) -> Result<String, BackendError> {
            self.0.lock().unwrap().push(title.to_string());
            Ok(String::new())
        }
        fn check(&self) -> Result<String, BackendError> {
            Ok(String::new())
        }
    }

    #[test]
    fn the_dashboard_sends_only_while_no_daemon_runs_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Arc::new(context(
            &dir.path().join("claude"),
            &dir.path().join("csm"),
            None,
        ));
        let rec = Recorder::default();
        let daemon = Arc::new(AtomicBool::new(true));
        let failing = Arc::new(AtomicU32::new(0));
        let make = |daemon: Arc<AtomicBool>| {
            let notifier = Notifier::new(
                RuleSettings::new(&ctx.config.alerts, jiff::tz::TimeZone::UTC),
                vec![Box::new(rec.clone())],
                Some(dir.path().join("csm")),
            );
            InProcessSource::new(
                Feed {
                    failing: Arc::clone(&failing),
                },
                Arc::clone(&ctx),
            )
            .with_alerts(AlertHook::new(notifier, move || {
                daemon.load(Ordering::SeqCst)
            }))
        };
        let mut source = make(Arc::clone(&daemon));
        let now = t("2026-11-20T16:40:00Z");
        source.refresh(now).unwrap();
        assert!(rec.0.lock().unwrap().is_empty(), "a daemon runs: it sends");

        daemon.store(false, Ordering::SeqCst);
        source.refresh(now).unwrap();
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![
                "Claude window ends in 20 min (17:00) — 50 % used",
                "Claude idle for 40 min — 20 min left in this window",
            ]
        );
        // Later ticks, and a second dashboard on the same store, add nothing.
        source.refresh(t("2026-11-20T16:41:00Z")).unwrap();
        let mut second = make(Arc::new(AtomicBool::new(false)));
        second.refresh(t("2026-11-20T16:42:00Z")).unwrap();
        assert_eq!(rec.0.lock().unwrap().len(), 2);

        // Five failed refreshes in a row: the source alert, once.
        failing.store(7, Ordering::SeqCst);
        for i in 0..7 {
            assert!(source.refresh(t("2026-11-20T16:43:00Z")).is_err(), "{i}");
        }
        let shown = rec.0.lock().unwrap().clone();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert_eq!(shown[2], "csm cannot read Claude Code usage");
    }
}

/// 45 minutes after the last entry the Now screen says idle and projects
/// nothing; a minute after it, it showed the pace and the limit.
#[test]
fn idle_for_45_minutes_shows_idle_and_no_projection() {
    let d = active_data();
    let a = d.active.as_ref().unwrap();
    let last = a.block.actual_end.unwrap();
    let tz = tz();
    let frame = |at: Timestamp| {
        let vs = ViewState {
            account: None,
            data: Some(d),
            now: at,
            tz: &tz,
            source_label: "live from transcripts",
            color: false,
            help: false,
            status: None,
        };
        let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
        term.draw(|f| view::render(f.area(), f.buffer_mut(), &vs))
            .unwrap();
        view::buffer_to_text(term.backend().buffer(), false)
    };
    let busy = frame(
        last.checked_add(jiff::SignedDuration::from_mins(1))
            .unwrap(),
    );
    assert!(busy.contains("tok/min incl. cache"), "{busy}");
    assert!(busy.contains("at this pace"), "{busy}");
    assert!(!busy.contains("idle"), "{busy}");
    let idle = frame(
        last.checked_add(jiff::SignedDuration::from_mins(45))
            .unwrap(),
    );
    assert!(idle.contains("idle 45m · nothing projected"), "{idle}");
    assert!(!idle.contains("at this pace"), "{idle}");
    assert!(!idle.contains("limit at"), "{idle}");
}

/// The window's alerts are listed with their time, loudest in red.
#[test]
fn the_windows_alerts_are_listed_with_their_time_and_severity() {
    let mut d = active_data().clone();
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    d.alerts = vec![
        crate::engine::overview::AlertRow {
            sent_at: at("2026-11-20T16:30:00Z"),
            title: "Claude window at 95 % of your limit".into(),
            severity: crate::engine::overview::Severity::Critical,
        },
        crate::engine::overview::AlertRow {
            sent_at: at("2026-11-20T16:10:00Z"),
            title: "Claude idle for 10 min".into(),
            severity: crate::engine::overview::Severity::Info,
        },
    ];
    let buf = draw(Some(&d), 100, 30, true, false);
    let text = view::buffer_to_text(&buf, false);
    assert!(
        text.contains("Alerts   17:30 Claude window at 95 % of your limit"),
        "{text}"
    );
    assert!(
        text.contains("         17:10 Claude idle for 10 min"),
        "{text}"
    );
    let (x, y) = find(&buf, "Claude window at 95").unwrap();
    assert_eq!(buf[(x + 2, y)].fg, Color::Red);
    let (x, y) = find(&buf, "Claude idle").unwrap();
    assert_eq!(buf[(x + 2, y)].fg, Color::Reset);
    assert_eq!(
        crate::engine::overview::Severity::of("limit", "limit:5h:2026-11-20T21:00:00Z:95"),
        crate::engine::overview::Severity::Critical
    );
    assert_eq!(
        crate::engine::overview::Severity::of("limit", "limit:window:2026-11-20T16:00:00Z:80"),
        crate::engine::overview::Severity::Warning
    );
}
