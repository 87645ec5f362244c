#!/usr/bin/env bash
# Set up netcore on a fresh Debian 12 host (as root): the system packages it drives,
# a venv with netcore (editable), its test tools and the test driver package.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v nft >/dev/null || ! command -v ping >/dev/null || ! command -v nsenter >/dev/null || ! command -v etcd >/dev/null || ! command -v bird >/dev/null \
    || ! command -v bwrap >/dev/null || [ ! -e /usr/share/containers/seccomp.json ] || ! command -v dockerd >/dev/null \
    || ! command -v podman >/dev/null || ! command -v go >/dev/null || [ ! -x /bin/busybox ] || ! command -v runc >/dev/null \
    || [ ! -x /usr/lib/cni/bridge ] || ! command -v ps >/dev/null; then
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends \
    iproute2 nftables util-linux iputils-ping tcpdump python3-venv etcd-server bird2 procps >/dev/null  # procps: ps, for `top`
# containers: bubblewrap runs them, containers-common's seccomp.json is Docker's default profile,
# libseccomp compiles it (pyseccomp), gcc builds the static user-switch helper, busybox-static
# makes the tests' small image
apt-get install -y -qq --no-install-recommends \
    bubblewrap libseccomp2 golang-github-containers-common busybox-static gcc libc6-dev >/dev/null
# Docker Engine for the tests of netcore's Docker plugins (tests/docker_host.py runs dockerd in a
# netns of its own; its image is made from busybox-static, above), and podman for the image
# archive interop tests (private storage, no network) and the CNI tests (tests/podman_host.py: podman
# 4.3 with its CNI backend and runc in a netns of its own, on netcore-cni; containernetworking-plugins
# is also the CNI benchmark's baseline). No service may start on the host: dockerd
# there sets the FORWARD policy to DROP and breaks everyone's bridges. A policy-rc.d refuses every
# start during the install; if a service manager started one anyway, it is stopped and disabled.
if ! command -v dockerd >/dev/null || [ ! -x /usr/bin/docker ] || ! command -v podman >/dev/null || ! command -v runc >/dev/null \
    || [ ! -x /usr/lib/cni/bridge ] || ! command -v ps >/dev/null; then
    POLICY=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$POLICY"
        chmod +x "$POLICY"
        made_policy=1
    fi
    apt-get install -y -qq --no-install-recommends docker.io iptables podman runc containernetworking-plugins >/dev/null
    [ "$made_policy" = 1 ] && rm -f "$POLICY"
    if [ "$(ps -p 1 -o comm=)" = systemd ]; then
        systemctl disable --now docker.service docker.socket containerd.service 2>/dev/null || true
    fi
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
# compat mode: a plain path entry; the default editable finder costs the CLI ~15 ms at start
.venv/bin/pip install -q -e '.[test]' --config-settings editable_mode=compat
mkdir -p .venv/libexec
gcc -static -Os -o .venv/libexec/netcore-setuser runtime/engine/helpers/setuser.c
# the CNI plugin podman and other CNI runtimes exec per operation: a static forwarder to the engine,
# next to the netcore command (after pip, which removes the console script an older install put there)
gcc -static -Os -Wall -o .venv/bin/netcore-cni runtime/cni/netcore-cni.c
if [ -d tests/plugins/netcore-dummy-driver ]; then
    .venv/bin/pip install -q -e tests/plugins/netcore-dummy-driver --config-settings editable_mode=compat
fi
# netcore build's tests and benchmark: the book's Go server (golang-go), a busybox image for RUN (busybox-static)
command -v go >/dev/null && [ -x /bin/busybox ] || apt-get install -y -qq --no-install-recommends golang-go busybox-static >/dev/null
