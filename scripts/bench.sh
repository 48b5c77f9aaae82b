#!/usr/bin/env bash
# `make bench`: the project's benchmarks against the real emulator, each
# printing its figures and the ratio to its baseline measured in the same run.
# This machine is shared: compare ratios, not absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/bootstrap.sh
. scripts/ports.sh
PORT=$(free_port)
"$ROOT/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null; wait $MOTO_PID 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null && break; sleep 0.2; done

bench() { # package regexp
  echo "== $1 $2"
  go test -run '^$' -bench "$2" -benchtime 1x "$1" | grep -E '^Benchmark' | tr -s ' \t' ' ' | sed 's/ / | /g'
}
bench ./pkg/messaging ConsumerThroughput
bench ./services/device-watcher/internal/wiring "PollCycle|BareDeviceList"
# The recorder against the gateway simulator (1080p25 H.264 ~4 Mbit/s + AAC):
# in process vs bare ffmpeg, then BENCH_CORE_STREAMS channels on one core
# (taskset), costs per camera-month. -timeout: start-up, two windows, uploads.
(cd services/recorder && echo "== recorder CPUPerStreamMinute (BENCH_STREAMS=${BENCH_STREAMS:-10} BENCH_SECONDS=${BENCH_SECONDS:-60} BENCH_CORE_STREAMS=${BENCH_CORE_STREAMS:-100}): in process vs bare ffmpeg, streams on one core, costs per camera-month" && go test -timeout 30m -run '^$' -bench CPUPerStreamMinute -benchtime 1x ./cmd/recorder | grep -vE '^(goos|goarch|pkg|cpu|PASS|ok|SDK )')
