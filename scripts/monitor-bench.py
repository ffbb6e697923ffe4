#!/usr/bin/env python3
"""The live dashboard as a person runs it: time to its first frame, what it
costs while idle, and how it ends when its terminal goes away.

Starts `BIN monitor` in a private tmux server (120x40) on a history under a
temp dir with a fresh CSM_HOME, times the first frame (from starting tmux to
the pane showing the footer), optionally watches it idle for --idle seconds
(CPU share of one core, resident memory), then kills the tmux session (the
pane's pty closes and its process group gets SIGHUP) and watches the process:
how long until it is gone, and how much CPU time it used after the kill.
Runs each binary given N times, alternating, and prints one line per run and
a summary per binary.

Usage: scripts/monitor-bench.py [--runs 20] [--idle 0] [--history DIR] BIN [BIN ...]
With no --history, `cargo run --release --example gen_history` makes one.
Touches nothing of the user's: HOME, CSM_HOME and CLAUDE_CONFIG_DIR point
into the temp dir.
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time



def cpu_seconds(pid):
    """CPU time of every thread of `pid`, in seconds, at nanosecond
    resolution (the scheduler's own sum), or None when it is gone."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except FileNotFoundError:
        return False


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def one_run(binary, history, work, n, idle):
    sock = f"csm-hangup-{os.getpid()}-{n}"
    home = os.path.join(work, "home")
    csm_home = os.path.join(work, f"csm-{n}")
    os.makedirs(home, exist_ok=True)
    pid_file = os.path.join(work, f"pid-{n}")
    cmd = (
        f"export HOME='{home}' CSM_HOME='{csm_home}' CLAUDE_CONFIG_DIR='{history}'; "
        f"export DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent; "
        f"sh -c 'echo $$ > {pid_file}; exec {binary} monitor'"
    )
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    started = time.monotonic()
    subprocess.run(tmux + ["new-session", "-d", "-s", "csm", "-x", "120", "-y", "40", "sh", "-c", cmd], check=True)
    deadline = time.time() + 60
    while True:
        pane = subprocess.run(tmux + ["capture-pane", "-p", "-t", "csm"], capture_output=True, text=True).stdout
        if "Sessions " in pane:
            first_frame = time.monotonic() - started
            break
        if time.time() > deadline:
            raise SystemExit(f"no first frame:\n{pane}")
        time.sleep(0.01)
    pid = int(open(pid_file).read().strip())
    time.sleep(1.0)  # settle: first-frame work done
    idle_cpu = None
    rss = None
    if idle > 0:
        c0 = cpu_seconds(pid)
        time.sleep(idle)
        idle_cpu = (cpu_seconds(pid) - c0) / idle * 100
        rss = rss_mib(pid)
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    subprocess.run(tmux + ["kill-session", "-t", "csm"], capture_output=True)
    last_cpu = cpu0
    gone_after = None
    while time.monotonic() - t0 < 3.0:
        if not alive(pid):
            gone_after = time.monotonic() - t0
            break
        c = cpu_seconds(pid)
        if c is not None:
            last_cpu = c
        time.sleep(0.005)
    if gone_after is None:
        last_cpu = cpu_seconds(pid) or last_cpu
        os.kill(pid, 9)
    subprocess.run(tmux + ["kill-server"], capture_output=True)
    return first_frame, idle_cpu, rss, gone_after, last_cpu - cpu0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle", type=float, default=0, help="seconds to watch it idle")
    ap.add_argument("--history")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="csm-hangup-")
    try:
        history = a.history
        if not history:
            history = os.path.join(work, "claude")
            subprocess.run(
                ["cargo", "run", "-q", "--release", "--example", "gen_history", "--",
                 "--out", history, "--size", "8MiB", "--seed", "1", "--now", "now", "--active"],
                check=True,
            )
        results = {b: [] for b in a.binaries}
        for n in range(a.runs):
            for i, b in enumerate(a.binaries):
                r = one_run(os.path.abspath(b), history, work, n * 10 + i, a.idle)
                results[b].append(r)
                first, idle_cpu, rss, gone, cpu = r
                g = "still running after 3 s" if gone is None else f"gone after {gone * 1000:.0f} ms"
                idle_s = "" if idle_cpu is None else f", idle {idle_cpu:.3f} % of a core, RSS {rss:.1f} MiB"
                print(f"run {n + 1:2} {b}: first frame {first:.3f} s{idle_s}; {g}, CPU after the kill {cpu:.3f} s", flush=True)
        for b, rs in results.items():
            firsts = sorted(r[0] for r in rs)
            within = sum(1 for r in rs if r[3] is not None and r[3] <= 1.0)
            worst = max(r[4] for r in rs)
            line = f"{b}: first frame median {firsts[len(firsts) // 2]:.3f} s"
            idles = sorted(r[1] for r in rs if r[1] is not None)
            if idles:
                rsss = sorted(r[2] for r in rs)
                line += f"; idle median {idles[len(idles) // 2]:.3f} % of a core, RSS median {rsss[len(rsss) // 2]:.1f} MiB"
            line += f"; gone within 1 s in {within} of {len(rs)} runs; most CPU after the kill {worst:.3f} s"
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
