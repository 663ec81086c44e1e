#!/usr/bin/env bash
# The local Kafka-compatible broker (tansu) used by the tests, the demo, the benchmarks and CI.
#
#   deploy/broker.sh install               install tansu with cargo unless this version is there
#                                          (cached in ~/.cargo/bin; a fresh build takes ~9 minutes)
#   deploy/broker.sh start [PORT] [STORE]  start on 127.0.0.1:PORT (default 19092) and wait until
#                                          it answers; STORE is `memory` (default) or a path to a
#                                          SQLite file (durable across broker restarts)
#   deploy/broker.sh stop [PORT]           stop the broker started on PORT
#   deploy/broker.sh status [PORT]         exit 0 when a broker answers on PORT
#
# State (pid and log) is kept in $HANDOFF_BROKER_DIR, default .broker/ in the repository.
set -euo pipefail

TANSU_VERSION=0.6.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE_DIR=${HANDOFF_BROKER_DIR:-$ROOT/.broker}
PATH="$HOME/.cargo/bin:$PATH"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd=${1:-}
case "$cmd" in
  install)
    if command -v tansu >/dev/null && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
      echo "tansu $TANSU_VERSION is installed: $(command -v tansu)"
      exit 0
    fi
    echo "installing tansu $TANSU_VERSION with cargo (about 9 minutes on 2 cores)…"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
    ;;
  start)
    port=${2:-19092}
    store=${3:-memory}
    command -v tansu >/dev/null || { echo "tansu is not installed: run $0 install" >&2; exit 1; }
    if answers "$port"; then echo "something already answers on 127.0.0.1:$port" >&2; exit 1; fi
    mkdir -p "$STATE_DIR"
    if [ "$store" = memory ]; then engine="memory://tansu/"; else engine="sqlite://$store"; fi
    nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "$engine" >"$STATE_DIR/broker-$port.log" 2>&1 &
    echo $! >"$STATE_DIR/broker-$port.pid"
    for _ in $(seq 1 300); do
      if answers "$port"; then echo "broker answers on 127.0.0.1:$port (pid $(cat "$STATE_DIR/broker-$port.pid"), storage $engine)"; exit 0; fi
      if ! kill -0 "$(cat "$STATE_DIR/broker-$port.pid")" 2>/dev/null; then
        echo "the broker exited; its log:" >&2; cat "$STATE_DIR/broker-$port.log" >&2; exit 1
      fi
      sleep 0.1
    done
    echo "the broker did not answer on 127.0.0.1:$port within 30 s" >&2
    exit 1
    ;;
  stop)
    port=${2:-19092}
    pidfile="$STATE_DIR/broker-$port.pid"
    [ -f "$pidfile" ] || { echo "no broker started on $port"; exit 0; }
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    echo "stopped the broker on $port"
    ;;
  status)
    port=${2:-19092}
    answers "$port"
    ;;
  *)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
