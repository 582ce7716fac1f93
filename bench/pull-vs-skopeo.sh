#!/usr/bin/env bash
# Image benchmarks, side by side in one run (hyperfine):
#  1. pull + first run of a 5 MiB Wasm image from a loopback registry (`wedge run IMAGE`
#     into an empty data root) against `skopeo copy` of the same image into an empty OCI
#     layout: the issue asks for wedge throughput >= 0.8x skopeo's;
#  2. `wedge run IMAGE` with image and AOT cache local against `wedge run file.wasm`
#     (warm): within 10%.
# The registry is Debian's docker-registry on a free loopback port, in a temp folder.
# Usage: bench/pull-vs-skopeo.sh [RUNS]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bash scripts/setup.sh
apt_install hyperfine
# The binary as shipped: the `dist` profile (release with fat LTO).
cargo build --profile dist -p wedge --locked
CARGO_TARGET_DIR=target/bench-guests cargo build --release --quiet --target wasm32-wasip1 \
    --manifest-path crates/test-programs/guests/rust/Cargo.toml --bin hello
wedge=$PWD/target/dist/wedge
work=$(mktemp -d)
registry_pid=
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A 5 MiB app: the hello module plus a 5 MiB custom section of random bytes.
mkdir -p "$work/app"
python3 - target/bench-guests/wasm32-wasip1/release/hello.wasm "$work/app/app.wasm" <<'PY'
import os, sys
def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
src, dst = sys.argv[1:]
name = b"bench-payload"
payload = leb(len(name)) + name + os.urandom(5 << 20)
open(dst, "wb").write(open(src, "rb").read() + b"\x00" + leb(len(payload)) + payload)
PY
printf 'manifest_version = 1\n[app]\nname = "big"\nwasm = "app.wasm"\n' > "$work/app/wedge.toml"

start_registry "$work/registry"
port=$registry_port

image=127.0.0.1:$port/bench/big:1
export WEDGE_ROOT=$work/builder
"$wedge" build -t "$image" "$work/app" >/dev/null
"$wedge" push "$image" >/dev/null
ls -l "$work/app/app.wasm"

hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/pull.json" \
    --prepare "rm -rf $work/device $work/layout" \
    -n "wedge pull+run" "$wedge --root $work/device run $image" \
    -n "skopeo copy" "skopeo copy -q --src-tls-verify=false docker://$image oci:$work/layout:big"

export WEDGE_ROOT=$work/local
"$wedge" run "$image" >/dev/null
"$wedge" run "$work/app/app.wasm" >/dev/null
hyperfine -N --warmup 20 --runs 300 --export-json "$work/run.json" \
    -n "run IMAGE" "$wedge run $image" \
    -n "run file" "$wedge run $work/app/app.wasm"

python3 - "$work/pull.json" "$work/run.json" <<'PY'
import json, sys
pull = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
run = {r["command"]: r for r in json.load(open(sys.argv[2]))["results"]}
w, s = pull["wedge pull+run"]["median"], pull["skopeo copy"]["median"]
print(f"pull+first run: wedge {w*1e3:.1f} ms, skopeo copy {s*1e3:.1f} ms -> wedge throughput {s/w:.2f}x skopeo's")
i, f = run["run IMAGE"]["median"], run["run file"]["median"]
print(f"warm run: image {i*1e3:.2f} ms, file {f*1e3:.2f} ms -> image/file {i/f:.2f}x")
PY
