"""Measure ``compose``: ``compose up -d`` then ``down`` of the book's two services, per peer.

netcore runs ``netcore compose``; Docker runs Debian's docker-compose 1.29 against the
peer's dockerd (``DOCKER_HOST``); Podman has no compose here and is skipped. Both files
have the book's shape (``testserver`` and a client whose entrypoint sleeps, then posts to
``testserver:8080``), on the peer's image (netcore: the built-in ``host`` image, until
netcore runs images). Each process traps SIGTERM, so ``down`` measures the engine
rather than the 10 s that both engines wait before killing a process that ignores it.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from typing import Any

from tests.benchmarks.core import BenchError, Stats, rotated, run, timed

__all__ = ["m_compose", "PROJECT"]

PROJECT = "ncbbook"
DIR = "/tmp/ncb-compose"
FILE = """\
version: '2'
services:
  testserver:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; busybox httpd -f -p 8080 & wait"]
  curl:
    image: {image}
    entrypoint: ["sh", "-c", "trap 'exit 0' TERM; sleep 3 & wait; wget -q -O- testserver:8080/ || true"]
"""


def _compose(peer: Any) -> tuple[list[str], dict[str, str]] | None:
    """The compose command of a peer and its environment, or None if it has none here."""
    folder = os.path.join(DIR, peer.name)
    if peer.name == "netcore":
        return peer.cli("compose", "-p", PROJECT, "-f", os.path.join(folder, "docker-compose.yml")), dict(os.environ)
    if peer.name == "docker":
        binary = shutil.which("docker-compose")
        if binary is None:
            return None
        from tests.benchmarks.docker_peer import SOCK

        env = dict(os.environ, DOCKER_HOST=f"unix://{SOCK}", COMPOSE_INTERACTIVE_NO_CLI="1")
        return [binary, "-p", PROJECT, "-f", os.path.join(folder, "docker-compose.yml")], env
    return None


def _image(peer: Any) -> str:
    return "host" if peer.name == "netcore" else peer.run_image[0]


def m_compose(ctx: Any) -> dict[str, Any]:
    peers = []
    skipped = {}
    for p in ctx.peers:
        cmd = _compose(p)
        if cmd is None:
            skipped[p.name] = "no compose for this peer here"
            continue
        folder = os.path.join(DIR, p.name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "docker-compose.yml"), "w") as f:
            f.write(textwrap.dedent(FILE.format(image=_image(p))))
        peers.append((p, *cmd))
    if not peers:
        raise BenchError("no peer has a compose here")
    samples: dict[str, list[float]] = {}
    try:
        for p, argv, env in peers:  # warm up: images, caches, the CLI's pages
            run([*argv, "up", "-d"], env=env, timeout=300)
            run([*argv, "down"], env=env, timeout=300)
        for rep in range(ctx.reps):
            for p, argv, env in rotated(peers, rep):
                samples.setdefault(f"{p.name} up -d", []).append(timed([*argv, "up", "-d"], env=env, timeout=300))
                samples.setdefault(f"{p.name} down", []).append(timed([*argv, "down"], env=env, timeout=300))
            ctx.log(f"  compose rep {rep + 1}/{ctx.reps}")
    finally:
        for p, argv, env in peers:
            run([*argv, "down"], env=env, check=False, timeout=300)
        shutil.rmtree(DIR, ignore_errors=True)
    out: dict[str, Any] = {k: Stats.of(v).as_dict() for k, v in samples.items()}
    if skipped:
        out["skipped"] = skipped
    return out
