#!/usr/bin/env bash
# services.sh: run the real systems CDSS talks to, on 127.0.0.1, without systemd or Docker.
#
#   bash scripts/services/services.sh install [name...]   # Debian packages (idempotent); hapi-fhir: build
#   bash scripts/services/services.sh start   [name...]   # start, wait until each answers (already running: kept)
#   bash scripts/services/services.sh stop    [name...]   # stop by the recorded PID (never by process name)
#   bash scripts/services/services.sh status  [name...]   # rc 0 when every named service is running
#   bash scripts/services/services.sh env     [name...]   # print the CDSS_TEST_*_URL exports for these ports
#
# Names: orthanc rabbitmq mariadb nginx prometheus alertmanager hapi-fhir (no name = all of them).
# Every service lives in its own folder under $CDSS_SERVICES_DIR (default /tmp/cdss-services) with its PID file,
# config, data and logs. Every port and that folder can be overridden from the environment, so a fault test can
# run a PRIVATE instance (own folder, own ports), stop it for real and start it again. See README.md here.
# Ports stay below 32768 (the kernel's ephemeral range starts there). Verified recipes and pitfalls:
# shared/notes/services.md and shared/notes/orthanc.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

CDSS_SERVICES_DIR=${CDSS_SERVICES_DIR:-/tmp/cdss-services}
# Orthanc
ORTHANC_HTTP_PORT=${ORTHANC_HTTP_PORT:-28042}
ORTHANC_DICOM_PORT=${ORTHANC_DICOM_PORT:-24242}
ORTHANC_USER=${ORTHANC_USER:-ci}
ORTHANC_PASS=${ORTHANC_PASS:-ci-secret}
ORTHANC_AET=${ORTHANC_AET:-ORTHANC}
ORTHANC_STABLE_AGE=${ORTHANC_STABLE_AGE:-2}
# RabbitMQ (epmd and the Erlang distribution port are separate listeners: a private instance needs its own)
AMQP_PORT=${AMQP_PORT:-25682}
EPMD_PORT=${EPMD_PORT:-24369}
RMQ_DIST_PORT=${RMQ_DIST_PORT:-25683}
RMQ_MGMT_PORT=${RMQ_MGMT_PORT:-25684}
RMQ_MANAGEMENT=${RMQ_MANAGEMENT:-0}
RMQ_NODENAME=${RMQ_NODENAME:-cdss@localhost}
AMQP_USER=${AMQP_USER:-ci}
AMQP_PASS=${AMQP_PASS:-ci-pass}
# MariaDB (as the MySQL server)
DB_PORT=${DB_PORT:-23306}
DB_NAME=${DB_NAME:-appdb}
DB_USER=${DB_USER:-app}
DB_PASS=${DB_PASS:-app-pass}
# nginx (TLS + WebSocket reverse proxy in front of the reference server on APP_PORT)
NGINX_HTTPS_PORT=${NGINX_HTTPS_PORT:-${HTTPS_PORT:-28443}}
APP_PORT=${APP_PORT:-28080}
# Prometheus + Alertmanager
PROM_PORT=${PROM_PORT:-29090}
AM_PORT=${AM_PORT:-29093}
PROM_RULES=${PROM_RULES:-}
WEBHOOK_URL=${WEBHOOK_URL:-http://127.0.0.1:29095/alert}
# HAPI FHIR (owned by tools/hapi-fhir-server/hapi.sh; we pass the port and folder on)
HAPI_PORT=${HAPI_PORT:-${FHIR_PORT:-28090}}
HAPI_SCRIPT=${HAPI_SCRIPT:-$REPO_ROOT/tools/hapi-fhir-server/hapi.sh}

ALL_SERVICES=(orthanc rabbitmq mariadb nginx alertmanager prometheus hapi-fhir)

log() { printf '[services %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for <seconds> <pid|-> <description> <command...>: poll every 0.1 s; fail fast when <pid> died
wait_for() {
  local secs=$1 pid=$2 what=$3
  shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$pid" != - ] && ! alive "$pid"; then log "$what: process $pid exited during start"; return 1; fi
    if ((SECONDS >= deadline)); then log "TIMEOUT after ${secs}s waiting for $what"; return 1; fi
    sleep 0.1
  done
}
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A killed daemon whose parent shell has exited is re-parented and may linger as a zombie: treat Z as dead.
alive() {
  local s
  s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $s != Z* ]]
}
pidfile() { echo "$CDSS_SERVICES_DIR/$1/$1.pid"; }
running_pid() { # prints the recorded PID of <name> when that process is alive
  local f
  f=$(pidfile "$1")
  [ -s "$f" ] || return 1
  local pid
  pid=$(cat "$f")
  alive "$pid" || return 1
  echo "$pid"
}
port_free() { ! tcp_open "$1"; }
require_free() { # <name> <port...>: refuse to start over a port someone else holds
  local name=$1 p
  shift
  for p in "$@"; do
    port_free "$p" || die "$name: 127.0.0.1:$p is already in use (another instance? set its *_PORT variable)"
  done
}
# Daemons run in their own session (setsid: no SIGINT/SIGHUP from the caller's terminal) with stdin from /dev/null
# and output to files, so callers that wait for our stdout (execFile, CI logs) never hang on an inherited pipe.
# `setsid` execs in place when the caller is not a group leader, so $! is the daemon's own PID.
spawn() { # <name> <logfile> <command...>; records the PID
  local name=$1 logfile=$2
  shift 2
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  echo $! >"$(pidfile "$name")"
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------------------------------------- install
packages_for() {
  case $1 in
    orthanc) echo orthanc orthanc-dicomweb dcmtk dicom3tools ;;
    rabbitmq) echo rabbitmq-server ;;
    mariadb) echo mariadb-server ;;
    nginx) echo nginx openssl ;;
    prometheus) echo prometheus ;;
    alertmanager) echo prometheus-alertmanager ;;
    hapi-fhir) echo ;;
  esac
}

