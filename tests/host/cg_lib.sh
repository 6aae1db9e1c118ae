# cgroup helpers for the host lane (v1 here) and the VM lane (v2): where
# each controller lives, reading usage, test-created cgroups that are
# removed on exit — failure and signals included. Source after lib.sh;
# never run it.

# cg_detect: CG_MODE=v1|v2 and CG_CPU, CG_ACCT, CG_MEM, CG_FRZ, CG_IO (the
# mount each controller lives in; on v2 all are the same).
cg_detect() {
  CG_CPU=""; CG_ACCT=""; CG_MEM=""; CG_FRZ=""; CG_IO=""; CG_V2=""
  while read -r _ _ _ root mnt rest; do
    local fstype opts
    fstype=$(echo "$rest" | sed 's/.* - //' | awk '{print $1}')
    opts=$(echo "$rest" | sed 's/.* - //' | awk '{print $3}')
    [ "$root" = "/" ] || continue
    if [ "$fstype" = cgroup2 ] && [ -z "$CG_V2" ]; then CG_V2=$mnt; fi
    if [ "$fstype" = cgroup ]; then
      case ",$opts," in *,cpu,*) CG_CPU=$mnt;; esac
      case ",$opts," in *,cpuacct,*) CG_ACCT=$mnt;; esac
      case ",$opts," in *,memory,*) CG_MEM=$mnt;; esac
      case ",$opts," in *,freezer,*) CG_FRZ=$mnt;; esac
      case ",$opts," in *,blkio,*) CG_IO=$mnt;; esac
    fi
  done </proc/self/mountinfo
  if [ -n "$CG_CPU" ] || [ -n "$CG_MEM" ]; then
    CG_MODE=v1
  elif [ -n "$CG_V2" ]; then
    CG_MODE=v2
    CG_CPU=$CG_V2; CG_ACCT=$CG_V2; CG_MEM=$CG_V2; CG_FRZ=$CG_V2; CG_IO=$CG_V2
    local c
    for c in cpu memory io pids; do echo "+$c" >"$CG_V2/cgroup.subtree_control" 2>/dev/null; done
  else
    CG_MODE=none
  fi
}

# Usage of a cgroup dir in ns (v1 cpuacct.usage, v2 cpu.stat usage_usec).
cg_usage_ns() {
  if [ "$CG_MODE" = v1 ]; then cat "$1/cpuacct.usage"
  else echo $(( $(awk '$1=="usage_usec"{print $2}' "$1/cpu.stat") * 1000 )); fi
}

# cg_rate DIR SECONDS: CPU use of DIR over SECONDS, in hundredths of a
# percent of one CPU (5000 = 50.00 %).
cg_rate() {
  local a b t0 t1
  t0=$(date +%s%N); a=$(cg_usage_ns "$1")
  sleep "$2"
  t1=$(date +%s%N); b=$(cg_usage_ns "$1")
  echo $(( (b - a) * 10000 / (t1 - t0) ))
}

fmt_pct() { printf '%d.%02d' $(( $1 / 100 )) $(( $1 % 100 )); }

# cg_quota DIR: "QUOTA PERIOD" (QUOTA -1 or max for none).
cg_quota() {
  if [ "$CG_MODE" = v1 ]; then echo "$(cat "$1/cpu.cfs_quota_us") $(cat "$1/cpu.cfs_period_us")"
  else cat "$1/cpu.max"; fi
}

# cg_io_limits DIR: every io limit of DIR, one line per knob (v1: the four
# blkio.throttle.*_device files; v2: io.max), for exact before/after checks.
cg_io_limits() {
  local f
  if [ "$CG_MODE" = v1 ]; then
    for f in read_bps write_bps read_iops write_iops; do
      echo "$f: $(tr '\n' ' ' <"$1/blkio.throttle.${f}_device")"
    done
  else cat "$1/io.max"; fi
}

# Test cgroups: cg_make NAME creates /NAME in every hierarchy we use; its
# processes are killed and the directories removed at exit.
CG_MADE=()
cg_dirs() {
  local name=$1 d
  for d in "$CG_CPU" "$CG_ACCT" "$CG_MEM" "$CG_FRZ" "$CG_IO"; do
    [ -n "$d" ] && echo "$d/$name"
  done | sort -u
}
cg_make() {
  local d
  for d in $(cg_dirs "$1"); do mkdir -p "$d"; done
  CG_MADE+=("$1")
}
# cg_enter NAME PID: move PID into NAME in every hierarchy.
cg_enter() {
  local d
  for d in $(cg_dirs "$1"); do echo "$2" >"$d/cgroup.procs" || return 1; done
}
cg_procs() { cat "$1/cgroup.procs" 2>/dev/null; }

