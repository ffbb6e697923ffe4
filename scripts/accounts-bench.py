#!/usr/bin/env python3
"""Warm-run cost of keeping accounts apart in one history store.

    scripts/accounts-bench.py [--runs 40] [--size 1GiB] [--half 512MiB] BEFORE AFTER

1. One account: a `--size` history; each binary builds its own store cold,
   then warm `blocks --json` and `daily --json` runs alternate between the
   binaries (nothing new on disk), so both see the same machine; then
   rounds of ~1 MiB appended (scripts/append-1mib.py) and `blocks --json`
   by each binary.
2. Two accounts (AFTER only): a store holding one `--half` history, and a
   store holding two such histories (the second a different seed); warm
   runs on the first account alternate between the two stores.

Prints medians and best times. HOME, CLAUDE_CONFIG_DIR and CSM_HOME point
into a temp dir (BENCH_DIR, default a new one under /tmp): nothing of the
machine's real home is read. By hand, not part of CI.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def timed(cmd, env):
    t = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def env_for(home, csm_home, claude):
    env = {"PATH": os.environ["PATH"], "HOME": home, "CSM_HOME": csm_home,
           "CLAUDE_CONFIG_DIR": claude, "TZ": "UTC", "NO_COLOR": "1"}
    return env


def report(label, samples, base=None):
    med = statistics.median(samples)
    ratio = "" if base is None else f"  ({med / base * 100 - 100:+.1f} %)"
    print(f"  {label:<34} median {med * 1000:7.2f} ms, best {min(samples) * 1000:7.2f} ms{ratio}")
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--half", default="512MiB")
    ap.add_argument("before")
    ap.add_argument("after")
    a = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gen = os.path.join(here, "target", "release", "examples", "gen_history")
    work = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="csm-accounts-bench-")
    os.makedirs(work, exist_ok=True)
    home = os.path.join(work, "home")
    os.makedirs(home, exist_ok=True)

    def history(name, size, seed):
        path = os.path.join(work, name)
        if not os.path.isdir(path):
            subprocess.run([gen, "--out", path, "--size", size, "--seed", str(seed), "--now", "now", "--active"],
                           check=True, stdout=subprocess.DEVNULL)
        return path

    try:
        big = history("one-" + a.size, a.size, 1)
        print(f"== one account, {a.size}: warm runs, {a.runs} each, alternating")
        stores = {}
        for b in (a.before, a.after):
            s = os.path.join(work, "store-" + ("before" if b == a.before else "after"))
            shutil.rmtree(s, ignore_errors=True)
            timed([b, "blocks", "--json"], env_for(home, s, big))
            stores[b] = s
        for cmd in (["blocks", "--json"], ["daily", "--json"]):
            t = {a.before: [], a.after: []}
            for r in range(a.runs):
                for b in ((a.before, a.after) if r % 2 == 0 else (a.after, a.before)):
                    t[b].append(timed([b, *cmd], env_for(home, stores[b], big)))
            print(f"-- {' '.join(cmd)}")
            base = report("before", t[a.before])
            report("after", t[a.after], base)

        # After ~1 MiB appended to a transcript (once per round, then each
        # binary reads it into its own store).
        newest = max((os.path.join(d, f) for d, _, fs in os.walk(big) for f in fs if f.endswith(".jsonl")),
                     key=os.path.getmtime)
        t = {a.before: [], a.after: []}
        for r in range(a.runs):
            subprocess.run(["python3", os.path.join(here, "scripts", "append-1mib.py"), newest],
                           check=True, stdout=subprocess.DEVNULL)
            for b in ((a.before, a.after) if r % 2 == 0 else (a.after, a.before)):
                t[b].append(timed([b, "blocks", "--json"], env_for(home, stores[b], big)))
        print("-- blocks --json after ~1 MiB appended")
        base = report("before", t[a.before])
        report("after", t[a.after], base)

        p = history("p-" + a.half, a.half, 2)
        q = history("q-" + a.half, a.half, 3)
        print(f"== AFTER: one {a.half} account alone vs. beside a second {a.half} account")
        alone = os.path.join(work, "store-alone")
        shared = os.path.join(work, "store-shared")
        for s in (alone, shared):
            shutil.rmtree(s, ignore_errors=True)
        timed([a.after, "blocks", "--json"], env_for(home, alone, p))
        timed([a.after, "blocks", "--json"], env_for(home, shared, p))
        timed([a.after, "blocks", "--json"], env_for(home, shared, q))
        for cmd in (["blocks", "--json"], ["daily", "--json"]):
            t = {alone: [], shared: []}
            for r in range(a.runs):
                for s in ((alone, shared) if r % 2 == 0 else (shared, alone)):
                    t[s].append(timed([a.after, *cmd], env_for(home, s, p)))
            print(f"-- {' '.join(cmd)} on the first account")
            base = report("store of one account", t[alone])
            report("store of two accounts", t[shared], base)
    finally:
        if not os.environ.get("BENCH_DIR"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