do_install() {
  # always: curl/openssl for the readiness checks, docker-compose (v1) to validate deploy/compose.yaml offline
  local pkgs=(curl openssl docker-compose) name
  for name in "$@"; do
    # shellcheck disable=SC2207
    pkgs+=($(packages_for "$name"))
  done
  # shellcheck disable=SC2206
  pkgs+=(${CDSS_EXTRA_PACKAGES:-})
  export DEBIAN_FRONTEND=noninteractive
  # postinst scripts must not start stock daemons on the default ports (no systemd here; policy-rc.d is the
  # usual guard on container images). Create it when missing.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
  fi
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
  fi
  log "installed: $(dpkg-query -W -f='${Package}=${Version} ' "${pkgs[@]}")"
  # A stock Orthanc started by postinst (machines without policy-rc.d) would hold 8042/4242: stop it.
  if [ -s /run/orthanc.pid ] && alive "$(cat /run/orthanc.pid)"; then
    log "stopping the stock Orthanc started by its package (pid $(cat /run/orthanc.pid))"
    as_root kill -TERM "$(cat /run/orthanc.pid)" || true
  fi
  for name in "$@"; do
    if [ "$name" = hapi-fhir ]; then timed hapi build; fi
  done
}

# ---------------------------------------------------------------------------------------------- orthanc
start_orthanc() {
  local O=$CDSS_SERVICES_DIR/orthanc
  mkdir -p "$O/storage"
  require_free orthanc "$ORTHANC_HTTP_PORT" "$ORTHANC_DICOM_PORT"
  # One private config file (a directory config would merge every *.json in it). No DicomWeb.Host: with a
  # fixed Host, RetrieveURL loses the port. Orthanc 1.10 has no bind-address option: it listens on all
  # interfaces, and RemoteAccessAllowed=false makes it refuse every non-loopback client.
  cat >"$O/orthanc.json" <<EOF
{
  "Name": "cdss-ci-orthanc",
  "StorageDirectory": "$O/storage",
  "IndexDirectory": "$O/storage",
  "HttpPort": $ORTHANC_HTTP_PORT,
  "DicomPort": $ORTHANC_DICOM_PORT,
  "DicomAet": "$ORTHANC_AET",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": true,
  "RegisteredUsers": { "$ORTHANC_USER": "$ORTHANC_PASS" },
  "HttpCompressionEnabled": false,
  "StableAge": $ORTHANC_STABLE_AGE,
  "SaveJobs": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": true, "WadoRoot": "/wado" }
}
EOF
  spawn orthanc "$O/orthanc.out" /usr/sbin/Orthanc --logfile="$O/orthanc.log" "$O/orthanc.json"
  local pid
  pid=$(cat "$(pidfile orthanc)")
  wait_for 60 "$pid" "Orthanc /system" curl -sf -u "$ORTHANC_USER:$ORTHANC_PASS" "http://127.0.0.1:$ORTHANC_HTTP_PORT/system" ||
    { tail -20 "$O/orthanc.log" >&2 || true; return 1; }
  # A wrong plugin path only logs an error and Orthanc keeps running: check DICOMweb is really there.
  curl -sf -u "$ORTHANC_USER:$ORTHANC_PASS" "http://127.0.0.1:$ORTHANC_HTTP_PORT/plugins" | grep -q '"dicom-web"' ||
    die "Orthanc started without the DICOMweb plugin (see $O/orthanc.log)"
  log "orthanc ready: http://$ORTHANC_USER:***@127.0.0.1:$ORTHANC_HTTP_PORT (DICOM $ORTHANC_AET@127.0.0.1:$ORTHANC_DICOM_PORT, pid $pid)"
}

