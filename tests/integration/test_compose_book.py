"""The book's compose chapter, verbatim: ``compose up`` prints ``{"message":"Hello Nic"}``.

The book's docker-compose.yml (tests/integration/book/, unchanged) runs two images:
``testserver``, built here from the book's Go server (tests/fixtures/helloworld, static,
``CGO_ENABLED=0``) with the exec-form ``ENTRYPOINT ["./server"]`` (the book's shell form
needs a /bin/sh that ``FROM scratch`` lacks), and ``appropriate/curl``, which no registry
can give here: it is a local image of the same name, made of Debian's busybox-static (for
``sh`` and ``sleep``) and the host's curl with the libraries it loads.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from cli_engine import NETCORE, engine_links

pytestmark = pytest.mark.root
HERE = Path(__file__).resolve().parent
BOOK = HERE / "book"
SERVER_SRC = HERE.parent / "fixtures" / "helloworld" / "main.go"


def _libs(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = []
    for line in out.split("\n"):
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            paths.append(parts[2])
        elif parts and parts[0].startswith("/"):
            paths.append(parts[0])
    return paths


def curl_rootfs_tar(path: Path) -> Path:
    """busybox-static with its applets, plus /usr/bin/curl and every library it loads."""
    busybox, curl = "/bin/busybox", shutil.which("curl")
    assert os.path.exists(busybox) and curl, "busybox-static and curl are needed (scripts/setup.sh)"
    with tarfile.open(path, "w") as tar:
        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)

        for d in ("bin", "etc", "tmp", "usr", "usr/bin", "proc", "sys", "dev"):
            add_dir(d)
        tar.add(busybox, "bin/busybox")
        for applet in subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split():
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        tar.add(os.path.realpath(curl), "usr/bin/curl")
        seen = set()
        for lib in _libs(curl):
            for parent in Path(lib).parents:
                if str(parent) != "/" and str(parent) not in seen:
                    seen.add(str(parent))
            tar.add(os.path.realpath(lib), lib.lstrip("/"))
        for d in sorted(seen, key=len):
            if d.lstrip("/") not in tar.getnames():
                add_dir(d.lstrip("/"))
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return path


@pytest.fixture(scope="module")
def server_binary(tmp_path_factory) -> Path:
    go = shutil.which("go")
    assert go, "golang-go is needed to build the book's server (scripts/setup.sh)"
    out = tmp_path_factory.mktemp("go")
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GO111MODULE": "off",
           "GOCACHE": str(out / "cache"), "GOPATH": str(out / "gopath"), "GOFLAGS": ""}
    subprocess.run([go, "build", "-ldflags", "-s", "-o", str(out / "server"), str(SERVER_SRC)],
                   check=True, env=env, capture_output=True, timeout=600)
    return out / "server"


def test_the_books_compose_file_prints_hello_nic(engine, tmp_path, server_binary):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy2(server_binary, ctx / "server")
    (ctx / "Dockerfile").write_text('FROM scratch\nMAINTAINER jackson.nic@gmail.com\n\nEXPOSE 8080\n\nCOPY ./server ./\n\n'
                                    'ENTRYPOINT ["./server"]\n')
    engine("build", "-t", "testserver", str(ctx), timeout=300)
    engine("image", "import", str(curl_rootfs_tar(tmp_path / "curl.tar")), "appropriate/curl")
    project = tmp_path / "book"
    shutil.copytree(BOOK, project)
    links = engine_links(engine)
    up = subprocess.Popen([*NETCORE, "compose", "up"], cwd=project, env=engine.env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))
            if "exited with code" in line and "curl" in line:
                break
    finally:
        up.send_signal(signal.SIGINT)  # the book's reader stops it with Ctrl-C: the server runs on
        rest, err = up.communicate(timeout=60)
    assert 'book_curl_1        | {"message":"Hello Nic"}' in seen, seen
    assert "book_curl_1 exited with code 0" in seen
    assert any(l.startswith("book_testserver_1  | ") for l in seen)  # the server's own start line
    assert "Creating network \"book_default\" with the default driver" in err
    assert "Gracefully stopping..." in err
    res = subprocess.run([*NETCORE, "compose", "down"], cwd=project, env=engine.env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert [l for l in engine("ps", "-a").stdout.splitlines()[1:] if "book_" in l] == []
    assert "book_default" not in engine("network", "ls").stdout
    assert engine_links(engine) == links
