"""``netcore build`` end to end, through the CLI and a private engine: the book's chapter.

The book's hello-world API server (tests/fixtures/helloworld/main.go) is built at test
time into a static binary with Debian's Go toolchain, as the book does
(``CGO_ENABLED=0``), and the book's Dockerfile is used verbatim. RUN steps run in real
containers of the engine on its default bridge network, from a busybox image made of
Debian's busybox-static.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from cli_engine import free_port

pytestmark = pytest.mark.root

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "helloworld"


@pytest.fixture(scope="session")
def server_binary(tmp_path_factory) -> Path:
    """The book's server, built as the book builds it: static, no cgo."""
    go = shutil.which("go")
    assert go, "golang-go is needed to build the book's server: run scripts/setup.sh"
    out = tmp_path_factory.mktemp("go")
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GO111MODULE": "off",
           "GOCACHE": str(out / "cache"), "GOPATH": str(out / "gopath"), "GOFLAGS": ""}
    subprocess.run([go, "build", "-ldflags", "-s", "-o", str(out / "server"), str(FIXTURE / "main.go")],
                   check=True, env=env, capture_output=True, timeout=300)
    return out / "server"


@pytest.fixture
def book(tmp_path, server_binary) -> Path:
    """A context as the book has it: the binary and the book's Dockerfile, verbatim."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy2(server_binary, ctx / "server")
    shutil.copy(FIXTURE / "Dockerfile", ctx / "Dockerfile")
    return ctx


def busybox(engine, tmp_path: Path) -> None:
    """Import a busybox-static root filesystem as the image ``busybox``."""
    import image_archives

    tar = tmp_path / "busybox.tar"
    tar.write_bytes(image_archives.busybox_rootfs_tar())
    engine("image", "import", str(tar), "busybox")


def image(engine, ref: str) -> dict:
    return json.loads(engine("image", "inspect", ref).stdout)[0]


def no_image(engine, ref: str) -> bool:
    res = engine("image", "inspect", ref, check=False)
    return res.returncode != 0 and "No such image" in res.stderr


def post_hello(port: int) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/helloworld", data=b'{"name":"Nic"}', method="POST")
    for _ in range(100):
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.read().decode().strip()
        except OSError:
            import time

            time.sleep(0.05)
    raise AssertionError(f"nothing answered on port {port}")


def leftovers(engine) -> tuple:
    """What a failed build must not leave: containers, build scratch dirs, image store temp dirs."""
    ps = engine("ps", "-a", "-q").stdout.split()
    tmp = os.listdir(os.path.join(engine.root, "build", "tmp"))
    return ps, tmp


def test_the_books_dockerfile_builds_runs_and_rebuilds_from_cache(engine, book):
    res = engine("build", "-t", "testserver", str(book))
    err = res.stderr.splitlines()
    assert err[1:3] == ["Step 1/5 : FROM scratch", " ---> "]
    assert "Step 2/5 : MAINTAINER jackson.nic@gmail.com" in err
    assert "Step 5/5 : ENTRYPOINT ./server" in err
    assert err[-1] == "Successfully tagged testserver:latest"
    built = err[-2].split()[-1]
    img = image(engine, "testserver")
    assert img["Id"][7:19] == built
    assert img["Config"]["Entrypoint"] == ["/bin/sh", "-c", "./server"]
    assert img["Config"]["ExposedPorts"] == {"8080/tcp": {}}
    listed = [line.split() for line in engine("images").stdout.splitlines()[1:]]
    assert any(row[:3] == ["testserver", "latest", built] for row in listed)

    # an unchanged rebuild: every step after FROM from the cache, the same image
    again = engine("build", "-t", "testserver", str(book)).stderr
    assert again.count(" ---> Using cache") == 4
    assert engine("build", "-q", "-t", "testserver", str(book)).stdout.strip() == img["Id"]

    # the shell form needs /bin/sh, which scratch lacks: Docker's one line, nothing left
    res = engine("run", "--rm", "testserver", check=False)
    assert res.returncode != 0
    assert 'exec: "/bin/sh": stat /bin/sh: no such file or directory' in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert engine("ps", "-a", "-q").stdout.strip() == ""


def test_the_exec_form_serves_the_books_api_on_a_published_port(engine, book):
    dockerfile = (book / "Dockerfile").read_text().replace("ENTRYPOINT ./server", 'ENTRYPOINT ["./server"]')
    (book / "Dockerfile").write_text(dockerfile)
    engine("build", "-t", "testserver", str(book))
    assert image(engine, "testserver")["Config"]["Entrypoint"] == ["./server"]
    port = free_port()
    cid = engine("run", "-d", "-p", f"{port}:8080", "testserver").stdout.strip()
    try:
        assert post_hello(port) == '{"message":"Hello Nic"}'
        assert "Server starting on port 8080" in engine("logs", cid).stdout + engine("logs", cid).stderr
    finally:
        engine("rm", "-f", cid)


def test_a_changed_file_rebuilds_from_its_step_and_no_cache_rebuilds_all(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a")
    (ctx / "b.txt").write_text("b")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /\nCOPY b.txt /\nCMD [\"x\"]\n")
    first = engine("build", "-q", "-t", "files", str(ctx)).stdout.strip()
    (ctx / "b.txt").write_text("changed")
    res = engine("build", "-t", "files", str(ctx))
    assert res.stderr.count(" ---> Using cache") == 1  # COPY a.txt; COPY b.txt and CMD are rebuilt
    assert image(engine, "files")["Id"] != first
    assert "Using cache" not in engine("build", "--no-cache", "-t", "files", str(ctx)).stderr


def test_run_steps_run_in_containers_on_the_default_bridge(engine, tmp_path):
    busybox(engine, tmp_path)
    subnet = ipaddress.ip_network(engine.json("network", "inspect", "bridge")[0]["IPAM"]["Config"][0]["Subnet"])
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "ARG GREETING=hello\n"
        "RUN echo \"$GREETING from $(hostname)\" > /greeting && ip -4 -o addr show eth0\n"
        "RUN [\"/bin/sh\", \"-c\", \"echo exec form >> /greeting\"]\n"
        "WORKDIR /work\n"
        "RUN pwd > where\n"
    )
    res = engine("build", "--build-arg", "GREETING=hi", "-t", "withrun", str(ctx))
    lines = res.stderr.splitlines()
    assert any(line.startswith(" ---> Running in ") for line in lines)
    assert any(line.startswith("Removing intermediate container ") for line in lines)
    addr = next(line.split()[3] for line in lines if " inet " in line)
    assert ipaddress.ip_interface(addr).ip in subnet  # the RUN container had an address on bridge
    out = engine("run", "--rm", "withrun", "cat", "/greeting", "/work/where").stdout.splitlines()
    assert out[0].startswith("hi from ") and out[1:] == ["exec form", "/work"]
    assert engine("ps", "-a", "-q").stdout.strip() == ""  # every RUN container is gone
    # the build arg is part of the RUN step's key: another value runs it again
    again = engine("build", "--build-arg", "GREETING=hi", "-t", "withrun", str(ctx)).stderr
    assert again.count(" ---> Using cache") == 5
    other = engine("build", "--build-arg", "GREETING=hey", "-t", "withrun", str(ctx)).stderr
    assert other.count(" ---> Using cache") == 1  # ARG: its text is the same, its value is not


def test_a_failing_run_says_the_command_and_its_code_and_leaves_nothing(engine, tmp_path):
    busybox(engine, tmp_path)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN touch /made\nRUN exit 3\n")
    layers = set(os.listdir(os.path.join(engine.root, "images", "layers")))
    res = engine("build", "-t", "broken", str(ctx), check=False)
    assert res.returncode == 3
    assert res.stderr.strip().splitlines()[-1] == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert no_image(engine, "broken")
    assert leftovers(engine) == ([], [])
    # the step that passed is kept, as Docker keeps its intermediate image; the failed one left no layer
    assert len(set(os.listdir(os.path.join(engine.root, "images", "layers"))) - layers) == 1
    res = engine("build", "-t", "broken", str(ctx), check=False)
    assert res.stderr.count(" ---> Using cache") == 1


@pytest.mark.parametrize(
    "dockerfile, exit_code, message",
    [
        ("FROM scratch\nFOO bar\n", 1, "Error response from daemon: Dockerfile:2: unknown instruction: FOO"),
        ("FROM nosuchimage\n", 1, "Error response from daemon: No such image: nosuchimage:latest"),
        ("FROM scratch\nCOPY missing /\n",
         1, "COPY failed: file not found in build context or excluded by .dockerignore: stat missing: file does not exist"),
        ("FROM scratch\nCOPY ../../etc/passwd /\n", 1, "COPY failed: forbidden path outside the build context: ../../etc/passwd ()"),
        ("FROM scratch\nCOPY secret /\n",
         1, "COPY failed: file not found in build context or excluded by .dockerignore: stat secret: file does not exist"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(engine, tmp_path, dockerfile, exit_code, message):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "secret").write_text("s")
    (ctx / ".dockerignore").write_text("secret\n")
    (ctx / "Dockerfile").write_text(dockerfile)
    res = engine("build", "-t", "bad", str(ctx), check=False)
    assert res.returncode == exit_code
    assert res.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in res.stderr
    assert no_image(engine, "bad")
    assert leftovers(engine) == ([], [])
    assert os.listdir(os.path.join(engine.root, "images", "layers")) == []


def test_a_missing_dockerfile_or_context_fails_before_anything_is_sent(engine, tmp_path):
    res = engine("build", "-t", "x", str(tmp_path), check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == (
        f"Error: unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {tmp_path}/Dockerfile: no such file or directory")
    res = engine("build", str(tmp_path / "nope"), check=False)
    assert res.stderr.strip() == f'Error: unable to prepare context: path "{tmp_path / "nope"}" not found'
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    res = engine("build", "-t", "Upper", str(tmp_path), check=False)
    assert res.returncode != 0 and res.stderr.strip().splitlines()[-1].endswith("invalid reference format: repository name must be lowercase")


def test_a_dockerfile_outside_the_context_with_f(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("f")
    other = tmp_path / "elsewhere.Dockerfile"
    other.write_text("FROM scratch\nCOPY f /g\nLABEL from=outside\n")
    engine("build", "-f", str(other), "-t", "outside", str(ctx))
    assert image(engine, "outside")["Config"]["Labels"] == {"from": "outside"}


def test_target_stops_at_a_stage_and_labels_are_a_last_step(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a")
    (ctx / "Dockerfile").write_text("FROM scratch AS base\nCOPY a /a\nLABEL stage=base\nFROM base AS final\nLABEL stage=final\n")
    res = engine("build", "--target", "base", "--label", "built.by=it's $USER", "-t", "targeted", str(ctx))
    assert "Step 4/4 : LABEL built.by=" in res.stderr  # two steps of the first stage, and the label step
    assert image(engine, "targeted")["Config"]["Labels"] == {"stage": "base", "built.by": "it's $USER"}
    res = engine("build", "--target", "nope", str(ctx), check=False)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == "Error response from daemon: failed to reach build target nope in Dockerfile"
