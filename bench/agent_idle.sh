#!/bin/bash
# agent_idle.sh: resident memory and idle CPU of faultline-agent.
#
#   bench/agent_idle.sh BUILD_DIR [SECONDS] [STATE_PARENT]
#
# BUILD_DIR holds agent/faultline-agent and bench/{lease_client,proc_sample}
# (bench/run_all.sh builds them). Starts one agent on 127.0.0.1:27290 with a
# fresh state dir under STATE_PARENT (default /var/tmp), then:
#   1. RSS one second after start;
#   2. CPU over SECONDS (default 60) with no fault and no lease;
#   3. CPU over SECONDS while lease_client holds one process-pause fault on
#      a /bin/sleep child and renews its lease every second;
#   4. RSS and peak RSS (VmHWM) after that.
# CPU comes from the process CPU clock (ns, all threads); the utime+stime
# tick count from /proc/PID/stat is printed next to it. Everything started
# here is stopped and removed on exit, also on failure or Ctrl-C.
set -euo pipefail

build=${1:?usage: agent_idle.sh BUILD_DIR [SECONDS] [STATE_PARENT]}
secs=${2:-60}
parent=${3:-/var/tmp}
port=27290
url=tcp://127.0.0.1:$port
agent_bin=$build/agent/faultline-agent
client=$build/bench/lease_client
sample=$build/bench/proc_sample
for f in "$agent_bin" "$client" "$sample"; do
	[[ -x $f ]] || { echo "agent_idle: $f missing (build first)" >&2; exit 2; }
done
[[ $secs =~ ^[0-9]+$ ]] && ((secs >= 5 && secs <= 3600)) || { echo "agent_idle: SECONDS must be 5-3600" >&2; exit 2; }

agent_pid= sleep_pid= client_pid= state= logdir=
cleanup() {
	local p
	for p in $client_pid $agent_pid $sleep_pid; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $client_pid $agent_pid $sleep_pid; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[[ -n $state ]] && rm -rf -- "$state"
	[[ -n $logdir ]] && rm -rf -- "$logdir"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

state=$(mktemp -d "$parent/fl-bench-idle-state-XXXXXX")
logdir=$(mktemp -d /dev/shm/fl-bench-idle-log-XXXXXX)
chmod 0700 "$state"

field() { # field NAME "k=v k=v ..."
	local kv
	for kv in $2; do [[ ${kv%%=*} == "$1" ]] && { echo "${kv#*=}"; return; }; done
}
pct() { # pct CPU_NS SECONDS -> percent of one core
	awk -v c="$1" -v s="$2" 'BEGIN { printf "%.4f", c / (s * 1e9) * 100 }'
}

"$agent_bin" --foreground --listen "$url" --state-dir "$state" >"$logdir/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
	ss -ltnH "sport = :$port" | grep -q . && break
	kill -0 "$agent_pid" 2>/dev/null || { echo "agent_idle: agent exited:" >&2; cat "$logdir/agent.log" >&2; exit 4; }
	sleep 0.05
done
sleep 1
s0=$("$sample" "$agent_pid")
echo "agent_idle: agent pid $agent_pid on $url, state dir $state, ${secs}s per phase, $(getconf CLK_TCK) ticks/s"
echo "after start:        $s0"

# Phase 1: no lease at all.
sleep "$secs"
s1=$("$sample" "$agent_pid")
cpu1=$(( $(field cpu_ns "$s1") - $(field cpu_ns "$s0") ))
tk1=$(( $(field ticks "$s1") - $(field ticks "$s0") ))

# Phase 2: one fault held by a lease renewed every second.
sleep 3600 &
sleep_pid=$!
"$client" --url "$url" --pid "$sleep_pid" --seconds $((secs + 2)) --period-ms 1000 --ttl-ms 5000 \
	>"$logdir/client.out" 2>&1 &
client_pid=$!
sleep 1
s2=$("$sample" "$agent_pid")
grep -q '^State:.*T' "/proc/$sleep_pid/status" || { echo "agent_idle: target not paused:" >&2; cat "$logdir/client.out" "$logdir/agent.log" >&2; exit 4; }
sleep "$secs"
s3=$("$sample" "$agent_pid")
cpu2=$(( $(field cpu_ns "$s3") - $(field cpu_ns "$s2") ))
tk2=$(( $(field ticks "$s3") - $(field ticks "$s2") ))
wait "$client_pid" || { echo "agent_idle: lease client failed:" >&2; cat "$logdir/client.out" >&2; exit 4; }
client_pid=
cat "$logdir/client.out"
grep -q '^State:.*T' "/proc/$sleep_pid/status" && { echo "agent_idle: target still paused after revert" >&2; exit 4; }
s4=$("$sample" "$agent_pid")
echo "after lease run:    $s4"

printf '%-34s %8s KiB\n' "RSS after start" "$(field rss_kib "$s0")"
printf '%-34s %8s KiB (peak %s KiB, %s threads)\n' "RSS after both phases" "$(field rss_kib "$s4")" "$(field hwm_kib "$s4")" "$(field threads "$s4")"
printf '%-34s %8.3f ms CPU in %ss = %s %% of a core (%s ticks)\n' "idle, no lease" \
	"$(awk -v c="$cpu1" 'BEGIN{print c/1e6}')" "$secs" "$(pct "$cpu1" "$secs")" "$tk1"
printf '%-34s %8.3f ms CPU in %ss = %s %% of a core (%s ticks)\n' "idle, 1 fault, renew every 1 s" \
	"$(awk -v c="$cpu2" 'BEGIN{print c/1e6}')" "$secs" "$(pct "$cpu2" "$secs")" "$tk2"