# ---------------------------------------------------------------------------------------------- rabbitmq
rmq_env() { # environment shared by the RabbitMQ server and its CLI tools
  export RMQ_DIR=$CDSS_SERVICES_DIR/rabbitmq
  export HOME=$RMQ_DIR # .erlang.cookie is read from $HOME by server and CLI
  export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$EPMD_PORT
  export RABBITMQ_NODENAME=$RMQ_NODENAME RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT
  export RABBITMQ_DIST_PORT=$RMQ_DIST_PORT
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CONF_ENV_FILE=$RMQ_DIR/rabbitmq-env.conf RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$RMQ_DIR/advanced.config RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ_DIR/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia RABBITMQ_LOG_BASE=$RMQ_DIR/log RABBITMQ_PID_FILE=$RMQ_DIR/rabbit.pid
  # the real scripts: /usr/sbin/rabbitmq* `su rabbitmq` and cd to /var/lib/rabbitmq
  export PATH=/usr/lib/rabbitmq/bin:$PATH
}

start_rabbitmq() (
  rmq_env
  mkdir -p "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
  require_free rabbitmq "$AMQP_PORT" "$RMQ_DIST_PORT"
  : >"$RMQ_DIR/rabbitmq-env.conf"
  # Create the cookie before the first start: server and CLI would otherwise race to create different ones.
  if [ ! -s "$RMQ_DIR/.erlang.cookie" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$RMQ_DIR/.erlang.cookie")
    chmod 400 "$RMQ_DIR/.erlang.cookie"
  fi
  cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
default_user = $AMQP_USER
default_pass = $AMQP_PASS
loopback_users = none
management.tcp.ip = 127.0.0.1
management.tcp.port = $RMQ_MGMT_PORT
log.console = false
log.file.level = warning
EOF
  if [ "$RMQ_MANAGEMENT" = 1 ]; then echo '[rabbitmq_management].'; else echo '[].'; fi >"$RMQ_DIR/enabled_plugins"
  # our own epmd, in the foreground (its PID is ours), loopback only, on EPMD_PORT
  if ! running_pid epmd >/dev/null; then
    require_free epmd "$EPMD_PORT"
    mkdir -p "$CDSS_SERVICES_DIR/epmd"
    spawn epmd "$CDSS_SERVICES_DIR/epmd/epmd.out" epmd -address 127.0.0.1 -port "$EPMD_PORT"
    wait_for 10 "$(cat "$(pidfile epmd)")" epmd tcp_open "$EPMD_PORT"
  fi
  # the sh wrapper's PID: SIGTERM to it stops the broker cleanly
  spawn rabbitmq "$RMQ_DIR/log/server.out" rabbitmq-server
  local pid
  pid=$(cat "$(pidfile rabbitmq)")
  wait_for 120 "$pid" "RabbitMQ AMQP port $AMQP_PORT" tcp_open "$AMQP_PORT" || { tail -20 "$RMQ_DIR/log/server.out" >&2; return 1; }
  # await_startup fails at once (rc 69) before the node registers with epmd: hence the port wait first
  rabbitmqctl -q await_startup --timeout 60 >/dev/null
  log "rabbitmq ready: amqp://$AMQP_USER:***@127.0.0.1:$AMQP_PORT (node $RMQ_NODENAME, epmd $EPMD_PORT, pid $pid)"
)

# ---------------------------------------------------------------------------------------------- mariadb
start_mariadb() {
  local M=$CDSS_SERVICES_DIR/mariadb
  mkdir -p "$M"
  require_free mariadb "$DB_PORT"
  if [ ! -d "$M/data/mysql" ]; then
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$M/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$M/install-db.log" 2>&1 || { tail -20 "$M/install-db.log" >&2; return 1; }
  fi
  # --no-defaults everywhere: Debian's /etc/mysql points at /run/mysqld, which nothing created here.
  spawn mariadb "$M/mariadbd.out" mariadbd --no-defaults --user="$(id -un)" --datadir="$M/data" --socket="$M/mysqld.sock" \
    --pid-file="$M/mariadbd.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --log-error="$M/error.log" \
    --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci
  local pid
  pid=$(cat "$(pidfile mariadb)")
  wait_for 60 "$pid" MariaDB mariadb-admin --no-defaults --socket="$M/mysqld.sock" -uroot ping || { tail -20 "$M/error.log" >&2; return 1; }
  mariadb --no-defaults --socket="$M/mysqld.sock" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'localhost';
SQL
  log "mariadb ready: mysql://$DB_USER:***@127.0.0.1:$DB_PORT/$DB_NAME (root: socket $M/mysqld.sock, pid $pid)"
}

# ---------------------------------------------------------------------------------------------- nginx
start_nginx() {
  local N=$CDSS_SERVICES_DIR/nginx
  mkdir -p "$N/tmp"
  require_free nginx "$NGINX_HTTPS_PORT"
  # SAN for both names, so clients verify with ca: cert.pem against wss://127.0.0.1 and wss://localhost
  [ -s "$N/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj '/CN=localhost' \
    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -keyout "$N/key.pem" -out "$N/cert.pem" 2>/dev/null
  cat >"$N/nginx.conf" <<EOF
worker_processes 1;
pid $N/nginx-master.pid;
error_log $N/error.log warn;
events { worker_connections 1024; }
http {
  access_log $N/access.log;
  client_body_temp_path $N/tmp/body;
  proxy_temp_path $N/tmp/proxy;
  fastcgi_temp_path $N/tmp/fastcgi;
  uwsgi_temp_path $N/tmp/uwsgi;
  scgi_temp_path $N/tmp/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream app { server 127.0.0.1:$APP_PORT; keepalive 16; }
  server {
    listen 127.0.0.1:$NGINX_HTTPS_PORT ssl http2;
    server_name localhost;
    ssl_certificate     $N/cert.pem;
    ssl_certificate_key $N/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_read_timeout 3600s;
    }
  }
}
EOF
  # never the stock /etc/nginx/nginx.conf (its default site listens on :80); -e keeps /var/log/nginx untouched
  nginx -q -t -e "$N/error.log" -p "$N" -c "$N/nginx.conf"
  spawn nginx "$N/nginx.out" nginx -e "$N/error.log" -p "$N" -c "$N/nginx.conf" -g 'daemon off;'
  local pid
  pid=$(cat "$(pidfile nginx)")
  # any HTTP answer counts (502 until the app on APP_PORT is up)
  wait_for 10 "$pid" nginx curl -sk -o /dev/null "https://127.0.0.1:$NGINX_HTTPS_PORT/"
  log "nginx ready: https://localhost:$NGINX_HTTPS_PORT -> 127.0.0.1:$APP_PORT (CA: $N/cert.pem, pid $pid)"
}

# ---------------------------------------------------------------------------------------------- alertmanager
start_alertmanager() {
  local A=$CDSS_SERVICES_DIR/alertmanager
  mkdir -p "$A/data"
  require_free alertmanager "$AM_PORT"
  cat >"$A/alertmanager.yml" <<EOF
route: { receiver: webhook, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 1h }
receivers:
  - name: webhook
    webhook_configs: [{ url: '$WEBHOOK_URL', send_resolved: true }]
EOF
  amtool check-config "$A/alertmanager.yml" >/dev/null
  # an empty --cluster.listen-address disables the HA gossip listener (default 0.0.0.0:9094)
  spawn alertmanager "$A/alertmanager.log" prometheus-alertmanager --config.file="$A/alertmanager.yml" \
    --storage.path="$A/data" --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
  local pid
  pid=$(cat "$(pidfile alertmanager)")
  wait_for 30 "$pid" Alertmanager curl -sf "http://127.0.0.1:$AM_PORT/-/ready"
  log "alertmanager ready: http://127.0.0.1:$AM_PORT (webhook $WEBHOOK_URL, pid $pid)"
}

# ---------------------------------------------------------------------------------------------- prometheus
start_prometheus() {
  local P=$CDSS_SERVICES_DIR/prometheus rules=''
  mkdir -p "$P/data"
  require_free prometheus "$PROM_PORT"
  if [ -n "$PROM_RULES" ]; then
    cp "$PROM_RULES" "$P/rules.yml"
    rules='rule_files: [rules.yml]'
  fi
  cat >"$P/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
$rules
alerting:
  alertmanagers: [{ static_configs: [{ targets: ['127.0.0.1:$AM_PORT'] }] }]
scrape_configs:
  - job_name: cdss-app
    static_configs: [{ targets: ['127.0.0.1:$APP_PORT'] }]
EOF
  promtool check config "$P/prometheus.yml" >/dev/null
  spawn prometheus "$P/prometheus.log" prometheus --config.file="$P/prometheus.yml" --storage.tsdb.path="$P/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-lifecycle
  local pid
  pid=$(cat "$(pidfile prometheus)")
  wait_for 30 "$pid" Prometheus curl -sf "http://127.0.0.1:$PROM_PORT/-/ready"
  log "prometheus ready: http://127.0.0.1:$PROM_PORT (scrapes 127.0.0.1:$APP_PORT, pid $pid)"
}

# ---------------------------------------------------------------------------------------------- hapi-fhir
hapi() { # delegate to the FHIR engineer's script with our folder and port
  if [ ! -f "$HAPI_SCRIPT" ]; then
    log "hapi-fhir: $HAPI_SCRIPT is missing, skipped"
    return 0
  fi
  CDSS_SERVICES_DIR=$CDSS_SERVICES_DIR HAPI_PORT=$HAPI_PORT FHIR_PORT=$HAPI_PORT bash "$HAPI_SCRIPT" "$@"
}

# ---------------------------------------------------------------------------------------------- commands
timed() {
  local t0=$EPOCHREALTIME
  "$@"
  log "$* took $(awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME-$t0}") s"
}

