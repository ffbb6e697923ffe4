#!/usr/bin/env bash
# Several accounts in one history store: runs csm on generated histories
# A, B and C in the order A, B, A+B, C, A, B+C with one CSM_HOME, and checks
# that every `blocks --json` and `daily --json` equals the `--no-store` run
# on the same roots byte for byte; the A+B run is also compared with
# ccusage 20.0.24 on CLAUDE_CONFIG_DIR=A,B.
#
#   scripts/accounts-check.sh [--size 32MiB] [--csm PATH] [--no-ccusage]
#
# Everything lives in a temp dir (HOME, CSM_HOME, the histories): nothing of
# the machine's real ~/.claude or ~/.config is read. Exit status 1 when any
# comparison differs.
set -euo pipefail

size=32MiB
csm=
with_ccusage=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --csm) csm=$2; shift 2 ;;
    --no-ccusage) with_ccusage=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
(cd "$here" && cargo build --release --quiet --bin csm --example gen_history)
csm=${csm:-$here/target/release/csm}
gen=$here/target/release/examples/gen_history

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seed=11
for name in A B C; do
  "$gen" --out "$work/$name" --size "$size" --seed "$seed" --now now --active >/dev/null
  seed=$((seed + 1))
done
mkdir -p "$work/home"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
run() {
  env -i PATH="$PATH" HOME="$work/home" CSM_HOME="$work/home/csm" TZ=UTC CSM_NOW="$now" \
    CLAUDE_CONFIG_DIR="$1" "${@:2}"
}
dirs() { local out= n; for n in $(echo "$1" | tr + ' '); do out=${out:+$out,}$work/$n; done; echo "$out"; }

status=0
for roots in A B A+B C A B+C; do
  d=$(dirs "$roots")
  for report in blocks daily; do
    run "$d" "$csm" "$report" --json >"$work/store.json"
    run "$d" "$csm" "$report" --json --no-store >"$work/memory.json"
    if cmp -s "$work/store.json" "$work/memory.json"; then
      verdict=same
    else
      verdict=DIFFERENT
      status=1
    fi
    if [ "$report" = blocks ]; then
      figures() { python3 -c 'import json,sys; b=[x for x in json.load(open(sys.argv[1]))["blocks"] if not x["isGap"]]; t=sum(x["totalTokens"] for x in b); print("%d windows, %.1f M tokens" % (len(b), t/1e6))' "$1"; }
      printf '%-4s %-6s store: %-28s --no-store: %-28s %s\n' "$roots" "$report" \
        "$(figures "$work/store.json")" "$(figures "$work/memory.json")" "$verdict"
    else
      printf '%-4s %-6s store %8s B, --no-store %8s B: %s\n' "$roots" "$report" \
        "$(wc -c <"$work/store.json")" "$(wc -c <"$work/memory.json")" "$verdict"
    fi
  done
done

if [ "$with_ccusage" = 1 ]; then
  . "$here/scripts/ccusage.sh"
  ccusage=$(ccusage_cmd 20.0.24 "${CCUSAGE_DIR:-${TMPDIR:-/tmp}/csm-ccusage-20.0.24}")
  d=$(dirs A+B)
  cc() { env -i PATH="$PATH" HOME="$work/home" CSM_HOME="$work/home/csm" TZ=UTC CLAUDE_CONFIG_DIR="$d" "$@"; }
  cc "$ccusage" blocks --json --offline >"$work/cc-blocks.json"
  cc "$csm" blocks --json >"$work/csm-blocks.json"
  cc "$ccusage" claude daily --json --offline >"$work/cc-daily.json"
  cc "$csm" daily --json >"$work/csm-daily.json"
  echo "-- A+B against ccusage 20.0.24 (CLAUDE_CONFIG_DIR=A,B)"
  python3 "$here/scripts/compare_json.py" blocks "$work/cc-blocks.json" "$work/csm-blocks.json" || status=1
  python3 "$here/scripts/compare_json.py" daily "$work/cc-daily.json" "$work/csm-daily.json" || status=1
fi
exit $status
