//! `csm setup claude`: csm's statusLine command and hooks merged into Claude
//! Code's `settings.json`, or taken out again.
//!
//! The file is the user's: every other key, every other hook and the order
//! of keys stay as they were. serde_json's `Value` sorts keys (the crate does
//! not enable `preserve_order`, which would change every other JSON output
//! of csm), so the file is read as an ordered list of top-level keys whose
//! values are kept as raw JSON text ([`RawValue`]), and the same again one
//! level down for `hooks`. Only the values csm touches are parsed and
//! re-serialised; the rest is written back byte for byte. In a file
//! formatted as Claude Code writes it (two-space indentation) untouched
//! parts come out identical.
//!
//! This module is pure (text in, text out); the command reads and writes.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The hook events csm installs itself for: the ones `ingest::claude::activity`
/// understands.
pub use crate::ingest::claude::activity::EVENTS;

/// Why Claude Code's settings.json cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SetupError {
    /// The text is not valid JSON; holds the parser's message.
    #[error("not valid JSON ({0}); fix or move the file, then run again")]
    Json(String),
    /// The named value (`settings` or `hooks`) is not a JSON object.
    #[error("`{0}` is not a JSON object")]
    NotObject(String),
    /// `hooks.<event>` is not a JSON array; holds the event name.
    #[error("`hooks.{0}` is not a JSON array")]
    NotArray(String),
}

/// The commands csm installs.
#[derive(Clone, Debug)]
pub struct Commands {
    /// The statusLine command: `'<exe>' statusline`.
    pub statusline: String,
    /// The hook command: `'<exe>' hook`.
    pub hook: String,
}