start_one() {
  local name=$1 pid
  if [ "$name" = hapi-fhir ]; then
    timed hapi start
    return
  fi
  if pid=$(running_pid "$name"); then
    log "$name already running (pid $pid)"
    return 0
  fi
  mkdir -p "$CDSS_SERVICES_DIR/$name"
  timed "start_$name"
}

stop_pid() { # <name> <pid>: SIGTERM, wait up to 30 s (Orthanc needs ~3.5 s, RabbitMQ up to ~8 s), then SIGKILL
  local name=$1 pid=$2
  kill -TERM "$pid" 2>/dev/null || true
  local _
  for _ in $(seq 1 300); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$name ($pid) still alive after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_one() {
  local name=$1 pid f
  if [ "$name" = hapi-fhir ]; then
    hapi stop
    return
  fi
  f=$(pidfile "$name")
  if pid=$(running_pid "$name"); then
    stop_pid "$name" "$pid"
    log "stopped $name ($pid)"
  else
    log "$name not running"
  fi
  rm -f "$f"
  # epmd belongs to our RabbitMQ: stop it with the broker
  if [ "$name" = rabbitmq ] && pid=$(running_pid epmd); then
    stop_pid epmd "$pid"
    rm -f "$(pidfile epmd)"
    log "stopped epmd ($pid)"
  fi
}

port_of() {
  case $1 in
    orthanc) echo "$ORTHANC_HTTP_PORT" ;;
    rabbitmq) echo "$AMQP_PORT" ;;
    mariadb) echo "$DB_PORT" ;;
    nginx) echo "$NGINX_HTTPS_PORT" ;;
    prometheus) echo "$PROM_PORT" ;;
    alertmanager) echo "$AM_PORT" ;;
    hapi-fhir) echo "$HAPI_PORT" ;;
  esac
}

