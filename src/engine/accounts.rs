//! Accounts: the Claude config dirs a store holds history for, their names
//! and their own plan settings. An account is one data root, identified by
//! its canonical `projects/` directory.

use std::path::{Path, PathBuf};

use super::Settings;
use crate::config::{AccountConfig, Config};
use crate::ingest::claude::account::{self, Identity};
use crate::ingest::discover::{RootRequest, projects_dir_of};
use crate::store::{Store, StoredRoot};

/// One account as csm knows it: from the store, the config, or both.
#[derive(Clone, Debug)]
pub struct Account {
    /// The name shown: `.claude.json`'s e-mail or organisation, else the
    /// `[[accounts]]` name, else the config dir's name.
    pub name: String,
    /// The `projects/` directory (the data root).
    pub projects_dir: PathBuf,
    /// The Claude config dir holding it.
    pub config_dir: PathBuf,
    /// Whether the directory is on disk.
    pub present: bool,
    /// Who Claude Code says the account is, when its `.claude.json` says.
    pub identity: Option<Identity>,
    /// Why `.claude.json` could not be read, when it could not.
    pub identity_error: Option<String>,
    /// Its `[[accounts]]` entry.
    pub configured: Option<AccountConfig>,
    /// What the store holds for it.
    pub stored: Option<StoredRoot>,
}

impl Account {
    /// The settings that apply to this account: its `[[accounts]]` values
    /// over the top-level ones.
    pub fn config(&self, top: &Config) -> Config {
        match &self.configured {
            Some(a) => top.for_account(a),
            None => top.clone(),
        }
    }

    /// Names `--account` accepts for it besides its path.
    fn names(&self) -> impl Iterator<Item = &str> {
        let id = self.identity.as_ref();
        [
            Some(self.name.as_str()),
            self.configured.as_ref().map(|c| c.name.as_str()),
            id.and_then(|i| i.email.as_deref()),
            id.and_then(|i| i.organization.as_deref()),
            self.config_dir.file_name().and_then(|n| n.to_str()),
        ]
        .into_iter()
        .flatten()
    }
}

/// The config dir of a `projects/` directory.
pub fn config_dir_of(projects_dir: &Path) -> PathBuf {
    projects_dir
        .parent()
        .map_or_else(|| projects_dir.to_path_buf(), Path::to_path_buf)
}

/// The `projects/` dir an `[[accounts]]` entry names (`~` expanded; the
/// canonical one when it exists).
pub fn configured_projects_dir(a: &AccountConfig, roots: &RootRequest) -> PathBuf {
    let dir = roots.expand(&a.claude_dir);
    projects_dir_of(&dir).unwrap_or_else(|| {
        if dir.file_name().is_some_and(|n| n == "projects") {
            dir
        } else {
            dir.join("projects")
        }
    })
}

/// The `[[accounts]]` entry whose dir is `projects_dir`.
pub fn configured_for<'c>(
    config: &'c Config,
    roots: &RootRequest,
    projects_dir: &Path,
) -> Option<&'c AccountConfig> {
    config
        .accounts
        .iter()
        .find(|a| configured_projects_dir(a, roots) == projects_dir)
}

