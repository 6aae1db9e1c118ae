#!/usr/bin/env bash
# Mutual TLS end to end: agents on tls+tcp:// with a per-test fleet PKI made by
# `faultline pki`; a fault applied and reverted through TLS, audited with the
# coordinator certificate's name. Then every way a peer must be refused —
# no certificate, another CA, expired, wrong agent name, coordinator not in
# allowed-subjects, an agent's certificate used as a coordinator's — each
# refused with nothing applied. Then the plain-tcp rules: refused off
# loopback, allowed on loopback, allowed with --insecure (and a warning).
T_TLS=1
. "$(dirname "$0")/lib.sh"
t_setup
t_hosts 2
t_inventory 2
[ -x "$TLS_PROBE" ] || fail "fl-tls-probe not built"
PKI=$T_PKI

# Files are 0600, keys EC P-256, SAN = name, EKU per role.
for f in ca.crt ca.key coordinator.crt coordinator.key h1.crt h1.key h2.crt h2.key; do
  [ "$(stat -c %a "$PKI/$f")" = 600 ] || fail "$f is mode $(stat -c %a "$PKI/$f"), want 600"
done
pass "pki files are 0600"
if command -v openssl >/dev/null; then  # inspection only; faultline never runs it
  txt=$(openssl x509 -in "$PKI/h1.crt" -noout -text)
  echo "$txt" | grep -q "DNS:h1" || fail "h1.crt has no DNS SAN h1"
  echo "$txt" | grep -q "prime256v1\|P-256" || fail "h1.crt key is not P-256"
  echo "$txt" | grep -q "TLS Web Server Authentication" || fail "h1.crt lacks serverAuth"
  openssl x509 -in "$PKI/coordinator.crt" -noout -text | grep -q "TLS Web Client Authentication" \
    || fail "coordinator.crt lacks clientAuth"
  pass "certificates: SAN, P-256, EKU per role"
fi
out=$("$FAULTLINE" pki init "$PKI" 2>&1) && fail "pki init over an existing CA succeeded: $out"
pass "pki init refuses to overwrite a CA"

# h2 only serves the coordinator named "coordinator", and audits to a file.
cat >"$T_TMP/agent2.yaml" <<EOF
tls:
  allowed-subjects: [coordinator]
audit-log: true
EOF
t_agent 1
t_agent 2 --config "$T_TMP/agent2.yaml"
grep -q 'TLS: certificate "h1"' "$T_TMP/agent1.log" || fail "agent 1 did not report its certificate"

# --- the happy path ----------------------------------------------------------
out=$(t_fl agents 2>&1) || fail "agents over TLS: $out"
echo "$out"
[ "$(echo "$out" | grep -c ' ok ')" = 2 ] || fail "both agents should answer over TLS"
pass "coordinator reaches both agents over tls+tcp://"

t_victim "fltls$$"; victim=$T_LAST_PID
t_bg "$OPS" pause "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h2 process-pause pid=$victim --duration 2s
t_wait_for 5 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" = T ]" || fail "victim not paused over TLS"
t_wait_for 6 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" != T ]" || fail "victim not resumed"
pass "fault applied and reverted over TLS"
# The TTL revert is the agent's own doing.
t_wait_for 3 grep -q 'AUDIT who="agent" action=revert kind=process-pause .*result=ok detail="duration-elapsed"' \
  "$T_TMP/agent2.log" || fail "no audit line for the revert"
grep -q 'AUDIT who="coordinator" action=apply kind=process-pause id=f-.* result=ok' "$T_TMP/agent2.log" \
  || fail "no audit line for the apply"
grep -q '"who":"coordinator","action":"apply","kind":"process-pause"' "$T_TMP/state2/audit.log" \
  || fail "audit.log lacks the apply: $(cat "$T_TMP/state2/audit.log")"
[ "$(stat -c %a "$T_TMP/state2/audit.log")" = 600 ] || fail "audit.log is not 0600"
pass "apply and revert audited with the certificate's name (log and audit.log)"

