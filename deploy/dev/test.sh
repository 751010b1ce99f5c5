#!/usr/bin/env bash
# Sets up a fresh machine (deploy/dev/setup.sh) and runs every test:
# unit and property tests, and the end-to-end tests that start real etcd,
# the AWS emulator, the controller, agents and the CLI on loopback.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$root/deploy/dev/setup.sh"
cd "$root"
# The end-to-end tests run the binaries, so build them first.
cargo build --locked --workspace --bins
cargo test --locked --workspace
