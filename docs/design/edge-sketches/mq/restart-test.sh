#!/bin/bash
# usage: restart-test.sh CONF PORT [extra args for the sketch]
conf=$1; port=$2; shift 2
mosquitto -c $conf > broker.log 2>&1 & bpid=$!
sleep 0.3
/tmp/research7/target-mqtt/debug/mqttsketch $port "$@" > sketch.out 2> sketch.err & spid=$!
for i in $(seq 1 50); do grep -q 'half published' sketch.err && break; sleep 0.1; done
kill -TERM $bpid; wait $bpid 2>/dev/null
sleep 1
mosquitto -c $conf >> broker.log 2>&1 & bpid=$!
wait $spid
kill -TERM $bpid; wait $bpid 2>/dev/null
cat sketch.err; cat sketch.out
