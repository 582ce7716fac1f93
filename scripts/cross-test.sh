#!/usr/bin/env bash
# wedge's end-to-end behaviour on the edge architectures, under QEMU user mode: for each
# target, cross-builds `wedge` and `wedged` (Debian's cross compilers, .cargo/config.toml)
# and runs the end-to-end tests that matter on a device against them (the tests
# themselves run natively and start the binaries through qemu-<arch>): an app pulled
# from a loopback registry, the daemon with two containers exchanging messages, the
# key-value store, limits (memory cap, fuel, time), volumes.
# Usage: scripts/cross-test.sh [--build-only] [aarch64|riscv64|armv7 ...]
#        (default: all three; --build-only: install and cross-build, no tests)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# The end-to-end tests run on each target (substrings of their names).
tests=(
    registry::push_then_pull_by_tag_and_by_digest
    registry::run_pulls_a_missing_image
    registry::tampered_blobs_are_refused
    messaging::two_containers_exchange_messages_through_the_daemon
    messaging::grants_decide_what_an_app_may_publish_and_subscribe_to
    keyvalue::data_persists_across_runs_per_namespace_and_bucket
    keyvalue::quotas_refuse_keys_and_bytes_beyond_them
    keyvalue::daemon_containers_share_a_namespace_and_data_survives_kill_9
    run_guests::hello_runs_as_module_component_and_c
    run_guests::guest_exit_status_becomes_wedges
    run_guests::traps_exit_134_with_message_and_backtrace
    run_guests::fuel_exhaustion_exits_124
    run_guests::timeout_stops_a_spinning_guest_and_a_sleeping_one
    run_guests::memory_cap_fails_growth_inside_the_guest
    sandbox::volumes_are_read_only_unless_rw
    sandbox::guests_cannot_escape_a_volume
    daemon::run_detached_logs_wait_and_rm
    daemon::run_detached_pulls_a_missing_image_into_the_daemons_store
    daemon::restart_policies_with_failing_and_trapping_guests
    daemon::stop_kill_and_pause_of_busy_and_sleeping_guests
    daemon::a_looping_a_flooding_and_a_memory_hungry_guest_do_not_hold_up_the_others
    daemon::sigterm_shuts_the_daemon_down_cleanly
)

build_only=
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
archs=("$@")
[ "${#archs[@]}" -gt 0 ] || archs=(aarch64 riscv64 armv7)
bash scripts/setup.sh
edge_toolchains "${archs[@]}"

# The tests (native) and their guest programs.
[ -n "$build_only" ] || cargo test --workspace --locked --no-run
for arch in "${archs[@]}"; do
    start=$(date +%s)
    cargo build --locked --target "${edge_triple[$arch]}" -p wedge -p wedge-daemon
    built=$(date +%s)
    [ -z "$build_only" ] || continue
    # QEMU emulates every reservation of the daemon's instance pool page by page
    # (1,000 slots: half a minute to start); 50 slots start in a second.
    WEDGED_POOL_SIZE=50 \
    WEDGE_E2E_BIN_DIR="$PWD/target/${edge_triple[$arch]}/debug" \
    WEDGE_E2E_RUNNER="$(edge_runner "$arch")" \
        cargo test --workspace --locked --test e2e -- "${tests[@]}"
    echo "cross-test: $arch: build $((built - start)) s, tests $(($(date +%s) - built)) s" >&2
done
