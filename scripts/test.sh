#!/usr/bin/env bash
# `make test`: every check and every test, on a fresh machine too.
# Installs what is missing, checks formatting, vet and the generated code,
# starts one local AWS emulator for all test packages, runs the Go tests
# (unit, integration, component, end-to-end), then runs the README's
# commands as written (scripts/readme-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '[test] %s\n' "$*" >&2; }

scripts/bootstrap.sh

log "gofmt"
unformatted=$(gofmt -l pkg deploy services testsupport tools 2>/dev/null | grep -v '^pkg/gen/' || true)
if [ -n "$unformatted" ]; then echo "gofmt needed:" >&2; echo "$unformatted" >&2; exit 1; fi

# Every module of go.work, as import-path patterns (mediagw/pkg/... and so on).
mapfile -t PACKAGES < <(go list -m -f '{{.Path}}/...')

log "go vet"
go vet "${PACKAGES[@]}"

log "proto"
scripts/proto.sh --check

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port)
"$ROOT/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"${TMPDIR:-/tmp}/mediagw-test-moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null; wait $MOTO_PID 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null && break; sleep 0.2; done

log "go test (emulator at $AWS_ENDPOINT_URL)"
status=0
go test -count=1 -timeout 30m "${PACKAGES[@]}" || status=$?

log "the README's commands, as written"
scripts/readme-test.sh || status=1
exit $status