status0() { t_fl status 2>&1 | grep -q "^0 active fault(s) on 2 agent"; }

# --- refusals: each one applies nothing ----------------------------------------
# expect_refused LABEL REGEX CMD...: CMD fails, its output matches REGEX.
expect_refused() {
  local label=$1 re=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  [ $rc -ne 0 ] || fail "$label: accepted (rc 0): $out"
  echo "$out" | grep -Eq "$re" || fail "$label: unexpected output (rc $rc): $out"
  status0 || fail "$label: something was applied: $(t_fl status 2>&1)"
  pass "$label refused (rc $rc): $(echo "$out" | grep -Eo "$re" | head -1)"
}
inject_as() {  # inject_as CERTDIR-ARGS... -- TARGET: an inject with another identity
  ip netns exec "$OPS" "$FAULTLINE" -t 2s -i "$T_TMP/inventory.yaml" "$@" \
    inject h1 process-kill name=flnone --duration 5s
}

# No certificate at all (nng's own TLS client, CA only).
expect_refused "client without a certificate" "dial: |no-reply" \
  ip netns exec "$OPS" "$TLS_PROBE" tls+tcp://10.231.1.2:7070 h1 "$PKI/ca.crt"
t_wait_for 3 grep -q "TLS handshake refused" "$T_TMP/agent1.log" || fail "agent did not log the refusal"
# A sanity check of the probe itself: with the right certificate it gets in.
out=$(ip netns exec "$OPS" "$TLS_PROBE" tls+tcp://10.231.1.2:7070 h1 "$PKI/ca.crt" \
  "$PKI/coordinator.crt" "$PKI/coordinator.key") || fail "probe with a good certificate: $out"
echo "$out" | grep -q "status=ok" || fail "probe: $out"

# A certificate from another CA.
"$FAULTLINE" pki init "$T_TMP/rogue" >/dev/null
"$FAULTLINE" pki issue "$T_TMP/rogue" coordinator --coordinator >/dev/null
expect_refused "coordinator certificate from another CA" "TLS handshake failed" \
  inject_as --tls-ca "$PKI/ca.crt" --tls-cert "$T_TMP/rogue/coordinator.crt" --tls-key "$T_TMP/rogue/coordinator.key"

# An expired certificate from the right CA.
"$FAULTLINE" pki issue "$PKI" old --coordinator --expired >/dev/null
expect_refused "expired coordinator certificate" "TLS handshake failed" \
  inject_as --tls-cert "$PKI/old.crt" --tls-key "$PKI/old.key"
t_wait_for 3 grep -q "client certificate rejected: The certificate validity has expired" "$T_TMP/agent1.log" \
  || fail "agent did not say the certificate expired"

# An agent's certificate used to drive another agent (serverAuth only).
expect_refused "agent certificate used as a coordinator's" "TLS handshake failed" \
  inject_as --tls-cert "$PKI/h2.crt" --tls-key "$PKI/h2.key"

# The agent's certificate does not carry the inventory name.
sed 's/name: h1/name: h9/' "$T_TMP/inventory.yaml" >"$T_TMP/wrong-name.yaml"
expect_refused "agent whose certificate does not match its inventory name" \
  "does not match with the expected CN" \
  ip netns exec "$OPS" "$FAULTLINE" -t 2s -i "$T_TMP/wrong-name.yaml" inject h9 process-kill \
    name=flnone --duration 5s

# A valid coordinator certificate that h2 does not list in allowed-subjects:
# the handshake succeeds, every request is refused, even HELLO.
"$FAULTLINE" pki issue "$PKI" intern --coordinator >/dev/null
expect_refused "coordinator not in allowed-subjects" 'certificate "intern" is not in this agent' \
  ip netns exec "$OPS" "$FAULTLINE" -t 2s -i "$T_TMP/inventory.yaml" --tls-cert "$PKI/intern.crt" \
    --tls-key "$PKI/intern.key" inject h2 process-kill name=flnone --duration 5s
