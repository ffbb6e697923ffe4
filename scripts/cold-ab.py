#!/usr/bin/env python3
"""Cold runs of several commands, alternating, on one history.

    scripts/cold-ab.py [--runs 10] [--dir /tmp/csm-bench] CMD [CMD...]

Each CMD is a program run as `CMD blocks --json` (csm binaries, or
ccusage's native binary). Before every run the history's files are read
once, so the page cache is warm for all alike, and csm gets a fresh, empty
store (CSM_HOME). The order is reversed every other round, so a VM that
speeds up or slows down during the run tilts no command. Prints each
command's median and best wall time, median CPU (user + system) and peak
RSS. By hand, not part of CI.

Everything lives under --dir (default ${TMPDIR:-/tmp}/csm-bench): HOME,
CLAUDE_CONFIG_DIR (claude-1GiB, made by scripts/bench.sh) and CSM_HOME all
point there, never at a real home directory.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "csm-bench"))
    ap.add_argument("--history", default="claude-1GiB")
    ap.add_argument("cmds", nargs="+")
    args = ap.parse_args()

    claude = os.path.join(args.dir, args.history)
    store = os.path.join(args.dir, "cold-ab-store")
    if not os.path.isdir(claude):
        raise SystemExit(f"{claude}: no history (run scripts/bench.sh --sizes 1GiB first)")
    os.makedirs(os.path.join(args.dir, "home"), exist_ok=True)
    env = dict(
        os.environ,
        HOME=os.path.join(args.dir, "home"),
        CLAUDE_CONFIG_DIR=claude,
        CSM_HOME=store,
    )
    files = [
        os.path.join(d, f)
        for d, _, names in os.walk(claude)
        for f in names
        if f.endswith(".jsonl")
    ]

    def warm() -> None:
        for path in files:
            with open(path, "rb") as fh:
                while fh.read(1 << 20):
                    pass

    results = {cmd: [] for cmd in args.cmds}
    # One round more than asked: the first only warms everything up.
    for r in range(args.runs + 1):
        order = args.cmds if r % 2 == 0 else args.cmds[::-1]
        for cmd in order:
            warm()
            shutil.rmtree(store, ignore_errors=True)
            start = time.perf_counter()
            child = subprocess.Popen([cmd, "blocks", "--json"], env=env, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            if status != 0:
                raise SystemExit(f"{cmd} failed (status {status})")
            if r > 0:
                results[cmd].append((wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024))
    shutil.rmtree(store, ignore_errors=True)

    first = statistics.median(w for w, _, _ in results[args.cmds[-1]])
    for cmd, runs in results.items():
        walls = [w for w, _, _ in runs]
        median = statistics.median(walls)
        print(
            f"{cmd}\n  wall median {median * 1e3:7.0f} ms  best {min(walls) * 1e3:7.0f} ms"
            f"  cpu median {statistics.median(c for _, c, _ in runs) * 1e3:7.0f} ms"
            f"  peak RSS {max(m for _, _, m in runs):6.1f} MiB"
            f"  / last command's median: {median / first:.3f}"
        )


if __name__ == "__main__":
    main()
