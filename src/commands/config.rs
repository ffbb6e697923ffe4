//! `csm config show|set|path`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::cli::ConfigCommand;
use crate::config::Config;
use crate::env::UsageError;

/// Runs `csm config path`, `show` or `set` on the file at `config_path` (`base_dir` is unused).
pub fn run(cmd: &ConfigCommand, base_dir: &Path, config_path: &Path) -> Result<ExitCode> {
    let _ = base_dir;
    match cmd {
        ConfigCommand::Path => {
            println!("{}", config_path.display());
        }
        ConfigCommand::Show => {
            let config = Config::load(config_path).map_err(|e| UsageError(e.to_string()))?;
            if config_path.exists() {
                println!("# {}", config_path.display());
            } else {
                println!("# {} does not exist: defaults", config_path.display());
            }
            print!("{}", show(&config)?);
        }
        ConfigCommand::Set { key, value } => {
            let old = match std::fs::read_to_string(config_path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot read {}", config_path.display()));
                }
            };
            let new = set_key(&old, key, value).map_err(UsageError)?;
            crate::fsutil::write_atomic(config_path, new.as_bytes(), 0o600)
                .with_context(|| format!("cannot write {}", config_path.display()))?;
            eprintln!("{}: {key} set", config_path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The configuration in effect as TOML, unset optional keys as comments.
pub fn show(config: &Config) -> Result<String> {
    let mut text = toml::to_string(config).context("cannot print the configuration")?;
    if config.timezone.is_none() {
        text.insert_str(0, "# timezone: the system's\n");
    }
    if config.plan_price_usd.is_none() {
        text.insert_str(0, "# plan_price_usd: not set\n");
    }
    Ok(text)
}

/// `text` with `key` (`name` or `table.name`) set to `value`, comments and
/// layout kept. The result must be a valid config as a whole: a file that is
/// already invalid (an unknown key, a bad value) is refused rather than
/// rewritten, with the error naming the key and line.
pub fn set_key(text: &str, key: &str, value: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        format!("the config file does not parse: {}", e.message())
    })?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) || parts.len() > 2 {
        return Err(format!("invalid key '{key}': use `name` or `table.name`"));
    }
    let parsed = parse_value(value);
    let table = doc.as_table_mut();
    match parts.as_slice() {
        [name] => {
            table[*name] = toml_edit::Item::Value(parsed);
        }
        [section, name] => {
            let entry = table
                .entry(section)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
            let Some(t) = entry.as_table_like_mut() else {
                return Err(format!("'{section}' is not a table in the config file"));
            };
            t.insert(name, toml_edit::Item::Value(parsed));
        }
        _ => return Err(format!("invalid key '{key}'")),
    }
    let new = doc.to_string();
    Config::parse(&new).map_err(|e| format!("not changed: {e}"))?;
    Ok(new)
}

/// A TOML value when `value` is one (`15`, `true`, `[80, 95]`, `"x"`), else
/// the text itself as a string (`p90`, `Europe/Warsaw`).
fn parse_value(value: &str) -> toml_edit::Value {
    match value.trim().parse::<toml_edit::Value>() {
        Ok(v) => v.decorated(" ", ""),
        Err(_) => toml_edit::Value::from(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_comments_and_other_keys() {
        let old = "# my settings\nstart_day = 3 # payday\n\n[alerts]\ndesktop = true\n";
        let new = set_key(old, "sessions_per_period", "40").unwrap();
        assert!(
            new.contains("# my settings") && new.contains("# payday"),
            "{new}"
        );
        let c = Config::parse(&new).unwrap();
        assert_eq!((c.start_day, c.sessions_per_period), (3, 40));
        let new = set_key(&new, "alerts.desktop", "false").unwrap();
        assert!(!Config::parse(&new).unwrap().alerts.desktop);
        let new = set_key(&new, "token_limit", "p90").unwrap();
        assert!(new.contains("token_limit = \"p90\""), "{new}");
        let new = set_key(&new, "timezone", "Europe/Warsaw").unwrap();
        assert!(new.contains("timezone = \"Europe/Warsaw\""), "{new}");
        let new = set_key(&new, "alerts.limit_thresholds", "[70, 90]").unwrap();
        assert_eq!(
            Config::parse(&new).unwrap().alerts.limit_thresholds,
            vec![70, 90]
        );
        let new = set_key("", "alerts.time_alert_minutes", "15").unwrap();
        assert_eq!(Config::parse(&new).unwrap().alerts.time_alert_minutes, 15);
        // A replaced value keeps the usual spacing (it was `start_day =4`).
        let new = set_key("start_day = 1\n", "start_day", "4").unwrap();
        assert_eq!(new, "start_day = 4\n");
    }

    #[test]
    fn set_refuses_bad_values_unknown_keys_and_broken_files() {
        let err = set_key("", "start_day", "40").unwrap_err();
        assert!(err.contains("start_day") && err.contains("40"), "{err}");
        let err = set_key("", "sesions", "4").unwrap_err();
        assert!(err.contains("sesions"), "{err}");
        // An unknown key already in the file is never silently kept or dropped.
        let err = set_key("start_day = 2\nfoo = 1\n", "start_day", "3").unwrap_err();
        assert!(err.contains("foo") && err.contains("line 2"), "{err}");
        let err = set_key("start_day = = 2", "start_day", "3").unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
        let err = set_key("start_day = 1\n", "start_day.x", "3").unwrap_err();
        assert!(err.contains("start_day"), "{err}");
    }

    #[test]
    fn show_prints_a_file_that_parses_back() {
        let c = Config::parse("start_day = 9\ntoken_limit = 5000\nplan_price_usd = 100\n").unwrap();
        let text = show(&c).unwrap();
        assert_eq!(Config::parse(&text).unwrap(), c);
        let d = show(&Config::default()).unwrap();
        assert_eq!(Config::parse(&d).unwrap(), Config::default());
    }
}
