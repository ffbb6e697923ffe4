//! Command-line interface: every flag and command, with doc comments as help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Claude Code usage windows, billing periods and costs, live.
///
/// Reads Claude Code's own transcripts (no Node.js, no ccusage needed). With no
/// command, opens the live dashboard.
#[derive(Debug, Parser)]
#[command(name = "csm", version, about, propagate_version = true)]
pub struct Cli {
    /// The top-level flags; all but `--test-alert` are also accepted after a command.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// The command to run; `None` opens the live dashboard, like `csm monitor`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Whether the command prints a report and exits, so that a reader
    /// going away (`csm daily | head`) should simply end it. Long-running
    /// commands and those that talk to sockets (daemon, dashboard,
    /// notifications, downloads) keep write errors as errors.
    pub fn ends_with_its_reader(&self) -> bool {
        matches!(
            self.command,
            None | Some(
                Command::Blocks(_)
                    | Command::Daily(_)
                    | Command::Weekly(_)
                    | Command::Monthly(_)
                    | Command::Session(_)
                    | Command::Doctor(_)
                    | Command::Db(_)
                    | Command::Accounts(_)
                    | Command::Period(_)
                    | Command::Status(_)
                    | Command::Completions { .. }
            )
        )
    }

    /// `csm hook` and `csm statusline` with no flags, recognised without clap
    /// (building the full parser is a measurable part of a call that must
    /// take milliseconds); anything else goes through clap.
    pub fn claude_fast_path(mut args: impl Iterator<Item = std::ffi::OsString>) -> Option<Cli> {
        let _program = args.next()?;
        let sub = args.next()?;
        if args.next().is_some() {
            return None;
        }
        let command = match sub.to_str()? {
            "hook" => Command::Hook,
            "statusline" => Command::Statusline(StatuslineArgs::default()),
            _ => return None,
        };
        Some(Cli {
            global: GlobalArgs::default(),
            command: Some(command),
        })
    }
}

/// Flags accepted before or after any command.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Claude config directory to read (has projects/); repeat for several.
    /// Overrides CLAUDE_CONFIG_DIR and the default locations.
    #[arg(long = "claude-dir", value_name = "DIR", global = true)]
    pub claude_dir: Vec<PathBuf>,

    /// Report on one account only: its name (`csm accounts` lists them) or
    /// its Claude config dir; works when the dir is gone (its history stays
    /// in the store). Overrides --claude-dir and CLAUDE_CONFIG_DIR.
    #[arg(long, value_name = "NAME|PATH", global = true)]
    pub account: Option<String>,

    /// Configuration file [default: <base>/config.toml].
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Display time zone (IANA name such as Europe/Warsaw) [default: the system's].
    #[arg(long, short = 'z', value_name = "TZ", global = true)]
    pub timezone: Option<String>,

    /// Day of the month the billing period starts (1-31; clamped to short months).
    #[arg(long, value_name = "DAY", global = true, value_parser = clap::value_parser!(u8).range(1..=31))]
    pub start_day: Option<u8>,

    /// Windows ("sessions") included per billing period.
    #[arg(long, value_name = "N", global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub sessions: Option<u32>,

    /// How to price usage: auto (costUSD when present, else calculated),
    /// calculate (always from token counts), display (costUSD only).
    #[arg(long, value_enum, global = true)]
    pub mode: Option<CostModeArg>,

    /// Where usage comes from: transcripts (native) or ccusage (`ccusage blocks -j`).
    #[arg(long, value_enum, global = true, default_value_t = SourceArg::Transcripts)]
    pub source: SourceArg,

    /// Rebuild the history store first: re-read every transcript and
    /// recompute everything derived (the same as `csm db rebuild`).
    #[arg(long, global = true)]
    pub recalculate: bool,

    /// Run fully in memory: neither read nor write the history store.
    #[arg(long, global = true)]
    pub no_store: bool,

    /// Print what was skipped while reading (counts by reason, unknown models) to stderr.
    #[arg(long, global = true)]
    pub debug: bool,

    /// No colours (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Send a test notification through every configured backend and exit
    /// (the same as `csm notify test`).
    #[arg(long)]
    pub test_alert: bool,
}

/// `--mode`: how costs are priced; mapped onto the engine's `CostMode` (absent means auto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostModeArg {
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Auto,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Calculate,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Display,
}

/// `--source`: where usage entries are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SourceArg {
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    #[default]
    Transcripts,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Ccusage,
}

