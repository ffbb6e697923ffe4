//! The live dashboard: terminal handling, the event loop and the
//! worker thread that refreshes data, around the pure [`view`] and the
//! engine's figures (`engine::overview`).
//!
//! The data source runs on its own thread so that a slow refresh (a full
//! transcript re-read until the store lands) never delays keys, resizes or
//! the clock. The screen is redrawn through ratatui's diffing: only cells that
//! changed are written, the terminal is never cleared.

pub mod source;
pub mod view;

#[cfg(test)]
mod tests;

use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::Rect;

use self::source::DataSource;
use self::view::{Status, ViewState};
pub use crate::engine::Clock;
use crate::engine::overview::DashboardData;

/// How the dashboard runs.
pub struct Options {
    /// How often the source is asked for new data.
    pub refresh: Duration,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Display time zone.
    pub tz: TimeZone,
    /// Whether to draw with colours.
    pub color: bool,
    /// Titles of alerts the refresh thread sent: the screen rings the bell
    /// and shows the newest (the bell backend fills it).
    pub alerts: Option<AlertQueue>,
}

/// Alerts waiting to be rung on the terminal.
pub type AlertQueue = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Key and data handling, separate from the terminal so it can be tested.
pub struct App {
    /// The latest data; `None` until the first refresh.
    pub data: Option<DashboardData>,
    /// Whether the help overlay is open.
    pub help: bool,
    /// The status line: `(is_error, text)`; cleared by new data.
    pub status: Option<(bool, String)>,
    /// The newest alert rung in this session: shown while no other status
    /// line is, and kept across data refreshes (sending one changes the data).
    pub alert: Option<String>,
    /// Where the data comes from, shown in the frame.
    pub label: String,
    /// The account shown, when the source covers several.
    pub account: Option<String>,
}

/// What the event loop should do after a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Draw again.
    Redraw,
    /// Leave the dashboard.
    Quit,
    /// Drop caches and re-read everything (`r`).
    Recalculate,
    /// Show the next account (`a`).
    NextAccount,
}

impl App {
    /// An app with no data yet; `label` names the data source.
    pub fn new(label: String) -> App {
        App {
            data: None,
            help: false,
            status: None,
            alert: None,
            label,
            account: None,
        }
    }

    /// Handles one key press: `q`/Esc/Ctrl-C quit, `?` toggles help, `r` re-reads.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind != KeyEventKind::Press {
            return Action::None;
        }
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        match key.code {
            _ if ctrl_c => Action::Quit,
            KeyCode::Char('q') | KeyCode::Char('Q') => Action::Quit,
            // Esc first closes the help, then quits.
            KeyCode::Esc if self.help => {
                self.help = false;
                Action::Redraw
            }
            KeyCode::Esc => Action::Quit,
            KeyCode::Char('?') => {
                self.help = !self.help;
                Action::Redraw
            }
            KeyCode::Char('r') | KeyCode::Char('R') => {
                self.status = Some((false, "re-reading usage…".into()));
                Action::Recalculate
            }
            KeyCode::Char('a') | KeyCode::Char('A') if self.account.is_some() => {
                self.status = Some((false, "next account…".into()));
                Action::NextAccount
            }
            KeyCode::Char('a') | KeyCode::Char('A') => {
                self.status = Some((
                    false,
                    "one account: configure several with [[accounts]] to switch".into(),
                ));
                Action::Redraw
            }
            _ => Action::None,
        }
    }

    /// Takes new data and clears the status line.
    pub fn on_data(&mut self, d: DashboardData) {
        self.data = Some(d);
        self.status = None;
    }

    /// Shows a refresh error in the status line.
    pub fn on_error(&mut self, e: String) {
        self.status = Some((true, format!("refresh failed: {e}")));
    }

    /// What the next frame shows.
    pub fn view<'a>(&'a self, now: Timestamp, tz: &'a TimeZone, color: bool) -> ViewState<'a> {
        ViewState {
            data: self.data.as_ref(),
            now,
            tz,
            source_label: &self.label,
            color,
            help: self.help,
            account: self.account.as_deref(),
            status: match (&self.status, &self.alert) {
                (Some((true, s)), _) => Some(Status::Error(s.as_str())),
                (Some((false, s)), _) => Some(Status::Info(s.as_str())),
                (None, Some(a)) => Some(Status::Info(a.as_str())),
                (None, None) => None,
            },
        }
    }
}

/// Renders one frame of `width` columns (as tall as it needs) into text: what
/// `csm monitor --once` prints.
pub fn render_once(
    source: &mut dyn DataSource,
    opts: &Options,
    width: u16,
    ansi: bool,
) -> Result<String> {
    let now = opts.clock.now();
    let data = source.refresh(now)?;
    // After the refresh: a daemon's version is known once its file was read.
    let mut app = App::new(source.label());
    app.account = source.account();
    if let Some(d) = data {
        app.on_data(d);
    }
    let vs = app.view(now, &opts.tz, ansi && opts.color);
    let width = width.max(40);
    let area = Rect::new(0, 0, width, view::natural_height(&vs, width));
    let mut buf = Buffer::empty(area);
    view::render(area, &mut buf, &vs);
    Ok(view::buffer_to_text(&buf, ansi && opts.color))
}

