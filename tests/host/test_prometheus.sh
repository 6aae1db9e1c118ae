#!/usr/bin/env bash
# Prometheus probes against a real Prometheus server (Debian `prometheus`),
# started on loopback in the coordinator's namespace with a temporary config
# and data dir, scraping a static metrics file the test serves from host 1.
# The steady-state probe checks the value with a tolerance; a prometheus
# guardrail breaches when the test changes the metric mid-run (exit 3).
. "$(dirname "$0")/lib.sh"
t_setup
PROM=$(command -v prometheus || true)
[ -n "$PROM" ] || skip "prometheus not installed (apt-get install prometheus)"
[ -x /usr/bin/python3 ] || skip "python3 not installed (serves the metrics file)"
t_hosts 1
t_inventory 1
t_agent 1
mkdir -p "$T_TMP/metrics" "$T_TMP/prom-data"
printf '# TYPE fl_test_value gauge\nfl_test_value 42\n' >"$T_TMP/metrics/metrics"
t_bg "${T_ID}-h1" metrics /usr/bin/python3 -m http.server --bind 10.231.1.2 9100 --directory "$T_TMP/metrics"
cat >"$T_TMP/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: fltest
    static_configs: [{targets: ["10.231.1.2:9100"]}]
YAML
t_bg "$OPS" prometheus "$PROM" --config.file="$T_TMP/prometheus.yml" \
  --storage.tsdb.path="$T_TMP/prom-data" --web.listen-address=127.0.0.1:9090
query() { ip netns exec "$OPS" curl -sf --noproxy '*' "http://127.0.0.1:9090/api/v1/query?query=fl_test_value" | grep -q "\"$1\""; }
t_wait_for 30 query 42 || fail "prometheus never scraped the metric"
pass "prometheus up on 127.0.0.1:9090 in the test namespace, scraping the test's metrics"
t_victim "flpv$$"

cat >"$T_TMP/prom.yaml" <<YAML
version: 2
title: prometheus probes
inventory: inventory.yaml
targets: {h1: {names: [h1]}}
steady-state:
  probes:
    - name: value-is-42
      prometheus: {url: "http://127.0.0.1:9090", query: fl_test_value, timeout: 2s}
      expect: {value: 42, tolerance: 0.5}
guardrails:
  - name: value-below-50
    prometheus: {url: "http://127.0.0.1:9090", query: fl_test_value}
    expect: {max-value: 50}
    interval: 250ms
method:
  - fault: {target: h1, kind: process-pause, duration: 20s, background: true, params: {name: flpv$$}}
  - wait: 15s
YAML
t_fl run "$T_TMP/prom.yaml" --lock "$T_TMP/lock" --journal "$T_TMP/j.json" >"$T_TMP/run.log" 2>&1 &
runner=$!
sleep 2
printf '# TYPE fl_test_value gauge\nfl_test_value 100\n' >"$T_TMP/metrics/metrics"
wait $runner; rc=$?
cat "$T_TMP/run.log"
[ $rc -eq 3 ] || fail "exit $rc, expected 3 (guardrail breach)"
grep -q "before: probe value-is-42 ok (value 42" "$T_TMP/run.log" || fail "steady-state prometheus probe did not hold"
grep -q "value 100 above max 50" "$T_TMP/run.log" || fail "guardrail did not see the new value"
pass "prometheus probe held at 42 +- 0.5; guardrail breached when the metric went to 100"