/// `csm accounts` flags.
#[derive(Debug, Args, Clone, Default)]
pub struct AccountsArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Every `csm` subcommand; each variant's doc comment is its help text.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Five-hour usage windows ("blocks"), like `ccusage blocks`.
    Blocks(BlocksArgs),
    /// Usage by day.
    Daily(ReportArgs),
    /// Usage by week.
    Weekly(WeeklyArgs),
    /// Usage by month.
    Monthly(ReportArgs),
    /// Usage by Claude Code session.
    Session(ReportArgs),
    /// Prices: show the table in use, or download the current one.
    #[command(subcommand)]
    Pricing(PricingCommand),
    /// What csm sees: data roots, files, entries, skipped lines, unknown models.
    Doctor(DoctorArgs),
    /// History store maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// The Claude accounts (config dirs) the history store holds: name,
    /// dir, present or gone, activity, entries, plan and billing period;
    /// and transcripts under no known account.
    Accounts(AccountsArgs),
    /// Live dashboard of the current window and billing period (the default command).
    Monitor(MonitorArgs),
    /// The dashboard on a freshly generated history in a temp dir: a first
    /// look without Claude Code data. Reads and writes nothing of yours.
    Demo(DemoArgs),
    /// The billing period: sessions used and left, days left, cost, max tokens.
    Period(PeriodArgs),
    /// Show, change or locate the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Notifications: send a test one, or check the alert rules now.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// The background collector that keeps monitor_data.json current for the
    /// dashboard, `csm status`, status bars and phone widgets.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// One status snapshot: from the daemon when one runs, else computed now.
    Status(StatusArgs),
    /// Claude Code statusLine command: reads Claude Code's JSON on stdin and
    /// prints one line (model, window cost and time left, today's cost,
    /// official limits, context). Installed by `csm setup claude`.
    Statusline(StatuslineArgs),
    /// Claude Code hook receiver: records the hook event on stdin for the
    /// activity panel. Prints nothing and always exits 0.
    Hook,
    /// Install csm into other tools.
    #[command(subcommand)]
    Setup(SetupCommand),
    /// Print a shell completion script (e.g. `csm completions bash > ~/.local/share/bash-completion/completions/csm`).
    Completions {
        #[allow(missing_docs)] // help text is clap's; a doc here would change --help
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Flags of `csm statusline`.
#[derive(Debug, Args, Clone, Default)]
pub struct StatuslineArgs {
    /// Bring the history store up to date and exit (what the status line
    /// starts in the background when the store is behind).
    #[arg(long, hide = true)]
    pub ingest: bool,
}

/// Subcommands of `csm setup`.
#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Merge csm's statusLine command and hooks into Claude Code's
    /// settings.json (in --claude-dir, CLAUDE_CONFIG_DIR or ~/.claude),
    /// keeping every other setting; a backup of the old file is kept.
    Claude(SetupClaudeArgs),
}

/// Flags of `csm setup claude`.
#[derive(Debug, Args, Clone, Default)]
pub struct SetupClaudeArgs {
    /// Show the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Take csm's statusLine and hooks out again (nothing else).
    #[arg(long)]
    pub uninstall: bool,

    /// Replace a statusLine command of another tool.
    #[arg(long, conflicts_with = "uninstall")]
    pub force: bool,
}

/// Flags of `csm demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Print one plain-text frame and exit.
    #[arg(long)]
    pub once: bool,

    /// Seed of the generated history (the same seed, the same history).
    #[arg(long, default_value_t = 4)]
    pub seed: u64,
}

/// Flags of `csm monitor` (also the defaults used when `csm` runs with no command).
#[derive(Debug, Args, Clone)]
pub struct MonitorArgs {
    /// Print one plain-text frame and exit (no escape codes unless stdout is a terminal).
    #[arg(long)]
    pub once: bool,

    /// Seconds between data refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub refresh: u64,

    /// Exit 0 if a csm daemon is running for this base directory, 1 if not.
    #[arg(long)]
    pub check_daemon: bool,
}

impl Default for MonitorArgs {
    fn default() -> Self {
        MonitorArgs {
            once: false,
            refresh: 2,
            check_daemon: false,
        }
    }
}

/// Flags of `csm period`.
#[derive(Debug, Args, Clone, Default)]
pub struct PeriodArgs {
    /// Output JSON.
    #[arg(long, short = 'j')]
    pub json: bool,

    /// Also show the N billing periods before the current one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=240))]
    pub history: Option<u16>,
}

