//! Drawing one dashboard frame into a ratatui buffer: a pure function
//! of the data, the clock and the terminal size, so snapshots can test it.
//!
//! Layout: a bordered box with the title and clock on the top edge and the
//! key hints on the bottom edge; inside, sections chosen by priority to fit
//! the height (tokens and reset first, activity last), then the compressed
//! period footer.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::blocks::PaceBasis;
use crate::engine::overview::{
    ActiveWindow, AlertRow, DashboardData, OfficialBar, OfficialLimits, Severity,
};
use crate::report::format::{Level, compact, duration_minutes, short_model, thousands, usd};

/// What one frame shows.
pub struct ViewState<'a> {
    /// `None` until the first data arrived.
    pub data: Option<&'a DashboardData>,
    /// The instant the frame describes.
    pub now: Timestamp,
    /// Display time zone for clock times.
    pub tz: &'a TimeZone,
    /// `live from transcripts`, `from the daemon vX`.
    pub source_label: &'a str,
    /// Whether to draw with colours.
    pub color: bool,
    /// Whether the help overlay (`?`) is open.
    pub help: bool,
    /// A transient line above the footer: "re-reading…", a refresh error.
    pub status: Option<Status<'a>>,
    /// The account shown, when the dashboard covers several (`a` switches).
    pub account: Option<&'a str>,
}

