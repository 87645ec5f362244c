"""``netcore compose`` with images, builds and volumes: the engine's image store, builder and mounts.

A busybox image is imported from Debian's busybox-static (tests/integration/image_archives.py).
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from cli_engine import NETCORE

pytestmark = pytest.mark.root


def write(d: Path, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "docker-compose.yml").write_text(textwrap.dedent(text))
    return d


def compose(engine, d: Path, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    res = subprocess.run([*NETCORE, "compose", *args], cwd=d, env=engine.env, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"compose {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
    return res


@pytest.fixture
def busybox(engine, tmp_path) -> str:
    import image_archives

    tar = tmp_path / "busybox.tar"
    tar.write_bytes(image_archives.busybox_rootfs_tar())
    engine("image", "import", str(tar), "busybox")
    return "busybox"


def test_bind_mounts_named_volumes_and_down_v(engine, tmp_path, name, busybox):
    d = write(tmp_path / "proj", """
        services:
          writer:
            image: busybox
            command: sh -c "echo from-writer > /shared/f && echo bind > /host/b.txt"
            volumes: ["shared:/shared", "./out:/host"]
          reader:
            image: busybox
            command: cat /shared/f
            volumes: [{type: volume, source: shared, target: /shared, read_only: true}]
            depends_on: {writer: {condition: service_completed_successfully}}
        volumes:
          shared:
            labels: {purpose: test}
    """)
    (d / "out").mkdir()
    res = compose(engine, d, "-p", name, "up")
    assert f"{name}_reader_1  | from-writer" in res.stdout.splitlines()
    assert (d / "out" / "b.txt").read_text() == "bind\n"  # a relative bind source is the project directory's
    assert f'Creating volume "{name}_shared" with default driver' in res.stderr
    view = json.loads(engine("volume", "inspect", f"{name}_shared").stdout)[0]
    assert view["Labels"]["com.docker.compose.project"] == name and view["Labels"]["purpose"] == "test"
    compose(engine, d, "-p", name, "down")
    assert engine("volume", "inspect", f"{name}_shared", check=False).returncode == 0  # down keeps volumes
    res = compose(engine, d, "-p", name, "down", "-v")
    assert f"Removing volume {name}_shared" in res.stderr
    assert engine("volume", "inspect", f"{name}_shared", check=False).returncode != 0


def test_build_image_entrypoint_and_command(engine, tmp_path, name, busybox):
    ctx = tmp_path / "proj" / "ctx"
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text('FROM busybox\nENTRYPOINT ["echo"]\nCMD ["from", "cmd"]\n')
    d = write(tmp_path / "proj", """
        services:
          app: {build: ./ctx}
          tagged: {build: {context: ./ctx}, image: "custom-${TAG:-one}", command: ["over", "ridden"]}
          ent: {image: busybox, entrypoint: ["echo", "ent"]}
    """)
    res = compose(engine, d, "-p", name, "build")
    assert "Building app" in res.stderr and "Building tagged" in res.stderr
    engine("image", "inspect", f"{name}_app")
    engine("image", "inspect", "custom-one")
    res = compose(engine, d, "-p", name, "up")
    lines = res.stdout.splitlines()
    assert f"{name}_app_1     | from cmd" in lines  # the image's ENTRYPOINT and CMD
    assert f"{name}_tagged_1  | over ridden" in lines  # command replaces CMD
    assert f"{name}_ent_1     | ent" in lines  # entrypoint replaces ENTRYPOINT and drops CMD
    compose(engine, d, "-p", name, "down")


def test_a_missing_image_is_one_line_and_leaves_nothing(engine, tmp_path, name):
    d = write(tmp_path / "proj", """
        services:
          a: {image: busybox-nope}
    """)
    res = compose(engine, d, "-p", name, "up", "-d", check=False)
    assert res.returncode == 1 and res.stderr.splitlines()[-1].startswith("Error: ") and "busybox-nope" in res.stderr
    assert f"{name}_default" not in engine("network", "ls").stdout
