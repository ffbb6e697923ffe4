#!/usr/bin/env bash
# Warm-run figures of issue 3: alternates ROUNDS (default 4) rounds of "1 MiB appended to the
# newest transcript" and "nothing new" (`csm blocks --json`, hyperfine, 30
# runs each) and prints the medians over all rounds, so the store's WAL is
# seen at every size it takes between checkpoints. By hand, not part of CI.
#
#   scripts/warm-bench.sh [--size 1GiB]
#
# Everything lives under BENCH_DIR (default ${TMPDIR:-/tmp}/csm-bench):
# HOME, CLAUDE_CONFIG_DIR and CSM_HOME all point there.
set -euo pipefail
size=1GiB
[ "${1:-}" = "--size" ] && size=$2
command -v hyperfine >/dev/null || { echo "needs hyperfine" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-${TMPDIR:-/tmp}/csm-bench}
target=${CARGO_TARGET_DIR:-$here/target}
(cd "$here" && cargo build --release --quiet --bin csm --example gen_history)
CSM=$target/release/csm
mkdir -p "$bench/home"
export HOME=$bench/home CLAUDE_CONFIG_DIR=$bench/warm-claude-$size CSM_HOME=$bench/warm-csm-$size
# A fresh history and store each time: every round appends 30 MiB, so a kept
# one would soon be far bigger than "$size" (one run left a 2.6 GB transcript).
rm -rf "$CLAUDE_CONFIG_DIR" "$CSM_HOME"
"$target/release/examples/gen_history" --out "$CLAUDE_CONFIG_DIR" --size "$size" --seed 1 --now now --active >/dev/null
"$CSM" blocks --json >/dev/null
victim=$(ls -t "$CLAUDE_CONFIG_DIR"/projects/*/*.jsonl | sed -n 1p)
append=$here/scripts/append-1mib.py
rounds=${ROUNDS:-4}
for k in $(seq "$rounds"); do
  hyperfine -N -w 2 -r 30 --export-json "$bench/wb-append-$k.json" --prepare "python3 $append $victim" "$CSM blocks --json" >/dev/null 2>&1
  hyperfine -N -w 3 -r 30 --export-json "$bench/wb-none-$k.json" "$CSM blocks --json" >/dev/null 2>&1
done
python3 - "$bench" "$rounds" <<'PY'
import json, statistics, sys
bench = sys.argv[1]
for kind in ["append", "none"]:
    ts = []
    meds = []
    for k in range(1, int(sys.argv[2]) + 1):
        r = json.load(open(f"{bench}/wb-{kind}-{k}.json"))["results"][0]
        ts += r["times"]; meds.append(round(r["median"] * 1000, 1))
    label = "1 MiB appended" if kind == "append" else "nothing new   "
    print(label, "median", round(statistics.median(ts) * 1000, 2), "ms over", len(ts), "runs; per-round medians", meds)
PY
