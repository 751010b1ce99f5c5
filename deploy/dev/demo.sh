#!/usr/bin/env bash
# The holdfast demo, on one machine: sets it up (deploy/dev/setup.sh),
# builds, starts etcd, the AWS emulator, the controller and one agent on
# free loopback ports, then runs the loop:
#   baseline a web security group (443 open) -> an independent client (boto3)
#   opens SSH to the world and closes HTTPS -> one drift with both changes ->
#   enforcement on -> the group is healed, read back by the same client.
# Prints how long detection and healing took, and stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$root/deploy/dev/setup.sh"
cd "$root"
cargo build --locked --workspace --bins >&2
bin="$root/target/debug"
py="$root/.venv/bin/python"
aws="$py $root/deploy/dev/aws_client.py"

work=$(mktemp -d -t holdfast-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
step() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
elapsed() { "$py" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}s')" "$1" "$2"; }
wait_until() { # DESCRIPTION TIMEOUT_SECONDS COMMAND...
  local what=$1 limit=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then echo "demo failed: timed out waiting for $what (logs in $work)" >&2; trap - EXIT; exit 1; fi
    sleep 0.1
  done
}

etcd_port=$(port); peer_port=$(port); moto_port=$(port); ctl_port=$(port)
export HOLDFAST_CONTROLLER="http://127.0.0.1:$ctl_port"
moto="http://127.0.0.1:$moto_port"

step "starting etcd, the AWS emulator, the controller and an agent (logs in $work)"
etcd --name demo --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "demo=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
pids+=($!)
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_until "the emulator" 30 "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$moto/moto-api/data.json"
"$bin/holdfast-controller" --listen "127.0.0.1:$ctl_port" --etcd "http://127.0.0.1:$etcd_port" >"$work/controller.log" 2>&1 &
pids+=($!)
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true \
AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  "$bin/holdfast-agent" --regions us-east-1 --interval 2s --aws-endpoint-url "$moto" --emulator-compat >"$work/agent.log" 2>&1 &
pids+=($!)
wait_until "the controller" 30 "$bin/holdfast" env list

step "an independent client (boto3) creates a web security group with HTTPS open"
sg=$($aws "$moto" create-web)
echo "$sg:"; $aws "$moto" show "$sg" | sed 's/^/    /'

step "holdfast env create demo --account 123456789012 --regions us-east-1"
"$bin/holdfast" env create demo --account 123456789012 --regions us-east-1
wait_until "the agent to connect" 30 sh -c "'$bin/holdfast' env show demo --output json | grep -q '\"agent_connected\": true'"

step "holdfast baseline create demo --reason 'approved web tier'"
"$bin/holdfast" baseline create demo --reason "approved web tier"

step "boto3 opens SSH to 0.0.0.0/0 and closes HTTPS"
$aws "$moto" break "$sg"
t_break=$(now)
$aws "$moto" show "$sg" | sed 's/^/    /'
drifted() { "$bin/holdfast" drift list demo --output json | "$py" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if len(d)==1 and len(d[0]["changes"])==2 else 1)'; }
wait_until "the drift" 60 drifted
t_detected=$(now)

step "holdfast drift list demo   (one drift, both changes)"
"$bin/holdfast" drift list demo

step "holdfast enforcement set demo enforce"
"$bin/holdfast" enforcement set demo enforce >/dev/null
t_enforce=$(now)
healed() {
  "$bin/holdfast" drift list demo --all --output json | "$py" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d and all(x["status"]=="healed" for x in d) else 1)' &&
  [ "$($aws "$moto" show "$sg")" = "tcp 443-443 from 0.0.0.0/0" ]
}
wait_until "the heal" 60 healed
t_healed=$(now)

step "boto3 reads the group back"
$aws "$moto" show "$sg" | sed 's/^/    /'

step "holdfast drift list demo --all"
"$bin/holdfast" drift list demo --all

step "holdfast remediation list demo"
"$bin/holdfast" remediation list demo

step "timings (measured by this script)"
echo "    drift detected $(elapsed "$t_break" "$t_detected") after the change (agent interval 2s)"
echo "    group healed   $(elapsed "$t_enforce" "$t_healed") after enforcement was switched on (as read back by boto3)"
echo
echo "demo complete; stopping everything it started"
