#!/usr/bin/env bash
# Builds wedge-micro's firmware side (docs/micro.md) for the Cortex-M4 board QEMU models
# (`qemu-system-arm -M mps2-an386`): the Rust reference firmware (firmware/mps2-an386),
# the C API's static library (firmware/capi) and the C firmware linked with it
# (firmware/c-mps2-an386). Prints the paths of the two firmware ELF files, Rust first,
# one per line. Installs what that needs, idempotently: the `thumbv7em-none-eabi` Rust
# target (also in rust-toolchain.toml), Debian's qemu-system-arm, and its Cortex-M C
# compiler and C library (gcc-arm-none-eabi, newlib). Checks the Rust crates'
# formatting and lints first, as for the workspace (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
rust_targets thumbv7em-none-eabi
apt_install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi make
(
    cd firmware
    cargo fmt --all --check >&2
    cargo clippy --locked --release --workspace -- -D warnings >&2
    cargo build --locked --release --workspace >&2
    make -s -C c-mps2-an386 >&2
)
echo "$PWD/target/firmware/thumbv7em-none-eabi/release/wedge-firmware"
echo "$PWD/target/firmware/c-mps2-an386/wedge-c-firmware"
