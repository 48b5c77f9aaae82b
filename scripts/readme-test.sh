#!/usr/bin/env bash
# The README's quickstart and "Watching it work" commands, run as written:
# `make run` (on free ports, with its state in a temporary directory, so it
# runs beside a developer's own make run), then every watching command
# from a directory whose .run/ is that state and whose bin/ is the
# repository's, then Ctrl-C (SIGINT to make's process group), which must
# stop everything cleanly with exit status 0.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '[readme-test] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; log "make run output:"; tail -40 "$OUT" >&2 || true; exit 1; }

WORK=$(mktemp -d)
OUT=$WORK/make-run.log
MAKE_PID=
# leftovers: the processes whose environment points into make run's state
# (make run starts each in a session of its own, out of make's group).
leftovers() {
  local env pid
  for env in /proc/[0-9]*/environ; do
    if { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -q "$WORK/.run"; then
      pid=${env#/proc/}; echo "${pid%/environ}"
    fi
  done
}
cleanup() {
  if [ -n "$MAKE_PID" ] && kill -0 "$MAKE_PID" 2>/dev/null; then
    kill -INT -- "-$MAKE_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$MAKE_PID" 2>/dev/null || break; sleep 0.3; done
    kill -KILL -- "-$MAKE_PID" 2>/dev/null || true
  fi
  leftovers | xargs -r kill -KILL 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The README's code blocks: the quickstart's first command and the watching block.
run_cmd=$(awk '/^## Quickstart/{q=1} q&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md | head -1 | sed 's/[[:space:]]*#.*$//')
[ "$run_cmd" = "make run" ] || fail "the quickstart's first command is '$run_cmd', not 'make run'"
mapfile -t watch < <(awk '/^### Watching it work/{w=1} w&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md)
[ ${#watch[@]} -ge 5 ] || fail "found ${#watch[@]} watching commands in README.md"

log "starting '$run_cmd' (free ports, state in $WORK/.run)"
# As in a terminal: make run gets a process group of its own (its id is
# make's pid), with SIGINT at its default, whatever this script inherited
# (a background job of a script starts with SIGINT ignored, and keeps
# it ignored through exec).
MEDIAGW_FREE_PORTS=1 MEDIAGW_RUN_DIR=$WORK/.run python3 -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' bash -c "$run_cmd" >"$OUT" 2>&1 &
MAKE_PID=$!
deadline=$((SECONDS + 600))
until grep -q "all services ready" "$OUT"; do
  kill -0 "$MAKE_PID" 2>/dev/null || fail "make run ended before it was ready"
  [ $SECONDS -lt $deadline ] || fail "make run not ready within 600 s"
  sleep 0.5
done
log "make run is ready"

ln -s "$ROOT/bin" "$WORK/bin"
cd "$WORK"
# run LINE: one watching command as written (placeholders filled), in a
# shell that has sourced the env line first, as a reader's terminal has.
env_line=${watch[0]}
case $env_line in "set -a; . .run/env; set +a"*) ;; *) fail "first watching command is not the env line: $env_line";; esac
run() { bash -euo pipefail -c "$env_line
$1"; }

# Wait for the fact the commands are about: the cameras are online.
deadline=$((SECONDS + 300))
until devices=$(run "bin/mediagw-ctl devices" 2>/dev/null) && [ "$(grep -c ' online ' <<<"$devices")" -ge 3 ]; do
  [ $SECONDS -lt $deadline ] || fail "three cameras not online within 300 s; mediagw-ctl devices said: ${devices:-}"
  sleep 1
done
# And what the README promises next: every camera recorded into S3.
until latest=$(run "bin/mediagw-ctl latest" 2>/dev/null) && [ "$(awk '$1=="gw-local" && $5!="none"' <<<"$latest" | wc -l)" -ge 3 ]; do
  [ $SECONDS -lt $deadline ] || fail "not every camera has a segment in S3 within 300 s; mediagw-ctl latest said: ${latest:-}"
  sleep 1
done
log "every camera has a segment in S3"
dev=$(awk '$1=="gw-local" && / online /{print $2; exit}' <<<"$devices")
[ -n "$dev" ] || fail "no device index in: $devices"

for line in "${watch[@]:1}"; do
  cmd=${line//<devIndex>/$dev}
  log "\$ ${cmd%%#*}"
  if ! got=$(run "$cmd" 2>&1); then fail "'$cmd' failed: $got"; fi
  printf '%s\n' "$got" | head -8 >&2
  case $cmd in
    "bin/mediagw-ctl gateways"*) grep -q "gw-local" <<<"$got" || fail "gateways does not list gw-local";;
    "curl "*) ;;
    *) [ -n "$got" ] || fail "'$cmd' printed nothing";;
  esac
done
# The camera taken away is reported offline (the watcher's hysteresis).
deadline=$((SECONDS + 300))
until run "bin/mediagw-ctl devices" 2>/dev/null | awk -v d="$dev" '$1=="gw-local" && $2==d' | grep -q ' offline '; do
  [ $SECONDS -lt $deadline ] || fail "device $dev not offline within 300 s after the README's curl"
  sleep 1
done
log "device $dev reported offline"

log "Ctrl-C"
kill -INT -- "-$MAKE_PID"
deadline=$((SECONDS + 90))
while kill -0 "$MAKE_PID" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "make run still running 90 s after Ctrl-C"
  sleep 0.5
done
status=0
wait "$MAKE_PID" || status=$?
MAKE_PID=
# 0, or 130: make itself, like any foreground program, ends by the SIGINT
# once its recipe has returned; what matters is what the reader sees.
[ $status -eq 0 ] || [ $status -eq 130 ] || fail "make run exited $status after Ctrl-C"
grep -q "\[run\] stopped" "$OUT" || fail "make run did not report a clean stop"
if grep -E "exited; see|Error [0-9]|\*\*\*" "$OUT" >&2; then fail "make run reported a process dying or an error on Ctrl-C"; fi
# Nothing it started is left.
for pid in $(leftovers); do
  fail "process $pid ($(tr '\0' ' ' </proc/$pid/cmdline 2>/dev/null)) outlived make run"
done
log "README commands work as written; Ctrl-C stopped everything cleanly"
