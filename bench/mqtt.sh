#!/usr/bin/env bash
# Messages through a real broker: Debian's mosquitto on loopback, N 64-byte QoS 0
# messages received by `mosquitto_sub -C N`, published either by the native
# `mosquitto_pub -l` or by an app in a release `wedged` whose MQTT bridge forwards its
# bus (the `msg` component's `bench-pub`). Side by side in one run; the issue asks wedge
# to stay within 1.5x of the native clients.
# Usage: [COUNT=100000] bench/mqtt.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-100000}
# shellcheck source=bench/lib.sh
. bench/lib.sh
prepare_release msg
msg=$(component_path msg)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=""
[ "$(id -u)" -eq 0 ] && user="user root"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n%s\n' "$port" "$user" >"$work/m.conf"
mosquitto -c "$work/m.conf" >/dev/null 2>&1 &
pids+=($!)
until (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null; do sleep 0.05; done

# receive NAME CMD...: starts mosquitto_sub for $count messages, runs CMD to publish,
# prints NAME and the messages per second from the first publish to the last receive.
receive() {
    local name=$1
    shift
    mosquitto_sub -p "$port" -t 'bench/#' -C "$count" >/dev/null &
    local sub=$!
    sleep 0.5
    local start
    start=$(date +%s.%N)
    "$@"
    wait "$sub"
    python3 -c "import sys; print(f'{sys.argv[1]:<28} {int(sys.argv[2])/(float(sys.argv[4])-float(sys.argv[3])):>10.0f} msgs/s')" \
        "$name" "$count" "$start" "$(date +%s.%N)"
}

python3 -c "import sys; [print('x'*64) for _ in range(int(sys.argv[1]))]" "$count" >"$work/lines"
receive "mosquitto_pub -l" mosquitto_pub -p "$port" -t bench/x -l <"$work/lines" | tee "$work/native"

target/release/wedged --root "$work/root" --socket "$work/s.sock" --mqtt "mqtt://127.0.0.1:$port" \
    --mqtt-client-id wedged-bench >"$work/wedged.log" 2>&1 &
pids+=($!)
export WEDGE_HOST=unix://$work/s.sock
until target/release/wedge ps >/dev/null 2>&1; do sleep 0.05; done
until grep -q "bridge connected" "$work/wedged.log"; do sleep 0.05; done
publish() {
    target/release/wedge run -d --name pub --allow-publish 'bench/#' "$msg" bench-pub bench/x "$count" >/dev/null
    target/release/wedge wait pub >/dev/null
}
receive "wedge app via the bridge" publish | tee "$work/wedge"
python3 - "$work/native" "$work/wedge" <<'PY'
import sys
native, wedge = (float(open(p).read().split()[-2]) for p in sys.argv[1:])
ratio = native / wedge
print(f"native/wedge time ratio {ratio:.2f}x (target <= 1.5x) {'ok' if ratio <= 1.5 else 'MISSED'}")
PY