impl Commands {
    /// `'<exe>' statusline` and `'<exe>' hook`, the path quoted for the shell
    /// Claude Code runs them with.
    pub fn for_exe(exe: &str) -> Commands {
        let q = shell_quote(exe);
        Commands {
            statusline: format!("{q} statusline"),
            hook: format!("{q} hook"),
        }
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Words of a shell command line (quotes removed), enough to recognise ours.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                has = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                has = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// Whether `command` runs csm's `sub` (`statusline`, `hook`), wherever csm lives.
pub fn is_ours(command: &str, sub: &str) -> bool {
    let w = shell_words(command);
    let [exe, s, ..] = w.as_slice() else {
        return false;
    };
    let name = exe.rsplit(['/', '\\']).next().unwrap_or(exe);
    (name == "csm" || name == "csm.exe") && s == sub
}

/// An object's members in file order, values as raw JSON text.
struct Ordered(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, Box<RawValue>>()? {
                    v.push((k, val));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// A value to write: text kept from the file, JSON csm wrote (indented to
/// its place), or a container csm rebuilt around either.
enum Node {
    Raw(Box<RawValue>),
    Json(String),
    Obj(Object),
    Arr(Vec<Node>),
}

impl Node {
    fn raw_text(&self) -> Option<&str> {
        match self {
            Node::Raw(r) => Some(r.get()),
            Node::Json(s) => Some(s),
            _ => None,
        }
    }

    /// Two-space indented, `depth` levels in. Text kept from the file is
    /// written as it was: its lines already carry their indentation.
    fn write(&self, depth: usize, out: &mut String) {
        let pad = |d: usize| "  ".repeat(d);
        match self {
            Node::Raw(r) => out.push_str(r.get()),
            Node::Json(t) => out.push_str(&t.replace('\n', &format!("\n{}", pad(depth)))),
            Node::Obj(o) if o.0.is_empty() => out.push_str("{}"),
            Node::Arr(a) if a.is_empty() => out.push_str("[]"),
            Node::Obj(o) => {
                out.push_str("{\n");
                for (i, (k, v)) in o.0.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push_str(": ");
                    v.write(depth + 1, out);
                    out.push_str(if i + 1 < o.0.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
            Node::Arr(a) => {
                out.push_str("[\n");
                for (i, v) in a.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    v.write(depth + 1, out);
                    out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
        }
    }
}

struct Object(Vec<(String, Node)>);

impl Object {
    fn parse(text: &str, what: &str) -> Result<Object, SetupError> {
        let is_object = text.trim_start().starts_with('{');
        if !is_object {
            return Err(SetupError::NotObject(what.into()));
        }
        let o: Ordered = serde_json::from_str(text).map_err(|e| SetupError::Json(e.to_string()))?;
        Ok(Object(
            o.0.into_iter().map(|(k, v)| (k, Node::Raw(v))).collect(),
        ))
    }

    /// The text of `key`'s value, when it was read or written as text.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.raw_text())
    }

    /// Replaces the value of `key` in place, or appends it.
    fn set(&mut self, key: &str, value: Node) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[derive(Serialize)]
struct StatusLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    command: &'a str,
    padding: u8,
}

#[derive(Serialize)]
struct Group<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    matcher: Option<&'a str>,
    hooks: [HookCmd<'a>; 1],
}

#[derive(Serialize)]
struct HookCmd<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    command: &'a str,
}

/// What a run would do to the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The new file text (the old one when nothing changes).
    pub text: String,
    /// Whether anything changes (`changes` is not empty); when not, `text` is the old text.
    pub changed: bool,
    /// One line per change, for the user.
    pub changes: Vec<String>,
    /// Things left alone on purpose (another statusLine).
    pub notes: Vec<String>,
}

/// csm's commands merged into `original` (`None`: no file yet). With
/// `force`, another tool's statusLine is replaced; without, it is kept.
pub fn plan_install(
    original: Option<&str>,
    cmds: &Commands,
    force: bool,
) -> Result<Plan, SetupError> {
    let mut top = parse_top(original)?;
    let mut changes = Vec::new();
    let mut notes = Vec::new();

    let want_status = pretty(&StatusLine {
        kind: "command",
        command: &cmds.statusline,
        padding: 0,
    });
    match top.get("statusLine").map(str::to_string) {
        None => {
            top.set("statusLine", Node::Json(want_status.clone()));
            changes.push(format!("statusLine: {}", cmds.statusline));
        }
        Some(cur) => {
            let cur_cmd = serde_json::from_str::<Value>(&cur)
                .ok()
                .and_then(|v| v.get("command")?.as_str().map(str::to_string));
            let ours = cur_cmd.as_deref().is_some_and(|c| is_ours(c, "statusline"));
            if cur_cmd.as_deref() == Some(cmds.statusline.as_str()) {
                // Already ours and current.
            } else if ours || force {
                top.set("statusLine", Node::Json(want_status.clone()));
                changes.push(format!(
                    "statusLine: {} (was {})",
                    cmds.statusline,
                    cur_cmd.as_deref().unwrap_or("something else")
                ));
            } else {
                notes.push(format!(
                    "statusLine is already set to `{}`: left as it is (--force replaces it)",
                    cur_cmd.as_deref().unwrap_or(cur.as_str())
                ));
            }
        }
    }

    let mut hooks = match top.get("hooks") {
        Some(h) => Object::parse(h, "hooks")?,
        None => Object(Vec::new()),
    };
    let mut hooks_changed = false;
    for event in EVENTS {
        let groups = match hooks.get(event) {
            Some(t) => parse_groups(t, event)?,
            None => Vec::new(),
        };
        let (mut kept, found) = strip_ours(groups, &cmds.hook, true)?;
        if found == Found::Current {
            continue;
        }
        if found == Found::None {
            let matcher = matches!(event, "PreToolUse" | "PostToolUse").then_some("*");
            kept.push(Node::Json(pretty(&Group {
                matcher,
                hooks: [HookCmd {
                    kind: "command",
                    command: &cmds.hook,
                }],
            })));
        }
        hooks.set(event, Node::Arr(kept));
        hooks_changed = true;
        changes.push(format!("hooks.{event}: {}", cmds.hook));
    }
    if hooks_changed {
        top.set("hooks", Node::Obj(hooks));
    }
    finish(original, top, changes, notes)
}

/// csm's statusLine and hooks taken out of `original`; everything else stays.
pub fn plan_uninstall(original: Option<&str>) -> Result<Plan, SetupError> {
    let mut top = parse_top(original)?;
    let mut changes = Vec::new();
    if let Some(cur) = top.get("statusLine") {
        let cmd = serde_json::from_str::<Value>(cur)
            .ok()
            .and_then(|v| v.get("command")?.as_str().map(str::to_string));
        if cmd.as_deref().is_some_and(|c| is_ours(c, "statusline")) {
            top.remove("statusLine");
            changes.push("statusLine removed".to_string());
        }
    }
    if let Some(h) = top.get("hooks") {
        let mut hooks = Object::parse(h, "hooks")?;
        let mut any = false;
        let events: Vec<String> = hooks.0.iter().map(|(k, _)| k.clone()).collect();
        for event in events {
            let Some(text) = hooks.get(&event) else {
                continue;
            };
            let Ok(groups) = parse_groups(text, &event) else {
                continue;
            };
            let (kept, found) = strip_ours(groups, "", false)?;
            if found == Found::None {
                continue;
            }
            any = true;
            changes.push(format!("hooks.{event}: csm hook removed"));
            if kept.is_empty() {
                hooks.remove(&event);
            } else {
                hooks.set(&event, Node::Arr(kept));
            }
        }
        if any {
            if hooks.0.is_empty() {
                top.remove("hooks");
            } else {
                top.set("hooks", Node::Obj(hooks));
            }
        }
    }
    finish(original, top, changes, Vec::new())
}

fn parse_top(original: Option<&str>) -> Result<Object, SetupError> {
    match original {
        Some(t) if !t.trim().is_empty() => Object::parse(t, "settings"),
        _ => Ok(Object(Vec::new())),
    }
}

fn finish(
    original: Option<&str>,
    top: Object,
    changes: Vec<String>,
    notes: Vec<String>,
) -> Result<Plan, SetupError> {
    let changed = !changes.is_empty();
    let text = if changed {
        let mut t = String::new();
        Node::Obj(top).write(0, &mut t);
        t.push('\n');
        t
    } else {
        original.unwrap_or_default().to_string()
    };
    Ok(Plan {
        text,
        changed,
        changes,
        notes,
    })
}

fn parse_groups(text: &str, event: &str) -> Result<Vec<Box<RawValue>>, SetupError> {
    if !text.trim_start().starts_with('[') {
        return Err(SetupError::NotArray(event.into()));
    }
    serde_json::from_str(text).map_err(|e| SetupError::Json(e.to_string()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    None,
    /// Ours, with exactly the wanted command.
    Current,
    /// Ours with another command (csm moved), now updated or removed.
    Changed,
}

/// The groups without csm's hook commands (or, with `keep_current`, with
/// them updated to `want`), as JSON texts. Other groups stay byte for byte.
fn strip_ours(
    groups: Vec<Box<RawValue>>,
    want: &str,
    keep_current: bool,
) -> Result<(Vec<Node>, Found), SetupError> {
    let mut out = Vec::new();
    let mut found = Found::None;
    for g in groups {
        let v: Value =
            serde_json::from_str(g.get()).map_err(|e| SetupError::Json(e.to_string()))?;
        let cmds = v.get("hooks").and_then(Value::as_array);
        let ours_at: Vec<usize> = cmds
            .map(|a| {
                a.iter()
                    .enumerate()
                    .filter(|(_, h)| {
                        h.get("command")
                            .and_then(Value::as_str)
                            .is_some_and(|c| is_ours(c, "hook"))
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        if ours_at.is_empty() {
            out.push(Node::Raw(g));
            continue;
        }
        let current = cmds.is_some_and(|a| {
            ours_at
                .iter()
                .all(|&i| a[i].get("command").and_then(Value::as_str) == Some(want))
        });
        if keep_current && current && found != Found::Changed {
            found = Found::Current;
            out.push(Node::Raw(g));
            continue;
        }
        found = Found::Changed;
        let mut v = v;
        if let Some(a) = v.get_mut("hooks").and_then(Value::as_array_mut) {
            let mut i = 0;
            a.retain(|_| {
                let keep = !ours_at.contains(&i);
                i += 1;
                keep
            });
            if keep_current {
                a.push(serde_json::json!({"type": "command", "command": want}));
            }
            if a.is_empty() {
                continue;
            }
        }
        out.push(Node::Json(pretty(&v)));
    }
    Ok((out, found))
}

/// A unified diff of two texts (3 lines of context), for `--dry-run`.
pub fn diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (tag, old index, new index, text).
    let mut ops: Vec<(char, usize, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i, j, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, j, a[i]));
            i += 1;
        } else {
            ops.push(('+', i, j, b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 3;
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 == ' ' {
            k += 1;
            continue;
        }
        let start = k.saturating_sub(CONTEXT);
        // Extend the hunk while changes are within 2×CONTEXT of each other.
        let mut end = k;
        let mut last_change = k;
        while end < ops.len() {
            if ops[end].0 != ' ' {
                last_change = end;
            } else if end - last_change > 2 * CONTEXT {
                break;
            }
            end += 1;
        }
        let end = (last_change + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let old_len = hunk.iter().filter(|o| o.0 != '+').count();
        let new_len = hunk.iter().filter(|o| o.0 != '-').count();
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            hunk[0].1 + usize::from(old_len > 0),
            old_len,
            hunk[0].2 + usize::from(new_len > 0),
            new_len
        ));
        for (tag, _, _, text) in hunk {
            out.push(*tag);
            out.push_str(text);
            out.push('\n');
        }
        k = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds() -> Commands {
        Commands::for_exe("/opt/csm/bin/csm")
    }

    fn value(t: &str) -> Value {
        serde_json::from_str(t).unwrap()
    }

    #[test]
    fn ours_is_recognised_wherever_csm_lives() {
        assert!(is_ours("/opt/csm/bin/csm hook", "hook"));
        assert!(is_ours("'/home/a b/csm' statusline", "statusline"));
        assert!(is_ours("\"C:\\\\tools\\\\csm.exe\" hook", "hook"));
        assert!(is_ours("csm hook --x", "hook"));
        assert!(!is_ours("csm statusline", "hook"));
        assert!(!is_ours("mycsm hook", "hook"));
        assert!(!is_ours("ccusage statusline", "statusline"));
        assert!(!is_ours("", "hook"));
        assert_eq!(
            Commands::for_exe("/home/a b/csm").hook,
            "'/home/a b/csm' hook"
        );
        assert_eq!(shell_words("'it'\\''s' x"), vec!["it's", "x"]);
    }

    #[test]
    fn a_missing_file_gets_everything() {
        let p = plan_install(None, &cmds(), false).unwrap();
        assert!(p.changed);
        assert_eq!(p.changes.len(), 9);
        insta::assert_snapshot!(p.text);
        // Installing again changes nothing.
        let again = plan_install(Some(&p.text), &cmds(), false).unwrap();
        assert!(!again.changed, "{:?}", again.changes);
        assert_eq!(again.text, p.text);
        // Uninstalling leaves an empty object.
        let un = plan_uninstall(Some(&p.text)).unwrap();
        assert_eq!(un.text, "{}\n");
    }

    #[test]
    fn other_keys_and_hooks_are_kept_in_order() {
        let original = r#"{
  "model": "opus",
  "env": {
    "FOO": "1"
  },
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "~/bin/check-bash"
          }
        ]
      }
    ],
    "Custom": []
  },
  "permissions": {
    "allow": ["Bash(ls:*)"]
  }
}
"#;
        let p = plan_install(Some(original), &cmds(), false).unwrap();
        let v = value(&p.text);
        let keys: Vec<&str> = p
            .text
            .lines()
            .filter(|l| l.starts_with("  \"") && !l.starts_with("    "))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(keys, ["model", "env", "hooks", "permissions", "statusLine"]);
        assert_eq!(v["env"]["FOO"], "1");
        assert_eq!(v["permissions"]["allow"][0], "Bash(ls:*)");
        let pre = v["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre.len(), 2);
        assert_eq!(pre[0]["hooks"][0]["command"], "~/bin/check-bash");
        assert_eq!(pre[1]["hooks"][0]["command"], "/opt/csm/bin/csm hook");
        assert_eq!(pre[1]["matcher"], "*");
        assert!(v["hooks"]["Custom"].as_array().unwrap().is_empty());
        for e in EVENTS {
            assert!(v["hooks"][e].is_array(), "{e}");
        }
        insta::assert_snapshot!(diff(original, &p.text, "a", "b"));
        // Uninstall gives the original back, byte for byte.
        let un = plan_uninstall(Some(&p.text)).unwrap();
        assert_eq!(un.text, original);
    }

    #[test]
    fn unusual_formatting_is_read_and_untouched_values_keep_their_text() {
        let original = "{\"a\":[1,2,\n\t3],   \"nested\" : {\"x\":{\"y\":true}} ,\"n\":1.50e2}";
        let p = plan_install(Some(original), &cmds(), false).unwrap();
        assert!(p.text.contains("\"a\": [1,2,\n\t3]"), "{}", p.text);
        assert!(p.text.contains("\"nested\": {\"x\":{\"y\":true}}"));
        assert!(p.text.contains("\"n\": 1.50e2"));
        let v = value(&p.text);
        assert_eq!(v["n"], 150.0);
        let un = plan_uninstall(Some(&p.text)).unwrap();
        assert_eq!(value(&un.text), value(original));
    }

    #[test]
    fn moved_csm_is_updated_not_duplicated() {
        let old = plan_install(None, &Commands::for_exe("/old/csm"), false).unwrap();
        let p = plan_install(Some(&old.text), &cmds(), false).unwrap();
        assert!(p.changed);
        let v = value(&p.text);
        assert_eq!(v["statusLine"]["command"], "/opt/csm/bin/csm statusline");
        for e in EVENTS {
            let groups = v["hooks"][e].as_array().unwrap();
            assert_eq!(groups.len(), 1, "{e}: {groups:?}");
            assert_eq!(groups[0]["hooks"][0]["command"], "/opt/csm/bin/csm hook");
        }
    }

    #[test]
    fn another_status_line_is_kept_unless_forced() {
        let original = r#"{"statusLine": {"type": "command", "command": "ccusage statusline"}}"#;
        let p = plan_install(Some(original), &cmds(), false).unwrap();
        assert_eq!(
            value(&p.text)["statusLine"]["command"],
            "ccusage statusline"
        );
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].contains("ccusage statusline"));
        let forced = plan_install(Some(original), &cmds(), true).unwrap();
        assert_eq!(
            value(&forced.text)["statusLine"]["command"],
            "/opt/csm/bin/csm statusline"
        );
        // Uninstall never removes another tool's status line.
        let un = plan_uninstall(Some(&p.text)).unwrap();
        assert_eq!(
            value(&un.text)["statusLine"]["command"],
            "ccusage statusline"
        );
    }

    #[test]
    fn a_group_shared_with_another_command_keeps_that_command() {
        let original = r#"{"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "notify-send done"},
            {"type": "command", "command": "/usr/bin/csm hook"}]}]}}"#;
        let un = plan_uninstall(Some(original)).unwrap();
        let v = value(&un.text);
        let stop = v["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 1);
        assert_eq!(stop[0]["hooks"].as_array().unwrap().len(), 1);
        assert_eq!(stop[0]["hooks"][0]["command"], "notify-send done");
        // Install updates csm's entry there instead of adding a second one.
        let p = plan_install(Some(original), &cmds(), false).unwrap();
        let stop = value(&p.text)["hooks"]["Stop"].clone();
        let all: Vec<&str> = stop
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["hooks"].as_array().unwrap())
            .map(|h| h["command"].as_str().unwrap())
            .collect();
        assert_eq!(all, ["notify-send done", "/opt/csm/bin/csm hook"]);
    }

    #[test]
    fn wrong_shapes_are_errors_naming_the_place() {
        let e = |t: &str| plan_install(Some(t), &cmds(), false).unwrap_err();
        assert!(matches!(e("{\"a\": 1,}"), SetupError::Json(_)));
        assert!(matches!(e("// c\n{}"), SetupError::NotObject(_)));
        assert!(matches!(e("[1]"), SetupError::NotObject(_)));
        assert_eq!(e("{\"hooks\": []}"), SetupError::NotObject("hooks".into()));
        assert_eq!(
            e("{\"hooks\": {\"Stop\": {}}}"),
            SetupError::NotArray("Stop".into())
        );
        // Whitespace only counts as no settings yet.
        assert!(plan_install(Some("  \n"), &cmds(), false).unwrap().changed);
    }

    #[test]
    fn diff_shows_hunks_with_context() {
        let a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n";
        let b = "1\n2\n3\nfour\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\nfifteen\n";
        insta::assert_snapshot!(diff(a, b, "old", "new"), @r"
        --- old
        +++ new
        @@ -1,7 +1,7 @@
         1
         2
         3
        -4
        +four
         5
         6
         7
        @@ -12,3 +12,4 @@
         12
         13
         14
        +fifteen
        ");
        assert_eq!(diff(a, a, "x", "y"), "--- x\n+++ y\n");
    }
}
