"""Pure parts of a container's configuration: mount specs, capabilities, the image's config
rules, seccomp rule selection, users from /etc/passwd, and the root as overlayfs will show it."""

from __future__ import annotations

import os

import pytest

from runtime import mountspec
from runtime.engine import launch, seccomp
from runtime.engine.containers import _apply_image
from runtime.engine.rootfs import HOST_IMAGE, ExecError, Image, RootView, find_command, resolve_user


@pytest.mark.parametrize(("spec", "expected"), [
    ("/h:/c", {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": False}),
    ("/h:/c:ro", {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True}),
    ("/h:/c:rw", {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": False}),
    ("data:/c", {"Type": "volume", "Source": "data", "Target": "/c", "ReadOnly": False}),
    ("/c", {"Type": "volume", "Source": "", "Target": "/c", "ReadOnly": False}),
    ("rel/dir:/c", {"Type": "bind", "Source": "rel/dir", "Target": "/c", "ReadOnly": False}),  # refused by the engine
    ("./x:/c", {"Type": "bind", "Source": "./x", "Target": "/c", "ReadOnly": False}),
])
def test_volume_specs(spec, expected):
    assert mountspec.parse_volume(spec) == expected


@pytest.mark.parametrize("spec", ["", "/a:/b:ro:x", "/a::/b", "/a:/b:nope"])
def test_bad_volume_specs(spec):
    with pytest.raises(mountspec.MountSpecError):
        mountspec.parse_volume(spec)


def test_mount_and_tmpfs_specs():
    assert mountspec.parse_mount("type=bind,source=/h,target=/c,readonly") == \
        {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True}
    assert mountspec.parse_mount("type=bind,src=/h,dst=/c,readonly=false")["ReadOnly"] is False
    assert mountspec.parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700")["TmpfsOptions"] == \
        {"SizeBytes": 1 << 20, "Mode": 0o700}
    assert mountspec.parse_tmpfs("/run:size=64m,mode=1777,ro") == {
        "Type": "tmpfs", "Source": "", "Target": "/run", "ReadOnly": True, "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1777}}
    for bad, text in [("type=bind,target=/c", "source is required"), ("type=nfs,target=/c", "invalid mount type"),
                      ("type=bind,source=/h", "target is required"), ("type=bind,source=/h,target=/c,tmpfs-size=1m", "cannot mix"),
                      ("type=bind,source=/h,target=/c,colour=red", "unexpected key")]:
        with pytest.raises(mountspec.MountSpecError, match=text):
            mountspec.parse_mount(bad)
    with pytest.raises(mountspec.MountSpecError, match="must be absolute"):
        mountspec.parse_tmpfs("run")
    with pytest.raises(mountspec.MountSpecError, match="unsupported tmpfs option"):
        mountspec.parse_tmpfs("/run:exec")
    assert mountspec.parse_size("1.5k") == 1536


def test_capabilities_follow_dockers_rules():
    assert launch.capabilities() == launch.DEFAULT_CAPS
    assert "CAP_NET_ADMIN" in launch.capabilities(add=["net_admin"])
    assert "CAP_NET_RAW" not in launch.capabilities(drop=["NET_RAW"])
    assert launch.capabilities(add=["NET_ADMIN"], drop=["ALL"]) == {"CAP_NET_ADMIN"}
    assert launch.capabilities(add=["ALL"]) == launch.ALL_CAPS
    assert launch.capabilities(privileged=True) == launch.ALL_CAPS
    with pytest.raises(ValueError, match="invalid capability: FLY"):
        launch.capabilities(add=["FLY"])


def test_seccomp_rules_follow_capabilities():
    gated = {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
    denied = {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
    other_arch = {"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}
    assert seccomp._applies(gated, frozenset({"CAP_SYS_ADMIN"})) and not seccomp._applies(gated, frozenset())
    assert seccomp._applies(denied, frozenset()) and not seccomp._applies(denied, frozenset({"CAP_SYS_ADMIN"}))
    assert not seccomp._applies(other_arch, frozenset())


@pytest.mark.skipif(not os.path.exists(seccomp.PROFILE), reason="containers-common is not installed")
def test_default_profile_compiles():
    program = seccomp.compile_profile(seccomp.load_profile(), launch.DEFAULT_CAPS)
    assert len(program) % 8 == 0 and len(program) > 800  # sock_filter entries


def test_image_config_rules():
    img = Image("sha256:x", ("/l",), {"Entrypoint": ["ep"], "Cmd": ["c1"], "Env": ["A=1", "B=2"], "WorkingDir": "/w", "User": "u"})
    assert _apply_image(img, None, None, None, None, None) == (["ep", "c1"], {"A": "1", "B": "2"}, "/w", "u")
    assert _apply_image(img, ["x"], None, {"B": "3"}, "/o", "v")[0:4] == (["ep", "x"], {"A": "1", "B": "3"}, "/o", "v")
    assert _apply_image(img, None, ["/bin/sh"], None, None, None)[0] == ["/bin/sh"]  # --entrypoint drops Cmd
    assert _apply_image(img, ["-c", "y"], ["/bin/sh"], None, None, None)[0] == ["/bin/sh", "-c", "y"]
    assert _apply_image(img, ["z"], [""], None, None, None)[0] == ["z"]  # --entrypoint "" resets it
    from netcore import InvalidConfig
    with pytest.raises(InvalidConfig, match="no command"):
        _apply_image(Image("sha256:y", ("/l",), {}), None, None, None, None, None)
    with pytest.raises(InvalidConfig, match="no command given"):
        _apply_image(HOST_IMAGE, [], None, None, None, None)


def _root(tmp_path, files: dict[str, str]):
    for path, text in files.items():
        p = tmp_path / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("->"):
            os.symlink(text[2:], p)
        else:
            p.write_text(text)
            p.chmod(0o755 if text.startswith("#!") else 0o644)
    return str(tmp_path)


def test_root_view_layers_symlinks_and_commands(tmp_path):
    low = _root(tmp_path / "low", {"/usr/bin/tool": "#!x", "/bin": "->usr/bin", "/etc/a": "low", "/etc/b": "low",
                                   "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
                                   "/etc/group": "app:x:1000:\nwheel:x:10:app,other\n", "/abs": "->/etc/a"})
    up = _root(tmp_path / "up", {"/etc/a": "up"})
    view = RootView((up, low))
    assert view.read_text("/etc/a") == "up" and view.read_text("/etc/b") == "low"
    assert view.read_text("/abs") == "up"  # an absolute symlink resolves inside the root
    assert find_command(view, "tool", "/bin") == "/bin/tool"
    assert view.lookup("/usr/bin/../../etc/b") is not None and view.lookup("/bin/../etc/b") is None  # /bin/.. is /usr
    with pytest.raises(ExecError) as exc:
        find_command(view, "/etc/a", "/bin")
    assert exc.value.code == 126
    with pytest.raises(ExecError) as exc:
        find_command(view, "nope", "/bin:/usr/bin")
    assert exc.value.code == 127 and str(exc.value) == 'exec: "nope": executable file not found in $PATH'
    assert resolve_user(view, "app") == resolve_user(view, "1000")
    u = resolve_user(view, "app")
    assert (u.uid, u.gid, set(u.groups), u.home) == (1000, 1000, {1000, 10}, "/home/app")
    assert (resolve_user(view, "5:wheel").uid, resolve_user(view, "5:wheel").gid) == (5, 10)
    with pytest.raises(ValueError, match="unable to find user ghost"):
        resolve_user(view, "ghost")


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are character devices: root")
def test_root_view_whiteouts_and_opaque_dirs(tmp_path):
    low = _root(tmp_path / "low", {"/etc/gone": "x", "/d/old": "x", "/d/kept": "x"})
    up = _root(tmp_path / "up", {"/d/new": "x"})
    os.mknod(os.path.join(up, "etc", "gone") if os.path.isdir(os.path.join(up, "etc")) else _mk(up, "etc/gone"),
             0o600 | 0o020000, os.makedev(0, 0))
    view = RootView((up, low))
    assert view.lookup("/etc/gone") is None
    assert view.lookup("/d/old") is not None
    os.setxattr(os.path.join(up, "d"), "trusted.overlay.opaque", b"y")
    assert view.lookup("/d/old") is None and view.lookup("/d/new") is not None


def _mk(root: str, rel: str) -> str:
    os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
    return os.path.join(root, rel)


def test_root_view_of_a_container_not_started_yet(tmp_path):
    """Before the first start the upper layer does not exist: the image's layers alone."""
    low = _root(tmp_path / "low", {"/bin/tool": "#!x"})
    view = RootView((str(tmp_path / "upper-not-made"), low))
    assert view.is_dir("/") and find_command(view, "tool", "/bin") == "/bin/tool"
    with pytest.raises(ExecError):
        find_command(view, "/bin/sh", "/bin")


def test_mounts_checked_and_volumes_resolved_through_the_store(tmp_path):
    """``-v NAME:/path`` and ``-v /path`` go through the volume store's ``mountpoint(name)``;
    bind sources must be absolute and exist; the record has inspect's Mounts shape."""
    from types import SimpleNamespace

    from netcore import InvalidConfig
    from runtime.engine.containers import Containers

    asked = []

    class Volumes:
        def mountpoint(self, name: str) -> str:
            asked.append(name)
            return f"/var/lib/netcore/volumes/{name}/_data"

    this = SimpleNamespace(volumes=Volumes())
    named = Containers._mount(this, {"Type": "volume", "Source": "data", "Target": "/srv/data", "ReadOnly": True})
    assert named == {"Type": "volume", "Name": "data", "Source": "/var/lib/netcore/volumes/data/_data", "Destination": "/srv/data",
                     "Driver": "local", "Mode": "ro", "RW": False, "Propagation": ""}
    anon = Containers._mount(this, {"Type": "volume", "Source": "", "Target": "/cache"})
    assert asked[0] == "data" and len(asked[1]) == 64 and anon["Name"] == asked[1]
    bind = Containers._mount(this, {"Type": "bind", "Source": str(tmp_path), "Target": "/x/../src/"})
    assert (bind["Source"], bind["Destination"], bind["RW"]) == (str(tmp_path), "/src", True)
    for bad, text in [({"Type": "bind", "Source": "rel", "Target": "/x"}, "use absolute path"),
                      ({"Type": "bind", "Source": str(tmp_path / "no"), "Target": "/x"}, "does not exist"),
                      ({"Type": "bind", "Source": str(tmp_path), "Target": "x"}, "must be absolute"),
                      ({"Type": "bind", "Source": str(tmp_path), "Target": "/"}, "destination can't be '/'"),
                      ({"Type": "nfs", "Source": "", "Target": "/x"}, "mount type unknown")]:
        with pytest.raises(InvalidConfig, match=text):
            Containers._mount(this, bad)
    with pytest.raises(InvalidConfig, match="need the volume store"):
        Containers._mount(SimpleNamespace(volumes=None), {"Type": "volume", "Source": "data", "Target": "/d"})