/// A transient line shown above the footer.
#[derive(Clone, Copy, Debug)]
pub enum Status<'a> {
    /// Information, drawn dim.
    Info(&'a str),
    /// An error, drawn bold red when colours are on.
    Error(&'a str),
}

/// Label column width: "Official " etc.
const LABEL: usize = 9;

#[derive(Clone, Copy)]
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// Green, yellow, red by [`Level`].
    fn level(self, percent: f64) -> Style {
        self.fg(match Level::of(percent) {
            Level::Ok => Color::Green,
            Level::Warning => Color::Yellow,
            Level::Critical => Color::Red,
        })
    }

    fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    fn label(self) -> Style {
        self.fg(Color::Cyan)
    }

    fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    fn bad(self) -> Style {
        if self.color {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    }

    fn strong(self) -> Style {
        if self.color {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    }
}

/// Draws the frame into `area` of `buf`.
pub fn render(area: Rect, buf: &mut Buffer, st: &ViewState<'_>) {
    let theme = Theme { color: st.color };
    let narrow = area.width < 80;
    let clock = st.now.to_zoned_datetime(st.tz.clone());
    let mut right = format!(" {} ", clock.strftime("%H:%M:%S %Z"));
    if area.width >= 50 {
        right = format!(" {} · {} ", clock.strftime("%H:%M:%S %Z"), st.source_label);
    }
    let keys = match (narrow, st.account.is_some()) {
        (true, false) => " q quit · r re-read · ? help ",
        (false, false) => " q quit · r re-read usage · ? help ",
        (true, true) => " q quit · a account · ? help ",
        (false, true) => " q quit · a next account · r re-read usage · ? help ",
    };
    let title = match st.account {
        Some(a) => format!(" csm · {a} "),
        None => " csm ".to_string(),
    };
    let frame = Block::new()
        .borders(Borders::ALL)
        .border_style(theme.dim())
        .title_top(Line::from(Span::styled(title, theme.strong())))
        .title_top(Line::from(Span::styled(right, theme.label())).alignment(Alignment::Right))
        .title_bottom(Line::from(Span::styled(keys, theme.dim())).alignment(Alignment::Right));
    let inner = frame.inner(area);
    frame.render(area, buf);
    let content = Rect {
        x: inner.x.saturating_add(1),
        width: inner.width.saturating_sub(2),
        ..inner
    };
    let lines = content_lines(
        st,
        theme,
        content.width as usize,
        Some(content.height as usize),
    );
    Paragraph::new(lines).render(content, buf);
    if st.help {
        render_help(area, buf, theme, st.source_label);
    }
}

/// Rows the frame needs at `width` to show every section (for `--once`).
pub fn natural_height(st: &ViewState<'_>, width: u16) -> u16 {
    let cw = width.saturating_sub(4) as usize;
    let theme = Theme { color: false };
    let n = content_lines(st, theme, cw, None).len();
    (n + 2).min(u16::MAX as usize) as u16
}

/// Body sections that fit in `height` (all of them when `None`), then the footer.
fn content_lines(
    st: &ViewState<'_>,
    theme: Theme,
    width: usize,
    height: Option<usize>,
) -> Vec<Line<'static>> {
    let mut footer = match st.data {
        Some(d) => footer_lines(d, theme, width),
        None => Vec::new(),
    };
    if let Some(s) = st.status {
        let (text, style) = match s {
            Status::Info(t) => (t, theme.dim()),
            Status::Error(t) => (t, theme.bad()),
        };
        footer.insert(0, Line::from(Span::styled(truncate(text, width), style)));
    }
    let groups = match st.data {
        None => vec![Group::new(
            0,
            vec![Line::from(Span::styled(
                "Reading Claude Code transcripts…",
                theme.dim(),
            ))],
        )],
        Some(d) => match &d.active {
            Some(a) => active_groups(d, a, st, theme, width),
            None => waiting_groups(d, st, theme, width),
        },
    };
    let budget = height.map(|h| h.saturating_sub(footer.len()));
    let chosen = choose(groups, budget);
    let used: usize = chosen.iter().map(|g| g.lines.len()).sum();
    let mut spare = budget.map_or(usize::MAX, |b| b.saturating_sub(used));
    let mut out: Vec<Line<'static>> = Vec::new();
    for (i, g) in chosen.into_iter().enumerate() {
        if i > 0 && spare > 0 {
            out.push(Line::default());
            spare -= 1;
        }
        out.extend(g.lines);
    }
    let mut out: Vec<Line<'static>> = out.into_iter().map(|l| fit(l, width)).collect();
    let footer: Vec<Line<'static>> = footer.into_iter().map(|l| fit(l, width)).collect();
    if !footer.is_empty() {
        match height {
            // Footer sits at the bottom of the box, a blank line above it if room.
            Some(h) => {
                let free = h.saturating_sub(out.len() + footer.len());
                out.extend(std::iter::repeat_n(Line::default(), free));
            }
            None => out.push(Line::default()),
        }
        out.extend(footer);
    }
    out
}

/// A block of lines shown or dropped as a whole; lower priority values are
/// kept first when the terminal is short.
struct Group {
    priority: u8,
    lines: Vec<Line<'static>>,
    /// Lines that may be cut from the end (activity rows) down to `min`.
    min: usize,
}

impl Group {
    fn new(priority: u8, lines: Vec<Line<'static>>) -> Group {
        let min = lines.len();
        Group {
            priority,
            lines,
            min,
        }
    }
}

fn choose(groups: Vec<Group>, budget: Option<usize>) -> Vec<Group> {
    let Some(mut left) = budget else {
        return groups;
    };
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&i| (groups[i].priority, i));
    let mut keep = vec![0usize; groups.len()];
    for i in order {
        let g = &groups[i];
        if g.lines.len() <= left {
            keep[i] = g.lines.len();
        } else if g.min <= left && left > 0 {
            keep[i] = left;
        }
        left -= keep[i];
    }
    groups
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k > 0)
        .map(|(mut g, k)| {
            g.lines.truncate(k);
            g
        })
        .collect()
}

fn label(theme: Theme, text: &str) -> Span<'static> {
    Span::styled(format!("{text:<LABEL$}"), theme.label())
}

/// `left` then `right` pushed to the right edge; when both do not fit,
/// `left` is cut (ending in "…") so the figure on the right stays.
fn spread(left: Vec<Span<'static>>, right: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let rw: usize = right.iter().map(Span::width).sum();
    if rw + 1 >= width {
        return Line::from(left);
    }
    let mut left = fit(Line::from(left), width - rw - 1).spans;
    let lw: usize = left.iter().map(Span::width).sum();
    left.push(Span::raw(" ".repeat(width - lw - rw)));
    left.extend(right);
    Line::from(left)
}

