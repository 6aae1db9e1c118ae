#!/usr/bin/env bash
# One command, a real game day on this machine:
#
#   sudo ./scripts/demo.sh
#
# Installs the build dependencies (apt), builds faultline, and creates three
# hosts as network namespaces joined by veth pairs:
#
#   fl-demo-ops  10.77.1.1 / 10.77.2.1   the coordinator (`faultline run`)
#   fl-demo-web  10.77.1.2               faultline-agent + fl-demo-httpd :8080
#   fl-demo-db   10.77.2.2               faultline-agent + a 64 MiB data volume
#
# then runs experiments/demo.yaml, prints the verdict and writes the JSON
# journal. Everything it created — namespaces, processes, the loop-mounted
# volume, state dirs — is removed afterwards, also on Ctrl-C.
#
# Options: --experiment FILE (default experiments/demo.yaml)
#          --journal FILE    (default ./demo-journal.json)
#          --no-deps         skip apt-get
#          --build-dir DIR   use binaries already built there (skips the build)
# Exit status: faultline run's (0 held, 1 deviated, 2 invalid, 3 aborted, 4 failure).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
EXPERIMENT=$SRC/experiments/demo.yaml
JOURNAL=$PWD/demo-journal.json
DEPS=1
BUILD=""
while [ $# -gt 0 ]; do
  case "$1" in
    --experiment) EXPERIMENT=$(realpath "$2"); shift 2 ;;
    --journal) JOURNAL=$(realpath -m "$2"); shift 2 ;;
    --no-deps) DEPS=0; shift ;;
    --build-dir) BUILD=$(realpath "$2"); shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: needs root for network namespaces (sudo $0)" >&2; exit 2; }

if [ -z "$BUILD" ]; then
  [ "$DEPS" = 1 ] && "$SRC/scripts/deps.sh"
  cmake -S "$SRC" --preset release >/dev/null
  cmake --build "$SRC/build/release" -j"$(nproc)" >/dev/null
  BUILD=$SRC/build/release
fi
AGENT=$BUILD/agent/faultline-agent
FAULTLINE=$BUILD/coordinator/faultline
HTTPD=$BUILD/tests/fl-demo-httpd
for b in "$AGENT" "$FAULTLINE" "$HTTPD"; do
  [ -x "$b" ] || { echo "demo.sh: $b not built" >&2; exit 4; }
done

RUN=/run/fl-demo
NS_OPS=fl-demo-ops NS_WEB=fl-demo-web NS_DB=fl-demo-db
PIDS=()

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  mountpoint -q "$RUN/db-data" && umount "$RUN/db-data"
  for ns in $NS_OPS $NS_WEB $NS_DB; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$RUN"
}
# Leftovers from an earlier demo that was killed hard are ours by name.
cleanup
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

mkdir -p "$RUN"; chmod 700 "$RUN"
for ns in $NS_OPS $NS_WEB $NS_DB; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add fl-demo-w netns $NS_OPS type veth peer name eth0 netns $NS_WEB
ip link add fl-demo-d netns $NS_OPS type veth peer name eth0 netns $NS_DB
ip -n $NS_OPS addr add 10.77.1.1/24 dev fl-demo-w; ip -n $NS_OPS link set fl-demo-w up
ip -n $NS_OPS addr add 10.77.2.1/24 dev fl-demo-d; ip -n $NS_OPS link set fl-demo-d up
ip -n $NS_WEB addr add 10.77.1.2/24 dev eth0; ip -n $NS_WEB link set eth0 up
ip -n $NS_DB addr add 10.77.2.2/24 dev eth0; ip -n $NS_DB link set eth0 up

# The database host's data volume: a small ext4 image, so disk-fill fills
# it and not this machine's disk.
truncate -s 64M "$RUN/db-data.img"
mkfs.ext4 -q -F -m 0 "$RUN/db-data.img"
mkdir -p "$RUN/db-data"
mount -o loop "$RUN/db-data.img" "$RUN/db-data"

ip netns exec $NS_WEB "$HTTPD" 10.77.1.2 8080 >"$RUN/httpd.log" 2>&1 &
PIDS+=($!)

# Mutual TLS, as in production: a fleet CA, a certificate per agent named
# as in the inventory, one for the coordinator (docs/security.md).
PKI=$RUN/pki
"$FAULTLINE" pki init "$PKI" >/dev/null
"$FAULTLINE" pki issue "$PKI" coordinator --coordinator >/dev/null
INVENTORY=$RUN/inventory.yaml
sed 's#address: tcp://#address: tls+tcp://#' "$SRC/experiments/demo-inventory.yaml" >"$INVENTORY"
for host in web db; do
  ns=fl-demo-$host; addr=10.77.1.2; [ $host = db ] && addr=10.77.2.2
  "$FAULTLINE" pki issue "$PKI" "$host-1" --agent >/dev/null
  mkdir -p "$RUN/state-$host"; chmod 700 "$RUN/state-$host"
  ip netns exec "$ns" "$AGENT" --foreground --listen "tls+tcp://$addr:7070" \
    --tls-ca "$PKI/ca.crt" --tls-cert "$PKI/$host-1.crt" --tls-key "$PKI/$host-1.key" \
    --state-dir "$RUN/state-$host" >"$RUN/agent-$host.log" 2>&1 &
  PIDS+=($!)
done
export FAULTLINE_TLS_DIR=$PKI
for _ in $(seq 1 100); do
  ip netns exec $NS_OPS "$FAULTLINE" -i "$INVENTORY" agents >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== fleet (tls+tcp://, certificates from $PKI)"
ip netns exec $NS_OPS "$FAULTLINE" -i "$INVENTORY" agents || true
echo
echo "== game day: $(basename "$EXPERIMENT")"
set +e
ip netns exec $NS_OPS "$FAULTLINE" -i "$INVENTORY" run "$EXPERIMENT" --journal "$JOURNAL"
rc=$?
set -e
echo
echo "== what the agents did"
grep -h -E "AUDIT |lease lapsed" "$RUN"/agent-*.log | sed 's/^/  /' || true
echo
case $rc in
  0) verdict="HELD: the steady state survived the faults" ;;
  1) verdict="DEVIATED: the steady state did not hold (see the journal)" ;;
  2) verdict="INVALID: the experiment or inventory has errors" ;;
  3) verdict="ABORTED" ;;
  *) verdict="FAILED: an agent or system error (exit $rc)" ;;
esac
echo "== summary: $verdict"
echo "   journal: $JOURNAL"
exit $rc
