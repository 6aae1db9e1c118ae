#!/bin/bash
# A minimal failover watchdog for the drill (what keepalived or an
# orchestrator does in production): poll the primary's health; when it
# stops answering, wait DELAY seconds (detection hold-down + promotion
# time in a real system), promote the replica and move the service
# address to it. Runs where the route to the service address lives.
#
#   failover.sh PRIMARY_URL REPLICA_URL SERVICE_ADDR REPLICA_ADDR DELAY [MAX_SECONDS]
#
# Every loop is bounded: it gives up after MAX_SECONDS (default 120).
set -u
primary=$1 replica=$2 vip=$3 replica_addr=$4 delay=$5 max=${6:-120}
end=$(( $(date +%s) + max ))
while [ "$(date +%s)" -lt "$end" ]; do
  # A slow answer is not a dead primary: confirm with a longer check. A
  # killed primary refuses connections, so both checks fail at once and
  # the confirmation adds nothing to the measured RTO.
  if ! curl -sf -m 0.2 -o /dev/null "$primary/health" &&
     ! curl -sf -m 1 -o /dev/null "$primary/health"; then
    echo "$(date +%T.%N) primary down; failing over in ${delay}s"
    sleep "$delay"
    curl -sf -m 2 -X POST -o /dev/null "$replica/promote" || { echo "promote failed"; exit 1; }
    ip route replace "$vip/32" via "$replica_addr"
    echo "$(date +%T.%N) replica promoted, $vip now via $replica_addr"
    exit 0
  fi
  sleep 0.05
done
echo "primary never failed within ${max}s"
exit 2
