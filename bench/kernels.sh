#!/usr/bin/env bash
# Guest code speed on compute kernels (bench/kernels: SHA-256, JSON parse and print,
# regex search, n-body), each compiled from the same Rust source to wasm32-wasip1 and to
# native code, run warm under wedge (its cache holding Cranelift's code) and under the
# wasmtime 48 CLI (`-C cache=y`) side by side, and natively: medians of RUNS runs, the
# ratio wedge / wasmtime and the gap to native. Outputs are compared: the same
# everywhere.
# Usage: bench/kernels.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bash scripts/setup.sh
install_wasmtime
locked_cargo build --release -p wedge --locked >&2
export CARGO_TARGET_DIR=$PWD/target/bench-kernels
locked_cargo build --release --locked --manifest-path bench/kernels/Cargo.toml >&2
locked_cargo build --release --locked --target wasm32-wasip1 --manifest-path bench/kernels/Cargo.toml >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$PWD/target/release/wedge" "$wasmtime" "$CARGO_TARGET_DIR" "$work" "$runs" <<'PY'
import statistics, subprocess, sys, time
wedge, wasmtime, target, work, runs = sys.argv[1:]
native = f"{target}/release/kernels"
wasm = f"{target}/wasm32-wasip1/release/kernels.wasm"
commands = {
    "wedge": [wedge, "--root", f"{work}/root", "run", wasm],
    "wasmtime": [wasmtime, "run", "-C", "cache=y", wasm],
    "native": [native],
}

def run(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return time.perf_counter() - start, out

for kernel in ("sha256", "json", "regex", "nbody"):
    expected = run(commands["native"] + [kernel])[1]
    for name in ("wedge", "wasmtime"):  # compile and cache, and check the output
        assert run(commands[name] + [kernel])[1] == expected, name
    times = {name: [] for name in commands}
    for _ in range(int(runs)):
        for name, cmd in commands.items():
            took, out = run(cmd + [kernel])
            assert out == expected, (name, out, expected)
            times[name].append(took)
    m = {name: statistics.median(t) for name, t in times.items()}
    print(f"{kernel:7} wedge {m['wedge']:.3f} s ({min(times['wedge']):.3f}-{max(times['wedge']):.3f})  "
          f"wasmtime {m['wasmtime']:.3f} s  native {m['native']:.3f} s  "
          f"wedge/wasmtime {m['wedge'] / m['wasmtime']:.2f}x  wedge/native {m['wedge'] / m['native']:.2f}x",
          flush=True)
PY
