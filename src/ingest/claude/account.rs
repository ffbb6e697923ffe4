//! Who an account is: the `oauthAccount` of Claude Code's `.claude.json`
//! (read only, never written; csm never reads login credentials).
//!
//! Where it lives: `<config dir>/.claude.json`; for the default `~/.claude`
//! dir also `~/.claude.json`, where Claude Code keeps it unless
//! `CLAUDE_CONFIG_DIR` is set. When both exist the newer one wins.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// An account's identity as Claude Code recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The login e-mail.
    pub email: Option<String>,
    /// The organisation's name.
    pub organization: Option<String>,
    /// The plan, from the organisation type (`claude_max` → "Max").
    pub plan: Option<String>,
}

impl Identity {
    /// The name to show: the e-mail, else the organisation.
    pub fn display_name(&self) -> Option<&str> {
        self.email
            .as_deref()
            .or(self.organization.as_deref())
            .filter(|s| !s.trim().is_empty())
    }
}

/// Why `.claude.json` gave no identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file exists but could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not a JSON object of the expected shape.
    #[error("{0} is not a Claude Code settings file: {1}")]
    Shape(PathBuf, serde_json::Error),
}

#[derive(Deserialize)]
struct RawClaudeJson {
    #[serde(rename = "oauthAccount", default)]
    oauth_account: Option<RawOauthAccount>,
}

#[derive(Deserialize)]
struct RawOauthAccount {
    #[serde(rename = "emailAddress", default)]
    email_address: Option<String>,
    #[serde(rename = "organizationName", default)]
    organization_name: Option<String>,
    #[serde(rename = "organizationType", default)]
    organization_type: Option<String>,
}

/// The `.claude.json` files that may describe the account of `config_dir`,
/// the newer first; `home` is the user's home directory.
pub fn candidates(config_dir: &Path, home: Option<&Path>) -> Vec<PathBuf> {
    let mut v = vec![config_dir.join(".claude.json")];
    if let Some(h) = home
        && same_dir(config_dir, &h.join(".claude"))
    {
        v.push(h.join(".claude.json"));
    }
    let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    v.retain(|p| p.is_file());
    v.sort_by_key(|p| std::cmp::Reverse(mtime(p)));
    v
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// The identity of the account at `config_dir`: `Ok(None)` when no file
/// names it.
pub fn read(config_dir: &Path, home: Option<&Path>) -> Result<Option<Identity>, IdentityError> {
    let Some(path) = candidates(config_dir, home).into_iter().next() else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|e| IdentityError::Read(path.clone(), e))?;
    parse(&bytes).map_err(|e| IdentityError::Shape(path, e))
}

/// The identity in a `.claude.json`'s bytes.
pub fn parse(bytes: &[u8]) -> Result<Option<Identity>, serde_json::Error> {
    // A derived struct also reads a JSON array, field by position: only an
    // object is a settings file.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(serde::de::Error::custom("not a JSON object"));
    }
    let raw: RawClaudeJson = serde_json::from_slice(bytes)?;
    let Some(o) = raw.oauth_account else {
        return Ok(None);
    };
    let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let id = Identity {
        email: clean(o.email_address),
        organization: clean(o.organization_name),
        plan: clean(o.organization_type).map(|t| plan_name(&t)),
    };
    Ok((id != Identity::default()).then_some(id))
}

/// `claude_max` → "Max", `claude_pro` → "Pro", others as written.
fn plan_name(kind: &str) -> String {
    let bare = kind.strip_prefix("claude_").unwrap_or(kind);
    let mut c = bare.chars();
    match c.next() {
        Some(first) => first
            .to_uppercase()
            .chain(c)
            .collect::<String>()
            .replace('_', " "),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_names_its_account() {
        let sample = include_bytes!("../../../tests/fixtures/claude/claude.json");
        let id = parse(sample).unwrap().unwrap();
        assert_eq!(id.email.as_deref(), Some("dev@example.com"));
        assert_eq!(id.plan.as_deref(), Some("Max"));
        assert_eq!(id.display_name(), Some("dev@example.com"));
    }

    #[test]
    fn shapes_without_an_account_or_not_json() {
        assert_eq!(parse(b"{}").unwrap(), None);
        assert_eq!(parse(br#"{"oauthAccount": null}"#).unwrap(), None);
        assert_eq!(
            parse(br#"{"oauthAccount": {"organizationName": "Acme"}}"#)
                .unwrap()
                .unwrap()
                .display_name(),
            Some("Acme")
        );
        assert!(parse(b"[1, 2]").is_err());
        assert!(parse(br#"{"oauthAccount": {"emailAddress": 7}}"#).is_err());
        assert!(parse(b"{not json").is_err());
    }

    #[test]
    fn the_newer_file_wins_for_the_default_dir() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".claude");
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join(".claude.json");
        let new = home.path().join(".claude.json");
        std::fs::write(&old, br#"{"oauthAccount": {"emailAddress": "old@x"}}"#).unwrap();
        std::fs::write(&new, br#"{"oauthAccount": {"emailAddress": "new@x"}}"#).unwrap();
        let t = std::time::SystemTime::now();
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(t - std::time::Duration::from_secs(60))
            .unwrap();
        let id = read(&dir, Some(home.path())).unwrap().unwrap();
        assert_eq!(id.email.as_deref(), Some("new@x"));
        // Another config dir never looks at ~/.claude.json.
        let work = home.path().join(".claude-work");
        std::fs::create_dir_all(&work).unwrap();
        assert_eq!(read(&work, Some(home.path())).unwrap(), None);
    }
}