/// What the screen's loop waits for: the refresh thread's data, and keys
/// from the input thread.
enum Msg {
    Data(Box<DashboardData>),
    Error(String),
    /// The data source changed (a daemon started or stopped), or the
    /// account shown.
    Label(String, Option<String>),
    Input(Event),
    /// The terminal went away (hang-up, end of input, read error).
    TerminalGone(&'static str),
}

enum ToWorker {
    Recalculate,
    NextAccount,
}

/// How often the screen's loop wakes without a message: the clock, a signal
/// and a vanished terminal are all noticed within this.
const TICK: Duration = Duration::from_millis(250);

/// Why the dashboard stopped when the user did not ask for it.
fn stop_reason(stop: &AtomicBool, input: &crate::sys::TerminalInput) -> Option<&'static str> {
    if stop.load(Ordering::Relaxed) {
        return Some("stopped by a signal");
    }
    input.is_gone()
}

/// Runs the interactive dashboard until the user quits, the terminal goes
/// away or a signal asks it to stop (all of which end it with success).
pub fn run(mut source: Box<dyn DataSource>, opts: Options) -> Result<()> {
    let label = source.label();
    let account = source.account();
    let (tx, rx) = mpsc::channel::<Msg>();
    let (to_worker, from_ui) = mpsc::channel::<ToWorker>();
    let clock = opts.clock;
    let refresh = opts.refresh;
    let to_ui = tx.clone();
    std::thread::Builder::new()
        .name("csm-refresh".into())
        .spawn(move || worker(&mut *source, clock, refresh, &from_ui, &to_ui))
        .context("cannot start the refresh thread")?;

    install_panic_hook();
    let stop = stop_on_signals();
    // One handle for both threads: the input thread reads keys from it; this
    // loop also asks it each tick whether the terminal is gone, in case the
    // input thread is caught inside crossterm's reader when it goes.
    let input =
        std::sync::Arc::new(crate::sys::TerminalInput::open().context("cannot open the terminal")?);
    let _guard = TerminalGuard::enter().context("cannot set up the terminal")?;
    let keys = std::sync::Arc::clone(&input);
    std::thread::Builder::new()
        .name("csm-input".into())
        .spawn(move || input_reader(&keys, &tx))
        .context("cannot start the input thread")?;
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let mut app = App::new(label);
    app.account = account;
    let mut dirty = true;
    let mut drawn_second = i64::MIN;
    let resized = on_signal(&[
        #[cfg(unix)]
        signal_hook::consts::SIGWINCH,
    ]);
    loop {
        if let Some(why) = stop_reason(&stop, &input) {
            tracing::info!("{why}");
            break;
        }
        let now = clock.now();
        // Resizes come as SIGWINCH here, not from crossterm's event source,
        // which the input thread only asks once the terminal has input.
        if resized.swap(false, Ordering::Relaxed) {
            dirty = true;
        }
        if dirty || now.as_second() != drawn_second {
            let vs = app.view(now, &opts.tz, opts.color);
            if let Err(e) = term.draw(|f| view::render(f.area(), f.buffer_mut(), &vs)) {
                // A terminal that went away fails the write: that is a hang-up.
                if let Some(why) = stop_reason(&stop, &input) {
                    tracing::info!("{why} ({e})");
                    break;
                }
                return Err(e.into());
            }
            dirty = false;
            drawn_second = now.as_second();
        }
        let first = match rx.recv_timeout(TICK) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the refresh thread stopped"),
        };
        let mut quit = false;
        for msg in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            match msg {
                Msg::Input(Event::Key(k)) => match app.on_key(k) {
                    Action::Quit => quit = true,
                    Action::Recalculate => {
                        dirty = true;
                        if to_worker.send(ToWorker::Recalculate).is_err() {
                            bail!("the refresh thread stopped");
                        }
                    }
                    Action::NextAccount => {
                        dirty = true;
                        if to_worker.send(ToWorker::NextAccount).is_err() {
                            bail!("the refresh thread stopped");
                        }
                    }
                    Action::Redraw => dirty = true,
                    Action::None => {}
                },
                // Terminal::draw resizes its buffers and repaints everything.
                Msg::Input(Event::Resize(..)) => dirty = true,
                Msg::Input(_) => {}
                Msg::TerminalGone(why) => {
                    tracing::info!("{why}");
                    quit = true;
                }
                Msg::Data(d) => {
                    app.on_data(*d);
                    dirty = true;
                }
                Msg::Label(l, account) => {
                    app.label = l;
                    app.account = account;
                    dirty = true;
                }
                Msg::Error(e) => {
                    tracing::warn!("refresh failed: {e}");
                    app.on_error(e);
                    dirty = true;
                }
            }
        }
        if quit {
            break;
        }
        // Rung from this thread, between two draws, so the bell never lands
        // inside an escape sequence of a frame.
        let rung = opts
            .alerts
            .as_ref()
            .and_then(|q| q.lock().ok().map(|mut v| std::mem::take(&mut *v)))
            .unwrap_or_default();
        if let Some(last) = rung.last() {
            app.alert = Some(format!("alert: {last}"));
            dirty = true;
            let mut out = io::stdout();
            let _ = out.write_all(b"\x07");
            let _ = out.flush();
        }
    }
    drop(term);
    Ok(())
}

