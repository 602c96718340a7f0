#!/usr/bin/env bash
# A/B of two wshub binaries (plain `cargo build --release` of two commits), alternating, with
# compare.sh's arguments and pinning (server on core 0, harness on core 1). One JSON line per
# run in $OUT.
#
#   git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release)
#   cargo build --release && cp target/release/wshub /tmp/after-wshub
#   CARGO_TARGET_DIR=/tmp/bench-target cargo bench --bench load --no-run   # the harness only
#   BEFORE=/tmp/before/target/release/wshub AFTER=/tmp/after-wshub benches/ab.sh
# The servers log at RUST_LOG=warn, as compare.sh runs them; LOG=info measures the default
# (which writes the access log, a line per REST call).
set -u
BEFORE=${BEFORE:?the binary before}
AFTER=${AFTER:?the binary after}
LOAD=${LOAD:-$(ls -t /tmp/bench-target/release/deps/load-* | grep -v '\.d$' | head -n 1)}
SECRET=bench-secret
PORT=7890
TOKEN=$(WSHUB_JWT_SECRET=$SECRET $AFTER token)
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/ab-results.jsonl}
args_for() {
  case $1 in
    fanout-rate) echo "--clients 1000 --messages 300 --rate 50 --payload 64" ;;
    fanout) echo "--clients 1000 --messages 2000 --inflight 4 --payload 64" ;;
    system) echo "--clients 10000 --messages 30 --inflight 1 --payload 64" ;;
    unicast) echo "--clients 100 --messages 20000 --inflight 32 --payload 64" ;;
    idle) echo "--clients 15000" ;;
  esac
}
for round in $(seq "$ROUNDS"); do
  for scenario in ${SCENARIOS:-fanout-rate fanout system idle}; do
    for which in before after; do
      bin=$BEFORE; [[ $which == after ]] && bin=$AFTER
      WSHUB_JWT_SECRET=$SECRET RUST_LOG=${LOG:-warn} taskset -c 0 $bin --port $PORT --ephemeral >/tmp/ab-server.log 2>&1 &
      pid=$!
      sleep 0.5
      line=$(taskset -c 1 "$LOAD" "$scenario" --url "http://127.0.0.1:$PORT" --token "$TOKEN" --pid $pid --name "$scenario" $(args_for $scenario) 2>/dev/null | grep '^{' | tail -n 1)
      kill $pid; wait $pid 2>/dev/null
      echo "{\"round\":$round,\"build\":\"$which\",\"result\":$line}" >> "$OUT"
      sleep 1
    done
  done
done
