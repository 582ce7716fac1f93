#!/usr/bin/env bash
# wedge-micro's figures (docs/micro.md) on the reference firmware in QEMU's MPS2 AN386
# (a Cortex-M4, 1 MiB of RAM) run with `-icount shift=0`: one virtual nanosecond per
# instruction, so its times are instruction counts, not a device's timing.
#   flash  the firmware's code and constants (text + data), and the part of them that
#          is the runtime (wasmtime, Pulley, wedge-micro, sha2; symbol sizes by crate)
#   RAM    statics + heap high-water mark + deepest main stack, as the firmware reports
#          them: with `hello` alone, with two `ticker`s taking turns
#   start  checking the bundle and loading its code, then the run of `hello` to its
#          exit, in thousands of instructions
#   C      the C firmware on the C API (firmware/c-mps2-an386, newlib-nano): its flash,
#          and its RAM with `hello` (statics + the C heap's high-water mark + stack)
# Guests: guests/micro's C programs, built as crates/test-programs/build.rs builds them
# (MICRO_FLAGS: one 64 KiB page of memory, an 8 KiB stack, no debug sections).
# Usage: bench/micro.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
bash scripts/setup.sh
apt_install binutils-arm-none-eabi
firmwares=$(bash scripts/micro.sh)
firmware=$(sed -n 1p <<<"$firmwares")
c_firmware=$(sed -n 2p <<<"$firmwares")
locked_cargo build --locked -p wedge >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for guest in hello ticker; do
    clang-16 --target=wasm32-wasi -O2 -Wl,-z,stack-size=8192 -Wl,--initial-memory=65536 -Wl,--strip-debug \
        -o "$work/$guest.wasm" "crates/test-programs/guests/micro/$guest.c"
done

# Boots a firmware (FIRMWARE, the reference one by default) with the bundle of the apps
# given, prints its console.
boot() {
    target/debug/wedge micro bundle -o "$work/bundle.bin" "$@" 2>/dev/null
    timeout 600 qemu-system-arm -M mps2-an386 -nographic -monitor none -icount shift=0 \
        -semihosting-config enable=on,target=native -kernel "${FIRMWARE:-$firmware}" \
        -device "loader,file=$work/bundle.bin,addr=0x00200000" </dev/null
}

# Prints a firmware's flash: text + data, and the runtime's symbols among them.
flash() {
    local text data runtime
    read -r text data _ < <(arm-none-eabi-size "$1" | tail -1)
    runtime=$(arm-none-eabi-nm --size-sort -S -C "$1" |
        awk '$4 ~ /^<?(wasmtime|pulley_interpreter|wedge_micro|wedge_topic|sha2|spin|cranelift_bitset)/ {print $2}' |
        python3 -c 'import sys; print(sum(int(line, 16) for line in sys.stdin))')
    echo "$((text + data)) B (text $text, data $data), of which the runtime's symbols $runtime B"
}

echo "flash: firmware $(flash "$firmware")"
echo "flash: C firmware $(flash "$c_firmware")"

hello=$(boot "$work/hello.wasm")
cp "$work/ticker.wasm" "$work/other.wasm"
two=$(boot "$work/ticker.wasm" "$work/other.wasm")
ram() { grep -o 'in all [0-9]* B' <<<"$1" | grep -o '[0-9]*'; }
echo "RAM, hello alone: $(grep 'RAM static' <<<"$hello" | sed 's/^wedge-micro: //')"
echo "RAM, two tickers: $(grep 'RAM static' <<<"$two" | sed 's/^wedge-micro: //')"
echo "RAM in all: hello $(( $(ram "$hello") / 1024 )) KiB, two apps $(( $(ram "$two") / 1024 )) KiB"
echo "start of hello (thousands of instructions): $(grep 'checked and loaded' <<<"$hello" | sed 's/^wedge-micro: //')"
c_hello=$(FIRMWARE=$c_firmware boot "$work/hello.wasm")
c_ram=$(grep 'RAM static' <<<"$c_hello" | sed 's/^c-firmware: //')
echo "RAM, hello on the C firmware: $c_ram, in all $(( ($(grep -o '[0-9]* B' <<<"$c_ram" | grep -o '[0-9]*' | paste -sd+)) / 1024 )) KiB"
