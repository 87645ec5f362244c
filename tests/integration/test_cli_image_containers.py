"""Containers of stored images and volumes, through the CLI: whiteouts seen from inside, rmi and
volume rm refused while in use, a volume written by one container and read by another,
anonymous volumes (``-v /path``, an image's VOLUME) and ``rm -v``."""

from __future__ import annotations

import random

import pytest

from cli_engine import Engine
from image_archives import busybox_rootfs_tar, docker_save_archive, whiteout_layers, write

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imgctr")
    (tmp / "eng").mkdir()
    eng = Engine(tmp / "eng").start()
    eng("image", "import", write(str(tmp / "bb.tar"), busybox_rootfs_tar()), "bb")
    base, top = whiteout_layers()
    eng("load", "-i", write(str(tmp / "two.tar"), docker_save_archive([base, top], ["two"])))
    eng("load", "-i", write(str(tmp / "vol.tar"), docker_save_archive([base, top], ["withvol"], config={"Cmd": ["sh"], "Volumes": {"/data": {}}})))
    yield eng
    eng.stop()


def name() -> str:
    return f"nct{random.randbytes(3).hex()}"


def run(lab: Engine, *args: str, check: bool = True):
    return lab("run", "--rm", "--network", "none", *args, check=check)


def anonymous(lab: Engine) -> set[str]:
    return {v for v in lab("volume", "ls", "-q").stdout.split() if len(v) == 64}


def test_container_sees_whiteouts_and_opaque_dirs(lab):
    assert run(lab, "two", "ls", "/data").stdout.split() == ["kept", "new"]
    assert run(lab, "two", "ls", "/opaque").stdout.split() == ["c"]
    assert run(lab, "two", "cat", "/data/kept").stdout == "kept\n"


def test_rmi_refused_while_a_container_uses_the_image(lab, tmp_path):
    lab("tag", "bb", "inuse:1")
    image_id = lab.json("image", "inspect", "inuse:1")[0]["Id"]
    lab("image", "rm", "bb")  # another tag stays: only untagged
    c = name()
    lab("run", "-d", "--name", c, "--network", "none", "inuse:1", "sleep", "60")
    try:
        cid = lab.json("inspect", c)[0]["Id"]
        res = lab("rmi", "inuse:1", check=False)
        assert res.returncode == 1 and res.stderr.strip() == (
            f'Error response from daemon: conflict: unable to remove repository reference "inuse:1" (must force) - '
            f"container {cid[:12]} is using its referenced image {image_id[7:19]}")
        res = lab("rmi", "-f", image_id, check=False)
        assert res.returncode == 1 and "(cannot be forced) - image is being used by running container" in res.stderr
        assert lab.json("image", "inspect", "inuse:1")[0]["Id"] == image_id  # nothing changed
    finally:
        lab("rm", "-f", c)
    lab("tag", "inuse:1", "bb")
    assert lab("rmi", "inuse:1").stdout == "Untagged: inuse:1\n"


def test_a_volume_written_by_one_container_is_read_by_another(lab):
    vol = name()
    run(lab, "-v", f"{vol}:/shared", "bb", "sh", "-c", "echo from-first > /shared/note")
    assert run(lab, "--mount", f"type=volume,source={vol},target=/elsewhere", "bb", "cat", "/elsewhere/note").stdout == "from-first\n"
    view = lab.json("volume", "inspect", vol)[0]
    assert open(f"{view['Mountpoint']}/note").read() == "from-first\n"
    c = name()
    lab("run", "-d", "--name", c, "--network", "none", "-v", f"{vol}:/shared", "bb", "sleep", "60")
    try:
        cid = lab.json("inspect", c)[0]["Id"]
        res = lab("volume", "rm", vol, check=False)
        assert res.returncode == 1 and res.stderr.strip() == f"Error response from daemon: remove {vol}: volume is in use - [{cid}]"
        assert vol in lab("volume", "ls", "-q").stdout.split()
    finally:
        lab("rm", "-f", c)
    assert lab("volume", "rm", vol).stdout == f"{vol}\n"


def test_anonymous_volumes_go_with_rm_v(lab):
    before = anonymous(lab)
    c = name()
    lab("run", "--name", c, "--network", "none", "-v", "/scratch", "bb", "sh", "-c", "echo a > /scratch/f")
    made = anonymous(lab) - before
    assert len(made) == 1
    assert lab("rm", "-v", c).stdout == f"{c}\n"
    assert anonymous(lab) == before
    run(lab, "-v", "/scratch", "bb", "true")  # --rm takes it along too
    assert anonymous(lab) == before


def test_image_volume_is_anonymous_and_starts_with_the_images_content(lab):
    before = anonymous(lab)
    c = name()
    res = lab("run", "--name", c, "--network", "none", "withvol", "sh", "-c", "ls /data; echo more > /data/added")
    assert res.stdout.split() == ["kept", "new"]  # the image's /data, whiteouts applied, copied in
    (vol,) = anonymous(lab) - before
    mounts = lab.json("inspect", c)[0]["Mounts"]
    assert any(m["Type"] == "volume" and m["Name"] == vol and m["Destination"] == "/data" for m in mounts)
    lab("rm", "-v", c)
    assert anonymous(lab) == before


def test_a_failed_run_leaves_no_volume(lab):
    before = set(lab("volume", "ls", "-q").stdout.split())
    res = lab("run", "--rm", "--network", "none", "-v", "/scratch", "bb", "/no/such/program", check=False)
    assert res.returncode != 0
    assert set(lab("volume", "ls", "-q").stdout.split()) == before
