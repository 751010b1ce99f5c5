#!/usr/bin/env bash
# Installs what holdfast's build, tests and demo need on a fresh Debian
# machine, and nothing that is already there:
#   - protobuf-compiler (protoc: etcd-client's build compiles etcd's protos)
#   - etcd-server (the store, for tests and the demo)
#   - the AWS emulator, moto[server] from PyPI, in a venv at ./.venv, with
#     jsonschema (the tests validate SARIF output with it)
#   - the SARIF 2.1.0 JSON schema (from the npm package
#     @microsoft/jest-sarif) at ./.tools/sarif-2.1.0.json, for that test
# Rust itself (cargo, rustc >= 1.85) must already be installed (rustup).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
JSONSCHEMA_VERSION=4.26.0
JEST_SARIF_VERSION=1.0.0-beta.0

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

command -v cargo >/dev/null || { say "cargo not found: install Rust with rustup first"; exit 1; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v etcd >/dev/null || need+=(etcd-server)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

venv="$root/.venv"
if ! "$venv/bin/python" -c "import moto, boto3; assert moto.__version__ == '$MOTO_VERSION'" >/dev/null 2>&1; then
  say "installing moto[server]==$MOTO_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
if ! "$venv/bin/python" -c "import jsonschema; assert jsonschema.__version__ == '$JSONSCHEMA_VERSION'" >/dev/null 2>&1; then
  say "installing jsonschema==$JSONSCHEMA_VERSION into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "jsonschema==$JSONSCHEMA_VERSION"
fi

schema="$root/.tools/sarif-2.1.0.json"
if [ ! -s "$schema" ]; then
  say "fetching the SARIF 2.1.0 schema (npm: @microsoft/jest-sarif@$JEST_SARIF_VERSION)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@microsoft/jest-sarif@$JEST_SARIF_VERSION" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$root/.tools"
  cp "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$schema"
  rm -rf "$tmp"
fi
say "ready: $(protoc --version), etcd $(etcd --version | head -1 | awk '{print $3}'), moto $MOTO_VERSION"
