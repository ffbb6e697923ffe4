#!/usr/bin/env bash
# Compares `csm blocks --json` / `csm daily --json` with ccusage 20.0.24 on
# generated histories, field by field.
#
#   scripts/compare-ccusage.sh [--size 64MiB] [--seeds "1 2 3"] [--tz UTC]
#
# ccusage is installed with npm into a scratch directory outside the source
# tree (CCUSAGE_DIR, default ${TMPDIR:-/tmp}/csm-ccusage-20.0.24). Both tools run
# with HOME and CLAUDE_CONFIG_DIR pointing at the same temp dir: nothing of the
# machine's real ~/.claude or ~/.config is read.
set -euo pipefail

size=64MiB
seeds="1 2 3"
tz=UTC
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --tz) tz=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/ccusage.sh"
ccusage=$(ccusage_cmd 20.0.24 "${CCUSAGE_DIR:-${TMPDIR:-/tmp}/csm-ccusage-20.0.24}")

(cd "$here" && cargo build --release --quiet --bin csm --example gen_history)
csm=$here/target/release/csm
gen=$here/target/release/examples/gen_history

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for seed in $seeds; do
  data=$work/claude-$seed
  home=$work/home-$seed
  mkdir -p "$home"
  "$gen" --out "$data" --size "$size" --seed "$seed" --now now --active >/dev/null
  run() { env -i PATH="$PATH" HOME="$home" CLAUDE_CONFIG_DIR="$data" CSM_HOME="$home/csm" TZ="$tz" "$@"; }
  run "$ccusage" blocks --json --offline >"$work/cc-blocks-$seed.json"
  run "$csm" blocks --json --no-store >"$work/csm-blocks-$seed.json"
  run "$csm" blocks --json >"$work/csm-store-blocks-$seed.json"
  run "$ccusage" claude daily --json --offline >"$work/cc-daily-$seed.json"
  run "$csm" daily --json --no-store >"$work/csm-daily-$seed.json"
  run "$csm" daily --json >"$work/csm-store-daily-$seed.json"
  echo "== seed $seed ($size, TZ=$tz)"
  for mode in "" store-; do
    echo "-- csm ${mode:-no-store-}run"
    python3 "$here/scripts/compare_json.py" blocks "$work/cc-blocks-$seed.json" "$work/csm-${mode}blocks-$seed.json" || status=1
    python3 "$here/scripts/compare_json.py" daily "$work/cc-daily-$seed.json" "$work/csm-${mode}daily-$seed.json" || status=1
  done
done
exit $status