status_one() {
  local name=$1 pid port
  port=$(port_of "$name")
  if [ "$name" = hapi-fhir ]; then
    if [ -f "$HAPI_SCRIPT" ]; then
      hapi status
      return
    fi
    echo "hapi-fhir    $HAPI_SCRIPT is missing"
    return 1
  fi
  if pid=$(running_pid "$name"); then
    if tcp_open "$port"; then
      printf '%-12s running, pid %s, 127.0.0.1:%s\n' "$name" "$pid" "$port"
      return 0
    fi
    printf '%-12s pid %s alive but 127.0.0.1:%s is closed\n' "$name" "$pid" "$port"
    return 1
  fi
  printf '%-12s stopped (%s)\n' "$name" "$CDSS_SERVICES_DIR/$name"
  return 1
}

env_one() {
  case $1 in
    orthanc) echo "export CDSS_TEST_ORTHANC_URL=http://$ORTHANC_USER:$ORTHANC_PASS@127.0.0.1:$ORTHANC_HTTP_PORT" ;;
    rabbitmq) echo "export CDSS_TEST_AMQP_URL=amqp://$AMQP_USER:$AMQP_PASS@127.0.0.1:$AMQP_PORT" ;;
    mariadb) echo "export CDSS_TEST_MYSQL_URL=mysql://$DB_USER:$DB_PASS@127.0.0.1:$DB_PORT/$DB_NAME" ;;
    nginx) echo "export CDSS_TEST_NGINX_URL=https://127.0.0.1:$NGINX_HTTPS_PORT" ;;
    prometheus) echo "export CDSS_TEST_PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT" ;;
    alertmanager) echo "export CDSS_TEST_ALERTMANAGER_URL=http://127.0.0.1:$AM_PORT" ;;
    hapi-fhir) echo "export CDSS_TEST_FHIR_URL=http://127.0.0.1:$HAPI_PORT/fhir" ;;
  esac
}

usage() {
  echo "usage: $0 {install|start|stop|status|env} [${ALL_SERVICES[*]}]" >&2
  exit 2
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  local names=("$@") name
  [ ${#names[@]} -gt 0 ] || names=("${ALL_SERVICES[@]}")
  for name in "${names[@]}"; do
    case " ${ALL_SERVICES[*]} " in *" $name "*) ;; *) log "unknown service '$name'"; usage ;; esac
  done
  case $cmd in
    install) do_install "${names[@]}" ;;
    start)
      mkdir -p "$CDSS_SERVICES_DIR"
      # alertmanager before prometheus (prometheus pushes alerts to it)
      for name in "${names[@]}"; do start_one "$name"; done
      ;;
    stop)
      local i
      for ((i = ${#names[@]} - 1; i >= 0; i--)); do stop_one "${names[i]}"; done
      ;;
    status)
      local rc=0
      for name in "${names[@]}"; do status_one "$name" || rc=3; done
      return $rc
      ;;
    env) for name in "${names[@]}"; do env_one "$name"; done ;;
    *) usage ;;
  esac
}

main "$@"