/// A bar of `width` cells, `frac` (0–1) of them filled.
fn bar(width: usize, frac: f64, fill: Style, theme: Theme) -> Vec<Span<'static>> {
    let frac = if frac.is_finite() {
        frac.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let filled = ((width as f64) * frac).round() as usize;
    let filled = filled.min(width);
    vec![
        Span::styled("█".repeat(filled), fill),
        Span::styled("░".repeat(width - filled), theme.dim()),
    ]
}

fn hhmm(t: Timestamp, st: &ViewState<'_>) -> String {
    let z = t.to_zoned_datetime(st.tz.clone());
    let today = st.tz.to_datetime(st.now).date();
    if z.date() == today {
        z.strftime("%H:%M").to_string()
    } else if z.date().duration_since(today).as_hours().abs() < 24 * 6 {
        z.strftime("%a %H:%M").to_string()
    } else {
        z.strftime("%b %d %H:%M").to_string()
    }
}

fn minutes_between(a: Timestamp, b: Timestamp) -> i64 {
    b.duration_since(a).as_secs().div_euclid(60)
}

fn active_groups(
    d: &DashboardData,
    a: &ActiveWindow,
    st: &ViewState<'_>,
    theme: Theme,
    width: usize,
) -> Vec<Group> {
    let b = &a.block;
    let tokens = b.total_tokens();
    let mut groups: Vec<Group> = notice_group(d, theme, width).into_iter().collect();

    // Tokens against the limit.
    let mut token_lines = Vec::new();
    match d.limit.tokens {
        Some(limit) => {
            let pct = tokens as f64 / limit.max(1) as f64 * 100.0;
            let style = theme.level(pct);
            let mut text = format!(
                "{} of {} ({})",
                thousands(tokens),
                thousands(limit),
                d.limit.source.describe()
            );
            // Short numbers before a cut description on a narrow screen.
            if LABEL + text.chars().count() + 12 > width {
                text = format!(
                    "{} of {} ({})",
                    compact(tokens),
                    compact(limit),
                    d.limit.source.describe()
                );
            }
            let mut right = vec![Span::styled(format!("{pct:.1}% used"), style)];
            if tokens > limit {
                right = vec![Span::styled(format!("OVER {pct:.1}%"), theme.bad())];
            }
            token_lines.push(spread(
                vec![label(theme, "Tokens"), Span::raw(text)],
                right,
                width,
            ));
            token_lines.push(Line::from(bar(width, pct / 100.0, style, theme)));
        }
        None => {
            token_lines.push(Line::from(vec![
                label(theme, "Tokens"),
                Span::raw(format!(
                    "{} (no completed window to compare yet)",
                    thousands(tokens)
                )),
            ]));
            token_lines.push(Line::from(bar(width, 0.0, theme.dim(), theme)));
        }
    }
    groups.push(Group::new(0, token_lines));

    // Time to reset.
    let total = b.end.duration_since(b.start).as_secs_f64().max(1.0);
    let elapsed = st
        .now
        .duration_since(b.start)
        .as_secs_f64()
        .clamp(0.0, total);
    let pct = elapsed / total * 100.0;
    let left = minutes_between(st.now, b.end).max(0);
    let style = theme.level(pct);
    groups.push(Group::new(
        1,
        vec![
            spread(
                vec![
                    label(theme, "Reset"),
                    Span::raw(format!(
                        "{} left · resets {}",
                        duration_minutes(left),
                        hhmm(b.end, st)
                    )),
                ],
                vec![Span::styled(format!("{pct:.0}% elapsed"), style)],
                width,
            ),
            Line::from(bar(width, pct / 100.0, style, theme)),
        ],
    ));

    // Cost, pace, predicted limit: none of it projected while idle.
    let idle = a.idle_for(st.now, d.idle_after);
    let mut money = Vec::new();
    let mut cost = vec![
        label(theme, "Cost"),
        Span::raw(format!("{} so far", usd(b.cost_usd))),
    ];
    if let Some(p) = a.projected_cost(st.now, d.idle_after) {
        cost.push(Span::styled(
            format!(" · {} by {} at this pace", usd(p), hhmm(b.end, st)),
            theme.dim(),
        ));
    }
    money.push(Line::from(cost));
    let pace = match (idle, a.pace) {
        (Some(for_), _) => vec![
            label(theme, "Pace"),
            Span::styled(
                format!(
                    "idle {} · nothing projected",
                    duration_minutes(for_.as_mins().max(0))
                ),
                theme.warn(),
            ),
        ],
        (None, Some(r)) => vec![
            label(
                theme,
                match r.basis {
                    PaceBasis::Recent => "Last 30m",
                    // The window is younger than 30 minutes: its own pace.
                    PaceBasis::Window => "Pace",
                },
            ),
            Span::raw(format!(
                "{} tok/min incl. cache · {}/h",
                thousands(r.tokens_per_minute.round().max(0.0) as u64),
                usd(r.cost_per_hour)
            )),
        ],
        (None, None) => vec![
            label(theme, "Pace"),
            Span::styled("no usage in the last 30 min", theme.dim()),
        ],
    };
    let limit_line = d.limit.tokens.filter(|_| idle.is_none()).map(|limit| {
        let said = if tokens >= limit {
            Span::styled("passed", theme.bad())
        } else {
            match a.limit_reached_at(Some(limit), st.now, d.idle_after) {
                Some(t) => Span::styled(format!("at {} at this pace", hhmm(t, st)), theme.warn()),
                None if a.pace.is_some() => {
                    Span::styled("not reached before the reset at this pace", theme.dim())
                }
                None => Span::styled("not in sight", theme.dim()),
            }
        };
        Line::from(vec![label(theme, "Limit"), said])
    });
    money.push(Line::from(pace));
    money.extend(limit_line);
    groups.push(Group::new(2, money));

    if let Some(o) = &d.official {
        groups.push(Group::new(4, official_lines(o, st, theme, width)));
    }

    if !a.models.is_empty() {
        let items: Vec<String> = a
            .models
            .iter()
            .map(|m| format!("{} {:.0}%", short_model(&m.model), m.share * 100.0))
            .collect();
        const OF: &str = " of tokens";
        let fitted = join_fitting(&items, width.saturating_sub(LABEL + OF.len()));
        groups.push(Group::new(
            3,
            vec![Line::from(vec![
                label(theme, "Models"),
                Span::raw(fitted),
                Span::styled(OF, theme.dim()),
            ])],
        ));
    }

    groups.extend(common_groups(d, st, theme, width));
    groups
}

