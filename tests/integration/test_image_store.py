"""The image store and volumes on a real filesystem (root: layers keep owners, 0/0 devices, trusted xattrs)."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

from image_archives import (
    busybox_rootfs_tar, docker_save_archive, image_config, layer_is_whiteout, oci_archive, sha, tar_bytes, whiteout_layers,
)
from netcore import Conflict, InvalidConfig, NotFound
from runtime.engine.images import ImageStore
from runtime.engine.layers import OPAQUE_XATTR
from runtime.engine.rootfs import HOST_IMAGE
from runtime.engine.volumes import Volumes

pytestmark = pytest.mark.root


def snapshot(store: ImageStore) -> tuple:
    """Everything the store holds on disk, to prove a failed operation changed nothing."""
    files = []
    for dirpath, dirs, names in os.walk(store.dir):
        for n in dirs + names:
            files.append(os.path.relpath(os.path.join(dirpath, n), store.dir))
    return sorted(files), dict(store.refs)


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "root"))


def test_import_busybox_rootfs(store):
    image_id = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "bb:1")
    img = store.resolve("bb:1")
    assert img.id == image_id and img.names == ("bb:1",) and len(img.layers) == 1
    layer = img.layers[0]
    assert os.path.islink(f"{layer}/bin/sh") and os.readlink(f"{layer}/bin/sh") == "busybox"
    assert os.stat(f"{layer}/bin/busybox").st_mode & 0o777 == 0o755
    out = subprocess.run([f"{layer}/bin/busybox", "echo", "hi"], capture_output=True, text=True)
    assert out.stdout == "hi\n"
    assert store.resolve(image_id[7:19]).id == image_id  # a short id
    assert store.resolve("host") is HOST_IMAGE
    view = store.inspect("bb:1")
    assert view["Id"] == image_id and view["Size"] > 1_000_000 and view["RootFS"]["Layers"][0].startswith("sha256:")


def test_import_gzip_and_stdin_like_stream(store):
    raw = busybox_rootfs_tar()

    class Pipe(io.RawIOBase):  # short reads, as a pipe gives
        def __init__(self, data):
            self.data, self.pos = data, 0

        def read(self, n=-1):
            n = min(n if n > 0 else 4096, 4096, len(self.data) - self.pos)
            out = self.data[self.pos : self.pos + n]
            self.pos += n
            return out

    image_id = store.import_rootfs(Pipe(gzip.compress(raw)), "bbgz")
    assert store.inspect("bbgz:latest")["RootFS"]["Layers"] == [sha(raw)]  # the diff id is the uncompressed tar's
    assert store.resolve("bbgz").id == image_id


def test_docker_save_with_whiteouts(store):
    base, top = whiteout_layers()
    lines = store.load(io.BytesIO(docker_save_archive([base, top], ["two:latest", "two:v2"])))
    assert lines == ["Loaded image: two:latest", "Loaded image: two:v2"]
    img = store.resolve("two:v2")
    assert img.id == sha(image_config([sha(base), sha(top)]))  # the id is the config's digest
    assert img.config["Cmd"] == ["/bin/sh"]
    lower, upper = img.layers
    assert sorted(os.listdir(f"{lower}/data")) == ["gone", "kept"]
    assert layer_is_whiteout(f"{upper}/data/gone")
    assert not os.path.exists(f"{upper}/data/.wh.gone") and not os.path.exists(f"{upper}/opaque/.wh..wh..opq")
    assert os.getxattr(f"{upper}/opaque", OPAQUE_XATTR) == b"y"
    with pytest.raises(OSError):
        os.getxattr(f"{lower}/opaque", OPAQUE_XATTR)
    assert open(f"{upper}/data/new").read() == "new\n"


def test_overlay_of_the_layers_hides_whiteouts(store, tmp_path):
    """What the launcher will do: the kernel's overlayfs reads the whiteouts as we wrote them."""
    base, top = whiteout_layers()
    store.load(io.BytesIO(docker_save_archive([base, top], ["two:latest"])))
    lower, upper = store.resolve("two").layers
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(mnt)], check=True)
    try:
        assert sorted(os.listdir(mnt / "data")) == ["kept", "new"]
        assert sorted(os.listdir(mnt / "opaque")) == ["c"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_oci_layout_gzip_layers(store):
    base, top = whiteout_layers()
    lines = store.load(io.BytesIO(oci_archive([base, top], "docker.io/library/ocitest:1.0")))
    assert lines == ["Loaded image: ocitest:1.0"]
    img = store.resolve("ocitest:1.0")
    assert img.id == sha(image_config([sha(base), sha(top)]))
    assert layer_is_whiteout(f"{img.layers[1]}/data/gone")
    unnamed = store.load(io.BytesIO(oci_archive([base], None)))
    assert unnamed == [f"Loaded image ID: {sha(image_config([sha(base)]))}"]


def test_save_load_round_trip_keeps_the_id(store, tmp_path):
    base, top = whiteout_layers()
    store.load(io.BytesIO(oci_archive([base, top], "two:1")))  # gzip'd in, plain tar out
    imported = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "bb")
    _, chunks = store.save(["two:1", "bb"])
    archive = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        for entry in manifest:
            for layer in entry["Layers"]:  # each layer is the very tar its diff id names
                assert "sha256:" + layer.split("/")[0] == sha(tar.extractfile(layer).read())
    assert [e["RepoTags"] for e in manifest] == [["two:1"], ["bb:latest"]]
    other = ImageStore(str(tmp_path / "other"))
    assert other.load(io.BytesIO(archive)) == ["Loaded image: two:1", "Loaded image: bb:latest"]
    assert other.resolve("two:1").id == store.resolve("two:1").id
    assert other.resolve("bb").id == imported
    assert layer_is_whiteout(f"{other.resolve('two:1').layers[1]}/data/gone")


