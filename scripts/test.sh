#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests
# need (system packages included), then runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests drive for real: tmux (the dashboard's end-to-end
# and contention tests), a C compiler (SQLite is built from source), strace
# (tests/robustness/network.rs watches every socket csm opens), GNU time (peak
# memory in tests/robustness), a private D-Bus session bus with a real
# notification server on a virtual display (tests/notify_dbus.rs:
# dbus-daemon, dbus-send, dunst, Xvfb), systemd-analyze (the daemon's user
# unit is verified with it; systemd need not be running) and node (the
# Scriptable widget's logic runs under `node --test`).
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v strace >/dev/null || need+=(strace)
[ -x /usr/bin/time ] || need+=(time)
command -v cc >/dev/null || need+=(build-essential)
{ command -v dbus-daemon >/dev/null && command -v dbus-send >/dev/null; } || need+=(dbus)
command -v dunst >/dev/null || need+=(dunst)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v node >/dev/null || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
fi
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# The packages above are installed now: a test whose tool is missing fails
# instead of skipping itself.
export CSM_REQUIRE_SYSTEM_TOOLS=1
cargo test --all-targets --locked
cargo test --doc --locked
