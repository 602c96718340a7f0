#!/usr/bin/env bash
# CPU per delivered frame with two nodes on one Redis against two nodes on a Redis Cluster
# (`fanout-rate`, alternating rounds; nodes on core 0, harness on core 1). One JSON line per
# run in $OUT.
#
#   cargo build --release && cargo bench --bench load --no-run
#   url=$(.ci/redis-cluster start /tmp/rc)      # a private cluster: 3 masters, a replica each
#   CLUSTER_URL=$url benches/redis-cluster.sh; .ci/redis-cluster stop /tmp/rc
set -u
cd "$(dirname "$0")/.."
CLUSTER_URL=${CLUSTER_URL:?a redis+cluster:// address}
SINGLE_URL=${SINGLE_URL:-redis://127.0.0.1:6379}
LOAD=${LOAD:-$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -n 1)}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/redis-cluster-results.jsonl}
TOKEN=$(WSHUB_JWT_SECRET=bench target/release/wshub token)

run() { # label redis-url
  local label=$1 url=$2 prefix="bench-$RANDOM:" pids=() addrs=() log addr
  for _ in 1 2; do
    log=$(mktemp)
    WSHUB_JWT_SECRET=bench RUST_LOG=warn,wshub::server=info taskset -c 0 target/release/wshub \
      --port 0 --redis-url "$url" --redis-prefix "$prefix" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
      addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n 1 | sed 's/listening on //')
      [[ -n $addr ]] && break
      sleep 0.1
    done
    addrs+=("$addr")
  done
  taskset -c 1 "$LOAD" fanout-rate --clients 1000 --messages 1000 --rate 100 \
    --name "fanout-rate-2-nodes-$label" --url "${addrs[0]}" --ws-urls "${addrs[0]},${addrs[1]}" \
    --token "$TOKEN" --pid "${pids[0]}" --pid "${pids[1]}" --json "$OUT" | grep cpu_us_per_frame
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null
  # What the nodes wrote to the single Redis (the cluster is private and stopped whole).
  [[ $label == single ]] && redis-cli -u "$url" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$url" del >/dev/null
}

for round in $(seq "$ROUNDS"); do
  echo "round $round: one Redis"; run single "$SINGLE_URL"
  echo "round $round: Redis Cluster"; run cluster "$CLUSTER_URL"
done
