#!/usr/bin/env bash
# In-daemon pub/sub between two containers of a release `wedged`: the `msg` component
# (crates/test-programs/guests/components/msg) publishing 64-byte messages as fast as it
# can to a subscriber that receives them in batches, then a paced run at 10,000
# messages/s for the delivery latency (publish to receive, wall clock).
# Targets from the issue: >= 200,000 messages/s; p99 delivery <= 1 ms at 10,000/s.
# Usage: [COUNT=400000] bench/messaging.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-400000}
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_release msg
msg=$(component_path msg)
work=$(mktemp -d)
daemon=
cleanup() { [ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
target/release/wedged --root "$work/root" --socket "$work/s.sock" --queue-size 65536 \
    >"$work/wedged.log" 2>&1 &
daemon=$!
export WEDGE_HOST=unix://$work/s.sock
wedge=target/release/wedge
until "$wedge" ps >/dev/null 2>&1; do sleep 0.05; done

# run NAME PUB_ARGS... : a subscriber for $1 messages, then a publisher; prints the
# subscriber's result line.
pair() {
    local name=$1 n=$2
    shift 2
    "$wedge" run -d --name "sub-$name" --allow-subscribe 'bench/#' "$msg" bench-sub 'bench/#' "$n" >/dev/null
    until "$wedge" logs "sub-$name" 2>/dev/null | grep -q ready; do sleep 0.02; done
    "$wedge" run -d --name "pub-$name" --allow-publish 'bench/#' "$msg" bench-pub bench/x "$n" "$@" >/dev/null
    "$wedge" wait "sub-$name" >/dev/null
    echo "$name: $("$wedge" logs "pub-$name" | tail -1); $("$wedge" logs "sub-$name" | tail -1)"
}
pair warmup 20000
pair throughput "$count"
pair latency 20000 10000
