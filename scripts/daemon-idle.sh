#!/usr/bin/env bash
# Idle cost of the daemon: CPU share and RSS of `csm daemon run` over a quiet
# period on a generated history (nothing appended), from /proc/PID/{stat,status}.
#   scripts/daemon-idle.sh [SECONDS=300] [SIZE=64MiB]
# Uses the release build; everything lives in a temp dir (HOME included).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
size=${2:-64MiB}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin csm
cargo build --quiet --example gen_history
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$target/debug/examples/gen_history" --out "$tmp/claude" --size "$size" --seed 7 --now now --active >/dev/null
export HOME="$tmp/home" CSM_HOME="$tmp/csm" CLAUDE_CONFIG_DIR="$tmp/claude"
mkdir -p "$HOME"
"$target/release/csm" daemon run &
pid=$!
# Let the first (cold) ingest finish: the snapshot appears after it.
until [ -s "$CSM_HOME/monitor_data.json" ]; do sleep 0.2; done
sleep 5
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
rss_max=0
for _ in $(seq "$secs"); do
  sleep 1
  r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  [ "$r" -gt "$rss_max" ] && rss_max=$r
done
c1=$(cpu); t1=$(date +%s.%N)
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
awk -v c="$((c1 - c0))" -v hz="$tick" -v t0="$t0" -v t1="$t1" -v rss="$rss_max" -v hwm="$hwm" -v size="$size" 'BEGIN {
  wall = t1 - t0; cpu = c / hz
  printf "history %s, idle %.0f s: CPU %.2f s = %.3f %% of one core; RSS max %.1f MiB (peak incl. cold ingest %.1f MiB)\n",
    size, wall, cpu, 100 * cpu / wall, rss / 1024, hwm / 1024
}'