/// What csm could not find and what to do: first on either screen.
fn notice_group(d: &DashboardData, theme: Theme, width: usize) -> Option<Group> {
    let n = d.notice.as_ref()?;
    let lines = wrap(n, width)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, theme.warn())))
        .collect();
    Some(Group::new(0, lines))
}

/// Sections both screens show below their own: entries dated ahead, the
/// window's alerts, Claude Code activity.
fn common_groups(d: &DashboardData, st: &ViewState<'_>, theme: Theme, width: usize) -> Vec<Group> {
    let mut groups = Vec::new();
    if let Some(f) = d.future {
        let noun = if f.entries == 1 { "entry" } else { "entries" };
        groups.push(Group::new(
            1,
            vec![Line::from(Span::styled(
                format!(
                    "{} {noun} dated in the future (newest {}) not counted: a clock runs fast",
                    thousands(f.entries as u64),
                    hhmm(f.newest, st)
                ),
                theme.warn(),
            ))],
        ));
    }
    if !d.alerts.is_empty() {
        groups.push(alert_group(&d.alerts, st, theme));
    }
    if let Some(rows) = &d.activity {
        groups.push(activity_group(rows, st, theme, width));
    }
    groups
}

fn alert_group(alerts: &[AlertRow], st: &ViewState<'_>, theme: Theme) -> Group {
    let lines = alerts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let style = match a.severity {
                Severity::Critical => theme.bad(),
                Severity::Warning => theme.warn(),
                Severity::Info => Style::new(),
            };
            let head = if i == 0 {
                label(theme, "Alerts")
            } else {
                Span::raw(" ".repeat(LABEL))
            };
            Line::from(vec![
                head,
                Span::styled(format!("{} ", hhmm(a.sent_at, st)), theme.dim()),
                Span::styled(a.title.clone(), style),
            ])
        })
        .collect();
    Group {
        priority: 3,
        lines,
        min: 1,
    }
}

