#!/usr/bin/env bash
#
# process-kill of a whole cgroup on cgroup v2: the host-lane case
# tests/host/test_kill_cgroup.sh in the guest, where the agent must pick
# cgroup.kill (backend asserted there) and its verify() waits for
# cgroup.events "populated 0": a 100-process tree gone and its group
# empty at the ack; a group holding a protected process refused.
. "$(dirname "$0")/../lib-vm.sh"
exec bash "$FL_SOURCE_DIR/tests/host/test_kill_cgroup.sh"
