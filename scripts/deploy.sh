#!/usr/bin/env bash
# `make deploy`: deploys the Mediagw stack (deploy/cdk, a CDK app in Go) to
# the account and region of the standard AWS credential chain, with the
# pinned CDK CLI: `cdk bootstrap` (once per account and region; a no-op
# after), then `cdk deploy` with one `--parameters Name=value` per stack
# parameter set in the environment or on make's command line:
#
#   make deploy GatewayAmiId=ami-… AlertEmail=ops@example.com AdminCidr=203.0.113.7/32 Timezone=8
#
# The password is never an argument: it comes from MEDIAGW_PASSWORD or is
# asked for (empty keeps the deployed one) and deploy/cdk/cdk-cli.js hands
# it to the CLI inside its own process. Extra CLI flags: CDK_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '[deploy] %s\n' "$*" >&2; }

[ -n "${MEDIAGW_BOOTSTRAPPED:-}" ] || scripts/bootstrap.sh

PARAMETERS=(GatewayName Timezone MachineType ElasticIP Segment BucketTransition GatewayAmiId AlertEmail AdminCidr
  RecorderCapacity SnapshotIntervalHours SnapshotRetention)
args=()
for p in "${PARAMETERS[@]}"; do
  if [ -n "${!p:-}" ]; then args+=(--parameters "$p=${!p}"); fi
done
if [ -n "${Password:-}" ]; then
  log "Password must not be given as a variable (it would be in make's and the CLI's arguments): use MEDIAGW_PASSWORD or the prompt"
  exit 2
fi
if [ -z "${MEDIAGW_PASSWORD:-}" ] && [ -t 0 ]; then
  read -rsp "gateway admin password (8-16 characters; empty keeps the deployed one): " MEDIAGW_PASSWORD
  echo >&2
fi
export MEDIAGW_PASSWORD="${MEDIAGW_PASSWORD:-}"
export CDK_CLI_DIR=$ROOT/.tools/cdk-cli
# shellcheck disable=SC2206 # CDK_ARGS is a list of flags
extra=(${CDK_ARGS:-})

mkdir -p "$ROOT/.run"
cd deploy/cdk
log "cdk bootstrap (the CDK's staging bucket and roles in this account and region)"
MEDIAGW_PASSWORD='' node cdk-cli.js bootstrap --no-notices
log "cdk deploy Mediagw ${args[*]}"
node cdk-cli.js deploy Mediagw --no-notices --require-approval never \
  --outputs-file "$ROOT/.run/deploy-outputs.json" "${args[@]}" "${extra[@]}"
log "done; the stack's outputs are in .run/deploy-outputs.json"
