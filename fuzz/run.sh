#!/usr/bin/env bash
# Runs each fuzz target for a short while (default 60 s each) with cargo-fuzz on the
# nightly toolchain, installing cargo-fuzz when missing. Usage: fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Seed the manifest corpus with the golden manifests.
mkdir -p corpus/manifest_parse
cp ../crates/manifest/tests/golden/*.toml corpus/manifest_parse/
for target in manifest_parse module_load; do
    cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=4096
done
