//! `config.toml`: loading, validation and the base directory.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where csm keeps its own files. `CSM_HOME` wins, then the original monitor's
/// location under the XDG config dir.
pub fn base_dir(
    csm_home: Option<&str>,
    xdg_config_home: Option<&str>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(h) = csm_home.filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(h));
    }
    if let Some(x) = xdg_config_home.filter(|s| !s.is_empty()) {
        return Some(Path::new(x).join("claude-monitor"));
    }
    home.map(|h| h.join(".config").join("claude-monitor"))
}

/// Why the configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The file does not parse, or a value is invalid.
    #[error("config file {path}: {message}")]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, naming the key and line when known.
        message: String,
    },
}

/// The token count a window is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenLimit {
    /// The largest window ever seen.
    #[default]
    Max,
    /// 90th percentile of completed windows over the last 8 days.
    P90,
    /// This many tokens.
    Fixed(u64),
}

impl<'de> Deserialize<'de> for TokenLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) if n > 0 => Ok(TokenLimit::Fixed(n as u64)),
            Raw::Number(n) => Err(serde::de::Error::custom(format!(
                "token_limit must be positive, got {n}"
            ))),
            Raw::Text(s) if s == "max" => Ok(TokenLimit::Max),
            Raw::Text(s) if s == "p90" => Ok(TokenLimit::P90),
            Raw::Text(s) => Err(serde::de::Error::custom(format!(
                "token_limit must be \"max\", \"p90\" or a number, got \"{s}\""
            ))),
        }
    }
}

impl Serialize for TokenLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TokenLimit::Max => s.serialize_str("max"),
            TokenLimit::P90 => s.serialize_str("p90"),
            TokenLimit::Fixed(n) => s.serialize_u64(*n),
        }
    }
}

/// The contents of `config.toml`; every key is optional and unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Day of the month the billing period starts (1–31; default 1).
    pub start_day: u8,
    /// Five-hour windows included per billing period (default 50).
    pub sessions_per_period: u32,
    /// Display time zone as an IANA name (unset: the system's).
    pub timezone: Option<String>,
    /// What a window's tokens are measured against (default `max`).
    pub token_limit: TokenLimit,
    /// The plan's price per billing period in USD, for the value ratio.
    pub plan_price_usd: Option<f64>,
    /// The daemon's fallback poll interval in seconds (default 10).
    pub interval_seconds: u64,
    /// Folders that get a copy of `monitor_data.json` (e.g. for a phone widget).
    pub sync_dirs: Vec<PathBuf>,
    /// The `[alerts]` table.
    pub alerts: Alerts,
    /// `[[accounts]]`: Claude accounts (config dirs) with their own plan
    /// settings; the top-level values are the defaults.
    pub accounts: Vec<AccountConfig>,
}

/// One `[[accounts]]` entry of `config.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The name `--account` selects it by, shown when Claude Code's own
    /// `.claude.json` names no e-mail or organisation.
    pub name: String,
    /// The account's Claude config dir (`~` allowed), as in `CLAUDE_CONFIG_DIR`.
    pub claude_dir: PathBuf,
    /// This account's billing day (default: the top-level `start_day`).
    pub start_day: Option<u8>,
    /// This account's windows per billing period.
    pub sessions_per_period: Option<u32>,
    /// This account's plan price per billing period in USD.
    pub plan_price_usd: Option<f64>,
    /// This account's token limit for the estimate bar.
    pub token_limit: Option<TokenLimit>,
}

/// The `[alerts]` table of `config.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// Alert when the active window has this many minutes left (default 30; 0 turns it off).
    pub time_alert_minutes: u32,
    /// Alert after this many minutes without new usage in an active window (default 10; 0 turns it off).
    pub inactivity_alert_minutes: u32,
    /// Usage percentages (1–100) to alert at (default 80 and 95; empty turns it off).
    pub limit_thresholds: Vec<u8>,
    /// Send alerts as desktop notifications (default true).
    pub desktop: bool,
    /// Program and arguments run for each alert (run without a shell; empty: none).
    pub notify_command: Vec<String>,
    /// Tell when a usage limit that was hit has reset.
    pub reset_alert: bool,
    /// Tell when usage cannot be read for several updates in a row.
    pub source_alert: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            start_day: 1,
            sessions_per_period: 50,
            timezone: None,
            token_limit: TokenLimit::Max,
            plan_price_usd: None,
            interval_seconds: 10,
            sync_dirs: Vec::new(),
            alerts: Alerts::default(),
            accounts: Vec::new(),
        }
    }
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            time_alert_minutes: 30,
            inactivity_alert_minutes: 10,
            limit_thresholds: vec![80, 95],
            desktop: true,
            notify_command: Vec::new(),
            reset_alert: true,
            source_alert: true,
        }
    }
}