@pytest.mark.parametrize("damage", ["truncated-layer", "truncated-end", "garbage", "bad-gzip", "wrong-diff-id", "empty"])
def test_corrupt_archive_leaves_the_store_unchanged(store, damage):
    store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "keep")
    before = snapshot(store)
    base, top = whiteout_layers()
    good = docker_save_archive([base, top], ["two:latest"])
    data = {
        "truncated-layer": good[: len(good) // 2],
        "truncated-end": good[: good.index(b'[{"Config"') + 10],  # cut inside manifest.json, the last member
        "garbage": os.urandom(5000),
        "bad-gzip": gzip.compress(good)[:-400],
        "empty": b"",
    }.get(damage)
    if damage == "wrong-diff-id":
        # a config that names other layers than the archive holds
        cfg = image_config([sha(top), sha(top)])
        buf = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(good)) as src, tarfile.open(fileobj=buf, mode="w") as dst:
            for m in src.getmembers():
                if m.name == "manifest.json":
                    man = json.load(src.extractfile(m))
                    man[0]["Config"] = "lie.json"
                    blob = json.dumps(man).encode()
                    for name, payload in (("lie.json", cfg), ("manifest.json", blob)):
                        ti = tarfile.TarInfo(name)
                        ti.size = len(payload)
                        dst.addfile(ti, io.BytesIO(payload))
                else:
                    dst.addfile(m, src.extractfile(m) if m.isreg() else None)
        data = buf.getvalue()
    with pytest.raises(InvalidConfig) as err:
        store.load(io.BytesIO(data))
    assert "\n" not in str(err.value)
    if damage == "wrong-diff-id":
        assert "invalid diffID for layer 0" in str(err.value)
    assert snapshot(store) == before
    assert os.listdir(store.tmp_dir) == []


@pytest.mark.parametrize("evil", ["dotdot", "through-symlink", "hardlink-out", "symlink-dir-then-file"])
def test_unsafe_layers_are_refused(store, tmp_path, evil):
    outside = tmp_path / "outside"
    outside.mkdir()
    entries = {
        "dotdot": [("ok", b"x"), ("../../escape", b"pwned")],
        "through-symlink": [("link", "->", str(outside)), ("link/escape", b"pwned")],
        "hardlink-out": [("ok", b"x")],
        "symlink-dir-then-file": [("a", None), ("a/b", "->", "../../../.."), ("a/b/escape", b"pwned")],
    }[evil]
    layer = tar_bytes(entries)
    if evil == "hardlink-out":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            ti = tarfile.TarInfo("passwd")
            ti.type, ti.linkname = tarfile.LNKTYPE, "../../../../etc/passwd"
            tar.addfile(ti)
        layer = buf.getvalue()
    before = snapshot(store)
    with pytest.raises(InvalidConfig) as err:
        store.load(io.BytesIO(docker_save_archive([layer], ["evil:1"])))
    assert "invalid" in str(err.value)
    assert list(outside.iterdir()) == []
    assert snapshot(store) == before


