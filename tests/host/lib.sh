# Shared fixture for host-lane tests: real agents in network namespaces the
# test creates, joined to an "ops" namespace (where the coordinator runs) by
# veth pairs. Everything the test creates is removed on exit, failure and
# signal included. Source it; never run it.
set -u

FL_BUILD_DIR=${FL_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/dev}
FL_SOURCE_DIR=${FL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
AGENT=$FL_BUILD_DIR/agent/faultline-agent
FAULTLINE=$FL_BUILD_DIR/coordinator/faultline
HTTPD=$FL_BUILD_DIR/tests/fl-demo-httpd
WIRE_SEND=$FL_BUILD_DIR/tests/fl-wire-send

TLS_PROBE=$FL_BUILD_DIR/tests/fl-tls-probe

# T_TLS=1 (set before sourcing) runs the fixture's agents on tls+tcp:// with
# a PKI made per test by `faultline pki` (t_pki); the default, 0, runs them on
# plain tcp:// with --insecure. Agents a test starts by hand inherit the
# insecure opt-in from the environment; tests of refusal unset it.
T_TLS=${T_TLS:-0}
export FAULTLINE_AGENT_INSECURE=1

T_NAME=$(basename "$0" .sh)
T_ID="fl$$"
T_TMP=""
T_PIDS=()
T_NETNS=()
T_MOUNTS=()
T_FAILED=0

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; T_FAILED=1; exit 1; }
pass() { echo "ok - $*"; }
log() { echo "# $*"; }

