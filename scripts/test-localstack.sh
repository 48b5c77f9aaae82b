#!/usr/bin/env bash
# `make test-localstack` (also run by `make test`): the end-to-end tests
# (deploy/e2e) and the provisioner's test (deploy/provision) against
# LocalStack instead of moto, and docker-compose.yml's configuration run on
# the host (deploy/e2e TestComposeOnLocalStack, which starts a LocalStack of
# its own with the services compose asks for). Each test binary starts its own LocalStack
# (open-source core, pinned in scripts/bootstrap.sh, on the host, no Docker)
# on a free port, with DynamoDB and ECS on a private moto through
# AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_ECS, and stops both when
# its tests end (testsupport/awstest, MEDIAGW_TEST_AWS=localstack).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test-localstack] %s\n' "$*" >&2; }

[ "${MEDIAGW_BOOTSTRAPPED:-}" = 1 ] || scripts/bootstrap.sh

log "go test, LocalStack with DynamoDB and ECS on moto"
MEDIAGW_TEST_AWS=localstack go test -count=1 -timeout 15m mediagw/deploy/e2e mediagw/deploy/provision
