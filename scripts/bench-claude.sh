#!/usr/bin/env bash
# Times `csm statusline` and `csm hook` on a warm store over a generated
# history, and `ccusage statusline` 20.0.24 on the same payload (hyperfine
# medians), then how long bad stdin takes. By hand, not part of CI.
#
#   scripts/bench-claude.sh [--size 64MiB] [--runs 200] [--no-build]
#
# Everything lives under BENCH_DIR (default ${TMPDIR:-/tmp}/csm-bench-claude);
# every tool runs with HOME, CLAUDE_CONFIG_DIR and CSM_HOME there.
set -euo pipefail
size=64MiB
runs=200
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-${TMPDIR:-/tmp}/csm-bench-claude}
mkdir -p "$bench"

. "$here/scripts/ccusage.sh"
cc20=$(ccusage_cmd 20.0.24 "$bench/ccusage20")

if [ "$build" = 1 ]; then
  (cd "$here" && cargo build --release --quiet --bin csm --example gen_history)
fi
target=${CARGO_TARGET_DIR:-$here/target}
csm=$target/release/csm
gen=$target/release/examples/gen_history

data=$bench/claude-$size
if [ ! -d "$data/projects" ]; then
  "$gen" --out "$data" --size "$size" --seed 1 --now now --active
fi
export HOME=$bench/home CLAUDE_CONFIG_DIR=$data CSM_HOME=$bench/csm-$size
mkdir -p "$HOME"
unset NO_COLOR CSM_NOW
"$csm" blocks --json >/dev/null

# The payload: the sample with rate_limits, pointing at the newest
# transcript (so the "is the store behind" check does its real work) and
# with reset times in the future.
victim=$(ls -t "$data"/projects/*/*.jsonl | sed -n 1p)
now=$(date +%s)
payload=$bench/payload.json
python3 - "$here/tests/fixtures/claude/statusline-with-rate-limits.json" "$victim" "$now" >"$payload" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
now = int(sys.argv[3])
p["transcript_path"] = sys.argv[2]
p["rate_limits"]["five_hour"]["resets_at"] = now + 7200
p["rate_limits"]["seven_day"]["resets_at"] = now + 3 * 86400
print(json.dumps(p))
PY
hook=$bench/hook-event.json
sed -n 3p "$here/tests/fixtures/claude/hook-events.jsonl" >"$hook"
"$csm" statusline <"$payload"
echo
"$cc20" statusline <"$payload" || true
echo

echo "== statusline on a warm store over $size (median of $runs)"
hyperfine --warmup 10 --runs "$runs" --style basic --export-json "$bench/statusline.json" \
  --command-name "csm statusline" "$csm statusline < $payload" \
  --command-name "ccusage 20.0.24 statusline" "$cc20 statusline < $payload" 2>&1 | grep -v "^ *$"
echo "== hook (median of $runs)"
hyperfine --warmup 10 --runs "$runs" --style basic --export-json "$bench/hook.json" \
  --command-name "csm hook" "$csm hook < $hook" 2>&1 | grep -v "^ *$"
python3 - "$bench/statusline.json" "$bench/hook.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        print(f"  hyperfine median {r['command']:<28} {r['median'] * 1000:8.2f} ms")
PY
# hyperfine 1.15 feeds stdin only through a shell, whose start-up it
# estimates and subtracts; this measures the processes alone, interleaved.
echo "== the same without a shell: wall time of each process (median of $runs)"
python3 - "$runs" "$payload" "$hook" "$csm" "$cc20" <<'PY'
import os, statistics, subprocess, sys, time
runs, payload, hook, csm, cc = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
cases = [("csm statusline", [csm, "statusline"], payload),
         ("ccusage 20.0.24 statusline", cc.split() + ["statusline"], payload),
         ("ccusage statusline --no-cache", cc.split() + ["statusline", "--no-cache"], payload),
         ("csm hook", [csm, "hook"], hook)]
wall = {name: [] for name, _, _ in cases}
cpu = {name: [] for name, _, _ in cases}
for i in range(runs + 5):
    for name, argv, inp in cases:
        with open(inp, "rb") as f:
            t = time.perf_counter()
            p = subprocess.Popen(argv, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, _, ru = os.wait4(p.pid, 0)
            if i >= 5:
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(ru.ru_utime + ru.ru_stime)
for name in wall:
    w, c = wall[name], cpu[name]
    print(f"  median {name:<30} wall {statistics.median(w) * 1000:8.2f} ms"
          f" (p90 {statistics.quantiles(w, n=10)[-1] * 1000:.2f})  cpu {statistics.median(c) * 1000:7.2f} ms")
PY
echo "== bad stdin (wall time of one run each)"
head -c 3145728 /dev/urandom >"$bench/huge.bin"
printf 'garbage{' >"$bench/garbage.txt"
: >"$bench/empty.txt"
for f in empty.txt garbage.txt huge.bin; do
  s=$(date +%s%N); "$csm" statusline <"$bench/$f" >/dev/null; e=$(date +%s%N)
  echo "  statusline < $f: $(( (e - s) / 1000000 )) ms"
done
# A stdin that never closes: a FIFO this shell keeps open for writing.
fifo=$bench/never.fifo
rm -f "$fifo"; mkfifo "$fifo"
exec 3<>"$fifo"
for sub in statusline hook; do
  s=$(date +%s%N); "$csm" $sub <"$fifo" >/dev/null; e=$(date +%s%N)
  echo "  $sub with a stdin that never closes: $(( (e - s) / 1000000 )) ms"
done
exec 3>&-
rm -f "$fifo"
