#!/usr/bin/env bash
# kill_tree.sh: kill a PROCS-process tree (default 100: a root and 99
# sleepers) in a cgroup until every process is reaped, RUNS rounds
# (default 200), three ways interleaved in the same run (bench/kill_tree.c):
#   faultline  APPLY process-kill cgroup=/<group> signal=KILL to a local agent
#              (cgroup.kill when the group is in the v2 tree, pidfds on v1)
#   loop       sh: for p in $(cat cgroup.procs); do /bin/kill -9 $p; done
#   single     one /bin/kill -9 PID1 ... PID100 exec
#   syscall    the floor: the helper kill(2)s each pid itself, no exec
# and prints per-round lines and a p50/p99/max table of "ack" (agent reply,
# or the kill command's exit) and "reaped" (last of the tree reaped).
#
#   sudo FL_BUILD_DIR=build/h-k5 bench/kill_tree.sh
#
# Knobs: RUNS (200), PROCS (100), CG: where the group is made —
#   auto  the v2 tree on a v2-only host, else the v1 freezer hierarchy
#         (cpuacct without it): what the agent's cgroup= selector matches
#   v1    the v1 freezer (or cpuacct) hierarchy
#   v2    the cgroup2 mount (on a hybrid host: its unified tree), so the
#         agent uses cgroup.kill
# Everything it makes (agent, cgroup, the tree) is removed on exit, failure
# and signals included.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FL_BUILD_DIR:-$root/build/dev}
runs=${RUNS:-200}
procs=${PROCS:-100}
where=${CG:-auto}
[ "$(id -u)" -eq 0 ] || { echo "needs root (cgroups)" >&2; exit 77; }
helper=$build/bench/kill_tree
[ -x "$helper" ] && [ -x "$build/agent/faultline-agent" ] ||
  { echo "build $build first (bench/kill_tree, agent/faultline-agent)" >&2; exit 2; }
[ -x /bin/kill ] || { echo "/bin/kill (procps) not installed" >&2; exit 77; }
[ "$runs" -ge 1 ] && [ "$runs" -le 2000 ] || { echo "RUNS 1..2000" >&2; exit 2; }
[ "$procs" -ge 2 ] && [ "$procs" -le 1000 ] || { echo "PROCS 2..1000" >&2; exit 2; }

v2=""; v1frz=""; v1acct=""; v1any=""
while read -r _ _ _ mroot mnt rest; do
  [ "$mroot" = / ] || continue
  fstype=$(echo "$rest" | sed 's/.* - //' | awk '{print $1}')
  opts=$(echo "$rest" | sed 's/.* - //' | awk '{print $3}')
  if [ "$fstype" = cgroup2 ] && [ -z "$v2" ]; then v2=$mnt; fi
  if [ "$fstype" = cgroup ]; then
    case ",$opts," in *,freezer,*) v1frz=$mnt;; esac
    case ",$opts," in *,cpuacct,*) v1acct=$mnt;; esac
  fi
done </proc/self/mountinfo
v1any=${v1frz:-$v1acct}
case "$where" in
  auto) base=${v1any:-$v2};;
  v1) base=$v1any;;
  v2) base=$v2;;
  *) echo "CG=auto|v1|v2" >&2; exit 2;;
esac
[ -n "$base" ] || { echo "no cgroup hierarchy for CG=$where" >&2; exit 77; }

name="flbench-kill-$$"
cg="$base/$name"
state=$(mktemp -d /dev/shm/fl-killbench.XXXXXX); chmod 700 "$state"
agent=""; hpid=""
cleanup() {
  set +e
  [ -n "$hpid" ] && { kill -KILL "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null; }
  if [ -d "$cg" ]; then
    for _ in $(seq 1 50); do
      [ -n "$(cat "$cg/cgroup.procs" 2>/dev/null)" ] || break # size 0 in cgroupfs: no -s
      if [ -f "$cg/cgroup.kill" ]; then echo 1 >"$cg/cgroup.kill"
      else for p in $(cat "$cg/cgroup.procs"); do kill -KILL "$p" 2>/dev/null; done; fi
      sleep 0.1
    done
    for _ in $(seq 1 30); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
    [ -d "$cg" ] && echo "# could not remove $cg" >&2
  fi
  if [ -n "$agent" ]; then
    kill -TERM "$agent" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$agent" 2>/dev/null; wait "$agent" 2>/dev/null
  fi
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir "$cg"
port=$((19000 + $$ % 1000))
"$build/agent/faultline-agent" --foreground --listen "tcp://127.0.0.1:$port" \
  --state-dir "$state" >"$state/agent.log" 2>&1 &
agent=$!

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r), $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# group $cg, $procs processes (a root and $((procs - 1)) sleepers), $runs rounds per method"
"$helper" --dir "$cg" --rel "/$name" --url "tcp://127.0.0.1:$port" --procs "$procs" \
  --runs "$runs" &
hpid=$!
rc=0; wait "$hpid" || rc=$?
hpid=""
echo "# agent: $(grep -m1 -o 'cgroup \(v1\|v2\|hybrid\).*' "$state/agent.log")"
echo "# agent backends: $(grep -o 'kind=process-kill.* backend=[a-z.]*' "$state/agent.log" |
  grep -o 'backend=[a-z.]*' | sort | uniq -c | tr -s ' \n' ' ')"
exit "$rc"
