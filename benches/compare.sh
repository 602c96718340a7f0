#!/usr/bin/env bash
# Runs load scenarios against wshub and the reference limitsrv, one after the other, the server
# pinned to CPU 0 and the generator to CPU 1, then writes BENCHMARKS.md and benches/latency.svg.
#
#   benches/compare.sh                      # every scenario, 3 alternating rounds
#   ROUNDS=1 SCENARIOS="fanout-rate" benches/compare.sh
#   APPEND=1 SCENARIOS="fanout-rate-2-nodes" benches/compare.sh   # add to the existing results
#   REPORT_ONLY=1 benches/compare.sh        # rewrite BENCHMARKS.md from the results, run nothing
#
# fanout-rate-2-nodes runs two wshub nodes in cluster mode (Redis at $REDIS_URL), both on CPU 0,
# with the clients spread over both; limitsrv has no cluster mode and is not run for it.
# limitsrv is built outside the repo from ../shared/reference/limitsrv.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
# fanout-rate runs this many times per round: at a fixed rate both servers' figures move ±10%
# from run to run here, so its median needs more runs than the flat-out scenarios' best run.
FIXED_RATE_REPEAT=${FIXED_RATE_REPEAT:-3}
ALL_SCENARIOS="fanout-rate fanout-rate-recovery fanout system big-room unicast idle fanout-rate-2-nodes mqtt-fanout"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
MQTT_URL=${MQTT_URL:-mqtt://127.0.0.1:1883}
RESULTS=${RESULTS:-benches/results.jsonl}
LIMITSRV_DIR=${LIMITSRV_DIR:-../shared/reference/limitsrv}
LIMITSRV_TARGET=${LIMITSRV_TARGET:-/tmp/limitsrv}
PORT=${PORT:-7890}
SECRET=bench-secret

# The harness first: `cargo bench` also builds target/release/wshub, with the dev-dependencies'
# features turned on, and that binary is not the one users run (it was about 20% slower in
# `system` and `unicast`, and held 14.8 KiB per idle connection against 13.2). The plain
# release build last puts the users' binary back.
cargo bench --locked --bench load --no-run
cargo build --release --locked
cargo build --release --manifest-path "$LIMITSRV_DIR/Cargo.toml" --target-dir "$LIMITSRV_TARGET"
LOAD=$(ls -t target/release/deps/load-* | grep -v '\.d$' | head -n 1)
TOKEN=$(WSHUB_JWT_SECRET=$SECRET target/release/wshub token)

args_for() {
  case $1 in
    fanout-rate) echo "--clients 1000 --messages 300 --rate 50 --payload 64" ;;
    fanout-rate-recovery) echo "--clients 1000 --messages 300 --rate 50 --payload 64 --recovery-share 0.5" ;;
    fanout) echo "--clients 1000 --messages 2000 --inflight 4 --payload 64" ;;
    system) echo "--clients 10000 --messages 30 --inflight 1 --payload 64" ;;
    big-room) echo "--clients 10000 --payload 64 --rates 1,2,5,10,20,40,80,160 --step-seconds 3" ;;
    unicast) echo "--clients 100 --messages 20000 --inflight 32 --payload 64" ;;
    idle) echo "--clients 15000" ;;
    fanout-rate-2-nodes) echo "--clients 1000 --messages 300 --rate 50 --payload 64" ;;
    mqtt-fanout) echo "--clients 1000 --messages 2000 --inflight 4 --payload 64" ;;
  esac
}

# Two cluster nodes on CPU 0; sets NODE_PIDS and NODE_PORTS.
start_cluster() {
  local prefix="bench-$RANDOM$RANDOM:"
  NODE_PIDS=(); NODE_PORTS=("$PORT" "$((PORT + 1))")
  for port in "${NODE_PORTS[@]}"; do
    WSHUB_JWT_SECRET=$SECRET RUST_LOG=warn taskset -c 0 target/release/wshub --port "$port" \
      --redis-url "$REDIS_URL" --redis-prefix "$prefix" >/tmp/bench-node-$port.log 2>&1 &
    NODE_PIDS+=($!)
  done
  for port in "${NODE_PORTS[@]}"; do
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  done
}
stop_cluster() { kill "${NODE_PIDS[@]}" 2>/dev/null || true; wait "${NODE_PIDS[@]}" 2>/dev/null || true; }

start() {
  case $1 in
    wshub) WSHUB_JWT_SECRET=$SECRET RUST_LOG=warn taskset -c 0 target/release/wshub --port "$PORT" --ephemeral >/tmp/bench-server.log 2>&1 & ;;
    limitsrv) taskset -c 0 "$LIMITSRV_TARGET/release/limitsrv" "$PORT" >/tmp/bench-server.log 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return
    sleep 0.05
  done
  echo "server $1 did not start" >&2; exit 1
}

