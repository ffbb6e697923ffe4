#!/usr/bin/env bash
# Records ccusage 20.0.24's output for every fixture under tests/fixtures/ccusage/
# into <case>/ccusage.json, which tests/conformance.rs compares csm against (so
# CI needs no npm). Re-run after adding a fixture case.
#
# Each case is a Claude config dir (<case>/projects/...). ccusage runs with HOME
# and CLAUDE_CONFIG_DIR on temp/fixture dirs, TZ=UTC, --offline.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/ccusage.sh"
ccusage=$(ccusage_cmd 20.0.24 "${CCUSAGE_DIR:-${TMPDIR:-/tmp}/csm-ccusage-20.0.24}")
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
for case in "$here"/tests/fixtures/ccusage/*/; do
  case=${case%/}
  python3 - "$ccusage" "$case" "$home" <<'PY'
import json, os, subprocess, sys
ccusage, case, home = sys.argv[1:4]
env = {"PATH": os.environ["PATH"], "HOME": home, "CLAUDE_CONFIG_DIR": case, "TZ": "UTC"}
out = {}
for name, args in [("blocks", ["blocks"]), ("daily", ["claude", "daily"]), ("weekly", ["claude", "weekly"]),
                   ("monthly", ["claude", "monthly"]), ("session", ["claude", "session"])]:
    p = subprocess.run([ccusage, *args, "--json", "--offline"], env=env, capture_output=True)
    out[name] = {"exit": p.returncode, "stdout": p.stdout.decode("utf-8", "replace")}
with open(os.path.join(case, "ccusage.json"), "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
PY
done
echo "recorded $(ls -d "$here"/tests/fixtures/ccusage/*/ | wc -l) cases"

# Several accounts: each case under tests/fixtures/ccusage-roots holds Claude
# config dirs (A, B, ...); ccusage runs on each alone and on all of them as
# one comma list, recorded under "A", "B", ..., "A,B" in <case>/ccusage.json.
for case in "$here"/tests/fixtures/ccusage-roots/*/; do
  case=${case%/}
  python3 - "$ccusage" "$case" "$home" <<'PY'
import json, os, subprocess, sys
ccusage, case, home = sys.argv[1:4]
roots = sorted(d for d in os.listdir(case) if os.path.isdir(os.path.join(case, d)))
out = {}
for key in roots + [",".join(roots)]:
    dirs = ",".join(os.path.join(case, r) for r in key.split(","))
    env = {"PATH": os.environ["PATH"], "HOME": home, "CLAUDE_CONFIG_DIR": dirs, "TZ": "UTC"}
    out[key] = {}
    for name, args in [("blocks", ["blocks"]), ("daily", ["claude", "daily"]), ("session", ["claude", "session"])]:
        p = subprocess.run([ccusage, *args, "--json", "--offline"], env=env, capture_output=True)
        out[key][name] = {"exit": p.returncode, "stdout": p.stdout.decode("utf-8", "replace")}
with open(os.path.join(case, "ccusage.json"), "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
    f.write("\n")
PY
done
echo "recorded $(ls -d "$here"/tests/fixtures/ccusage-roots/*/ | wc -l) several-account cases"
