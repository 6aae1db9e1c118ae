# faultline-agent %post ($1: 1 install, 2 upgrade). The state directory is
# in %files (%dir 0700); this repairs its mode if an administrator changed
# it. A fresh install neither enables nor starts the agent: configure
# /etc/faultline/agent.yaml first, then systemctl enable --now faultline-agent.
chmod 0700 /var/lib/faultline 2>/dev/null || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