/// Describes the account at `projects_dir`.
pub fn describe(
    projects_dir: &Path,
    config: &Config,
    roots: &RootRequest,
    stored: Option<StoredRoot>,
) -> Account {
    let config_dir = config_dir_of(projects_dir);
    let (identity, identity_error) = match account::read(&config_dir, roots.home.as_deref()) {
        Ok(id) => (id, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let configured = configured_for(config, roots, projects_dir).cloned();
    let name = identity
        .as_ref()
        .and_then(|i| i.display_name())
        .map(str::to_string)
        .or_else(|| configured.as_ref().map(|c| c.name.clone()))
        .unwrap_or_else(|| {
            config_dir.file_name().map_or_else(
                || config_dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
    Account {
        name,
        present: projects_dir.is_dir(),
        projects_dir: projects_dir.to_path_buf(),
        config_dir,
        identity,
        identity_error,
        configured,
        stored,
    }
}

/// Every account csm knows: those the store holds history for, then the
/// configured ones it has not read yet.
pub fn known(
    store: Option<&Store>,
    config: &Config,
    roots: &RootRequest,
) -> anyhow::Result<Vec<Account>> {
    let mut out: Vec<Account> = Vec::new();
    if let Some(store) = store {
        for r in store.known_roots()? {
            let path = r.path.clone();
            out.push(describe(&path, config, roots, Some(r)));
        }
    }
    for a in &config.accounts {
        let dir = configured_projects_dir(a, roots);
        if !out.iter().any(|k| k.projects_dir == dir) {
            out.push(describe(&dir, config, roots, None));
        }
    }
    Ok(out)
}

/// Whether the run covers every configured account one by one (see
/// [`watched`]), without reading anything.
pub fn covers_several(s: &Settings) -> bool {
    s.config.accounts.len() >= 2 && s.roots.account.is_none() && s.roots.explicit.is_empty()
}

/// One account of several that a run covers.
#[derive(Clone)]
pub struct Watched {
    /// The account's name.
    pub name: String,
    /// Its Claude config dir.
    pub config_dir: PathBuf,
    /// The run's settings narrowed to it: its root only, its plan settings.
    pub settings: Settings,
}

/// The accounts a run covers one by one: every configured account when two
/// or more are configured and the run names none (`--account`,
/// `--claude-dir`); else none, and the run is one account (or the union of
/// its roots).
pub fn watched(s: &Settings) -> Vec<Watched> {
    if !covers_several(s) {
        return Vec::new();
    }
    s.config
        .accounts
        .iter()
        .map(|a| {
            let dir = configured_projects_dir(a, &s.roots);
            let described = describe(&dir, &s.config, &s.roots, None);
            let mut settings = s.clone();
            settings.roots.account = Some(dir);
            settings.config = s.config.for_account(a);
            settings.account = Some(described.name.clone());
            Watched {
                name: described.name,
                config_dir: described.config_dir,
                settings,
            }
        })
        .collect()
}

/// The prefix of the alert keys of `account` (one of several covered):
/// each account's alerts are remembered apart, so the same window rule
/// fires once per account.
pub fn alert_key_prefix(account: &str) -> String {
    format!("account[{account}]:")
}

/// Whether an alert remembered under `key` is one of `account`'s (`None`:
/// a run that covers one account, whose keys carry no prefix).
pub fn alert_is_of(key: &str, account: Option<&str>) -> bool {
    match account {
        Some(a) => key.starts_with(&alert_key_prefix(a)),
        None => !key.starts_with("account["),
    }
}

/// The `projects/` dir `--account SELECTOR` names: an account's name
/// (configured, e-mail, organisation or dir name) or a path, also of an
/// account whose dir is gone but whose history the store holds.
pub fn select(
    selector: &str,
    accounts: &[Account],
    roots: &RootRequest,
) -> Result<PathBuf, String> {
    if let Some(a) = accounts.iter().find(|a| a.names().any(|n| n == selector)) {
        return Ok(a.projects_dir.clone());
    }
    let path = roots.expand(Path::new(selector));
    if let Some(dir) = projects_dir_of(&path) {
        return Ok(dir);
    }
    let as_projects = path.join("projects");
    if let Some(a) = accounts
        .iter()
        .find(|a| a.projects_dir == path || a.projects_dir == as_projects || a.config_dir == path)
    {
        return Ok(a.projects_dir.clone());
    }
    let list: Vec<String> = accounts
        .iter()
        .map(|a| format!("{} ({})", a.name, a.config_dir.display()))
        .collect();
    Err(format!(
        "invalid value '{selector}' for --account: no such account{}",
        if list.is_empty() {
            " (the history store knows none yet)".to_string()
        } else {
            format!("; known: {}", list.join(", "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(home: &Path) -> RootRequest {
        RootRequest {
            explicit: Vec::new(),
            env_value: None,
            home: Some(home.to_path_buf()),
            xdg_config_home: None,
            account: None,
        }
    }

    #[test]
    fn an_account_is_found_by_name_or_path_even_when_gone() {
        let home = tempfile::tempdir().unwrap();
        let work = home.path().join(".claude-work");
        std::fs::create_dir_all(work.join("projects")).unwrap();
        let config = Config::parse(
            "[[accounts]]\nname = \"work\"\nclaude_dir = \"~/.claude-work\"\nstart_day = 15\n",
        )
        .unwrap();
        let req = request(home.path());
        let accounts = known(None, &config, &req).unwrap();
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].name, "work");
        assert_eq!(accounts[0].config(&config).start_day, 15);
        let dir = std::fs::canonicalize(work.join("projects")).unwrap();
        assert_eq!(select("work", &accounts, &req).unwrap(), dir);
        assert_eq!(select("~/.claude-work", &accounts, &req).unwrap(), dir);
        assert_eq!(select(".claude-work", &accounts, &req).unwrap(), dir);

        std::fs::remove_dir_all(&work).unwrap();
        let gone = known(None, &config, &req).unwrap();
        assert!(!gone[0].present);
        assert_eq!(select("work", &gone, &req).unwrap(), dir);
        let err = select("personal", &gone, &req).unwrap_err();
        assert!(
            err.contains("'personal'") && err.contains("work ("),
            "{err}"
        );
    }
}
