#!/usr/bin/env bash
# The edge targets under QEMU user mode, relative figures only (QEMU's timing is not a
# device's): for each target, the whole `wedge run` of a guest
#   cold        compiling it on the device (a fresh code cache every run),
#   precompiled from a .cwasm made on this machine (`wedge compile --target TRIPLE`,
#               `pulley32` for armv7, where Cranelift has no backend),
#   warm        from the device's code cache,
# side by side in one hyperfine run per guest, with the ratios cold / precompiled; then
# the first run of an image pulled from a loopback registry (Debian's docker-registry)
# into a fresh data root, `wedge run IMAGE`
#   portable    pulling the Wasm and compiling it on the device,
#   precompiled pulling the code attached for the device (`wedge push --precompile`,
#               WEDGE_USE_PRECOMPILED=1),
# with the ratios portable / precompiled.
# Guests: the Rust `hello` and `files` (a 116 KB module) programs. The binaries are the
# debug-profile cross builds of scripts/cross-test.sh (dependencies, Cranelift and
# wasmtime among them, at opt-level 2).
# Usage: [RUNS=10] bench/edge.sh [aarch64|riscv64|armv7 ...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs=${RUNS:-10}

declare -A code=([aarch64]=aarch64-unknown-linux-gnu [riscv64]=riscv64gc-unknown-linux-gnu
                 [armv7]=pulley32)

archs=("$@")
[ "${#archs[@]}" -gt 0 ] || archs=(aarch64 riscv64 armv7)
apt_install hyperfine
cargo build --locked --workspace   # not -p: the same features as the tests, no rebuild
CARGO_TARGET_DIR=target/bench-guests cargo build --release --quiet --locked --target wasm32-wasip1 \
    --manifest-path crates/test-programs/guests/rust/Cargo.toml --bin hello --bin files
guests=$PWD/target/bench-guests/wasm32-wasip1/release

work=$(mktemp -d)
registry_pid=
trap '[ -z "$registry_pid" ] || kill "$registry_pid"; rm -rf "$work"' EXIT
printf '%-8s %-6s %10s %12s %9s %14s\n' target guest "cold ms" "precomp. ms" "warm ms" "cold/precomp."
for arch in "${archs[@]}"; do
    bash scripts/cross-test.sh --build-only "$arch" >&2
    device="$(edge_runner "$arch") $PWD/target/${edge_triple[$arch]}/debug/wedge"
    for guest in hello files; do
        wasm=$guests/$guest.wasm
        cwasm=$work/$guest-$arch.cwasm
        if ! target/debug/wedge compile --target "${code[$arch]}" -o "$cwasm" "$wasm" >&2; then
            # Cranelift's riscv64 backend crashes on `files` (wasmtime #13959).
            printf '%-8s %-6s %s\n' "$arch" "$guest" "cannot be precompiled (see above)"
            continue
        fi
        # The same output from all three ways (files: its usage line, exit 2).
        expected=$(WEDGE_ROOT=$work/check $device run "$wasm" 2>&1 || true)
        [ "$(WEDGE_ROOT=$work/check-p $device run "$cwasm" 2>&1 || true)" = "$expected" ]
        export WEDGE_ROOT=$work/root-$arch
        hyperfine -N -i --runs "$runs" --warmup 1 --export-json "$work/t.json" \
            --prepare "rm -rf $work/cold" -n cold "env WEDGE_ROOT=$work/cold $device run $wasm" \
            -n precompiled "$device run $cwasm" \
            -n warm "$device run $wasm" >&2
        python3 - "$work/t.json" "$arch" "$guest" <<'PY'
import json, statistics, sys
res = {r["command"]: statistics.median(r["times"]) * 1e3 for r in json.load(open(sys.argv[1]))["results"]}
print(f'{sys.argv[2]:<8} {sys.argv[3]:<6} {res["cold"]:10.1f} {res["precompiled"]:12.1f} '
      f'{res["warm"]:9.1f} {res["cold"] / res["precompiled"]:13.1f}x')
PY
    done
done

# Pull + first run: the images pushed with code for every target (each target on its
# own push, so one the compiler fails on leaves the others).
start_registry "$work/registry"
port=$registry_port
export WEDGE_ROOT=$work/builder
for guest in hello files; do
    mkdir -p "$work/app-$guest"
    cp "$guests/$guest.wasm" "$work/app-$guest/app.wasm"
    printf 'manifest_version = 1\n[app]\nname = "%s"\nwasm = "app.wasm"\n' "$guest" > "$work/app-$guest/wedge.toml"
    target/debug/wedge build -t "127.0.0.1:$port/edge/$guest:1" "$work/app-$guest" >/dev/null
    for arch in "${archs[@]}"; do
        target/debug/wedge push --precompile "${code[$arch]}" "127.0.0.1:$port/edge/$guest:1" \
            >/dev/null || true
    done
done
echo
printf '%-8s %-6s %12s %15s %18s\n' target guest "portable ms" "precompiled ms" "portable/precomp."
for arch in "${archs[@]}"; do
    device="$(edge_runner "$arch") $PWD/target/${edge_triple[$arch]}/debug/wedge"
    for guest in hello files; do
        image=127.0.0.1:$port/edge/$guest:1
        fresh=$work/device-$arch
        # (The pull may fail too: the compiler crash on riscv64 files.)
        pulled=$(WEDGE_ROOT=$fresh WEDGE_USE_PRECOMPILED=1 $device pull "$image" 2>&1 >/dev/null || true)
        if grep -q 'no code precompiled' <<<"$pulled"; then
            printf '%-8s %-6s %s\n' "$arch" "$guest" "no code attached (the compiler failed on it)"
            rm -rf "$fresh"
            continue
        fi
        hyperfine -N -i --runs "$runs" --warmup 1 --export-json "$work/t.json" \
            --prepare "rm -rf $fresh" \
            -n portable "env WEDGE_ROOT=$fresh $device run $image" \
            -n precompiled "env WEDGE_ROOT=$fresh WEDGE_USE_PRECOMPILED=1 $device run $image" >&2
        python3 - "$work/t.json" "$arch" "$guest" <<'PY'
import json, statistics, sys
res = {r["command"]: statistics.median(r["times"]) * 1e3 for r in json.load(open(sys.argv[1]))["results"]}
print(f'{sys.argv[2]:<8} {sys.argv[3]:<6} {res["portable"]:12.1f} {res["precompiled"]:15.1f} '
      f'{res["portable"] / res["precompiled"]:17.1f}x')
PY
    done
done