fn official_lines(
    o: &OfficialLimits,
    st: &ViewState<'_>,
    theme: Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let age = minutes_between(o.captured_at, st.now).max(0);
    let stale = o.is_stale(st.now);
    let mut lines = Vec::new();
    let rows: [(&str, &Option<OfficialBar>); 2] =
        [("5-hour", &o.five_hour), ("Weekly", &o.seven_day)];
    for (name, bar_data) in rows {
        let Some(x) = bar_data else { continue };
        let pct = x.used_percent.clamp(0.0, 100.0);
        let style = if stale { theme.dim() } else { theme.level(pct) };
        let mut tail = format!(" {pct:>3.0}% used");
        if let Some(r) = x.resets_at {
            tail.push_str(&format!(" · resets {}", hhmm(r, st)));
        }
        let bar_w = width.saturating_sub(LABEL + tail.chars().count()).min(40);
        let mut spans = vec![label(theme, name)];
        if bar_w >= 6 {
            spans.extend(bar(bar_w, pct / 100.0, style, theme));
        }
        spans.push(Span::styled(tail, style));
        lines.push(Line::from(spans));
    }
    if !lines.is_empty() {
        let note = if stale {
            Span::styled(
                format!(
                    "official limits stale: captured {} ago",
                    duration_minutes(age)
                ),
                theme.warn(),
            )
        } else {
            Span::styled(
                format!("official limits, captured {} ago", duration_minutes(age)),
                theme.dim(),
            )
        };
        lines.push(Line::from(vec![Span::raw(" ".repeat(LABEL)), note]));
    }
    lines
}

fn activity_group(
    rows: &[crate::engine::overview::ActivityRow],
    st: &ViewState<'_>,
    theme: Theme,
    width: usize,
) -> Group {
    let mut lines = vec![Line::from(label(theme, "Activity"))];
    if rows.is_empty() {
        lines[0] = Line::from(vec![
            label(theme, "Activity"),
            Span::styled("no live Claude Code session", theme.dim()),
        ]);
    }
    let state_w = 15;
    let time_w = 7;
    let name_w = width.saturating_sub(2 + state_w + time_w + 2).max(4);
    for r in rows {
        let style = match r.state {
            crate::engine::overview::ActivityState::Active => theme.fg(Color::Green),
            crate::engine::overview::ActivityState::WaitingForYou => theme.warn(),
            crate::engine::overview::ActivityState::Idle => theme.dim(),
        };
        let since = duration_minutes(minutes_between(r.since, st.now).max(0));
        // Two sessions in one project are told apart by their id.
        let twins = rows.iter().filter(|o| o.project == r.project).count() > 1;
        let name = if twins {
            let id: String = r.session_id.chars().take(8).collect();
            format!("{} ({id})", r.project)
        } else {
            r.project.clone()
        };
        lines.push(Line::from(vec![
            Span::raw(format!("  {:<name_w$} ", truncate(&name, name_w))),
            Span::styled(format!("{:<state_w$}", r.state.label()), style),
            Span::raw(format!(" {since:>time_w$}")),
        ]));
    }
    Group {
        priority: 5,
        lines,
        min: 1,
    }
}