cg_remove() {
  local name=$1 d p i
  # Thaw first: a frozen process cannot die.
  if [ "$CG_MODE" = v1 ] && [ -d "$CG_FRZ/$name" ]; then echo THAWED >"$CG_FRZ/$name/freezer.state"; fi
  if [ "$CG_MODE" = v2 ] && [ -f "$CG_V2/$name/cgroup.freeze" ]; then echo 0 >"$CG_V2/$name/cgroup.freeze"; fi
  for i in $(seq 1 50); do
    local left=0
    for d in $(cg_dirs "$name"); do
      for p in $(cg_procs "$d"); do kill -KILL "$p" 2>/dev/null; left=1; done
    done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for d in $(cg_dirs "$name"); do
    [ -d "$d" ] || continue
    find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
    for i in $(seq 1 30); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
    [ -d "$d" ] && echo "# could not remove $d"
  done
}

# Agents first (SIGTERM reverts their faults), then whatever a killed agent
# left in its journal, then our own cgroups; then lib.sh's cleanup.
CG_STATE_DIRS=()
cg_cleanup() {
  local pid sd n
  # Everything the test started (agents revert on SIGTERM; supervisors
  # must not respawn into our cgroups while they are removed).
  for pid in "${T_PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
  for pid in "${T_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  for sd in "${CG_STATE_DIRS[@]}"; do
    ls "$sd"/faults/*.json >/dev/null 2>&1 && "$AGENT" --recover --state-dir "$sd" >/dev/null 2>&1
  done
  for n in "${CG_MADE[@]}"; do cg_remove "$n"; done
}
trap 'rc=$?; set +e; cg_cleanup; (exit $rc); t_cleanup' EXIT

# cg_inject LOG KIND PARAMS... -- DURATION: background inject in the ops
# namespace; waits for "applied" and sets FAULT_ID (fails the test on an
# error reply).
cg_inject() {
  local log=$1 kind=$2; shift 2
  local params=() dur
  while [ "$1" != "--" ]; do params+=("$1"); shift; done
  dur=$2
  t_bg "$OPS" "$log" "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 "$kind" "${params[@]}" --duration "$dur"
  INJECT_PID=$T_LAST_PID
  t_wait_for 30 grep -q "applied" "$T_TMP/$log.log" \
    || fail "$kind ${params[*]} not applied: $(cat "$T_TMP/$log.log")"
  FAULT_ID=$(grep -o 'applied f-[0-9a-f]*' "$T_TMP/$log.log" | head -1 | cut -d' ' -f2)
}

# A busy loop (bounded: it exits after 10 minutes anyway) and a sleeper.
cg_busy() { t_bg - "busy-$1" bash -c 'SECONDS=0; while [ $SECONDS -lt 600 ]; do :; done'; BUSY_PID=$T_LAST_PID; }

# cg_agent I [flags]: t_agent, but entering only the network namespace:
# `ip netns exec` also remounts /sys in a private mount namespace, which
# hides /sys/fs/cgroup from the agent. Sets AGENT_PID_I.
cg_agent() {
  local i=$1; shift
  command -v nsenter >/dev/null || skip "nsenter (util-linux) not installed"
  mkdir -p "$T_TMP/state$i"; chmod 700 "$T_TMP/state$i"
  local listen=(--listen "tcp://10.231.$i.2:7070")
  # The fixture's transport flags (TLS or --insecure) when lib.sh has them.
  # shellcheck disable=SC2207
  if declare -F t_agent_args >/dev/null; then listen=($(t_agent_args "$i")); fi
  t_bg - "agent$i" nsenter --net="/var/run/netns/${T_ID}-h$i" "$AGENT" --foreground \
    "${listen[@]}" --state-dir "$T_TMP/state$i" --log-level debug "$@"
  eval "AGENT_PID_$i=$T_LAST_PID"
  CG_STATE_DIRS+=("$T_TMP/state$i")
  t_wait_for 10 t_listening "${T_ID}-h$i" 7070 || fail "agent $i did not come up: $(cat "$T_TMP/agent$i.log")"
}
