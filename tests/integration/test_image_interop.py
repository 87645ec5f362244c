"""Archives of a real peer: Debian's podman (in a private storage root, vfs, no network, no
container run) writes ``docker save`` and OCI archives that the store loads with the same
image id, and loads the store's ``save`` with the same id."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile

import pytest

from image_archives import busybox_rootfs_tar, layer_is_whiteout, whiteout_layers, write
from runtime.engine.images import ImageStore

pytestmark = [pytest.mark.root, pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")]


@pytest.fixture
def podman(tmp_path):
    run = tempfile.mkdtemp(prefix="nct-pm-")  # podman wants a runroot of at most 50 characters
    base = ["podman", "--root", str(tmp_path / "pm-root"), "--runroot", run, "--storage-driver", "vfs",
            "--events-backend", "file", "--cgroup-manager", "cgroupfs"]

    def call(*args: str) -> str:
        res = subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    yield call
    shutil.rmtree(run, ignore_errors=True)


def test_podman_archives_load_with_podmans_id(podman, tmp_path):
    podman_id = podman("import", write(str(tmp_path / "rootfs.tar"), busybox_rootfs_tar()), "pmbb:1")
    podman("save", "--format", "docker-archive", "-o", str(tmp_path / "d.tar"), "pmbb:1")
    podman("save", "--format", "oci-archive", "-o", str(tmp_path / "o.tar"), "pmbb:1")
    for archive in ("d.tar", "o.tar"):
        store = ImageStore(str(tmp_path / f"root-{archive}"))
        with open(tmp_path / archive, "rb") as f:
            assert store.load(f) == ["Loaded image: localhost/pmbb:1"]
        img = store.resolve("localhost/pmbb:1")
        assert img.id == podman_id
        assert open(f"{img.layers[0]}/etc/passwd").read().startswith("root:x:0:0")


def test_podman_loads_our_save_with_our_id(podman, tmp_path):
    from image_archives import docker_save_archive

    store = ImageStore(str(tmp_path / "root"))
    base, top = whiteout_layers()
    store.load(io.BytesIO(docker_save_archive([base, top], ["two:1"])))
    image_id = store.resolve("two:1").id
    _, chunks = store.save(["two:1"])
    podman("load", "-i", write(str(tmp_path / "ours.tar"), b"".join(chunks)))
    assert podman("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").splitlines() == [f"{image_id} localhost/two:1"]
    assert layer_is_whiteout(f"{store.resolve('two:1').layers[1]}/data/gone")
