#!/usr/bin/env python3
"""Field-by-field comparison of ccusage and csm JSON reports.

usage: compare_json.py blocks|daily CCUSAGE.json CSM.json

Exact equality for ids, times, flags, counts, token counts and model lists;
costs within 0.5 % (relative) per block or row. Prints a summary line and the
first differences; exits 1 when anything differs.
"""
import json
import sys

REL = 0.005


def close(a, b):
    if a == b:
        return True
    scale = max(abs(a), abs(b))
    return scale < 1e-9 or abs(a - b) / scale <= REL


def compare(kind, cc, ours):
    diffs = []
    key = "blocks" if kind == "blocks" else "daily"
    a, b = cc[key], ours[key]
    if len(a) != len(b):
        diffs.append(f"{key}: {len(a)} rows in ccusage, {len(b)} in csm")
    exact = (
        ["id", "startTime", "endTime", "actualEndTime", "isGap", "isActive", "entries", "tokenCounts", "totalTokens", "models", "usageLimitResetTime"]
        if kind == "blocks"
        else ["date", "inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens", "modelsUsed"]
    )
    cost_key = "costUSD" if kind == "blocks" else "totalCost"
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        for f in exact:
            if x.get(f) != y.get(f):
                diffs.append(f"{key}[{i}].{f}: ccusage {x.get(f)!r} csm {y.get(f)!r}")
        cx, cy = x[cost_key], y[cost_key]
        if max(abs(cx), abs(cy)) > 1e-9:
            worst = max(worst, abs(cx - cy) / max(abs(cx), abs(cy)))
        if not close(cx, cy):
            diffs.append(f"{key}[{i}].{cost_key}: ccusage {cx} csm {cy}")
        if kind == "daily":
            bx = {m["modelName"]: m for m in x["modelBreakdowns"]}
            by = {m["modelName"]: m for m in y["modelBreakdowns"]}
            if set(bx) != set(by):
                diffs.append(f"{key}[{i}].modelBreakdowns models: {sorted(bx)} vs {sorted(by)}")
            for m in set(bx) & set(by):
                for f in ["inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens"]:
                    if bx[m][f] != by[m][f]:
                        diffs.append(f"{key}[{i}].{m}.{f}: {bx[m][f]} vs {by[m][f]}")
                if not close(bx[m]["cost"], by[m]["cost"]):
                    diffs.append(f"{key}[{i}].{m}.cost: {bx[m]['cost']} vs {by[m]['cost']}")
    if kind == "daily":
        tx, ty = cc["totals"], ours["totals"]
        for f in ["inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens"]:
            if tx[f] != ty[f]:
                diffs.append(f"totals.{f}: {tx[f]} vs {ty[f]}")
        if not close(tx["totalCost"], ty["totalCost"]):
            diffs.append(f"totals.totalCost: {tx['totalCost']} vs {ty['totalCost']}")
    return diffs, len(a), worst


def main():
    kind, cc_path, csm_path = sys.argv[1:4]
    with open(cc_path) as f:
        cc = json.load(f)
    with open(csm_path) as f:
        ours = json.load(f)
    diffs, n, worst = compare(kind, cc, ours)
    if diffs:
        print(f"{kind}: {len(diffs)} differences over {n} rows; first ones:")
        for d in diffs[:20]:
            print("  " + d)
        sys.exit(1)
    print(f"{kind}: {n} rows identical (costs: worst relative difference {worst:.2e})")


if __name__ == "__main__":
    main()