/// Subcommands of `csm daemon`.
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Run in the foreground until SIGTERM/SIGINT (what a service manager starts).
    Run,
    /// Install and start the daemon as a service: launchd (macOS), systemd
    /// --user (Linux), or a cron @reboot line where neither is available.
    Install(ServiceArgs),
    /// Stop the service and remove what `install` wrote.
    Uninstall(ServiceArgs),
    /// Whether a daemon runs for this base directory: pid, uptime, last
    /// update, errors, service (exit 0 if running, 1 if not).
    Status {
        /// Output JSON.
        #[arg(long, short = 'j')]
        json: bool,
    },
    /// Stop the running daemon (SIGTERM; waits until it has exited).
    Stop,
}

/// Flags of `csm daemon install` and `csm daemon uninstall`.
#[derive(Debug, Args, Clone, Default)]
pub struct ServiceArgs {
    /// Print what would be written and run, change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Service manager to use [default: launchd on macOS, systemd when a
    /// user manager is reachable, else cron].
    #[arg(long, value_enum)]
    pub manager: Option<ManagerArg>,
}

/// `--manager`: the service manager `csm daemon install`/`uninstall` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManagerArg {
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Launchd,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Systemd,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Cron,
}

/// Flags of `csm status`.
#[derive(Debug, Args, Clone, Default)]
pub struct StatusArgs {
    /// Output: one text line, the full JSON snapshot, a Waybar custom-module
    /// object, or a tmux status-line segment.
    #[arg(long, short = 'f', value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,

    /// Read this snapshot file (e.g. a synced copy) instead of asking the daemon.
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,
}

/// `csm status --format`: the shape of the printed snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StatusFormat {
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    #[default]
    Text,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Json,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Waybar,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Tmux,
}

/// Subcommands of `csm config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration in effect (file values over defaults).
    Show,
    /// Set one key (e.g. `start_day 15`, `token_limit p90`, `alerts.desktop false`),
    /// keeping the rest of the file as it is.
    Set {
        /// Key, `section.key` for tables (`alerts.time_alert_minutes`).
        key: String,
        /// Value: a number, true/false, a TOML array, or text.
        value: String,
    },
    /// Print the configuration file's path.
    Path,
}

/// Date range, JSON output and sort order shared by the report commands.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// First day to include (YYYYMMDD or YYYY-MM-DD, display time zone).
    #[arg(long, short = 's', value_name = "DATE", value_parser = parse_date)]
    pub since: Option<jiff::civil::Date>,

    /// Last day to include (YYYYMMDD or YYYY-MM-DD, display time zone).
    #[arg(long, short = 'u', value_name = "DATE", value_parser = parse_date)]
    pub until: Option<jiff::civil::Date>,

    /// Output JSON (the same shape as ccusage 20).
    #[arg(long, short = 'j')]
    pub json: bool,

    /// Sort order, oldest first (asc) or newest first (desc).
    #[arg(long, short = 'o', value_enum)]
    pub order: Option<Order>,
}

/// `--order`: sort direction of report rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Asc,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Desc,
}

/// Flags of `csm daily`, `csm monthly` and `csm session` (and the base of `csm weekly`).
#[derive(Debug, Args, Clone, Default)]
pub struct ReportArgs {
    /// `--since`, `--until`, `--json` and `--order`.
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Per-model cost and tokens under each row.
    #[arg(long, short = 'b')]
    pub breakdown: bool,

    /// Only this project (the directory name below projects/; names starting
    /// with `-`, as Claude Code writes them, are accepted as they are).
    #[arg(long, short = 'p', value_name = "NAME", allow_hyphen_values = true)]
    pub project: Option<String>,
}

/// Flags of `csm weekly`: the report flags plus the first day of the week.
#[derive(Debug, Args, Clone, Default)]
pub struct WeeklyArgs {
    /// The flags shared with the daily and monthly reports.
    #[command(flatten)]
    pub report: ReportArgs,

    /// Day weeks start on.
    #[arg(long, short = 'w', value_enum, default_value_t = Weekday::Sunday)]
    pub start_of_week: Weekday,
}

/// `--start-of-week`: the day a weekly row starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Weekday {
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    #[default]
    Sunday,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Monday,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Tuesday,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Wednesday,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Thursday,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Friday,
    #[allow(missing_docs)] // help text is clap's; a doc here would change --help
    Saturday,
}

/// Flags of `csm blocks`.
#[derive(Debug, Args, Clone, Default)]
pub struct BlocksArgs {
    /// `--since`, `--until`, `--json` and `--order`.
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Only the active window.
    #[arg(long, short = 'a')]
    pub active: bool,

    /// Only windows of the last 3 days (and the active one).
    #[arg(long, short = 'r')]
    pub recent: bool,

    /// Token limit for the status: a number, or `max` (the largest past window).
    #[arg(long, short = 't', value_name = "N|max", value_parser = parse_token_limit)]
    pub token_limit: Option<TokenLimitArg>,

