#!/usr/bin/env bash
# Lints the event schemas and generates their Go code with the pinned buf
# and protoc-gen-go (tools/go.mod, run through `go tool`).
#   scripts/proto.sh          regenerate pkg/gen
#   scripts/proto.sh --check  fail if pkg/gen is stale or buf lint complains
set -euo pipefail
cd "$(dirname "$0")/../tools"
export GOWORK=off
PATH="$(dirname "$(go tool -n protoc-gen-go)"):$PATH"
export PATH

go tool buf lint ../proto
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  sed "s#out: ../pkg/gen#out: $tmp#" ../proto/buf.gen.yaml > "$tmp/buf.gen.yaml"
  go tool buf generate ../proto --template "$tmp/buf.gen.yaml"
  if ! diff -r -x buf.gen.yaml "$tmp" ../pkg/gen >/dev/null; then
    echo "pkg/gen is stale: run scripts/proto.sh (or make proto) and commit the result" >&2
    diff -r -x buf.gen.yaml "$tmp" ../pkg/gen | head -20 >&2
    exit 1
  fi
  echo "proto: lint clean, generated code up to date"
else
  go tool buf generate ../proto --template ../proto/buf.gen.yaml
fi
