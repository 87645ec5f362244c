"""A container's own root and its containment, from inside containers run through the CLI
(root, real namespaces; images made from directories, see dirimages.py)."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest

from cli_engine import Engine
from dirimages import add_image, busybox_rootfs, daemon_argv

pytestmark = pytest.mark.root

DEFAULT_CAPS_HEX = "00000000a80425fb"  # Docker's default set


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """An engine whose images are: ``bb`` (busybox), ``cfg`` (busybox with a config),
    ``noshell`` (one static binary, a shell-form entrypoint), ``two`` (a layer over bb)."""
    tmp = tmp_path_factory.mktemp("containment")
    images = tmp / "images"
    images.mkdir()
    bb = busybox_rootfs(tmp / "bb-layer")
    (bb / "etc" / "motd").write_text("from the image\n")
    add_image(images, "bb", [bb])
    add_image(images, "cfg", [bb], {"Entrypoint": ["echo", "ep"], "Cmd": ["c1"], "Env": ["FROM_IMAGE=yes", "PATH=/bin"],
                                    "WorkingDir": "/srv/app", "User": "app", "ExposedPorts": {"8080/tcp": {}}})
    server = tmp / "noshell-layer"
    server.mkdir()
    (server / "busybox").write_bytes((bb / "bin" / "busybox").read_bytes())  # static: runs without a shell or libc
    os.chmod(server / "busybox", 0o755)
    (server / "data").write_text("not a program\n")
    add_image(images, "noshell", [server], {"Entrypoint": ["/bin/sh", "-c", "./server"]})
    top = tmp / "two-layer"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "motd").write_text("from the top layer\n")
    add_image(images, "two", [bb, top])
    (tmp / "eng").mkdir()
    eng = Engine(tmp / "eng", daemon_cmd=daemon_argv(images)).start()
    eng.layers = {"bb": bb, "top": top}
    yield eng
    eng.stop()


def run(lab: Engine, *args: str, check: bool = True):
    return lab("run", "--rm", "--network", "none", *args, check=check)


def out(lab: Engine, *args: str) -> str:
    return run(lab, *args).stdout


# ---------------------------------------------------------------- the container's own root --

def test_image_root_is_the_image(lab):
    assert out(lab, "bb", "cat", "/etc/motd") == "from the image\n"
    assert out(lab, "two", "cat", "/etc/motd") == "from the top layer\n"  # upper layers win
    assert out(lab, "bb", "readlink", "/proc/1/exe") == "/bin/busybox\n"


def test_writes_stay_in_the_container(lab):
    marker = f"/etc/nct-{random.randbytes(4).hex()}"
    res = run(lab, "bb", "sh", "-c", f"echo x > {marker} && echo changed > /etc/motd && cat {marker} /etc/motd")
    assert res.stdout == "x\nchanged\n"
    assert not os.path.exists(marker)  # not on the host
    assert (lab.layers["bb"] / "etc" / "motd").read_text() == "from the image\n"  # not in the image
    assert not (lab.layers["bb"] / marker.lstrip("/")).exists()
    assert out(lab, "bb", "cat", "/etc/motd") == "from the image\n"  # a new container starts from the image


def test_rm_removes_the_containers_changes(lab):
    name = f"nct{random.randbytes(3).hex()}"
    lab("run", "--name", name, "--network", "none", "bb", "sh", "-c", "echo kept > /kept")
    cid = lab.json("inspect", name)[0]["Id"]
    state = Path(lab.root) / "containers" / cid
    for _ in range(200):
        if (state / "exit_code").exists():
            break
        time.sleep(0.05)
    assert (state / "upper" / "kept").read_text() == "kept\n"
    lab("rm", name)
    assert not state.exists()


def test_no_overlay_mount_on_the_host(lab):
    name = f"nct{random.randbytes(3).hex()}"
    lab("run", "-d", "--name", name, "--network", "none", "bb", "sleep", "30")
    try:
        cid = lab.json("inspect", name)[0]["Id"]
        with open("/proc/self/mountinfo") as f:
            assert cid not in f.read()  # the overlay lives in the container's mount namespace only
        pid = lab.json("inspect", name)[0]["State"]["Pid"]
        with open(f"/proc/{pid}/mountinfo") as f:
            assert any(" / " in line and "overlay" in line for line in f)
    finally:
        lab("rm", "-f", name)


def test_proc_sys_dev(lab):
    res = out(lab, "bb", "sh", "-c", "ls /dev; echo ==; ls /sys/class/net; echo ==; cat /proc/timer_list 2>/dev/null | wc -c")
    dev, net, timer = res.split("==\n")
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"} <= set(dev.split())
    assert not {"sda", "vda", "kmsg", "mem", "port"} & set(dev.split())
    assert net.split() == ["lo"]  # the container's own netns, not the host's links
    assert timer.strip() == "0"  # masked


def test_sys_class_net_is_the_containers_own(lab):
    res = lab("run", "--rm", "bb", "ls", "/sys/class/net")
    assert sorted(res.stdout.split()) == ["eth0", "lo"]


# ---------------------------------------------------------------- containment --------------------

def test_capabilities_seccomp_no_new_privs(lab):
    status = out(lab, "bb", "cat", "/proc/self/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapEff"].strip() == DEFAULT_CAPS_HEX
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    status = out(lab, "--privileged", "bb", "cat", "/proc/self/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Seccomp"].strip() == "0" and fields["CapEff"].strip() != DEFAULT_CAPS_HEX


def test_ip_link_add_refused_unless_net_admin(lab):
    res = lab("run", "--rm", "--", "ip", "link", "add", "nctd0", "type", "veth", "peer", "name", "nctd1", check=False)
    assert res.returncode != 0 and "Operation not permitted" in res.stdout + res.stderr
    res = lab("run", "--rm", "--cap-add", "NET_ADMIN", "--", "sh", "-c",
              "ip link add nctd0 type veth peer name nctd1 && ip -o link show nctd0")
    assert "nctd0" in res.stdout
    res = lab("run", "--rm", "--cap-drop", "ALL", "--cap-add", "net_admin", "--", "sh", "-c", "grep CapEff /proc/self/status")
    assert res.stdout.split()[-1] == "0000000000001000"
    bad = lab("run", "--rm", "--cap-add", "NOT_A_CAP", "--", "true", check=False)
    assert bad.returncode == 125 and bad.stderr.strip().count("\n") == 0 and "invalid capability" in bad.stderr


def test_mount_refused_unless_privileged(lab):
    res = run(lab, "bb", "mount", "-t", "tmpfs", "x", "/tmp", check=False)
    assert res.returncode != 0 and "permission denied" in (res.stdout + res.stderr).lower()
    assert run(lab, "--privileged", "bb", "sh", "-c", "mkdir -p /m && mount -t tmpfs x /m && echo mounted").stdout == "mounted\n"


def test_sys_class_net_mtu_read_only(lab):
    res = lab("run", "--rm", "bb", "sh", "-c", "echo 1280 > /sys/class/net/eth0/mtu", check=False)
    assert res.returncode != 0 and "Read-only file system" in res.stdout + res.stderr
    # positive control: privileged has a writable /sys, and it is the container's own eth0 that changes
    res = lab("run", "--rm", "--privileged", "bb", "sh", "-c",
              "echo 1280 > /sys/class/net/eth0/mtu && cat /sys/class/net/eth0/mtu")
    assert res.stdout == "1280\n"


def test_proc_sys_read_only(lab):
    res = run(lab, "bb", "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward", check=False)
    assert res.returncode != 0 and "Read-only file system" in res.stdout + res.stderr
    assert run(lab, "--privileged", "bb", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && echo ok").stdout == "ok\n"


def test_engine_socket_and_root_absent(lab):
    sock_dir = os.path.dirname(lab.socket)
    res = run(lab, "--", "sh", "-c", f"test -e {lab.socket} && echo socket; test -e {lab.root}/netcore.db && echo db; echo done")
    assert res.stdout == "done\n"
    res = run(lab, "-v", f"{sock_dir}:{sock_dir}", "--", "sh", "-c", f"test -S {lab.socket} && echo socket")
    assert res.stdout == "socket\n"  # positive control: mounted on purpose


def test_host_image_root_read_only(lab, tmp_path):
    res = run(lab, "--", "sh", "-c", "touch /usr/nct-x 2>/dev/null; echo $?; touch /tmp/nct-x && echo tmp-ok", check=False)
    first, second = res.stdout.split("\n")[:2]
    assert first != "0" and second == "tmp-ok"
    assert not os.path.exists("/usr/nct-x") and not os.path.exists("/tmp/nct-x")


# ---------------------------------------------------------------- mounts ------------------------

def test_bind_mounts_rw_ro(lab, tmp_path):
    d = tmp_path / "share"
    d.mkdir()
    (d / "in").write_text("from host\n")
    res = run(lab, "-v", f"{d}:/src", "-w", "/src", "bb", "sh", "-c", "cat in && echo from container > out && pwd")
    assert res.stdout == "from host\n/src\n"
    assert (d / "out").read_text() == "from container\n"
    res = run(lab, "-v", f"{d}:/src:ro", "bb", "sh", "-c", "touch /src/x", check=False)
    assert res.returncode != 0 and not (d / "x").exists()
    res = run(lab, "--mount", f"type=bind,source={d},target=/m,readonly", "bb", "cat", "/m/in")
    assert res.stdout == "from host\n"
    res = run(lab, "--mount", f"type=bind,source={d},target=/m", "bb", "sh", "-c", "echo again > /m/out2")
    assert (d / "out2").read_text() == "again\n"


def test_bad_volumes_refused_with_one_line(lab, tmp_path):
    for spec, text in [("rel/dir:/x", "use absolute path"), ("./dir:/x", "use absolute path"),
                       (f"{tmp_path}/missing:/x", "bind source path does not exist")]:
        res = run(lab, "-v", spec, "bb", "true", check=False)
        assert res.returncode == 125, spec
        assert text in res.stderr and res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
    assert lab("ps", "-a", "-q").stdout.strip() == ""  # nothing left behind


def test_read_only_and_tmpfs(lab):
    res = run(lab, "--read-only", "--tmpfs", "/scratch:size=1m", "bb", "sh", "-c",
              "touch /x 2>/dev/null || echo ro; echo hi > /scratch/f && cat /scratch/f; echo ok > /etc/hosts && echo hosts-rw;"
              " df -k /scratch | tail -1")
    lines = res.stdout.splitlines()
    assert lines[:3] == ["ro", "hi", "hosts-rw"]
    assert lines[3].split()[1] == "1024"  # 1m
    res = run(lab, "--tmpfs", "/scratch:ro", "bb", "sh", "-c", "touch /scratch/x", check=False)
    assert res.returncode != 0


# ---------------------------------------------------------------- image config, -u, -w, --entrypoint

def test_entrypoint_cmd_env_workdir_user(lab):
    assert out(lab, "cfg") == "ep c1\n"
    assert out(lab, "cfg", "x", "y") == "ep x y\n"
    assert out(lab, "--entrypoint", "/bin/pwd", "cfg") == "/srv/app\n"  # WorkingDir made if missing; Cmd dropped
    env = out(lab, "--entrypoint", "env", "-e", "A=b", "cfg").splitlines()
    assert {"FROM_IMAGE=yes", "A=b", "PATH=/bin", "HOME=/home/app"} <= set(env)
    uid, gid, groups = out(lab, "--entrypoint", "id", "cfg").split()
    assert (uid, gid, set(groups.removeprefix("groups=").split(","))) == ("uid=1000(app)", "gid=1000(app)", {"1000(app)", "29(audio)"})
    assert out(lab, "--entrypoint", "id", "-u", "0", "-w", "/tmp", "cfg").startswith("uid=0(root)")
    assert out(lab, "-u", "nobody", "bb", "id", "-u") == "65534\n"
    assert out(lab, "-u", "4321:29", "bb", "id") .startswith("uid=4321 gid=29(audio)")
    bad = run(lab, "-u", "nosuchuser", "bb", "true", check=False)
    assert bad.returncode == 125 and "unable to find user nosuchuser" in bad.stderr


def test_shell_form_without_a_shell_fails_like_docker(lab):
    res = run(lab, "noshell", check=False)
    assert res.returncode == 127
    assert 'exec: "/bin/sh": stat /bin/sh: no such file or directory' in res.stderr
    assert res.stderr.strip().count("\n") == 0
    assert out(lab, "--entrypoint", "./busybox", "noshell", "echo", "exec form") == "exec form\n"
    res = run(lab, "--entrypoint", "/data", "noshell", check=False)
    assert res.returncode == 126 and "permission denied" in res.stderr
    res = run(lab, "bb", "no-such-command", check=False)
    assert res.returncode == 127 and 'exec: "no-such-command": executable file not found in $PATH' in res.stderr
    res = run(lab, "no-such-image", check=False)
    assert res.returncode == 125 and "No such image: no-such-image" in res.stderr


def test_inspect_shows_image_mounts_and_user(lab, tmp_path):
    name = f"nct{random.randbytes(3).hex()}"
    lab("run", "-d", "--name", name, "--network", "none", "-v", f"{tmp_path}:/data:ro", "-u", "app", "bb", "sleep", "30")
    try:
        view = lab.json("inspect", name)[0]
        assert view["Config"]["Image"] == "bb" and view["Config"]["User"] == "app"
        assert view["Mounts"][0]["Source"] == str(tmp_path) and view["Mounts"][0]["RW"] is False
        assert json.dumps(view)  # serialisable
    finally:
        lab("rm", "-f", name)


def test_exec_runs_as_pid_1_does(lab):
    """exec'd processes get the container's user, capabilities, no_new_privs and seccomp,
    in an image without /usr/bin/env."""
    name = f"nct{random.randbytes(3).hex()}"
    lab("run", "-d", "--name", name, "--network", "none", "-u", "app", "-e", "X=1", "bb", "sleep", "30")
    try:
        res = lab("exec", "-e", "Y=2", name, "sh", "-c", "id -u; echo $X$Y; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status")
        lines = res.stdout.split()
        assert lines[:2] == ["1000", "12"]
        assert lines[2:] == ["CapEff:", "0000000000000000", "NoNewPrivs:", "1", "Seccomp:", "2"]  # non-root: no capabilities
    finally:
        lab("rm", "-f", name)
    lab("run", "-d", "--name", name, "--network", "none", "--cap-add", "NET_ADMIN", "bb", "sleep", "30")
    try:
        res = lab("exec", name, "grep", "-E", "^(CapEff|CapBnd):", "/proc/self/status")
        assert res.stdout.split() == ["CapEff:", "00000000a80435fb", "CapBnd:", "00000000a80435fb"]
        res = lab("exec", name, "mount", "-t", "tmpfs", "x", "/tmp", check=False)
        assert res.returncode != 0
    finally:
        lab("rm", "-f", name)


def test_publish_all_takes_the_images_exposed_ports(lab):
    name = f"nct{random.randbytes(3).hex()}"
    lab("run", "-d", "--name", name, "-P", "--entrypoint", "sleep", "cfg", "30")
    try:
        ports = lab.json("inspect", name)[0]["NetworkSettings"]["Ports"]
        assert ports["8080/tcp"] and int(ports["8080/tcp"][0]["HostPort"]) > 0
    finally:
        lab("rm", "-f", name)
