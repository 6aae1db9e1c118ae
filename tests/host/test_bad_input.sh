#!/usr/bin/env bash
# Safety core 9: hostile and malformed input over the wire and on the CLI.
# Each gets a clear error; the agent keeps serving; nothing is applied.
. "$(dirname "$0")/lib.sh"
t_setup
t_hosts 1
t_inventory 1
t_agent 1
URL=tcp://10.231.1.2:7070
t_victim "flb$$"; victim=$T_LAST_PID

send() { ip netns exec "$OPS" "$WIRE_SEND" "$URL" "$@"; }
# expect STATUS ARGS...: the agent answers with that status name.
expect() {
  local want=$1; shift
  local out; out=$(send "$@" 2>&1)
  echo "$out" | grep -q "^status=$want " || fail "[$*] expected $want, got: $out"
  echo "ok - [$*] -> $out"
}

A="v=u:1 t=s:apply seq=u:1 lease=s:l-test ttl=u:5000"
P="params=m:pid=$victim"
expect bad-request garbage 64
expect bad-request zeros 1
expect bad-request hex c1
expect bad-request hex 93010203                     # an array, not a map
expect bad-request hex 81a17601                     # map {v:1} only: no type
expect bad-request garbage 300000                   # > FL_MAX_FRAME
expect bad-request hex dd7fffffff                   # array32 claiming 2^31 elements
expect bad-version map v=u:99 t=s:hello seq=u:1
expect unknown-type map v=u:1 t=s:format-disk seq=u:1
expect unknown-kind map $A kind=s:rm-rf dur=u:1000 "$P"
expect bad-request map $A kind=s:process-pause "$P"             # no duration
expect bad-request map $A kind=s:process-pause dur=i:-5 "$P"    # negative
expect bad-request map $A kind=s:process-pause dur=u:0 "$P"     # zero
expect refused map $A kind=s:process-pause dur=u:18446744073709551615 "$P"  # huge
expect bad-request map $A kind=s:process-pause dur=s:10s "$P"   # wrong type
expect bad-request map $A kind=s:process-pause dur=u:1000 "$P" extra=s:x  # unknown field
expect invalid map $A kind=s:process-pause dur=u:1000 params=m:pid=-3
expect invalid map $A kind=s:process-pause dur=u:1000 params=m:pid=99999999999999999999
expect invalid map $A kind=s:process-pause dur=u:1000 params=m:bogus=1
expect invalid map $A kind=s:disk-fill dur=u:1000 params=m:path=/tmp,percent=1e9
expect bad-request map $A kind=s:process-pause dur=u:1000 params=a:100000
# More shapes a hostile peer can send (issue 6: 30+ cases, each a clear error).
expect bad-request hex 80                                       # empty map
expect bad-request hex a568656c6c6f                             # a string, not a map
expect bad-request hex 83a17601a174a568656c6c6fa373657101c0     # trailing byte
expect bad-request hex 83a17601a174a568656c6c6fa3736571         # truncated
expect bad-request hex 81a1769191919191919101                   # nested too deep
expect bad-request hex 83a17601a174dbffffffff61                 # str32 claiming 4 GiB
expect bad-request map v=s:1 t=s:hello seq=u:1                  # version as a string
expect bad-request map v=u:1 t=u:3 seq=u:1                      # type as a number
expect bad-request map v=u:1 t=s:hello seq=i:-1                 # negative seq
expect bad-request map v=u:1 t=s:hello                          # no seq
expect bad-request map v=u:1 t=n seq=u:1                        # nil type
expect bad-request map v=u:1 t=s:renew seq=u:1 lease=s:$(printf 'l%.0s' $(seq 300)) ttl=u:5000  # overlong lease
expect bad-request map $A kind=s:$(printf 'k%.0s' $(seq 40)) dur=u:1000 "$P"              # kind too long
expect bad-request map $A kind=s:process-pause dur=b:true "$P"  # bool duration
expect bad-request map $A kind=s:process-pause dur=u:1000 params=s:pid  # params not a map
expect bad-request map $A kind=s:process-pause dur=u:1000 params=m:$(for i in $(seq 40); do printf 'k%d=1,' $i; done)x=1  # > 32 params
expect bad-request map $A kind=s:process-pause dur=u:1000 params=m:pid=$(printf '9%.0s' $(seq 600))  # value > 512
expect bad-request map v=u:1 t=s:apply seq=u:1 kind=s:process-pause dur=u:1000 "$P"  # no lease
expect refused map $A kind=s:process-pause dur=u:1000 params=m:pid=1            # PID 1
expect refused map $A kind=s:process-kill dur=u:1000 params=m:pid=$AGENT_PID_1  # the agent
expect invalid map $A kind=s:disk-fill dur=u:1000 params=m:path=relative,bytes=1M
expect not-found map v=u:1 t=s:revert seq=u:1 id=s:f-0000000000000000
expect not-found map v=u:1 t=s:renew seq=u:1 lease=s:l-nobody ttl=u:5000

# Still serving, nothing applied, victim untouched.
out=$(t_fl agents) || fail "agent stopped serving: $out"
out=$(t_fl status); echo "$out" | grep -q "^0 active" || fail "something was applied: $out"
[ "$(proc_state $victim)" != T ] || fail "victim was paused"
kill -0 "$AGENT_PID_1" || fail "agent died"
pass "agent survived every bad frame, nothing applied"

# Frames beyond the transport cap: nng drops the connection; agent survives.
timeout 10 ip netns exec "$OPS" "$WIRE_SEND" "$URL" garbage 2000000 >/dev/null 2>&1
out=$(t_fl agents) || fail "agent stopped serving after a 2 MB frame: $out"
pass "2 MB frame dropped at the transport, agent serving"

# CLI-side validation: clear errors, exit 2, nothing sent.
expect_cli() {
  local out rc
  out=$(t_fl "$@" 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "[faultline $*] expected exit 2, got $rc: $out"
  echo "ok - [faultline $*] -> exit 2: $(echo "$out" | head -1)"
}
expect_cli inject h1 process-pause pid=$victim
expect_cli inject h1 process-pause pid=$victim --duration 5
expect_cli inject h1 process-pause pid=$victim --duration -5s
expect_cli inject h1 no-such-kind --duration 1s
expect_cli inject no-such-host process-pause pid=$victim --duration 1s
expect_cli inject h1 process-pause junk --duration 1s
expect_cli --timeout nope agents
expect_cli frobnicate
printf 'version: 1\ntitle: x\nmethod:\n  - wait: 5\n  - bogus: 1\n' > "$T_TMP/bad.yaml"
out=$(t_fl validate "$T_TMP/bad.yaml" 2>&1); rc=$?
echo "$out"
[ $rc -eq 2 ] || fail "validate bad file: exit $rc"
echo "$out" | grep -q "bad.yaml:4:" || fail "no line:col for the bad wait"
pass "validate reports errors with file:line:col"
out=$(t_fl status); echo "$out" | grep -q "^0 active" || fail "CLI errors applied something: $out"
pass "CLI bad input changed nothing"
