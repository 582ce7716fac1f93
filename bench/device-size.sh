#!/usr/bin/env bash
# Sizes of the device builds (docs/edge.md): for each target and feature set, the
# stripped binaries of the `device` profile (opt-level "z", fat LTO, one codegen unit,
# panic = "abort"; `device-compiler`, which keeps unwinding, for the sets with the
# compilers), and for the native target the idle daemon's memory: RSS and PSS of
# `wedged` (the multicall binary called so) a few seconds after it started with an
# empty data root and 64 instance slots, as on a device (deploy/edge/wedged.service).
# Idle memory depends on the storage's readahead (the code the kernel maps around each
# page touched): the script prints the one of the disk holding the binaries; a device's
# eMMC or SD card typically reads ahead 128 KiB.
# Feature sets:
#   full      every default feature (compilers, WASI-NN on tract): `wedge` and `wedged`
#   device    --no-default-features --features multicall: no compilers (nor the build
#             tools), no tract, no HTTP server, no backtrace details; one binary for
#             both (a link named `wedged`)
#   device+compiler   the same with the compilers, for devices that compile themselves
# Each build takes 10 to 15 minutes on the 2-core build machine.
# Usage: [SETS="device full"] bench/device-size.sh [aarch64|riscv64|armv7|native ...]
#        (default: aarch64 native, every feature set)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
bash scripts/setup.sh

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(aarch64 native)
declare -A features=([full]="" [device]="--no-default-features --features multicall"
                     [device+compiler]="--no-default-features --features multicall,compiler")
declare -A profiles=([full]=device-compiler [device]=device [device+compiler]=device-compiler)
read -r -a sets <<< "${SETS:-full device device+compiler}"

mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 2**20:.1f}')" "$1"; }

disk=$(lsblk -no PKNAME "$(df --output=source . | tail -1)" 2>/dev/null | head -1 || true)
echo "# readahead of the build disk: $(cat "/sys/block/${disk:-vda}/queue/read_ahead_kb" 2>/dev/null || echo '?') KiB" >&2

printf '%-8s %-16s %10s %10s %14s %14s\n' target features "wedge MiB" "wedged MiB" "idle RSS MiB" "idle PSS MiB"
for target in "${targets[@]}"; do
    if [ "$target" = native ]; then
        triple_args=()
        dir=target
    else
        edge_toolchains "$target" >&2
        triple_args=(--target "${edge_triple[$target]}")
        dir=target/${edge_triple[$target]}
    fi
    for set in "${sets[@]}"; do
        profile=${profiles[$set]}
        out=$dir/$profile
        if [ "$set" = full ]; then
            cargo build --locked --profile "$profile" "${triple_args[@]}" -p wedge -p wedge-daemon >&2
            wedge_size=$(stat -c %s "$out/wedge")
            wedged_size=$(stat -c %s "$out/wedged")
            wedged=$out/wedged
        else
            # shellcheck disable=SC2086
            cargo build --locked --profile "$profile" "${triple_args[@]}" -p wedge ${features[$set]} >&2
            wedge_size=$(stat -c %s "$out/wedge")
            wedged_size=$wedge_size
            mkdir -p "$out/multicall"
            cp "$out/wedge" "$out/multicall/wedge"
            ln -sf wedge "$out/multicall/wedged"
            wedged=$out/multicall/wedged
        fi
        rss=- pss=-
        if [ "$target" = native ]; then
            root=$(mktemp -d)
            WEDGED_POOL_SIZE=64 "$wedged" --root "$root" --socket "$root/sock" 2>/dev/null &
            pid=$!
            sleep 3
            rss=$(awk '/^VmRSS/ {print $2 * 1024}' "/proc/$pid/status")
            pss=$(awk '/^Pss:/ {print $2 * 1024}' "/proc/$pid/smaps_rollup")
            kill "$pid"
            wait "$pid" || true
            rm -rf "$root"
            rss=$(mib "$rss") pss=$(mib "$pss")
        fi
        printf '%-8s %-16s %10s %10s %14s %14s\n' "$target" "$set" "$(mib "$wedge_size")" \
            "$(mib "$wedged_size")" "$rss" "$pss"
    done
done