impl Config {
    /// Reads `path`; a missing file means defaults, anything else wrong is an
    /// error that names the key and line. The file is never rewritten here.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses and validates `text`; the error names the key and, when found, its line.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        config.validate().map_err(|(key, why)| {
            let line = line_of_key(text, key)
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            format!("{line}{key}: {why}")
        })?;
        Ok(config)
    }

    /// The settings of one account: its `[[accounts]]` values over the
    /// top-level ones (flags are applied over this by the command layer).
    pub fn for_account(&self, account: &AccountConfig) -> Config {
        let mut c = self.clone();
        if let Some(d) = account.start_day {
            c.start_day = d;
        }
        if let Some(s) = account.sessions_per_period {
            c.sessions_per_period = s;
        }
        if let Some(p) = account.plan_price_usd {
            c.plan_price_usd = Some(p);
        }
        if let Some(t) = account.token_limit {
            c.token_limit = t;
        }
        c
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        for a in &self.accounts {
            if a.name.trim().is_empty() {
                return Err(("name", "an [[accounts]] entry needs a name".into()));
            }
            if self.accounts.iter().filter(|b| b.name == a.name).count() > 1 {
                return Err(("name", format!("two [[accounts]] are named \"{}\"", a.name)));
            }
            if a.claude_dir.as_os_str().is_empty() {
                return Err((
                    "claude_dir",
                    format!("account \"{}\" needs a claude_dir", a.name),
                ));
            }
            self.for_account(a)
                .validate_plan()
                .map_err(|(key, why)| (key, format!("account \"{}\": {why}", a.name)))?;
        }
        self.validate_plan()?;
        if self.interval_seconds == 0 {
            return Err(("interval_seconds", "must be at least 1".into()));
        }
        self.validate_rest()
    }

    /// The values an account may override.
    fn validate_plan(&self) -> Result<(), (&'static str, String)> {
        if !(1..=31).contains(&self.start_day) {
            return Err(("start_day", format!("must be 1-31, got {}", self.start_day)));
        }
        if self.sessions_per_period == 0 {
            return Err(("sessions_per_period", "must be at least 1".into()));
        }
        if let Some(p) = self.plan_price_usd
            && !(p.is_finite() && p > 0.0)
        {
            return Err((
                "plan_price_usd",
                format!("must be a positive amount, got {p}"),
            ));
        }
        Ok(())
    }

    fn validate_rest(&self) -> Result<(), (&'static str, String)> {
        if let Some(tz) = &self.timezone
            && crate::zone::by_name(tz).is_err()
        {
            return Err((
                "timezone",
                format!(
                    "unknown time zone \"{tz}\" (use an IANA name such as Europe/Warsaw; `timedatectl list-timezones` lists them)"
                ),
            ));
        }
        if let Some(t) = self
            .alerts
            .limit_thresholds
            .iter()
            .find(|t| !(1..=100).contains(*t))
        {
            return Err((
                "limit_thresholds",
                format!("thresholds are percentages 1-100, got {t}"),
            ));
        }
        if self
            .alerts
            .notify_command
            .first()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err((
                "notify_command",
                "the first element is the program to run and cannot be empty".into(),
            ));
        }
        Ok(())
    }
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    let Some(span) = e.span() else {
        return msg.to_string();
    };
    let at = span.start.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    // Name the key of that line when the message does not already.
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !msg.contains(*k));
    match key {
        Some(k) => format!("line {line_no}: {k}: {msg}"),
        None => format!("line {line_no}: {msg}"),
    }
}

fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn full_example_parses() {
        let c = Config::parse(
            r#"start_day = 15
sessions_per_period = 40
timezone = "Europe/Warsaw"
token_limit = 2000000
plan_price_usd = 200
interval_seconds = 5
sync_dirs = ["/tmp/x"]
[alerts]
time_alert_minutes = 20
inactivity_alert_minutes = 15
limit_thresholds = [80, 95]
desktop = false
notify_command = ["ntfy", "publish", "t"]
"#,
        )
        .unwrap();
        assert_eq!(c.start_day, 15);
        assert_eq!(c.token_limit, TokenLimit::Fixed(2_000_000));
        assert_eq!(c.alerts.notify_command.len(), 3);
        assert_eq!(
            Config::parse("token_limit = \"p90\"").unwrap().token_limit,
            TokenLimit::P90
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::parse("start_day = 3\nsesions = 5\n").unwrap_err();
        assert!(err.contains("sesions"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = Config::parse("start_day = 2\nsessions_per_period = \"many\"\n").unwrap_err();
        assert!(
            err.contains("sessions_per_period") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let err = Config::parse("\n\nstart_day = 40\n").unwrap_err();
        assert!(
            err.contains("start_day") && err.contains("line 3") && err.contains("40"),
            "{err}"
        );
        let err = Config::parse("timezone = \"Mars/Base\"").unwrap_err();
        assert!(err.contains("Mars/Base"), "{err}");
        let err = Config::parse("token_limit = \"lots\"").unwrap_err();
        assert!(err.contains("lots") && err.contains("line 1"), "{err}");
        let err = Config::parse("[alerts]\nlimit_thresholds = [80, 180]").unwrap_err();
        assert!(err.contains("180"), "{err}");
        let err = Config::parse("[alerts]\n\nnotify_command = [\"\", \"x\"]").unwrap_err();
        assert!(
            err.contains("notify_command") && err.contains("line 3"),
            "{err}"
        );
        let c = Config::parse("[alerts]\nreset_alert = false\nsource_alert = false").unwrap();
        assert!(!c.alerts.reset_alert && !c.alerts.source_alert);
    }

    #[test]
    fn base_dir_precedence() {
        let home = Path::new("/h");
        assert_eq!(
            base_dir(Some("/c"), Some("/x"), Some(home)).unwrap(),
            PathBuf::from("/c")
        );
        assert_eq!(
            base_dir(None, Some("/x"), Some(home)).unwrap(),
            PathBuf::from("/x/claude-monitor")
        );
        assert_eq!(
            base_dir(Some(""), None, Some(home)).unwrap(),
            PathBuf::from("/h/.config/claude-monitor")
        );
    }
}