fn waiting_groups(d: &DashboardData, st: &ViewState<'_>, theme: Theme, width: usize) -> Vec<Group> {
    let mut main = vec![Line::from(Span::styled(
        "Waiting for a new session",
        theme.warn().add_modifier(if theme.color {
            Modifier::BOLD
        } else {
            Modifier::empty()
        }),
    ))];
    main.push(Line::from(match d.last_window_end {
        Some(t) => vec![
            label(theme, "Last"),
            Span::raw(format!(
                "ended {} ({} ago)",
                hhmm(t, st),
                duration_minutes(minutes_between(t, st.now).max(0))
            )),
        ],
        None => vec![
            label(theme, "Last"),
            Span::styled("no window yet", theme.dim()),
        ],
    }));
    let max = if d.maxima.tokens > 0 {
        format!(
            "{} tokens in one window · top cost {}",
            thousands(d.maxima.tokens),
            usd(d.maxima.cost_usd)
        )
    } else {
        "none yet".to_string()
    };
    main.push(Line::from(vec![label(theme, "Largest"), Span::raw(max)]));
    let p = &d.period;
    let left = if p.sessions.over > 0 {
        Span::styled(format!("over by {} sessions", p.sessions.over), theme.bad())
    } else {
        Span::raw(format!(
            "{} of {} sessions left",
            p.sessions.left, p.sessions.limit
        ))
    };
    main.push(Line::from(vec![
        label(theme, "Period"),
        Span::raw(format!("{} · ", p.period.range_label())),
        left,
    ]));
    let mut groups: Vec<Group> = notice_group(d, theme, width).into_iter().collect();
    groups.push(Group::new(0, main));
    if let Some(o) = &d.official {
        groups.push(Group::new(2, official_lines(o, st, theme, width)));
    }
    groups.extend(common_groups(d, st, theme, width));
    groups
}

/// `Sessions 12 used · 38 left of 50 · 9d left (4.2/day) · Period $456.78 ·
/// Max 2.0M tok`, wrapped between items to the width.
fn footer_lines(d: &DashboardData, theme: Theme, width: usize) -> Vec<Line<'static>> {
    let p = &d.period;
    let s = &p.sessions;
    let mut items: Vec<Vec<Span<'static>>> =
        vec![vec![Span::raw(format!("Sessions {} used", s.used))]];
    if s.over > 0 {
        items.push(vec![Span::styled(
            format!("over by {} (of {})", s.over, s.limit),
            theme.bad(),
        )]);
    } else {
        let pct = s.used as f64 / s.limit.max(1) as f64 * 100.0;
        items.push(vec![Span::styled(
            format!("{} left of {}", s.left, s.limit),
            theme.level(pct),
        )]);
    }
    items.push(vec![Span::raw(format!(
        "{}d left ({:.1}/day)",
        p.days_left, p.avg_sessions_per_day
    ))]);
    let mut period = format!("Period {} at API prices", usd(p.cost_usd));
    if let Some(r) = p.value_ratio {
        period.push_str(&format!(" ({r:.1}× plan)"));
    }
    items.push(vec![Span::raw(period)]);
    if d.maxima.tokens > 0 {
        items.push(vec![Span::raw(format!(
            "Largest window {} tok",
            compact(d.maxima.tokens)
        ))]);
    }
    let sep = " · ";
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut cur_w = 0usize;
    for item in items {
        let w: usize = item.iter().map(Span::width).sum();
        if !cur.is_empty() && cur_w + sep.len() - 1 + w > width {
            lines.push(Line::from(std::mem::take(&mut cur)));
            cur_w = 0;
        }
        if !cur.is_empty() {
            cur.push(Span::styled(sep, theme.dim()));
            cur_w += 3;
        }
        cur.extend(item);
        cur_w += w;
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    lines
}

