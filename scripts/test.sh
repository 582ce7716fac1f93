#!/usr/bin/env bash
# Runs every test: installs prerequisites (scripts/setup.sh), then the whole workspace's
# unit, golden and end-to-end tests. The guest programs are compiled from source by
# crates/test-programs/build.rs as part of the build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked
