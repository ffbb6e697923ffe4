// The widget's pure functions on sample snapshots: `node --test widgets/scriptable/test/widget.test.js`.
// tests/widget.rs also runs this with CSM_SAMPLE_SNAPSHOT pointing at a file the
// real csm just wrote, so the widget is checked against the current format.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

// The script is meant for Scriptable (top-level await, no require): run it
// inside an async function with a `module` to export through.
async function load() {
  const src = fs.readFileSync(path.join(__dirname, "..", "csm-widget.js"), "utf8");
  const mod = { exports: {} };
  const fn = vm.runInThisContext("(async function (module) {\n" + src + "\n})");
  await fn(mod);
  return mod.exports;
}

const fixture = (name) => fs.readFileSync(path.join(__dirname, name), "utf8");
const at = (s) => new Date(s);

test("csm snapshot: sessions, window, period", async () => {
  const w = await load();
  const m = w.model(w.parseSnapshot(fixture("sample_snapshot.json")), at("2026-11-20T16:42:00Z"));
  assert.equal(m.sessionsUsed, 3);
  assert.equal(m.sessionsLimit, 50);
  assert.equal(m.sessionsLeft, 47);
  assert.equal(m.window.minutesLeft, 138);
  assert.equal(m.window.percentSource, "estimate");
  assert.ok(Math.abs(m.window.percent - (3000 * 100) / 108000) < 1e-9);
  assert.equal(m.periodCostUsd, 2.5);
  assert.equal(m.daysLeft, 11);
  assert.equal(m.ageMinutes, 2);
  assert.equal(m.stale, false);
  assert.deepEqual(
    w.rows(m, "small").map((r) => r.text),
    ["Claude", "3% · 2h 18m left", "Sessions 47 of 50 left", "$2.50 · 11d"],
  );
  assert.deepEqual(
    w.rows(m, "medium").map((r) => r.text),
    [
      "Claude",
      "3% · 2h 18m left",
      "Sessions 47 of 50 left",
      "Period $2.50 · 11d left",
      "Window cost $0.75",
      "updated 2m ago",
    ],
  );
  const large = w.rows(m, "large").map((r) => r.text);
  assert.ok(large.includes("sonnet-4-5 100%"), large.join("|"));
});

test("data older than 5 minutes is flagged", async () => {
  const w = await load();
  const data = w.parseSnapshot(fixture("sample_snapshot.json"));
  assert.equal(w.model(data, at("2026-11-20T16:45:00Z")).stale, false);
  const m = w.model(data, at("2026-11-20T16:46:00Z"));
  assert.equal(m.stale, true);
  const rows = w.rows(m, "small");
  assert.deepEqual(rows[rows.length - 1], { text: "stale: 6m old", style: "bad" });
});

test("a window that ended since the file was written is not shown", async () => {
  const w = await load();
  const m = w.model(w.parseSnapshot(fixture("sample_snapshot.json")), at("2026-11-20T19:00:01Z"));
  assert.equal(m.window, null);
  assert.equal(w.rows(m, "medium")[1].text, "No active window");
});

test("official limits, when fresh, are the window's percentage", async () => {
  const w = await load();
  const data = w.parseSnapshot(fixture("sample_snapshot.json"));
  data.official_limits = {
    five_hour: { used_percent: 81, resets_at: null },
    seven_day: null,
    captured_at: "2026-11-20T16:39:00.000+00:00",
    stale: false,
  };
  let m = w.model(data, at("2026-11-20T16:41:00Z"));
  assert.equal(m.window.percent, 81);
  assert.equal(w.rows(m, "small")[1].style, "bad");
  data.official_limits.stale = true;
  m = w.model(data, at("2026-11-20T16:41:00Z"));
  assert.equal(m.window.percentSource, "estimate");
});

test("the original monitor's file still works", async () => {
  const w = await load();
  const m = w.model(w.parseSnapshot(fixture("original_monitor.json")), at("2026-11-20T16:41:00Z"));
  assert.equal(m.sessionsLeft, 38);
  assert.equal(m.window.percent, 25);
  assert.equal(m.window.minutesLeft, 139);
  assert.equal(m.daysLeft, 11);
  assert.equal(m.periodCostUsd, 456.78);
  assert.equal(w.rows(m, "medium")[3].text, "Period $456.78 · 11d left");
});

test("bad files give a message that says what is wrong", async () => {
  const w = await load();
  assert.throws(() => w.parseSnapshot("{\"current"), /not valid JSON/);
  assert.throws(() => w.parseSnapshot("{}"), /no current_sessions/);
  assert.throws(
    () => w.parseSnapshot(JSON.stringify({ schema_version: 2, current_sessions: [] })),
    /schema version 2/,
  );
});

test("formatting", async () => {
  const w = await load();
  assert.equal(w.formatDuration(45), "45m");
  assert.equal(w.formatDuration(134), "2h 14m");
  assert.equal(w.formatDuration(1500), "1d 1h");
  assert.equal(w.formatUsd(1234.567), "$1,234.57");
  assert.equal(w.formatUsd(0), "$0.00");
  assert.equal(w.level(49.9), "ok");
  assert.equal(w.level(50), "warn");
  assert.equal(w.level(80), "bad");
  assert.equal(w.shortModel("claude-opus-4-5-20251101"), "opus-4-5");
});

test("a snapshot the real csm wrote", { skip: !process.env.CSM_SAMPLE_SNAPSHOT }, async () => {
  const w = await load();
  const text = fs.readFileSync(process.env.CSM_SAMPLE_SNAPSHOT, "utf8");
  const data = w.parseSnapshot(text);
  const now = new Date(process.env.CSM_SAMPLE_NOW || data.last_update);
  const m = w.model(data, now);
  assert.equal(m.sessionsLeft, data.sessions_left);
  assert.equal(m.sessionsUsed, data.total_sessions_this_month);
  assert.equal(m.periodCostUsd, data.total_cost_this_month);
  assert.equal(m.stale, false);
  if (data.active_block) {
    assert.ok(m.window, "active window shown");
    assert.equal(m.window.minutesLeft, data.active_block.minutes_left);
  }
  for (const family of ["small", "medium", "large"]) {
    const rows = w.rows(m, family);
    assert.ok(rows.length >= 4, family);
    assert.ok(rows.every((r) => typeof r.text === "string" && r.text.length > 0), family);
  }
});
