# faultline-agent %postun ($1: 0 erase, 1 upgrade). On upgrade restart a
# running agent so the new binary takes over (stopping reverts its faults).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart faultline-agent.service >/dev/null 2>&1 || :
    fi
fi
