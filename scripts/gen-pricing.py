#!/usr/bin/env python3
"""Regenerate src/pricing/table.rs from the LiteLLM price list.

The PyPI package `litellm` ships the price list as
`litellm/model_prices_and_context_window_backup.json`. Taking it from a
released wheel (instead of the moving `main` branch on GitHub) gives a
reproducible, versioned snapshot: the version is recorded in the generated
file.

The default release is pinned: litellm 1.103.0 carries exactly the Claude
prices of ccusage 20.0.24's embedded snapshot (all 125 entries, including the
Sonnet 4.5 long-context tiers that 1.106.2 and later dropped), so csm's costs
equal ccusage's. Move the pin deliberately, with the conformance script
(scripts/compare-ccusage.sh) run before and after.

Usage:
    scripts/gen-pricing.py                      # the pinned release (1.103.0)
    scripts/gen-pricing.py --version latest     # newest litellm from PyPI
    scripts/gen-pricing.py --version 1.110.2    # another release
    scripts/gen-pricing.py --wheel FILE.whl     # an already downloaded wheel
    scripts/gen-pricing.py --json FILE --litellm-version X  # a raw JSON file

Needs only the Python standard library and pip (for the download). The output
is deterministic for a given input and date: entries are sorted by key and
fields are written in a fixed order.

Keep the key filter and the field parsing in step with
`src/pricing/litellm.rs`, which applies the same rules to the file written by
`csm pricing update`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# See the module docstring for why this release.
PINNED_VERSION = "1.103.0"

JSON_MEMBER = "litellm/model_prices_and_context_window_backup.json"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "pricing" / "table.rs"

# Same key prefixes as ccusage 20.0.24's embedded snapshot (its
# `is_embedded_model`), restricted to Claude models. Fuzzy matching picks the
# longest matching key, so keeping exactly this set is what makes our matches
# equal ccusage's; adding e.g. `bedrock/us-gov-...` keys would let those
# longer, differently priced keys win.
KEY_PREFIXES = (
    "claude-",
    "anthropic.",
    "anthropic/",
    "us.anthropic.",
    "eu.anthropic.",
    "global.anthropic.",
    "jp.anthropic.",
    "au.anthropic.",
)

# LiteLLM price field -> token kind (Rust `TokenKind` variant).
BASE_FIELDS = {
    "input_cost_per_token": "Input",
    "output_cost_per_token": "Output",
    "cache_creation_input_token_cost": "CacheWrite5m",
    "cache_creation_input_token_cost_above_1hr": "CacheWrite1h",
    "cache_read_input_token_cost": "CacheRead",
}
TIER_RE = re.compile(r"^(?P<base>[a-z0-9_]+?)_above_(?P<k>[0-9]+)k_tokens$")


def keep_key(key: str) -> bool:
    return "claude" in key and key.startswith(KEY_PREFIXES)


def price(value):
    """A usable per-token price, None when absent/null, or raise when malformed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"non-numeric price {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"unusable price {value!r}")
    return value


def parse_entry(key: str, raw) -> dict | None:
    """Mirror of `litellm::parse_entry` in Rust: None = entry skipped."""
    if not isinstance(raw, dict):
        return None
    try:
        inp = price(raw.get("input_cost_per_token"))
        out = price(raw.get("output_cost_per_token"))
        if inp is None or out is None:
            return None
        entry = {
            "key": key,
            "input": inp,
            "output": out,
            "cache_write_5m": price(raw.get("cache_creation_input_token_cost")),
            "cache_write_1h": price(raw.get("cache_creation_input_token_cost_above_1hr")),
            "cache_read": price(raw.get("cache_read_input_token_cost")),
            "tiers": [],
            "fast": None,
        }
        for field, value in raw.items():
            m = TIER_RE.match(field)
            if not m or m.group("base") not in BASE_FIELDS:
                continue
            p = price(value)
            k = int(m.group("k"))
            if p is None or k == 0:
                continue
            entry["tiers"].append((BASE_FIELDS[m.group("base")], k * 1000, p))
        pse = raw.get("provider_specific_entry")
        if isinstance(pse, dict):
            fast = price(pse.get("fast"))
            if fast is not None and fast > 0:
                entry["fast"] = fast
    except ValueError:
        return None
    kind_order = list(BASE_FIELDS.values())
    entry["tiers"].sort(key=lambda t: (kind_order.index(t[0]), t[1]))
    return entry


def rust_f64(value: float) -> str:
    text = repr(float(value))  # shortest round-trip representation
    if "e" not in text and "." not in text and "inf" not in text:
        text += ".0"
    return text