def test_absolute_names_stay_inside(store, tmp_path):
    layer = tar_bytes([("/abs", None), ("/abs/file", b"in\n")])
    store.load(io.BytesIO(docker_save_archive([layer], ["abs:1"])))
    assert open(f"{store.resolve('abs:1').layers[0]}/abs/file").read() == "in\n"


def test_bad_references_change_nothing(store):
    before = snapshot(store)
    for bad in ("Foo", "a@b", "x:", "-lead", "host"):
        with pytest.raises(InvalidConfig):
            store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), bad)
    assert snapshot(store) == before
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        store.resolve("nope")


def test_tag_and_rmi(store):
    image_id = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "bb:1")
    store.tag("bb:1", "localhost:5000/team/bb:prod")
    assert store.resolve("localhost:5000/team/bb:prod").id == image_id
    assert store.remove("bb:1") == [{"Untagged": "bb:1"}]  # another tag is left: untag only
    with pytest.raises(InvalidConfig):
        store.tag("localhost:5000/team/bb:prod", "Bad")
    out = store.remove("localhost:5000/team/bb:prod")
    assert out[0] == {"Untagged": "localhost:5000/team/bb:prod"} and out[1] == {"Deleted": image_id}
    assert os.listdir(store.layers_dir) == [] and os.listdir(store.configs_dir) == []
    with pytest.raises(Conflict):
        store.remove("host")


def test_rmi_refused_while_a_container_uses_the_image(tmp_path):
    users: dict[str, list] = {}
    store = ImageStore(str(tmp_path / "root"), users=lambda i: users.get(i, []))
    image_id = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "bb")
    users[image_id] = [("c0ffee" * 10 + "abcd", True)]
    with pytest.raises(Conflict, match=r'conflict: unable to remove repository reference "bb" \(must force\) - container c0ffeec0ffee is using its referenced image ' + image_id[7:19]):
        store.remove("bb")
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running container c0ffeec0ffee"):
        store.remove(image_id, force=True)
    assert store.remove("bb", force=True) == [{"Untagged": "bb:latest"}]  # the image stays for its container
    assert store.resolve(image_id).layers
    users[image_id] = []
    assert store.remove(image_id)[0] == {"Deleted": image_id}


def test_commit_layer_and_create_image(store, tmp_path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "motd").write_text("hello\n")
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "var").mkdir()
    os.setxattr(upper / "var", OPAQUE_XATTR, b"y")
    os.setxattr(upper / "var", "trusted.overlay.origin", b"junk")  # overlayfs's own: not kept
    os.link(upper / "etc" / "motd", upper / "etc" / "motd2")
    base = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()))
    base_layer = store.inspect(base)["RootFS"]["Layers"][0]
    layer_id = store.commit_layer(str(upper))
    assert store.commit_layer(str(upper)) == layer_id  # the same content is the same layer
    path = store.layer_path(layer_id)
    assert layer_is_whiteout(f"{path}/etc/gone") and os.getxattr(f"{path}/var", OPAQUE_XATTR) == b"y"
    img = store.create_image([base_layer, layer_id], {"Cmd": ["cat", "/etc/motd"], "WorkingDir": "/etc"}, ref="built:1")
    assert img.layers == (store.layer_path(base_layer), path) and img.config["Cmd"] == ["cat", "/etc/motd"]
    _, chunks = store.save(["built:1"])
    archive = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tarfile.open(fileobj=tar.extractfile(f"{layer_id[7:]}/layer.tar")).getnames()
    assert "etc/.wh.gone" in names and "var/.wh..wh..opq" in names
    other = ImageStore(str(tmp_path / "other"))
    other.load(io.BytesIO(archive))
    assert other.resolve("built:1").id == img.id
    copy = other.resolve("built:1").layers[1]
    assert layer_is_whiteout(f"{copy}/etc/gone") and os.stat(f"{copy}/etc/motd").st_ino == os.stat(f"{copy}/etc/motd2").st_ino
    with pytest.raises(NotFound):
        store.create_image(["sha256:" + "0" * 64], {})


def test_restart_drops_unfinished_work(tmp_path):
    root = str(tmp_path / "root")
    store = ImageStore(root)
    image_id = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "bb")
    (tmp_path / "upper").mkdir()
    (tmp_path / "upper" / "f").write_text("f")
    orphan = store.commit_layer(str(tmp_path / "upper"))  # a layer no image names (a build cut short)
    os.makedirs(os.path.join(store.tmp_dir, "load-x", "0"))
    again = ImageStore(root)
    assert again.resolve("bb").id == image_id
    assert os.listdir(again.tmp_dir) == []
    with pytest.raises(NotFound):
        again.layer_path(orphan)


