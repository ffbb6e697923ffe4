// csm widget for Scriptable (iOS): the current 5-hour window, sessions left
// and the billing period from the monitor_data.json that `csm daemon` copies
// into iCloud Drive (config `sync_dirs`). Small, medium and large widgets.
//
// Also reads the original claude-session-monitor's file (same keys).
// Setup: see "Phone widget" in the csm README.

const FILE = "claude-monitor/monitor_data.json";
// Data older than this is flagged: the daemon rewrites the file every minute.
const STALE_MINUTES = 5;
// The original monitor had no limit in its file; its default.
const DEFAULT_SESSIONS = 50;

// ---------------------------------------------------------------------------
// Pure functions (tested with node: widgets/scriptable/test/).

function parseSnapshot(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error("monitor_data.json is not valid JSON (" + e.message + ")");
  }
  if (data === null || typeof data !== "object" || !Array.isArray(data.current_sessions)) {
    throw new Error("monitor_data.json has no current_sessions: not a csm snapshot");
  }
  if (data.schema_version !== undefined && data.schema_version !== 1) {
    throw new Error("monitor_data.json has schema version " + data.schema_version + "; update this widget");
  }
  return data;
}

function num(x, fallback) {
  return typeof x === "number" && isFinite(x) ? x : fallback;
}

function minutesBetween(from, to) {
  return Math.floor((to.getTime() - from.getTime()) / 60000);
}

// What the widget shows, from a parsed snapshot at `now` (a Date).
// `fileModified` (a Date) stands in for last_update when the file has none.
function model(data, now, fileModified) {
  const limit = num(data.sessions_limit, DEFAULT_SESSIONS);
  const used = num(data.total_sessions_this_month, 0);
  const left = num(data.sessions_left, Math.max(0, limit - used));
  const updated = data.last_update ? new Date(data.last_update) : fileModified || null;
  const age = updated ? Math.max(0, minutesBetween(updated, now)) : null;

  const active = data.active_block || null;
  const session = (data.current_sessions || []).find((s) => s.is_active) || null;
  let window = null;
  if (active || session) {
    const end = new Date((active || session).end_time);
    const tokens = num((active || session).total_tokens, 0);
    let percent = null;
    let percentSource = null;
    const official = data.official_limits;
    if (official && !official.stale && official.five_hour) {
      percent = num(official.five_hour.used_percent, null);
      percentSource = "official";
    } else if (active && active.percent_of_limit !== null && active.percent_of_limit !== undefined) {
      percent = num(active.percent_of_limit, null);
      percentSource = "estimate";
    } else if (num(data.max_tokens_per_session, 0) > 0) {
      percent = (tokens * 100) / data.max_tokens_per_session;
      percentSource = "estimate";
    }
    const minutesLeft = Math.max(0, minutesBetween(now, end));
    window = {
      percent: percent,
      percentSource: percentSource,
      minutesLeft: minutesLeft,
      // The window may have ended since the file was written.
      ended: end.getTime() <= now.getTime(),
      resetsAt: end,
      costUsd: num((active || session).cost_usd, 0),
      tokens: tokens,
    };
  }

  let daysLeft = null;
  if (data.period && typeof data.period.days_left === "number") {
    daysLeft = data.period.days_left;
  }
  if (data.billing_period_end) {
    // Count down from now, not from when the file was written.
    const end = new Date(data.billing_period_end);
    const fromNow = Math.max(0, Math.ceil((end.getTime() - now.getTime()) / 86400000));
    daysLeft = daysLeft === null ? fromNow : Math.min(daysLeft, fromNow);
  }

  return {
    sessionsUsed: used,
    sessionsLimit: limit,
    sessionsLeft: left,
    sessionsOver: Math.max(0, used - limit),
    window: window && !window.ended ? window : null,
    periodCostUsd: num(data.total_cost_this_month, 0),
    daysLeft: daysLeft,
    ageMinutes: age,
    stale: age === null || age > STALE_MINUTES,
    version: data.daemon_version || null,
    activity: Array.isArray(data.activity) ? data.activity : [],
    models: active && Array.isArray(active.model_shares) ? active.model_shares : [],
  };
}

function formatDuration(minutes) {
  const m = Math.max(0, Math.floor(minutes));
  if (m < 60) return m + "m";
  if (m < 1440) return Math.floor(m / 60) + "h " + (m % 60) + "m";
  return Math.floor(m / 1440) + "d " + Math.floor((m % 1440) / 60) + "h";
}

