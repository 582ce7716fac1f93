#!/usr/bin/env bash
# Builds wedge and a sample app (examples/hello-sandbox, Rust for wasm32-wasip1), then
# runs it twice: once with a writable volume and an env var granted, once with nothing
# granted, to show that the sandbox denies what was not granted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build -p wedge --locked
CARGO_TARGET_DIR=target/examples cargo build --release --quiet \
    --manifest-path examples/hello-sandbox/Cargo.toml --target wasm32-wasip1
app=target/examples/wasm32-wasip1/release/hello-sandbox.wasm
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

echo "== granted: -v $data:/data:rw -e GREETING=hello"
target/debug/wedge run -v "$data:/data:rw" -e GREETING=hello "$app"
echo "== granted again (the note persists in the volume)"
target/debug/wedge run -v "$data:/data:rw" -e GREETING=hello "$app"
echo "== nothing granted"
target/debug/wedge run "$app" || echo "(exit status $?)"