def test_volumes(tmp_path):
    users: dict[str, list] = {}
    vols = Volumes(str(tmp_path / "root"), users=lambda n: users.get(n, []))
    v = vols.create("data", labels={"app": "web"})
    assert v["Mountpoint"].endswith("/volumes/data/_data") and os.path.isdir(v["Mountpoint"]) and v["Labels"] == {"app": "web"}
    assert vols.create("data") == v  # idempotent, as Docker
    anon = vols.create()
    assert len(anon["Name"]) == 64 and "com.docker.volume.anonymous" in anon["Labels"]
    assert [x["Name"] for x in vols.list()] == sorted(["data", anon["Name"]])
    with pytest.raises(InvalidConfig, match="includes invalid characters for a local volume name"):
        vols.create("a/b")
    users["data"] = ["abc123"]
    with pytest.raises(Conflict, match=r"remove data: volume is in use - \[abc123\]"):
        vols.remove("data")
    with open(os.path.join(anon["Mountpoint"], "f"), "w") as f:
        f.write("x" * 100)
    removed, space = vols.prune()
    assert removed == [anon["Name"]] and space == 100  # anonymous only, by default
    assert vols.prune(all=True) == ([], 0)  # data is in use
    users["data"] = []
    vols.remove("data")
    with pytest.raises(NotFound, match="get data: no such volume"):
        vols.view("data")
    vols.remove("data", force=True)
    assert vols.list() == []
    assert vols.ensure("byrun") and not vols.ensure("byrun")  # -v NAME:/path makes the volume once
    assert vols.ensure("ab" * 32)  # -v /path: the engine names it with 64 hex digits
    assert os.path.isdir(vols.mountpoint("byrun")) and os.path.isdir(vols.mountpoint("ab" * 32))
    assert vols.view("byrun")["Labels"] == {} and "com.docker.volume.anonymous" in vols.view("ab" * 32)["Labels"]


def test_owners_modes_and_times_are_kept(store):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode, uid, kind in (("suid", 0o4755, 0, tarfile.REGTYPE), ("user", 0o640, 1000, tarfile.REGTYPE),
                                      ("open", 0o777, 0, tarfile.REGTYPE), ("dir", 0o1777, 33, tarfile.DIRTYPE),
                                      ("fifo", 0o600, 7, tarfile.FIFOTYPE)):
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid, ti.type, ti.mtime = mode, uid, uid, kind, 1_000_000_000
            ti.size = 3 if kind == tarfile.REGTYPE else 0
            tar.addfile(ti, io.BytesIO(b"abc") if kind == tarfile.REGTYPE else None)
    store.load(io.BytesIO(docker_save_archive([buf.getvalue()], ["modes:1"])))
    layer = store.resolve("modes:1").layers[0]
    for name, mode, uid in (("suid", 0o4755, 0), ("user", 0o640, 1000), ("open", 0o777, 0), ("dir", 0o1777, 33), ("fifo", 0o600, 7)):
        st = os.lstat(f"{layer}/{name}")
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (mode, uid, uid, 1_000_000_000), name
    assert stat.S_ISFIFO(os.lstat(f"{layer}/fifo").st_mode)


def test_new_volume_gets_the_images_content(store, tmp_path):
    """Docker's copy-up: a new volume over an image directory starts with what the image shows there."""
    base, top = whiteout_layers()
    store.load(io.BytesIO(docker_save_archive([base, top], ["two:latest"])))
    layers = store.resolve("two").layers
    vols = Volumes(str(tmp_path / "root"))
    for path, want in (("/data", ["kept", "new"]), ("/opaque", ["c"]), ("/nowhere", [])):
        name = vols.create()["Name"]
        assert vols.populate(name, layers, path) == bool(want)
        assert sorted(os.listdir(vols.view(name)["Mountpoint"])) == want
    used = vols.create("used")["Name"]
    open(os.path.join(vols.view(used)["Mountpoint"], "mine"), "w").close()
    assert not vols.populate(used, layers, "/data")  # a volume with content keeps it
    assert os.listdir(vols.view(used)["Mountpoint"]) == ["mine"]