function formatUsd(x) {
  const cents = Math.round(Math.abs(x) * 100);
  const whole = Math.floor(cents / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (x < 0 && cents > 0 ? "-" : "") + "$" + whole + "." + String(cents % 100).padStart(2, "0");
}

// "ok" < 50 %, "warn" < 80 %, "bad" from 80 % (the dashboard's colours).
function level(percent) {
  if (percent === null || percent === undefined) return "ok";
  if (percent >= 80) return "bad";
  if (percent >= 50) return "warn";
  return "ok";
}

function shortModel(name) {
  return String(name)
    .replace(/^claude-/, "")
    .replace(/-\d{8}$/, "");
}

// The rows each widget size shows: [{text, style}] with style one of
// "title", "big", "ok", "warn", "bad", "dim", "normal".
function rows(m, family) {
  const out = [];
  out.push({ text: "Claude", style: "title" });
  if (m.window) {
    const pct = m.window.percent === null ? "" : Math.round(m.window.percent) + "%";
    out.push({
      text: (pct ? pct + " · " : "") + formatDuration(m.window.minutesLeft) + " left",
      style: m.window.percent === null ? "big" : level(m.window.percent),
    });
  } else {
    out.push({ text: "No active window", style: "dim" });
  }
  const sessions =
    m.sessionsOver > 0
      ? "over by " + m.sessionsOver
      : m.sessionsLeft + " of " + m.sessionsLimit + " left";
  out.push({ text: "Sessions " + sessions, style: m.sessionsLeft <= 5 ? "warn" : "normal" });
  if (family !== "small") {
    out.push({
      text:
        "Period " +
        formatUsd(m.periodCostUsd) +
        (m.daysLeft === null ? "" : " · " + m.daysLeft + "d left"),
      style: "normal",
    });
    if (m.window) {
      out.push({ text: "Window cost " + formatUsd(m.window.costUsd), style: "dim" });
    }
  } else {
    out.push({ text: formatUsd(m.periodCostUsd) + (m.daysLeft === null ? "" : " · " + m.daysLeft + "d"), style: "normal" });
  }
  if (family === "large") {
    if (m.models.length > 0) {
      out.push({
        text: m.models
          .slice(0, 3)
          .map((x) => shortModel(x.model) + " " + Math.round(x.share * 100) + "%")
          .join(" · "),
        style: "dim",
      });
    }
    for (const a of m.activity.slice(0, 4)) {
      out.push({ text: a.project + ": " + a.state.replace(/_/g, " "), style: "dim" });
    }
  }
  if (m.stale) {
    out.push({
      text: m.ageMinutes === null ? "no update time" : "stale: " + formatDuration(m.ageMinutes) + " old",
      style: "bad",
    });
  } else if (family !== "small") {
    out.push({ text: "updated " + formatDuration(m.ageMinutes) + " ago", style: "dim" });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Scriptable only.

const COLORS = {
  title: ["#D97757", "#D97757"],
  big: ["#000000", "#FFFFFF"],
  normal: ["#1C1C1E", "#F2F2F7"],
  dim: ["#6E6E73", "#8E8E93"],
  ok: ["#248A3D", "#30D158"],
  warn: ["#B25000", "#FF9F0A"],
  bad: ["#D70015", "#FF453A"],
};

async function loadFile() {
  const fm = FileManager.iCloud();
  const path = fm.joinPath(fm.documentsDirectory(), FILE);
  if (!fm.fileExists(path)) {
    throw new Error("No " + FILE + " in Scriptable's iCloud folder: add it to csm's sync_dirs");
  }
  await fm.downloadFileFromiCloud(path);
  return { text: fm.readString(path), modified: fm.modificationDate(path) };
}

function render(lines, family) {
  const w = new ListWidget();
  w.backgroundColor = Color.dynamic(new Color("#FFFFFF"), new Color("#1C1C1E"));
  const sizes = { title: 12, big: family === "small" ? 18 : 20, normal: 13, dim: 11, ok: 20, warn: 20, bad: 13 };
  for (const [i, r] of lines.entries()) {
    const t = w.addText(r.text);
    const first = i === 1 && ["ok", "warn", "bad", "big"].includes(r.style);
    t.font = r.style === "title" ? Font.boldSystemFont(12) : Font.systemFont(first ? sizes[r.style] : r.style === "dim" ? 11 : 13);
    const c = COLORS[r.style] || COLORS.normal;
    t.textColor = Color.dynamic(new Color(c[0]), new Color(c[1]));
    t.lineLimit = 1;
    t.minimumScaleFactor = 0.6;
  }
  // iOS decides when widgets refresh; ask for a refresh in 5 minutes.
  w.refreshAfterDate = new Date(Date.now() + 5 * 60 * 1000);
  return w;
}

async function main() {
  const family = config.widgetFamily || "medium";
  let lines;
  try {
    const f = await loadFile();
    lines = rows(model(parseSnapshot(f.text), new Date(), f.modified), family);
  } catch (e) {
    lines = [
      { text: "Claude", style: "title" },
      { text: e.message, style: "bad" },
    ];
  }
  const w = render(lines, family);
  if (config.runsInWidget) {
    Script.setWidget(w);
  } else {
    await w.presentMedium();
  }
  Script.complete();
}

if (typeof module !== "undefined") {
  module.exports = { parseSnapshot, model, rows, formatDuration, formatUsd, level, shortModel, STALE_MINUTES };
}

if (typeof Script !== "undefined" && typeof ListWidget !== "undefined") {
  await main();
}
