#!/usr/bin/env python3
"""Wall times of the everyday commands of two (or more) csm binaries, side by
side on one generated history, alternating run by run so a machine that
speeds up or slows down tilts no binary.

    scripts/faces-ab.py [--runs 10] [--size 256MiB] BIN [BIN ...]

Per round and binary: a cold `blocks --json` (fresh, empty CSM_HOME), then a
warm one (the store exists, nothing new), `status --format json` and
`statusline` fed a status line payload, on the store the cold run built.
Prints each command's median and best. HOME, CLAUDE_CONFIG_DIR and CSM_HOME
point into a temp dir: nothing of the machine's real home is read. By hand,
not part of CI.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

PAYLOAD = b"""{"session_id":"bench","transcript_path":"/nonexistent/bench.jsonl",
"cwd":"/home/dev/code","model":{"id":"claude-sonnet-4-5","display_name":"Sonnet 4.5"},
"cost":{"total_cost_usd":1.0},"context_window":{"used_percentage":12.0}}"""


def timed(cmd, env, stdin=None):
    t = time.perf_counter()
    subprocess.run(cmd, env=env, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--size", default="256MiB")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tempfile.mkdtemp(prefix="csm-faces-ab-")
    try:
        claude = os.path.join(work, "claude")
        gen = os.path.join(here, "target", "release", "examples", "gen_history")
        subprocess.run([gen, "--out", claude, "--size", a.size, "--seed", "1", "--now", "now", "--active"],
                       check=True, stdout=subprocess.DEVNULL)
        home = os.path.join(work, "home")
        os.makedirs(home)
        times = {b: {k: [] for k in ("cold", "warm", "status", "statusline")} for b in a.binaries}
        for r in range(a.runs):
            order = a.binaries if r % 2 == 0 else list(reversed(a.binaries))
            for b in order:
                csm_home = os.path.join(work, f"csm-{r}")
                shutil.rmtree(csm_home, ignore_errors=True)
                env = dict(os.environ, HOME=home, CSM_HOME=csm_home, CLAUDE_CONFIG_DIR=claude, NO_COLOR="1")
                env.pop("XDG_CONFIG_HOME", None)
                t = times[b]
                t["cold"].append(timed([b, "blocks", "--json"], env))
                t["warm"].append(timed([b, "blocks", "--json"], env))
                t["status"].append(timed([b, "status", "--format", "json"], env))
                t["statusline"].append(timed([b, "statusline"], env, PAYLOAD))
        for k in ("cold", "warm", "status", "statusline"):
            base = None
            for b in a.binaries:
                med = statistics.median(times[b][k])
                best = min(times[b][k])
                ratio = "" if base is None else f"  ({med / base * 100 - 100:+.1f} %)"
                base = base or med
                print(f"{k:<11} {b}: median {med * 1000:8.1f} ms, best {best * 1000:8.1f} ms{ratio}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