fn render_help(area: Rect, buf: &mut Buffer, theme: Theme, source: &str) {
    let text = vec![
        Line::from("q  Esc  Ctrl-C   quit"),
        Line::from("r                re-read usage now"),
        Line::from("a                next account (several configured)"),
        Line::from("?                show or hide this help"),
        Line::default(),
        Line::from(format!("data: {source}")),
        Line::from("tokens count all four kinds, cache reads too"),
        Line::from("pace: the last 30 minutes (a younger window: all of it)"),
        Line::from("colours: green <50% · yellow 50–80% · red ≥80%"),
    ];
    let w = (text.iter().map(Line::width).max().unwrap_or(20) + 4).min(area.width as usize) as u16;
    let h = (text.len() + 2).min(area.height as usize) as u16;
    let popup = Rect {
        x: area.x + (area.width.saturating_sub(w)) / 2,
        y: area.y + (area.height.saturating_sub(h)) / 2,
        width: w,
        height: h,
    };
    Clear.render(popup, buf);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(theme.label())
        .title_top(Line::from(" help "));
    let inner = block.inner(popup);
    block.render(popup, buf);
    let inner = Rect {
        x: inner.x.saturating_add(1),
        width: inner.width.saturating_sub(1),
        ..inner
    };
    Paragraph::new(text).render(inner, buf);
}

/// A line cut to `width` cells, ending with "…" when anything was cut.
fn fit(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut left = width.saturating_sub(1);
    let mut spans = Vec::new();
    for sp in line.spans {
        if left == 0 {
            break;
        }
        let text: String = sp.content.chars().take(left).collect();
        left -= text.chars().count();
        spans.push(Span::styled(text, sp.style));
    }
    spans.push(Span::raw("…"));
    Line::from(spans)
}

/// Words wrapped to `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Items joined with ` · ` as long as they fit, then `+N` for the rest.
fn join_fitting(items: &[String], width: usize) -> String {
    let mut out = String::new();
    let mut out_w = 0;
    for (i, it) in items.iter().enumerate() {
        let sep = if out.is_empty() { "" } else { " · " };
        let rest = items.len() - i - 1;
        // Room for this item and, if more follow, for " · +N".
        let more_w = if rest > 0 {
            format!(" · +{rest}").chars().count()
        } else {
            0
        };
        let item_w = sep.chars().count() + it.chars().count();
        if out_w + item_w + more_w > width {
            out.push_str(&format!("{sep}+{}", items.len() - i));
            return out;
        }
        out.push_str(sep);
        out.push_str(it);
        out_w += item_w;
    }
    out
}

/// The frame as plain text, trailing spaces trimmed; with `ansi`, colours as
/// SGR escape codes (for `--once` on a terminal).
pub fn buffer_to_text(buf: &Buffer, ansi: bool) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        let mut current: Option<Style> = None;
        for x in area.left()..area.right() {
            let Some(cell) = buf.cell((x, y)) else {
                continue;
            };
            if ansi {
                let style = cell.style();
                if current != Some(style) {
                    line.push_str(&sgr(style));
                    current = Some(style);
                }
            }
            line.push_str(cell.symbol());
        }
        if ansi {
            line.push_str("\x1b[0m");
        }
        let trimmed = if ansi { line.as_str() } else { line.trim_end() };
        out.push_str(trimmed);
        out.push('\n');
    }
    out
}

fn sgr(style: Style) -> String {
    let mut codes = vec!["0".to_string()];
    if style.add_modifier.contains(Modifier::BOLD) {
        codes.push("1".into());
    }
    let fg = match style.fg {
        Some(Color::Red) => Some("31"),
        Some(Color::Green) => Some("32"),
        Some(Color::Yellow) => Some("33"),
        Some(Color::Cyan) => Some("36"),
        Some(Color::DarkGray) => Some("90"),
        _ => None,
    };
    codes.extend(fg.map(String::from));
    format!("\x1b[{}m", codes.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_items_never_exceed_the_width() {
        let items: Vec<String> = [
            "sonnet-5 85%",
            "sonnet-4-6 6%",
            "sonnet-4-5 3%",
            "opus-4-7 3%",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for w in 0..80 {
            let s = join_fitting(&items, w);
            // "+N" alone may exceed a width too small for anything.
            assert!(s.chars().count() <= w.max(2), "{w}: {s}");
        }
        assert_eq!(join_fitting(&items, 200), items.join(" · "));
        assert_eq!(
            join_fitting(&items, 33),
            "sonnet-5 85% · sonnet-4-6 6% · +2"
        );
    }
}
