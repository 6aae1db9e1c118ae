#!/usr/bin/env bash
# guardrail_reaction.sh: breach -> last fault reverted, across N agents
# (default 20), ROUNDS runs (default 10). Each run: a background
# process-pause on every agent (one victim each), then a pause of the web
# server the guardrail watches (interval 250 ms, timeout 100 ms); the
# breach aborts everything. Prints median and p99 of
#   detect    : breach detected -> every agent confirmed the ABORT
#   sample    : start of the failing sample -> every agent confirmed
# Needs root (namespaces) and a build: FL_BUILD_DIR (default build/dev).
#   sudo bench/guardrail_reaction.sh [AGENTS] [ROUNDS]
N=${1:-20}; ROUNDS=${2:-10}
. "$(dirname "$0")/../tests/host/lib.sh"
t_setup
t_hosts "$N"; t_inventory "$N"
for i in $(seq 1 "$N"); do t_agent "$i"; done
cp "$HTTPD" "$T_TMP/flbw$$"
t_bg "${T_ID}-h1" web "$T_TMP/flbw$$" 10.231.1.2 8080
t_wait_for 10 t_listening "${T_ID}-h1" 8080 || fail "web server did not start"
{
  echo "version: 2"; echo "title: guardrail reaction bench"; echo "inventory: inventory.yaml"
  echo "targets:"; for i in $(seq 1 "$N"); do echo "  h$i: {names: [h$i]}"; done
  echo "guardrails:"
  echo "  - {name: web, http: {url: 'http://10.231.1.2:8080/', timeout: 100ms}, interval: 250ms}"
  echo "method:"; echo "  - parallel:"
  for i in $(seq 1 "$N"); do
    t_victim "flbv$i-$$" >/dev/null
    echo "      - fault: {target: h$i, kind: process-pause, duration: 30s, background: true, params: {name: flbv$i-$$}}"
  done
  echo "  - wait: 500ms"
  echo "  - fault: {target: h1, kind: process-pause, duration: 5s, params: {name: flbw$$}}"
  echo "  - wait: 10s"
} >"$T_TMP/bench.yaml"
for r in $(seq 1 "$ROUNDS"); do
  t_fl run "$T_TMP/bench.yaml" --no-lock --journal "$T_TMP/j$r.json" >/dev/null 2>&1
  [ $? -eq 3 ] || fail "round $r did not abort"
done
/usr/bin/python3 - "$N" "$T_TMP"/j*.json <<'PY'
import json, sys, statistics
n = int(sys.argv[1]); d, s, cnt = [], [], []
for f in sys.argv[2:]:
    b = json.load(open(f))["breach"]
    d.append(b["detect_to_reverted_ms"]); s.append(b["sample_to_reverted_ms"]); cnt.append(b["faults_reverted"])
def p99(v): v = sorted(v); return v[min(len(v) - 1, int(len(v) * 0.99))]
print("guardrail_reaction: %d agents, %d runs, %d-%d faults reverted per abort" % (n, len(d), min(cnt), max(cnt)))
print("  breach detected -> all reverted: median %.1f ms, p99 %.1f ms" % (statistics.median(d), p99(d)))
print("  failing sample started -> all reverted: median %.1f ms, p99 %.1f ms (interval 250 ms, probe timeout 100 ms)" % (statistics.median(s), p99(s)))
PY