    /// Window length in hours.
    #[arg(long, short = 'n', value_name = "HOURS", default_value_t = 5.0, value_parser = parse_session_length)]
    pub session_length: f64,
}

/// `csm blocks --token-limit`, as parsed from `max` or a whole number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenLimitArg {
    /// `max`: use the largest token total of any completed window.
    Max,
    /// An explicit limit in tokens.
    Tokens(u64),
}

/// Subcommands of `csm pricing`.
#[derive(Debug, Subcommand)]
pub enum PricingCommand {
    /// Print the prices in use and where they come from.
    Show {
        /// Only models whose name contains this text.
        model: Option<String>,
        /// Output JSON.
        #[arg(long, short = 'j')]
        json: bool,
    },
    /// Download LiteLLM's current price list into <base>/pricing.json (the only
    /// command that uses the network).
    Update {
        /// Where to download from.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

/// Subcommands of `csm db`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Sizes and counts of the history store.
    Stats {
        /// Output JSON.
        #[arg(long, short = 'j')]
        json: bool,
    },
    /// Re-read every transcript and recompute everything derived, keeping
    /// entries whose transcripts are gone (the same as `--recalculate`).
    Rebuild,
}

/// Subcommands of `csm notify`.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test notification through every configured backend and report
    /// each one's result (exit 1 when none delivered).
    Test {
        /// Title instead of the standard test title.
        #[arg(long, value_name = "TEXT")]
        title: Option<String>,
        /// Body instead of the standard test text.
        #[arg(long, value_name = "TEXT")]
        body: Option<String>,
    },
    /// Evaluate the alert rules once, now, and send what is due (what the
    /// daemon does after every update; an alert already sent is never sent again).
    Check {
        /// Only print what is due: send and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Flags of `csm doctor`.
#[derive(Debug, Args, Clone, Default)]
pub struct DoctorArgs {
    /// Output JSON.
    #[arg(long, short = 'j')]
    pub json: bool,
}

fn parse_date(s: &str) -> Result<jiff::civil::Date, String> {
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    let ok_shape = digits.len() == 8 && digits.chars().all(|c| c.is_ascii_digit());
    if !ok_shape {
        return Err(format!("'{s}' is not a date: use YYYYMMDD or YYYY-MM-DD"));
    }
    let (y, m, d) = (&digits[..4], &digits[4..6], &digits[6..]);
    let parse = |x: &str| x.parse::<i16>().map_err(|e| e.to_string());
    let (y, m, d) = (parse(y)?, parse(m)?, parse(d)?);
    jiff::civil::Date::new(y, m as i8, d as i8)
        .map_err(|_| format!("'{s}' is not a valid calendar date"))
}

fn parse_token_limit(s: &str) -> Result<TokenLimitArg, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(TokenLimitArg::Max);
    }
    s.parse::<u64>()
        .map(TokenLimitArg::Tokens)
        .map_err(|_| format!("'{s}' is not a token limit: use a whole number or `max`"))
}

fn parse_session_length(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(h) if h.is_finite() && h > 0.0 && h <= 24.0 * 31.0 => Ok(h),
        _ => Err(format!("'{s}' is not a window length: use hours, e.g. 5")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dates_accept_both_shapes_and_name_bad_values() {
        assert_eq!(
            parse_date("20261120").unwrap(),
            jiff::civil::date(2026, 11, 20)
        );
        assert_eq!(
            parse_date("2026-11-20").unwrap(),
            jiff::civil::date(2026, 11, 20)
        );
        assert!(parse_date("20261340").unwrap_err().contains("20261340"));
        assert!(parse_date("yesterday").unwrap_err().contains("yesterday"));
    }

    #[test]
    fn the_claude_fast_path_matches_what_clap_would_parse() {
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        for sub in ["hook", "statusline"] {
            let fast = Cli::claude_fast_path(args(&["csm", sub]).into_iter()).unwrap();
            let slow = Cli::try_parse_from(["csm", sub]).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        }
        for other in [
            &["csm"][..],
            &["csm", "blocks"],
            &["csm", "hook", "--help"],
            &["csm", "--no-color", "statusline"],
        ] {
            assert!(Cli::claude_fast_path(args(other).into_iter()).is_none());
        }
    }

    #[test]
    fn token_limit_forms() {
        assert_eq!(parse_token_limit("MAX").unwrap(), TokenLimitArg::Max);
        assert_eq!(
            parse_token_limit("5000").unwrap(),
            TokenLimitArg::Tokens(5000)
        );
        assert!(parse_token_limit("lots").unwrap_err().contains("lots"));
    }
}
