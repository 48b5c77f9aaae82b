#!/usr/bin/env bash
# `make test`: every check and every test, on a fresh machine too.
# Installs what is missing, checks formatting, vet and the generated code,
# starts one local AWS emulator for all test packages, runs the Go tests
# (unit, integration, component, end-to-end), then the end-to-end tests
# again against LocalStack (scripts/test-localstack.sh), and runs the
# README's commands as written (scripts/readme-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '[test] %s\n' "$*" >&2; }

scripts/bootstrap.sh
export MEDIAGW_BOOTSTRAPPED=1

log "gofmt"
unformatted=$(gofmt -l pkg deploy services testsupport tools 2>/dev/null | grep -v '^pkg/gen/' || true)
if [ -n "$unformatted" ]; then echo "gofmt needed:" >&2; echo "$unformatted" >&2; exit 1; fi

# Every module of go.work, as import-path patterns (mediagw/pkg/... and so on).
mapfile -t PACKAGES < <(go list -m -f '{{.Path}}/...')

log "go vet"
go vet "${PACKAGES[@]}"

log "proto"
scripts/proto.sh --check

# The README's commands run a whole system of their own (make run on free
# ports): beside the Go tests, not after them, so make test takes the time
# of the longer of the two.
README_LOG=$(mktemp)
log "the README's commands, as written (beside the Go tests; output at the end)"
scripts/readme-test.sh >"$README_LOG" 2>&1 &
README_PID=$!

. scripts/ports.sh
MOTO_PORT=$(free_port)
"$ROOT/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"${TMPDIR:-/tmp}/mediagw-test-moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID $README_PID 2>/dev/null; wait $MOTO_PID $README_PID 2>/dev/null || true; rm -f "$README_LOG"' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null && break; sleep 0.2; done

log "go test (emulator at $AWS_ENDPOINT_URL)"
status=0
# TestComposeOnLocalStack runs on LocalStack whatever the emulator, so it
# runs once, in the LocalStack stage below.
go test -count=1 -timeout 30m -skip '^TestComposeOnLocalStack$' "${PACKAGES[@]}" || status=$?

# After the moto run, not beside it: the end-to-end test cuts real-time
# segments and wants the cores it can get.
log "the end-to-end tests against LocalStack"
scripts/test-localstack.sh || status=$?

log "the README's commands, as written"
wait $README_PID || status=1
cat "$README_LOG" >&2
exit $status