stop() {
  [[ -n ${SERVER_PID:-} ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop EXIT

[[ -n ${APPEND:-}${REPORT_ONLY:-} ]] || : >"$RESULTS"
run_rounds=$ROUNDS
[[ -z ${REPORT_ONLY:-} ]] || run_rounds=0
for round in $(seq "$run_rounds"); do
  for scenario in $SCENARIOS; do
    if [[ $scenario == fanout-rate-2-nodes ]]; then
      start_cluster
      echo "round $round: $scenario against wshub (2 nodes)"
      # shellcheck disable=SC2046
      taskset -c 1 "$LOAD" fanout-rate --name "$scenario" --url "http://127.0.0.1:${NODE_PORTS[0]}" \
        --ws-urls "http://127.0.0.1:${NODE_PORTS[0]},http://127.0.0.1:${NODE_PORTS[1]}" \
        --token "$TOKEN" --pid "${NODE_PIDS[0]}" --pid "${NODE_PIDS[1]}" --label wshub \
        --json "$RESULTS" $(args_for "$scenario") | grep -v '^{'
      stop_cluster
      sleep 0.5
      continue
    fi
    if [[ $scenario == fanout-rate-recovery ]]; then
      # wshub only (limitsrv has no recovery): compare it with wshub's own fanout-rate.
      start wshub
      echo "round $round: $scenario against wshub"
      # shellcheck disable=SC2046
      taskset -c 1 "$LOAD" fanout-rate --name "$scenario" --url "http://127.0.0.1:$PORT" --token "$TOKEN" \
        --pid "$SERVER_PID" --label wshub --json "$RESULTS" $(args_for "$scenario") | grep -v '^{'
      stop
      sleep 0.5
      continue
    fi
    if [[ $scenario == mqtt-fanout ]]; then
      # wshub only: limitsrv has no MQTT side. The bridge's broker is $MQTT_URL.
      mqtt_prefix="bench-$RANDOM$RANDOM/"
      WSHUB_JWT_SECRET=$SECRET RUST_LOG=warn taskset -c 0 target/release/wshub --port "$PORT" --ephemeral \
        --mqtt-url "$MQTT_URL" --mqtt-prefix "$mqtt_prefix" >/tmp/bench-server.log 2>&1 &
      SERVER_PID=$!
      for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
      sleep 0.5   # the bridge subscribes
      echo "round $round: $scenario against wshub"
      # shellcheck disable=SC2046
      taskset -c 1 "$LOAD" mqtt-fanout --url "http://127.0.0.1:$PORT" --token "$TOKEN" --pid "$SERVER_PID" \
        --mqtt-url "$MQTT_URL" --mqtt-prefix "$mqtt_prefix" --label wshub --json "$RESULTS" \
        $(args_for "$scenario") | grep -v '^{'
      stop
      sleep 0.5
      continue
    fi
    repeats=1; [[ $scenario == fanout-rate ]] && repeats=$FIXED_RATE_REPEAT
    for repeat in $(seq "$repeats"); do
      # Alternate the order so neither server always runs on a warmer machine.
      if (( (round + repeat) % 2 )); then servers="limitsrv wshub"; else servers="wshub limitsrv"; fi
      for server in $servers; do
        start "$server"
        token=(); [[ $server == wshub ]] && token=(--token "$TOKEN")
        echo "round $round: $scenario against $server"
        # shellcheck disable=SC2046
        taskset -c 1 "$LOAD" "$scenario" --url "http://127.0.0.1:$PORT" "${token[@]}" \
          --pid "$SERVER_PID" --label "$server" --json "$RESULTS" $(args_for "$scenario") | grep -v '^{'
        stop
        sleep 0.5
      done
    done
  done
done

cat >/tmp/bench-notes.md <<NOTES
## How these figures were made

\`\`\`sh
benches/compare.sh          # ROUNDS=$ROUNDS FIXED_RATE_REPEAT=$FIXED_RATE_REPEAT
\`\`\`

which, for each round and scenario, starts the server pinned to CPU 0 and runs the generator on
CPU 1:

\`\`\`sh
taskset -c 0 target/release/wshub --port $PORT            # or: limitsrv $PORT
taskset -c 1 target/release/deps/load-* SCENARIO --url http://127.0.0.1:$PORT --pid PID [--token T] ARGS
\`\`\`

with ARGS per scenario:

$(for s in $ALL_SCENARIOS; do echo "- \`$s\`: \`$(args_for "$s")\`"; done)

wshub runs with JWT auth on (every REST call verifies a token); limitsrv has no auth.
\`target/release/wshub\` is the plain \`cargo build --release\` (the build \`cargo run --release\`
makes), built after the harness; limitsrv is its own crate's default release build.
\`fanout-rate\` runs $FIXED_RATE_REPEAT times per round, the two servers alternating: at a fixed rate
each server's CPU and latency figures move ±10% from run to run here, so its median takes more runs
to settle than a flat-out scenario's best run.
\`fanout-rate-2-nodes\` runs two wshub nodes in cluster mode against Redis, both pinned to CPU 0
with the clients spread over them, REST to the first; its CPU figure is both nodes together.
NOTES
if [[ -f benches/notes.md ]]; then echo >>/tmp/bench-notes.md; cat benches/notes.md >>/tmp/bench-notes.md; fi
"$LOAD" report --input "$RESULTS" --output BENCHMARKS.md --svg benches/latency.svg --notes /tmp/bench-notes.md
