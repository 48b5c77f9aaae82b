#!/usr/bin/env bash
# Installs everything mediagw needs on a fresh Debian machine, idempotently:
# ffmpeg (Debian's package), the local AWS emulators in virtualenvs under
# .tools/ (moto, pinned; LocalStack's open-source core, pinned, in one of its
# own), cfn-lint (pinned, its own virtualenv), Node.js for the CDK app (jsii
# runs on it) and the pinned CDK CLI (npm, under .tools/cdk-cli), the Go
# modules and the pinned code generators.
# Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MOTO_VERSION=5.2.5
# LocalStack's core on the host (no Docker): 4.13.1 is the last release that
# runs on Python 3.11. cbor2 6 and pyOpenSSL 26 break it.
LOCALSTACK_VERSION=4.13.1
LOCALSTACK_CONSTRAINTS=("cbor2<6" "pyopenssl<26")
# Lints the synthesized CloudFormation template (deploy/cdk tests).
CFN_LINT_VERSION=1.58.0
# The CDK CLI that `make deploy` runs (deploy/cdk); the app itself is Go.
AWS_CDK_CLI_VERSION=2.1148.1

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages ---------------------------------------------------------
need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# jsii (the CDK's Go bindings) runs the CDK's JavaScript on Node.js.
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- Go ----------------------------------------------------------------------
command -v go >/dev/null 2>&1 || { log "Go is not installed (need go >= 1.26)"; exit 1; }

# --- Python virtualenv with the AWS emulator -------------------------------
VENV=$ROOT/.tools/venv
if [ ! -x "$VENV/bin/moto_server" ] || [ "$("$VENV/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]; then
  log "installing moto[server]==$MOTO_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# --- LocalStack (make test runs the end-to-end tests against it too) ----------
LSVENV=$ROOT/.tools/localstack-venv
if [ "$("$LSVENV/bin/python" -c 'from importlib.metadata import version; print(version("localstack-core"))' 2>/dev/null)" != "$LOCALSTACK_VERSION" ]; then
  log "installing localstack-core[runtime]==$LOCALSTACK_VERSION into $LSVENV (about a minute)"
  python3 -m venv "$LSVENV"
  "$LSVENV/bin/pip" install -q --disable-pip-version-check "localstack-core[runtime]==$LOCALSTACK_VERSION" "${LOCALSTACK_CONSTRAINTS[@]}"
fi

# --- cfn-lint (deploy/cdk's tests lint the synthesized template) ------------
CFNVENV=$ROOT/.tools/cfn-lint-venv
if [ "$("$CFNVENV/bin/cfn-lint" --version 2>/dev/null)" != "cfn-lint $CFN_LINT_VERSION" ]; then
  log "installing cfn-lint==$CFN_LINT_VERSION into $CFNVENV"
  python3 -m venv "$CFNVENV"
  "$CFNVENV/bin/pip" install -q --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi

# --- the CDK CLI (make deploy) ------------------------------------------------
CDKCLI=$ROOT/.tools/cdk-cli
if [ "$("$CDKCLI/node_modules/.bin/cdk" --version 2>/dev/null | cut -d' ' -f1)" != "$AWS_CDK_CLI_VERSION" ]; then
  log "installing aws-cdk@$AWS_CDK_CLI_VERSION into $CDKCLI"
  mkdir -p "$CDKCLI"
  npm install --prefix "$CDKCLI" --no-audit --no-fund --loglevel=error "aws-cdk@$AWS_CDK_CLI_VERSION" >/dev/null
fi

# --- Go modules and the pinned code generators (tools/go.mod) ---------------
log "downloading Go modules"
for mod in pkg testsupport deploy deploy/cdk deploy/provision services/*/; do
  (cd "$mod" && go mod download)
done
(cd tools && GOWORK=off go tool -n buf >/dev/null && GOWORK=off go tool -n protoc-gen-go >/dev/null)

log "ready"
