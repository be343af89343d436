#!/usr/bin/env bash
# emulators.sh start|stop|env|status
#
# Runs the Kinesis (kinesis-local, the kinesis-mock engine LocalStack uses) and
# DynamoDB (dynalite) servers that gokcl's integration tests talk to, on free
# loopback ports, from the versions pinned in package-lock.json. Nothing is
# installed globally: `npm ci` fills node_modules next to this script.
#
#   start   install when needed, start both servers, wait until each answers
#           a real API call (60 s at most); on failure print the log and exit 1
#   stop    stop the processes this script started (by pid), nothing else
#   env     print the export line for the running servers:
#             eval "$(test/localstack/emulators.sh env)"
#   status  say whether the servers recorded in the state folder are running
#
# GOKCL_EMULATOR_STATE chooses the state folder (logs, pid and port files);
# default: .state next to this script. Separate folders allow separate pairs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${GOKCL_EMULATOR_STATE:-$here/.state}
wait_seconds=60

die() { echo "emulators: $*" >&2; exit 1; }

need_install() {
  [ ! -d "$here/node_modules" ] && return 0
  [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ] && return 0
  [ ! -f "$here/node_modules/kinesis-local/main.js" ] && return 0
  [ ! -f "$here/node_modules/dynalite/cli.js" ] && return 0
  return 1
}

# alive NAME: the process recorded for NAME runs, and is still the one we started.
alive() {
  local pidfile="$state/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cat "$state/$1.cmd")"
}

wait_ready() { # NAME SERVICE URL
  local deadline=$((SECONDS + wait_seconds))
  until node "$here/probe.js" ready "$2" "$3"; do
    if ! alive "$1"; then
      echo "emulators: $1 exited during start-up; last lines of $state/$1.log:" >&2
      tail -n 30 "$state/$1.log" >&2 || true
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "emulators: $1 did not answer $2 at $3 within ${wait_seconds}s; last lines of $state/$1.log:" >&2
      tail -n 30 "$state/$1.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

start() {
  command -v node >/dev/null || die "node not found: install Node.js (20 or newer) and npm"
  if alive kinesis && alive dynamodb; then
    echo "emulators: already running ($state)"
    return 0
  fi
  stop >/dev/null 2>&1 || true
  if need_install; then
    echo "emulators: npm ci in $here"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  fi
  mkdir -p "$state"
  local ports kplain ktls dport
  mapfile -t ports < <(node "$here/probe.js" ports 3)
  kplain=${ports[0]} ktls=${ports[1]} dport=${ports[2]}

  echo "kinesis-local/main.js" >"$state/kinesis.cmd"
  KINESIS_MOCK_PLAIN_PORT=$kplain KINESIS_MOCK_TLS_PORT=$ktls \
    KINESIS_MOCK_CERT_PATH="$here/node_modules/kinesis-local/server.json" LOG_LEVEL=WARN \
    CREATE_STREAM_DURATION=0ms DELETE_STREAM_DURATION=0ms SPLIT_SHARD_DURATION=0ms \
    MERGE_SHARDS_DURATION=0ms UPDATE_SHARD_COUNT_DURATION=0ms \
    nohup node "$here/node_modules/kinesis-local/main.js" >"$state/kinesis.log" 2>&1 </dev/null &
  echo $! >"$state/kinesis.pid"

  echo "dynalite-server.js" >"$state/dynamodb.cmd"
  nohup node "$here/dynalite-server.js" --host 127.0.0.1 --port "$dport" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$state/dynamodb.log" 2>&1 </dev/null &
  echo $! >"$state/dynamodb.pid"

  cat >"$state/env" <<ENV
export GOKCL_KINESIS_ENDPOINT=http://127.0.0.1:$kplain GOKCL_KINESIS_TLS_ENDPOINT=https://127.0.0.1:$ktls GOKCL_DYNAMODB_ENDPOINT=http://127.0.0.1:$dport
ENV
  if ! wait_ready kinesis kinesis "http://127.0.0.1:$kplain" || ! wait_ready dynamodb dynamodb "http://127.0.0.1:$dport"; then
    stop >/dev/null 2>&1 || true
    exit 1
  fi
  echo "emulators: kinesis on 127.0.0.1:$kplain (TLS $ktls), dynamodb on 127.0.0.1:$dport"
}

stop() {
  local name pid
  for name in kinesis dynamodb; do
    if alive "$name"; then
      pid=$(cat "$state/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do alive "$name" || break; sleep 0.1; done
      alive "$name" && kill -9 "$pid" 2>/dev/null || true
      echo "emulators: stopped $name (pid $pid)"
    fi
    rm -f "$state/$name.pid"
  done
  rm -f "$state/env"
}

env_line() {
  alive kinesis && alive dynamodb && [ -f "$state/env" ] || die "not running; start them with: $0 start"
  cat "$state/env"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) env_line ;;
  status) if alive kinesis && alive dynamodb; then echo running; cat "$state/env"; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
