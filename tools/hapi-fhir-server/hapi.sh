#!/usr/bin/env bash
# Real HAPI FHIR JPA server (FHIR R4, in-memory H2) for CDSS tests and CI.
#
#   tools/hapi-fhir-server/hapi.sh build    # mvn -B -q package, skipped when the jar is newer than its sources
#   tools/hapi-fhir-server/hapi.sh start    # start on 127.0.0.1:$FHIR_PORT/fhir, wait until ready (builds first if needed)
#   tools/hapi-fhir-server/hapi.sh stop     # stop the server whose PID was recorded at start
#   tools/hapi-fhir-server/hapi.sh status   # exit 0 when running and answering /fhir/metadata
#
# Environment:
#   FHIR_PORT (or HAPI_PORT)   port, default 28090; always bound to 127.0.0.1
#   HAPI_STATE_DIR             PID file and log folder, default $CDSS_SERVICES_DIR/hapi-fhir
#                              (CDSS_SERVICES_DIR defaults to /tmp/cdss-services, as in scripts/services/)
#   HAPI_JAVA_OPTS             JVM options, default "-Xms256m -Xmx1536m"
#   HAPI_START_TIMEOUT         seconds to wait for readiness, default 300
# Data lives in memory only: a restart starts from an empty server.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JAR=$HERE/target/cdss-hapi-fhir-server.jar
PORT=${FHIR_PORT:-${HAPI_PORT:-28090}}
STATE_DIR=${HAPI_STATE_DIR:-${CDSS_SERVICES_DIR:-/tmp/cdss-services}/hapi-fhir}
PID_FILE=$STATE_DIR/hapi-fhir.pid
LOG_FILE=$STATE_DIR/hapi-fhir.log
JAVA_OPTS=${HAPI_JAVA_OPTS:--Xms256m -Xmx1536m}
START_TIMEOUT=${HAPI_START_TIMEOUT:-300}
BASE_URL=http://127.0.0.1:$PORT/fhir

log() { printf '[hapi-fhir %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

recorded_pid() { # prints the recorded PID when that process is alive
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ready() { curl -sf -o /dev/null --max-time 5 "$BASE_URL/metadata"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

up_to_date() { # the jar exists and nothing it is built from is newer
  [ -f "$JAR" ] || return 1
  [ -z "$(find "$HERE/pom.xml" "$HERE/src" -newer "$JAR" -print -quit)" ]
}

cmd_build() {
  command -v mvn >/dev/null || die "mvn (Maven 3.8+) is not on PATH"
  command -v java >/dev/null || die "java (17+) is not on PATH"
  if up_to_date; then
    log "build: $JAR is up to date"
    return 0
  fi
  local t0
  t0=$(now)
  log "build: mvn -B -q package (HAPI FHIR jars come from Maven Central on the first build)"
  (cd "$HERE" && mvn -B -q -Dstyle.color=never package -DskipTests)
  [ -f "$JAR" ] || die "build finished without $JAR"
  log "build: done in $(since "$t0") s"
}

cmd_start() {
  local pid t0
  if pid=$(recorded_pid); then
    if ready; then
      log "already running (pid $pid) at $BASE_URL"
      return 0
    fi
    die "pid $pid is recorded in $PID_FILE but $BASE_URL does not answer; run '$0 stop' first"
  fi
  port_busy && die "127.0.0.1:$PORT is already in use by another process"
  up_to_date || cmd_build
  mkdir -p "$STATE_DIR"
  t0=$(now)
  # shellcheck disable=SC2086 # JAVA_OPTS is a list of options
  FHIR_PORT=$PORT FHIR_HOST=127.0.0.1 nohup java $JAVA_OPTS -jar "$JAR" >"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "started pid $pid on $BASE_URL (log: $LOG_FILE); waiting for /fhir/metadata"
  local deadline=$((SECONDS + START_TIMEOUT))
  until ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 40 "$LOG_FILE" >&2 || true
      die "HAPI exited during startup (log above)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$LOG_FILE" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "HAPI did not answer $BASE_URL/metadata within ${START_TIMEOUT}s"
    fi
    sleep 0.5
  done
  log "ready in $(since "$t0") s"
  # The first $validate loads the R4 definitions (seconds); do it now rather than in a test.
  local tv
  tv=$(now)
  if curl -sf -o /dev/null --max-time 120 -X POST -H 'Content-Type: application/fhir+json' \
    --data '{"resourceType":"Patient","active":true}' "$BASE_URL/Patient/\$validate"; then
    log "validator warmed up in $(since "$tv") s"
  else
    log "warning: the warm-up \$validate call failed (the server is up; validation will load on first use)"
  fi
}

cmd_stop() {
  local pid
  if ! pid=$(recorded_pid); then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  kill "$pid"
  local i
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop within 30 s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  log "stopped pid $pid"
}

cmd_status() {
  local pid
  if pid=$(recorded_pid) && ready; then
    echo "hapi-fhir running (pid $pid) at $BASE_URL"
    return 0
  fi
  if pid=$(recorded_pid); then
    echo "hapi-fhir pid $pid is alive but $BASE_URL does not answer (starting?)"
    return 1
  fi
  echo "hapi-fhir not running"
  return 3
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop && cmd_start ;;
  *)
    echo "usage: $0 {build|start|stop|status|restart}" >&2
    exit 2
    ;;
esac
