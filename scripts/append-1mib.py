#!/usr/bin/env python3
# Appends ~1 MiB to the transcript named on the command line, the way Claude
# Code writes a turn: a big tool result, then new streamed assistant lines
# (3 per response, fresh ids, timestamped now) with usage. Used by the warm
# benchmarks (scripts/bench.sh, scripts/warm-bench.sh).
import datetime, json, sys, time
path = sys.argv[1]
n = int(time.time() * 1000)
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
out = [json.dumps({"type": "user", "timestamp": now, "message": {"role": "user",
       "content": [{"type": "tool_result", "content": "x" * 700_000}]}}, separators=(",", ":"))]
size, i = len(out[0]), 0
while size < 1 << 20:
    for part in range(3):
        line = json.dumps({"type": "assistant", "timestamp": now, "sessionId": "bench",
            "requestId": f"req_b{n}_{i}", "message": {"id": f"msg_b{n}_{i}",
            "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "y" * 2000}],
            "usage": {"input_tokens": 10, "output_tokens": 100 * (part + 1),
                      "cache_read_input_tokens": 50000, "cache_creation_input_tokens": 500}}},
            separators=(",", ":"))
        out.append(line)
        size += len(line) + 1
    i += 1
with open(path, "a") as f:
    f.write("\n".join(out) + "\n")
