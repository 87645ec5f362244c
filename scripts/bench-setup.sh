#!/usr/bin/env bash
# Install the peers the benchmark harness (tests/benchmarks, issue 6) compares netcore with:
# Docker Engine (docker.io), Podman, the CNI plugins, iperf3 and busybox-static (the tiny
# rootfs the peers' image is made of). Separate from scripts/setup.sh: CI must not install
# Docker. No service is started: a policy-rc.d refuses every start during the install, and
# the harness runs each daemon in a network namespace of its own (the host firewall stays
# untouched). Run scripts/setup.sh first.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
POLICY=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY"
    chmod +x "$POLICY"
    made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$POLICY"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    docker.io docker-compose podman containernetworking-plugins iperf3 busybox-static \
    iptables crun conmon uidmap fuse-overlayfs catatonit >/dev/null
# If a service manager did start anything anyway, stop it: dockerd on the host rewrites the
# host firewall (FORWARD policy DROP), which breaks everyone's bridge traffic.
if [ "$(ps -p 1 -o comm=)" = systemd ]; then
    systemctl disable --now docker.service docker.socket containerd.service 2>/dev/null || true
fi
for svc in docker containerd; do
    command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1 || true
done
echo "peers installed: $(dockerd --version 2>/dev/null | head -1); $(podman --version 2>/dev/null); $(ls /usr/lib/cni 2>/dev/null | tr '\n' ' ')"
