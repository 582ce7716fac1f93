#!/usr/bin/env bash
# Builds wedge-micro's reference firmware (firmware/mps2-an386, docs/micro.md) for the
# Cortex-M4 board QEMU models (`qemu-system-arm -M mps2-an386`) and prints the path of
# its ELF file. Installs what that needs, idempotently: the `thumbv7em-none-eabi` Rust
# target (also in rust-toolchain.toml) and Debian's qemu-system-arm. Checks the
# firmware's formatting and lints first, as for the workspace (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
rust_targets thumbv7em-none-eabi
apt_install qemu-system-arm
cd firmware/mps2-an386
cargo fmt --check >&2
cargo clippy --locked --release -- -D warnings >&2
cargo build --locked --release >&2
echo "$PWD/../../target/firmware/thumbv7em-none-eabi/release/wedge-firmware"
