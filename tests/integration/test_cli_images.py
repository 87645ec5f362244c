"""``netcore images / image import / load / save / tag / rmi / image inspect`` and ``volume ...``
through the CLI and a private engine: Docker's shapes, archives streamed over the API."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cli_engine import NETCORE
from image_archives import busybox_rootfs_tar, docker_save_archive, image_config, oci_archive, sha, whiteout_layers, write

pytestmark = pytest.mark.root


def piped(engine, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NETCORE, *args], env=engine.env, input=data, capture_output=True, timeout=60)


def store_files(engine) -> list[str]:
    out = []
    for dirpath, dirs, files in os.walk(os.path.join(engine.root, "images")):
        out += [os.path.join(dirpath, n) for n in dirs + files]
    return sorted(out)


def test_import_images_inspect_tag_rmi(engine, tmp_path):
    rootfs = write(str(tmp_path / "rootfs.tar"), busybox_rootfs_tar())
    image_id = engine("image", "import", rootfs, "bb:1").stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    res = piped(engine, busybox_rootfs_tar(), "import", "-", "bbstdin")  # the top-level form, from a pipe
    assert res.returncode == 0, res.stderr
    lines = engine("images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    rows = {tuple(line.split()[:3]) for line in lines[1:]}
    assert ("bb", "1", image_id[7:19]) in rows and ("host", "latest", "host") in rows and any(r[0] == "bbstdin" for r in rows)
    assert image_id[7:19] in engine("images", "-q").stdout.split()
    assert engine("image", "ls", "-q", "--no-trunc", "bb").stdout.split() == [image_id]
    js = [json.loads(line) for line in engine("images", "--format", "json").stdout.splitlines()]
    bb = next(j for j in js if j["Repository"] == "bb")
    assert bb["Tag"] == "1" and bb["ID"] == image_id[7:19] and bb["Size"].endswith("MB")
    view = engine.json("image", "inspect", "bb:1")[0]
    assert view["Id"] == image_id and view["RepoTags"] == ["bb:1"] and view["RootFS"]["Type"] == "layers"
    engine("tag", "bb:1", "registry.local:5000/team/bb:prod")
    assert engine.json("image", "inspect", "registry.local:5000/team/bb:prod")[0]["Id"] == image_id
    assert engine("rmi", "bb:1").stdout == "Untagged: bb:1\n"
    out = engine("image", "rm", "registry.local:5000/team/bb:prod").stdout.splitlines()
    assert out[0] == "Untagged: registry.local:5000/team/bb:prod" and out[1] == f"Deleted: {image_id}"
    res = engine("image", "inspect", "bb:1", check=False)
    assert res.returncode == 1 and res.stderr.strip().endswith("No such image: bb:1") and len(res.stderr.splitlines()) == 1


def test_load_save_round_trip(engine, tmp_path):
    base, top = whiteout_layers()
    archive = write(str(tmp_path / "two.tar"), docker_save_archive([base, top], ["two:latest"]))
    assert engine("load", "-i", archive).stdout == "Loaded image: two:latest\n"
    image_id = sha(image_config([sha(base), sha(top)]))
    assert engine.json("image", "inspect", "two")[0]["Id"] == image_id
    layer = engine.json("image", "inspect", "two")[0]["GraphDriver"]["Data"]["LowerDir"].split(":")[0]  # the top layer
    st = os.lstat(f"{layer}/data/gone")
    assert st.st_rdev == 0 and oct(st.st_mode).startswith("0o20")  # a 0/0 character device
    res = piped(engine, oci_archive([base], "ocitest:7"), "image", "load")  # from a pipe, OCI layout
    assert res.returncode == 0 and res.stdout == b"Loaded image: ocitest:7\n", res.stderr
    saved = str(tmp_path / "saved.tar")
    engine("save", "-o", saved, "two", "ocitest:7")
    piped_out = subprocess.run([*NETCORE, "save", "two"], env=engine.env, capture_output=True, timeout=60).stdout
    assert piped_out[:512] == open(saved, "rb").read(512)
    engine("rmi", "two", "ocitest:7")
    assert engine("images", "-q").stdout.split() == ["host"]
    assert engine("load", "-i", saved).stdout.splitlines() == ["Loaded image: two:latest", "Loaded image: ocitest:7"]
    assert engine.json("image", "inspect", "two")[0]["Id"] == image_id  # the same id after the round trip


@pytest.mark.parametrize("bad", ["truncated", "garbage", "not-a-reference"])
def test_bad_archives_change_nothing(engine, tmp_path, bad):
    rootfs = write(str(tmp_path / "rootfs.tar"), busybox_rootfs_tar())
    engine("image", "import", rootfs, "keep")
    before = store_files(engine)
    base, top = whiteout_layers()
    good = docker_save_archive([base, top], ["two:latest"])
    if bad == "truncated":
        res = engine("load", "-i", write(str(tmp_path / "cut.tar"), good[: len(good) * 2 // 3]), check=False)
    elif bad == "garbage":
        res = piped(engine, os.urandom(200_000), "load")
        res.stderr = res.stderr.decode()
    else:
        res = engine("image", "import", rootfs, "Not/Valid", check=False)
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("Error response from daemon: invalid")
    assert store_files(engine) == before
    assert {line.split()[0] for line in engine("images").stdout.splitlines()[1:]} == {"host", "keep"}


def test_unknown_image_and_bad_names(engine):
    for args, message in ((("rmi", "nope"), "No such image: nope:latest"), (("tag", "nope", "x"), "No such image: nope:latest"),
                          (("save", "nope"), "No such image: nope:latest")):
        res = engine(*args, check=False)
        assert res.returncode == 1 and res.stderr.strip().endswith(message), res.stderr
    res = engine("rmi", "host", check=False)
    assert res.returncode == 1 and "built-in image" in res.stderr


def test_volumes(engine):
    assert engine("volume", "create", "data", "--label", "app=web").stdout == "data\n"
    anon = engine("volume", "create").stdout.strip()
    assert len(anon) == 64
    lines = engine("volume", "ls").stdout.splitlines()
    assert lines[0].split() == ["DRIVER", "VOLUME", "NAME"] and ["local", "data"] in [line.split() for line in lines[1:]]
    assert sorted(engine("volume", "ls", "-q").stdout.split()) == sorted(["data", anon])
    js = [json.loads(line) for line in engine("volume", "ls", "--format", "json").stdout.splitlines()]
    assert {"Name": "data", "Labels": "app=web", "Driver": "local"}.items() <= next(j for j in js if j["Name"] == "data").items()
    view = engine.json("volume", "inspect", "data")[0]
    assert view["Mountpoint"] == os.path.join(engine.root, "volumes", "data", "_data") and os.path.isdir(view["Mountpoint"])
    res = engine("volume", "create", "bad/name", check=False)
    assert res.returncode == 1 and "includes invalid characters for a local volume name" in res.stderr
    out = engine("volume", "prune", "-f").stdout
    assert anon in out and "data" not in out.replace("Deleted Volumes:", "") and "Total reclaimed space: 0B" in out
    assert engine("volume", "rm", "data").stdout == "data\n"
    res = engine("volume", "rm", "data", check=False)
    assert res.returncode == 1 and res.stderr.strip() == "Error response from daemon: get data: no such volume"
    assert engine("volume", "ls", "-q").stdout == ""


def test_save_of_a_damaged_layer_fails_and_writes_nothing(engine, tmp_path):
    engine("image", "import", write(str(tmp_path / "rootfs.tar"), busybox_rootfs_tar()), "bb")
    layer = engine.json("image", "inspect", "bb")[0]["GraphDriver"]["Data"]["LowerDir"]
    with open(f"{layer}/etc/passwd", "r+b") as f:
        f.write(b"toor")  # the layer no longer matches its digest
    out = tmp_path / "bb-saved.tar"
    res = engine("save", "-o", str(out), "bb", check=False)
    assert res.returncode == 1 and res.stderr.strip().startswith("Error response from daemon: layer sha256:")
    assert res.stderr.strip().endswith("of bb:latest has changed on disk since it was stored")
    assert not out.exists() and list(tmp_path.glob("bb-saved.tar*")) == []