out=$(ip netns exec "$OPS" "$FAULTLINE" -i "$T_TMP/inventory.yaml" --tls-cert "$PKI/intern.crt" \
  --tls-key "$PKI/intern.key" agents 2>&1); echo "$out" | grep -q "h2 .*DOWN.*is not in this agent" \
  || fail "HELLO from intern should be refused by h2: $out"
echo "$out" | grep -q "h1 .* ok " || fail "h1 has no allowed-subjects and should serve intern: $out"
grep -q 'AUDIT who="intern" action=apply .*result=refused' "$T_TMP/agent2.log" || fail "refusal not audited"
pass "refusals audited with the refused certificate's name"

# A private key readable by others is refused before anything connects.
cp "$PKI/coordinator.key" "$T_TMP/loose.key"; chmod 644 "$T_TMP/loose.key"
out=$(t_fl --tls-key "$T_TMP/loose.key" agents 2>&1) && fail "world-readable key accepted"
echo "$out" | grep -q "readable by group or others" || fail "loose key: $out"
pass "world-readable private key refused"

# --- plain tcp rules -------------------------------------------------------------
mkdir -p "$T_TMP/st9"
out=$(ip netns exec "${T_ID}-h1" env -u FAULTLINE_AGENT_INSECURE "$AGENT" --foreground \
  --listen tcp://10.231.1.2:7071 --state-dir "$T_TMP/st9" 2>&1); rc=$?
[ $rc = 2 ] || fail "plain tcp off loopback: exit $rc, want 2: $out"
echo "$out" | grep -q "refusing to listen on tcp://10.231.1.2:7071 without TLS" || fail "message: $out"
pass "plain tcp:// off loopback refused (exit 2)"

out=$(ip netns exec "${T_ID}-h1" env -u FAULTLINE_AGENT_INSECURE "$AGENT" --foreground \
  --listen tls+tcp://10.231.1.2:7071 --state-dir "$T_TMP/st9" 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "needs tls.ca, tls.cert and tls.key" || fail "tls without files: $rc $out"
pass "tls+tcp:// without certificate files refused (exit 2)"

t_bg "${T_ID}-h1" loop env -u FAULTLINE_AGENT_INSECURE "$AGENT" --foreground \
  --listen tcp://127.0.0.1:7072 --state-dir "$T_TMP/st9"
t_wait_for 5 t_listening "${T_ID}-h1" 7072 || fail "loopback tcp refused: $(cat "$T_TMP/loop.log")"
grep -q INSECURE "$T_TMP/loop.log" && fail "loopback should not warn"
pass "plain tcp:// on loopback allowed without a warning"

mkdir -p "$T_TMP/st8"
t_bg "${T_ID}-h1" insecure env -u FAULTLINE_AGENT_INSECURE "$AGENT" --foreground --insecure \
  --listen tcp://10.231.1.2:7073 --state-dir "$T_TMP/st8"
t_wait_for 5 t_listening "${T_ID}-h1" 7073 || fail "--insecure agent did not listen: $(cat "$T_TMP/insecure.log")"
grep -q "INSECURE: listening on tcp://10.231.1.2:7073 without TLS" "$T_TMP/insecure.log" \
  || fail "no insecure warning: $(cat "$T_TMP/insecure.log")"
cat >"$T_TMP/insecure-inv.yaml" <<EOF
agents:
  - name: plain
    address: tcp://10.231.1.2:7073
EOF
out=$(ip netns exec "$OPS" "$FAULTLINE" -i "$T_TMP/insecure-inv.yaml" inject plain process-kill \
  name=flnone --duration 1s 2>&1)
t_wait_for 3 grep -q 'AUDIT who="insecure:10.231.1.1:[0-9]*" action=apply' "$T_TMP/insecure.log" \
  || fail "insecure request not audited with the peer address: $(grep AUDIT "$T_TMP/insecure.log")"
pass "--insecure: plain tcp:// served, warned at start, audited as insecure:<peer>"
