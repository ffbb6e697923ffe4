#!/usr/bin/env bash
# Times csm against ccusage 20.0.24 and 18.0.11 on generated histories, side
# by side (hyperfine medians, ratios, peak RSS). Heavy: not part of CI.
#
#   scripts/bench.sh [--sizes "64MiB 1GiB"] [--runs 5] [--no-ccusage18]
#
# Histories are generated under BENCH_DIR (default ${TMPDIR:-/tmp}/csm-bench);
# every tool runs with HOME, CLAUDE_CONFIG_DIR and CSM_HOME there.
set -euo pipefail
sizes="64MiB 1GiB"
runs=5
with18=1
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-ccusage18) with18=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-${TMPDIR:-/tmp}/csm-bench}
mkdir -p "$bench"

. "$here/scripts/ccusage.sh"
cc20=$(ccusage_cmd 20.0.24 "$bench/ccusage20")
if [ "$with18" = 1 ]; then
  cc18=$(ccusage_cmd 18.0.11 "$bench/ccusage18")
fi

(cd "$here" && cargo build --release --quiet --bin csm --example gen_history)
csm=$here/target/release/csm
gen=$here/target/release/examples/gen_history

peak() { # label command... : median peak RSS of 3 runs, in MiB
  local label=$1; shift
  local out vals=()
  out=$(mktemp)
  for _ in 1 2 3; do
    if [ -n "${PREP:-}" ]; then eval "$PREP"; fi
    /usr/bin/time -f '%M' -o "$out" "$@" >/dev/null 2>&1 || true
    vals+=("$(tail -1 "$out")")
  done
  rm -f "$out"
  printf '%s\n' "${vals[@]}" | sort -n | sed -n 2p |
    awk -v l="$label" '{printf "  peak RSS %-28s %6.1f MiB\n", l, $1/1024}'
}

for size in $sizes; do
  data=$bench/claude-$size
  # Fresh every time: the warm part below appends to it, and a kept history
  # grows past "$size" run after run.
  rm -rf "$data"
  "$gen" --out "$data" --size "$size" --seed 1 --now now --active
  export HOME=$bench/home CLAUDE_CONFIG_DIR=$data CSM_HOME=$bench/csm-$size
  mkdir -p "$HOME"
  cat "$data"/projects/*/*.jsonl "$data"/projects/*/*/*/*.jsonl >/dev/null 2>&1 || true
  echo "== $size: cold (empty store, built during the run) vs ccusage"
  cmds=(--command-name "csm cold" --prepare "rm -rf $CSM_HOME" "$csm blocks --json"
        --command-name "csm --no-store" "$csm blocks --json --no-store"
        --command-name "ccusage 20.0.24" "$cc20 blocks --json --offline")
  if [ "$with18" = 1 ]; then
    cmds+=(--command-name "ccusage 18.0.11" "$cc18 blocks --json --offline")
  fi
  hyperfine -N --warmup 1 --runs "$runs" --style basic --export-json "$bench/cold-$size.json" "${cmds[@]}" 2>&1 | grep -v "^ *$"
  python3 - "$bench/cold-$size.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
csm = r["csm cold"]
for k, v in r.items():
    print(f"  median {k:<18} {v:8.3f} s   csm cold / this = {csm / v:5.2f}")
PY
  PREP="rm -rf $CSM_HOME" peak "csm cold" "$csm" blocks --json
  peak "csm --no-store" "$csm" blocks --json --no-store
  peak "ccusage 20.0.24" "$cc20" blocks --json --offline

  echo "== $size: warm"
  "$csm" blocks --json >/dev/null
  victim=$(ls -t "$data"/projects/*/*.jsonl | sed -n 1p)
  append=$here/scripts/append-1mib.py
  # One --prepare per command: a single one would run before both.
  hyperfine -N --warmup 3 --runs $((runs * 4)) --style basic --export-json "$bench/warm-$size.json" \
    --prepare true --prepare "python3 $append $victim" \
    --command-name "warm, nothing new" "$csm blocks --json" \
    --command-name "warm, +1 MiB appended" "$csm blocks --json" 2>&1 | grep -v "^ *$"
  python3 - "$bench/warm-$size.json" <<'PY'
import json, sys
for x in json.load(open(sys.argv[1]))["results"]:
    print(f"  median {x['command']:<24} {x['median'] * 1000:7.1f} ms")
PY
  peak "csm warm" "$csm" blocks --json
done
