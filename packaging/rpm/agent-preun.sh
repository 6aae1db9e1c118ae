# faultline-agent %preun ($1: 0 erase, 1 upgrade). On erase stop the agent
# (SIGTERM reverts every fault, ExecStopPost runs --recover) and revert what
# a crashed or hand-started agent left in the journal.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl --no-reload disable --now faultline-agent.service >/dev/null 2>&1 || :
    fi
    /usr/sbin/faultline-agent --recover --config /etc/faultline/agent.yaml || :
fi
