#!/usr/bin/env bash
# DR drill end to end (experiments/primary-failover-drill.yaml): a primary
# and a delayed replica of a small key-value service, each in its own
# namespace, a failover watchdog in the coordinator's namespace, and the
# drill kills the primary. The test controls the real failover delay
# (FAILOVER_S) and the replication delay (LAG_S) and asserts the measured
# RTO and RPO are within +-10 % of them.
. "$(dirname "$0")/lib.sh"
t_setup
PY=/usr/bin/python3
[ -x $PY ] || skip "python3 not installed (the drill's toy service is a Python script)"
command -v curl >/dev/null || skip "curl not installed (the failover watchdog uses it)"
FAILOVER_S=3
LAG_S=2
DRILL=$FL_SOURCE_DIR/experiments/drill
VIP=10.231.100.1

t_hosts 4
# db-1 = h3 (primary), db-2 = h4 (replica); the ops namespace routes
# between them and owns the route to the service address.
ip netns exec "$OPS" sysctl -qw net.ipv4.ip_forward=1
for i in 3 4; do
  ip -n "${T_ID}-h$i" route add default via "10.231.$i.1"
  ip -n "${T_ID}-h$i" addr add "$VIP/32" dev lo
done
ip -n "$OPS" route add "$VIP/32" via 10.231.3.2
t_agent 3

ln -s $PY "$T_TMP/fldrill-primary"   # comm "fldrill-primary": what the drill kills
ln -s $PY "$T_TMP/fldrill-replica"
t_bg "${T_ID}-h3" primary "$T_TMP/fldrill-primary" "$DRILL/kv_service.py" --role primary --listen 0.0.0.0:8080
t_bg "${T_ID}-h4" replica "$T_TMP/fldrill-replica" "$DRILL/kv_service.py" --role replica \
  --listen 0.0.0.0:8080 --primary http://10.231.3.2:8080 --lag $LAG_S
t_wait_for 10 t_listening "${T_ID}-h3" 8080 || fail "primary did not start"
t_wait_for 10 t_listening "${T_ID}-h4" 8080 || fail "replica did not start"
t_wait_for 5 ip netns exec "$OPS" curl -sf "http://$VIP:8080/health" || fail "service address not reachable"
t_bg "$OPS" failover "$DRILL/failover.sh" http://10.231.3.2:8080 http://10.231.4.2:8080 $VIP 10.231.4.2 $FAILOVER_S 60

ip netns exec "$OPS" "$FAULTLINE" -i "$FL_SOURCE_DIR/experiments/gameday-inventory.yaml" run \
  "$FL_SOURCE_DIR/experiments/primary-failover-drill.yaml" --lock "$T_TMP/lock" \
  --journal "$T_TMP/drill.json" --junit "$T_TMP/drill.xml" --html "$T_TMP/drill.html" >"$T_TMP/run.log" 2>&1
rc=$?
cat "$T_TMP/run.log"; cat "$T_TMP/failover.log"
if [ $rc -ne 0 ]; then
  $PY -c 'import json,sys; j=json.load(open(sys.argv[1])); print(json.dumps(j.get("drill"))); print(j["series"].get("write-marker", [])[:5])' "$T_TMP/drill.json"
  fail "drill exit $rc, expected 0"
fi

read -r rto rto_ok rpo rpo_ok marker acked < <($PY - "$T_TMP/drill.json" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
d = j["drill"]
print(d["rto"]["measured_ms"], d["rto"]["ok"], d["rpo"]["measured_ms"], d["rpo"]["ok"],
      d["rpo"]["surviving_marker"], d["rpo"]["last_acked_marker"])
PYEOF
)
log "RTO ${rto} ms (failover delay ${FAILOVER_S}000 ms), RPO ${rpo} ms (replication lag ${LAG_S}000 ms), surviving marker $marker of $acked"
[ "$rto_ok" = True ] && [ "$rpo_ok" = True ] || fail "drill targets not met in the journal"
within() { local got=$1 want=$2; [ "$got" -ge $(( want * 9 / 10 )) ] && [ "$got" -le $(( want * 11 / 10 )) ]; }
within "$rto" $((FAILOVER_S * 1000)) || fail "RTO $rto ms not within 10 % of ${FAILOVER_S}s"
pass "RTO $rto ms within 10 % of the ${FAILOVER_S} s failover delay"
within "$rpo" $((LAG_S * 1000)) || fail "RPO $rpo ms not within 10 % of ${LAG_S}s"
[ "$marker" -lt "$acked" ] || fail "no data loss measured (marker $marker of $acked)"
pass "RPO $rpo ms within 10 % of the ${LAG_S} s replication lag"
grep -q 'classname="drill" name="rto"' "$T_TMP/drill.xml" || fail "JUnit lacks the RTO case"
grep -q '<h2>DR drill</h2>' "$T_TMP/drill.html" || fail "HTML lacks the drill table"
pass "journal, JUnit and HTML carry the drill figures"