/// Reads keys for the screen. It waits on the terminal itself and hands
/// crossterm only input that is there, so a terminal that hangs up (or hits
/// end of file) ends the thread instead of spinning in crossterm's reader.
fn input_reader(input: &crate::sys::TerminalInput, tx: &mpsc::Sender<Msg>) {
    use crate::sys::Readiness;
    // Readable yet no event, many times in a row: input that never completes
    // an event is end of file in disguise.
    const EMPTY_LIMIT: u32 = 64;
    let mut empty = 0u32;
    loop {
        // Long: a hang-up ends the wait at once, and nothing else needs this
        // thread awake (it goes with the process).
        match input.wait(Duration::from_secs(3600)) {
            Readiness::Gone(why) => {
                let _ = tx.send(Msg::TerminalGone(why));
                return;
            }
            Readiness::Timeout => continue,
            Readiness::Readable => {}
        }
        match event::poll(Duration::ZERO) {
            Ok(true) => {
                empty = 0;
                match event::read() {
                    Ok(ev) => {
                        if tx.send(Msg::Input(ev)).is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        let _ = tx.send(Msg::TerminalGone("cannot read the terminal"));
                        return;
                    }
                }
            }
            Ok(false) => {
                empty += 1;
                if empty >= EMPTY_LIMIT {
                    let _ = tx.send(Msg::TerminalGone("the terminal's input ended"));
                    return;
                }
                // Half an escape sequence: give the rest a moment to arrive.
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => {
                let _ = tx.send(Msg::TerminalGone("cannot read the terminal"));
                return;
            }
        }
    }
}

fn worker(
    source: &mut dyn DataSource,
    clock: Clock,
    every: Duration,
    from_ui: &mpsc::Receiver<ToWorker>,
    to_ui: &mpsc::Sender<Msg>,
) {
    // A snapshot source checks its file more often than data is recomputed.
    let every = source.poll_interval().map_or(every, |p| p.min(every));
    let mut label = (source.label(), source.account());
    let mut next = Instant::now();
    loop {
        match from_ui.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(ToWorker::Recalculate) => source.recalculate(),
            Ok(ToWorker::NextAccount) => source.next_account(),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let started = Instant::now();
        let msg = match source.refresh(clock.now()) {
            Ok(Some(d)) => Some(Msg::Data(Box::new(d))),
            Ok(None) => None,
            Err(e) => Some(Msg::Error(format!("{e:#}"))),
        };
        tracing::debug!(
            us = started.elapsed().as_micros() as u64,
            changed = msg.is_some(),
            "refresh"
        );
        let now_label = (source.label(), source.account());
        if now_label != label {
            label = now_label;
            if to_ui
                .send(Msg::Label(label.0.clone(), label.1.clone()))
                .is_err()
            {
                return;
            }
        }
        if let Some(m) = msg
            && to_ui.send(m).is_err()
        {
            return;
        }
        next = Instant::now() + every;
    }
}

/// A flag raised by SIGTERM, SIGHUP or SIGINT (raw mode turns Ctrl-C into a
/// key, so SIGINT only comes from `kill`): the loop then exits normally and
/// the guard restores the terminal instead of the process dying in raw mode
/// on the alternate screen.
fn stop_on_signals() -> std::sync::Arc<AtomicBool> {
    on_signal(&[
        #[cfg(unix)]
        signal_hook::consts::SIGTERM,
        #[cfg(unix)]
        signal_hook::consts::SIGHUP,
        #[cfg(unix)]
        signal_hook::consts::SIGINT,
    ])
}

/// A flag raised whenever one of `signals` arrives.
fn on_signal(signals: &[i32]) -> std::sync::Arc<AtomicBool> {
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    for &sig in signals {
        if let Err(e) = signal_hook::flag::register(sig, std::sync::Arc::clone(&flag)) {
            tracing::warn!("cannot watch signal {sig}: {e}");
        }
    }
    #[cfg(not(unix))]
    let _ = signals;
    flag
}

/// Set while the terminal is in raw mode on the alternate screen, so the
/// panic hook and the guard restore it exactly once.
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);

struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(TerminalGuard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Leaves the alternate screen, shows the cursor and ends raw mode; safe to
/// call more than once and from the panic hook.
pub fn restore_terminal() {
    if TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        // Errors are ignored: this runs while exiting or panicking, when
        // nothing better can be done than trying every step.
        let _ = terminal::disable_raw_mode();
        let _ = execute!(out, terminal::LeaveAlternateScreen, cursor::Show);
        let _ = out.flush();
    }
}

/// Restores the terminal before the default hook prints the panic, so the
/// message lands on the normal screen and the shell is usable afterwards.
fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
}