def rust_opt(value) -> str:
    return "None" if value is None else f"Some({rust_f64(value)})"


def rust_str(value: str) -> str:
    return json.dumps(value)  # JSON string escapes are valid Rust escapes for these keys


def render(entries: list[dict], version: str, today: str, source: str) -> str:
    out = []
    out.append("// @generated by scripts/gen-pricing.py -- do not edit by hand.\n")
    out.append(f"// Source: {source}\n")
    out.append(f"// LiteLLM version: {version}\n")
    out.append(f"// Generated on: {today}\n")
    out.append(f"// Claude models: {len(entries)}\n")
    out.append("//\n")
    out.append("// Regenerate with `python3 scripts/gen-pricing.py` and commit the result.\n\n")
    out.append("use super::TokenKind::{CacheRead, CacheWrite1h, CacheWrite5m, Input, Output};\n")
    out.append("use super::litellm::{RawEntry, RawTier};\n\n")
    out.append("/// The `litellm` release the embedded prices were taken from.\n")
    out.append(f"pub(super) const LITELLM_VERSION: &str = {rust_str(version)};\n\n")
    out.append("/// When the embedded table was generated (UTC date).\n")
    out.append(f"pub(super) const GENERATED_ON: &str = {rust_str(today)};\n\n")
    out.append("/// Claude entries of LiteLLM's price list, sorted by key.\n")
    out.append("pub(super) static ENTRIES: &[RawEntry] = &[\n")
    for e in entries:
        tiers = ", ".join(
            f"RawTier {{ kind: {kind}, above: {above:_}, price: {rust_f64(p)} }}"
            for kind, above, p in e["tiers"]
        )
        out.append("    RawEntry {\n")
        out.append(f"        key: {rust_str(e['key'])},\n")
        out.append(f"        input: {rust_f64(e['input'])},\n")
        out.append(f"        output: {rust_f64(e['output'])},\n")
        out.append(f"        cache_write_5m: {rust_opt(e['cache_write_5m'])},\n")
        out.append(f"        cache_write_1h: {rust_opt(e['cache_write_1h'])},\n")
        out.append(f"        cache_read: {rust_opt(e['cache_read'])},\n")
        out.append(f"        tiers: &[{tiers}],\n")
        out.append(f"        fast: {rust_opt(e['fast'])},\n")
        out.append("    },\n")
    out.append("];\n")
    return "".join(out)


def download_wheel(version: str | None, dest: str) -> Path:
    spec = f"litellm=={version}" if version and version != "latest" else "litellm"
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary=:all:", "--dest", dest, spec,
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(Path(dest).glob("litellm-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected exactly one litellm wheel in {dest}, found {wheels}")
    return wheels[0]


def read_wheel(wheel: Path) -> tuple[dict, str]:
    # Wheel names are `<name>-<version>-<tags>.whl`.
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        data = json.loads(zf.read(JSON_MEMBER))
    return data, version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--version", default=PINNED_VERSION,
                     help=f"litellm release to download, or 'latest' (default: {PINNED_VERSION})")
    src.add_argument("--wheel", type=Path, help="use this litellm wheel instead of downloading")
    src.add_argument("--json", type=Path, help="use this price-list JSON (needs --litellm-version)")
    ap.add_argument("--litellm-version", help="version label for --json input")
    ap.add_argument("--date", help="generation date to record (default: today, UTC)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default: {DEFAULT_OUT})")
    args = ap.parse_args()

    if args.json:
        if not args.litellm_version:
            ap.error("--json needs --litellm-version")
        data, version = json.loads(args.json.read_text()), args.litellm_version
        source = f"{args.json.name} (litellm {version})"
    elif args.wheel:
        data, version = read_wheel(args.wheel)
        source = f"PyPI wheel {args.wheel.name}, member {JSON_MEMBER}"
    else:
        with tempfile.TemporaryDirectory(prefix="gen-pricing-") as tmp:
            wheel = download_wheel(args.version, tmp)
            data, version = read_wheel(wheel)
            source = f"PyPI wheel {wheel.name}, member {JSON_MEMBER}"

    if not isinstance(data, dict):
        sys.exit("price list is not a JSON object")
    entries = [e for k in sorted(data) if keep_key(k) for e in [parse_entry(k, data[k])] if e]
    if not entries:
        sys.exit("no Claude model with numeric input and output prices in the price list")

    today = args.date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    text = render(entries, version, today, source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    tmp_out.write_text(text)
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out}: {len(entries)} Claude models from litellm {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
