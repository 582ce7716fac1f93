#!/usr/bin/env bash
# Key-value throughput from a guest: the `kv` component (crates/test-programs/guests/
# components/kv) timing N `set`s (each committed to <root>/keyvalue.db before it returns)
# and N `get`s of 64-byte values through wasi:keyvalue, run by a release `wedge run --kv`.
# Targets from the issue: >= 50,000 gets/s and >= 10,000 durable sets/s.
# Usage: [SETS=20000] [GETS=200000] bench/keyvalue.sh
set -euo pipefail
cd "$(dirname "$0")/.."
sets=${SETS:-20000}
gets=${GETS:-200000}
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_release kv
kv=$(component_path kv)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export WEDGE_ROOT=$work/root
wedge=target/release/wedge
"$wedge" run --kv "$kv" set warm up >/dev/null
for i in 1 2 3; do
    set_rate=$("$wedge" run --kv "$kv" bench-set "$sets")
    get_rate=$("$wedge" run --kv "$kv" bench-get "$gets")
    echo "run $i: sets ${set_rate}  gets ${get_rate}"
done
python3 - "$set_rate" "$get_rate" <<'PY'
import sys
sets, gets = (float(a.rstrip("/s")) for a in sys.argv[1:])
print(f"durable sets/s {sets:10.0f}  (target >= 10,000) {'ok' if sets >= 10000 else 'MISSED'}")
print(f"gets/s         {gets:10.0f}  (target >= 50,000) {'ok' if gets >= 50000 else 'MISSED'}")
PY
