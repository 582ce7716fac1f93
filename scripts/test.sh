#!/usr/bin/env bash
# Runs every test: installs prerequisites (scripts/setup.sh), then the whole workspace's
# unit, golden and end-to-end tests, those of the device build (no compilers), those of
# wedge-micro's firmware under QEMU (scripts/micro.sh), the device-relevant end-to-end
# tests on 64-bit ARM under QEMU, then the WASI-NN tests again with the optional
# onnxruntime backend built in (its library from the PyPI wheel, scripts/onnxruntime.sh).
# The guest programs are compiled from source by crates/test-programs/build.rs.
# Formatting and lints are checked first (`cargo fmt --check`, clippy with warnings
# denied), as the development rules ask.
set -euo pipefail
cd "$(dirname "$0")/.."
# One build from scratch: incremental compilation state would only take disk.
export CARGO_INCREMENTAL=0
bash scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p wedge --no-default-features --features multicall --locked -- -D warnings
cargo test --workspace --locked
# The device build (docs/edge.md): no compilers, no tract, `wedge` that is also `wedged`;
# its own end-to-end tests (ignored in the run above, which has every feature).
cargo build --locked -p wedge --no-default-features --features multicall
mkdir -p target/device-build
cp target/debug/wedge target/device-build/wedge
ln -sf wedge target/device-build/wedged
WEDGE_E2E_BIN_DIR=$PWD/target/device-build cargo test --workspace --locked --test e2e -- \
  --ignored device_build::
# wedge-micro on a Cortex-M4 under QEMU (docs/micro.md): the reference firmware and the
# C firmware on the C API run bundles that `wedge micro bundle` makes (a few minutes).
firmware=$(bash scripts/micro.sh)
WEDGE_MICRO_FIRMWARE=$(sed -n 1p <<<"$firmware") WEDGE_MICRO_C_FIRMWARE=$(sed -n 2p <<<"$firmware") \
  cargo test --workspace --locked --test e2e -- --ignored micro::
# The end-to-end tests that matter on a device, against wedge and wedged cross-built for
# 64-bit ARM and run under QEMU user mode (docs/edge.md; about 20 minutes).
# Before the onnxruntime run below, which rebuilds the test binaries with its feature.
bash scripts/cross-test.sh aarch64
# Both binaries get the backend: `wedge run` loads models itself, `wedged` for `run -d`
# (`--test wedged` makes cargo rebuild the daemon binary with the feature).
ORT_DYLIB_PATH=$(bash scripts/onnxruntime.sh) cargo test --workspace --locked \
  --features wedge/onnxruntime,wedge-daemon/onnxruntime --test e2e --test wedged -- nn::
