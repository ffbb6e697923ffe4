//! Files csm writes are private (SPEC 1): the store (with its WAL, shared
//! memory and lock files), config, prices and logs are 0600, directories
//! 0700, whatever the umask. Every command runs here with umask 000, so a
//! file not created private on purpose would come out world-writable.

use std::path::Path;
use std::process::Command;

use crate::support::{Sandbox, small_history};
use crate::tools::{assert_private_tree, serve_prices, with_umask};

/// Every command that writes below the base dir, in an order that makes
/// each write something (the lead adds `daemon run`, `statusline`, `hook`
/// and `notify test` here as they land).
fn writing_commands(prices_url: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        v(&["blocks", "--json"]),
        v(&["daily", "--json"]),
        v(&["period", "--json"]),
        v(&["config", "set", "start_day", "3"]),
        v(&["config", "set", "alerts.limit_thresholds", "[70, 90]"]),
        v(&["pricing", "update", "--url", prices_url]),
        v(&["db", "rebuild"]),
        v(&["db", "stats"]),
        v(&["doctor", "--json"]),
        v(&["monitor", "--once"]),
    ]
}

fn run(sb: &Sandbox, home: &Path, args: &[String]) {
    let mut cmd: Command = sb.process(home);
    cmd.args(args);
    let out = with_umask(&mut cmd, 0o000).output().unwrap();
    assert!(
        out.status.success(),
        "csm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn everything_csm_writes_is_private_even_with_umask_000() {
    let sb = Sandbox::new();
    small_history(&sb);
    // A base dir whose parents do not exist yet: they are created private too.
    let nested = sb.path().join("deep");
    let home = nested.join("er").join("csm");
    for args in writing_commands(&serve_prices()) {
        run(&sb, &home, &args);
    }
    assert_private_tree(&nested, &[]);
    let files = assert_private_tree(&home, &[]);
    for want in ["history.db", "config.toml", "pricing.json"] {
        assert!(files.iter().any(|f| f == want), "no {want} in {files:?}");
    }
}
