#!/usr/bin/env bash
# `make run`: installs what is missing, starts the local AWS emulator,
# provisions every resource, starts the gateway simulator and every service,
# waits until all report ready, then runs until Ctrl-C, which stops
# everything it started.
#
# MEDIAGW_SIM_DEVICES=N      simulated cameras (default 3).
# MEDIAGW_FREE_PORTS=1       take every port from the system instead of the
#                            defaults below (tests: they run beside a make run).
# MEDIAGW_RUN_DIR=DIR        state, logs and env file (default .run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=${MEDIAGW_RUN_DIR:-$ROOT/.run}
LOGS=$RUN/logs
mkdir -p "$LOGS"

log() { printf '[run] %s\n' "$*" >&2; }

scripts/bootstrap.sh

. scripts/ports.sh
# port NAME DEFAULT: the default, or a free port with MEDIAGW_FREE_PORTS=1.
port() {
  if [ "${MEDIAGW_FREE_PORTS:-}" = 1 ]; then free_port; return; fi
  if ! port_free "$2"; then
    log "port $2 ($1) is taken (another make run, or another server?); stop it, or run with MEDIAGW_FREE_PORTS=1"; exit 1
  fi
  echo "$2"
}
MOTO_PORT=$(port "AWS emulator" 4566)
SIM_HTTP=127.0.0.1:$(port "gateway ISAPI" 18080)
SIM_RTSP=127.0.0.1:$(port "gateway RTSP" 8554)
SIM_ADMIN=127.0.0.1:$(port "gateway admin" 18081)
declare -A ports=([configurator]=9101 [device-watcher]=9102 [task-manager]=9103 [health-sentinel]=9104)
for svc in configurator device-watcher task-manager health-sentinel; do
  ports[$svc]=$(port "$svc" "${ports[$svc]}")
done
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

pids=()
names=()
cleanup() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -eq 0 ] && return
  log "stopping ${#pids[@]} processes"
  # Services first (newest first), the emulator last.
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for _ in $(seq 1 60); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  log "stopped"
}
trap cleanup EXIT
# Ctrl-C is a request to stop: clean up and exit 0. The processes run in
# sessions of their own (setsid), so the terminal's SIGINT reaches only
# this script, which stops them in order.
trap 'exit 0' INT TERM

start() { # name command...
  local name=$1; shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 &
  pids+=($!); names+=("$name")
  log "started $name (pid $!, log $LOGS/$name.log)"
}

wait_http() { # name url timeout-seconds
  local name=$1 url=$2 deadline=$((SECONDS + $3))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name not ready at $url; last log lines:"; tail -20 "$LOGS/$name.log" >&2 || true
      exit 1
    fi
    sleep 0.3
  done
}

start aws-emulator "$ROOT/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
wait_http aws-emulator "$AWS_ENDPOINT_URL/moto-api/" 30

log "building binaries into bin/"
go build -o "$ROOT/bin/" ./deploy/cmd/provision ./services/*/cmd/*
"$ROOT/bin/provision" --local-parameters --env-file "$RUN/env"
# Everything a client needs (mediagw-ctl, the AWS CLI, boto3): where the
# emulator is, its region and credentials, and the simulated gateway.
cat >>"$RUN/env" <<ENV
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_REGION=$AWS_REGION
AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
GATEWAY_SIM_URL=http://$SIM_HTTP
GATEWAY_SIM_ADMIN_URL=http://$SIM_ADMIN
ENV
set -a; . "$RUN/env"; set +a

# param NAME: a parameter's value from the emulator (SecureString decrypted).
param() {
  "$ROOT/.tools/venv/bin/python" -c 'import sys, boto3
print(boto3.client("ssm").get_parameter(Name=sys.argv[1], WithDecryption=True)["Parameter"]["Value"])' "$1"
}

# The simulated gateway starts with its factory (bootstrap) password; the
# configurator changes it to the desired one.
bootstrap_password=$(param "$PARAMETER_ROOT/gateways/gw-local/BootstrapPassword")
GATEWAY_SIM_ADMIN_PASSWORD=$bootstrap_password \
start gateway-sim "$ROOT/bin/gateway-sim" --http-addr "$SIM_HTTP" --rtsp-addr "$SIM_RTSP" --admin-addr "$SIM_ADMIN" \
  --devices "${MEDIAGW_SIM_DEVICES:-3}" --channels 1 --reboot-downtime 5s --media-dir "$RUN/media"
wait_http gateway-sim "http://$SIM_ADMIN/admin/healthz" 120

# Every service reads the same resource variables (.run/env); these are the
# local-only settings.
export GATEWAYS="gw-local=http://$SIM_HTTP"
export LAUNCHER=local LOCAL_LOG_DIR="$LOGS" LOCAL_SPOOL_DIR="$RUN/spool" RECORDER_BINARY="$ROOT/bin/recorder"

for svc in configurator device-watcher task-manager health-sentinel; do
  HTTP_ADDR=127.0.0.1:${ports[$svc]} start "$svc" "$ROOT/bin/$svc"
done
for svc in configurator device-watcher task-manager health-sentinel; do
  wait_http "$svc" "http://127.0.0.1:${ports[$svc]}/readyz" 60
done

# Announce the simulated gateway: the configurator sets it up (password,
# name, time, port maps, one reboot), the device-watcher then sees its cameras.
"$ROOT/bin/configurator" provision --gateway-id gw-local --address "$SIM_HTTP" --elastic-ip 127.0.0.1 >>"$LOGS/configurator.log" 2>&1

cat >&2 <<MSG
[run] all services ready.
      AWS emulator     $AWS_ENDPOINT_URL
      gateway (ISAPI)  http://$SIM_HTTP     admin: http://$SIM_ADMIN   RTSP: rtsp://$SIM_RTSP
      services         configurator :${ports[configurator]}, device-watcher :${ports[device-watcher]}, task-manager :${ports[task-manager]}, health-sentinel :${ports[health-sentinel]} (/readyz, /metrics)
      logs             $LOGS/
      operator CLI     set -a; . $RUN/env; set +a; bin/mediagw-ctl latest
      alert mails      bin/mediagw-ctl alerts --body; incidents: bin/mediagw-ctl incidents
      hang the gateway curl -X POST \$GATEWAY_SIM_ADMIN_URL/admin/hang   (the health-sentinel mails, then recovers it)
      Ctrl-C stops everything.
MSG
# Run until Ctrl-C or until a process dies.
while :; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      log "${names[$i]} exited; see $LOGS/${names[$i]}.log"; exit 1
    fi
  done
  sleep 1
done