t_cleanup() {
  local rc=$?
  set +e
  for pid in "${T_PIDS[@]}"; do
    # Continue first: a stopped process does not act on SIGTERM.
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${T_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for m in "${T_MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
  for ns in "${T_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "$T_TMP" ] && [ -d "$T_TMP" ]; then
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
      for f in "$T_TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
    fi
    rm -rf "$T_TMP"
  fi
  exit $rc
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

t_require_root() {
  [ "$(id -u)" -eq 0 ] || skip "$T_NAME needs root (network namespaces, loop devices, signals to other users' processes)"
  command -v ip >/dev/null || skip "iproute2 (ip) not installed"
  ip netns add "${T_ID}-probe" 2>/dev/null || skip "cannot create network namespaces here"
  ip netns del "${T_ID}-probe"
  [ -x "$AGENT" ] && [ -x "$FAULTLINE" ] || fail "binaries not built in $FL_BUILD_DIR"
}

t_setup() {
  t_require_root
  T_TMP=$(mktemp -d "/tmp/${T_NAME}.XXXXXX")
  chmod 700 "$T_TMP"
  # The coordinator (t_fl or "$FAULTLINE" run by hand) finds its identity here.
  T_PKI=$T_TMP/pki
  if [ "$T_TLS" = 1 ]; then export FAULTLINE_TLS_DIR=$T_PKI; fi
}

# t_hosts N: namespaces ${T_ID}-ops and ${T_ID}-h1..hN; host i is 10.231.i.2,
# the ops side of its link 10.231.i.1.
t_hosts() {
  local n=$1 i
  OPS="${T_ID}-ops"
  ip netns add "$OPS"; T_NETNS+=("$OPS")
  ip -n "$OPS" link set lo up
  for i in $(seq 1 "$n"); do
    local ns="${T_ID}-h$i"
    ip netns add "$ns"; T_NETNS+=("$ns")
    ip -n "$ns" link set lo up
    ip link add "${T_ID}o$i" netns "$OPS" type veth peer name eth0 netns "$ns"
    ip -n "$OPS" addr add "10.231.$i.1/24" dev "${T_ID}o$i"
    ip -n "$ns" addr add "10.231.$i.2/24" dev eth0
    ip -n "$OPS" link set "${T_ID}o$i" up
    ip -n "$ns" link set eth0 up
  done
}

# t_bg NS LOGNAME CMD...: run CMD in namespace NS (or "-" for none) in the
# background; its pid is in $T_LAST_PID and is cleaned up at exit.
t_bg() {
  local ns=$1 logname=$2; shift 2
  if [ "$ns" = "-" ]; then
    "$@" >"$T_TMP/$logname.log" 2>&1 &
  else
    ip netns exec "$ns" "$@" >"$T_TMP/$logname.log" 2>&1 &
  fi
  T_LAST_PID=$!
  T_PIDS+=("$T_LAST_PID")
}

# t_wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds; bounded.
t_wait_for() {
  local secs=$1; shift
  local end=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
  while [ $(( $(date +%s%N) / 1000000 )) -lt $end ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

t_listening() { ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# t_pki N: a fleet CA in $T_TMP/pki, a coordinator certificate (the
# directory is then what --tls-dir/FAULTLINE_TLS_DIR expect) and agent
# certificates h1..hN. Called by t_agent/t_inventory when T_TLS=1.
t_pki() {
  local n=$1 i
  T_PKI=$T_TMP/pki
  if [ ! -f "$T_PKI/ca.key" ]; then
    "$FAULTLINE" pki init "$T_PKI" >/dev/null || fail "faultline pki init failed"
    "$FAULTLINE" pki issue "$T_PKI" coordinator --coordinator >/dev/null || fail "pki issue coordinator failed"
  fi
  for i in $(seq 1 "$n"); do
    [ -f "$T_PKI/h$i.crt" ] || "$FAULTLINE" pki issue "$T_PKI" "h$i" --agent >/dev/null || fail "pki issue h$i failed"
  done
}

# t_scheme: the URL scheme the fixture's agents use.
t_scheme() { if [ "$T_TLS" = 1 ]; then echo tls+tcp; else echo tcp; fi; }

# t_agent_args I: --listen and transport flags for agent I (tests that start
# agents by hand use them to match t_inventory).
t_agent_args() {
  local i=$1
  if [ "$T_TLS" = 1 ]; then
    t_pki "$i"
    echo --listen "tls+tcp://10.231.$i.2:7070" --tls-ca "$T_PKI/ca.crt" \
      --tls-cert "$T_PKI/h$i.crt" --tls-key "$T_PKI/h$i.key"
  else
    echo --listen "tcp://10.231.$i.2:7070" --insecure
  fi
}

# t_agent I [extra flags]: start an agent in host I on port 7070 with its own
# state dir; sets AGENT_PID_I. Waits until it answers.
t_agent() {
  local i=$1; shift
  mkdir -p "$T_TMP/state$i"; chmod 700 "$T_TMP/state$i"
  if [ "$T_TLS" = 1 ]; then t_pki "$i"; fi
  # shellcheck disable=SC2046 # t_agent_args prints words without blanks
  t_bg "${T_ID}-h$i" "agent$i" "$AGENT" --foreground $(t_agent_args "$i") \
    --state-dir "$T_TMP/state$i" --log-level debug "$@"
  eval "AGENT_PID_$i=$T_LAST_PID"
  t_wait_for 10 t_listening "${T_ID}-h$i" 7070 || { cat "$T_TMP/agent$i.log"; fail "agent $i did not come up"; }
}

# t_inventory N: inventory.yaml with agents h1..hN.
t_inventory() {
  local n=$1 i
  if [ "$T_TLS" = 1 ]; then t_pki "$n"; fi
  {
    echo "agents:"
    for i in $(seq 1 "$n"); do
      echo "  - name: h$i"
      echo "    address: $(t_scheme)://10.231.$i.2:7070"
      echo "    tags: [host$i, all-hosts]"
    done
  } >"$T_TMP/inventory.yaml"
}

# t_fl ARGS...: the coordinator, in the ops namespace, with the inventory.
t_fl() { ip netns exec "$OPS" "$FAULTLINE" -i "$T_TMP/inventory.yaml" "$@"; }

# t_victim NAME: a long sleep whose comm is NAME (<= 15 chars); pid in T_LAST_PID.
t_victim() {
  cp /bin/sleep "$T_TMP/$1"
  t_bg - "victim-$1" "$T_TMP/$1" 600
}

proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
alive() { [ -e "/proc/$1" ] && [ "$(proc_state "$1")" != "Z" ]; }
